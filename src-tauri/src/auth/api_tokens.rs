//! API tokens for machine clients (gateways, loggers): creation, listing, revocation, and how a
//! token resolves to a [`Principal`].
//!
//! A token is `stator_<id>_<secret>` (the secret: 256 random bits, base64url); only its SHA-256
//! is stored, like a session token, and it is presented exactly like one (`Authorization:
//! Bearer`, the `bearer,<token>` WebSocket subprotocol). A token never does more than its
//! creator: the principal it resolves to carries the creator's *current* role, and its parks are
//! the parks granted at creation intersected with the creator's current grants, so demoting,
//! disabling or un-granting the creator shrinks the token at once (those changes already
//! invalidate the creator's cache entries, tokens included). On top of that the token's scopes
//! limit which operations it may call: [`TokenUse`], decided per operation in
//! `api::access::token_use` and enforced by [`Auth::check_as`].

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::{Serialize, Serializer};

use super::tokens::{self, CachedSession, Seen, TokenHash};
use super::{role_allows, Auth, AuthError, Parks, Permission, Principal, Source};
use crate::code::ErrorCode;
use crate::store::{self, api_tokens::ApiTokenRow, AuditEntry};

/// The prefix that makes a leaked token recognisable (secret scanners, logs).
pub const PREFIX: &str = "stator_";
/// Lifetime when the request names none.
pub const DEFAULT_DAYS: u32 = 90;
/// The longest lifetime a token may have.
pub const MAX_DAYS: u32 = 365;
/// Live (unrevoked, unexpired) tokens one creator may hold: bounds the table and the cache.
pub const MAX_PER_USER: usize = 50;
/// Longest token name.
pub const MAX_NAME_CHARS: usize = 64;
/// Rows `api_tokens` returns at most.
pub const LIST_LIMIT: u32 = 500;
/// How often a token's last use is written to the database at most.
const TOUCH_EVERY_S: i64 = 60;
/// A refused use of one token is audited at most this often (a machine polling with a revoked
/// token must not flood the trail).
const REFUSAL_AUDIT_EVERY_S: i64 = 60;
/// Tokens whose refusals are remembered for the throttle (bounded).
const REFUSAL_MEMORY: usize = 1024;
/// A token has no idle timeout: only its absolute expiry ends it.
const NO_IDLE_DAYS: i64 = 400;

/// What a token may be used for. The wire names are contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Snapshot and live WebSocket updates.
    LiveRead,
    /// Historian queries.
    HistoryRead,
    /// Alarm lists and alarm pushes.
    AlarmsRead,
    /// Acknowledging alarms.
    AlarmsAck,
    /// Writes (still subject to every write rule, including `remote.allow_remote_writes`).
    Write,
    /// The audit trail.
    AuditRead,
    /// The running configuration (`config_get`).
    ConfigRead,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Scope::LiveRead,
        Scope::HistoryRead,
        Scope::AlarmsRead,
        Scope::AlarmsAck,
        Scope::Write,
        Scope::AuditRead,
        Scope::ConfigRead,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::LiveRead => "live:read",
            Scope::HistoryRead => "history:read",
            Scope::AlarmsRead => "alarms:read",
            Scope::AlarmsAck => "alarms:ack",
            Scope::Write => "write",
            Scope::AuditRead => "audit:read",
            Scope::ConfigRead => "config:read",
        }
    }

    /// The permission the creator's role needs to hand this scope out (and, because the token
    /// acts with the creator's current role, to keep using it).
    pub fn permission(self) -> Permission {
        match self {
            Scope::LiveRead | Scope::HistoryRead | Scope::AlarmsRead => Permission::ViewLive,
            Scope::AlarmsAck => Permission::AckAlarms,
            Scope::Write => Permission::WriteTags,
            Scope::AuditRead => Permission::ReadAudit,
            Scope::ConfigRead => Permission::EditConfig,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| {
                let all: Vec<&str> = Scope::ALL.iter().map(|c| c.as_str()).collect();
                format!("unknown scope {s:?}; expected one of {}", all.join(", "))
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Whether (and how) an API token may call an operation; sessions are not affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// Sessions only (token management, user administration, logout, configuration changes).
    Never,
    /// Any valid token (`auth`, `ping`, `me`).
    Any,
    /// Tokens carrying this scope.
    Scope(Scope),
}

/// The token part of a principal that came from an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenGrant {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl TokenGrant {
    /// Whether the token carries `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub parks: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_from: Option<String>,
    pub revoked: bool,
}

impl From<ApiTokenRow> for ApiTokenInfo {
    fn from(r: ApiTokenRow) -> Self {
        ApiTokenInfo {
            id: r.id,
            name: r.name,
            scopes: r.scopes,
            parks: r.parks,
            created_by: r.username,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            last_used_from: r.last_used_from,
            revoked: r.revoked_at.is_some(),
        }
    }
}

/// A new token: the secret (shown once) and what it grants.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub info: ApiTokenInfo,
}

/// What `api_token_create` asks for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub name: String,
    pub scopes: Vec<String>,
    /// `None`: every park the creator sees now.
    pub parks: Option<Vec<String>>,
    pub expires_days: Option<u32>,
}

/// Whether a string has the shape of an API token (`stator_<digits>_<43 base64url>`).
pub fn plausible(token: &str) -> bool {
    id_of(token).is_some()
}

/// The token id inside a well-formed token.
fn id_of(token: &str) -> Option<i64> {
    let (id, secret) = token.strip_prefix(PREFIX)?.split_once('_')?;
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tokens::plausible_token(secret).then(|| id.parse().ok())?
}

/// The throttle of refusal audit rows, per token id.
#[derive(Debug, Default)]
pub(super) struct RefusalThrottle(Mutex<HashMap<i64, DateTime<Utc>>>);

impl RefusalThrottle {
    /// Whether a refusal of token `id` at `now` should be written (and remembers it).
    fn admit(&self, id: i64, now: DateTime<Utc>) -> bool {
        let mut m = self.0.lock();
        if let Some(at) = m.get(&id) {
            if (now - *at).num_seconds() < REFUSAL_AUDIT_EVERY_S {
                return false;
            }
        }
        if m.len() >= REFUSAL_MEMORY {
            let cutoff = now - Duration::seconds(REFUSAL_AUDIT_EVERY_S);
            m.retain(|_, at| *at > cutoff);
            if m.len() >= REFUSAL_MEMORY {
                m.clear();
            }
        }
        m.insert(id, now);
        true
    }
}

impl Auth {
    /// Creates a token for `actor` (or, from the CLI's system principal, for the user named
    /// `on_behalf`). `password` is the actor's own, re-checked like a login (a wrong one counts
    /// towards the lockout); the CLI (local administration) passes none. Every refusal is
    /// audited; nothing is stored unless everything holds.
    pub async fn create_api_token(
        &self,
        actor: &Principal,
        on_behalf: Option<&str>,
        req: TokenRequest,
        password: Option<&str>,
    ) -> Result<IssuedToken, AuthError> {
        let name = req.name.trim().to_string();
        let action = "api_token_create";
        let creator = match (actor.is_system(), on_behalf) {
            (true, Some(user)) => self.principal_of_user(user).await?,
            (false, None) if actor.token.is_none() => actor.clone(),
            _ => {
                return Err(AuthError::Invalid(
                    "a token is created by a signed-in user (or by the CLI for a named user)"
                        .into(),
                ))
            }
        };
        let (scopes, parks, days) = match self.token_terms(&creator, &name, &req) {
            Ok(t) => t,
            Err(e) => return Err(self.refused(actor, action, &name, e).await),
        };
        match (actor.is_system(), password) {
            (true, _) => {}
            (false, Some(pw)) => self.reauthenticate(actor, pw).await?,
            (false, None) => {
                let e = AuthError::Invalid("password is required".into());
                return Err(self.refused(actor, action, &name, e).await);
            }
        }
        let now = self.now();
        let expires_at = now + Duration::days(days as i64);
        let secret = tokens::new_token();
        let entry = AuditEntry {
            new_value: Some(format!(
                "scopes={}; parks={}; expires_at={}; user={}",
                scopes.join(" "),
                parks.join(","),
                store::ts(expires_at),
                creator.username
            )),
            ..actor.audit_entry(action, Some(&name), "ok")
        };
        let uid = creator.user_id;
        let n = name.clone();
        let s = secret.clone();
        let res = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let live = store::api_tokens::list(tx, Some(uid), LIST_LIMIT)?
                    .into_iter()
                    .filter(|t| t.revoked_at.is_none() && t.expires_at > now)
                    .count();
                if live >= MAX_PER_USER {
                    return Err(AuthError::Invalid(format!(
                        "at most {MAX_PER_USER} live tokens per user; revoke one first"
                    )));
                }
                let new = store::api_tokens::NewApiToken {
                    name: &n,
                    user_id: uid,
                    scopes: &scopes,
                    parks: &parks,
                    created_at: now,
                    expires_at,
                };
                let id = store::api_tokens::insert(tx, &new, |id| {
                    hex::encode(tokens::token_hash(&format!("{PREFIX}{id}_{s}")))
                })?;
                let e = AuditEntry {
                    target: Some(format!("token {id} {n}")),
                    ..entry
                };
                store::audit::append(tx, &e, now)?;
                store::api_tokens::by_id(tx, id)?
                    .ok_or_else(|| AuthError::Internal("the new token vanished".into()))
            })
            .await;
        let row = match res {
            Ok(r) => r,
            Err(e @ AuthError::Invalid(_)) => {
                return Err(self.refused(actor, action, &name, e).await)
            }
            Err(e) => return Err(e),
        };
        Ok(IssuedToken {
            token: format!("{PREFIX}{}_{secret}", row.id),
            info: row.into(),
        })
    }

    /// Proves that the person behind a session is still there: `password` is checked like a
    /// login (audited; a wrong one is `invalid_credentials` and counts towards the lockout).
    /// For sensitive changes made from an open session (tokens, the configuration).
    pub async fn reauthenticate(&self, p: &Principal, password: &str) -> Result<(), AuthError> {
        if p.token.is_some() || p.is_system() {
            return Err(AuthError::Forbidden(
                "only a signed-in person can confirm with a password".into(),
            ));
        }
        self.verify_login(&p.username, password, &p.source, "reauth", false)
            .await
            .map(|_| ())
    }

    /// Checks a token request against its creator: name, known scopes within the creator's
    /// role, parks within the creator's grants, lifetime. Returns the sorted scope names, parks
    /// and days.
    fn token_terms(
        &self,
        creator: &Principal,
        name: &str,
        req: &TokenRequest,
    ) -> Result<(Vec<String>, Vec<String>, u32), AuthError> {
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid(format!(
                "name must be 1-{MAX_NAME_CHARS} printable characters"
            )));
        }
        let mut scopes = BTreeSet::new();
        for s in &req.scopes {
            scopes.insert(s.parse::<Scope>().map_err(AuthError::Invalid)?);
        }
        if scopes.is_empty() {
            return Err(AuthError::Invalid(
                "scopes must name at least one scope".into(),
            ));
        }
        if let Some(s) = scopes
            .iter()
            .find(|s| !role_allows(creator.role, s.permission()))
        {
            return Err(AuthError::Forbidden(format!(
                "scope {s} is beyond role {}",
                creator.role
            )));
        }
        let mine = self.visible_parks(creator);
        let parks: Vec<String> = match &req.parks {
            None => mine,
            Some(list) => {
                let v: BTreeSet<String> = list.iter().map(|p| p.trim().to_string()).collect();
                if let Some(p) = v.iter().find(|p| !mine.contains(p)) {
                    return Err(AuthError::Forbidden(format!("no access to park {p:?}")));
                }
                v.into_iter().collect()
            }
        };
        if parks.is_empty() {
            return Err(AuthError::Invalid("the token would grant no park".into()));
        }
        let days = req.expires_days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(AuthError::Invalid(format!(
                "expires_days must be 1-{MAX_DAYS}"
            )));
        }
        Ok((
            scopes.iter().map(|s| s.as_str().to_string()).collect(),
            parks,
            days,
        ))
    }

    /// Tokens `actor` may see, newest first (never the secret): a superuser sees every token,
    /// anyone else their own.
    pub async fn list_api_tokens(&self, actor: &Principal) -> Result<Vec<ApiTokenInfo>, AuthError> {
        let only = (actor.role != super::Role::Superuser).then_some(actor.user_id);
        let rows = self
            .inner
            .store
            .read(move |c| store::api_tokens::list(c, only, LIST_LIMIT))
            .await?;
        Ok(rows.into_iter().map(ApiTokenInfo::from).collect())
    }

    /// Revokes a token (a superuser any, anyone else their own). Its open WebSockets are closed
    /// with 4001 at once: the creator's sessions are re-checked through `changes()`, and the
    /// revoked token no longer resolves.
    pub async fn revoke_api_token(
        &self,
        actor: &Principal,
        token_id: i64,
    ) -> Result<(), AuthError> {
        let action = "api_token_revoke";
        let label = format!("token {token_id}");
        let now = self.now();
        let superuser = actor.role == super::Role::Superuser;
        let (aid, base) = (actor.user_id, actor.audit_entry(action, Some(&label), "ok"));
        let own = self.inner.own_changes.clone();
        let res = self
            .inner
            .store
            .transaction(move |tx| -> Result<_, AuthError> {
                let t = store::api_tokens::by_id(tx, token_id)?
                    .ok_or_else(|| AuthError::NotFound(format!("no token {token_id}")))?;
                if !superuser && t.user_id != aid {
                    return Err(AuthError::Forbidden(
                        "only a superuser may revoke another user's token".into(),
                    ));
                }
                if !store::api_tokens::revoke(tx, t.id, now)? {
                    return Err(AuthError::NotFound(format!(
                        "token {token_id} is already revoked"
                    )));
                }
                let e = AuditEntry {
                    target: Some(format!("token {} {}", t.id, t.name)),
                    ..base
                };
                store::audit::append(tx, &e, now)?;
                own.lock()
                    .insert(store::sessions::record_change(tx, t.user_id, now)?);
                Ok(t.user_id)
            })
            .await;
        let uid = match res {
            Ok(uid) => uid,
            Err(e @ (AuthError::Forbidden(_) | AuthError::NotFound(_))) => {
                return Err(self.refused(actor, action, &label, e).await)
            }
            Err(e) => return Err(e),
        };
        self.inner.cache.invalidate_user(uid);
        let _ = self.inner.changes.send(uid);
        Ok(())
    }

    /// Audits a refused token operation (result: the error's code) and returns the error.
    async fn refused(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        e: AuthError,
    ) -> AuthError {
        let entry = AuditEntry {
            new_value: Some(e.to_string()),
            ..actor.audit_entry(action, Some(target), e.code().as_str())
        };
        if let Err(w) = self.audit(entry).await {
            tracing::warn!(error = %w, "could not audit a refused {action}");
        }
        e
    }

    /// Audits a refused use of token `id` (at most once a minute per token) and returns `e`.
    pub(super) fn token_refusal(&self, id: i64, who: AuditEntry, e: AuthError) -> AuthError {
        if self.inner.token_refusals.admit(id, self.now()) {
            let entry = AuditEntry {
                new_value: Some(e.to_string()),
                result: e.code().as_str().into(),
                ..who
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(w) = me.audit(entry).await {
                    tracing::warn!(error = %w, "could not audit a refused API token use");
                }
            });
        }
        e
    }

    /// The principal of a user by name, as of now (the CLI creates tokens for a named user).
    async fn principal_of_user(&self, username: &str) -> Result<Principal, AuthError> {
        let name = username.trim().to_string();
        let (u, granted) = self
            .inner
            .store
            .read(move |c| {
                let Some(u) = store::users::by_name(c, &name)? else {
                    return Ok(None);
                };
                let parks = store::users::parks(c, u.id)?;
                Ok(Some((u, parks)))
            })
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no user {username:?}")))?;
        if !u.active {
            return Err(AuthError::Invalid(format!(
                "user {} is disabled",
                u.username
            )));
        }
        let role = Self::role_of(&u.role)?;
        let far = DateTime::<Utc>::MAX_UTC;
        Ok(Principal {
            user_id: u.id,
            username: u.username,
            role,
            parks: self.parks_of(role, granted),
            source: Source::Cli,
            session_id: 0,
            expires_at: far,
            idle_expires_at: far,
            token: None,
        })
    }

    /// Loads an API token by hash: `Ok(None)` when unknown; a revoked or expired token, or one
    /// whose creator is disabled, is refused (and audited, throttled).
    pub(super) async fn load_api_token(
        &self,
        h: TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<CachedSession>>, AuthError> {
        let generation = self.inner.cache.generation();
        let loaded = self
            .inner
            .store
            .read(move |c| {
                let Some(t) = store::api_tokens::by_hash(c, &hex::encode(h))? else {
                    return Ok(None);
                };
                let Some(u) = store::users::by_id(c, t.user_id)? else {
                    return Ok(None);
                };
                let parks = store::users::parks(c, u.id)?;
                Ok(Some((t, u, parks)))
            })
            .await?;
        let Some((t, u, granted)) = loaded else {
            return Ok(None);
        };
        let who = AuditEntry {
            actor: Some(format!("{} (token {})", u.username, t.id)),
            source: "api_token".into(),
            action: "api_token_use".into(),
            target: Some(format!("token {} {}", t.id, t.name)),
            ..Default::default()
        };
        let dead = if t.revoked_at.is_some() {
            Some("API token revoked")
        } else if now >= t.expires_at {
            Some("API token expired")
        } else if !u.active {
            Some("the token's user is disabled")
        } else {
            None
        };
        if let Some(why) = dead {
            return Err(self.token_refusal(t.id, who, AuthError::Unauthorized(why.into())));
        }
        let role = Self::role_of(&u.role)?;
        let creator = self.parks_of(role, granted);
        let parks: BTreeSet<String> = t
            .parks
            .iter()
            .filter(|p| creator.contains(p) && self.settings().parks.contains(p))
            .cloned()
            .collect();
        let scopes = t.scopes.iter().filter_map(|s| s.parse().ok()).collect();
        let last = t.last_used_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let cached = Arc::new(CachedSession {
            session_id: 0,
            user_id: u.id,
            username: u.username,
            role,
            parks: Parks::Only(parks),
            source: Source::Remote(t.last_used_from.unwrap_or_default()),
            expires_at: t.expires_at,
            idle: Duration::days(NO_IDLE_DAYS),
            seen: Mutex::new(Seen {
                last: now,
                persisted: last,
            }),
            grant: Some(TokenGrant {
                id: t.id,
                name: t.name,
                scopes,
            }),
        });
        self.inner.cache.insert_if(h, cached.clone(), generation);
        Ok(Some(cached))
    }

    /// Records a token's use (at most once a minute, in the background).
    pub(super) fn touch_api_token(
        &self,
        s: &CachedSession,
        now: DateTime<Utc>,
        from: Option<&Source>,
    ) {
        let Some(g) = &s.grant else { return };
        {
            let mut seen = s.seen.lock();
            seen.last = now;
            if (now - seen.persisted).num_seconds() < TOUCH_EVERY_S {
                return;
            }
            seen.persisted = now;
        }
        let (id, st) = (g.id, self.inner.store.clone());
        let from = from.map(ToString::to_string).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = st
                .write(move |tx| store::api_tokens::touch(tx, id, now, &from))
                .await
            {
                tracing::warn!(error = %e, "could not record an API token's use");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_and_scopes() {
        let t = format!("{PREFIX}12_{}", tokens::new_token());
        assert!(plausible(&t));
        assert_eq!(id_of(&t), Some(12));
        assert!(!plausible("stator_x_abc"));
        assert!(!plausible(&tokens::new_token()));
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
        }
        assert!("live:write".parse::<Scope>().is_err());
    }

    #[test]
    fn refusals_are_throttled_per_token() {
        let t = RefusalThrottle::default();
        let now = Utc::now();
        assert!(t.admit(1, now));
        assert!(!t.admit(1, now + Duration::seconds(5)));
        assert!(t.admit(2, now));
        assert!(t.admit(1, now + Duration::seconds(61)));
    }
}
