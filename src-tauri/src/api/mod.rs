//! The one dispatcher: typed requests, each checked once before it runs.
//!
//! Every transport (WebSocket, HTTP, the Tauri window) turns its wire format into a [`Request`],
//! calls [`dispatch`] with a [`Ctx`] saying who is asking from where, and turns the
//! `Result<serde_json::Value, ApiError>` back into its wire format. What each request needs is
//! declared in [`access::required`]; [`dispatch`] resolves the caller and checks it (through
//! `crate::auth`) in one place, and hands the checked principal to the handler, so handlers and
//! transports never decide permissions and can never disagree.

pub mod access;
mod alarms;
mod audit;
mod audit_chain;
mod calibration;
mod config;
mod diagnostics;
pub mod history;
mod live;
mod messages;
pub mod push;
pub mod request;
mod service;
mod session;
mod tokens;
mod users;
pub mod wire;
mod write;
mod write_audit;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use access::Access;
pub use calibration::certificate_html;
pub use messages::OnlineGuard;
pub use push::{Audience, Push, Pushes};
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
    cfg: crate::config::Running,
    /// The file the configuration came from (`config_set` and SIGHUP need it).
    config_file: std::sync::OnceLock<std::path::PathBuf>,
    /// One configuration change at a time.
    config_lock: tokio::sync::Mutex<()>,
    writer: Option<SharedEngine>,
    metrics: Metrics,
    limiter: write::RateLimiter,
    refusals: write_audit::AnonymousRefusals,
    pushes: Pushes,
    alarms: crate::alarms::Alarms,
    messages: crate::messages::Messages,
    started: Instant,
    /// The historian, when it runs (attached once by `app`).
    history: std::sync::OnceLock<crate::history::Historian>,
    /// The parks in service (mirrored from the store).
    service: crate::service::ServiceModes,
    /// Open calibration runs by calibration id (at most one per configured calibration).
    runs: parking_lot::Mutex<std::collections::HashMap<String, calibration::Run>>,
    /// Reports the MQTT link for `health`; set once by the MQTT publisher when it starts.
    mqtt_status: std::sync::OnceLock<MqttStatusFn>,
    /// The cached audit chain check of `diagnostics`.
    audit_chain: audit_chain::AuditChainCheck,
    /// The previous CPU sample of `diagnostics` (`cpu_percent`).
    cpu: diagnostics::CpuSampler,
    /// The Sparkplug hub feeding the cache, when this Stator is one (`stator hub`).
    hub: std::sync::OnceLock<Arc<dyn HubLink>>,
}

/// The Sparkplug hub as the api sees it (it lives above `api`, in `mqtt::hub`): its `health`
/// figures, and the way an allowed write reaches the edge node that owns the park.
pub trait HubLink: Send + Sync {
    /// The broker link and traffic counters for `health`.
    fn status(&self) -> wire::HubStatus;
    /// Sends `value` for tag `node` of `park` to its edge node as a DCMD (queued, not waited
    /// for: the edge node decides and its next DDATA shows the outcome).
    fn write(&self, park: &str, node: &str, value: &serde_json::Value) -> Result<(), ApiError>;
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
        let alarms = crate::alarms::Alarms::new(&cfg, auth.store().clone());
        let service = crate::service::ServiceModes::load(auth.store()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the parks in service");
            Default::default()
        });
        let messages = crate::messages::Messages::new(auth.store().clone(), cfg.messages.clone());
        let api = Api {
            inner: Arc::new(Inner {
                auth,
                cache,
                cfg: crate::config::Running::new(cfg),
                config_file: Default::default(),
                config_lock: Default::default(),
                writer,
                metrics,
                limiter: write::RateLimiter::new(rate),
                refusals: write_audit::AnonymousRefusals::default(),
                pushes: Pushes::default(),
                alarms,
                messages,
                started: Instant::now(),
                history: std::sync::OnceLock::new(),
                service,
                runs: Default::default(),
                mqtt_status: std::sync::OnceLock::new(),
                audit_chain: Default::default(),
                cpu: diagnostics::CpuSampler::new(),
                hub: std::sync::OnceLock::new(),
            }),
        };
        api.inner
            .messages
            .set_handover_source(Arc::new(messages::Handover {
                alarms: api.inner.alarms.clone(),
                service: api.inner.service.clone(),
            }));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(service::watch_expiry(Arc::downgrade(&api.inner)));
        }
        api
    }

    /// Verifies the audit chain now (coalesced with a run under way) and caches the result
    /// `diagnostics` shows; not audited and without anchoring the head first (`stator diag`,
    /// another process than the writer, like `stator audit verify`).
    pub async fn check_audit_chain(&self) -> wire::AuditChain {
        audit_chain::check(self, false).await
    }

    /// The `diagnostics` figures of the parks `p` sees (also `stator diag`).
    pub async fn diagnostics(&self, p: &Principal) -> wire::Diagnostics {
        diagnostics::report(self, p).await
    }

    /// The parks in service now (for the alarm journal and other subsystems above `service`).
    pub fn service_modes(&self) -> &crate::service::ServiceModes {
        &self.inner.service
    }

    /// The auth service (transports use `peek` and `changes` to police open sockets).
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }
    /// The live cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }
    /// The running configuration, as of now (see [`crate::config::Running`]).
    pub fn config(&self) -> Arc<Config> {
        self.inner.cfg.get()
    }

    /// The running configuration's handle (wakes on every change).
    pub fn running_config(&self) -> &crate::config::Running {
        &self.inner.cfg
    }
    /// Serves history queries from `h` (once; a second historian is ignored).
    pub fn attach_history(&self, h: crate::history::Historian) {
        let _ = self.inner.history.set(h);
    }
    /// The historian, when it runs.
    pub fn history(&self) -> Option<&crate::history::Historian> {
        self.inner.history.get()
    }
    /// Counters and gauges exported on `/metrics` (the historian's counters copied in first).
    pub fn render_metrics(&self) -> String {
        if let Some(h) = self.history() {
            let s = h.stats();
            self.inner
                .metrics
                .set_history(s.stored, s.dropped, s.lagged_batches, s.queued);
        }
        self.inner.metrics.render(&self.inner.cache)
    }

    /// Names the file the configuration was loaded from; `config_set` writes it and SIGHUP
    /// re-reads it. Without one, the configuration cannot be changed at run time.
    pub fn set_config_file(&self, path: std::path::PathBuf) {
        let _ = self.inner.config_file.set(path);
    }

    /// The configuration file, when known.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        self.inner.config_file.get().map(|p| p.as_path())
    }

    /// Makes `new` the running configuration without a restart where possible, in an order no
    /// client can observe half-done: the cache first (added parks exist, removed ones and their
    /// values are gone), then auth (parks, settings), the engine (removed PLCs disconnect, added
    /// ones connect, changed ones reconnect), the alarms (definitions and settings; an alarm
    /// whose id stays keeps its state), the historian (per-tag filters, interval, retention) and
    /// last the running value, which wakes every WebSocket client to take a fresh snapshot.
    /// Returns what needs a restart.
    pub async fn apply_config(&self, new: Config) -> Vec<String> {
        let old = self.config();
        let new = Arc::new(new);
        let restart = crate::config::change::restart_required(&old, &new);
        self.inner.cache.reconfigure(&new);
        self.inner.auth.reconfigure(&new);
        if let Some(w) = &self.inner.writer {
            w.reconfigure(new.clone()).await;
        }
        self.inner.alarms.reconfigure(&new, &self.inner.cache);
        // New calibrations' due alarms start normal; tell them their state at once.
        calibration::check_due(self, &new).await;
        if let Some(h) = self.history() {
            h.reconfigure(new.clone()).await;
        }
        self.inner.cfg.replace(new);
        restart
    }
    /// Counters and gauges exported on `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    /// Publishes a server-initiated message (a JSON object with a `"type"`) to every live
    /// session `audience` admits, on every transport (see [`push`]).
    pub fn push(&self, audience: Audience, body: &impl Serialize) {
        self.inner.pushes.publish(audience, body)
    }
    /// The alarm subsystem (evaluator, journal, operator actions).
    pub fn alarms(&self) -> &crate::alarms::Alarms {
        &self.inner.alarms
    }

    /// Starts evaluating alarms against every value the cache reports (restoring their stored
    /// state first) and pushing their transitions to the clients that may see them.
    pub async fn start_alarms(&self) -> Result<(), crate::store::StoreError> {
        let a = &self.inner.alarms;
        a.start(&self.config(), self.inner.cache.clone()).await?;
        a.own(tokio::spawn(alarms::push_loop(self.clone())));
        a.own(tokio::spawn(calibration::due_loop(self.clone())));
        Ok(())
    }

    /// The push channel the transports subscribe to.
    pub fn pushes(&self) -> &Pushes {
        &self.inner.pushes
    }
    /// Messages, presence and the shift log (`app` plugs the handover source in here).
    pub fn messages(&self) -> &crate::messages::Messages {
        &self.inner.messages
    }

    /// The configured park ids `parks` lets a principal see, sorted.
    pub fn visible_parks(&self, parks: &Parks) -> Vec<String> {
        let configured: Vec<String> = self
            .config()
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
        let configured = self.visible_parks(&Parks::All);
        let status = |id: &String| self.inner.cache.status(id).unwrap_or_default();
        let visible: Vec<String> = if ctx.source == Source::Panel {
            configured.clone()
        } else if let Some(t) = ctx.token.as_deref() {
            match auth.peek(t).await {
                Ok(p) => self.visible_parks(&p.parks),
                Err(_) => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let mqtt = self.inner.mqtt_status.get().map(|f| f());
        let hub = self.inner.hub.get().map(|h| h.status());
        // One line per subsystem, so a monitoring tool needs no knowledge of each one's figures.
        let mut subsystems = std::collections::BTreeMap::new();
        subsystems.insert(
            "alarms".to_string(),
            serde_json::json!({
                "state": if self.inner.alarms.running() { "running" } else { "stopped" },
                "tag_missing": self.inner.alarms.tag_missing(),
            }),
        );
        subsystems.insert(
            "history".to_string(),
            serde_json::json!({"state": if self.history().is_some() { "running" } else { "off" }}),
        );
        if let Some(m) = &mqtt {
            subsystems.insert("mqtt".to_string(), serde_json::json!({"state": m.state}));
        }
        if let Some(h) = &hub {
            subsystems.insert("hub".to_string(), serde_json::json!({"state": h.state}));
        }
        wire::Health {
            status: "ok",
            version: env!("CARGO_PKG_VERSION"),
            needs_setup,
            kiosk: (ctx.source == Source::Panel).then_some(ctx.kiosk),
            uptime_s: self.inner.started.elapsed().as_secs(),
            roles,
            alarms_tag_missing: self.inner.alarms.tag_missing(),
            alarm_sound: self.config().alarm_settings.sound,
            history: self.history().map(|h| h.stats().into()),
            parks_connected: configured
                .iter()
                .filter(|id| status(id) == crate::live::PlcStatus::Connected)
                .count(),
            parks_total: configured.len(),
            parks: visible
                .iter()
                .map(|id| wire::ParkHealth {
                    id: id.clone(),
                    status: status(id),
                })
                .collect(),
            subsystems,
            mqtt,
            hub,
        }
    }

    /// Makes this api a hub's: `health` reports it, and writes are refused unless
    /// `hub.allow_writes`, then sent through it (called once by `mqtt::hub`; later calls are
    /// ignored).
    pub fn set_hub(&self, hub: Arc<dyn HubLink>) {
        let _ = self.inner.hub.set(hub);
    }

    /// The hub feeding this api, when it is one.
    pub(crate) fn hub(&self) -> Option<&Arc<dyn HubLink>> {
        self.inner.hub.get()
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

    /// The snapshot of the parks `p` may see live (`{"type":"snapshot","seq","plcs":[…]}`).
    pub fn snapshot_msg(&self, p: &Principal) -> wire::SnapshotMsg {
        let live = Self::sees_live(p);
        let mut msg: wire::SnapshotMsg = self
            .inner
            .cache
            .snapshot(|id| live && p.parks.contains(id))
            .into();
        if live {
            msg.service = self
                .inner
                .service
                .all()
                .iter()
                .filter(|s| p.parks.contains(&s.park))
                .map(wire::ServiceBanner::of)
                .collect();
        }
        if p.token
            .as_ref()
            .is_none_or(|t| t.has(crate::auth::Scope::AlarmsRead))
        {
            msg.alarms = alarms::list(self, p).alarms;
        }
        msg
    }

    /// The parks whose live values `p` receives (snapshot and updates): its visible parks, or
    /// none for an API token without the `live:read` scope.
    pub fn live_parks(&self, p: &Principal) -> Vec<String> {
        if Self::sees_live(p) {
            self.visible_parks(&p.parks)
        } else {
            Vec::new()
        }
    }

    fn sees_live(p: &Principal) -> bool {
        p.token
            .as_ref()
            .is_none_or(|t| t.has(crate::auth::Scope::LiveRead))
    }

    /// THE access check: resolves who is asking and whether they may, for what `access` says.
    /// `Ok(None)` for anonymous requests. Every request passes here exactly once.
    async fn authorize(&self, ctx: &Ctx, req: &Request) -> Result<Option<Principal>, ApiError> {
        let config = self.config();
        let (perm, park) = match access::required(req) {
            Access::Anonymous => return Ok(None),
            Access::Session(perm) => (perm, None),
            Access::Park(perm, park) => (perm, Some(park)),
            Access::Calibration(perm, id) => match config.calibration(id) {
                Some(c) => (perm, Some(c.park())),
                None => {
                    let token = ctx.token.as_deref().unwrap_or("");
                    self.inner.auth.check(token, perm, None).await?;
                    return Err(ApiError::not_found(format!("no calibration {id:?}")));
                }
            },
            Access::Credentials(perm) => return self.signed(ctx, req, perm).await.map(Some),
        };
        let token = ctx
            .token
            .as_deref()
            .ok_or_else(|| ApiError::unauthorized("no session token"))?;
        let usage = access::token_use(req);
        let p = self
            .inner
            .auth
            .check_as(token, perm, park, Some(&ctx.source), req.op(), usage)
            .await?;
        Ok(Some(p))
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
    if let (Err(e), Some(target)) = (&checked, calibration::audited_target(&req)) {
        calibration::audit_refusal(api, ctx, req.op(), target, e).await;
    }
    match req {
        // The documented exception: a write refused by the access check is still one audit
        // row, so the write handler receives the refusal and records it.
        Request::Write(w) => {
            let checked = checked.and_then(|p| signed_in(p, "write"));
            wire::to_value(&write::write(api, ctx, checked, w).await?)
        }
        // Alarm actions refused by the access check are audited too (by the alarm handlers).
        req if alarms::is_alarm(&req) => alarms::run(api, ctx, checked, req).await,
        req => run(api, ctx, checked?, req).await,
    }
}

/// The alarm journal for a CSV export: the access check of `alarm_journal`, up to
/// [`crate::store::alarms::MAX_ROWS`] rows instead of one page.
pub async fn alarm_journal_export(
    api: &Api,
    ctx: &Ctx,
    r: AlarmJournalReq,
) -> Result<Vec<wire::alarms::JournalView>, ApiError> {
    let req = Request::AlarmJournal(r.clone());
    let p = signed_in(api.authorize(ctx, &req).await?, "alarm_journal")?;
    Ok(alarms::journal(api, &p, r, crate::store::alarms::MAX_ROWS)
        .await?
        .rows)
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
        Request::History(r) => v(&history::history(api, &p()?, r).await?),
        Request::HistoryTags(r) => v(&history::tags(api, &p()?, r).await?),
        Request::ServiceStart(r) => v(&service::start(api, ctx, &p()?, r).await?),
        Request::ServiceEnd(r) => v(&service::end(api, ctx, &p()?, r).await?),
        Request::CalibrationStart(r) => v(&calibration::start(api, ctx, &p()?, r).await?),
        Request::CalibrationPoint(r) => v(&calibration::point(api, ctx, &p()?, r).await?),
        Request::CalibrationApply(r) => v(&calibration::apply(api, ctx, &p()?, r).await?),
        Request::CalibrationCancel(r) => v(&calibration::cancel(api, ctx, &p()?, r).await?),
        Request::CalibrationRecords(r) => v(&calibration::records(api, &p()?, r).await?),
        Request::Calibrations(_) => v(&calibration::list(api, &p()?).await?),
        Request::Diagnostics(_) => v(&diagnostics::report(api, &p()?).await),
        Request::DiagnosticsPing(r) => v(&diagnostics::ping(api, r).await?),
        Request::DiagnosticsAuditVerify(_) => v(&audit_chain::rerun(api, ctx, &p()?).await?),
        req @ (Request::MessageSend(_)
        | Request::Messages(_)
        | Request::MessageRead(_)
        | Request::Conversations(_)
        | Request::Presence(_)
        | Request::MessagesExport(_)
        | Request::LogbookAdd(_)
        | Request::Logbook(_)
        | Request::LogbookAck(_)) => messages::run(api, &p()?, req).await,
        Request::ApiTokenCreate(r) => v(&tokens::create(api, &p()?, r).await?),
        Request::ApiTokens(_) => v(&tokens::list(api, &p()?).await?),
        Request::ApiTokenRevoke(r) => v(&tokens::revoke(api, &p()?, r).await?),
        Request::ConfigGet(_) => v(&config::get(api)?),
        Request::SessionRefresh(_) => v(&session::refresh(api, ctx).await?),
        Request::ConfigSet(r) => v(&config::set(api, &p()?, r).await?),
        req => users::run(api, &p()?, req).await,
    }
}
