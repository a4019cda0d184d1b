//! The `users`, `user_park_access` and `user_badges` tables.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_ts, ts, StoreError};

/// One user row as stored (hashes included; never sent to a client).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The latest lock of any kind of source (`login_failures`), for display.
    pub locked_until: Option<DateTime<Utc>>,
    pub pin_hash: Option<String>,
}

const COLUMNS: &str = "id, username, password_hash, role, active, created_at, last_login_at, \
                       (SELECT MAX(f.locked_until) FROM login_failures f WHERE f.user_id = users.id), \
                       pin_hash";

fn from_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        active: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?),
        last_login_at: r.get::<_, Option<String>>(6)?.as_deref().map(parse_ts),
        locked_until: r.get::<_, Option<String>>(7)?.as_deref().map(parse_ts),
        pin_hash: r.get(8)?,
    })
}

/// The user with this name (case-insensitive).
pub fn by_name(c: &Connection, username: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
        [username],
        from_row,
    )
    .optional()?)
}

/// The user with this name, or `NotFound` naming it.
pub fn require(c: &Connection, username: &str) -> Result<UserRow, StoreError> {
    by_name(c, username)?.ok_or_else(|| StoreError::NotFound(format!("no user {username:?}")))
}

/// The user with this id.
pub fn by_id(c: &Connection, id: i64) -> Result<Option<UserRow>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// The user owning this badge (by SHA-256 of the badge ID).
pub fn by_badge(c: &Connection, badge_sha256: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(c.query_row(
        &format!(
            "SELECT {COLUMNS} FROM users \
             WHERE id = (SELECT user_id FROM user_badges WHERE badge_sha256 = ?1)"
        ),
        [badge_sha256],
        from_row,
    )
    .optional()?)
}

/// Every user, by name.
pub fn list(c: &Connection) -> Result<Vec<UserRow>, StoreError> {
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The users `scope` may see, by name (the filter runs in SQL).
pub fn list_in(c: &Connection, scope: &super::audit::Scope) -> Result<Vec<UserRow>, StoreError> {
    let super::audit::Scope::Parks { granted, .. } = scope else {
        return list(c);
    };
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM users WHERE {} ORDER BY username",
        visible_sql("users", 1)
    ))?;
    let parks = serde_json::to_string(granted).unwrap_or_else(|_| "[]".into());
    let rows = st.query_map([parks], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// SQL condition: the user row `alias` is visible to a reader whose granted parks are the JSON
/// array bound as parameter `?param`. Visible are users sharing at least one of those parks, and
/// users with no park at all whose role a park-limited admin may manage (viewer, operator,
/// serviceman) — the admin could have created them and is the one to grant them a park. Admins
/// and superusers without parks stay hidden.
pub fn visible_sql(alias: &str, param: usize) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM user_park_access a WHERE a.user_id = {alias}.id \
           AND a.park IN (SELECT value FROM json_each(?{param}))) \
          OR ({alias}.role IN ('viewer', 'operator', 'serviceman') \
           AND NOT EXISTS (SELECT 1 FROM user_park_access a WHERE a.user_id = {alias}.id)))"
    )
}

/// Whether any user exists.
pub fn any(c: &Connection) -> Result<bool, StoreError> {
    Ok(c.query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| r.get(0))?)
}

/// Inserts a user; `Conflict` when the name is taken (case-insensitively).
pub fn insert(
    c: &Connection,
    username: &str,
    password_hash: &str,
    role: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    if by_name(c, username)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a user named {username:?} already exists"
        )));
    }
    c.execute(
        "INSERT INTO users (username, password_hash, role, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
        params![username, password_hash, role, ts(now)],
    )?;
    Ok(c.last_insert_rowid())
}

/// Sets the password hash and lifts every lock (a new password ends the guessing).
pub fn set_password(c: &Connection, id: i64, hash: &str) -> Result<(), StoreError> {
    c.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    super::login_failures::clear(c, id, None)
}

/// Sets the PIN hash (`None` removes the PIN).
pub fn set_pin(c: &Connection, id: i64, hash: Option<&str>) -> Result<(), StoreError> {
    c.execute(
        "UPDATE users SET pin_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    Ok(())
}

/// Enables or disables a user and lifts every lock.
pub fn set_active(c: &Connection, id: i64, active: bool) -> Result<(), StoreError> {
    c.execute(
        "UPDATE users SET active = ?2 WHERE id = ?1",
        params![id, active],
    )?;
    super::login_failures::clear(c, id, None)
}

/// Changes the role.
pub fn set_role(c: &Connection, id: i64, role: &str) -> Result<(), StoreError> {
    c.execute(
        "UPDATE users SET role = ?2 WHERE id = ?1",
        params![id, role],
    )?;
    Ok(())
}

/// Stamps `last_login_at` (failure counters are `login_failures`' business).
pub fn record_login(c: &Connection, id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    c.execute(
        "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
        params![id, ts(now)],
    )?;
    Ok(())
}

/// The parks granted to a user, sorted.
pub fn parks(c: &Connection, id: i64) -> Result<Vec<String>, StoreError> {
    let mut st =
        c.prepare_cached("SELECT park FROM user_park_access WHERE user_id = ?1 ORDER BY park")?;
    let rows = st.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Grants a park; returns false when it was already granted.
pub fn grant(c: &Connection, id: i64, park: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT OR IGNORE INTO user_park_access (user_id, park, granted_at) VALUES (?1, ?2, ?3)",
        params![id, park, ts(now)],
    )? > 0)
}

/// Revokes a park; returns false when it was not granted.
pub fn revoke(c: &Connection, id: i64, park: &str) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM user_park_access WHERE user_id = ?1 AND park = ?2",
        params![id, park],
    )? > 0)
}

/// Adds a badge (by hash); `Conflict` when any user already has it.
pub fn add_badge(
    c: &Connection,
    id: i64,
    badge_sha256: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let n = c.execute(
        "INSERT OR IGNORE INTO user_badges (badge_sha256, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![badge_sha256, id, ts(now)],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(
            "this badge is already registered".into(),
        ));
    }
    Ok(())
}

/// Removes a badge of this user; returns false when the user had no such badge.
pub fn remove_badge(c: &Connection, id: i64, badge_sha256: &str) -> Result<bool, StoreError> {
    Ok(c.execute(
        "DELETE FROM user_badges WHERE user_id = ?1 AND badge_sha256 = ?2",
        params![id, badge_sha256],
    )? > 0)
}

/// How many badges a user has.
pub fn badge_count(c: &Connection, id: i64) -> Result<u32, StoreError> {
    Ok(c.query_row(
        "SELECT COUNT(*) FROM user_badges WHERE user_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}
