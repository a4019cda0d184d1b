//! The `service_periods` and `calibration_records` tables (migration `0007_service`).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts, StoreError};

/// One service period of a park.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePeriod {
    pub id: i64,
    pub park: String,
    pub user_id: i64,
    pub username: String,
    /// The session that started it: the period ends with that session.
    pub session_id: i64,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: Option<String>,
}

fn period(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServicePeriod> {
    Ok(ServicePeriod {
        id: r.get(0)?,
        park: r.get(1)?,
        user_id: r.get(2)?,
        username: r.get(3)?,
        session_id: r.get(4)?,
        reason: r.get(5)?,
        started_at: parse_ts(&r.get::<_, String>(6)?),
        ended_at: r.get::<_, Option<String>>(7)?.map(|s| parse_ts(&s)),
        end_reason: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, park, user_id, username, session_id, reason, started_at, ended_at, end_reason";

/// Every open period (the parks in service now).
pub fn open_periods(c: &Connection) -> Result<Vec<ServicePeriod>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM service_periods WHERE ended_at IS NULL ORDER BY park"
    ))?;
    let rows = st.query_map([], period)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Periods overlapping `[from, to)`, oldest first, at most `limit` (for journals).
pub fn periods_between(
    c: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<ServicePeriod>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM service_periods WHERE started_at < ?2 \
         AND (ended_at IS NULL OR ended_at >= ?1) ORDER BY started_at LIMIT ?3"
    ))?;
    let rows = st
        .query_map(params![ts(from), ts(to), limit], period)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Opens a period; `Conflict` when the park is in service already.
pub fn start(
    c: &Connection,
    park: &str,
    user_id: i64,
    username: &str,
    session_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<ServicePeriod, StoreError> {
    let open: Option<String> = c
        .query_row(
            "SELECT username FROM service_periods WHERE park = ?1 AND ended_at IS NULL",
            [park],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(who) = open {
        return Err(StoreError::Conflict(format!(
            "{park} is in service already (by {who})"
        )));
    }
    c.execute(
        "INSERT INTO service_periods (park, user_id, username, session_id, reason, started_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![park, user_id, username, session_id, reason, ts(now)],
    )?;
    Ok(ServicePeriod {
        id: c.last_insert_rowid(),
        park: park.into(),
        user_id,
        username: username.into(),
        session_id,
        reason: reason.into(),
        started_at: now,
        ended_at: None,
        end_reason: None,
    })
}

/// Ends the open period of `park`; `None` when the park is not in service.
pub fn end(
    c: &Connection,
    park: &str,
    end_reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<ServicePeriod>, StoreError> {
    let open = c
        .query_row(
            &format!("SELECT {COLUMNS} FROM service_periods WHERE park = ?1 AND ended_at IS NULL"),
            [park],
            period,
        )
        .optional()?;
    let Some(mut p) = open else { return Ok(None) };
    c.execute(
        "UPDATE service_periods SET ended_at = ?2, end_reason = ?3 WHERE id = ?1",
        params![p.id, ts(now), end_reason],
    )?;
    p.ended_at = Some(now);
    p.end_reason = Some(end_reason.into());
    Ok(Some(p))
}

/// One stored calibration record (the record itself is JSON the service module defines).
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationRow {
    pub id: i64,
    pub calibration: String,
    pub park: String,
    pub ts: DateTime<Utc>,
    pub actor: String,
    pub record: String,
}

/// Appends a record; returns its number.
pub fn append_record(
    c: &Connection,
    calibration: &str,
    park: &str,
    actor: &str,
    record: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO calibration_records (calibration, park, ts, actor, record) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![calibration, park, ts(now), actor, record],
    )?;
    Ok(c.last_insert_rowid())
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CalibrationRow> {
    Ok(CalibrationRow {
        id: r.get(0)?,
        calibration: r.get(1)?,
        park: r.get(2)?,
        ts: parse_ts(&r.get::<_, String>(3)?),
        actor: r.get(4)?,
        record: r.get(5)?,
    })
}

/// Which records to read: newest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub calibration: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// Records matching `f`, newest first.
pub fn records(c: &Connection, f: &RecordFilter) -> Result<Vec<CalibrationRow>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, calibration, park, ts, actor, record FROM calibration_records \
         WHERE (?1 IS NULL OR calibration = ?1) AND (?2 IS NULL OR ts >= ?2) \
         AND (?3 IS NULL OR ts < ?3) ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = st
        .query_map(
            params![f.calibration, f.from.map(ts), f.to.map(ts), f.limit.max(1)],
            record_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Record number `id`.
pub fn record(c: &Connection, id: i64) -> Result<Option<CalibrationRow>, StoreError> {
    Ok(c.query_row(
        "SELECT id, calibration, park, ts, actor, record FROM calibration_records WHERE id = ?1",
        [id],
        record_row,
    )
    .optional()?)
}

/// The newest record of each calibration that passed (for due dates).
pub fn last_passed(c: &Connection) -> Result<Vec<CalibrationRow>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, calibration, park, ts, actor, record FROM calibration_records \
         WHERE id IN (SELECT MAX(id) FROM calibration_records \
           WHERE json_extract(record, '$.pass') = 1 GROUP BY calibration)",
    )?;
    let rows = st
        .query_map([], record_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
