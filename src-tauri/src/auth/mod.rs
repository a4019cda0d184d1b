//! Who may do what: roles → permissions, password hashing, sessions and tokens, lockout.
//! The single place where permissions are decided; transports never decide them.
//!
//! [`Auth`] is the one handle every transport holds. [`Auth::check`] is the one function every
//! operation calls: it resolves a session token (from an in-memory cache, falling back to the
//! database), slides the idle timeout, and checks the permission table ([`role_allows`]) and the
//! park grants.

mod admin;
pub mod lockout;
pub mod password;
pub mod roles;
mod secret_file;
pub mod secrets;
pub mod sessions;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::{Serialize, Serializer};
use tokio::sync::{broadcast, Semaphore};

use crate::config::{AuthConfig, Config};
use crate::store::{self, AuditEntry, Store, StoreError};

pub use roles::{role_allows, Permission, Role};
use sessions::{CachedSession, Seen, SessionCache, TokenHash};

/// The time source; injected so that tests of lockout and idle expiry never sleep.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Where a request comes from. Displayed as `panel`, the remote address, or `cli` (the audit
/// trail's `source`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// The local panel (the desktop window on the machine itself).
    Panel,
    /// A remote client, by address.
    Remote(String),
    /// The `stator` command line.
    Cli,
}

impl Source {
    /// Whether the request came over the network (subject to the per-address limit).
    pub fn is_remote(&self) -> bool {
        matches!(self, Source::Remote(_))
    }

    /// A remote client on this very machine (127.0.0.0/8, ::1, and 127.x as a dual-stack
    /// listener reports it, `::ffff:127.x`): as physically present as the panel, so it may
    /// create the first superuser.
    pub fn is_loopback(&self) -> bool {
        match self {
            Source::Remote(a) => a
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.to_canonical().is_loopback()),
            _ => false,
        }
    }

    /// Inverse of `Display` (as stored in the sessions table).
    pub fn parse(s: &str) -> Source {
        match s {
            "panel" => Source::Panel,
            "cli" => Source::Cli,
            other => Source::Remote(other.to_string()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Panel => f.write_str("panel"),
            Source::Remote(a) => f.write_str(a),
            Source::Cli => f.write_str("cli"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The parks (PLC ids) a principal may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parks {
    /// Every configured park (superusers).
    All,
    /// Only these (granted) parks.
    Only(BTreeSet<String>),
}

impl Parks {
    /// Whether this park is visible. (`All` does not know the configuration: callers that accept
    /// a park id from a client go through [`Auth::check`], which also requires it to be configured.)
    pub fn contains(&self, park: &str) -> bool {
        match self {
            Parks::All => true,
            Parks::Only(set) => set.contains(park),
        }
    }

    /// The visible parks as a sorted list, given the configured ones.
    pub fn to_list(&self, configured: &[String]) -> Vec<String> {
        let mut v: Vec<String> = configured
            .iter()
            .filter(|p| self.contains(p))
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// Serializes as the string `"all"` or a sorted list of park ids; use [`Parks::to_list`] /
/// [`Auth::visible_parks`] to send the concrete list to a client.
impl Serialize for Parks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Parks::All => s.serialize_str("all"),
            Parks::Only(set) => set.serialize(s),
        }
    }
}

/// An authenticated caller, as of the last `check`/`peek`.
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub parks: Parks,
    pub source: Source,
    pub session_id: i64,
    /// Absolute end of the session.
    pub expires_at: DateTime<Utc>,
    /// When the session ends unless used again.
    pub idle_expires_at: DateTime<Utc>,
}

impl Principal {
    /// A principal for local administration without a session (the `stator user` CLI): a
    /// superuser with every park, `user_id` 0, audited with role `system`.
    pub fn system(name: &str, source: Source) -> Principal {
        let far = DateTime::<Utc>::MAX_UTC;
        Principal {
            user_id: 0,
            username: name.to_string(),
            role: Role::Superuser,
            parks: Parks::All,
            source,
            session_id: 0,
            expires_at: far,
            idle_expires_at: far,
        }
    }

    /// An audit entry for an action of this principal (actor, role and source filled in); other
    /// modules complete it and pass it to [`Auth::audit`].
    pub fn audit_entry(&self, action: &str, target: Option<&str>, result: &str) -> AuditEntry {
        AuditEntry {
            actor: Some(self.username.clone()),
            role: Some(self.audit_role()),
            source: self.source.to_string(),
            action: action.into(),
            target: target.map(str::to_string),
            old_value: None,
            new_value: None,
            result: result.into(),
        }
    }

    fn is_system(&self) -> bool {
        self.user_id == 0
    }

    fn audit_role(&self) -> String {
        if self.is_system() {
            "system".into()
        } else {
            self.role.as_str().into()
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginOk {
    /// The bearer token (43 characters, unpadded base64url). Shown once; only its hash is kept.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub principal: Principal,
}

/// A user as shown to administrators (no hashes).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UserInfo {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub active: bool,
    /// Granted parks that exist in the configuration (superusers: every configured park).
    pub parks: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub has_pin: bool,
    pub badges: u32,
}

/// Why an auth operation failed; [`AuthError::code`] is the stable wire code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("account locked; try again in {retry_after_s} s")]
    Locked { retry_after_s: u64 },
    #[error("too many failed logins from this address; try again in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The stable wire code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::InvalidCredentials => "invalid_credentials",
            AuthError::Locked { .. } => "locked",
            AuthError::RateLimited { .. } => "rate_limited",
            AuthError::Unauthorized(_) => "unauthorized",
            AuthError::Forbidden(_) => "forbidden",
            AuthError::Invalid(_) => "invalid",
            AuthError::NotFound(_) => "not_found",
            AuthError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) | StoreError::Invalid(m) => AuthError::Invalid(m),
            StoreError::NotFound(m) => AuthError::NotFound(m),
            StoreError::Forbidden(m) => AuthError::Forbidden(m),
            other => {
                tracing::error!(error = %other, "auth: database error");
                AuthError::Internal(other.to_string())
            }
        }
    }
}

/// The message logged when a login is refused because no user exists yet.
pub const NO_USERS_HINT: &str = "no user exists yet, so every login is refused; create the first superuser with `stator user add NAME --role superuser --password-stdin`";

/// How often a process looks for user changes made by another process (e.g. the CLI).
const CHANGE_POLL: StdDuration = StdDuration::from_millis(500);
/// How often the last activity of a session is written to the database at most.
const PERSIST_SEEN_EVERY: i64 = 60;

/// The auth service. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    parks: Vec<String>,
    cfg: AuthConfig,
    idle: HashMap<Role, Duration>,
    lifetime: Duration,
    lockout: Duration,
    limiter: lockout::SourceLimiter,
    cache: SessionCache,
    changes: broadcast::Sender<i64>,
    hashing: Semaphore,
    own_changes: Arc<Mutex<HashSet<i64>>>,
    has_users: AtomicBool,
}

/// What a user-management change does to the target's sessions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Nothing to tell anyone.
    None,
    /// Sessions stay; their role/grants are reloaded (cache invalidated, `changes()` event).
    Update,
    /// Every session of the user is revoked (with this reason) and the event is sent.
    Revoke(&'static str),
}

fn minutes(m: f64) -> Duration {
    Duration::milliseconds((m * 60_000.0).round() as i64)
}

fn retry_secs(until: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    (((ms + 999) / 1000).max(1)) as u64
}

impl Auth {
    /// The auth service over `store` for the parks of `cfg`, using the system clock.
    pub fn new(store: Store, cfg: &Config) -> Auth {
        Self::with_clock(store, cfg, Arc::new(Utc::now))
    }

    /// Like [`Auth::new`] with an injected clock.
    pub fn with_clock(store: Store, cfg: &Config, clock: Clock) -> Auth {
        let a = &cfg.auth;
        let idle = Role::ALL
            .into_iter()
            .map(|r| {
                let d = a
                    .idle_timeout_minutes
                    .get(r.as_str())
                    .map(|m| minutes(*m))
                    .unwrap_or_else(|| {
                        Duration::from_std(r.default_idle_timeout()).unwrap_or(Duration::zero())
                    });
                (r, d)
            })
            .collect();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let last_change = store
            .read_blocking(store::sessions::last_change)
            .unwrap_or(0);
        let has_users = store.read_blocking(store::users::any).unwrap_or(false);
        let inner = Arc::new(Inner {
            store,
            clock,
            parks: cfg.plc_config.iter().map(|p| p.id.clone()).collect(),
            cfg: a.clone(),
            idle,
            lifetime: Duration::milliseconds((a.session_lifetime_hours * 3_600_000.0) as i64),
            lockout: minutes(a.lockout_minutes),
            limiter: lockout::SourceLimiter::new(a.source_failures_per_minute),
            cache: SessionCache::default(),
            changes: broadcast::channel(256).0,
            hashing: Semaphore::new(workers),
            own_changes: Arc::default(),
            has_users: AtomicBool::new(has_users),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(watch_changes(Arc::downgrade(&inner), last_change));
            // Warm the dummy hash so the first unknown-user login costs no extra time (servers
            // run multi-threaded; the one-shot CLI does not need it).
            if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
                rt.spawn_blocking(password::dummy_hash);
            }
        }
        Auth { inner }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configured park ids.
    pub fn configured_parks(&self) -> &[String] {
        &self.inner.parks
    }

    /// The concrete list of parks a principal sees (send this to clients, not `Parks`).
    pub fn visible_parks(&self, p: &Principal) -> Vec<String> {
        p.parks.to_list(&self.inner.parks)
    }

    /// The idle timeout of a role (configured or default).
    pub fn idle_timeout(&self, role: Role) -> Duration {
        self.inner.idle[&role]
    }

    fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    /// Receives the id of every user whose sessions, role or grants changed (in this process or,
    /// within about half a second, in another one such as the CLI). On an event, re-`peek` that
    /// user's tokens: `Unauthorized` means close; otherwise apply the new role/parks.
    pub fn changes(&self) -> broadcast::Receiver<i64> {
        self.inner.changes.subscribe()
    }

    /// Whether any user exists (the first-run screen is offered when not).
    pub async fn has_users(&self) -> Result<bool, AuthError> {
        if self.inner.has_users.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let any = self.inner.store.read(store::users::any).await?;
        if any {
            self.inner.has_users.store(true, Ordering::Relaxed);
        }
        Ok(any)
    }

    /// Called by the server at start: logs how to create the first superuser when there is none.
    /// Returns whether users exist.
    pub async fn log_first_run_hint(&self) -> Result<bool, AuthError> {
        let any = self.has_users().await?;
        if !any {
            tracing::warn!("{NO_USERS_HINT}");
        }
        Ok(any)
    }

    /// Appends one audit row (for operations outside this module: writes, alarm acks, …).
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), AuthError> {
        let now = self.now();
        self.inner
            .store
            .write(move |tx| store::audit::append(tx, &entry, now).map(|_| ()))
            .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Login

    /// Logs in with username and password.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        self.login_secret(username, password, source, false).await
    }

    /// Logs in with username and panel PIN; accepted only from [`Source::Panel`].
    pub async fn login_pin(
        &self,
        username: &str,
        pin: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        if source != Source::Panel {
            return Err(AuthError::Forbidden(
                "PIN login is accepted only on the local panel".into(),
            ));
        }
        self.login_secret(username, pin, source, true).await
    }

    /// Logs in with a badge ID typed by a reader; accepted only from [`Source::Panel`].
    pub async fn login_badge(&self, badge: &str, source: Source) -> Result<LoginOk, AuthError> {
        if source != Source::Panel {
            return Err(AuthError::Forbidden(
                "badge login is accepted only on the local panel".into(),
            ));
        }
        let now = self.now();
        let h = password::badge_hash(badge);
        let user = self
            .inner
            .store
            .read(move |c| store::users::by_badge(c, &h))
            .await?;
        let Some(user) = user.filter(|u| u.active) else {
            let src = source.to_string();
            self.inner
                .store
                .write(move |tx| {
                    store::audit::append(
                        tx,
                        &AuditEntry {
                            source: src,
                            action: "login".into(),
                            new_value: Some("badge".into()),
                            result: "invalid_credentials".into(),
                            ..Default::default()
                        },
                        now,
                    )
                })
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            self.audit_login(
                &user.username,
                Some(&user.role),
                &source,
                "badge",
                "locked",
                now,
            )
            .await?;
            return Err(AuthError::Locked {
                retry_after_s: retry_secs(until, now),
            });
        }
        self.open_session(user, source, "badge", now).await
    }

    async fn audit_login(
        &self,
        username: &str,
        role: Option<&str>,
        source: &Source,
        method: &str,
        result: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let e = AuditEntry {
            actor: Some(username.chars().take(64).collect()),
            role: role.map(str::to_string),
            source: source.to_string(),
            action: "login".into(),
            target: None,
            old_value: None,
            new_value: Some(method.into()),
            result: result.into(),
        };
        self.inner
            .store
            .write(move |tx| store::audit::append(tx, &e, now))
            .await?;
        Ok(())
    }

    async fn login_secret(
        &self,
        username: &str,
        secret: &str,
        source: Source,
        pin: bool,
    ) -> Result<LoginOk, AuthError> {
        let now = self.now();
        let method = if pin { "pin" } else { "password" };
        let src = source.to_string();
        if source.is_remote() {
            if let Some(s) = self.inner.limiter.blocked(&src, now) {
                tracing::warn!(source = %src, "login refused: too many failures from this address");
                return Err(AuthError::RateLimited { retry_after_s: s });
            }
        }
        let name = username.trim().to_string();
        let user = if password::check_username(&name).is_ok() {
            let n = name.clone();
            self.inner
                .store
                .read(move |c| store::users::by_name(c, &n))
                .await?
        } else {
            None
        };
        if let Some(u) = &user {
            if let Some(until) = u.locked_until.filter(|t| *t > now) {
                if source.is_remote() {
                    self.inner.limiter.record(&src, now);
                }
                self.audit_login(&u.username, Some(&u.role), &source, method, "locked", now)
                    .await?;
                return Err(AuthError::Locked {
                    retry_after_s: retry_secs(until, now),
                });
            }
        }
        let phc = user.as_ref().and_then(|u| {
            if pin {
                u.pin_hash.clone()
            } else {
                Some(u.password_hash.clone())
            }
        });
        let verified = self.verify(phc, secret.to_string()).await?;
        match user {
            Some(u) if verified && u.active => self.open_session(u, source, method, now).await,
            Some(u) => {
                if source.is_remote() {
                    self.inner.limiter.record(&src, now);
                }
                let attempts = self.inner.cfg.lockout_attempts;
                let until = now + self.inner.lockout;
                let (uid, uname, urole) = (u.id, u.username.clone(), u.role.clone());
                let active = u.active;
                let m = method.to_string();
                let locked = self
                    .inner
                    .store
                    .write(move |tx| {
                        let n = store::users::record_failure(tx, uid)?;
                        let base = AuditEntry {
                            actor: Some(uname.clone()),
                            role: Some(urole),
                            source: src,
                            action: "login".into(),
                            target: None,
                            old_value: None,
                            new_value: Some(m),
                            result: if active {
                                "invalid_credentials".into()
                            } else {
                                "disabled".into()
                            },
                        };
                        store::audit::append(tx, &base, now)?;
                        let locked = active && n >= attempts;
                        if locked {
                            store::users::lock(tx, uid, until)?;
                            store::audit::append(
                                tx,
                                &AuditEntry {
                                    action: "lockout".into(),
                                    target: Some(uname),
                                    new_value: Some(store::ts(until)),
                                    result: "ok".into(),
                                    ..base
                                },
                                now,
                            )?;
                        }
                        Ok(locked)
                    })
                    .await?;
                if locked {
                    tracing::warn!(user = %u.username, "account locked after {attempts} failed logins");
                }
                Err(AuthError::InvalidCredentials)
            }
            None => {
                if source.is_remote() {
                    self.inner.limiter.record(&src, now);
                }
                self.audit_login(&name, None, &source, method, "invalid_credentials", now)
                    .await?;
                if !self.has_users().await? {
                    tracing::warn!("login refused: {NO_USERS_HINT}");
                }
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// Verifies on the blocking pool, at most one verify per core at a time (argon2 uses 64 MiB
    /// each). `None` verifies against the dummy hash and fails, costing the same time.
    async fn verify(&self, phc: Option<String>, secret: String) -> Result<bool, AuthError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let known = phc.is_some();
            let ok =
                password::verify_secret(phc.as_deref().unwrap_or(password::dummy_hash()), &secret);
            ok && known
        })
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))
    }

    async fn hash(&self, secret: String) -> Result<String, AuthError> {
        let _permit = self
            .inner
            .hashing
            .acquire()
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(move || password::hash_secret(&secret))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?
            .map_err(AuthError::Internal)
    }

    fn role_of(s: &str) -> Result<Role, AuthError> {
        s.parse()
            .map_err(|e: String| AuthError::Internal(format!("stored role: {e}")))
    }

    fn parks_of(&self, role: Role, granted: Vec<String>) -> Parks {
        if role == Role::Superuser {
            Parks::All
        } else {
            Parks::Only(
                granted
                    .into_iter()
                    .filter(|p| self.inner.parks.contains(p))
                    .collect(),
            )
        }
    }

    async fn open_session(
        &self,
        user: store::users::UserRow,
        source: Source,
        method: &str,
        now: DateTime<Utc>,
    ) -> Result<LoginOk, AuthError> {
        let role = Self::role_of(&user.role)?;
        let token = sessions::new_token();
        let h = sessions::token_hash(&token);
        let expires_at = now + self.inner.lifetime;
        let generation = self.inner.cache.generation();
        let src = source.to_string();
        let m = method.to_string();
        let (uid, uname) = (user.id, user.username.clone());
        let (session_id, granted) = self
            .inner
            .store
            .write(move |tx| {
                let sid = store::sessions::insert(tx, &hex::encode(h), uid, &src, now, expires_at)?;
                store::users::record_login(tx, uid, now)?;
                store::audit::append(
                    tx,
                    &AuditEntry {
                        actor: Some(uname),
                        role: Some(role.as_str().into()),
                        source: src,
                        action: "login".into(),
                        target: None,
                        old_value: None,
                        new_value: Some(m),
                        result: "ok".into(),
                    },
                    now,
                )?;
                Ok((sid, store::users::parks(tx, uid)?))
            })
            .await?;
        let parks = self.parks_of(role, granted);
        let idle = self.inner.idle[&role];
        let cached = Arc::new(CachedSession {
            session_id,
            user_id: user.id,
            username: user.username.clone(),
            role,
            parks,
            source,
            expires_at,
            idle,
            seen: Mutex::new(Seen {
                last: now,
                persisted: now,
            }),
        });
        let principal = principal_of(&cached, now);
        self.inner.cache.insert_if(h, cached, generation);
        self.inner.has_users.store(true, Ordering::Relaxed);
        Ok(LoginOk {
            token,
            expires_at,
            principal,
        })
    }

    // ----------------------------------------------------------------------------------------
    // Sessions

    /// THE check every operation calls: valid session, permission in the role table, and (when
    /// given) access to a configured park. Slides the idle timeout.
    pub async fn check(
        &self,
        token: &str,
        perm: Permission,
        park: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let p = self.resolve(token, true).await?;
        if !role_allows(p.role, perm) {
            return Err(AuthError::Forbidden(format!(
                "role {} may not {}",
                p.role, perm
            )));
        }
        if let Some(park) = park {
            if !self.inner.parks.iter().any(|c| c == park) || !p.parks.contains(park) {
                return Err(AuthError::Forbidden(format!("no access to park {park:?}")));
            }
        }
        Ok(p)
    }

    /// Whether a token is still valid, with its current role and grants; does not slide the
    /// idle timeout (used to re-evaluate open connections after a `changes()` event).
    pub async fn peek(&self, token: &str) -> Result<Principal, AuthError> {
        self.resolve(token, false).await
    }

    /// Revokes the session of this token.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let p = self.resolve(token, false).await?;
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

    async fn resolve(&self, token: &str, slide: bool) -> Result<Principal, AuthError> {
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
        Ok(principal_of(&s, now))
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
            idle: self.inner.idle[&role],
            seen: Mutex::new(Seen {
                last,
                persisted: last,
            }),
        });
        self.inner.cache.insert_if(h, cached.clone(), generation);
        Ok(Some(cached))
    }
}

fn principal_of(s: &CachedSession, now: DateTime<Utc>) -> Principal {
    let _ = now;
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
    }
}

/// Picks up changes recorded by other processes (e.g. `stator user disable`) and applies them to
/// this process's cache; ends when the `Auth` is dropped.
async fn watch_changes(inner: Weak<Inner>, mut last: i64) {
    let mut tick = tokio::time::interval(CHANGE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        ticks += 1;
        if ticks.is_multiple_of(120) {
            inner.cache.sweep((inner.clock)());
        }
        let after = last;
        let rows = match inner
            .store
            .read(move |c| store::sessions::changes_since(c, after))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "auth: cannot read user changes");
                continue;
            }
        };
        for (id, uid) in rows {
            last = last.max(id);
            if inner.own_changes.lock().remove(&id) {
                continue;
            }
            inner.cache.invalidate_user(uid);
            let _ = inner.changes.send(uid);
        }
    }
}
