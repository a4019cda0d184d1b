//! Who may do what: roles → permissions, password hashing, sessions and tokens, lockout.
//! The single place where permissions are decided; transports never decide them.
//!
//! [`Auth`] is the one handle every transport holds. [`Auth::check`] is the one function every
//! operation calls: it resolves a session token (from an in-memory cache, falling back to the
//! database), slides the idle timeout, and checks the permission table ([`role_allows`]) and the
//! park grants.
//!
//! Files: `types` (the vocabulary: [`Source`], [`Principal`], [`AuthError`], …), `login`
//! (password, PIN, badge), `sessions` (open, check, peek, logout) over `tokens` (tokens and the
//! session cache), `lockout` (failure counters), `gate` (the bounded password-check queue),
//! `admin`, `credentials`, `directory` and `change` (user administration), `roles` (the
//! permission table), `password` (hashing and policy), `secrets`/`secret_file` (the secret
//! store).

mod admin;
pub mod api_tokens;
mod change;
mod credentials;
mod directory;
mod gate;
pub mod lockout;
mod login;
pub mod password;
pub use crate::roles;
mod secret_file;
pub mod secrets;
mod sessions;
pub mod tokens;
mod types;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::config::{AuthConfig, Config};
use crate::store::{self, AuditEntry, Store};

pub use api_tokens::{Scope, TokenGrant, TokenUse};
pub use roles::{role_allows, Permission, Role};
use tokens::SessionCache;
pub use types::{AuthError, Clock, LoginOk, Parks, Principal, Source, UserInfo};

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
    /// What the configuration decides; replaced as a whole when it changes at run time.
    settings: parking_lot::RwLock<Arc<Settings>>,
    limiter: lockout::SourceLimiter,
    gate: gate::Gate,
    turns: gate::Turns,
    cache: SessionCache,
    changes: broadcast::Sender<i64>,
    own_changes: Arc<Mutex<HashSet<i64>>>,
    has_users: AtomicBool,
    token_refusals: api_tokens::RefusalThrottle,
}

/// The parts of the configuration auth applies: the configured parks and the `auth` section.
struct Settings {
    parks: Vec<String>,
    cfg: AuthConfig,
    idle: HashMap<Role, Duration>,
    lifetime: Duration,
    policy: lockout::Policy,
}

impl Settings {
    fn of(cfg: &Config) -> Settings {
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
        Settings {
            parks: cfg.plc_config.iter().map(|p| p.id.clone()).collect(),
            cfg: a.clone(),
            idle,
            lifetime: Duration::milliseconds((a.session_lifetime_hours * 3_600_000.0) as i64),
            policy: lockout::Policy {
                attempts: a.lockout_attempts,
                window: minutes(a.lockout_minutes),
            },
        }
    }
}

fn minutes(m: f64) -> Duration {
    Duration::milliseconds((m * 60_000.0).round() as i64)
}

impl Auth {
    /// The auth service over `store` for the parks of `cfg`, using the system clock.
    pub fn new(store: Store, cfg: &Config) -> Auth {
        Self::with_clock(store, cfg, Arc::new(Utc::now))
    }

    /// Like [`Auth::new`] with an injected clock.
    pub fn with_clock(store: Store, cfg: &Config, clock: Clock) -> Auth {
        let a = &cfg.auth;
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
            settings: parking_lot::RwLock::new(Arc::new(Settings::of(cfg))),
            limiter: lockout::SourceLimiter::new(a.source_failures_per_minute),
            gate: gate::Gate::new(workers),
            turns: gate::Turns::default(),
            cache: SessionCache::default(),
            changes: broadcast::channel(256).0,
            own_changes: Arc::default(),
            has_users: AtomicBool::new(has_users),
            token_refusals: Default::default(),
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

    /// People's sessions alive now that were used since this process started (see
    /// [`SessionCache::live_people`]).
    pub fn live_sessions(&self) -> usize {
        self.inner.cache.live_people((self.inner.clock)())
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The configured park ids.
    pub fn configured_parks(&self) -> Vec<String> {
        self.settings().parks.clone()
    }

    fn settings(&self) -> Arc<Settings> {
        self.inner.settings.read().clone()
    }

    /// Applies a changed configuration: the configured parks, idle timeouts, session lifetime,
    /// lockout policy and password policy (for sessions opened from now on; open sessions keep
    /// their timeouts). Every cached session is reloaded, so park lists follow at once.
    /// (`auth.source_failures_per_minute` needs a restart.)
    pub fn reconfigure(&self, cfg: &Config) {
        *self.inner.settings.write() = Arc::new(Settings::of(cfg));
        self.inner.cache.invalidate_all();
    }

    /// The concrete list of parks a principal sees (send this to clients, not `Parks`).
    pub fn visible_parks(&self, p: &Principal) -> Vec<String> {
        p.parks.to_list(&self.settings().parks)
    }

    /// The idle timeout of a role (configured or default).
    pub fn idle_timeout(&self, role: Role) -> Duration {
        self.settings().idle[&role]
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

    /// Hashes a new password or PIN on the cores shared with login verifies.
    async fn hash(&self, secret: String) -> Result<String, AuthError> {
        self.inner
            .gate
            .hash(secret)
            .await
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
                    .filter(|p| self.settings().parks.contains(p))
                    .collect(),
            )
        }
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
