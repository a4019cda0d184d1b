//! The embedded historian: every value the PLCs report (numbers, booleans, array elements; text
//! on request) recorded on change into its own SQLite file, and read back as trends.
//!
//! Shape: the live cache's sample seam → [`ingest`] (per-tag deadband / minimum interval, in
//! the async runtime, never waiting) → a bounded queue → ONE writer thread ([`writer`]) that
//! appends to compressed, time-ordered blocks per tag ([`codec`]) and commits in batches →
//! [`db`]. When the disk cannot keep up the queue fills and further samples are dropped and
//! counted (`/metrics`, `/health`): live values never wait on the historian. Queries
//! ([`query`]) run on a separate read connection; charts are drawn by [`chart`].

pub mod chart;
pub mod codec;
mod db;
mod ingest;
pub mod query;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

pub use codec::{Val, Q};
pub use db::TagSpan;
pub use query::{Bucket, Points, Series, MAX_POINTS, MAX_TAGS};

use crate::config::{Config, HistoryConfig};
use crate::live::Cache;

/// Most series the historian keeps (bounds memory whatever a PLC exposes).
pub const MAX_SERIES: usize = 100_000;
/// Samples that may wait for the writer; beyond this they are dropped and counted.
pub const QUEUE_SAMPLES: usize = 500_000;

/// What a series holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Number = 0,
    Bool = 1,
    Text = 2,
}

impl Kind {
    fn from_i64(v: i64) -> Kind {
        match v {
            1 => Kind::Bool,
            2 => Kind::Text,
            _ => Kind::Number,
        }
    }
}

/// One sample on its way to the writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    /// `<plc>/<tag>` or `<plc>/<tag>[i]`.
    pub series: Arc<str>,
    pub kind: Kind,
    /// Unix milliseconds (source time).
    pub t: i64,
    pub v: Val,
    /// 0 good, 1 uncertain, 2 bad.
    pub q: Q,
}

/// Counters of the historian.
#[derive(Debug, Default)]
pub struct Stats {
    stored: AtomicU64,
    dropped: AtomicU64,
    lagged_batches: AtomicU64,
    queued: AtomicUsize,
}

/// A copy of the counters (for `/metrics` and `/health`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsView {
    /// Samples committed to disk.
    pub stored: u64,
    /// Samples dropped because the queue was full or a write failed.
    pub dropped: u64,
    /// Sample batches the historian missed because it fell behind the live cache.
    pub lagged_batches: u64,
    /// Samples waiting for the writer now.
    pub queued: u64,
}

/// Why the historian could not do something.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("history writer stopped")]
    Stopped,
    #[error("{0}")]
    Task(String),
}

struct Inner {
    path: PathBuf,
    cfg: Mutex<HistoryConfig>,
    stats: Arc<Stats>,
    tx: Mutex<Option<SyncSender<writer::Msg>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    reader: Mutex<Option<rusqlite::Connection>>,
    ingest: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Tells the recording task a new configuration (per-tag filters, default interval).
    recording: Mutex<Option<tokio::sync::watch::Sender<Arc<Config>>>>,
}

/// Handle to the historian; cheap to clone.
#[derive(Clone)]
pub struct Historian {
    inner: Arc<Inner>,
}

impl Historian {
    /// `history.db` next to the user database unless `history.database` names a file.
    pub fn path_for(cfg: &HistoryConfig, user_db: &Path) -> PathBuf {
        cfg.database.clone().unwrap_or_else(|| {
            user_db
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("history.db")
        })
    }

    /// Opens (creating) the file and starts the writer thread.
    pub fn open(path: &Path, cfg: &HistoryConfig) -> Result<Historian, HistoryError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| HistoryError::Task(e.to_string()))?;
        }
        let conn = db::open(path, false)?;
        let stats = Arc::new(Stats::default());
        // Batches, not samples, travel the channel; the sample bound is `Stats::queued`.
        let (tx, rx) = sync_channel(4096);
        let w = writer::Writer {
            conn,
            stats: stats.clone(),
            settings: writer::Settings::of(cfg),
        };
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || w.run(rx))
            .map_err(|e| HistoryError::Task(e.to_string()))?;
        Ok(Historian {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                cfg: Mutex::new(cfg.clone()),
                stats,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                reader: Mutex::new(None),
                ingest: Mutex::new(None),
                recording: Mutex::new(None),
            }),
        })
    }

    /// Opens an existing file for queries only (CLI export and charts): no writer.
    pub fn open_read_only(path: &Path, cfg: &HistoryConfig) -> Result<Historian, HistoryError> {
        let conn = db::open(path, true)?;
        Ok(Historian {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                cfg: Mutex::new(cfg.clone()),
                stats: Arc::new(Stats::default()),
                tx: Mutex::new(None),
                thread: Mutex::new(None),
                reader: Mutex::new(Some(conn)),
                ingest: Mutex::new(None),
                recording: Mutex::new(None),
            }),
        })
    }

    /// Starts recording what `cache` reports (call inside the tokio runtime).
    pub fn record(&self, cache: Cache, cfg: Arc<Config>) {
        let (tx, rx) = tokio::sync::watch::channel(cfg);
        let task = tokio::spawn(ingest::run(self.clone(), cache, rx));
        *self.inner.recording.lock() = Some(tx);
        if let Some(old) = self.inner.ingest.lock().replace(task) {
            old.abort();
        }
    }

    /// Takes the settings of `cfg` while running (a configuration change): the per-tag
    /// `history` keys and the default minimum interval apply to the next sample of each tag
    /// (whose first value after the change is stored), retention, disk budget and
    /// `flush_seconds` from the next commit. `enabled` and `database` need a restart
    /// (`config::change::restart_required` says so).
    pub async fn reconfigure(&self, cfg: Arc<Config>) {
        *self.inner.cfg.lock() = cfg.history.clone();
        // The writer's queue is bounded: wait for room off the async threads.
        let (h, settings) = (self.clone(), writer::Settings::of(&cfg.history));
        let _ = tokio::task::spawn_blocking(move || h.send(writer::Msg::Settings(settings))).await;
        if let Some(tx) = self.inner.recording.lock().as_ref() {
            tx.send_replace(cfg);
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> HistoryConfig {
        self.inner.cfg.lock().clone()
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues samples for the writer without waiting; when the queue is full they are dropped
    /// and counted. Returns whether they were queued.
    pub fn push(&self, recs: Vec<Rec>) -> bool {
        let n = recs.len();
        let s = &self.inner.stats;
        if s.queued.load(Ordering::Relaxed) + n > QUEUE_SAMPLES {
            s.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return false;
        }
        let tx = self.inner.tx.lock().clone();
        let Some(tx) = tx else {
            s.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return false;
        };
        s.queued.fetch_add(n, Ordering::Relaxed);
        match tx.try_send(writer::Msg::Samples(recs)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                s.queued.fetch_sub(n, Ordering::Relaxed);
                s.dropped.fetch_add(n as u64, Ordering::Relaxed);
                false
            }
        }
    }

    fn lagged(&self, batches: u64) {
        self.inner
            .stats
            .lagged_batches
            .fetch_add(batches, Ordering::Relaxed);
        tracing::warn!(
            batches,
            "historian fell behind the live values; batches lost"
        );
    }

    /// The counters.
    pub fn stats(&self) -> StatsView {
        let s = &self.inner.stats;
        StatsView {
            stored: s.stored.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            lagged_batches: s.lagged_batches.load(Ordering::Relaxed),
            queued: s.queued.load(Ordering::Relaxed) as u64,
        }
    }

    fn send(&self, m: writer::Msg) -> Result<(), HistoryError> {
        let tx = self.inner.tx.lock().clone().ok_or(HistoryError::Stopped)?;
        tx.send(m).map_err(|_| HistoryError::Stopped)
    }

    /// Commits everything queued so far and waits for it (blocking; tests, benches, shutdown).
    pub fn flush_blocking(&self) -> Result<(), HistoryError> {
        let (ack, rx) = std::sync::mpsc::channel();
        self.send(writer::Msg::Sync(ack))?;
        rx.recv().map_err(|_| HistoryError::Stopped)
    }

    /// Runs the retention as if it were `now` (blocking); returns the blocks deleted.
    pub fn retention_blocking(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, HistoryError> {
        let (ack, rx) = std::sync::mpsc::channel();
        self.send(writer::Msg::Retention(now.timestamp_millis(), ack))?;
        rx.recv().map_err(|_| HistoryError::Stopped)
    }

    /// Runs `f` on the read connection (opened on first use). Blocking.
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        let mut g = self.inner.reader.lock();
        if g.is_none() {
            *g = Some(db::open(&self.inner.path, true)?);
        }
        let c = g.as_ref().ok_or(HistoryError::Stopped)?;
        Ok(f(c)?)
    }

    /// Every recorded series with its first/last sample time. Blocking.
    pub fn tags_blocking(&self) -> Result<Vec<TagSpan>, HistoryError> {
        self.read(db::spans)
    }

    /// The id and kind of a recorded series, `None` when nothing was ever stored for it.
    pub fn kind_blocking(&self, name: &str) -> Result<Option<Kind>, HistoryError> {
        self.read(|c| db::find_series(c, name).map(|o| o.map(|(_, k)| k)))
    }

    /// Reads `names` in `[from, to]` (Unix ms) with at most `max_points` points each; a name
    /// without stored samples gives an empty raw series. Blocking; callers validate the bounds.
    pub fn query_blocking(
        &self,
        names: &[String],
        from: i64,
        to: i64,
        max_points: usize,
    ) -> Result<Vec<Series>, HistoryError> {
        let max_points = max_points.clamp(1, MAX_POINTS);
        self.read(|c| {
            names
                .iter()
                .map(|n| match db::find_series(c, n)? {
                    Some((id, kind)) => {
                        query::series(c, n, id, kind, from, to.max(from), max_points)
                    }
                    None => Ok(Series {
                        tag: n.clone(),
                        kind: Kind::Number,
                        points: Points::Raw(Vec::new()),
                    }),
                })
                .collect()
        })
    }

    /// Samples and block bytes stored, and the file's used bytes (for bytes per sample).
    pub fn storage_blocking(&self) -> Result<(u64, u64, u64), HistoryError> {
        self.read(|c| {
            let (n, b) = db::totals(c)?;
            Ok((n, b, db::used_bytes(c)?))
        })
    }

    /// Stops recording, commits what is queued and ends the writer thread (bounded by the
    /// caller's timeout).
    pub async fn shutdown(&self) {
        if let Some(t) = self.inner.ingest.lock().take() {
            t.abort();
        }
        self.inner.tx.lock().take();
        let thread = self.inner.thread.lock().take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
