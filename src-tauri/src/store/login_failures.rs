//! The `login_failures` table: failed-login counters and locks per account and kind of source.
//! What the numbers mean (windows, limits) is decided in `auth::lockout`; this only stores them.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts, StoreError};

/// The counter of one account for one kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub attempts: u32,
    pub window_start: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// The stored counter (`scope` is `local` or `remote`); `None` when there is none.
pub fn get(c: &Connection, user_id: i64, scope: &str) -> Result<Option<Failures>, StoreError> {
    Ok(c.query_row(
        "SELECT attempts, window_start, locked_until FROM login_failures \
         WHERE user_id = ?1 AND scope = ?2",
        params![user_id, scope],
        |r| {
            Ok(Failures {
                attempts: r.get(0)?,
                window_start: parse_ts(&r.get::<_, String>(1)?),
                locked_until: r.get::<_, Option<String>>(2)?.as_deref().map(parse_ts),
            })
        },
    )
    .optional()?)
}

/// Stores the counter (insert or replace).
pub fn put(c: &Connection, user_id: i64, scope: &str, f: &Failures) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO login_failures (user_id, scope, attempts, window_start, locked_until) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (user_id, scope) DO UPDATE SET attempts = ?3, window_start = ?4, \
         locked_until = ?5",
        params![
            user_id,
            scope,
            f.attempts,
            ts(f.window_start),
            f.locked_until.map(ts)
        ],
    )?;
    Ok(())
}

/// Forgets the counter of one scope, or of every scope when `scope` is `None`.
pub fn clear(c: &Connection, user_id: i64, scope: Option<&str>) -> Result<(), StoreError> {
    match scope {
        Some(s) => c.execute(
            "DELETE FROM login_failures WHERE user_id = ?1 AND scope = ?2",
            params![user_id, s],
        )?,
        None => c.execute("DELETE FROM login_failures WHERE user_id = ?1", [user_id])?,
    };
    Ok(())
}
