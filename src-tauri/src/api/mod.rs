//! The one dispatcher: typed requests, each checked once before it runs.
//!
//! Every transport (WebSocket, HTTP, the Tauri window) turns its wire format into a [`Request`],
//! calls [`dispatch`] with a [`Ctx`] saying who is asking from where, and turns the
//! `Result<serde_json::Value, ApiError>` back into its wire format. What each request needs is
//! declared in [`access::required`]; [`dispatch`] resolves the caller and checks it (through
//! `crate::auth`) in one place, and hands the checked principal to the handler, so handlers and
//! transports never decide permissions and can never disagree.

pub mod access;
mod audit;
mod live;
pub mod request;
mod session;
mod users;
pub mod wire;
mod write;
mod write_audit;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use access::Access;
pub use request::*;
pub use wire::UpdateMsg;

use crate::auth::{role_allows, Auth, AuthError, Parks, Permission, Principal, Source};
use crate::code::{Code, ErrorCode};
use crate::config::Config;
use crate::live::Cache;
use crate::metrics::Metrics;

pub use write::SharedEngine;
pub use write_audit::{
    ACTION_REFUSED_ANONYMOUS, ACTION_REQUESTED, MAX_NAME_BYTES, MAX_VALUE_JSON_BYTES,
};

/// Who is asking, from where.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The session token, when the caller has one.
    pub token: Option<String>,
    /// Panel, remote address, or CLI; decides e.g. whether remote writes are allowed.
    pub source: Source,
    /// The panel runs as a kiosk (only the desktop transport sets this): `health` says so and
    /// `exit_kiosk` is possible.
    pub kiosk: bool,
}

impl Ctx {
    /// A context for `source` with an optional token.
    pub fn new(token: Option<String>, source: Source) -> Self {
        Self {
            token,
            source,
            kiosk: false,
        }
    }

    /// The same context on a kiosk panel (or not).
    pub fn with_kiosk(mut self, kiosk: bool) -> Self {
        self.kiosk = kiosk;
        self
    }
}

/// An error with a stable machine-readable `code` and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The wire code (see [`Code`]).
    pub code: Code,
    pub message: String,
    /// Seconds until a retry can succeed (`locked`, `rate_limited`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl ErrorCode for ApiError {
    fn code(&self) -> Code {
        self.code
    }
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }
    /// `unauthorized`: no, bad, expired or revoked token.
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(Code::Unauthorized, m)
    }
    /// `forbidden`: the caller may not do this.
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, m)
    }
    /// `invalid`: malformed or unacceptable request.
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(Code::Invalid, m)
    }
    /// `not_found`: no such PLC, node or user.
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(Code::NotFound, m)
    }
    /// `not_connected`: the PLC is not reachable (or did not answer in time).
    pub fn not_connected(m: impl Into<String>) -> Self {
        Self::new(Code::NotConnected, m)
    }
    /// `rate_limited`: too many requests; retry later.
    pub fn rate_limited(m: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s),
            ..Self::new(Code::RateLimited, m)
        }
    }
    /// `unavailable`: a part the operation depends on (the audit trail) cannot be used right
    /// now; nothing was done. HTTP 503.
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, m)
    }
    /// `internal`: a fault on our side; details are in the log.
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(Code::Internal, m)
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
    started: Instant,
    /// Reports the MQTT link for `health`; set once by the MQTT publisher when it starts.
    mqtt_status: std::sync::OnceLock<MqttStatusFn>,
}

/// Reads the MQTT link's state when `health` is asked (the publisher lives above `api`).
pub type MqttStatusFn = Arc<dyn Fn() -> wire::MqttStatus + Send + Sync>;

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
                started: Instant::now(),
                mqtt_status: std::sync::OnceLock::new(),
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

    /// The body of `GET /health` (and the panel's `health` op): liveness without park data, plus
    /// THE role table. `needs_setup` is true while no user exists, so a UI can offer the
    /// first-superuser screen; `kiosk` is only told to the panel.
    pub async fn health(&self, ctx: &Ctx) -> wire::Health {
        let needs_setup = !self.inner.auth.has_users().await.unwrap_or(true);
        let auth = &self.inner.auth;
        let roles = wire::role_table(|r| auth.idle_timeout(r).num_seconds().max(0) as u64);
        wire::Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
            needs_setup,
            kiosk: (ctx.source == Source::Panel).then_some(ctx.kiosk),
            uptime_s: self.inner.started.elapsed().as_secs(),
            roles,
            mqtt: self.inner.mqtt_status.get().map(|f| f()),
        }
    }

    /// Lets `health` report the MQTT link (called once by the publisher; later calls are
    /// ignored).
    pub fn set_mqtt_status(&self, f: MqttStatusFn) {
        let _ = self.inner.mqtt_status.set(f);
    }

    /// A write on behalf of a service that has no session (an MQTT DCMD): `who` names it in the
    /// audit trail (actor, role `system`), `ctx.source` says where it came from. `allowed` is
    /// the service's own switch: when it refuses, the refusal is one audited `write` row and
    /// nothing is sent. Otherwise the same path as every write: bounds, PLC known, rate limit,
    /// write policy and PLC writability, connection, the `write_requested` row, coercion,
    /// range, the write and the read-back, the outcome row.
    pub async fn service_write(
        &self,
        ctx: &Ctx,
        who: Principal,
        req: WriteReq,
        allowed: Result<(), ApiError>,
    ) -> Result<wire::WriteReply, ApiError> {
        write::service_write(self, ctx, who, req, allowed).await
    }

    /// The `user` object of login and `auth` replies.
    pub fn user_view(&self, p: &Principal) -> wire::UserView {
        wire::UserView {
            username: p.username.clone(),
            role: p.role,
            parks: self.visible_parks(&p.parks),
        }
    }

    /// The snapshot of the parks `p` may see (`{"type":"snapshot","seq","plcs":[…]}`).
    pub fn snapshot_msg(&self, p: &Principal) -> wire::SnapshotMsg {
        self.inner.cache.snapshot(|id| p.parks.contains(id)).into()
    }

    /// THE access check: resolves who is asking and whether they may, for what `access` says.
    /// `Ok(None)` for anonymous requests. Every request passes here exactly once.
    async fn authorize(&self, ctx: &Ctx, req: &Request) -> Result<Option<Principal>, ApiError> {
        let (perm, park) = match access::required(req) {
            Access::Anonymous => return Ok(None),
            Access::Session(perm) => (perm, None),
            Access::Park(perm, park) => (perm, Some(park)),
            Access::Credentials(perm) => return self.signed(ctx, req, perm).await.map(Some),
        };
        let token = ctx
            .token
            .as_deref()
            .ok_or_else(|| ApiError::unauthorized("no session token"))?;
        Ok(Some(self.inner.auth.check(token, perm, park).await?))
    }

    /// The principal proven by the username and password inside `req` (kiosk exit): a login
    /// whose session is closed at once, of a role the table allows `perm`.
    async fn signed(
        &self,
        ctx: &Ctx,
        req: &Request,
        perm: Permission,
    ) -> Result<Principal, ApiError> {
        let Request::ExitKiosk(c) = req else {
            return Err(ApiError::internal(format!(
                "{} carries no credentials",
                req.op()
            )));
        };
        let auth = &self.inner.auth;
        let ok = auth
            .login(&c.username, &c.password, ctx.source.clone())
            .await?;
        let _ = auth.logout(&ok.token).await;
        if !role_allows(ok.principal.role, perm) {
            return Err(ApiError::forbidden(perm.only_message()));
        }
        Ok(ok.principal)
    }
}

/// Runs one request for `ctx`: authenticates and authorises first (once, as
/// [`access::required`] says), then performs it with the checked principal.
pub async fn dispatch(api: &Api, ctx: &Ctx, req: Request) -> Result<serde_json::Value, ApiError> {
    let checked = api.authorize(ctx, &req).await;
    match req {
        // The documented exception: a write refused by the access check is still one audit
        // row, so the write handler receives the refusal and records it.
        Request::Write(w) => {
            let checked = checked.and_then(|p| signed_in(p, "write"));
            wire::to_value(&write::write(api, ctx, checked, w).await?)
        }
        req => run(api, ctx, checked?, req).await,
    }
}

/// The principal of a request whose access is not anonymous.
fn signed_in(p: Option<Principal>, op: &str) -> Result<Principal, ApiError> {
    p.ok_or_else(|| ApiError::internal(format!("{op} reached its handler without a principal")))
}

/// Hands a checked request to its handler and serializes the typed reply.
async fn run(
    api: &Api,
    ctx: &Ctx,
    who: Option<Principal>,
    req: Request,
) -> Result<serde_json::Value, ApiError> {
    use wire::to_value as v;
    let op = req.op();
    let p = move || signed_in(who, op);
    match req {
        Request::Health(_) => v(&api.health(ctx).await),
        Request::Login(r) => v(&session::login(api, ctx, r).await?),
        Request::LoginPin(r) => v(&session::login_pin(api, ctx, r).await?),
        Request::LoginBadge(r) => v(&session::login_badge(api, ctx, r).await?),
        Request::FirstSuperuser(r) => v(&session::first_superuser(api, ctx, r).await?),
        Request::Ping(_) => v(&session::ping(&p()?)),
        Request::Auth(_) => v(&session::auth(api, &p()?)),
        Request::Logout(_) => v(&session::logout(api, ctx).await?),
        Request::Me(_) => v(&session::me(api, &p()?)),
        Request::ExitKiosk(_) => v(&session::exit_kiosk(api, ctx, &p()?).await?),
        Request::Snapshot(_) => v(&live::snapshot(api, &p()?)),
        Request::AuditPage(r) => v(&audit::page(api, &p()?, r).await?),
        Request::Write(_) => Err(ApiError::internal("write is dispatched on its own")),
        req => users::run(api, &p()?, req).await,
    }
}
