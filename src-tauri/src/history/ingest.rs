//! From the live cache's sample seam to the writer's queue: decides per tag whether and how it
//! is recorded, applies deadband and minimum interval, and never waits (a full queue drops and
//! counts).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::codec::{Val, Q};
use super::{Historian, Kind, Rec};
use crate::config::{Config, TagHistory};
use crate::live::{Cache, Quality, SampleBatch, TagValue};

/// Array elements recorded per array tag (longer arrays are cut; PLC arrays here are short).
const MAX_ELEMENTS: usize = 1024;

/// How one series is filtered.
struct SeriesState {
    name: Arc<str>,
    kind: Kind,
    deadband: f64,
    min_ms: i64,
    last: Option<(i64, f64, Q)>,
    /// The newest sample held back by the minimum interval; stored once the interval passed, so
    /// the final value of a burst is never lost.
    held: Option<Rec>,
}

/// The recording decisions for every tag seen so far.
pub(super) struct Filter {
    cfg: Arc<Config>,
    cache: Cache,
    /// `<plc>/<tag>` → the state of its series (`None`: not recorded); arrays: one per element.
    tags: HashMap<String, Option<Vec<SeriesState>>>,
}

fn quality(q: Quality) -> Q {
    match q {
        Quality::Good => 0,
        Quality::Uncertain => 1,
        Quality::Bad => 2,
    }
}

fn kind_of(data_type: &str) -> Option<Kind> {
    match data_type {
        "Boolean" => Some(Kind::Bool),
        "SByte" | "Byte" | "Int16" | "UInt16" | "Int32" | "UInt32" | "Int64" | "UInt64"
        | "Float" | "Double" => Some(Kind::Number),
        _ => None,
    }
}

fn kind_of_value(v: &Value) -> Option<Kind> {
    match v {
        Value::Bool(_) => Some(Kind::Bool),
        Value::Number(_) => Some(Kind::Number),
        Value::Array(a) => a.iter().find(|e| !e.is_null()).and_then(kind_of_value),
        _ => None,
    }
}

fn value(kind: Kind, v: &Value) -> Val {
    match (kind, v) {
        (Kind::Text, Value::String(s)) => Val::Text(s.clone()),
        (Kind::Text, Value::Null) => Val::Text(String::new()),
        (Kind::Text, other) => Val::Text(other.to_string()),
        (_, Value::Bool(b)) => Val::Num(f64::from(u8::from(*b))),
        (_, Value::Number(n)) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
        // Int64/UInt64 beyond 2^53 arrive as decimal strings.
        (_, Value::String(s)) => Val::Num(s.parse().unwrap_or(f64::NAN)),
        _ => Val::Num(f64::NAN),
    }
}

impl Filter {
    pub fn new(cfg: Arc<Config>, cache: Cache) -> Self {
        Self {
            cfg,
            cache,
            tags: HashMap::new(),
        }
    }

    /// The series of a tag the first time it is seen.
    fn plan(&self, plc: &str, tag: &str, v: &TagValue) -> Option<Vec<SeriesState>> {
        let h = &self.cfg.history;
        let tcfg = self.cfg.tag(plc, tag).and_then(|t| t.history);
        let filter = match tcfg {
            Some(TagHistory::Off) => return None,
            Some(TagHistory::On(f)) => Some(f),
            None => None,
        };
        let meta = self.cache.tag_meta(plc, tag);
        let kind = match meta.as_ref().map(|m| m.data_type.as_str()) {
            Some(t) => kind_of(t),
            None => kind_of_value(&v.value),
        };
        // Strings, DateTimes and anything else only when the tag says `history: true`.
        let kind = kind.or(filter.map(|_| Kind::Text))?;
        let elements = match (&v.value, meta.as_ref().and_then(|m| m.array_size)) {
            (Value::Array(a), _) => Some(a.len().min(MAX_ELEMENTS)),
            (_, Some(n)) => Some((n as usize).min(MAX_ELEMENTS)),
            _ => None,
        };
        let min_s = filter
            .and_then(|f| f.min_interval_seconds)
            .unwrap_or(h.min_interval_seconds);
        let state = |name: String| SeriesState {
            name: name.into(),
            kind,
            deadband: filter.and_then(|f| f.deadband).unwrap_or(0.0),
            min_ms: (min_s * 1000.0).round() as i64,
            last: None,
            held: None,
        };
        Some(match elements {
            Some(n) => (0..n).map(|i| state(format!("{plc}/{tag}[{i}]"))).collect(),
            None => vec![state(format!("{plc}/{tag}"))],
        })
    }

    /// The samples of one batch that pass the filters.
    pub fn batch(&mut self, b: &SampleBatch, out: &mut Vec<Rec>) {
        for u in &b.values {
            let key = format!("{}/{}", b.plc, u.tag);
            if !self.tags.contains_key(&key) {
                if self.tags.len() >= super::MAX_SERIES {
                    continue;
                }
                let plan = self.plan(&b.plc, &u.tag, &u.value);
                self.tags.insert(key.clone(), plan);
            }
            let Some(Some(series)) = self.tags.get_mut(&key) else {
                continue;
            };
            let t = u
                .value
                .ts
                .unwrap_or_else(chrono::Utc::now)
                .timestamp_millis();
            let q = quality(u.value.quality);
            match &u.value.value {
                Value::Array(a) if series.len() > 1 || a.len() > 1 => {
                    for (s, e) in series.iter_mut().zip(a) {
                        offer(s, t, value(s.kind, e), q, out);
                    }
                }
                other => {
                    if let Some(s) = series.first_mut() {
                        offer(s, t, value(s.kind, other), q, out);
                    }
                }
            }
        }
    }

    /// Takes a new configuration: samples held back by the old minimum interval are stored
    /// now, and every tag is planned afresh from its next sample (which is stored, like a first
    /// one).
    pub fn reconfigure(&mut self, cfg: Arc<Config>, out: &mut Vec<Rec>) {
        for s in self.tags.values_mut().flatten().flatten() {
            if let Some(h) = s.held.take() {
                store(s, h, out);
            }
        }
        self.tags.clear();
        self.cfg = cfg;
    }

    /// Stores held-back samples whose interval has passed by `now` (Unix ms).
    pub fn tick(&mut self, now: i64, out: &mut Vec<Rec>) {
        for s in self.tags.values_mut().flatten().flatten() {
            let Some((last_t, _, _)) = s.last else {
                continue;
            };
            if now.saturating_sub(last_t) >= s.min_ms {
                if let Some(mut r) = s.held.take() {
                    // Stamped at the end of the interval, so stored samples stay at least the
                    // interval apart (the value was current then, too).
                    r.t = r.t.max(last_t.saturating_add(s.min_ms));
                    store(s, r, out);
                }
            }
        }
    }
}

fn store(s: &mut SeriesState, r: Rec, out: &mut Vec<Rec>) {
    let v = match &r.v {
        Val::Num(x) => *x,
        Val::Text(_) => f64::NAN,
    };
    s.last = Some((r.t, v, r.q));
    out.push(r);
}

/// Deadband and minimum interval; a quality change always passes (after the held sample).
fn offer(s: &mut SeriesState, t: i64, v: Val, q: Q, out: &mut Vec<Rec>) {
    let rec = Rec {
        series: s.name.clone(),
        kind: s.kind,
        t,
        v,
        q,
    };
    let Some((lt, lv, lq)) = s.last else {
        return store(s, rec, out);
    };
    if q != lq {
        if let Some(h) = s.held.take() {
            store(s, h, out);
        }
        return store(s, rec, out);
    }
    if let (Val::Num(x), true) = (&rec.v, s.deadband > 0.0) {
        if (x - lv).abs() < s.deadband {
            return;
        }
    }
    if t.saturating_sub(lt) < s.min_ms {
        s.held = Some(rec);
        return;
    }
    s.held = None;
    store(s, rec, out);
}

fn ticker(cfg: &Config) -> tokio::time::Interval {
    let period = std::time::Duration::from_secs_f64(cfg.history.flush_seconds.clamp(0.05, 60.0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Feeds the historian from the cache until the cache's sample channel closes; a new
/// configuration on `cfg` replaces the recording decisions (see [`Filter::reconfigure`]).
pub(super) async fn run(
    h: Historian,
    cache: Cache,
    mut cfg: tokio::sync::watch::Receiver<Arc<Config>>,
) {
    let mut rx = cache.samples();
    let first = cfg.borrow_and_update().clone();
    let mut tick = ticker(&first);
    let mut filter = Filter::new(first, cache);
    let mut out = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(b) => filter.batch(&b, &mut out),
                Err(RecvError::Lagged(n)) => h.lagged(n),
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => filter.tick(chrono::Utc::now().timestamp_millis(), &mut out),
            changed = cfg.changed(), if open => {
                if changed.is_err() {
                    // No one can change it any more: keep recording as configured.
                    open = false;
                    continue;
                }
                let new = cfg.borrow_and_update().clone();
                tick = ticker(&new);
                filter.reconfigure(new, &mut out);
            }
        }
        if !out.is_empty() {
            h.push(std::mem::take(&mut out));
        }
    }
}
