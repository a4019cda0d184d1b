//! TEMPORARY in-memory stand-in for the auth contract (HELPERS.md), replaced by the `auth` branch.

pub mod secrets;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Serviceman,
    Admin,
    Superuser,
}
impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Serviceman => "serviceman",
            Role::Admin => "admin",
            Role::Superuser => "superuser",
        }
    }
}
impl std::str::FromStr for Role {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        Ok(match s {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "serviceman" => Role::Serviceman,
            "admin" => Role::Admin,
            "superuser" => Role::Superuser,
            _ => return Err(AuthError::Invalid(format!("unknown role {s:?}"))),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewLive,
    WriteTags,
    AckAlarms,
    ShelveAlarms,
    ServiceMode,
    ManageUsers,
    ReadAudit,
    EditConfig,
}

pub fn role_allows(role: Role, perm: Permission) -> bool {
    use Permission::*;
    match perm {
        ViewLive => true,
        WriteTags | AckAlarms => role >= Role::Operator,
        ShelveAlarms | ServiceMode => role >= Role::Serviceman,
        ManageUsers | ReadAudit | EditConfig => role >= Role::Admin,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Panel,
    Remote(String),
    Cli,
}
impl Source {
    pub fn is_remote(&self) -> bool {
        matches!(self, Source::Remote(_))
    }
}
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Panel => f.write_str("panel"),
            Source::Remote(ip) => f.write_str(ip),
            Source::Cli => f.write_str("cli"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parks {
    All,
    Only(BTreeSet<String>),
}
impl Parks {
    pub fn contains(&self, p: &str) -> bool {
        match self {
            Parks::All => true,
            Parks::Only(s) => s.contains(p),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub parks: Parks,
    pub source: Source,
    pub session_id: i64,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct LoginOk {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub principal: Principal,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("account locked, retry in {retry_after_s} s")]
    Locked { retry_after_s: u64 },
    #[error("too many attempts, retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}
impl AuthError {
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

struct User {
    id: i64,
    name: String,
    password: String,
    role: Role,
    parks: BTreeSet<String>,
    active: bool,
    failures: u32,
}
struct Session {
    id: i64,
    user_id: i64,
    source: Source,
    expires_at: DateTime<Utc>,
}
struct Inner {
    users: Vec<User>,
    sessions: HashMap<String, Session>,
    next: i64,
}

#[derive(Clone)]
pub struct Auth {
    inner: Arc<Mutex<Inner>>,
    store: crate::store::Store,
    tx: tokio::sync::broadcast::Sender<i64>,
}

impl Auth {
    pub fn new(store: crate::store::Store, _cfg: &crate::config::Config) -> Auth {
        Auth {
            inner: Arc::new(Mutex::new(Inner {
                users: vec![],
                sessions: HashMap::new(),
                next: 1,
            })),
            store,
            tx: tokio::sync::broadcast::channel(256).0,
        }
    }
    /// STUB helper for tests.
    pub fn stub_add_user(&self, name: &str, pw: &str, role: Role, parks: &[&str]) {
        let mut g = self.inner.lock();
        let id = g.next;
        g.next += 1;
        g.users.push(User {
            id,
            name: name.into(),
            password: pw.into(),
            role,
            parks: parks.iter().map(|s| s.to_string()).collect(),
            active: true,
            failures: 0,
        });
    }
    fn principal(g: &Inner, s: &Session) -> Option<Principal> {
        let u = g.users.iter().find(|u| u.id == s.user_id)?;
        Some(Principal {
            user_id: u.id,
            username: u.name.clone(),
            role: u.role,
            parks: if u.role == Role::Superuser {
                Parks::All
            } else {
                Parks::Only(u.parks.clone())
            },
            source: s.source.clone(),
            session_id: s.id,
            expires_at: s.expires_at,
            idle_expires_at: s.expires_at,
        })
    }
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        let mut g = self.inner.lock();
        let Some(u) = g.users.iter_mut().find(|u| u.name == username) else {
            return Err(AuthError::InvalidCredentials);
        };
        if u.failures >= 3 {
            return Err(AuthError::Locked { retry_after_s: 300 });
        }
        if u.password != password || !u.active {
            u.failures += 1;
            return Err(AuthError::InvalidCredentials);
        }
        let uid = u.id;
        let id = g.next;
        g.next += 1;
        let token = format!("tok{id}x{}", rand::random::<u64>());
        let s = Session {
            id,
            user_id: uid,
            source,
            expires_at: Utc::now() + Duration::hours(12),
        };
        let p = Self::principal(&g, &s).unwrap();
        g.sessions.insert(token.clone(), s);
        Ok(LoginOk {
            token,
            expires_at: p.expires_at,
            principal: p,
        })
    }
    pub async fn login_pin(&self, _u: &str, _p: &str, _s: Source) -> Result<LoginOk, AuthError> {
        Err(AuthError::InvalidCredentials)
    }
    pub async fn login_badge(&self, _b: &str, _s: Source) -> Result<LoginOk, AuthError> {
        Err(AuthError::InvalidCredentials)
    }
    pub async fn peek(&self, token: &str) -> Result<Principal, AuthError> {
        let g = self.inner.lock();
        let s = g
            .sessions
            .get(token)
            .ok_or_else(|| AuthError::Unauthorized("invalid or expired token".into()))?;
        if s.expires_at <= Utc::now() {
            return Err(AuthError::Unauthorized("session expired".into()));
        }
        Self::principal(&g, s).ok_or_else(|| AuthError::Unauthorized("no user".into()))
    }
    pub async fn check(
        &self,
        token: &str,
        perm: Permission,
        park: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let p = self.peek(token).await?;
        if !role_allows(p.role, perm) {
            return Err(AuthError::Forbidden(format!(
                "role {} may not {perm:?}",
                p.role.as_str()
            )));
        }
        if let Some(park) = park {
            if !p.parks.contains(park) {
                return Err(AuthError::Forbidden(format!("park {park} not granted")));
            }
        }
        Ok(p)
    }
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        let uid = self.inner.lock().sessions.remove(token).map(|s| s.user_id);
        if let Some(uid) = uid {
            let _ = self.tx.send(uid);
        }
        Ok(())
    }
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<i64> {
        self.tx.subscribe()
    }
    pub async fn has_users(&self) -> Result<bool, AuthError> {
        Ok(!self.inner.lock().users.is_empty())
    }
    pub async fn audit(&self, entry: crate::store::AuditEntry) -> Result<(), AuthError> {
        self.store.rows.lock().push(entry);
        Ok(())
    }
    /// STUB: grant change.
    pub fn stub_set_parks(&self, name: &str, parks: &[&str]) {
        let uid = {
            let mut g = self.inner.lock();
            let u = g.users.iter_mut().find(|u| u.name == name).unwrap();
            u.parks = parks.iter().map(|s| s.to_string()).collect();
            u.id
        };
        let _ = self.tx.send(uid);
    }
    pub async fn create_first_superuser(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        if !self.inner.lock().users.is_empty() {
            return Err(AuthError::Forbidden("users exist".into()));
        }
        self.stub_add_user(username, password, Role::Superuser, &[]);
        self.login(username, password, source).await
    }
}
