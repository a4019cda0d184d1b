//! The `sessions` and `user_changes` tables.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{parse_ts, ts, StoreError};

/// One session row (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Inserts a session; returns its id.
pub fn insert(
    c: &Connection,
    token_sha256: &str,
    user_id: i64,
    source: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO sessions (token_sha256, user_id, source, created_at, expires_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
        params![token_sha256, user_id, source, ts(now), ts(expires_at)],
    )?;
    Ok(c.last_insert_rowid())
}

/// The session with this token hash, revoked or not.
pub fn by_token(c: &Connection, token_sha256: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT id, user_id, source, created_at, expires_at, last_seen_at, revoked_at IS NOT NULL \
         FROM sessions WHERE token_sha256 = ?1",
    )?
    .query_row([token_sha256], |r| {
        Ok(SessionRow {
            id: r.get(0)?,
            user_id: r.get(1)?,
            source: r.get(2)?,
            created_at: parse_ts(&r.get::<_, String>(3)?),
            expires_at: parse_ts(&r.get::<_, String>(4)?),
            last_seen_at: parse_ts(&r.get::<_, String>(5)?),
            revoked: r.get(6)?,
        })
    })
    .optional()?)
}

/// A session by id with its user's role and active flag (for service mode, which ends with the
/// session that started it): `(row, role, user active)`.
pub fn by_id(c: &Connection, id: i64) -> Result<Option<(SessionRow, String, bool)>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT s.id, s.user_id, s.source, s.created_at, s.expires_at, s.last_seen_at,          s.revoked_at IS NOT NULL, u.role, u.active          FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
    )?
    .query_row([id], |r| {
        Ok((
            SessionRow {
                id: r.get(0)?,
                user_id: r.get(1)?,
                source: r.get(2)?,
                created_at: parse_ts(&r.get::<_, String>(3)?),
                expires_at: parse_ts(&r.get::<_, String>(4)?),
                last_seen_at: parse_ts(&r.get::<_, String>(5)?),
                revoked: r.get(6)?,
            },
            r.get(7)?,
            r.get(8)?,
        ))
    })
    .optional()?)
}

/// Revokes one session; returns false when it was already revoked or unknown.
pub fn revoke(
    c: &Connection,
    id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, ts(now), reason],
    )? > 0)
}

/// Revokes every live session of a user; returns how many.
pub fn revoke_user(
    c: &Connection,
    user_id: i64,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(c.execute(
        "UPDATE sessions SET revoked_at = ?2, revoked_reason = ?3 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, ts(now), reason],
    )?)
}

/// Ends a session at `until` at the latest (a refreshed session's grace).
pub fn shorten(c: &Connection, id: i64, until: DateTime<Utc>) -> Result<(), StoreError> {
    c.execute(
        "UPDATE sessions SET expires_at = ?2 WHERE id = ?1 AND expires_at > ?2",
        params![id, ts(until)],
    )?;
    Ok(())
}

/// Persists the last activity of a session (written lazily, not on every check).
pub fn touch(c: &Connection, id: i64, last_seen: DateTime<Utc>) -> Result<(), StoreError> {
    c.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2",
        params![id, ts(last_seen)],
    )?;
    Ok(())
}

/// Records that a user's sessions, role or grants changed; returns the change id.
pub fn record_change(c: &Connection, user_id: i64, now: DateTime<Utc>) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO user_changes (user_id, ts) VALUES (?1, ?2)",
        params![user_id, ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

/// Changes after `after`, oldest first: `(change id, user id)`.
pub fn changes_since(c: &Connection, after: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut st = c.prepare_cached(
        "SELECT id, user_id FROM user_changes WHERE id > ?1 ORDER BY id LIMIT 1000",
    )?;
    let rows = st.query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest change id (0 when none).
pub fn last_change(c: &Connection) -> Result<i64, StoreError> {
    Ok(
        c.query_row("SELECT COALESCE(MAX(id), 0) FROM user_changes", [], |r| {
            r.get(0)
        })?,
    )
}

/// How long ended sessions are kept (for "who was logged in when" next to the audit trail).
pub const SESSION_RETENTION: chrono::Duration = chrono::Duration::days(30);
/// How long `user_changes` rows are kept. They only carry news to the other processes' session
/// caches, which poll every second and start from the newest id, so a day is ample.
pub const CHANGE_RETENTION: chrono::Duration = chrono::Duration::days(1);

/// What [`prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub sessions: usize,
    pub user_changes: usize,
}

/// Deletes sessions that ended (revoked, or past their absolute expiry) more than
/// [`SESSION_RETENTION`] before `now`, and `user_changes` rows older than [`CHANGE_RETENTION`].
/// Live sessions are never touched; audit rows are never pruned.
pub fn prune(c: &Connection, now: DateTime<Utc>) -> Result<Pruned, StoreError> {
    let cutoff = ts(now - SESSION_RETENTION);
    let sessions = c.execute(
        "DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1",
        [&cutoff],
    )?;
    let user_changes = c.execute(
        "DELETE FROM user_changes WHERE ts < ?1",
        [ts(now - CHANGE_RETENTION)],
    )?;
    Ok(Pruned {
        sessions,
        user_changes,
    })
}
