//! The `api_tokens` table: machine clients' tokens (hash only), their grant and last use.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_ts, ts, StoreError};

/// One API token row (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    pub name: String,
    pub user_id: i64,
    /// The creator's username (joined, for lists).
    pub username: String,
    pub scopes: Vec<String>,
    pub parks: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_from: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a new token grants.
#[derive(Debug, Clone)]
pub struct NewApiToken<'a> {
    pub name: &'a str,
    pub user_id: i64,
    pub scopes: &'a [String],
    pub parks: &'a [String],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "t.id, t.name, t.user_id, u.username, t.scopes, t.parks, t.created_at, \
                       t.expires_at, t.last_used_at, t.last_used_from, t.revoked_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ApiTokenRow> {
    let opt_ts = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<String>>(i)?.as_deref().map(parse_ts))
    };
    Ok(ApiTokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        user_id: r.get(2)?,
        username: r.get(3)?,
        scopes: r
            .get::<_, String>(4)?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        // A corrupt list grants nothing rather than failing every read.
        parks: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        created_at: parse_ts(&r.get::<_, String>(6)?),
        expires_at: parse_ts(&r.get::<_, String>(7)?),
        last_used_at: opt_ts(8)?,
        last_used_from: r.get(9)?,
        revoked_at: opt_ts(10)?,
    })
}

/// Inserts a token; `hash_of(id)` computes the stored hash once the id (part of the token) is
/// known. Returns the id.
pub fn insert(
    c: &Connection,
    t: &NewApiToken<'_>,
    hash_of: impl FnOnce(i64) -> String,
) -> Result<i64, StoreError> {
    let placeholder = format!("pending:{}:{}", t.user_id, ts(t.created_at));
    c.execute(
        "INSERT INTO api_tokens (token_sha256, name, user_id, scopes, parks, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            placeholder,
            t.name,
            t.user_id,
            t.scopes.join(" "),
            serde_json::to_string(t.parks).unwrap_or_else(|_| "[]".into()),
            ts(t.created_at),
            ts(t.expires_at)
        ],
    )?;
    let id = c.last_insert_rowid();
    c.execute(
        "UPDATE api_tokens SET token_sha256 = ?2 WHERE id = ?1",
        params![id, hash_of(id)],
    )?;
    Ok(id)
}

/// The token with this hash, revoked or not.
pub fn by_hash(c: &Connection, token_sha256: &str) -> Result<Option<ApiTokenRow>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?1"
    ))?
    .query_row([token_sha256], from_row)
    .optional()?)
}

/// The token with this id.
pub fn by_id(c: &Connection, id: i64) -> Result<Option<ApiTokenRow>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?1"
    ))?
    .query_row([id], from_row)
    .optional()?)
}

/// Tokens, newest first: every user's (`user_id` None) or one creator's. Bounded by `limit`.
pub fn list(
    c: &Connection,
    user_id: Option<i64>,
    limit: u32,
) -> Result<Vec<ApiTokenRow>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![user_id, limit], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a token; false when it was already revoked or unknown.
pub fn revoke(c: &Connection, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(c.execute(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, ts(now)],
    )? > 0)
}

/// Records the last use (throttled by the caller).
pub fn touch(c: &Connection, id: i64, at: DateTime<Utc>, from: &str) -> Result<(), StoreError> {
    c.execute(
        "UPDATE api_tokens SET last_used_at = ?2, last_used_from = ?3 WHERE id = ?1",
        params![id, ts(at), from],
    )?;
    Ok(())
}
