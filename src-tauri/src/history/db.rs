//! The historian's own SQLite file: schema, connections, block writes, retention and reads.
//!
//! Separate from the user database on purpose: its write volume, WAL and retention must never
//! slow down logins or the audit trail, and it can be deleted without losing anything
//! accountable. Only the writer thread writes; readers use their own connection (WAL lets both
//! run at once).

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::Kind;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  plc TEXT NOT NULL,
  kind INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks(
  id INTEGER PRIMARY KEY,
  series INTEGER NOT NULL,
  t0 INTEGER NOT NULL,
  t1 INTEGER NOT NULL,
  n INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_series_t1 ON blocks(series, t1);
CREATE INDEX IF NOT EXISTS blocks_t1 ON blocks(t1);
";

/// Blocks deleted per retention step: small steps keep every write stall short.
const RETENTION_STEP: i64 = 500;

/// Opens the file (creating it and the schema unless `read_only`), WAL, `synchronous=NORMAL`.
pub(super) fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    if !read_only {
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        c.execute_batch(SCHEMA)?;
    }
    Ok(c)
}

/// The id and kind of a series, created on first use.
pub(super) fn series_id(c: &Connection, name: &str, kind: Kind) -> rusqlite::Result<(i64, Kind)> {
    if let Some((id, k)) = find_series(c, name)? {
        return Ok((id, k));
    }
    let plc = name.split_once('/').map_or(name, |(p, _)| p);
    c.execute(
        "INSERT INTO series(name, plc, kind) VALUES (?1, ?2, ?3)",
        params![name, plc, kind as i64],
    )?;
    Ok((c.last_insert_rowid(), kind))
}

/// The id and kind of an existing series.
pub(super) fn find_series(c: &Connection, name: &str) -> rusqlite::Result<Option<(i64, Kind)>> {
    c.prepare_cached("SELECT id, kind FROM series WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, Kind::from_i64(r.get(1)?))))
        .optional()
}

/// Writes (or rewrites) one block; returns its row id.
pub(super) fn put_block(
    c: &Connection,
    rowid: Option<i64>,
    series: i64,
    t0: i64,
    t1: i64,
    n: u32,
    data: &[u8],
) -> rusqlite::Result<i64> {
    if let Some(id) = rowid {
        let changed = c
            .prepare_cached("UPDATE blocks SET t1 = ?1, n = ?2, data = ?3 WHERE id = ?4")?
            .execute(params![t1, n, data, id])?;
        if changed == 1 {
            return Ok(id);
        }
    }
    c.prepare_cached("INSERT INTO blocks(series, t0, t1, n, data) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![series, t0, t1, n, data])?;
    Ok(c.last_insert_rowid())
}

/// Bytes the data occupies (pages in use, not free pages kept for reuse).
pub(super) fn used_bytes(c: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Deletes blocks that ended before `cutoff`, then the oldest blocks while the data exceeds
/// `budget` bytes, in small transactions. Returns the blocks deleted.
pub(super) fn retention(c: &Connection, cutoff: i64, budget: u64) -> rusqlite::Result<u64> {
    let mut deleted = 0u64;
    loop {
        let n = c.execute(
            "DELETE FROM blocks WHERE id IN (SELECT id FROM blocks WHERE t1 < ?1 LIMIT ?2)",
            params![cutoff, RETENTION_STEP],
        )?;
        deleted += n as u64;
        if (n as i64) < RETENTION_STEP {
            break;
        }
    }
    while used_bytes(c)? > budget {
        let n = c.execute(
            "DELETE FROM blocks WHERE id IN (SELECT id FROM blocks ORDER BY t1 LIMIT ?1)",
            [RETENTION_STEP],
        )?;
        deleted += n as u64;
        if n == 0 {
            break;
        }
    }
    Ok(deleted)
}

/// Calls `f` with each stored block of `series` that overlaps `[from, to]`, oldest first.
pub(super) fn blocks(
    c: &Connection,
    series: i64,
    from: i64,
    to: i64,
    mut f: impl FnMut(&[u8]) -> bool,
) -> rusqlite::Result<()> {
    let mut st = c.prepare_cached(
        "SELECT data FROM blocks WHERE series = ?1 AND t1 >= ?2 AND t0 <= ?3 ORDER BY t1",
    )?;
    let mut rows = st.query(params![series, from, to])?;
    while let Some(r) = rows.next()? {
        let data = r.get_ref(0)?.as_blob()?;
        if !f(data) {
            break;
        }
    }
    Ok(())
}

/// One recorded series with its first and last sample time.
#[derive(Debug, Clone, PartialEq)]
pub struct TagSpan {
    /// `<plc>/<tag>`, array elements as `<plc>/<tag>[i]`.
    pub name: String,
    pub plc: String,
    pub kind: Kind,
    pub first: i64,
    pub last: i64,
    /// Samples stored.
    pub samples: u64,
}

/// Every series that has stored samples, by name.
pub(super) fn spans(c: &Connection) -> rusqlite::Result<Vec<TagSpan>> {
    let mut st = c.prepare_cached(
        "SELECT s.name, s.plc, s.kind, MIN(b.t0), MAX(b.t1), SUM(b.n) FROM series s \
         JOIN blocks b ON b.series = s.id GROUP BY s.id ORDER BY s.name",
    )?;
    let rows = st.query_map([], |r| {
        Ok(TagSpan {
            name: r.get(0)?,
            plc: r.get(1)?,
            kind: Kind::from_i64(r.get(2)?),
            first: r.get(3)?,
            last: r.get(4)?,
            samples: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// Samples and block bytes stored (for bytes per sample).
pub(super) fn totals(c: &Connection) -> rusqlite::Result<(u64, u64)> {
    c.query_row(
        "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(LENGTH(data)), 0) FROM blocks",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)?.max(0) as u64,
                r.get::<_, i64>(1)?.max(0) as u64,
            ))
        },
    )
}
