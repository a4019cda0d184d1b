//! The append-only, hash-chained `audit` table.
//!
//! Each row stores `prev_hash` (the previous row's `hash`, 64 zeros for the first row) and
//! `hash = SHA-256(prev_hash || canonical JSON array of the row's fields incl. its id)`.
//! Triggers forbid UPDATE and DELETE; ids come from AUTOINCREMENT, so a deleted row shows as a
//! gap (or, at the tail, as `sqlite_sequence` being ahead of the last row).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{parse_ts, ts, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One state change to record. `source` is `panel`, `cli` or the remote address; `result` is
/// `ok` or an error code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: Option<String>,
    pub role: Option<String>,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub result: String,
}

/// One stored row, as exported and shown to auditors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    /// UTC, RFC 3339.
    pub ts: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub result: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Which rows to read, newest first when paging (`before_id`) or oldest first when exporting.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Inclusive lower bound on the time.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on the time.
    pub to: Option<DateTime<Utc>>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Only rows with an id below this one (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many rows (default 200, capped at 1000 by `Auth::audit_page`).
    pub limit: Option<u32>,
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked.
    pub rows: u64,
    /// The first bad row id and why, when the chain is broken.
    pub first_bad: Option<(i64, String)>,
}

/// The hash of a row given its fields and the previous hash.
pub fn row_hash(prev_hash: &str, id: i64, ts: &str, e: &AuditEntry) -> String {
    let canonical = serde_json::json!([
        id,
        ts,
        e.actor,
        e.role,
        e.source,
        e.action,
        e.target,
        e.old_value,
        e.new_value,
        e.result
    ]);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Appends one row inside the caller's transaction; returns its id.
pub fn append(c: &Connection, e: &AuditEntry, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let (last_id, prev_hash): (i64, String) = c
        .query_row(
            "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
            e => Err(e),
        })?;
    let seq: i64 = c.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)",
        [],
        |r| r.get(0),
    )?;
    let id = last_id.max(seq) + 1;
    let t = ts(now);
    let hash = row_hash(&prev_hash, id, &t, e);
    c.prepare_cached(
        "INSERT INTO audit (id, ts, actor, role, source, action, target, old_value, new_value, result, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        id,
        t,
        e.actor,
        e.role,
        e.source,
        e.action,
        e.target,
        e.old_value,
        e.new_value,
        e.result,
        prev_hash,
        hash
    ])?;
    Ok(id)
}

const COLUMNS: &str =
    "id, ts, actor, role, source, action, target, old_value, new_value, result, prev_hash, hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        role: r.get(3)?,
        source: r.get(4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        old_value: r.get(7)?,
        new_value: r.get(8)?,
        result: r.get(9)?,
        prev_hash: r.get(10)?,
        hash: r.get(11)?,
    })
}

impl AuditRow {
    /// The entry part of the row (what was hashed besides id, time and prev_hash).
    pub fn entry(&self) -> AuditEntry {
        AuditEntry {
            actor: self.actor.clone(),
            role: self.role.clone(),
            source: self.source.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            old_value: self.old_value.clone(),
            new_value: self.new_value.clone(),
            result: self.result.clone(),
        }
    }

    /// The row's time.
    pub fn time(&self) -> DateTime<Utc> {
        parse_ts(&self.ts)
    }
}

/// Walks the whole chain in id order and reports the first row that does not verify.
pub fn verify(c: &Connection) -> Result<VerifyReport, StoreError> {
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))?;
    let mut rows = st.query([])?;
    let mut expected_id = 1i64;
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        let row = from_row(r)?;
        n += 1;
        if row.id != expected_id {
            return Ok(VerifyReport {
                rows: n,
                first_bad: Some((
                    row.id,
                    format!(
                        "row(s) {}..{} missing before it (deleted)",
                        expected_id,
                        row.id - 1
                    ),
                )),
            });
        }
        if row.prev_hash != prev {
            return Ok(VerifyReport {
                rows: n,
                first_bad: Some((
                    row.id,
                    "prev_hash does not match the previous row (row deleted or chain rewritten)"
                        .into(),
                )),
            });
        }
        let h = row_hash(&row.prev_hash, row.id, &row.ts, &row.entry());
        if h != row.hash {
            return Ok(VerifyReport {
                rows: n,
                first_bad: Some((
                    row.id,
                    "hash does not match the row's content (modified)".into(),
                )),
            });
        }
        prev = row.hash;
        expected_id += 1;
    }
    let seq: i64 = c.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)",
        [],
        |r| r.get(0),
    )?;
    if seq >= expected_id {
        return Ok(VerifyReport {
            rows: n,
            first_bad: Some((
                expected_id,
                format!("row(s) {expected_id}..{seq} missing at the end (deleted)"),
            )),
        });
    }
    Ok(VerifyReport {
        rows: n,
        first_bad: None,
    })
}

/// Rows matching the filter. With `before_id` or `newest_first` newest first, else oldest first.
pub fn query(
    c: &Connection,
    f: &AuditFilter,
    newest_first: bool,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(t) = f.from {
        args.push(ts(t).into());
        sql += &format!(" AND ts >= ?{}", args.len());
    }
    if let Some(t) = f.to {
        args.push(ts(t).into());
        sql += &format!(" AND ts < ?{}", args.len());
    }
    if let Some(a) = &f.actor {
        args.push(a.clone().into());
        sql += &format!(" AND actor = ?{} COLLATE NOCASE", args.len());
    }
    if let Some(a) = &f.action {
        args.push(a.clone().into());
        sql += &format!(" AND action = ?{}", args.len());
    }
    if let Some(b) = f.before_id {
        args.push(b.into());
        sql += &format!(" AND id < ?{}", args.len());
    }
    let newest_first = newest_first || f.before_id.is_some();
    sql += if newest_first {
        " ORDER BY id DESC"
    } else {
        " ORDER BY id"
    };
    if let Some(l) = f.limit {
        sql += &format!(" LIMIT {l}");
    }
    let mut st = c.prepare(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls `each` for every row in the filter's time range, oldest first (streaming export).
pub fn for_each(
    c: &Connection,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    mut each: impl FnMut(AuditRow) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM audit WHERE ts >= ?1 AND ts < ?2 ORDER BY id"
    ))?;
    let lo = from.map(ts).unwrap_or_default();
    let hi = to.map(ts).unwrap_or_else(|| "9999".into());
    let mut rows = st.query(params![lo, hi])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        each(from_row(r)?)?;
        n += 1;
    }
    Ok(n)
}
