//! Fan-out of live updates: one broadcaster task per server computes the delta once per
//! distinct set of visible parks and shares the encoded frame (`Utf8Bytes`, reference counted)
//! with every client of that set. Clients that negotiated the compact encoding
//! (`remote/compact.rs`) share a second frame per set, encoded only when such a client exists.
//!
//! Each client has a bounded queue. When it is full the frame is skipped and the client is
//! flagged `lagging`; the client task then sends one coalesced catch-up update (latest values
//! since the last frame it delivered) instead of the missed frames. A client that stays behind
//! for `slow_client_timeout` is told to close (4008). Nobody waits for a slow client: the
//! broadcaster only ever `try_send`s.
//!
//! Ordering: a client registers, then takes its snapshot at sequence S; the broadcaster computes
//! deltas while holding the registry lock, so every change after S reaches the client either
//! through a frame or through the snapshot; frames with `seq <= delivered` are dropped by the
//! client task, so values never go back in time.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};

use super::wsock::Utf8Bytes;
use crate::api::Api;
use crate::live::PlcDelta;

/// An encoded update and the cache sequence it brings the client to.
#[derive(Clone)]
pub(super) struct Frame {
    pub seq: u64,
    pub text: Utf8Bytes,
}

/// Encodes `{"type":"update","seq","plcs"}`.
pub(super) fn encode_update(seq: u64, plcs: &[PlcDelta]) -> Utf8Bytes {
    let s = serde_json::to_string(&crate::api::UpdateMsg::new(seq, plcs))
        .unwrap_or_else(|_| String::from("{}"));
    Utf8Bytes::from(s)
}

/// Encodes an update in a client's encoding (`compact`: `remote/compact.rs`).
pub(super) fn encode(compact: bool, seq: u64, plcs: &[PlcDelta]) -> Utf8Bytes {
    if compact {
        super::compact::encode_update(seq, plcs)
    } else {
        encode_update(seq, plcs)
    }
}

/// Visible park ids of a client, sorted; the grouping key of the fan-out.
pub(super) type ParkKey = Arc<Vec<String>>;

struct Slot {
    key: ParkKey,
    /// The client negotiated the compact update encoding.
    compact: bool,
    tx: mpsc::Sender<Frame>,
    lagging: Arc<AtomicBool>,
    kick: Arc<Notify>,
    behind_since: Option<Instant>,
}

/// What a client task holds: its queue and the flags the broadcaster sets.
pub(super) struct Registration {
    pub id: u64,
    pub rx: mpsc::Receiver<Frame>,
    pub lagging: Arc<AtomicBool>,
    pub kick: Arc<Notify>,
}

/// Catch-up updates computed since the last broadcast, keyed by park set and the sequence the
/// client had: clients that lagged at the same point share one encoding. Cleared by every
/// broadcast (under the registry lock), so an entry never ends before the last broadcast's
/// sequence and no change falls between a catch-up and the next frame. The `bool` is the
/// encoding (compact or not).
type CatchUps = HashMap<(ParkKey, u64, bool), (u64, Option<Utf8Bytes>)>;

/// The registry of authenticated clients.
pub(super) struct Hub {
    clients: Mutex<HashMap<u64, Slot>>,
    catch_ups: Mutex<CatchUps>,
    next: AtomicU64,
    queue: usize,
    slow_timeout: Duration,
}

impl Hub {
    pub(super) fn new(queue: usize, slow_timeout: Duration) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            catch_ups: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            queue: queue.max(1),
            slow_timeout,
        }
    }

    /// Adds a client that sees `key` and receives updates in the compact encoding if `compact`;
    /// take the snapshot only after this returns.
    pub(super) fn register(&self, key: ParkKey, compact: bool) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue);
        let lagging = Arc::new(AtomicBool::new(false));
        let kick = Arc::new(Notify::new());
        self.clients.lock().insert(
            id,
            Slot {
                key,
                compact,
                tx,
                lagging: lagging.clone(),
                kick: kick.clone(),
                behind_since: None,
            },
        );
        Registration {
            id,
            rx,
            lagging,
            kick,
        }
    }

    /// Changes what a client sees (grants changed); take a fresh snapshot after this.
    pub(super) fn set_key(&self, id: u64, key: ParkKey) {
        if let Some(s) = self.clients.lock().get_mut(&id) {
            s.key = key;
        }
    }

    /// Removes a client.
    pub(super) fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// Number of registered clients.
    #[allow(dead_code)]
    pub(super) fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// Everything after `since` that a client seeing `key` lacks, as one coalesced update:
    /// returns the sequence it brings the client to and the frame (`None` if nothing changed).
    /// Encoded once per (park set, `since`) between two broadcasts, not once per client.
    pub(super) fn catch_up(
        &self,
        api: &Api,
        key: &ParkKey,
        since: u64,
        compact: bool,
    ) -> (u64, Option<Utf8Bytes>) {
        // Lock order: registry, then catch-ups (as `broadcast`).
        let _clients = self.clients.lock();
        let mut cache = self.catch_ups.lock();
        let entry = (key.clone(), since, compact);
        if let Some(hit) = cache.get(&entry) {
            return hit.clone();
        }
        let d = api
            .cache()
            .changes_since(since, |p| key.iter().any(|k| k == p));
        let text = if d.is_empty() {
            None
        } else {
            api.metrics().encoded();
            Some(encode(compact, d.seq, &d.plcs))
        };
        let out = (d.seq.max(since), text);
        cache.insert(entry, out.clone());
        out
    }

    /// One broadcast: deltas after `since`, encoded once per distinct park set and encoding in
    /// use, offered to every client. Returns the sequence the next broadcast starts from.
    fn broadcast(&self, api: &Api, since: u64, min_gap: Duration) -> u64 {
        let cache = api.cache();
        let metrics = api.metrics();
        let mut clients = self.clients.lock();
        self.catch_ups.lock().clear();
        let mut groups: HashMap<ParkKey, Vec<(u64, bool)>> = HashMap::new();
        for (id, s) in clients.iter() {
            groups
                .entry(s.key.clone())
                .or_default()
                .push((*id, s.compact));
        }
        let mut next = u64::MAX;
        let mut counted: HashSet<String> = HashSet::new();
        let mut changes = 0u64;
        if groups.is_empty() {
            let d = cache.changes_since(since, |_| true);
            changes += d.plcs.iter().map(|p| p.changes.len() as u64).sum::<u64>();
            next = d.seq;
        }
        let now = Instant::now();
        let mut closed = Vec::new();
        for (key, ids) in groups {
            // Every value a tag took since the last broadcast, not only the latest.
            let delta = cache.changes_since_every(since, min_gap, |p| key.iter().any(|k| k == p));
            next = next.min(delta.seq);
            if delta.is_empty() {
                continue;
            }
            for p in &delta.plcs {
                if counted.insert(p.id.clone()) {
                    changes += p.changes.len() as u64;
                }
            }
            // One frame per encoding in use in this group, encoded once.
            let mut frames: [Option<Frame>; 2] = [None, None];
            for (id, compact) in ids {
                let frame = frames[usize::from(compact)]
                    .get_or_insert_with(|| {
                        metrics.encoded();
                        Frame {
                            seq: delta.seq,
                            text: encode(compact, delta.seq, &delta.plcs),
                        }
                    })
                    .clone();
                let Some(s) = clients.get_mut(&id) else {
                    continue;
                };
                match s.tx.try_send(frame) {
                    Ok(()) => s.behind_since = None,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        s.lagging.store(true, Ordering::Release);
                        let since = *s.behind_since.get_or_insert(now);
                        if now.duration_since(since) >= self.slow_timeout {
                            s.kick.notify_one();
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => closed.push(id),
                }
            }
        }
        for id in closed {
            clients.remove(&id);
        }
        drop(clients);
        metrics.value_changes(changes);
        if next == u64::MAX {
            since
        } else {
            next
        }
    }
}

/// The broadcaster: wakes on cache changes through [`crate::live::Throttle`] (leading edge,
/// on average at most once per `interval`, see [`crate::live::Budget`], trailing flush), until
/// shutdown.
pub(super) async fn run(
    hub: Arc<Hub>,
    api: Api,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut throttle = crate::live::Throttle::new(api.cache(), interval);
    let mut since = api.cache().seq();
    let min_gap = crate::live::distinct_gap(interval);
    loop {
        tokio::select! {
            woke = throttle.wait() => if !woke { break },
            _ = shutdown.changed() => break,
        }
        since = hub.broadcast(&api, since, min_gap);
    }
}
