//! The `logbook` and `logbook_acks` tables: the shift log, append-only.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{parse_ts, ts, StoreError};

/// One confirmation of a handover.
#[derive(Debug, Clone, PartialEq)]
pub struct AckRow {
    pub username: String,
    pub acked_at: DateTime<Utc>,
}

/// One entry with its confirmations.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    pub id: i64,
    pub park: String,
    pub category: String,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    pub alarm: Option<String>,
    /// JSON of the handover snapshot.
    pub snapshot: Option<String>,
    pub created_at: DateTime<Utc>,
    pub acks: Vec<AckRow>,
}

/// An entry to store.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub park: String,
    pub category: String,
    pub author_id: i64,
    pub author: String,
    pub text: String,
    pub alarm: Option<String>,
    pub snapshot: Option<String>,
}

/// Which entries to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    /// Only these parks (`None`: every park).
    pub parks: Option<Vec<String>>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub category: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

const COLUMNS: &str = "id, park, category, author_id, author, text, alarm, snapshot, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<EntryRow> {
    Ok(EntryRow {
        id: r.get(0)?,
        park: r.get(1)?,
        category: r.get(2)?,
        author_id: r.get(3)?,
        author: r.get(4)?,
        text: r.get(5)?,
        alarm: r.get(6)?,
        snapshot: r.get(7)?,
        created_at: parse_ts(&r.get::<_, String>(8)?),
        acks: Vec::new(),
    })
}

/// Stores an entry; returns its id.
pub fn insert(tx: &Transaction<'_>, e: &NewEntry, now: DateTime<Utc>) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO logbook (park, category, author_id, author, text, alarm, snapshot, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.park,
        e.category,
        e.author_id,
        e.author,
        e.text,
        e.alarm,
        e.snapshot,
        ts(now)
    ])?;
    Ok(tx.last_insert_rowid())
}

fn with_acks(c: &Connection, mut e: EntryRow) -> Result<EntryRow, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT username, acked_at FROM logbook_acks WHERE entry_id = ?1 ORDER BY acked_at",
    )?;
    let rows = st.query_map([e.id], |r| {
        Ok(AckRow {
            username: r.get(0)?,
            acked_at: parse_ts(&r.get::<_, String>(1)?),
        })
    })?;
    e.acks = rows.collect::<Result<_, _>>()?;
    Ok(e)
}

/// One entry with its confirmations.
pub fn get(c: &Connection, id: i64) -> Result<Option<EntryRow>, StoreError> {
    let e = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM logbook WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?;
    e.map(|e| with_acks(c, e)).transpose()
}

/// A page of entries, newest first.
pub fn page(c: &Connection, f: &EntryFilter) -> Result<Vec<EntryRow>, StoreError> {
    let parks = f
        .parks
        .as_ref()
        .map(|p| serde_json::to_string(p).unwrap_or_else(|_| "[]".into()));
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM logbook \
         WHERE (?1 IS NULL OR park IN (SELECT value FROM json_each(?1))) \
           AND (?2 IS NULL OR created_at >= ?2) AND (?3 IS NULL OR created_at < ?3) \
           AND (?4 IS NULL OR category = ?4) AND id < ?5 \
         ORDER BY id DESC LIMIT ?6"
    ))?;
    let rows = st.query_map(
        params![
            parks,
            f.from.map(ts),
            f.to.map(ts),
            f.category,
            f.before_id.unwrap_or(i64::MAX),
            f.limit
        ],
        from_row,
    )?;
    let rows: Vec<EntryRow> = rows.collect::<Result<_, _>>()?;
    rows.into_iter().map(|e| with_acks(c, e)).collect()
}

/// Records that `username` confirmed entry `id`; `false` when they had confirmed it before.
pub fn ack(
    tx: &Transaction<'_>,
    id: i64,
    user_id: i64,
    username: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO logbook_acks (entry_id, user_id, username, acked_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, user_id, username, ts(now)])?;
    Ok(n == 1)
}
