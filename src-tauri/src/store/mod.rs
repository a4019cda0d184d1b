//! SQLite: schema, migrations, and one file per table family. No SQL outside this module.
//!
//! One database file in WAL mode. All writes of this process go through ONE writer connection
//! (serialised by a mutex, `BEGIN IMMEDIATE`), reads use a small pool of read connections; both
//! run on tokio's blocking pool (`spawn_blocking`), so database work never blocks the async
//! runtime, and concurrent writers inside the process never see "database is locked". Writers in
//! other processes (the `stator user` CLI next to a running server) wait on `busy_timeout`.

pub mod alarms;
pub mod api_tokens;
pub mod audit;
pub mod bound;
pub mod logbook;
pub mod login_failures;
pub mod messages;
pub mod service;
pub mod sessions;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use audit::{AuditEntry, AuditFilter, AuditKey, AuditRow, Scope, VerifyReport};

/// The numbered migrations, applied in order; `PRAGMA user_version` is the number applied.
/// Never edit a released migration: append a new file.
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_users", include_str!("migrations/0001_users.sql")),
    (
        "0002_sessions",
        include_str!("migrations/0002_sessions.sql"),
    ),
    ("0003_audit", include_str!("migrations/0003_audit.sql")),
    (
        "0004_login_failures",
        include_str!("migrations/0004_login_failures.sql"),
    ),
    (
        "0005_audit_key",
        include_str!("migrations/0005_audit_key.sql"),
    ),
    ("0006_alarms", include_str!("migrations/0006_alarms.sql")),
    ("0007_service", include_str!("migrations/0007_service.sql")),
    (
        "0008_messages",
        include_str!("migrations/0008_messages.sql"),
    ),
    (
        "0009_api_tokens",
        include_str!("migrations/0009_api_tokens.sql"),
    ),
];

/// How long a statement waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections in the pool (the writer is separate).
const READERS: usize = 4;

/// Everything that can go wrong in the store, with text an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot create the directory of the database {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("database migration {name} failed: {source}")]
    Migration {
        name: String,
        source: rusqlite::Error,
    },
    #[error(
        "database schema version {found} is newer than this stator supports ({supported}); upgrade stator"
    )]
    TooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A uniqueness rule of the schema would be broken (e.g. a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// The row the caller named does not exist.
    #[error("{0}")]
    NotFound(String),
    #[error("database task failed: {0}")]
    Task(String),
    /// The audit chain cannot be extended or checked as asked (no key for a keyed chain, an
    /// unreadable anchor file).
    #[error("{0}")]
    Audit(String),
}

/// The database handle. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// The audit head last written to the anchor file (or found at open) and when.
    anchored: Mutex<(i64, Instant)>,
    /// The audit chain's key when opened keyed (for [`Store::verify_audit_keyed`]).
    key: Option<AuditKey>,
}

impl Drop for Inner {
    /// The last anchor when the store closes (shutdown, end of a CLI command).
    fn drop(&mut self) {
        anchor_if(&self.path, self.writer.get_mut(), &self.anchored, |_, _| {
            true
        });
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database file and applies every pending migration, without
    /// the audit key: fine for reading and for databases whose chain was never keyed (tests,
    /// tools); appending to a keyed chain fails. Production writers use [`Store::open_keyed`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::open_with(path, None)
    }

    /// Opens the database with the audit chain's key: audit rows are HMAC-chained from the first
    /// row written after the chain was first keyed (recorded in the database once).
    pub fn open_keyed(path: &Path, key: &AuditKey) -> Result<Store, StoreError> {
        Self::open_with(path, Some(key))
    }

    fn open_with(path: &Path, key: Option<&AuditKey>) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let mut writer = open_connection(path, false)?;
        migrate(&mut writer, None)?;
        if let Some(key) = key {
            audit::install_key(&writer, key)?;
        }
        let head = audit::head(&writer)?.map_or(0, |(id, _)| id);
        // A new database anchors its first audit row at once: until the first anchor `verify`
        // cannot tell "young" from "anchor file deleted" and calls the chain broken. (Only when
        // the trail is empty: a missing file beside existing rows stays evidence.)
        let since = if head == 0 && !audit::anchor_path(path).exists() {
            Instant::now()
                .checked_sub(audit::ANCHOR_EVERY)
                .unwrap_or_else(Instant::now)
        } else {
            Instant::now()
        };
        let readers = (0..READERS)
            .map(|_| open_connection(path, true).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                anchored: Mutex::new((head, since)),
                key: key.cloned(),
            }),
        })
    }

    /// Appends an anchor of the audit head to the anchor file when rows were added since the
    /// last one (called by the periodic maintenance and at shutdown; also done automatically
    /// after [`audit::ANCHOR_EVERY_ROWS`] rows or [`audit::ANCHOR_EVERY`]). Blocking.
    pub fn anchor_now(&self) {
        let mut conn = self.inner.writer.lock();
        anchor_if(&self.inner.path, &mut conn, &self.inner.anchored, |_, _| {
            true
        });
    }

    /// Verifies the audit chain and the anchor file (see [`audit::verify`]). `key` is needed for
    /// the keyed rows. Blocking.
    pub fn verify_audit(&self, key: Option<&AuditKey>) -> Result<VerifyReport, StoreError> {
        let anchors = audit::read_anchors(&audit::anchor_path(&self.inner.path))
            .map_err(StoreError::Audit)?;
        // One read transaction: the chain and sqlite_sequence are read from one snapshot.
        self.read_blocking(|c| {
            c.execute_batch("BEGIN")?;
            let r = audit::verify(c, key, anchors.as_deref());
            c.execute_batch("COMMIT")?;
            r
        })
    }

    /// [`Store::verify_audit`] with the key this store was opened with (none: [`Store::open`]),
    /// so a caller holding only the store can check the chain (`diagnostics`). Blocking.
    pub fn verify_audit_keyed(&self) -> Result<VerifyReport, StoreError> {
        self.verify_audit(self.inner.key.as_ref())
    }

    /// Deletes old ended sessions and old `user_changes` rows ([`sessions::prune`]). Blocking.
    pub fn prune_blocking(&self, now: DateTime<Utc>) -> Result<sessions::Pruned, StoreError> {
        self.write_blocking(|tx| sessions::prune(tx, now))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The default database file: `--db`, else `database` from the config, else
    /// `<platform data dir>/stator.db`.
    pub fn default_path(db: Option<&Path>, config_database: Option<&Path>) -> PathBuf {
        if let Some(p) = db.or(config_database) {
            return p.to_path_buf();
        }
        directories::ProjectDirs::from("", "", "stator")
            .map(|d| d.data_dir().join("stator.db"))
            .unwrap_or_else(|| PathBuf::from("stator.db"))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection, committing when it
    /// returns `Ok`. Blocking: call from a blocking context (CLI, `spawn_blocking`).
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction_blocking(f)
    }

    /// Like [`Store::write_blocking`], but `f` answers in the caller's own error type, so a
    /// domain module can refuse inside a transaction (rolled back) with its own reasons while
    /// the store only knows storage errors.
    pub fn transaction_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.inner.writer.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        let due = |rows: i64, since: Duration| {
            rows >= audit::ANCHOR_EVERY_ROWS || since >= audit::ANCHOR_EVERY
        };
        anchor_if(&self.inner.path, &mut conn, &self.inner.anchored, due);
        Ok(out)
    }

    /// Runs `f` on a read connection. Blocking: call from a blocking context.
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let n = self.inner.readers.len();
        let start = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Some(conn) = self.inner.readers[(start + i) % n].try_lock() {
                return f(&conn);
            }
        }
        let conn = self.inner.readers[start % n].lock();
        f(&conn)
    }

    /// [`Store::write_blocking`] on tokio's blocking pool.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.transaction(f).await
    }

    /// [`Store::transaction_blocking`] on tokio's blocking pool.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.transaction_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// [`Store::read_blocking`] on tokio's blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.read_blocking(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
    }
}

/// Writes an anchor when the audit head moved past the last anchored row and `due(new rows,
/// time since the last anchor)` says so. A failure is logged, never returned: the rows it would
/// cover are committed already, and `verify` reports a missing anchor file.
fn anchor_if(
    db: &Path,
    conn: &mut Connection,
    anchored: &Mutex<(i64, Instant)>,
    due: impl FnOnce(i64, Duration) -> bool,
) {
    let head = match audit::head(conn) {
        Ok(h) => h.map_or(0, |(id, _)| id),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit head for an anchor");
            return;
        }
    };
    let mut last = anchored.lock();
    if head <= last.0 || !due(head - last.0, last.1.elapsed()) {
        return;
    }
    let path = audit::anchor_path(db);
    let res = audit::current_anchor(conn, Utc::now())
        .map_err(|e| e.to_string())
        .and_then(|a| match a {
            Some(a) => audit::write_anchor(&path, &a)
                .map(|_| a)
                .map_err(|e| format!("{}: {e}", path.display())),
            None => Err("the audit table is empty".into()),
        });
    match res {
        Ok(a) => {
            tracing::info!(
                head_id = a.head_id,
                head_hash = %a.head_hash,
                count = a.count,
                keyed_from = ?a.keyed_from,
                "audit anchor"
            );
            *last = (a.head_id, Instant::now());
        }
        Err(e) => tracing::error!(error = %e, "cannot write an audit anchor"),
    }
}

/// Opens one connection with the pragmas every connection needs.
fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let wrap = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(wrap)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(wrap)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(wrap)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(wrap)?;
    Ok(conn)
}

/// Applies migrations after the current `user_version`, up to `upto` (all when `None`), each in
/// its own transaction together with the version bump. Public so tests can build every earlier
/// schema version.
pub fn migrate(conn: &mut Connection, upto: Option<usize>) -> Result<i64, StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let target = upto
        .map(|u| u.min(MIGRATIONS.len()))
        .unwrap_or(MIGRATIONS.len()) as i64;
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > supported {
        return Err(StoreError::TooNew {
            found: current,
            supported,
        });
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current || version > target {
            continue;
        }
        let wrap = |source| StoreError::Migration {
            name: (*name).to_string(),
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(wrap)?;
        tx.execute_batch(sql).map_err(wrap)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        tracing::debug!(migration = name, "applied database migration");
    }
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Timestamps are stored as fixed-width RFC 3339 UTC text (microseconds, `Z`) so that text
/// order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses a stored timestamp; a corrupt value reads as the Unix epoch rather than panicking.
pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}
