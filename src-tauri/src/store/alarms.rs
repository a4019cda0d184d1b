//! Alarm tables: the persisted state of every alarm, the append-only journal and the incident
//! rows (one per occurrence). The evaluator (`crate::alarms`) owns the meaning; this file only
//! stores and reads rows, so no SQL leaves the store.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{parse_ts, ts, StoreError};

/// Most journal or incident rows one read returns.
pub const MAX_ROWS: u32 = 10_000;

/// The persisted state of one alarm.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StateRow {
    pub alarm: String,
    pub state: String,
    pub active: bool,
    /// The condition as last evaluated (before the on/off delay).
    pub raw: bool,
    pub raw_since: Option<DateTime<Utc>>,
    pub active_since: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub shelved_until: Option<DateTime<Utc>>,
    pub shelve_reason: Option<String>,
    /// The reason it was taken out of service; `None` while in service.
    pub out_of_service: Option<String>,
    /// The last value as compact JSON.
    pub value: Option<String>,
    pub peak: Option<f64>,
}

/// One journal event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JournalEntry {
    pub ts: DateTime<Utc>,
    pub alarm: String,
    pub park: String,
    pub priority: String,
    /// `raise`, `clear`, `ack`, `shelve`, `unshelve`, `out_of_service`, `in_service`.
    pub event: String,
    /// The state after the event.
    pub state: String,
    pub value: Option<String>,
    pub actor: Option<String>,
    pub comment: Option<String>,
    /// For `clear`: the most extreme value of the occurrence (goes to its incident row).
    pub peak: Option<f64>,
}

/// One stored journal row.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub alarm: String,
    pub park: String,
    pub priority: String,
    pub event: String,
    pub state: String,
    pub value: Option<String>,
    pub actor: Option<String>,
    pub comment: Option<String>,
}

/// One occurrence: raise → clear.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub id: i64,
    pub alarm: String,
    pub park: String,
    pub priority: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub peak: Option<f64>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
}

/// Which rows to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only these parks (always given: the caller's visible parks).
    pub parks: Vec<String>,
    pub priority: Option<String>,
    /// One alarm id, or `comm` for every park's communication alarm (incidents).
    pub alarm: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Every persisted alarm state.
pub fn load_states(c: &Connection) -> Result<Vec<StateRow>, StoreError> {
    let mut st = c.prepare(
        "SELECT alarm, state, active, raw, raw_since, active_since, acked_by, acked_at, comment, \
         shelved_until, shelve_reason, out_of_service, value, peak FROM alarm_state",
    )?;
    let t = |s: Option<String>| s.map(|s| parse_ts(&s));
    let rows = st
        .query_map([], |r| {
            Ok(StateRow {
                alarm: r.get(0)?,
                state: r.get(1)?,
                active: r.get(2)?,
                raw: r.get(3)?,
                raw_since: t(r.get(4)?),
                active_since: t(r.get(5)?),
                acked_by: r.get(6)?,
                acked_at: t(r.get(7)?),
                comment: r.get(8)?,
                shelved_until: t(r.get(9)?),
                shelve_reason: r.get(10)?,
                out_of_service: r.get(11)?,
                value: r.get(12)?,
                peak: r.get(13)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Stores states and journal events in one transaction (the caller's), keeping the incident
/// rows in step with the journal: `raise` opens one, `clear` closes it, `ack` signs it.
pub fn apply(
    tx: &Transaction<'_>,
    states: &[StateRow],
    journal: &[JournalEntry],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let o = |t: Option<DateTime<Utc>>| t.map(ts);
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO alarm_state (alarm, state, active, raw, raw_since, active_since, \
             acked_by, acked_at, comment, shelved_until, shelve_reason, out_of_service, value, \
             peak, updated_at) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15) \
             ON CONFLICT(alarm) DO UPDATE SET state=?2, active=?3, raw=?4, raw_since=?5, \
             active_since=?6, acked_by=?7, acked_at=?8, comment=?9, shelved_until=?10, \
             shelve_reason=?11, out_of_service=?12, value=?13, peak=?14, updated_at=?15",
        )?;
        for s in states {
            up.execute(params![
                s.alarm,
                s.state,
                s.active,
                s.raw,
                o(s.raw_since),
                o(s.active_since),
                s.acked_by,
                o(s.acked_at),
                s.comment,
                o(s.shelved_until),
                s.shelve_reason,
                s.out_of_service,
                s.value,
                s.peak,
                ts(now),
            ])?;
        }
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO alarm_journal (ts, alarm, park, priority, event, state, value, actor, comment) \
         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    )?;
    for j in journal {
        ins.execute(params![
            ts(j.ts),
            j.alarm,
            j.park,
            j.priority,
            j.event,
            j.state,
            j.value,
            j.actor,
            j.comment
        ])?;
        match j.event.as_str() {
            "raise" => {
                tx.prepare_cached(
                    "UPDATE alarm_incidents SET ended = ?2 WHERE alarm = ?1 AND ended IS NULL",
                )?
                .execute(params![j.alarm, ts(j.ts)])?;
                tx.prepare_cached(
                    "INSERT INTO alarm_incidents (alarm, park, priority, started, peak) \
                     VALUES (?1,?2,?3,?4,?5)",
                )?
                .execute(params![
                    j.alarm,
                    j.park,
                    j.priority,
                    ts(j.ts),
                    j.peak
                ])?;
            }
            "clear" => {
                tx.prepare_cached(
                    "UPDATE alarm_incidents SET ended = ?2, peak = coalesce(?3, peak) \
                     WHERE alarm = ?1 AND ended IS NULL",
                )?
                .execute(params![j.alarm, ts(j.ts), j.peak])?;
            }
            "ack" => {
                tx.prepare_cached(
                    "UPDATE alarm_incidents SET acked_by = ?2, acked_at = ?3 WHERE id = \
                     (SELECT max(id) FROM alarm_incidents WHERE alarm = ?1) AND acked_by IS NULL",
                )?
                .execute(params![j.alarm, j.actor, ts(j.ts)])?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The WHERE clause and arguments of `f` on a table with `time_col`, `park`, `alarm` and (for
/// the journal) `priority` columns.
fn filter_sql(f: &Filter, time_col: &str, id_col: &str) -> (String, Vec<rusqlite::types::Value>) {
    let mut args: Vec<rusqlite::types::Value> = vec![serde_json::to_string(&f.parks)
        .unwrap_or_else(|_| "[]".into())
        .into()];
    let mut sql = " WHERE park IN (SELECT value FROM json_each(?1))".to_string();
    if let Some(t) = f.from {
        args.push(ts(t).into());
        sql += &format!(" AND {time_col} >= ?{}", args.len());
    }
    if let Some(t) = f.to {
        args.push(ts(t).into());
        sql += &format!(" AND {time_col} < ?{}", args.len());
    }
    if let Some(p) = &f.priority {
        args.push(p.clone().into());
        sql += &format!(" AND priority = ?{}", args.len());
    }
    match f.alarm.as_deref() {
        Some("comm") => sql += " AND alarm = park || '.comm'",
        Some(a) => {
            args.push(a.to_string().into());
            sql += &format!(" AND alarm = ?{}", args.len());
        }
        None => {}
    }
    if let Some(b) = f.before_id {
        args.push(b.into());
        sql += &format!(" AND {id_col} < ?{}", args.len());
    }
    args.push(i64::from(f.limit.clamp(1, MAX_ROWS)).into());
    sql += &format!(" ORDER BY {id_col} DESC LIMIT ?{}", args.len());
    (sql, args)
}

/// Journal rows, newest first.
pub fn journal(c: &Connection, f: &Filter) -> Result<Vec<JournalRow>, StoreError> {
    let (w, args) = filter_sql(f, "ts", "id");
    let mut st = c.prepare(&format!(
        "SELECT id, ts, alarm, park, priority, event, state, value, actor, comment \
         FROM alarm_journal{w}"
    ))?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(JournalRow {
                id: r.get(0)?,
                ts: parse_ts(&r.get::<_, String>(1)?),
                alarm: r.get(2)?,
                park: r.get(3)?,
                priority: r.get(4)?,
                event: r.get(5)?,
                state: r.get(6)?,
                value: r.get(7)?,
                actor: r.get(8)?,
                comment: r.get(9)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Incident rows (one per occurrence), newest first; `from`/`to` bound the start time.
pub fn incidents(c: &Connection, f: &Filter) -> Result<Vec<IncidentRow>, StoreError> {
    let (w, args) = filter_sql(f, "started", "id");
    let mut st = c.prepare(&format!(
        "SELECT id, alarm, park, priority, started, ended, peak, acked_by, acked_at \
         FROM alarm_incidents{w}"
    ))?;
    let t = |s: Option<String>| s.map(|s| parse_ts(&s));
    let rows = st
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(IncidentRow {
                id: r.get(0)?,
                alarm: r.get(1)?,
                park: r.get(2)?,
                priority: r.get(3)?,
                started: parse_ts(&r.get::<_, String>(4)?),
                ended: t(r.get(5)?),
                peak: r.get(6)?,
                acked_by: r.get(7)?,
                acked_at: t(r.get(8)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Raise events `(alarm, time)` in a range, oldest first, for the EEMUA 191 figures; at most
/// `limit` rows (the caller says when the answer was cut).
pub fn raises(
    c: &Connection,
    parks: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let mut st = c.prepare(
        "SELECT alarm, ts FROM alarm_journal WHERE event = 'raise' AND ts >= ?1 AND ts < ?2 \
         AND park IN (SELECT value FROM json_each(?3)) ORDER BY id LIMIT ?4",
    )?;
    let parks = serde_json::to_string(parks).unwrap_or_else(|_| "[]".into());
    let rows = st
        .query_map(params![ts(from), ts(to), parks, limit], |r| {
            Ok((r.get::<_, String>(0)?, parse_ts(&r.get::<_, String>(1)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The newest journal id (tests and paging).
pub fn last_journal_id(c: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(
        c.query_row("SELECT max(id) FROM alarm_journal", [], |r| r.get(0))
            .optional()?
            .flatten(),
    )
}
