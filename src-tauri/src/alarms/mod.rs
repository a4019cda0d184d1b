//! Alarm management (ISA-18.2): the evaluator fed by every value the PLCs report
//! ([`Cache::samples`]) and by the parks' connection states, its persisted state and journal,
//! and the operator actions (acknowledge, shelve, out of service) the api performs after its
//! access check and audit row.
//!
//! One task evaluates; it never waits on a client. Transitions are marked changed inside the
//! evaluator and taken in batches ([`Alarms::take_changed`]) by whoever pushes them to clients,
//! which coalesces a flood into one message per broadcast interval. Every batch of journal
//! events and state rows is written in one transaction, in the order it was recorded (one flush
//! at a time), so the stored state is always the newest and survives a restart.

pub mod eval;
pub mod stats;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::Mutex;
use tokio::sync::{broadcast::error::RecvError, Notify};
use tokio::task::JoinHandle;

pub use eval::{AlarmInfo, AlarmQuality, Evaluator, Refusal, State};

use crate::config::Config;
use crate::live::{Cache, PlcStatus};
use crate::store::alarms::{Filter, IncidentRow, JournalRow};
use crate::store::{Store, StoreError};

/// How often delays, shelve expiry and connection states are looked at.
pub const TICK: Duration = Duration::from_millis(100);
/// Every this many ticks the configured tags are checked against the PLC's (`tag_missing`).
const TAG_CHECK_TICKS: u32 = 20;

struct Inner {
    eval: Mutex<Evaluator>,
    store: Store,
    /// One flush at a time, so rows are stored in the order they were recorded.
    flush: tokio::sync::Mutex<()>,
    /// Woken when alarms changed (see [`Alarms::changed`]).
    changed: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped by [`Alarms::reconfigure`]: the task re-reads the parks and their states.
    generation: AtomicU64,
    /// Bumped whenever an alarm changed or the definitions did (see [`Alarms::version`]).
    version: AtomicU64,
}

/// The alarm subsystem; cheap to clone.
#[derive(Clone)]
pub struct Alarms {
    inner: Arc<Inner>,
}

impl Alarms {
    /// The alarms of `cfg`, not yet evaluating ([`Alarms::start`] restores the stored state and
    /// starts).
    pub fn new(cfg: &Config, store: Store) -> Alarms {
        Alarms {
            inner: Arc::new(Inner {
                eval: Mutex::new(Evaluator::new(cfg, Vec::new())),
                store,
                flush: tokio::sync::Mutex::new(()),
                changed: Notify::new(),
                tasks: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                version: AtomicU64::new(0),
            }),
        }
    }

    /// Restores the persisted states (an `acked` alarm stays acknowledged) and starts evaluating
    /// every value `cache` reports. Fails when the stored state cannot be read.
    pub async fn start(&self, cfg: &Config, cache: Cache) -> Result<(), StoreError> {
        let samples = cache.samples();
        let rows = self
            .inner
            .store
            .read(crate::store::alarms::load_states)
            .await?;
        *self.inner.eval.lock() = Evaluator::new(cfg, rows);
        let me = self.clone();
        let task = tokio::spawn(async move { me.run(cache, samples).await });
        self.inner.tasks.lock().push(task);
        Ok(())
    }

    /// Takes the alarm definitions and settings of `cfg` (a configuration changed while
    /// running; see [`Evaluator::reconfigure`] for what each alarm keeps) and evaluates the
    /// current values of `cache` against them at once.
    pub fn reconfigure(&self, cfg: &Config, cache: &Cache) {
        self.inner.eval.lock().reconfigure(cfg, Utc::now());
        self.inner.generation.fetch_add(1, Ordering::Relaxed);
        self.inner.version.fetch_add(1, Ordering::Relaxed);
        self.resync(cache);
    }

    /// Whether alarms are evaluated: started and not stopped (`health` says so; a failed start
    /// leaves it false).
    pub fn running(&self) -> bool {
        self.inner.tasks.lock().iter().any(|t| !t.is_finished())
    }

    /// Ties a task to the subsystem: [`Alarms::stop`] ends it.
    pub fn own(&self, task: JoinHandle<()>) {
        self.inner.tasks.lock().push(task);
    }

    /// Stops evaluating (the rows recorded so far are stored first).
    pub async fn stop(&self) {
        let tasks: Vec<JoinHandle<()>> = self.inner.tasks.lock().drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "cannot store the last alarm events");
        }
    }

    async fn run(
        self,
        cache: Cache,
        mut samples: tokio::sync::broadcast::Receiver<Arc<crate::live::SampleBatch>>,
    ) {
        let mut parks = cache.plc_ids();
        let mut generation = self.inner.generation.load(Ordering::Relaxed);
        let mut last: HashMap<String, bool> = HashMap::new();
        self.resync(&cache);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u32;
        loop {
            tokio::select! {
                r = samples.recv() => match r {
                    Ok(b) => {
                        let now = Utc::now();
                        let mut e = self.inner.eval.lock();
                        for u in &b.values {
                            e.sample(&b.plc, &u.tag, &u.value, now);
                        }
                    }
                    Err(RecvError::Lagged(k)) => {
                        tracing::warn!(batches = k, "alarm evaluation fell behind; re-reading the live values");
                        self.resync(&cache);
                    }
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let now = Utc::now();
                    n = n.wrapping_add(1);
                    let g = self.inner.generation.load(Ordering::Relaxed);
                    if g != generation {
                        // Parks came or went, and every `comm` alarm is told its park's state.
                        generation = g;
                        parks = cache.plc_ids();
                        last.clear();
                    }
                    let mut e = self.inner.eval.lock();
                    for p in &parks {
                        let up = cache.status(p) == Some(PlcStatus::Connected);
                        if last.insert(p.clone(), up) != Some(up) {
                            e.status(p, up, now);
                        }
                        if up && n.is_multiple_of(TAG_CHECK_TICKS) {
                            e.check_tags(p, |tag, index| {
                                cache.tag_meta(p, tag).is_some_and(|m| match index {
                                    None => true,
                                    Some(k) => m.array_size.is_some_and(|len| (k as u64) < u64::from(len)),
                                })
                            });
                        }
                    }
                    e.tick(now);
                }
            }
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "cannot store alarm events");
            }
        }
    }

    /// Evaluates the current value of every tag that carries an alarm (at start and after the
    /// sample seam lagged).
    fn resync(&self, cache: &Cache) {
        let now = Utc::now();
        let mut e = self.inner.eval.lock();
        let tags: Vec<(String, String)> = e
            .defs()
            .iter()
            .filter(|d| !d.tag.is_empty() && d.condition != crate::config::Condition::CalDue)
            .map(|d| (d.park.clone(), d.base.clone()))
            .collect();
        for (park, tag) in tags {
            if let Some(v) = cache.value(&park, &tag) {
                e.sample(&park, &tag, &v, now);
            }
        }
    }

    /// Stores what the evaluator recorded since the last flush and wakes the pushers.
    async fn flush(&self) -> Result<(), StoreError> {
        let _one = self.inner.flush.lock().await;
        let (states, journal, changed) = {
            let mut e = self.inner.eval.lock();
            let (s, j) = e.take_writes();
            (s, j, e.has_changes())
        };
        if changed {
            self.inner.version.fetch_add(1, Ordering::Relaxed);
            self.inner.changed.notify_one();
        }
        if states.is_empty() && journal.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        self.inner
            .store
            .write(move |tx| crate::store::alarms::apply(tx, &states, &journal, now))
            .await
    }

    /// Resolves when alarms changed since the last [`Alarms::take_changed`] (one waiter).
    pub async fn changed(&self) {
        self.inner.changed.notified().await
    }

    /// The alarms changed since the last call (their newest state), in the order they changed.
    pub fn take_changed(&self) -> Vec<AlarmInfo> {
        self.inner.eval.lock().take_changed()
    }

    /// The listed alarms of the parks `visible` admits.
    pub fn list(&self, visible: impl Fn(&str) -> bool) -> Vec<AlarmInfo> {
        self.inner.eval.lock().list(visible)
    }

    /// Whether each calibration `(id, due)` is due: raises or clears its `<id>.cal_due`
    /// alarm (stored and pushed with the next flush, within one tick).
    pub fn set_cal_due(&self, due: &[(String, bool)]) {
        let now = Utc::now();
        let mut e = self.inner.eval.lock();
        for (id, d) in due {
            e.cal_due(id, *d, now);
        }
    }

    /// Every alarm of `park` (listed or not) as lists show it, in definition order (for
    /// publishers that mirror every alarm, such as the Sparkplug edge node).
    pub fn of_park(&self, park: &str) -> Vec<AlarmInfo> {
        self.inner.eval.lock().all(|p| p == park)
    }

    /// A number that changes whenever an alarm or the definitions changed since it was read,
    /// so a poller can skip [`Alarms::of_park`] while nothing happened (it may also change
    /// without a visible difference).
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Relaxed)
    }

    /// How many alarms have no tag on their (connected) PLC.
    pub fn tag_missing(&self) -> usize {
        self.inner.eval.lock().tag_missing()
    }

    /// The park of alarm `id`.
    pub fn park_of(&self, id: &str) -> Option<String> {
        self.inner.eval.lock().park_of(id).map(str::to_string)
    }

    /// Whether acknowledging `id` would change it (`None`: unknown).
    pub fn ackable(&self, id: &str) -> Option<bool> {
        let e = self.inner.eval.lock();
        e.index_of(id).map(|i| e.ackable(i))
    }

    /// One alarm as lists show it.
    pub fn info(&self, id: &str) -> Option<AlarmInfo> {
        let e = self.inner.eval.lock();
        e.index_of(id).map(|i| e.info(i))
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Evaluator, usize) -> T) -> Result<T, Refusal> {
        let mut e = self.inner.eval.lock();
        let i = e.index_of(id).ok_or(Refusal::NotFound)?;
        Ok(f(&mut e, i))
    }

    /// Acknowledges `id` as `who`; the state after. Stored before it returns.
    pub async fn ack(
        &self,
        id: &str,
        who: &str,
        comment: Option<&str>,
    ) -> Result<Result<State, Refusal>, StoreError> {
        let r = self.with(id, |e, i| e.ack(i, who, comment, Utc::now()));
        self.flush().await?;
        Ok(r)
    }

    /// Checks a shelve request before it is audited.
    pub fn check_shelve(&self, minutes: u32) -> Result<(), Refusal> {
        self.inner.eval.lock().check_shelve(minutes)
    }

    /// Shelves `id` for `minutes`.
    pub async fn shelve(
        &self,
        id: &str,
        minutes: u32,
        who: &str,
        reason: &str,
    ) -> Result<Result<(), Refusal>, StoreError> {
        let r = self
            .with(id, |e, i| e.shelve(i, minutes, who, reason, Utc::now()))
            .and_then(|r| r);
        self.flush().await?;
        Ok(r)
    }

    /// Unshelves `id`; `Ok(false)` when it was not shelved.
    pub async fn unshelve(&self, id: &str, who: &str) -> Result<Result<bool, Refusal>, StoreError> {
        let r = self.with(id, |e, i| e.unshelve(i, who, Utc::now()));
        self.flush().await?;
        Ok(r)
    }

    /// Takes `id` out of service (`Some(reason)`) or back in (`None`).
    pub async fn set_service(
        &self,
        id: &str,
        out: Option<&str>,
        who: &str,
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let r = self.with(id, |e, i| e.set_service(i, out, who, Utc::now()));
        self.flush().await?;
        Ok(r)
    }

    /// Journal rows, newest first.
    pub async fn journal(&self, f: Filter) -> Result<Vec<JournalRow>, StoreError> {
        self.inner
            .store
            .read(move |c| crate::store::alarms::journal(c, &f))
            .await
    }

    /// Incident rows, newest first.
    pub async fn incidents(&self, f: Filter) -> Result<Vec<IncidentRow>, StoreError> {
        self.inner
            .store
            .read(move |c| crate::store::alarms::incidents(c, &f))
            .await
    }

    /// The EEMUA 191 figures of `parks` between `from` and `to`.
    pub async fn stats(
        &self,
        parks: Vec<String>,
        from: chrono::DateTime<Utc>,
        to: chrono::DateTime<Utc>,
    ) -> Result<stats::Stats, StoreError> {
        let standing = self
            .inner
            .eval
            .lock()
            .active_since(|p| parks.iter().any(|q| q == p));
        let raises = self
            .inner
            .store
            .read(move |c| crate::store::alarms::raises(c, &parks, from, to, stats::MAX_RAISES))
            .await?;
        Ok(stats::compute(&raises, &standing, from, to, Utc::now()))
    }
}
