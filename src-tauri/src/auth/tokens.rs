//! Session tokens and the in-memory session cache that makes `check` fast.
//!
//! A token is 32 random bytes (256 bits) from the OS, written as unpadded base64url (43
//! characters, safe in a `Sec-WebSocket-Protocol` header). Only its SHA-256 is stored; the cache
//! is keyed by that hash, so the token itself is never kept after login.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Parks, Role, Source};

/// SHA-256 of a token.
pub type TokenHash = [u8; 32];

/// A fresh random token.
pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The hash under which a token is stored and cached.
pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string has the shape of a token (cheap pre-check before hashing/looking up).
pub fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One live session as cached.
#[derive(Debug)]
pub struct CachedSession {
    pub session_id: i64,
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub parks: Parks,
    pub source: Source,
    pub expires_at: DateTime<Utc>,
    pub idle: chrono::Duration,
    /// Last activity (slides the idle timeout) and the last value written to the database.
    pub seen: Mutex<Seen>,
    /// Set for an API token (then `session_id` is 0 and `seen.persisted` is the last use
    /// recorded).
    pub grant: Option<super::api_tokens::TokenGrant>,
}

/// Activity bookkeeping of a cached session.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub last: DateTime<Utc>,
    pub persisted: DateTime<Utc>,
}

/// Sessions by token hash, plus an index by user for invalidation.
#[derive(Debug, Default)]
pub struct SessionCache {
    by_hash: RwLock<HashMap<TokenHash, Arc<CachedSession>>>,
    /// Bumped by every invalidation, so that a session read from the database before an
    /// invalidation is not cached after it (it is simply re-read next time).
    generation: AtomicU64,
}

impl SessionCache {
    /// The cached session for a token hash.
    pub fn get(&self, h: &TokenHash) -> Option<Arc<CachedSession>> {
        self.by_hash.read().get(h).cloned()
    }

    /// The current generation; read it before loading a session from the database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a session unless an invalidation happened since `generation` was read.
    pub fn insert_if(&self, h: TokenHash, s: Arc<CachedSession>, generation: u64) {
        let mut map = self.by_hash.write();
        if self.generation.load(Ordering::Acquire) == generation {
            map.insert(h, s);
        }
    }

    /// The cached session with this id (a scan: the cache holds the live sessions only).
    pub fn by_session(&self, session_id: i64) -> Option<Arc<CachedSession>> {
        self.by_hash
            .read()
            .values()
            .find(|s| s.session_id == session_id)
            .cloned()
    }

    /// Drops one token.
    pub fn remove(&self, h: &TokenHash) {
        self.by_hash.write().remove(h);
    }

    /// Drops every cached session of a user (they are reloaded from the database on next use).
    pub fn invalidate_user(&self, user_id: i64) {
        let mut map = self.by_hash.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, s| s.user_id != user_id);
    }

    /// Drops every cached session (all are reloaded from the database on next use): the
    /// configured parks changed.
    pub fn invalidate_all(&self) {
        let mut map = self.by_hash.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }

    /// Drops sessions past their absolute or idle end (they would be refused anyway); keeps the
    /// cache bounded by the sessions actually alive.
    pub fn sweep(&self, now: DateTime<Utc>) {
        self.by_hash
            .write()
            .retain(|_, s| now < s.expires_at && now - s.seen.lock().last < s.idle);
    }

    /// People's sessions in the cache that are alive at `now` (API tokens not counted): the
    /// sessions that made a request since this process started and have not ended.
    pub fn live_people(&self, now: DateTime<Utc>) -> usize {
        self.by_hash
            .read()
            .values()
            .filter(|s| s.grant.is_none())
            .filter(|s| now < s.expires_at && now - s.seen.lock().last < s.idle)
            .count()
    }

    /// Number of cached sessions.
    pub fn len(&self) -> usize {
        self.by_hash.read().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(plausible_token(&a), "{a}");
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert!(!plausible_token("short"));
    }

    #[test]
    fn sweep_drops_dead_sessions_only() {
        let now = Utc::now();
        let c = SessionCache::default();
        let mk = |id: i64, expires: i64, last: i64| {
            Arc::new(CachedSession {
                session_id: id,
                user_id: id,
                username: format!("u{id}"),
                role: Role::Viewer,
                parks: Parks::All,
                source: Source::Panel,
                expires_at: now + chrono::Duration::minutes(expires),
                idle: chrono::Duration::minutes(30),
                seen: Mutex::new(Seen {
                    last: now - chrono::Duration::minutes(last),
                    persisted: now,
                }),
                grant: None,
            })
        };
        c.insert_if([1; 32], mk(1, 60, 0), c.generation());
        c.insert_if([2; 32], mk(2, -1, 0), c.generation());
        c.insert_if([3; 32], mk(3, 60, 31), c.generation());
        assert_eq!(c.live_people(now), 1, "only the first is alive");
        c.sweep(now);
        assert_eq!(c.len(), 1);
        assert!(c.get(&[1; 32]).is_some());
        // An insert racing with an invalidation is dropped.
        let g = c.generation();
        c.invalidate_user(1);
        c.insert_if([4; 32], mk(4, 60, 0), g);
        assert!(c.is_empty());
    }
}
