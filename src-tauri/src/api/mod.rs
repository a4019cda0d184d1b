//! The one dispatcher: typed requests, each checked by `auth::check` before it runs.
//!
//! Every transport (WebSocket, HTTP, the Tauri window) turns its wire format into a [`Request`],
//! calls [`dispatch`] with a [`Ctx`] saying who is asking from where, and turns the
//! `Result<serde_json::Value, ApiError>` back into its wire format. Permissions are decided here
//! (through `crate::auth`) and nowhere else, so the transports can never disagree.

mod audit;
mod live;
mod session;
mod users;
mod write;
mod write_audit;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::auth::{Auth, AuthError, Parks, Principal, Source};
use crate::config::Config;
use crate::live::Cache;
use crate::remote::metrics::Metrics;

pub use write::SharedEngine;
pub use write_audit::{
    ACTION_REFUSED_ANONYMOUS, ACTION_REQUESTED, MAX_NAME_BYTES, MAX_VALUE_JSON_BYTES,
};

/// One operation a person can ask for. Wire form: a JSON object with `"op"` naming the
/// operation in snake_case plus the operation's fields (extra fields such as a WebSocket `id`
/// are ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Liveness of the session; answers `{"pong":true}`.
    Ping,
    /// Password login.
    Login { username: String, password: String },
    /// PIN login (panel only).
    LoginPin { username: String, pin: String },
    /// Badge login (panel only).
    LoginBadge { badge: String },
    /// Ends the caller's session.
    Logout,
    /// Who the caller is.
    Me,
    /// The live picture of the caller's parks.
    Snapshot,
    /// A write to a PLC node (issue 5).
    Write {
        plc: String,
        node: String,
        value: serde_json::Value,
    },
    /// Admin: every user the caller may see.
    UsersList,
    /// Admin: create a user.
    UserAdd {
        username: String,
        password: String,
        role: String,
        #[serde(default)]
        parks: Vec<String>,
    },
    /// Admin: disable a user (ends their sessions).
    UserDisable { username: String },
    /// Admin: enable a user.
    UserEnable { username: String },
    /// Admin: change a user's role.
    UserRole { username: String, role: String },
    /// Admin: grant a park.
    UserGrant { username: String, park: String },
    /// Admin: revoke a park.
    UserRevoke { username: String, park: String },
    /// Admin: set a new password.
    UserPasswd { username: String, password: String },
    /// Admin: set the panel PIN.
    UserPin { username: String, pin: String },
    /// Admin: add a badge id.
    UserBadgeAdd { username: String, badge: String },
    /// Admin: remove a badge id.
    UserBadgeRemove { username: String, badge: String },
    /// Audit trail page (needs ReadAudit).
    AuditPage {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        actor: Option<String>,
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        before_id: Option<i64>,
    },
    /// Creates the first superuser; only while no user exists.
    FirstSuperuser { username: String, password: String },
}

impl Request {
    /// The operation name as on the wire (for logs and metrics).
    pub fn op(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Login { .. } => "login",
            Request::LoginPin { .. } => "login_pin",
            Request::LoginBadge { .. } => "login_badge",
            Request::Logout => "logout",
            Request::Me => "me",
            Request::Snapshot => "snapshot",
            Request::Write { .. } => "write",
            Request::UsersList => "users_list",
            Request::UserAdd { .. } => "user_add",
            Request::UserDisable { .. } => "user_disable",
            Request::UserEnable { .. } => "user_enable",
            Request::UserRole { .. } => "user_role",
            Request::UserGrant { .. } => "user_grant",
            Request::UserRevoke { .. } => "user_revoke",
            Request::UserPasswd { .. } => "user_passwd",
            Request::UserPin { .. } => "user_pin",
            Request::UserBadgeAdd { .. } => "user_badge_add",
            Request::UserBadgeRemove { .. } => "user_badge_remove",
            Request::AuditPage { .. } => "audit_page",
            Request::FirstSuperuser { .. } => "first_superuser",
        }
    }

    /// Parses a request from JSON; an unknown `op` or a wrong field is `invalid`.
    pub fn from_json(v: serde_json::Value) -> Result<Request, ApiError> {
        serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("bad request: {e}")))
    }
}

/// Who is asking, from where.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session token, when the caller has one.
    pub token: Option<String>,
    /// Panel, remote address, or CLI; decides e.g. whether remote writes are allowed.
    pub source: Source,
}

impl Ctx {
    /// A context for `source` with an optional token.
    pub fn new(token: Option<String>, source: Source) -> Self {
        Self { token, source }
    }
}

/// An error with a stable machine-readable `code` and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// One of `unauthorized`, `forbidden`, `invalid`, `not_found`, `not_connected`,
    /// `rate_limited`, `locked`, `internal`, `invalid_credentials`, `unavailable`.
    pub code: &'static str,
    pub message: String,
    /// Seconds until a retry can succeed (`locked`, `rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }
    /// `unauthorized`: no, bad, expired or revoked token.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new("unauthorized", m)
    }
    /// `forbidden`: the caller may not do this.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new("forbidden", m)
    }
    /// `invalid`: malformed or unacceptable request.
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new("invalid", m)
    }
    /// `not_found`: no such PLC, node or user.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new("not_found", m)
    }
    /// `not_connected`: the PLC is not reachable (or did not answer in time).
    pub fn not_connected(m: impl Into<String>) -> Self {
        Self::new("not_connected", m)
    }
    /// `rate_limited`: too many requests; retry later.
    pub fn rate_limited(m: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new("rate_limited", m)
        }
    }
    /// `unavailable`: a part the operation depends on (the audit trail) cannot be used right
    /// now; nothing was done. HTTP 503.
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new("unavailable", m)
    }
    /// `internal`: a fault on our side; details are in the log.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new("internal", m)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let retry = match &e {
            AuthError::Locked { retry_after_s } | AuthError::RateLimited { retry_after_s } => {
                Some(*retry_after_s)
            }
            _ => None,
        };
        if let AuthError::Internal(m) = &e {
            tracing::error!(error = %m, "auth failure");
        }
        ApiError {
            code: e.code(),
            message: e.to_string(),
            retry_after_s: retry,
        }
    }
}

struct Inner {
    auth: Auth,
    cache: Cache,
    cfg: Arc<Config>,
    writer: Option<SharedEngine>,
    metrics: Metrics,
    limiter: write::RateLimiter,
    refusals: write_audit::AnonymousRefusals,
}

/// Wire shape of a live update, `{"type":"update","seq","plcs":[…]}`: shared by the WebSocket
/// fan-out and the desktop window's `live-update` event.
#[derive(Clone, serde::Serialize)]
pub struct UpdateMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    plcs: &'a [crate::live::PlcDelta],
}

impl<'a> UpdateMsg<'a> {
    /// The update message for these changes.
    pub fn new(seq: u64, plcs: &'a [crate::live::PlcDelta]) -> Self {
        Self {
            kind: "update",
            seq,
            plcs,
        }
    }
}

/// The dispatcher's shared state: auth, the live cache, the configuration, the PLC writer and
/// the metrics. Cheap to clone (an `Arc` inside); one per process, shared by every transport.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

impl Api {
    /// An api without a PLC writer (writes answer `not_connected`) with fresh metrics.
    pub fn new(auth: Auth, cache: Cache, cfg: Arc<Config>) -> Api {
        Self::build(auth, cache, cfg, None, Metrics::new())
    }

    /// An api whose writes go to the PLC engine.
    pub fn with_writer(auth: Auth, cache: Cache, cfg: Arc<Config>, writer: SharedEngine) -> Api {
        Self::build(auth, cache, cfg, Some(writer), Metrics::new())
    }

    fn build(
        auth: Auth,
        cache: Cache,
        cfg: Arc<Config>,
        writer: Option<SharedEngine>,
        metrics: Metrics,
    ) -> Api {
        let rate = cfg.auth.write_rate_per_second;
        Api {
            inner: Arc::new(Inner {
                auth,
                cache,
                cfg,
                writer,
                metrics,
                limiter: write::RateLimiter::new(rate),
                refusals: write_audit::AnonymousRefusals::default(),
            }),
        }
    }

    /// The auth service (transports use `peek` and `changes` to police open sockets).
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }
    /// The live cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }
    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.cfg
    }
    /// Counters and gauges exported on `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The configured park ids `parks` lets a principal see, sorted.
    pub fn visible_parks(&self, parks: &Parks) -> Vec<String> {
        let configured: Vec<String> = self
            .inner
            .cfg
            .plc_config
            .iter()
            .map(|p| p.id.clone())
            .collect();
        parks.to_list(&configured)
    }

    /// The body of `GET /health` (and the panel's `health` op): liveness without park data.
    /// `needs_setup` is true while no user exists, so a UI can offer the first-superuser screen.
    pub async fn health_json(&self) -> serde_json::Value {
        let needs_setup = !self.inner.auth.has_users().await.unwrap_or(true);
        serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "needs_setup": needs_setup,
        })
    }

    /// The `user` object of login and `me` replies.
    pub fn user_json(&self, p: &Principal) -> serde_json::Value {
        serde_json::json!({
            "username": p.username,
            "role": p.role.as_str(),
            "parks": self.visible_parks(&p.parks),
        })
    }

    /// The wire snapshot (`{"type":"snapshot","seq","plcs":[…]}`) of the parks `p` may see.
    pub fn snapshot_json(&self, p: &Principal) -> serde_json::Value {
        let snap = self.inner.cache.snapshot(|id| p.parks.contains(id));
        let mut v = serde_json::to_value(&snap).unwrap_or_default();
        if let serde_json::Value::Object(m) = &mut v {
            let mut out = serde_json::Map::new();
            out.insert("type".into(), "snapshot".into());
            out.extend(std::mem::take(m));
            *m = out;
        }
        v
    }

    fn token<'a>(&self, ctx: &'a Ctx) -> Result<&'a str, ApiError> {
        ctx.token
            .as_deref()
            .ok_or_else(|| ApiError::unauthorized("no session token"))
    }
}

/// Runs one request for `ctx`: authenticates and authorises first, then performs it.
pub async fn dispatch(api: &Api, ctx: &Ctx, req: Request) -> Result<serde_json::Value, ApiError> {
    match req {
        Request::Ping => session::ping(api, ctx).await,
        Request::Login { username, password } => {
            session::login(api, ctx, &username, &password).await
        }
        Request::LoginPin { username, pin } => session::login_pin(api, ctx, &username, &pin).await,
        Request::LoginBadge { badge } => session::login_badge(api, ctx, &badge).await,
        Request::Logout => session::logout(api, ctx).await,
        Request::Me => session::me(api, ctx).await,
        Request::FirstSuperuser { username, password } => {
            session::first_superuser(api, ctx, &username, &password).await
        }
        Request::Snapshot => live::snapshot(api, ctx).await,
        Request::Write { plc, node, value } => write::write(api, ctx, &plc, &node, value).await,
        Request::AuditPage {
            from,
            to,
            actor,
            action,
            limit,
            before_id,
        } => audit::page(api, ctx, from, to, actor, action, limit, before_id).await,
        other => users::dispatch(api, ctx, other).await,
    }
}
