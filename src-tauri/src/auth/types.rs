//! The vocabulary of `auth`: who calls ([`Source`], [`Principal`]), what they may see
//! ([`Parks`]), what a login returns ([`LoginOk`]), how a user is shown ([`UserInfo`]), and why
//! something is refused ([`AuthError`], whose [`AuthError::code`] is the stable wire code).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::Role;
use crate::store::{AuditEntry, StoreError};

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
    /// A command from the MQTT broker (Sparkplug DCMD); its own switch `mqtt.allow_writes`
    /// governs writes, not the remote one.
    Mqtt,
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
            "mqtt" => Source::Mqtt,
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
            Source::Mqtt => f.write_str("mqtt"),
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
    /// Set when the caller presented an API token (then `session_id` is 0 and the scopes limit
    /// what it may call); `None` for a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<super::api_tokens::TokenGrant>,
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
            token: None,
        }
    }

    /// An audit entry for an action of this principal (actor, role and source filled in); other
    /// modules complete it and pass it to [`Auth::audit`].
    pub fn audit_entry(&self, action: &str, target: Option<&str>, result: &str) -> AuditEntry {
        AuditEntry {
            actor: Some(self.audit_actor()),
            role: Some(self.audit_role()),
            source: self.source.to_string(),
            action: action.into(),
            target: target.map(str::to_string),
            old_value: None,
            new_value: None,
            result: result.into(),
        }
    }

    /// The audit trail's actor: the username, plus the token when one was used ("alice (token
    /// 7)"), so that a machine's actions are told apart from its creator's.
    pub fn audit_actor(&self) -> String {
        match &self.token {
            Some(t) => format!("{} (token {})", self.username, t.id),
            None => self.username.clone(),
        }
    }

    pub(super) fn is_system(&self) -> bool {
        self.user_id == 0
    }

    pub fn audit_role(&self) -> String {
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

/// Why an auth operation failed; its `ErrorCode::code` is the stable wire code.
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

impl crate::code::ErrorCode for AuthError {
    fn code(&self) -> crate::code::Code {
        use crate::code::Code;
        match self {
            AuthError::InvalidCredentials => Code::InvalidCredentials,
            AuthError::Locked { .. } => Code::Locked,
            AuthError::RateLimited { .. } => Code::RateLimited,
            AuthError::Unauthorized(_) => Code::Unauthorized,
            AuthError::Forbidden(_) => Code::Forbidden,
            AuthError::Invalid(_) => Code::Invalid,
            AuthError::NotFound(_) => Code::NotFound,
            AuthError::Internal(_) => Code::Internal,
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => AuthError::Invalid(m),
            StoreError::NotFound(m) => AuthError::NotFound(m),
            other => {
                tracing::error!(error = %other, "auth: database error");
                AuthError::Internal(other.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::ErrorCode;

    #[test]
    fn sources_round_trip_and_parks_filter() {
        for s in [
            Source::Panel,
            Source::Cli,
            Source::Remote("10.1.2.3".into()),
        ] {
            assert_eq!(Source::parse(&s.to_string()), s);
        }
        let only = Parks::Only(["b".to_string()].into());
        let configured = ["a".to_string(), "b".to_string()];
        assert_eq!(only.to_list(&configured), vec!["b".to_string()]);
        assert_eq!(Parks::All.to_list(&configured), configured.to_vec());
        let p = Principal::system("os:root", Source::Cli);
        assert_eq!(
            p.audit_entry("x", None, "ok").role.as_deref(),
            Some("system")
        );
    }

    #[test]
    fn store_errors_keep_their_meaning() {
        let e: AuthError = StoreError::Conflict("taken".into()).into();
        assert_eq!(e.code(), "invalid");
        let e: AuthError = StoreError::NotFound("no user".into()).into();
        assert_eq!(e.code(), "not_found");
        let e: AuthError = StoreError::Task("gone".into()).into();
        assert_eq!(e.code(), "internal");
    }
}
