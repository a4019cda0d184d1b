//! The live picture: latest value per tag of every PLC, with change sequence numbers.
//!
//! The engine writes into it; transports read full snapshots and deltas. Writers never wait on
//! readers for more than a short critical section, and listeners are woken through a
//! `tokio::sync::watch` channel, which never blocks the sender and naturally coalesces: a slow
//! listener sees only the newest sequence number.
//!
//! Two views of the values leave the cache:
//! - the *display* view ([`Cache::changes_since`], [`Cache::changes_since_every`]): the latest
//!   value per tag, plus (for the live fan-out) the few values a tag had in between, so that a
//!   change is never lost only because several arrived in one publish response or between two
//!   fan-out wake-ups;
//! - the *sample* seam ([`Cache::samples`]): every value the engine reported, batch by batch, in
//!   order, before any coalescing — what a historian or alarm evaluation must see. It is a bounded
//!   `tokio::sync::broadcast`: the engine never waits on a listener; a listener that falls more
//!   than [`SAMPLE_BATCHES`] batches behind gets `RecvError::Lagged(n)` and must count the loss.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::config::TagConfig;

/// Batches the sample seam buffers per listener (one batch = one publish response or one poll).
pub const SAMPLE_BATCHES: usize = 1024;

/// Values a tag keeps between two fan-out wake-ups besides its latest (older ones coalesce).
/// At 10 Hz and a 0.1 s broadcast interval a tag rarely has more than one; four covers a
/// publish response that was late by several intervals.
pub const KEPT_BETWEEN: usize = 4;

/// The smallest source-time gap at which two values of a tag are both shown, for a broadcast
/// `interval`: three quarters of it, so that changes one interval apart survive the PLC's and
/// the sampler's timestamp jitter, while faster flicker coalesces into one display update.
pub fn distinct_gap(interval: std::time::Duration) -> std::time::Duration {
    interval * 3 / 4
}

/// Every value one PLC reported in one batch, in the order reported (see [`Cache::samples`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleBatch {
    pub plc: String,
    pub values: Vec<ValueUpdate>,
}

/// Connection state of one PLC; serialised as the wire contract's upper-case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlcStatus {
    #[default]
    Disconnected,
    Connecting,
    Connected,
    Error,
}

impl PlcStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PlcStatus::Disconnected => "DISCONNECTED",
            PlcStatus::Connecting => "CONNECTING",
            PlcStatus::Connected => "CONNECTED",
            PlcStatus::Error => "ERROR",
        }
    }
}

/// OPC UA quality reduced to the three classes an operator cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    Good,
    Uncertain,
    #[default]
    Bad,
}

/// What the PLC told us about a variable at discovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagMeta {
    /// Browse path below the root joined with `/`, e.g. `Meteo/Irradiance_W_m2`.
    pub name: String,
    /// The NodeId in OPC UA text form.
    pub node_id: String,
    /// OPC UA built-in data type name: `Boolean`, `Int16`, `Float`, `String`, …
    #[serde(rename = "type")]
    pub data_type: String,
    /// Length of a one-dimensional array value; `None` for scalars.
    pub array_size: Option<u32>,
    /// The PLC allows writing (AccessLevel and UserAccessLevel both have CurrentWrite).
    pub writable: bool,
    /// NodeIds of element children `[0]`, `[1]`, … where the PLC exposes them.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub element_node_ids: Vec<String>,
}

/// Engineering metadata a remote source carries with a tag (a Sparkplug DBIRTH's `engUnit`,
/// `engLow`/`engHigh`): shown when config `tags` says nothing, so a hub needs no copy of every
/// edge's tag configuration. Config `tags` wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMeta {
    pub unit: Option<String>,
    pub range: Option<[f64; 2]>,
}

/// The latest value of a tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagValue {
    /// Typed JSON: numbers, booleans, strings, arrays; Int64/UInt64 beyond 2^53 as strings;
    /// DateTime as RFC 3339. `null` before the first value arrives.
    pub value: serde_json::Value,
    pub quality: Quality,
    /// Why the quality is not good: an OPC UA status name (`BadSensorFailure`) or
    /// `not_connected` when the PLC dropped. `None` when good.
    pub reason: Option<String>,
    /// Source timestamp (or server/receive time when the PLC gives none).
    pub ts: Option<DateTime<Utc>>,
}

impl Default for TagValue {
    fn default() -> Self {
        Self {
            value: serde_json::Value::Null,
            quality: Quality::Bad,
            reason: Some("no_value".into()),
            ts: None,
        }
    }
}

/// A value change as delivered by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueUpdate {
    pub tag: String,
    pub value: TagValue,
}

/// One tag in a snapshot (wire shape of the remote protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    pub name: String,
    pub node_id: String,
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub array_size: Option<u32>,
    pub value: serde_json::Value,
    pub quality: Quality,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub ts: Option<DateTime<Utc>>,
    pub writable: bool,
    /// Engineering unit from config `tags` (the PLC does not carry one).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// Engineering range `[min, max]` from config `tags`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub range: Option<[f64; 2]>,
    /// Shown on the overview (config `tags.<plc>/<tag>.key`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub key: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub description: Option<String>,
}

/// One PLC in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlcSnapshot {
    pub id: String,
    pub name: String,
    pub url: String,
    pub status: PlcStatus,
    /// Last error message while ERROR/DISCONNECTED, for diagnostics.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// The server's application name, read at connect.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server_name: Option<String>,
    pub nodes: Vec<NodeSnapshot>,
}

/// Full picture at sequence `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub seq: u64,
    pub plcs: Vec<PlcSnapshot>,
}

/// One changed value in a delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub name: String,
    /// Position of the tag in the PLC's snapshot `nodes` (the compact wire encoding refers to
    /// tags by it); not part of the JSON.
    #[serde(skip)]
    pub index: usize,
    pub value: serde_json::Value,
    pub quality: Quality,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub ts: Option<DateTime<Utc>>,
}

/// What changed on one PLC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlcDelta {
    pub id: String,
    pub status: PlcStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// True when the tag list itself changed (rediscovery): the client should take a snapshot.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub rediscovered: bool,
    pub changes: Vec<Change>,
}

/// Everything that changed after a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub seq: u64,
    pub plcs: Vec<PlcDelta>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.plcs.is_empty()
    }
}

struct TagEntry {
    meta: TagMeta,
    value: TagValue,
    seq: u64,
    /// Values this tag had before `value`, oldest first, each with the sequence at which it
    /// became current (at most [`KEPT_BETWEEN`]); emitted by [`Cache::changes_since_every`].
    earlier: std::collections::VecDeque<(u64, TagValue)>,
}

impl TagEntry {
    fn new(meta: TagMeta, value: TagValue, seq: u64) -> Self {
        Self {
            meta,
            value,
            seq,
            earlier: Default::default(),
        }
    }

    /// Makes `value` current, keeping the superseded one for the fan-out.
    fn set(&mut self, value: TagValue, seq: u64) {
        let old = std::mem::replace(&mut self.value, value);
        // The placeholder before the first value is no change anyone needs to see.
        if !(old.value.is_null() && old.ts.is_none()) {
            if self.earlier.len() == KEPT_BETWEEN {
                self.earlier.pop_front();
            }
            self.earlier.push_back((self.seq, old));
        }
        self.seq = seq;
    }

    /// The change of this tag (at `index` in its PLC's snapshot `nodes`) to `value`.
    fn change(&self, index: usize, value: &TagValue) -> Change {
        Change {
            name: self.meta.name.clone(),
            index,
            value: value.value.clone(),
            quality: value.quality,
            reason: value.reason.clone(),
            ts: value.ts,
        }
    }
}

struct PlcEntry {
    id: String,
    name: String,
    url: String,
    status: PlcStatus,
    error: Option<String>,
    server_name: Option<String>,
    /// Sequence of the last status change.
    status_seq: u64,
    /// Sequence of the last rediscovery.
    tags_seq: u64,
    tags: Vec<TagEntry>,
    index: HashMap<String, usize>,
    /// Configured metadata by tag name (unit, range, key, description).
    extras: HashMap<String, TagConfig>,
    /// Unit and range the source reported by tag name (see [`SourceMeta`]).
    source: HashMap<String, SourceMeta>,
}

struct State {
    seq: u64,
    plcs: Vec<PlcEntry>,
}

/// Shared handle to the live cache; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    state: Arc<RwLock<State>>,
    notify: Arc<watch::Sender<u64>>,
    samples: broadcast::Sender<Arc<SampleBatch>>,
}

/// Identifies a configured PLC for [`Cache::new`].
#[derive(Debug, Clone)]
pub struct PlcInfo {
    pub id: String,
    pub name: String,
    pub url: String,
    /// Configured metadata of its tags, by tag name.
    pub tags: HashMap<String, TagConfig>,
}

impl Cache {
    /// A cache for these PLCs, all DISCONNECTED and without tags.
    pub fn new(plcs: impl IntoIterator<Item = PlcInfo>) -> Self {
        let plcs = plcs
            .into_iter()
            .map(|p| PlcEntry {
                id: p.id,
                name: p.name,
                url: p.url,
                status: PlcStatus::Disconnected,
                error: None,
                server_name: None,
                status_seq: 0,
                tags_seq: 0,
                tags: Vec::new(),
                index: HashMap::new(),
                extras: p.tags,
                source: HashMap::new(),
            })
            .collect();
        let (tx, _) = watch::channel(0);
        let (samples, _) = broadcast::channel(SAMPLE_BATCHES);
        Self {
            state: Arc::new(RwLock::new(State { seq: 0, plcs })),
            notify: Arc::new(tx),
            samples,
        }
    }

    /// Built from the configuration's PLC list.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        Self::new(cfg.plc_config.iter().map(|p| {
            PlcInfo {
                id: p.id.clone(),
                name: p.name.clone(),
                url: p.url.clone(),
                tags: cfg
                    .tags
                    .iter()
                    .filter_map(|(k, t)| {
                        let (plc, tag) = k.split_once('/')?;
                        (plc == p.id).then(|| (tag.to_string(), t.clone()))
                    })
                    .collect(),
            }
        }))
    }

    /// Follows a changed configuration: PLCs that were added appear (DISCONNECTED, no tags),
    /// PLCs that were removed vanish with their values, the others keep their values and take
    /// the new name, URL and tag metadata (unit, range, key, description). Advances the
    /// sequence; clients need a fresh snapshot to see the metadata (the fan-out sends one).
    pub fn reconfigure(&self, cfg: &crate::config::Config) {
        let fresh = Self::from_config(cfg);
        let fresh = std::mem::take(&mut fresh.state.write().plcs);
        let seq = {
            let mut st = self.state.write();
            let seq = st.seq + 1;
            let mut old: HashMap<String, PlcEntry> =
                st.plcs.drain(..).map(|p| (p.id.clone(), p)).collect();
            st.plcs = fresh
                .into_iter()
                .map(|new| match old.remove(&new.id) {
                    Some(mut p) => {
                        p.name = new.name;
                        p.url = new.url;
                        p.extras = new.extras;
                        p.tags_seq = seq;
                        p
                    }
                    None => PlcEntry {
                        status_seq: seq,
                        tags_seq: seq,
                        ..new
                    },
                })
                .collect();
            st.seq = seq;
            seq
        };
        self.bump(seq);
    }

    /// Wakes on every new sequence number; never blocks the writer, coalesces for slow readers.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// Every value the engine reports, batch by batch, before the display coalesces anything:
    /// the seam for the historian and alarm evaluation. Costs nothing while nobody listens.
    pub fn samples(&self) -> broadcast::Receiver<Arc<SampleBatch>> {
        self.samples.subscribe()
    }

    /// The current sequence number.
    pub fn seq(&self) -> u64 {
        self.state.read().seq
    }

    /// Ids of all configured PLCs, in configuration order.
    pub fn plc_ids(&self) -> Vec<String> {
        self.state
            .read()
            .plcs
            .iter()
            .map(|p| p.id.clone())
            .collect()
    }

    fn bump(&self, seq: u64) {
        self.notify.send_replace(seq);
    }

    fn with_plc<R>(&self, plc: &str, f: impl FnOnce(&mut PlcEntry, u64) -> R) -> Option<R> {
        let (r, seq) = {
            let mut st = self.state.write();
            let seq = st.seq + 1;
            let p = st.plcs.iter_mut().find(|p| p.id == plc)?;
            let r = f(p, seq);
            st.seq = seq;
            (r, seq)
        };
        self.bump(seq);
        Some(r)
    }

    /// Sets a PLC's connection state (and the error text that explains ERROR/DISCONNECTED).
    /// Leaving CONNECTED marks every value of that PLC stale (`bad`, `not_connected`), keeping
    /// the last value.
    pub fn set_status(&self, plc: &str, status: PlcStatus, error: Option<String>) {
        let mut st = self.state.write();
        let seq = st.seq + 1;
        let Some(p) = st.plcs.iter_mut().find(|p| p.id == plc) else {
            return;
        };
        if p.status == status && p.error == error {
            return;
        }
        let was_connected = p.status == PlcStatus::Connected;
        p.status = status;
        p.error = error;
        p.status_seq = seq;
        // The sample seam sees the drop too (stamped now): a historian records a gap instead of
        // a straight line from the last value to the next one.
        let mut went_stale = Vec::new();
        let listening = self.samples.receiver_count() > 0;
        if was_connected && status != PlcStatus::Connected {
            let now = Utc::now();
            for t in &mut p.tags {
                if t.value.quality != Quality::Bad
                    || t.value.reason.as_deref() != Some("not_connected")
                {
                    let stale = TagValue {
                        quality: Quality::Bad,
                        reason: Some("not_connected".into()),
                        ..t.value.clone()
                    };
                    if listening {
                        went_stale.push(ValueUpdate {
                            tag: t.meta.name.clone(),
                            value: TagValue {
                                ts: Some(now),
                                ..stale.clone()
                            },
                        });
                    }
                    t.set(stale, seq);
                }
            }
        }
        let plc_id = p.id.clone();
        st.seq = seq;
        drop(st);
        self.bump(seq);
        if !went_stale.is_empty() {
            let _ = self.samples.send(Arc::new(SampleBatch {
                plc: plc_id,
                values: went_stale,
            }));
        }
    }

    /// Records the server's application name.
    pub fn set_server_name(&self, plc: &str, name: Option<String>) {
        let mut st = self.state.write();
        if let Some(p) = st.plcs.iter_mut().find(|p| p.id == plc) {
            p.server_name = name;
        }
    }

    /// Replaces the tag list after (re)discovery. Tags that still exist keep their last value
    /// (stale until fresh data arrives); tags that vanished are dropped.
    pub fn set_tags(&self, plc: &str, tags: Vec<TagMeta>) {
        self.set_tags_with(plc, tags, HashMap::new());
    }

    /// [`Cache::set_tags`] with the unit and range the source reported per tag (a Sparkplug
    /// DBIRTH); config `tags` still wins in snapshots.
    pub fn set_tags_with(
        &self,
        plc: &str,
        tags: Vec<TagMeta>,
        source: HashMap<String, SourceMeta>,
    ) {
        self.with_plc(plc, |p, seq| {
            p.source = source;
            let mut old: HashMap<String, TagEntry> =
                p.tags.drain(..).map(|t| (t.meta.name.clone(), t)).collect();
            p.index.clear();
            for (i, meta) in tags.into_iter().enumerate() {
                let value = old.remove(&meta.name).map(|t| t.value).unwrap_or_default();
                p.index.insert(meta.name.clone(), i);
                p.tags.push(TagEntry::new(meta, value, seq));
            }
            p.tags_seq = seq;
        });
    }

    /// Takes a batch of value changes from the engine; unknown tags are ignored. Values equal to
    /// the current one (value, quality, timestamp) do not advance the sequence. A batch may hold
    /// several values of one tag (queued notifications of one publish response): all of them are
    /// kept for the fan-out and the sample seam, the last one is current.
    pub fn update(&self, plc: &str, updates: impl IntoIterator<Item = ValueUpdate>) -> usize {
        let updates: Vec<ValueUpdate> = updates.into_iter().collect();
        if updates.is_empty() {
            return 0;
        }
        let mut st = self.state.write();
        let seq = st.seq + 1;
        let Some(p) = st.plcs.iter_mut().find(|p| p.id == plc) else {
            return 0;
        };
        let mut n = 0;
        for u in &updates {
            if let Some(&i) = p.index.get(&u.tag) {
                let t = &mut p.tags[i];
                if t.value != u.value {
                    t.set(u.value.clone(), seq);
                    n += 1;
                }
            }
        }
        if n > 0 {
            st.seq = seq;
        }
        drop(st);
        if n > 0 {
            self.bump(seq);
        }
        if self.samples.receiver_count() > 0 {
            let _ = self.samples.send(Arc::new(SampleBatch {
                plc: plc.to_string(),
                values: updates,
            }));
        }
        n
    }

    /// Metadata of one tag (for writes and the detail screen).
    pub fn tag_meta(&self, plc: &str, tag: &str) -> Option<TagMeta> {
        let st = self.state.read();
        let p = st.plcs.iter().find(|p| p.id == plc)?;
        p.index.get(tag).map(|&i| p.tags[i].meta.clone())
    }

    /// Current value of one tag.
    pub fn value(&self, plc: &str, tag: &str) -> Option<TagValue> {
        let st = self.state.read();
        let p = st.plcs.iter().find(|p| p.id == plc)?;
        p.index.get(tag).map(|&i| p.tags[i].value.clone())
    }

    /// The sequence number of a PLC's last (re)discovery: when it changes, the tag list may
    /// have changed (the MQTT publisher then announces the device again).
    pub fn tags_version(&self, plc: &str) -> Option<u64> {
        self.state
            .read()
            .plcs
            .iter()
            .find(|p| p.id == plc)
            .map(|p| p.tags_seq)
    }

    /// Connection state of one PLC.
    pub fn status(&self, plc: &str) -> Option<PlcStatus> {
        self.state
            .read()
            .plcs
            .iter()
            .find(|p| p.id == plc)
            .map(|p| p.status)
    }

    /// The full picture of the PLCs accepted by `visible`.
    pub fn snapshot(&self, visible: impl Fn(&str) -> bool) -> Snapshot {
        let st = self.state.read();
        Snapshot {
            seq: st.seq,
            plcs: st
                .plcs
                .iter()
                .filter(|p| visible(&p.id))
                .map(|p| PlcSnapshot {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    url: p.url.clone(),
                    status: p.status,
                    error: p.error.clone(),
                    server_name: p.server_name.clone(),
                    nodes: p
                        .tags
                        .iter()
                        .map(|t| {
                            let extra = p.extras.get(&t.meta.name);
                            let src = p.source.get(&t.meta.name);
                            NodeSnapshot {
                                name: t.meta.name.clone(),
                                node_id: t.meta.node_id.clone(),
                                data_type: t.meta.data_type.clone(),
                                array_size: t.meta.array_size,
                                value: t.value.value.clone(),
                                quality: t.value.quality,
                                reason: t.value.reason.clone(),
                                ts: t.value.ts,
                                writable: t.meta.writable,
                                unit: extra
                                    .and_then(|e| e.unit.clone())
                                    .or_else(|| src.and_then(|s| s.unit.clone())),
                                range: extra
                                    .and_then(|e| e.range)
                                    .or_else(|| src.and_then(|s| s.range)),
                                key: extra.is_some_and(|e| e.key),
                                description: extra.and_then(|e| e.description.clone()),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// What changed after `since` on the PLCs accepted by `visible`: the latest value of each
    /// changed tag (a coalesced catch-up). A PLC appears when its status or any of its values
    /// changed.
    pub fn changes_since(&self, since: u64, visible: impl Fn(&str) -> bool) -> Delta {
        self.delta(since, visible, None)
    }

    /// Like [`Cache::changes_since`], but a tag that took several values after `since` appears
    /// once per value, oldest first (up to [`KEPT_BETWEEN`] + 1; older ones coalesce), so a live
    /// listener sees every change even when several arrive between two of its wake-ups (e.g.
    /// queued notifications of one publish). Values whose source timestamps lie less than
    /// `min_gap` before the next value shown coalesce into it: display coalescing within one
    /// broadcast interval is fine, dropping changes an interval apart is not. Clients apply
    /// changes in order, so the last one is what they display.
    pub fn changes_since_every(
        &self,
        since: u64,
        min_gap: std::time::Duration,
        visible: impl Fn(&str) -> bool,
    ) -> Delta {
        self.delta(since, visible, Some(min_gap))
    }

    fn delta(
        &self,
        since: u64,
        visible: impl Fn(&str) -> bool,
        every: Option<std::time::Duration>,
    ) -> Delta {
        let st = self.state.read();
        let mut plcs = Vec::new();
        for p in st.plcs.iter().filter(|p| visible(&p.id)) {
            let mut changes: Vec<Change> = Vec::new();
            for (index, t) in p.tags.iter().enumerate().filter(|(_, t)| t.seq > since) {
                if let Some(min_gap) = every {
                    // `earlier[k].0` is when that value became current: it is news only if that
                    // was after `since`. Walk back from the current value, keeping an earlier
                    // one only when it stood for at least `min_gap` (by source time; without
                    // timestamps it is kept).
                    let gap = chrono::Duration::from_std(min_gap).unwrap_or(chrono::Duration::MAX);
                    let mut next_ts = t.value.ts;
                    let first = changes.len();
                    for (s, v) in t.earlier.iter().rev() {
                        if *s <= since {
                            break;
                        }
                        let apart = match (v.ts, next_ts) {
                            (Some(a), Some(b)) => b - a >= gap,
                            _ => true,
                        };
                        if apart {
                            changes.push(t.change(index, v));
                            next_ts = v.ts;
                        }
                    }
                    changes[first..].reverse();
                }
                changes.push(t.change(index, &t.value));
            }
            if !changes.is_empty() || p.status_seq > since || p.tags_seq > since {
                plcs.push(PlcDelta {
                    id: p.id.clone(),
                    status: p.status,
                    error: p.error.clone(),
                    rediscovered: p.tags_seq > since,
                    changes,
                });
            }
        }
        Delta { seq: st.seq, plcs }
    }
}

/// When a live listener (the remote fan-out, the desktop window) should read the cache: at once
/// on the first change after a quiet spell (leading edge), then on average at most once per
/// `interval` while changes keep coming, and once more for changes that arrived during the wait
/// (trailing flush). Never a fixed tick: a value waits at most one interval, and usually not at
/// all. The schedule is a [`Budget`].
pub struct Throttle {
    changed: watch::Receiver<u64>,
    budget: Budget,
    /// A change was seen but not yet handed out (survives a cancelled [`Throttle::wait`]).
    pending: bool,
}

impl Throttle {
    /// A throttle over `cache`'s change notifications; changes before this call are not
    /// reported (the listener starts from a snapshot or `Cache::seq`).
    pub fn new(cache: &Cache, interval: std::time::Duration) -> Self {
        Self {
            changed: cache.subscribe(),
            budget: Budget::new(interval),
            pending: false,
        }
    }

    /// Waits for the next wake-up; `false` once the cache is gone. Cancel-safe: a change seen
    /// by a cancelled call is reported by the next one.
    pub async fn wait(&mut self) -> bool {
        if !self.pending {
            if self.changed.changed().await.is_err() {
                return false;
            }
            self.pending = true;
        }
        if let Some(at) = self.budget.earliest() {
            tokio::time::sleep_until(at).await;
        }
        self.changed.borrow_and_update();
        self.pending = false;
        self.budget.spend(tokio::time::Instant::now());
        true
    }
}

/// The schedule of a [`Throttle`], without the waiting; pure, so that its timing is tested with
/// chosen instants, not with a clock. Two rules:
/// - **rate**: on average at most one wake-up per interval (GCRA with a tolerance of one
///   interval: over any stretch of time no more wake-ups than intervals, plus two);
/// - **spacing**: two wake-ups at least [`Budget::SPACING`] (¾) of an interval apart.
///
/// Changes arrive on the PLC's publishing grid, usually with the same period as the broadcast
/// interval, so the rate alone never earns back time: with a minimum spacing of a whole
/// interval, or a GCRA tolerance of a quarter, one publish that came late (a loaded machine, the
/// network) delayed every later one by as much (beyond the tolerance), for as long as changes
/// kept coming. With a tolerance of one interval the rate rule never holds back a publish on
/// its grid, and the spacing rule makes up lateness by a quarter interval per publish: after a
/// publish 90 ms late at 0.1 s, the next waits 65 ms, the one after 40, then 15, then none.
#[derive(Debug, Clone)]
pub struct Budget {
    interval: std::time::Duration,
    /// When the next wake-up is due if the rate is kept exactly (the theoretical arrival time);
    /// `None` before the first.
    due: Option<tokio::time::Instant>,
    /// The last wake-up.
    last: Option<tokio::time::Instant>,
}

impl Budget {
    /// The shortest spacing of two wake-ups, in intervals.
    pub const SPACING: f64 = 0.75;

    /// A fresh budget: the first wake-up may come at once.
    pub fn new(interval: std::time::Duration) -> Self {
        Self {
            interval,
            due: None,
            last: None,
        }
    }

    /// The earliest instant the next wake-up may happen; `None`: at once.
    pub fn earliest(&self) -> Option<tokio::time::Instant> {
        let rate = self.due.map(|d| d.checked_sub(self.interval).unwrap_or(d));
        let spacing = self.last.map(|l| l + self.interval.mul_f64(Self::SPACING));
        rate.max(spacing)
    }

    /// Records a wake-up at `now` (not before [`Budget::earliest`]).
    pub fn spend(&mut self, now: tokio::time::Instant) {
        // After a quiet spell the budget starts afresh (`now` is past `due`).
        self.due = Some(self.due.map_or(now, |d| d.max(now)) + self.interval);
        self.last = Some(now);
    }

    /// When a change arriving at `at` is handed out: at once, or at [`Budget::earliest`].
    pub fn release(&self, at: tokio::time::Instant) -> tokio::time::Instant {
        self.earliest().map_or(at, |e| e.max(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn cache() -> Cache {
        let c = Cache::new(["a", "b"].map(|id| PlcInfo {
            id: id.into(),
            name: id.to_uppercase(),
            url: format!("opc.tcp://{id}:4840"),
            tags: HashMap::from([(
                "P".to_string(),
                TagConfig {
                    unit: Some("kW".into()),
                    range: Some([0.0, 100.0]),
                    ..Default::default()
                },
            )]),
        }));
        for id in ["a", "b"] {
            c.set_tags(
                id,
                vec![TagMeta {
                    name: "P".into(),
                    node_id: "ns=4;i=10".into(),
                    data_type: "Float".into(),
                    array_size: None,
                    writable: false,
                    element_node_ids: vec![],
                }],
            );
        }
        c
    }

    fn good(v: serde_json::Value) -> TagValue {
        TagValue {
            value: v,
            quality: Quality::Good,
            reason: None,
            ts: Some(Utc::now()),
        }
    }

    #[test]
    fn values_an_interval_apart_are_all_shown_faster_flicker_coalesces() {
        let c = cache();
        let s0 = c.seq();
        let t0 = Utc::now();
        let at = |ms: i64, v: i32| ValueUpdate {
            tag: "P".into(),
            value: TagValue {
                ts: Some(t0 + chrono::Duration::milliseconds(ms)),
                ..good(json!(v))
            },
        };
        // One publish: 1 and 2 a full interval apart, then 3 and 4 only 10 ms after 2.
        c.update("a", [at(0, 1), at(100, 2), at(110, 3), at(120, 4)]);
        let gap = distinct_gap(Duration::from_millis(100));
        let d = c.changes_since_every(s0, gap, |_| true);
        let values: Vec<_> = d.plcs[0].changes.iter().map(|x| x.value.clone()).collect();
        assert_eq!(values, vec![json!(1), json!(4)], "2 and 3 stood < 75 ms");
        c.update("a", [at(300, 5), at(400, 6)]);
        let d = c.changes_since_every(d.seq, gap, |_| true);
        let values: Vec<_> = d.plcs[0].changes.iter().map(|x| x.value.clone()).collect();
        assert_eq!(values, vec![json!(5), json!(6)]);
    }

    #[test]
    fn deltas_carry_only_what_changed_and_respect_visibility() {
        let c = cache();
        c.set_status("a", PlcStatus::Connected, None);
        let s0 = c.seq();
        let v = good(json!(1.5));
        assert_eq!(
            c.update(
                "a",
                [ValueUpdate {
                    tag: "P".into(),
                    value: v.clone()
                }]
            ),
            1
        );
        // The same value again is not a change.
        assert_eq!(
            c.update(
                "a",
                [ValueUpdate {
                    tag: "P".into(),
                    value: v
                }]
            ),
            0
        );
        let d = c.changes_since(s0, |_| true);
        assert_eq!(d.plcs.len(), 1);
        assert_eq!(d.plcs[0].changes[0].value, json!(1.5));
        assert!(c.changes_since(d.seq, |_| true).is_empty());
        assert!(c.changes_since(s0, |p| p == "b").is_empty());
        let snap = c.snapshot(|p| p == "b");
        assert_eq!(snap.plcs.len(), 1);
        assert_eq!(snap.plcs[0].nodes[0].unit.as_deref(), Some("kW"));
        assert_eq!(snap.plcs[0].nodes[0].range, Some([0.0, 100.0]));
    }

    #[test]
    fn dropping_a_plc_keeps_values_but_marks_them_stale() {
        let c = cache();
        c.set_status("a", PlcStatus::Connected, None);
        c.update(
            "a",
            [ValueUpdate {
                tag: "P".into(),
                value: good(json!(7)),
            }],
        );
        let s = c.seq();
        c.set_status("a", PlcStatus::Error, Some("connection lost".into()));
        let v = c.value("a", "P").unwrap();
        assert_eq!(v.value, json!(7));
        assert_eq!(v.quality, Quality::Bad);
        assert_eq!(v.reason.as_deref(), Some("not_connected"));
        let d = c.changes_since(s, |_| true);
        assert_eq!(d.plcs[0].status, PlcStatus::Error);
        assert_eq!(d.plcs[0].changes.len(), 1);
        // Rediscovery keeps the last value of tags that still exist.
        c.set_tags("a", vec![c.tag_meta("a", "P").unwrap()]);
        assert_eq!(c.value("a", "P").unwrap().value, json!(7));
    }

    #[tokio::test]
    async fn listeners_are_notified_without_blocking() {
        let c = cache();
        let mut rx = c.subscribe();
        for i in 0..1000 {
            c.update(
                "a",
                [ValueUpdate {
                    tag: "P".into(),
                    value: good(json!(i)),
                }],
            );
        }
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), c.seq());
    }

    #[tokio::test]
    async fn every_value_of_a_batch_reaches_the_fan_out_and_the_sample_seam() {
        let c = cache();
        let mut samples = c.samples();
        let s0 = c.seq();
        let batch: Vec<ValueUpdate> = [1, 2, 3]
            .map(|i| ValueUpdate {
                tag: "P".into(),
                value: good(json!(i)),
            })
            .into();
        assert_eq!(c.update("a", batch.clone()), 3);
        let every = c.changes_since_every(s0, Duration::ZERO, |_| true);
        let values: Vec<_> = every.plcs[0]
            .changes
            .iter()
            .map(|x| x.value.clone())
            .collect();
        assert_eq!(values, vec![json!(1), json!(2), json!(3)]);
        // The catch-up view coalesces to the latest.
        let latest = c.changes_since(s0, |_| true);
        assert_eq!(latest.plcs[0].changes.len(), 1);
        assert_eq!(latest.plcs[0].changes[0].value, json!(3));
        // A later value after a listener's wake-up: only what is news to it.
        c.update(
            "a",
            [ValueUpdate {
                tag: "P".into(),
                value: good(json!(4)),
            }],
        );
        let next = c.changes_since_every(every.seq, Duration::ZERO, |_| true);
        assert_eq!(next.plcs[0].changes.len(), 1);
        assert_eq!(next.plcs[0].changes[0].value, json!(4));
        // Bounded: a listener far behind gets at most KEPT_BETWEEN + 1 values of a tag.
        for i in 5..20 {
            c.update(
                "a",
                [ValueUpdate {
                    tag: "P".into(),
                    value: good(json!(i)),
                }],
            );
        }
        let far = c.changes_since_every(s0, Duration::ZERO, |_| true);
        assert_eq!(far.plcs[0].changes.len(), KEPT_BETWEEN + 1);
        assert_eq!(far.plcs[0].changes.last().unwrap().value, json!(19));
        // The seam saw the batch as reported, all three values in order.
        let got = samples.recv().await.unwrap();
        assert_eq!(got.plc, "a");
        assert_eq!(got.values, batch);
    }

    #[tokio::test]
    async fn throttle_wakes_at_once_and_keeps_a_change_seen_by_a_cancelled_wait() {
        use futures::FutureExt;
        let c = cache();
        let bump = |i: i32| {
            c.update(
                "a",
                [ValueUpdate {
                    tag: "P".into(),
                    value: good(json!(i)),
                }],
            );
        };
        // An interval no test outlives: only "at once" and "held" can be observed.
        let interval = Duration::from_secs(3600);
        let mut th = Throttle::new(&c, interval);
        assert_eq!(th.wait().now_or_never(), None, "no change, no wake-up");
        bump(1);
        assert_eq!(
            th.wait().now_or_never(),
            Some(true),
            "leading edge: at once"
        );
        bump(2);
        assert_eq!(th.wait().now_or_never(), None, "held by the budget");
        // The budget fills up again (an interval passed): the change the cancelled call saw
        // is handed out without a further change (trailing flush).
        th.budget = Budget::new(interval);
        assert_eq!(th.wait().now_or_never(), Some(true));
        assert_eq!(c.seq(), *th.changed.borrow());
        assert_eq!(th.wait().now_or_never(), None, "nothing pending");
    }

    /// Runs changes arriving at `arrivals` (ms after a start) through a budget of `interval_ms`
    /// as [`Throttle::wait`] does (a change that arrives while one is held goes out with it);
    /// returns the wake-ups (ms) and each change's wait (ms).
    fn schedule(interval_ms: u64, arrivals: &[u64]) -> (Vec<u64>, Vec<u64>) {
        let t0 = tokio::time::Instant::now();
        let ms = |t: tokio::time::Instant| (t - t0).as_millis() as u64;
        let mut budget = Budget::new(Duration::from_millis(interval_ms));
        let (mut wakes, mut waits) = (Vec::new(), Vec::new());
        let mut last_wake: Option<u64> = None;
        for &a in arrivals {
            if last_wake.is_some_and(|w| w >= a) {
                waits.push(last_wake.unwrap() - a);
                continue;
            }
            let at = budget.release(t0 + Duration::from_millis(a));
            budget.spend(at);
            wakes.push(ms(at));
            waits.push(ms(at) - a);
            last_wake = Some(ms(at));
        }
        (wakes, waits)
    }

    #[test]
    fn throttle_budget_at_most_one_wake_up_per_interval_never_closer_than_three_quarters() {
        // A change every millisecond for 2 s at a 100 ms interval.
        let arrivals: Vec<u64> = (0..2000).collect();
        let (wakes, waits) = schedule(100, &arrivals);
        assert!(wakes.len() <= 2000 / 100 + 2, "{} wake-ups", wakes.len());
        for w in wakes.windows(2) {
            assert!(w[1] - w[0] >= 75, "{wakes:?}");
        }
        assert!(
            waits.iter().all(|&w| w <= 100),
            "a change waits at most one interval"
        );
    }

    #[test]
    fn throttle_budget_hands_out_publishes_on_the_grid_at_once_whatever_their_phase() {
        // Publishes every 100 ms (publishing interval = broadcast interval) at any phase, each
        // arriving up to 10 ms early or 15 ms late against the grid (a spread within the
        // spacing rule), or slipping by a whole 20 ms timer tick as the simulator's did: none
        // waits. With a minimum spacing of a whole interval, an early one after a late one
        // waited up to 25 ms, and the delay stayed.
        for phase in [0, 1, 37, 99] {
            let jitter: [i64; 8] = [0, 15, -10, 15, 3, -10, -10, 15];
            let arrivals: Vec<u64> = (0..400)
                .map(|k| (phase + 100 * k as i64 + 20 + jitter[k % 8]) as u64)
                .collect();
            let (_, waits) = schedule(100, &arrivals);
            assert!(waits.iter().all(|&w| w == 0), "phase {phase}: {waits:?}");
        }
        let mut slipping = vec![0u64];
        for k in 1..400u64 {
            slipping.push(slipping[(k - 1) as usize] + if k % 2 == 0 { 100 } else { 120 });
        }
        let (_, waits) = schedule(100, &slipping);
        assert!(waits.iter().all(|&w| w == 0));
    }

    #[test]
    fn throttle_budget_makes_up_a_late_publish_within_a_few_publishes() {
        // A 100 ms grid, one publish 90 ms late: the next ones wait 65, 40, 15 ms (spacing
        // ¾ interval), then none; the rate rule never holds one back. With a GCRA tolerance of
        // a quarter interval each later publish waited 65 ms for as long as changes kept
        // coming.
        let (_, waits) = schedule(100, &[0, 190, 200, 300, 400, 500, 600, 700, 800]);
        assert_eq!(waits, vec![0, 0, 65, 40, 15, 0, 0, 0, 0]);
    }

    #[test]
    fn throttle_budget_a_late_publish_does_not_delay_later_ones() {
        // A 400 ms grid, one publish 160 ms late: the next one on the grid waits 60 ms (to be
        // ¾ interval after the late one), the one after that nothing. With a minimum spacing of
        // a whole interval the next waited 160 ms, and every later one as long.
        let (wakes, waits) = schedule(400, &[0, 560, 800, 1200, 1600]);
        assert_eq!(wakes, vec![0, 560, 860, 1200, 1600]);
        assert_eq!(waits, vec![0, 0, 60, 0, 0]);
    }
}
