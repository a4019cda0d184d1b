//! The alarm evaluator: definitions indexed by (park, tag), the ISA-18.2 state machine, on/off
//! delays, deadband, shelving and out-of-service. Pure and synchronous (the caller passes the
//! time), so it can be tested and benchmarked without a runtime; `super` feeds it and stores
//! what it records.
//!
//! Why an index: 10,000 definitions against 100,000 value changes per second must cost a few
//! percent of a core, so a value finds the alarms on its tag by two hash lookups on borrowed
//! strings, never by scanning the definitions.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::config::{split_index, AlarmConfig, Condition, Config, Message, Priority};
use crate::live::{Quality, TagValue};
use crate::store::alarms::{JournalEntry, StateRow};

/// ISA-18.2 alarm states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Active, unacknowledged.
    Unack,
    /// Returned to normal, still unacknowledged.
    RtnUnack,
    /// Active, acknowledged.
    Acked,
    Normal,
}

impl State {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Normal => "normal",
            State::Unack => "unack",
            State::Acked => "acked",
            State::RtnUnack => "rtn_unack",
        }
    }

    fn parse(s: &str) -> State {
        match s {
            "unack" => State::Unack,
            "acked" => State::Acked,
            "rtn_unack" => State::RtnUnack,
            _ => State::Normal,
        }
    }
}

/// Whether the alarm's value can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmQuality {
    Good,
    /// The value is bad (or the PLC is not connected): the alarm neither raises nor clears.
    Bad,
    /// The PLC is connected but has no such tag (or array element).
    TagMissing,
}

impl AlarmQuality {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmQuality::Good => "good",
            AlarmQuality::Bad => "bad",
            AlarmQuality::TagMissing => "tag_missing",
        }
    }
}

/// One definition, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    pub id: String,
    pub park: String,
    /// `<park>/<tag>` as configured (`Name[i]` included); empty for `comm`.
    pub tag: String,
    /// The tag name without the element index.
    pub base: String,
    pub index: Option<usize>,
    pub condition: Condition,
    pub limit: Option<f64>,
    pub value: Option<Value>,
    pub deadband: f64,
    pub on_delay: Duration,
    pub off_delay: Duration,
    pub priority: Priority,
    pub message: Message,
}

impl Def {
    fn from_config(a: &AlarmConfig) -> Def {
        let (park, name) = a.tag.split_once('/').unwrap_or((&a.tag, ""));
        let (base, index) = split_index(name).unwrap_or((name, None));
        let ms = |s: f64| Duration::milliseconds((s * 1000.0).round() as i64);
        Def {
            id: a.id.clone(),
            park: park.to_string(),
            tag: if a.condition == Condition::Comm {
                String::new()
            } else {
                a.tag.clone()
            },
            base: base.to_string(),
            index,
            condition: a.condition,
            limit: a.limit,
            value: a.value.clone(),
            deadband: a.deadband,
            on_delay: ms(a.on_delay_seconds),
            off_delay: ms(a.off_delay_seconds),
            priority: a.priority,
            message: a.message.clone(),
        }
    }

    /// The condition on `v`, given whether it held at the last evaluation (the deadband widens
    /// the band on the way back). `None`: the value cannot be compared (wrong type).
    fn holds(&self, v: &Value, held: bool) -> Option<bool> {
        let db = if held { self.deadband } else { 0.0 };
        match self.condition {
            Condition::High | Condition::HighHigh => Some(number(v)? > self.limit? - db),
            Condition::Low | Condition::LowLow => Some(number(v)? < self.limit? + db),
            Condition::Equals => Some(same(v, self.value.as_ref()?)),
            Condition::NotEquals => Some(!same(v, self.value.as_ref()?)),
            Condition::Comm | Condition::CalDue => None,
        }
    }
}

/// A JSON number, or a string holding one (Int64 beyond 2^53 arrives as a string).
fn number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    x.filter(|x: &f64| x.is_finite())
}

fn same(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) if a.is_number() || b.is_number() => x == y,
        _ => a == b,
    }
}

/// The run-time state of one alarm.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub state: State,
    /// Active after the delays (what operators see).
    pub active: bool,
    /// The condition as last evaluated, before the delays.
    pub raw: bool,
    pub raw_since: Option<DateTime<Utc>>,
    pub active_since: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub shelve_reason: Option<String>,
    pub out_of_service: Option<String>,
    pub value: Value,
    pub quality: AlarmQuality,
    /// The most extreme value of the current occurrence.
    pub peak: Option<f64>,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            state: State::Normal,
            active: false,
            raw: false,
            raw_since: None,
            active_since: None,
            acked_by: None,
            acked_at: None,
            comment: None,
            shelved_until: None,
            shelve_reason: None,
            out_of_service: None,
            value: Value::Null,
            quality: AlarmQuality::Bad,
            peak: None,
        }
    }
}

impl Runtime {
    fn from_row(r: StateRow) -> Runtime {
        Runtime {
            state: State::parse(&r.state),
            active: r.active,
            raw: r.raw,
            raw_since: r.raw_since,
            active_since: r.active_since,
            acked_by: r.acked_by,
            acked_at: r.acked_at,
            comment: r.comment,
            shelved_until: r.shelved_until,
            shelve_reason: r.shelve_reason,
            out_of_service: r.out_of_service,
            value: r
                .value
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or(Value::Null),
            quality: AlarmQuality::Bad,
            peak: r.peak,
        }
    }
}

/// One alarm as lists and pushes show it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmInfo {
    pub id: String,
    pub park: String,
    pub tag: String,
    pub condition: Condition,
    pub priority: Priority,
    pub state: State,
    pub shelved_until: Option<DateTime<Utc>>,
    pub out_of_service: bool,
    pub message: Message,
    pub value: Value,
    /// The limit (limit conditions) or the compared value (`equals`, `not_equals`).
    pub limit: Value,
    pub active_since: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub quality: AlarmQuality,
}

impl AlarmInfo {
    /// Shown in the alarm list: not normal, shelved, out of service or without its tag.
    pub fn listed(&self) -> bool {
        self.state != State::Normal
            || self.shelved_until.is_some()
            || self.out_of_service
            || self.quality == AlarmQuality::TagMissing
    }
}

/// Why an operator action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Invalid(String),
}

/// The evaluator.
pub struct Evaluator {
    defs: Vec<Def>,
    rt: Vec<Runtime>,
    by_id: HashMap<String, usize>,
    /// park → tag name (without index) → alarms on it.
    by_tag: HashMap<String, HashMap<String, Vec<usize>>>,
    /// park → its `comm` alarm.
    comm: Vec<(String, usize)>,
    /// Alarms whose condition differs from their active state, waiting on a delay.
    pending: BTreeSet<usize>,
    /// Changed since the last [`Evaluator::take_changed`] (for pushes).
    changed: Vec<bool>,
    changed_list: Vec<usize>,
    /// To be persisted (state rows) since the last [`Evaluator::take_writes`].
    persist: Vec<bool>,
    persist_list: Vec<usize>,
    journal: Vec<JournalEntry>,
    /// State rows recorded before a [`Evaluator::reconfigure`], stored with the next writes.
    carried: Vec<StateRow>,
    max_shelve_minutes: u32,
}

impl Evaluator {
    /// The alarms of `cfg` (with the built-in `comm` ones), resuming from `stored` states.
    pub fn new(cfg: &Config, stored: Vec<StateRow>) -> Evaluator {
        let defs: Vec<Def> = cfg.all_alarms().iter().map(Def::from_config).collect();
        let mut by_id = HashMap::with_capacity(defs.len());
        let mut by_tag: HashMap<String, HashMap<String, Vec<usize>>> = HashMap::new();
        let mut comm = Vec::new();
        for (i, d) in defs.iter().enumerate() {
            by_id.insert(d.id.clone(), i);
            if d.condition == Condition::Comm {
                comm.push((d.park.clone(), i));
            } else if d.condition == Condition::CalDue {
                // Told by `cal_due`, never by a value.
            } else {
                by_tag
                    .entry(d.park.clone())
                    .or_default()
                    .entry(d.base.clone())
                    .or_default()
                    .push(i);
            }
        }
        let mut rt = vec![Runtime::default(); defs.len()];
        for row in stored {
            if let Some(&i) = by_id.get(&row.alarm) {
                rt[i] = Runtime::from_row(row);
            }
        }
        for (i, d) in defs.iter().enumerate() {
            if matches!(d.condition, Condition::Comm | Condition::CalDue) {
                rt[i].quality = AlarmQuality::Good;
            }
        }
        let n = defs.len();
        let mut e = Evaluator {
            defs,
            rt,
            by_id,
            by_tag,
            comm,
            pending: BTreeSet::new(),
            changed: vec![false; n],
            changed_list: Vec::new(),
            persist: vec![false; n],
            persist_list: Vec::new(),
            journal: Vec::new(),
            carried: Vec::new(),
            max_shelve_minutes: cfg.alarm_settings.max_shelve_minutes,
        };
        for i in 0..n {
            if e.rt[i].raw != e.rt[i].active {
                e.pending.insert(i);
            }
        }
        e
    }

    /// Takes the definitions of `cfg` (a configuration changed while running). An alarm whose
    /// id stays keeps its state (acknowledged, shelved, out of service, active); if its
    /// definition changed, its condition is evaluated afresh from the next value (the caller
    /// re-reads the live values), so a limit moved past the value clears it through its
    /// off-delay. A removed alarm that was active is cleared in the journal ("removed from the
    /// configuration"), which closes its incident; a new alarm starts normal. What was recorded
    /// but not yet taken ([`Evaluator::take_writes`], [`Evaluator::take_changed`]) is kept.
    pub fn reconfigure(&mut self, cfg: &Config, now: DateTime<Utc>) {
        let mut next = Evaluator::new(cfg, Vec::new());
        for i in 0..self.defs.len() {
            if next.index_of(&self.defs[i].id).is_none() && self.rt[i].active {
                let r = &mut self.rt[i];
                r.active = false;
                r.raw = false;
                r.state = State::Normal;
                self.record(
                    i,
                    "clear",
                    None,
                    Some("removed from the configuration"),
                    now,
                );
            }
        }
        // What waits to be stored (removed alarms' last state included) is stored first.
        let (rows, journal) = self.take_writes();
        next.carried = rows;
        next.journal = journal;
        for j in 0..next.defs.len() {
            let Some(i) = self.index_of(&next.defs[j].id) else {
                continue;
            };
            let mut r = self.rt[i].clone();
            if self.defs[i] != next.defs[j] {
                if !matches!(next.defs[j].condition, Condition::Comm | Condition::CalDue) {
                    // The old condition says nothing about the new one: wait for a value.
                    r.raw = r.active;
                    r.raw_since = None;
                    r.quality = AlarmQuality::Bad;
                }
                next.mark_persist(j);
                next.mark_changed(j);
            }
            if r.raw != r.active {
                next.pending.insert(j);
            }
            next.rt[j] = r;
            if self.changed[i] {
                next.mark_changed(j);
            }
        }
        *self = next;
    }

    /// Number of definitions.
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// True without definitions (never: every park has its `comm` alarm).
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// The definitions (for resynchronising from the cache).
    pub fn defs(&self) -> &[Def] {
        &self.defs
    }

    /// The index of alarm `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// The park of alarm `id`.
    pub fn park_of(&self, id: &str) -> Option<&str> {
        self.index_of(id).map(|i| self.defs[i].park.as_str())
    }

    /// One value the PLC reported for `park`/`tag`.
    pub fn sample(&mut self, park: &str, tag: &str, v: &TagValue, now: DateTime<Utc>) {
        let Some(list) = self.by_tag.get(park).and_then(|t| t.get(tag)) else {
            return;
        };
        // Alarms on one tag are few; indices are copied out so `self` can be borrowed mutably.
        let list: smallvec_like::Few = list.iter().copied().collect();
        for i in list.iter() {
            self.evaluate(i, v, now);
        }
    }

    fn evaluate(&mut self, i: usize, v: &TagValue, now: DateTime<Utc>) {
        let d = &self.defs[i];
        let value = match d.index {
            Some(k) => v.value.get(k),
            None => Some(&v.value),
        };
        let Some(value) = value else {
            self.set_quality(i, AlarmQuality::TagMissing);
            return;
        };
        if v.quality != Quality::Good {
            self.set_quality(i, AlarmQuality::Bad);
            return;
        }
        let Some(holds) = d.holds(value, self.rt[i].raw) else {
            self.set_quality(i, AlarmQuality::Bad);
            return;
        };
        let x = number(value);
        let high = matches!(d.condition, Condition::High | Condition::HighHigh);
        let low = matches!(d.condition, Condition::Low | Condition::LowLow);
        let r = &mut self.rt[i];
        if r.value != *value {
            r.value = value.clone();
        }
        if r.active {
            if let Some(x) = x {
                r.peak = Some(match r.peak {
                    Some(p) if high => p.max(x),
                    Some(p) if low => p.min(x),
                    _ => x,
                });
            }
        }
        self.set_quality(i, AlarmQuality::Good);
        self.set_raw(i, holds, now);
    }

    /// The value of `<park>`'s tags cannot be trusted (the PLC is not connected): no alarm of
    /// the park raises or clears until fresh good values arrive.
    fn park_bad(&mut self, park: &str) {
        let all: Vec<usize> = self
            .by_tag
            .get(park)
            .map(|t| t.values().flatten().copied().collect())
            .unwrap_or_default();
        for i in all {
            if self.rt[i].quality == AlarmQuality::Good {
                self.set_quality(i, AlarmQuality::Bad);
            }
        }
    }

    fn set_quality(&mut self, i: usize, q: AlarmQuality) {
        if self.rt[i].quality == q {
            return;
        }
        let was_listed = self.info(i).listed();
        self.rt[i].quality = q;
        if q != AlarmQuality::Good {
            // A condition must hold for the whole delay: an unknown value interrupts it.
            let r = &mut self.rt[i];
            if r.raw != r.active {
                r.raw = r.active;
                r.raw_since = None;
                self.pending.remove(&i);
            }
        }
        if was_listed || self.info(i).listed() {
            self.mark_changed(i);
        }
    }

    fn set_raw(&mut self, i: usize, raw: bool, now: DateTime<Utc>) {
        let r = &mut self.rt[i];
        if r.raw != raw {
            r.raw = raw;
            r.raw_since = Some(now);
            let delayed = if raw {
                self.defs[i].on_delay
            } else {
                self.defs[i].off_delay
            };
            if delayed > Duration::zero() && raw != r.active {
                self.mark_persist(i);
            }
        }
        self.settle(i, now);
    }

    /// Applies the on/off delay: the active state follows the condition once it held long
    /// enough.
    fn settle(&mut self, i: usize, now: DateTime<Utc>) {
        let r = &self.rt[i];
        if r.raw == r.active {
            self.pending.remove(&i);
            return;
        }
        let delay = if r.raw {
            self.defs[i].on_delay
        } else {
            self.defs[i].off_delay
        };
        let since = r.raw_since.unwrap_or(now);
        if now - since >= delay {
            self.pending.remove(&i);
            let raw = r.raw;
            self.transition(i, raw, now);
        } else {
            self.pending.insert(i);
        }
    }

    fn transition(&mut self, i: usize, active: bool, now: DateTime<Utc>) {
        let r = &mut self.rt[i];
        r.active = active;
        let event = if active {
            r.state = State::Unack;
            r.active_since = Some(now);
            r.acked_by = None;
            r.acked_at = None;
            r.comment = None;
            r.peak = number(&r.value);
            "raise"
        } else {
            r.state = match r.state {
                State::Unack | State::RtnUnack => State::RtnUnack,
                State::Acked | State::Normal => State::Normal,
            };
            "clear"
        };
        self.record(i, event, None, None, now);
    }

    /// Journals an event of alarm `i` and marks it changed and to be persisted.
    fn record(
        &mut self,
        i: usize,
        event: &str,
        actor: Option<&str>,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) {
        let (d, r) = (&self.defs[i], &self.rt[i]);
        self.journal.push(JournalEntry {
            ts: now,
            alarm: d.id.clone(),
            park: d.park.clone(),
            priority: d.priority.as_str().into(),
            event: event.into(),
            state: r.state.as_str().into(),
            value: (!r.value.is_null()).then(|| r.value.to_string()),
            actor: actor.map(str::to_string),
            comment: comment.map(str::to_string),
            peak: r.peak,
        });
        self.mark_persist(i);
        self.mark_changed(i);
    }

    fn mark_changed(&mut self, i: usize) {
        if !self.changed[i] {
            self.changed[i] = true;
            self.changed_list.push(i);
        }
    }

    fn mark_persist(&mut self, i: usize) {
        if !self.persist[i] {
            self.persist[i] = true;
            self.persist_list.push(i);
        }
    }

    /// The connection state of `park` (its `comm` alarm; values of a disconnected park are bad).
    pub fn status(&mut self, park: &str, connected: bool, now: DateTime<Utc>) {
        if !connected {
            self.park_bad(park);
        }
        if let Some(&(_, i)) = self.comm.iter().find(|(p, _)| p == park) {
            self.rt[i].value = Value::Bool(connected);
            self.set_raw(i, !connected, now);
        }
    }

    /// Whether calibration `calibration` is due (its `<id>.cal_due` alarm raises or clears).
    pub fn cal_due(&mut self, calibration: &str, due: bool, now: DateTime<Utc>) {
        let id = crate::config::cal_due_alarm_id(calibration);
        if let Some(i) = self.index_of(&id) {
            self.rt[i].value = Value::Bool(due);
            self.set_raw(i, due, now);
        }
    }

    /// Tags of a connected `park` that the PLC does not have show as `tag_missing`.
    pub fn check_tags(&mut self, park: &str, has: impl Fn(&str, Option<usize>) -> bool) {
        let all: Vec<usize> = self
            .by_tag
            .get(park)
            .map(|t| t.values().flatten().copied().collect())
            .unwrap_or_default();
        for i in all {
            let d = &self.defs[i];
            let present = has(&d.base, d.index);
            let q = self.rt[i].quality;
            if !present && q != AlarmQuality::TagMissing {
                self.set_quality(i, AlarmQuality::TagMissing);
            } else if present && q == AlarmQuality::TagMissing {
                self.set_quality(i, AlarmQuality::Bad);
            }
        }
    }

    /// Delays that ran out and shelves that expired.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        let due: Vec<usize> = self.pending.iter().copied().collect();
        for i in due {
            self.settle(i, now);
        }
        let expired: Vec<usize> = (0..self.rt.len())
            .filter(|&i| matches!(self.rt[i].shelved_until, Some(t) if t <= now))
            .collect();
        for i in expired {
            self.rt[i].shelved_until = None;
            self.rt[i].shelve_reason = None;
            self.record(i, "unshelve", None, Some("shelve time over"), now);
        }
    }

    /// Whether acknowledging alarm `i` would change it.
    pub fn ackable(&self, i: usize) -> bool {
        matches!(self.rt[i].state, State::Unack | State::RtnUnack)
    }

    /// Acknowledges alarm `i`; returns the state after.
    pub fn ack(&mut self, i: usize, who: &str, comment: Option<&str>, now: DateTime<Utc>) -> State {
        let r = &mut self.rt[i];
        match r.state {
            State::Unack => r.state = State::Acked,
            State::RtnUnack => r.state = State::Normal,
            State::Acked | State::Normal => return r.state,
        }
        r.acked_by = Some(who.to_string());
        r.acked_at = Some(now);
        r.comment = comment.map(str::to_string);
        self.record(i, "ack", Some(who), comment, now);
        self.rt[i].state
    }

    /// Checks a shelve request (minutes within the configured maximum).
    pub fn check_shelve(&self, minutes: u32) -> Result<(), Refusal> {
        if minutes == 0 || minutes > self.max_shelve_minutes {
            return Err(Refusal::Invalid(format!(
                "minutes must be between 1 and {} (alarm_settings.max_shelve_minutes)",
                self.max_shelve_minutes
            )));
        }
        Ok(())
    }

    /// Shelves alarm `i` for `minutes`.
    pub fn shelve(
        &mut self,
        i: usize,
        minutes: u32,
        who: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_shelve(minutes)?;
        self.rt[i].shelved_until = Some(now + Duration::minutes(i64::from(minutes)));
        self.rt[i].shelve_reason = Some(reason.to_string());
        self.record(i, "shelve", Some(who), Some(reason), now);
        Ok(())
    }

    /// Returns a shelved alarm `i` to annunciation (no-op when not shelved).
    pub fn unshelve(&mut self, i: usize, who: &str, now: DateTime<Utc>) -> bool {
        if self.rt[i].shelved_until.is_none() {
            return false;
        }
        self.rt[i].shelved_until = None;
        self.rt[i].shelve_reason = None;
        self.record(i, "unshelve", Some(who), None, now);
        true
    }

    /// Takes alarm `i` out of service (`Some(reason)`) or returns it (`None`); false when
    /// nothing changes.
    pub fn set_service(
        &mut self,
        i: usize,
        out: Option<&str>,
        who: &str,
        now: DateTime<Utc>,
    ) -> bool {
        if self.rt[i].out_of_service.is_some() == out.is_some() {
            return false;
        }
        self.rt[i].out_of_service = out.map(str::to_string);
        let event = if out.is_some() {
            "out_of_service"
        } else {
            "in_service"
        };
        self.record(i, event, Some(who), out, now);
        true
    }

    /// Alarm `i` as lists show it.
    pub fn info(&self, i: usize) -> AlarmInfo {
        let (d, r) = (&self.defs[i], &self.rt[i]);
        AlarmInfo {
            id: d.id.clone(),
            park: d.park.clone(),
            tag: d.tag.clone(),
            condition: d.condition,
            priority: d.priority,
            state: r.state,
            shelved_until: r.shelved_until,
            out_of_service: r.out_of_service.is_some(),
            message: d.message.clone(),
            value: r.value.clone(),
            limit: match (d.limit, &d.value) {
                (Some(l), _) => serde_json::Number::from_f64(l)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                (None, Some(v)) => v.clone(),
                (None, None) => Value::Null,
            },
            active_since: r.active_since,
            acked_by: r.acked_by.clone(),
            acked_at: r.acked_at,
            comment: r.comment.clone(),
            quality: r.quality,
        }
    }

    /// The listed alarms of the parks `visible` admits, sorted by state, priority, then newest
    /// first.
    pub fn list(&self, visible: impl Fn(&str) -> bool) -> Vec<AlarmInfo> {
        let mut out: Vec<AlarmInfo> = (0..self.defs.len())
            .filter(|&i| visible(&self.defs[i].park))
            .map(|i| self.info(i))
            .filter(AlarmInfo::listed)
            .collect();
        out.sort_by(|a, b| {
            (a.state, a.priority)
                .cmp(&(b.state, b.priority))
                .then(b.active_since.cmp(&a.active_since))
                .then(a.id.cmp(&b.id))
        });
        out
    }

    /// Every alarm of the parks `visible` admits (listed or not), in definition order.
    pub fn all(&self, visible: impl Fn(&str) -> bool) -> Vec<AlarmInfo> {
        (0..self.defs.len())
            .filter(|&i| visible(&self.defs[i].park))
            .map(|i| self.info(i))
            .collect()
    }

    /// How many alarms are `tag_missing`.
    pub fn tag_missing(&self) -> usize {
        self.rt
            .iter()
            .filter(|r| r.quality == AlarmQuality::TagMissing)
            .count()
    }

    /// Currently active alarms: `(id, active since)` (standing-alarm figures).
    pub fn active_since(&self, visible: impl Fn(&str) -> bool) -> Vec<(String, DateTime<Utc>)> {
        (0..self.defs.len())
            .filter(|&i| self.rt[i].active && visible(&self.defs[i].park))
            .filter_map(|i| Some((self.defs[i].id.clone(), self.rt[i].active_since?)))
            .collect()
    }

    /// The alarms changed since the last call, in the order they first changed.
    pub fn take_changed(&mut self) -> Vec<AlarmInfo> {
        let list = std::mem::take(&mut self.changed_list);
        list.into_iter()
            .map(|i| {
                self.changed[i] = false;
                self.info(i)
            })
            .collect()
    }

    /// Whether anything waits in [`Evaluator::take_changed`].
    pub fn has_changes(&self) -> bool {
        !self.changed_list.is_empty()
    }

    /// The state rows and journal events recorded since the last call.
    pub fn take_writes(&mut self) -> (Vec<StateRow>, Vec<JournalEntry>) {
        let list = std::mem::take(&mut self.persist_list);
        let mut rows = std::mem::take(&mut self.carried);
        let own: Vec<StateRow> = list
            .into_iter()
            .map(|i| {
                self.persist[i] = false;
                let (d, r) = (&self.defs[i], &self.rt[i]);
                StateRow {
                    alarm: d.id.clone(),
                    state: r.state.as_str().into(),
                    active: r.active,
                    raw: r.raw,
                    raw_since: r.raw_since,
                    active_since: r.active_since,
                    acked_by: r.acked_by.clone(),
                    acked_at: r.acked_at,
                    comment: r.comment.clone(),
                    shelved_until: r.shelved_until,
                    shelve_reason: r.shelve_reason.clone(),
                    out_of_service: r.out_of_service.clone(),
                    value: (!r.value.is_null()).then(|| r.value.to_string()),
                    peak: r.peak,
                }
            })
            .collect();
        rows.extend(own);
        (rows, std::mem::take(&mut self.journal))
    }
}

/// A tiny inline list of alarm indices (most tags carry one or two alarms).
mod smallvec_like {
    /// Up to four indices inline, more on the heap.
    pub enum Few {
        Inline([usize; 4], usize),
        Heap(Vec<usize>),
    }

    impl FromIterator<usize> for Few {
        fn from_iter<I: IntoIterator<Item = usize>>(it: I) -> Self {
            let mut a = [0; 4];
            let mut n = 0;
            let mut it = it.into_iter();
            for x in it.by_ref() {
                if n == 4 {
                    let mut v = a.to_vec();
                    v.push(x);
                    v.extend(it);
                    return Few::Heap(v);
                }
                a[n] = x;
                n += 1;
            }
            Few::Inline(a, n)
        }
    }

    impl Few {
        pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
            let s: &[usize] = match self {
                Few::Inline(a, n) => &a[..*n],
                Few::Heap(v) => v,
            };
            s.iter().copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(alarms: &str) -> Config {
        Config::parse(
            Path::new("t.json"),
            &format!(
                r#"{{"plc_config":[{{"id":"p","url":"opc.tcp://h:1","name":"P"}}],
                "common_root_node_id":"ns=4;i=2","broadcast_interval_seconds":1,
                "plc_reconnect_delay_minutes":1,"alarms":{alarms}}}"#
            ),
        )
        .unwrap()
    }

    fn good(v: Value) -> TagValue {
        TagValue {
            value: v,
            quality: Quality::Good,
            reason: None,
            ts: None,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    const HIGH: &str = r#"[{"id":"hi","tag":"p/P","condition":"high","limit":100,"deadband":10,
        "on_delay_seconds":2,"priority":"high","message":"m"},
        {"id":"cut","tag":"p/C[1]","condition":"equals","value":true,"priority":"low","message":"c"}]"#;

    fn state(e: &Evaluator, id: &str) -> State {
        e.info(e.index_of(id).unwrap()).state
    }

    #[test]
    fn reconfigure_keeps_unchanged_state_re_evaluates_changed_and_clears_removed() {
        let three = r#"[{"id":"keep","tag":"p/P","condition":"high","limit":100,"priority":"high","message":"k"},
            {"id":"move","tag":"p/P","condition":"high","limit":100,"priority":"low","message":"m"},
            {"id":"gone","tag":"p/P","condition":"high","limit":100,"priority":"low","message":"g"}]"#;
        let mut e = Evaluator::new(&cfg(three), Vec::new());
        e.sample("p", "P", &good(serde_json::json!(150)), t(0));
        let k = e.index_of("keep").unwrap();
        e.ack(k, "ann", None, t(1));
        e.take_writes();
        e.take_changed();

        let next = r#"[{"id":"move","tag":"p/P","condition":"high","limit":200,"priority":"low","message":"m"},
            {"id":"keep","tag":"p/P","condition":"high","limit":100,"priority":"high","message":"k"},
            {"id":"new","tag":"p/P","condition":"high","limit":100,"priority":"urgent","message":"n"}]"#;
        e.reconfigure(&cfg(next), t(2));
        assert!(e.index_of("gone").is_none());
        assert_eq!(state(&e, "keep"), State::Acked);
        assert_eq!(
            e.info(e.index_of("keep").unwrap()).acked_by.as_deref(),
            Some("ann")
        );
        assert_eq!(
            state(&e, "move"),
            State::Unack,
            "kept until a value says otherwise"
        );
        assert_eq!(state(&e, "new"), State::Normal);
        let (rows, journal) = e.take_writes();
        let gone = rows
            .iter()
            .find(|r| r.alarm == "gone")
            .expect("its cleared state is stored");
        assert!(!gone.active && gone.state == "normal");
        assert_eq!(
            journal
                .iter()
                .map(|j| (j.alarm.as_str(), j.event.as_str()))
                .collect::<Vec<_>>(),
            [("gone", "clear")]
        );
        assert_eq!(
            journal[0].comment.as_deref(),
            Some("removed from the configuration")
        );

        // The current value against the new definitions.
        e.sample("p", "P", &good(serde_json::json!(150)), t(3));
        assert_eq!(state(&e, "keep"), State::Acked);
        assert_eq!(state(&e, "move"), State::RtnUnack);
        assert_eq!(state(&e, "new"), State::Unack);
        let (_, journal) = e.take_writes();
        let keep_events = journal.iter().filter(|j| j.alarm == "keep").count();
        assert_eq!(keep_events, 0, "an unchanged alarm is not raised again");
    }

    #[test]
    fn on_delay_deadband_ack_and_return() {
        let mut e = Evaluator::new(&cfg(HIGH), vec![]);
        e.sample("p", "P", &good(json(150.0)), t(0));
        assert_eq!(state(&e, "hi"), State::Normal, "on-delay not over");
        e.sample("p", "P", &good(json(90.0)), t(1));
        e.tick(t(3));
        assert_eq!(
            state(&e, "hi"),
            State::Normal,
            "did not hold for the whole delay"
        );
        e.sample("p", "P", &good(json(150.0)), t(4));
        e.tick(t(5));
        assert_eq!(state(&e, "hi"), State::Normal);
        e.tick(t(6));
        assert_eq!(state(&e, "hi"), State::Unack);
        // Inside the deadband: stays active, no new occurrence.
        e.sample("p", "P", &good(json(95.0)), t(7));
        e.sample("p", "P", &good(json(105.0)), t(8));
        assert_eq!(state(&e, "hi"), State::Unack);
        let i = e.index_of("hi").unwrap();
        assert_eq!(e.ack(i, "ann", Some("seen"), t(9)), State::Acked);
        e.sample("p", "P", &good(json(89.0)), t(10));
        assert_eq!(state(&e, "hi"), State::Normal);
        let (_, journal) = e.take_writes();
        let events: Vec<&str> = journal.iter().map(|j| j.event.as_str()).collect();
        assert_eq!(events, ["raise", "ack", "clear"]);
        assert_eq!(journal[2].peak, Some(150.0));
    }

    #[test]
    fn rtn_unack_bad_quality_and_array_elements() {
        let mut e = Evaluator::new(&cfg(HIGH), vec![]);
        e.sample("p", "C", &good(serde_json::json!([false, true])), t(0));
        assert_eq!(state(&e, "cut"), State::Unack);
        // Bad quality neither clears nor raises.
        let bad = TagValue {
            quality: Quality::Bad,
            ..good(serde_json::json!([false, false]))
        };
        e.sample("p", "C", &bad, t(1));
        let i = e.index_of("cut").unwrap();
        assert_eq!(e.info(i).state, State::Unack);
        assert_eq!(e.info(i).quality, AlarmQuality::Bad);
        e.sample("p", "C", &good(serde_json::json!([false, false])), t(2));
        assert_eq!(state(&e, "cut"), State::RtnUnack);
        assert_eq!(e.ack(i, "ann", None, t(3)), State::Normal);
        // An array shorter than the element: tag_missing.
        e.sample("p", "C", &good(serde_json::json!([true])), t(4));
        assert_eq!(e.info(i).quality, AlarmQuality::TagMissing);
        assert!(e.info(i).listed());
    }

    #[test]
    fn comm_shelve_and_restart() {
        let c = cfg(HIGH);
        let mut e = Evaluator::new(&c, vec![]);
        e.status("p", false, t(0));
        e.tick(t(5));
        assert_eq!(state(&e, "p.comm"), State::Normal);
        e.tick(t(10));
        assert_eq!(state(&e, "p.comm"), State::Unack);
        let i = e.index_of("p.comm").unwrap();
        e.ack(i, "ann", None, t(11));
        assert!(e.shelve(i, 481, "ann", "x", t(11)).is_err());
        e.shelve(i, 1, "ann", "maintenance", t(11)).unwrap();
        assert!(e.info(i).shelved_until.is_some());
        e.tick(t(72));
        assert!(e.info(i).shelved_until.is_none());
        let (rows, _) = e.take_writes();
        // Restart: acked stays acked.
        let mut e2 = Evaluator::new(&c, rows);
        assert_eq!(state(&e2, "p.comm"), State::Acked);
        e2.status("p", false, t(80));
        assert_eq!(state(&e2, "p.comm"), State::Acked);
        e2.status("p", true, t(81));
        assert_eq!(state(&e2, "p.comm"), State::Normal);
    }

    fn json(x: f64) -> Value {
        serde_json::json!(x)
    }
}
