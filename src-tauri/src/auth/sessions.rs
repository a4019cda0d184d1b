//! Sessions: opening one after a login, THE check every operation goes through
//! ([`Auth::check`]), `peek` and `logout` — resolving a token (cache first, then the database),
//! sliding the idle timeout, and ending sessions that expired. Tokens and the cache are in
//! `tokens.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::api_tokens;
use super::lockout::Scope;
use super::login::{login_entry, refusal};
use super::tokens::{self as sessions, CachedSession, Seen, TokenHash};
use super::{
    role_allows, Auth, AuthError, LoginOk, Permission, Principal, Source, TokenUse,
    PERSIST_SEEN_EVERY,
};
use crate::store::{self, login_failures, users::UserRow, AuditEntry};

impl Auth {
    /// Step 5: opens the session, unless a lock was set meanwhile (it wins over this success,
    /// and the success does not clear it).
    pub(super) async fn open_session(
        &self,
        user: UserRow,
        source: Source,
        method: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginOk, AuthError> {
        let role = Self::role_of(&user.role)?;
        let token = sessions::new_token();
        let h = sessions::token_hash(&token);
        let expires_at = now + self.settings().lifetime;
        let generation = self.inner.cache.generation();
        let policy = self.settings().policy;
        let scope = Scope::of(&source);
        let entry = login_entry(&user.username, Some(role.as_str()), &source, method, "ok");
        let uid = user.id;
        let src = source.to_string();
        let opened = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let f = login_failures::get(tx, uid, scope.as_str())?;
                if let Some(until) = policy.current(f, now).locked_until {
                    let e = AuditEntry {
                        result: "locked".into(),
                        ..entry
                    };
                    store::audit::append(tx, &e, now)?;
                    return Ok(Err(until));
                }
                login_failures::clear(tx, uid, Some(scope.as_str()))?;
                let sid = store::sessions::insert(tx, &hex::encode(h), uid, &src, now, expires_at)?;
                store::users::record_login(tx, uid, now)?;
                store::audit::append(tx, &entry, now)?;
                Ok(Ok((sid, store::users::parks(tx, uid)?)))
            })
            .await?;
        let (session_id, granted) = opened.map_err(|until| refusal(scope, until, now))?;
        let cached = Arc::new(CachedSession {
            session_id,
            user_id: user.id,
            username: user.username,
            role,
            parks: self.parks_of(role, granted),
            source,
            expires_at,
            idle: self.settings().idle[&role],
            seen: Mutex::new(Seen {
                last: now,
                persisted: now,
            }),
            grant: None,
        });
        let principal = principal_of(&cached);
        self.inner.cache.insert_if(h, cached, generation);
        self.inner.has_users.store(true, Ordering::Relaxed);
        Ok(LoginOk {
            token,
            expires_at,
            principal,
        })
    }

    /// THE check every operation calls: valid session, permission in the role table, and (when
    /// given) access to a configured park. Slides the idle timeout. API tokens are refused (see
    /// [`Auth::check_as`], which the dispatcher uses).
    pub async fn check(
        &self,
        token: &str,
        perm: Permission,
        park: Option<&str>,
    ) -> Result<Principal, AuthError> {
        self.check_as(token, perm, park, None, "", TokenUse::Never)
            .await
    }

    /// [`Auth::check`] for a caller at `from` asking for operation `op`, which an API token may
    /// call as `usage` says. A token acts with its creator's current role and the parks both
    /// still share; its refusals are audited (throttled per token).
    pub async fn check_as(
        &self,
        token: &str,
        perm: Permission,
        park: Option<&str>,
        from: Option<&Source>,
        op: &str,
        usage: TokenUse,
    ) -> Result<Principal, AuthError> {
        let mut p = self.resolve(token, true, from).await?;
        if let (Some(from), Some(_)) = (from, &p.token) {
            p.source = from.clone();
        }
        let refusal = if !role_allows(p.role, perm) {
            Some(format!("role {} may not {}", p.role, perm))
        } else if park.is_some_and(|park| {
            !self.settings().parks.iter().any(|c| c == park) || !p.parks.contains(park)
        }) {
            Some(format!("no access to park {:?}", park.unwrap_or_default()))
        } else {
            match (&p.token, usage) {
                (None, _) | (Some(_), TokenUse::Any) => None,
                (Some(_), TokenUse::Never) => Some(format!("an API token may not call {op}")),
                (Some(g), TokenUse::Scope(s)) if !g.has(s) => {
                    Some(format!("the API token lacks the scope {s} (for {op})"))
                }
                (Some(_), TokenUse::Scope(_)) => None,
            }
        };
        match (refusal, &p.token) {
            (None, _) => Ok(p),
            (Some(why), None) => Err(AuthError::Forbidden(why)),
            (Some(why), Some(g)) => {
                let who = AuditEntry {
                    target: Some(format!("token {} {}", g.id, g.name)),
                    ..p.audit_entry("api_token_use", None, "forbidden")
                };
                Err(self.token_refusal(g.id, who, AuthError::Forbidden(why)))
            }
        }
    }

    /// Whether a token is still valid, with its current role and grants; does not slide the
    /// idle timeout (used to re-evaluate open connections after a `changes()` event).
    pub async fn peek(&self, token: &str) -> Result<Principal, AuthError> {
        self.resolve(token, false, None).await
    }

    /// Rotates a session token (`POST /api/session/refresh`): a new token with a fresh absolute
    /// lifetime for the same user, role and grants; the old token keeps working for
    /// [`REFRESH_GRACE_S`] seconds (requests already in flight) and then ends. Audited as
    /// `session_refresh`. API tokens are not refreshed (they are revoked and re-created).
    pub async fn refresh(&self, token: &str) -> Result<LoginOk, AuthError> {
        let p = self.resolve(token, true, None).await?;
        if p.token.is_some() {
            return Err(AuthError::Invalid(
                "an API token is not refreshed; create a new one".into(),
            ));
        }
        let now = self.now();
        let settings = self.settings();
        let fresh = sessions::new_token();
        let h = sessions::token_hash(&fresh);
        let expires_at = now + settings.lifetime;
        let grace = now + chrono::Duration::seconds(REFRESH_GRACE_S);
        let (old_sid, uid, src) = (p.session_id, p.user_id, p.source.to_string());
        let entry = p.audit_entry("session_refresh", None, "ok");
        let generation = self.inner.cache.generation();
        let granted = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let sid = store::sessions::insert(tx, &hex::encode(h), uid, &src, now, expires_at)?;
                store::sessions::shorten(tx, old_sid, grace)?;
                store::audit::append(tx, &entry, now)?;
                Ok((sid, store::users::parks(tx, uid)?))
            })
            .await?;
        let (sid, granted) = granted;
        // The old token is reloaded from the database (with its short expiry) on next use.
        self.inner.cache.remove(&sessions::token_hash(token));
        let cached = Arc::new(CachedSession {
            session_id: sid,
            user_id: p.user_id,
            username: p.username.clone(),
            role: p.role,
            parks: self.parks_of(p.role, granted),
            source: p.source.clone(),
            expires_at,
            idle: settings.idle[&p.role],
            seen: Mutex::new(Seen {
                last: now,
                persisted: now,
            }),
            grant: None,
        });
        let principal = principal_of(&cached);
        self.inner.cache.insert_if(h, cached, generation);
        Ok(LoginOk {
            token: fresh,
            expires_at,
            principal,
        })
    }

    /// Until when session `session_id` stays alive without further activity (its idle or
    /// absolute end, whichever is first); `None` once it ended (logout, idle, expiry, revoked,
    /// user disabled). Does not slide anything. Service mode ends with the serviceman's session.
    pub async fn session_alive_until(
        &self,
        session_id: i64,
    ) -> Result<Option<DateTime<Utc>>, AuthError> {
        let now = self.now();
        if let Some(s) = self.inner.cache.by_session(session_id) {
            let end = (s.seen.lock().last + s.idle).min(s.expires_at);
            return Ok((end > now).then_some(end));
        }
        let row = self
            .inner
            .store
            .read(move |c| store::sessions::by_id(c, session_id))
            .await?;
        let Some((s, role, active)) = row else {
            return Ok(None);
        };
        if s.revoked || !active {
            return Ok(None);
        }
        let role = Self::role_of(&role)?;
        let end = (s.last_seen_at + self.idle_timeout(role)).min(s.expires_at);
        Ok((end > now).then_some(end))
    }

    /// Revokes the session of this token.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let p = self.resolve(token, false, None).await?;
        if p.token.is_some() {
            return Err(AuthError::Invalid(
                "an API token is not logged out; revoke it (api_token_revoke)".into(),
            ));
        }
        let h = sessions::token_hash(token);
        let now = self.now();
        let (sid, uid) = (p.session_id, p.user_id);
        let e = AuditEntry {
            actor: Some(p.username.clone()),
            role: Some(p.role.as_str().into()),
            source: p.source.to_string(),
            action: "logout".into(),
            result: "ok".into(),
            ..Default::default()
        };
        let own = self.inner.own_changes.clone();
        self.inner
            .store
            .write(move |tx| {
                store::sessions::revoke(tx, sid, "logout", now)?;
                store::audit::append(tx, &e, now)?;
                own.lock()
                    .insert(store::sessions::record_change(tx, uid, now)?);
                Ok(())
            })
            .await?;
        self.inner.cache.remove(&h);
        let _ = self.inner.changes.send(uid);
        Ok(())
    }

    async fn resolve(
        &self,
        token: &str,
        slide: bool,
        from: Option<&Source>,
    ) -> Result<Principal, AuthError> {
        if api_tokens::plausible(token) {
            return self.resolve_api_token(token, slide, from).await;
        }
        let unauthorized = || AuthError::Unauthorized("invalid or expired session".into());
        if !sessions::plausible_token(token) {
            return Err(unauthorized());
        }
        let h = sessions::token_hash(token);
        let now = self.now();
        let s = match self.inner.cache.get(&h) {
            Some(s) => s,
            None => self.load_session(h, now).await?.ok_or_else(unauthorized)?,
        };
        if now >= s.expires_at {
            self.end_session(&h, &s, "expired", now);
            return Err(AuthError::Unauthorized("session expired".into()));
        }
        let persist = {
            let mut seen = s.seen.lock();
            if now - seen.last >= s.idle {
                drop(seen);
                self.end_session(&h, &s, "idle", now);
                return Err(AuthError::Unauthorized("session timed out (idle)".into()));
            }
            if slide && now > seen.last {
                seen.last = now;
                if (now - seen.persisted).num_seconds() >= PERSIST_SEEN_EVERY {
                    seen.persisted = now;
                    Some(now)
                } else {
                    None
                }
            } else {
                None
            }
        };
        if let Some(t) = persist {
            let sid = s.session_id;
            let st = self.inner.store.clone();
            tokio::spawn(async move {
                if let Err(e) = st.write(move |tx| store::sessions::touch(tx, sid, t)).await {
                    tracing::warn!(error = %e, "could not persist session activity");
                }
            });
        }
        Ok(principal_of(&s))
    }

    /// An API token: cache first, then the database; expiry is absolute (no idle timeout).
    async fn resolve_api_token(
        &self,
        token: &str,
        slide: bool,
        from: Option<&Source>,
    ) -> Result<Principal, AuthError> {
        let h = sessions::token_hash(token);
        let now = self.now();
        let s = match self.inner.cache.get(&h) {
            Some(s) => s,
            None => self
                .load_api_token(h, now)
                .await?
                .ok_or_else(|| AuthError::Unauthorized("invalid API token".into()))?,
        };
        if now >= s.expires_at {
            self.inner.cache.remove(&h);
            return Err(AuthError::Unauthorized("API token expired".into()));
        }
        if slide {
            self.touch_api_token(&s, now, from);
        }
        Ok(principal_of(&s))
    }

    /// Drops an expired session from the cache and marks it revoked (in the background).
    fn end_session(
        &self,
        h: &TokenHash,
        s: &CachedSession,
        reason: &'static str,
        now: DateTime<Utc>,
    ) {
        self.inner.cache.remove(h);
        let sid = s.session_id;
        let st = self.inner.store.clone();
        tokio::spawn(async move {
            let _ = st
                .write(move |tx| store::sessions::revoke(tx, sid, reason, now))
                .await;
        });
    }

    async fn load_session(
        &self,
        h: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<CachedSession>>, AuthError> {
        let generation = self.inner.cache.generation();
        let loaded = self
            .inner
            .store
            .read(move |c| {
                let Some(s) = store::sessions::by_token(c, &hex::encode(h))? else {
                    return Ok(None);
                };
                if s.revoked {
                    return Ok(None);
                }
                let Some(u) = store::users::by_id(c, s.user_id)? else {
                    return Ok(None);
                };
                if !u.active {
                    return Ok(None);
                }
                let parks = store::users::parks(c, u.id)?;
                Ok(Some((s, u, parks)))
            })
            .await?;
        let Some((s, u, granted)) = loaded else {
            return Ok(None);
        };
        let role = Self::role_of(&u.role)?;
        let last = s.last_seen_at.min(now);
        let cached = Arc::new(CachedSession {
            session_id: s.id,
            user_id: u.id,
            username: u.username,
            role,
            parks: self.parks_of(role, granted),
            source: Source::parse(&s.source),
            expires_at: s.expires_at,
            idle: self.settings().idle[&role],
            seen: Mutex::new(Seen {
                last,
                persisted: last,
            }),
            grant: None,
        });
        self.inner.cache.insert_if(h, cached.clone(), generation);
        Ok(Some(cached))
    }
}

/// How long a refreshed session's old token keeps working.
pub const REFRESH_GRACE_S: i64 = 30;

/// The principal of a cached session, as of its last activity.
pub(super) fn principal_of(s: &CachedSession) -> Principal {
    let last = s.seen.lock().last;
    Principal {
        user_id: s.user_id,
        username: s.username.clone(),
        role: s.role,
        parks: s.parks.clone(),
        source: s.source.clone(),
        session_id: s.session_id,
        expires_at: s.expires_at,
        idle_expires_at: (last + s.idle).min(s.expires_at),
        token: s.grant.clone(),
    }
}
