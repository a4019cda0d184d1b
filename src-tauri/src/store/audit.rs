//! The append-only, hash-chained `audit` table, its keyed part and its anchors.
//!
//! Each row stores `prev_hash` (the previous row's `hash`, 64 zeros for the first row) and a
//! `hash` over `prev_hash || canonical JSON array of the row's fields incl. its id`. Rows written
//! before the chain was keyed use plain SHA-256; from the row recorded in `audit_chain.keyed_from`
//! on, the hash is HMAC-SHA256 with an [`AuditKey`] kept outside the database (the secret store),
//! so someone who can only write the database file cannot forge or recompute those rows.
//! Triggers forbid UPDATE and DELETE; ids come from AUTOINCREMENT, so a deleted row shows as a
//! gap (or, at the tail, as `sqlite_sequence` being ahead of the last row).
//!
//! Neither chain can prove that rows after its end were never written: a deleted tail with a
//! fixed `sqlite_sequence` leaves a valid chain. Hence the anchors: every [`ANCHOR_EVERY_ROWS`]
//! rows, every [`ANCHOR_EVERY`] and when the store closes, the head (id, hash, row count) is
//! appended to a JSON-lines file next to the database ([`anchor_path`]) and logged; `verify`
//! checks that every anchor still matches the chain.
//!
//! The key reaches [`append`] through the writer connection itself (a SQL function registered by
//! [`install_key`]), so every caller that appends inside a `Store::write` transaction gets the
//! keyed chain without passing the key around, and the key never enters the database.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{parse_ts, ts, StoreError};

/// The `prev_hash` of the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An anchor is written after at most this many new rows …
pub const ANCHOR_EVERY_ROWS: i64 = 100;
/// … or at the first write (or maintenance tick) this long after the previous anchor.
pub const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The SQL function through which the writer connection computes keyed hashes.
const MAC_FN: &str = "stator_audit_mac";

/// The 256-bit HMAC key of the audit chain. Lives in the secret store (`audit/hmac`), never in
/// the database; the store only holds it in memory (in the writer connection's SQL function).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    /// A fresh random key (OS randomness).
    pub fn generate() -> AuditKey {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        AuditKey(k)
    }

    /// Parses the stored form (64 hex digits).
    pub fn from_hex(s: &str) -> Result<AuditKey, String> {
        let raw = hex::decode(s.trim()).map_err(|e| format!("audit key is not hex: {e}"))?;
        let k: [u8; 32] = raw
            .try_into()
            .map_err(|_| "audit key must be 32 bytes (64 hex digits)".to_string())?;
        Ok(AuditKey(k))
    }

    /// The stored form (64 hex digits).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, prev_hash: &str, canonical: &str) -> String {
        // new_from_slice only fails for key lengths HMAC cannot take; any length works for SHA-256.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        m.update(prev_hash.as_bytes());
        m.update(canonical.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

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
    /// The first bad row id and why, when the chain is broken (or an anchor does not match).
    pub first_bad: Option<(i64, String)>,
    /// The first keyed row (`None`: the chain of this database was never keyed).
    pub keyed_from: Option<i64>,
    /// Anchors compared with the chain.
    pub anchors: usize,
}

/// One anchor: the chain's head at a moment, written outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// When the anchor was written (UTC, RFC 3339).
    pub ts: String,
    pub head_id: i64,
    pub head_hash: String,
    /// Rows with an id up to `head_id`.
    pub count: i64,
    /// The chain's first keyed row at that moment.
    pub keyed_from: Option<i64>,
}

/// The anchor file of a database: `<db>.anchors` next to it.
pub fn anchor_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(".anchors");
    PathBuf::from(s)
}

/// The anchors in the file, oldest first; `None` when the file does not exist. A line that is
/// not an anchor is an error (the file is evidence: it is never silently skipped).
pub fn read_anchors(path: &Path) -> Result<Option<Vec<Anchor>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| format!("{} line {}: not an anchor: {e}", path.display(), i + 1))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Appends one anchor line and flushes it to disk (fsync) before returning.
pub fn write_anchor(path: &Path, a: &Anchor) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(a).map_err(std::io::Error::other)?;
    // One write call per line, so concurrent writers (server and CLI) never interleave a line.
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

/// The chain's head: `(id, hash)` of the newest row.
pub fn head(c: &Connection) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        c.prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    )
}

/// An anchor for the current head (`None` while the table is empty).
pub fn current_anchor(c: &Connection, now: DateTime<Utc>) -> Result<Option<Anchor>, StoreError> {
    let Some((head_id, head_hash)) = head(c)? else {
        return Ok(None);
    };
    let count = c.query_row(
        "SELECT COUNT(*) FROM audit WHERE id <= ?1",
        [head_id],
        |r| r.get(0),
    )?;
    Ok(Some(Anchor {
        ts: ts(now),
        head_id,
        head_hash,
        count,
        keyed_from: keyed_from(c)?,
    }))
}

/// The first keyed row id, when the chain of this database is keyed.
pub fn keyed_from(c: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(
        c.prepare_cached("SELECT keyed_from FROM audit_chain WHERE id = 1")?
            .query_row([], |r| r.get(0))
            .optional()?,
    )
}

/// Registers the key on the writer connection and records, once per database, from which row on
/// the chain is keyed (the next row to be written). Rows before it stay plain SHA-256.
pub(super) fn install_key(c: &Connection, key: &AuditKey) -> Result<(), StoreError> {
    let k = key.clone();
    c.create_scalar_function(
        MAC_FN,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |ctx| {
            let prev: String = ctx.get(0)?;
            let canonical: String = ctx.get(1)?;
            Ok(k.mac(&prev, &canonical))
        },
    )?;
    c.execute(
        "INSERT OR IGNORE INTO audit_chain (id, keyed_from) VALUES (1, \
         MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0), \
             COALESCE((SELECT MAX(id) FROM audit), 0)) + 1)",
        [],
    )?;
    Ok(())
}

/// The canonical text of a row's fields that its hash covers.
fn canonical(id: i64, ts: &str, e: &AuditEntry) -> String {
    serde_json::json!([
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
    ])
    .to_string()
}

/// The plain (unkeyed) hash of a row given its fields and the previous hash: the chain before
/// `keyed_from`.
pub fn row_hash(prev_hash: &str, id: i64, ts: &str, e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical(id, ts, e).as_bytes());
    hex::encode(h.finalize())
}

/// The keyed hash (HMAC-SHA256) of a row: the chain from `keyed_from` on.
pub fn row_mac(key: &AuditKey, prev_hash: &str, id: i64, ts: &str, e: &AuditEntry) -> String {
    key.mac(prev_hash, &canonical(id, ts, e))
}

/// Appends one row inside the caller's transaction; returns its id.
///
/// The row's time is `now`, raised to the previous row's time when `now` is older (a writer that
/// read the clock before waiting for the write lock), so time order is id order. Rows from
/// `keyed_from` on need the key on this connection; without it the append fails (fail closed:
/// an unkeyed row would break the chain).
pub fn append(c: &Connection, e: &AuditEntry, now: DateTime<Utc>) -> Result<i64, StoreError> {
    let (last_id, prev_hash, prev_ts): (i64, String, String) = c
        .prepare_cached("SELECT id, hash, ts FROM audit ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_string(), String::new()));
    let seq: i64 = c.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)",
        [],
        |r| r.get(0),
    )?;
    let id = last_id.max(seq) + 1;
    // Fixed-width RFC 3339 text: text order is time order.
    let t = ts(now).max(prev_ts);
    let hash = if keyed_from(c)?.is_some_and(|k| id >= k) {
        let canonical = canonical(id, &t, e);
        let mut st = c
            .prepare_cached(&format!("SELECT {MAC_FN}(?1, ?2)"))
            .map_err(|_| {
                StoreError::Audit(
                    "the audit chain of this database is keyed: it can only be appended to with \
                     the audit key (secret audit/hmac)"
                        .into(),
                )
            })?;
        st.query_row(params![prev_hash, canonical], |r| r.get(0))?
    } else {
        row_hash(&prev_hash, id, &t, e)
    };
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

/// Walks the whole chain in id order and reports the first problem: a gap, a broken link, a
/// hash that does not match (plain SHA-256 before `keyed_from`, HMAC with `key` from it on), a
/// deleted tail, or an anchor the chain no longer matches. `anchors` is `None` when the anchor
/// file does not exist. Without the key, keyed rows cannot be checked: that is a failure too.
pub fn verify(
    c: &Connection,
    key: Option<&AuditKey>,
    anchors: Option<&[Anchor]>,
) -> Result<VerifyReport, StoreError> {
    let keyed = keyed_from(c)?;
    let mut report = VerifyReport {
        rows: 0,
        first_bad: None,
        keyed_from: keyed,
        anchors: anchors.map_or(0, |a| a.len()),
    };
    let bad = |mut r: VerifyReport, id: i64, why: String| {
        r.first_bad = Some((id, why));
        Ok(r)
    };
    let mut by_head: std::collections::BTreeMap<i64, Vec<&Anchor>> = Default::default();
    for a in anchors.unwrap_or_default() {
        by_head.entry(a.head_id).or_default().push(a);
    }
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))?;
    let mut rows = st.query([])?;
    let mut expected_id = 1i64;
    let mut prev = GENESIS.to_string();
    let mut prev_ts = String::new();
    while let Some(r) = rows.next()? {
        let row = from_row(r)?;
        report.rows += 1;
        if row.id != expected_id {
            let why = format!(
                "row(s) {}..{} missing before it (deleted)",
                expected_id,
                row.id - 1
            );
            return bad(report, row.id, why);
        }
        if row.prev_hash != prev {
            let why =
                "prev_hash does not match the previous row (row deleted or chain rewritten)".into();
            return bad(report, row.id, why);
        }
        let is_keyed = keyed.is_some_and(|k| row.id >= k);
        let h = match (is_keyed, key) {
            (false, _) => row_hash(&row.prev_hash, row.id, &row.ts, &row.entry()),
            (true, Some(k)) => row_mac(k, &row.prev_hash, row.id, &row.ts, &row.entry()),
            (true, None) => {
                let why = "the chain is keyed from here on and the audit key (secret audit/hmac) \
                           is not available, so these rows cannot be verified"
                    .into();
                return bad(report, row.id, why);
            }
        };
        if h != row.hash {
            let why = if is_keyed {
                "hash does not match the row's content under the audit key (modified, or \
                 recomputed without the key)"
            } else {
                "hash does not match the row's content (modified)"
            };
            return bad(report, row.id, why.into());
        }
        // Rows written before the chain was keyed may be out of time order (older versions
        // took the time before waiting for the write lock); keyed rows never are.
        if is_keyed && row.ts < prev_ts {
            let why = format!("time {} is before the previous row's {prev_ts}", row.ts);
            return bad(report, row.id, why);
        }
        for a in by_head.remove(&row.id).unwrap_or_default() {
            if a.head_hash != row.hash || a.count != report.rows as i64 {
                let why = format!(
                    "does not match the anchor written at {} (hash {}…, {} rows): history up \
                     to this row was rewritten",
                    a.ts,
                    a.head_hash.get(..12).unwrap_or(&a.head_hash),
                    a.count
                );
                return bad(report, row.id, why);
            }
            // An anchor from before the keying names no keyed row; the keying came after it.
            let consistent = match a.keyed_from {
                Some(_) => a.keyed_from == keyed,
                None => keyed.is_none_or(|k| k > a.head_id),
            };
            if !consistent {
                let why = format!(
                    "the anchor written at {} says the chain is keyed from row {:?}, the \
                     database says {:?} (keyed marker changed)",
                    a.ts, a.keyed_from, keyed
                );
                return bad(report, row.id, why);
            }
        }
        prev = row.hash;
        prev_ts = row.ts;
        expected_id += 1;
    }
    if let Some((id, a)) = by_head.iter().next() {
        let why = format!(
            "the anchor written at {} covers rows up to {id}, the chain ends at row {} (rows \
             deleted from the end)",
            a[0].ts,
            expected_id - 1
        );
        return bad(report, expected_id, why);
    }
    let seq: i64 = c.query_row(
        "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)",
        [],
        |r| r.get(0),
    )?;
    if seq >= expected_id {
        let why = format!("row(s) {expected_id}..{seq} missing at the end (deleted)");
        return bad(report, expected_id, why);
    }
    if key.is_some() && keyed.is_none() && report.rows > 0 {
        let why = "the audit key exists but this database's chain was never keyed (the \
                   audit_chain marker was removed, or no keyed stator has opened it since the \
                   upgrade)"
            .into();
        return bad(report, 1, why);
    }
    if anchors.is_none() && keyed.is_some_and(|k| expected_id > k) {
        let why = "keyed rows exist but the anchor file is missing (it was deleted, or the \
                   writer stopped before its first anchor)"
            .into();
        return bad(report, expected_id - 1, why);
    }
    Ok(report)
}

/// Rows matching the filter. With `before_id` or `newest_first` newest first, else oldest first.
pub fn query(
    c: &Connection,
    f: &AuditFilter,
    newest_first: bool,
) -> Result<Vec<AuditRow>, StoreError> {
    query_in(c, f, newest_first, &Scope::All)
}

/// [`query`] restricted to what `scope` may see. The restriction is part of the SQL `WHERE`, so
/// `LIMIT` counts only visible rows and pages are full.
///
/// A park-limited reader sees a row when its target is one of the reader's parks (`park` or
/// `park/…`), or, for rows not aimed at a configured park, when its actor or its target is a
/// user the reader may see ([`super::users::visible_sql`]).
pub fn query_in(
    c: &Connection,
    f: &AuditFilter,
    newest_first: bool,
    scope: &Scope,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Scope::Parks {
        granted,
        configured,
    } = scope
    {
        args.push(json_list(granted).into());
        let g = args.len();
        args.push(json_list(configured).into());
        let k = args.len();
        let head =
            "CASE WHEN instr(target, '/') > 0 THEN substr(target, 1, instr(target, '/') - 1) \
                    ELSE target END";
        let user = |col: &str| {
            format!(
                "EXISTS (SELECT 1 FROM users u WHERE u.username = audit.{col} AND {})",
                super::users::visible_sql("u", g)
            )
        };
        sql += &format!(
            " AND (CASE WHEN target IS NOT NULL AND {head} IN (SELECT value FROM json_each(?{k})) \
               THEN {head} IN (SELECT value FROM json_each(?{g})) \
               ELSE ({} OR {}) END)",
            user("actor"),
            user("target")
        );
    }
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

/// What a reader of the audit trail or the user list may see: everything (superusers, the CLI),
/// or what concerns their granted parks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Parks {
        /// The reader's granted (and configured) parks.
        granted: Vec<String>,
        /// Every configured park: targets naming one of these are park rows.
        configured: Vec<String>,
    },
}

/// A JSON array of strings, bound as one parameter and read with `json_each`.
fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The CSV header of [`csv_line`].
pub const CSV_HEADER: &str =
    "id,ts,actor,role,source,action,target,old_value,new_value,result,prev_hash,hash";

/// One CSV cell. Text a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a
/// tab or CR) gets a leading `'` (OWASP CSV injection); cells with a comma, quote or line break
/// are quoted with `"` doubled.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One row as a CSV line (no line break), columns as in [`CSV_HEADER`].
pub fn csv_line(r: &AuditRow) -> String {
    let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
    [
        r.id.to_string(),
        csv_field(&r.ts),
        o(&r.actor),
        o(&r.role),
        csv_field(&r.source),
        csv_field(&r.action),
        o(&r.target),
        o(&r.old_value),
        o(&r.new_value),
        csv_field(&r.result),
        csv_field(&r.prev_hash),
        csv_field(&r.hash),
    ]
    .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(
            csv_field("=HYPERLINK(\"http://x\",\"a\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"a\"\")\""
        );
        for lead in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                csv_field(lead).trim_start_matches('"').starts_with('\''),
                "{lead:?}"
            );
        }
        assert_eq!(csv_field("anna"), "anna");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn key_round_trips_and_is_not_printed() {
        let k = AuditKey::generate();
        assert_eq!(AuditKey::from_hex(&k.to_hex()).unwrap(), k);
        assert_ne!(AuditKey::generate(), k);
        assert!(!format!("{k:?}").contains(&k.to_hex()));
        assert!(AuditKey::from_hex("abcd").is_err());
    }
}
