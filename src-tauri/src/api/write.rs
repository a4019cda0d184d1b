//! `write {plc, node, value}`: the most dangerous operation, so every step is explicit and no
//! value reaches a PLC without a stored audit row.
//!
//! Order: session + WriteTags + park (checked once by `dispatch`; a refusal comes in as
//! `checked` and is audited here — the documented exception to "handlers only see allowed
//! requests") → field bounds → detached task → PLC known → remote switch → per-user rate limit → node known → write policy (PLC access
//! level, config `writable`, `write_policy`) → PLC connected → the `write_requested` audit row
//! (when it cannot be stored: `unavailable`, nothing sent) → engine write (type coercion, range,
//! IndexRange, read-back into the live cache) → the `write` outcome row.
//!
//! Every attempt by a known user leaves one `write` row; refusals of callers without a valid
//! session are counted per source and minute instead (see `write_audit`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::request::WriteReq;
use super::wire::WriteReply;
use super::write_audit::{self, clip, ACTION_REQUESTED};
use super::{Api, ApiError, Ctx};
use crate::auth::Principal;
use crate::code::{Code, ErrorCode};
use crate::live::PlcStatus;
use crate::plc::{split_element, writable_by_policy, Engine, WriteError};
use crate::store::AuditEntry;

/// The running [`Engine`] shared between the api (writes) and its owner (shutdown): writes take
/// a read lock, [`SharedEngine::shutdown`] takes the engine out (waiting for writes in flight,
/// each bounded by the engine's 5 s write timeout) and stops it. Writes after that are
/// `not_connected`.
#[derive(Clone)]
pub struct SharedEngine {
    inner: std::sync::Arc<tokio::sync::RwLock<Option<Engine>>>,
}

impl SharedEngine {
    /// Wraps a started engine.
    pub fn new(engine: Engine) -> Self {
        Self {
            inner: std::sync::Arc::new(tokio::sync::RwLock::new(Some(engine))),
        }
    }

    /// Stops the engine (bounded by the engine's own shutdown limit); idempotent.
    pub async fn shutdown(&self) {
        let engine = self.inner.write().await.take();
        if let Some(e) = engine {
            e.shutdown().await;
        }
    }

    /// Follows a changed configuration (see [`Engine::reconfigure`]); nothing once stopped.
    pub async fn reconfigure(&self, cfg: std::sync::Arc<crate::config::Config>) {
        if let Some(e) = self.inner.write().await.as_mut() {
            e.reconfigure(cfg).await;
        }
    }

    /// Coerces, writes and reads back through the engine (see [`Engine::write`]);
    /// `not_connected` once the engine is stopped.
    async fn write(
        &self,
        plc: &str,
        node: &str,
        value: &Value,
        range: Option<(f64, f64)>,
    ) -> Result<Value, WriteError> {
        let guard = self.inner.read().await;
        let Some(engine) = guard.as_ref() else {
            return Err(WriteError::NotConnected("the PLC engine is stopped".into()));
        };
        engine.write(plc, node, value, range).await
    }
}

impl SharedEngine {
    /// The engine's counters of `plc` (`None` once stopped or unknown).
    pub async fn diagnostics(&self, plc: &str) -> Option<crate::plc::DiagReport> {
        self.inner.read().await.as_ref()?.diagnostics(plc)
    }

    /// The server certificate of `plc`'s last session, or why there is none.
    pub async fn server_certificate(
        &self,
        plc: &str,
    ) -> Result<crate::plc::ServerCertificate, String> {
        match self.inner.read().await.as_ref() {
            Some(e) => e.server_certificate(plc),
            None => Err("the PLC engine is stopped".into()),
        }
    }

    /// One `ServerStatus` read round trip to `plc`.
    pub async fn server_status(&self, plc: &str) -> Result<crate::plc::ServerStatus, WriteError> {
        let guard = self.inner.read().await;
        let Some(engine) = guard.as_ref() else {
            return Err(WriteError::NotConnected("the PLC engine is stopped".into()));
        };
        engine.server_status(plc).await
    }
}

/// Longest a write may take before the api answers `not_connected` ("timeout"); the engine
/// itself gives up after 5 s, this is the backstop.
const WRITE_TIMEOUT: Duration = Duration::from_secs(6);

/// Per-user token bucket: `rate` writes per second, bursts up to `max(rate, 1)`.
pub(super) struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub(super) fn new(rate: f64) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `user`; `Err(seconds to wait)` when none is left.
    fn take(&self, user: i64, now: Instant) -> Result<(), f64> {
        let cap = self.rate.max(1.0);
        let mut b = self.buckets.lock();
        let (tokens, last) = b.entry(user).or_insert((cap, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.rate).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - *tokens) / self.rate)
        }
    }
}

/// `write {plc,node,value}` → `{"plc","node","value":<read back>}`. `checked` is the outcome of
/// dispatch's access check (session + WriteTags + park): a refusal is audited here too.
pub(super) async fn write(
    api: &Api,
    ctx: &Ctx,
    checked: Result<Principal, ApiError>,
    req: WriteReq,
) -> Result<WriteReply, ApiError> {
    let WriteReq { plc, node, value } = req;
    if let Err(e) = write_audit::check_bounds(&plc, &node, &value) {
        api.metrics().write_result(e.code.as_str());
        write_audit::refused_anonymous(api, &ctx.source.to_string());
        return Err(e);
    }
    // Detached from the caller: a client that disconnects cancels its request future, and a
    // cancelled handler must never stop between the PLC and the audit trail.
    let (api, ctx) = (api.clone(), ctx.clone());
    let task = tokio::spawn(async move {
        let v = audited(&api, &ctx, checked, &plc, &node, value).await?;
        Ok(WriteReply {
            plc,
            node,
            value: v,
        })
    });
    task.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a write task failed");
        Err(ApiError::internal("the write failed; see the log"))
    })
}

/// A write on behalf of an already checked principal (calibration): the same path as `write`
/// from the policy on (park, service mode, remote switch, rate limit, write policy, coercion,
/// read-back) with the same audit rows, in its own task.
pub(super) async fn write_as(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    plc: &str,
    node: &str,
    value: Value,
) -> Result<Value, ApiError> {
    let checked = api
        .auth()
        .check(
            ctx.token.as_deref().unwrap_or(""),
            crate::auth::Permission::WriteTags,
            Some(plc),
        )
        .await
        .map_err(ApiError::from)
        .and_then(|q| {
            (q.user_id == p.user_id)
                .then_some(q)
                .ok_or_else(|| ApiError::forbidden("the session changed"))
        });
    let (api, ctx, plc, node) = (api.clone(), ctx.clone(), plc.to_string(), node.to_string());
    tokio::spawn(async move { audited(&api, &ctx, checked, &plc, &node, value).await })
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a write task failed");
            Err(ApiError::internal("the write failed; see the log"))
        })
}

/// See [`Api::service_write`].
pub(super) async fn service_write(
    api: &Api,
    ctx: &Ctx,
    who: Principal,
    req: WriteReq,
    allowed: Result<(), ApiError>,
) -> Result<WriteReply, ApiError> {
    if let Err(refusal) = allowed {
        write_audit::check_bounds(&req.plc, &req.node, &req.value)?;
        api.metrics().write_result(refusal.code.as_str());
        let old = current_value(api, &req.plc, &req.node);
        let entry = AuditEntry {
            result: format!("{}: {}", refusal.code, refusal.message),
            ..write_entry(
                &who,
                ctx,
                "write",
                &req.plc,
                &req.node,
                old.as_ref(),
                &req.value,
            )
        };
        if let Err(e) = api.auth().audit(entry).await {
            tracing::error!(error = %e, "could not store the row of a refused service write");
        }
        return Err(refusal);
    }
    write(api, ctx, Ok(who), req).await
}

/// One write attempt with its audit rows: `write_requested` before the send (inside
/// [`attempt`]) and the `write` outcome row after it.
async fn audited(
    api: &Api,
    ctx: &Ctx,
    checked: Result<Principal, ApiError>,
    plc: &str,
    node: &str,
    value: Value,
) -> Result<Value, ApiError> {
    // Taken before the write: the read-back goes into the cache at once.
    let old = current_value(api, plc, node);
    let mut principal: Option<Principal> = None;
    let r = attempt(
        api,
        ctx,
        checked,
        Target { plc, node },
        &value,
        old.as_ref(),
        &mut principal,
    )
    .await;
    api.metrics()
        .write_result(r.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code.as_str()));
    let Some(p) = principal else {
        write_audit::refused_anonymous(api, &ctx.source.to_string());
        return r;
    };
    // `unavailable` comes only from a `write_requested` row that could not be stored: nothing
    // was sent, and another row would fail (and wait) the same way.
    if !matches!(&r, Err(e) if e.code == Code::Unavailable) {
        let result = match &r {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{}: {}", e.code, e.message),
        };
        let entry = AuditEntry {
            result,
            ..write_entry(&p, ctx, "write", plc, node, old.as_ref(), &value)
        };
        if let Err(e) = api.auth().audit(entry).await {
            tracing::error!(error = %e, plc, node, "could not store the outcome row of a write");
        }
    }
    r
}

/// The node a write goes to.
#[derive(Clone, Copy)]
struct Target<'a> {
    plc: &'a str,
    node: &'a str,
}

/// The cached value of `node` (an element of an array for `Tag[3]`).
fn current_value(api: &Api, plc: &str, node: &str) -> Option<Value> {
    let (tag, index) = split_element(node);
    api.cache().value(plc, tag).map(|v| match index {
        Some(i) => v.value.get(i as usize).cloned().unwrap_or(Value::Null),
        None => v.value,
    })
}

/// An audit row of this write with `result` `pending` (the caller sets the outcome).
fn write_entry(
    p: &Principal,
    ctx: &Ctx,
    action: &str,
    plc: &str,
    node: &str,
    old: Option<&Value>,
    value: &Value,
) -> AuditEntry {
    AuditEntry {
        actor: Some(p.username.clone()),
        role: Some(p.audit_role()),
        source: ctx.source.to_string(),
        action: action.into(),
        target: Some(format!("{plc}/{node}")),
        old_value: old.map(clip),
        new_value: Some(clip(value)),
        result: "pending".into(),
    }
}

async fn attempt(
    api: &Api,
    ctx: &Ctx,
    checked: Result<Principal, ApiError>,
    Target { plc, node }: Target<'_>,
    value: &Value,
    old: Option<&Value>,
    principal: &mut Option<Principal>,
) -> Result<Value, ApiError> {
    let p = match checked {
        Ok(p) => p,
        Err(e) => {
            // Refused for role or park: still name the actor in the audit row.
            if let Some(token) = ctx.token.as_deref() {
                if let Ok(p) = api.auth().peek(token).await {
                    *principal = Some(p);
                }
            }
            return Err(e);
        }
    };
    let p: &Principal = principal.insert(p);
    let user_id = p.user_id;
    let cfg = api.config();
    if cfg.plc(plc).is_none() {
        return Err(ApiError::not_found(format!("no PLC {plc:?}")));
    }
    if api.inner.service.in_service(plc)
        && !crate::auth::role_allows(p.role, crate::auth::Permission::ServiceMode)
        && !cfg.operator_writable_in_service(plc, split_element(node).0)
    {
        let by = api
            .inner
            .service
            .get(plc)
            .map(|s| s.username)
            .unwrap_or_default();
        return Err(ApiError::new(
            Code::InService,
            format!("{plc} is in service (by {by}); operator writes are refused"),
        ));
    }
    if ctx.source.is_remote() && !cfg.remote.allow_remote_writes {
        return Err(ApiError::forbidden(
            "remote writes are disabled (remote.allow_remote_writes is false)",
        ));
    }
    // A hub shows parks it does not own: writing is the edge node's business, and off here
    // unless configured.
    let hub = api.hub().cloned();
    if hub.is_some() && !cfg.hub.as_ref().is_some_and(|h| h.allow_writes) {
        return Err(ApiError::forbidden(
            "this Stator is a Sparkplug hub and its writes are off (hub.allow_writes is false)",
        ));
    }
    if let Err(wait) = api.inner.limiter.take(user_id, Instant::now()) {
        return Err(ApiError::rate_limited(
            format!(
                "more than {} writes per second",
                cfg.auth.write_rate_per_second
            ),
            wait.ceil().max(1.0) as u64,
        ));
    }
    let (tag, index) = split_element(node);
    let status = api.cache().status(plc).unwrap_or_default();
    let Some(meta) = api.cache().tag_meta(plc, tag) else {
        if status != PlcStatus::Connected {
            return Err(ApiError::not_connected(format!(
                "{plc} is {} and its tags are not known",
                status.as_str()
            )));
        }
        return Err(ApiError::not_found(format!("no node {tag:?} on {plc}")));
    };
    if let Some(i) = index {
        match meta.array_size {
            Some(n) if i < n => {}
            Some(n) => {
                return Err(ApiError::invalid(format!(
                    "index {i} out of bounds: {tag} has {n} elements"
                )))
            }
            None => return Err(ApiError::invalid(format!("{tag} is not an array"))),
        }
    }
    writable_by_policy(&cfg, plc, node, &meta).map_err(ApiError::forbidden)?;
    if status != PlcStatus::Connected {
        return Err(ApiError::not_connected(format!(
            "{plc} is {}",
            status.as_str()
        )));
    }
    if let Some(hub) = hub {
        let pending = write_entry(p, ctx, ACTION_REQUESTED, plc, node, old, value);
        write_audit::record_requested(api, pending).await?;
        hub.write(plc, node, value)?;
        return Ok(value.clone());
    }
    let Some(engine) = api.inner.writer.as_ref() else {
        return Err(ApiError::not_connected("no PLC engine is running"));
    };
    let range = cfg
        .tag(plc, tag)
        .and_then(|t| t.range)
        .map(|[lo, hi]| (lo, hi));
    let pending = write_entry(p, ctx, ACTION_REQUESTED, plc, node, old, value);
    write_audit::record_requested(api, pending).await?;
    match tokio::time::timeout(WRITE_TIMEOUT, engine.write(plc, node, value, range)).await {
        Err(_) => Err(ApiError::not_connected(format!("{plc}: timeout"))),
        Ok(Err(e)) => Err(ApiError {
            code: e.code(),
            message: e.message().to_string(),
            retry_after_s: None,
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refills() {
        let l = RateLimiter::new(2.0);
        let t0 = Instant::now();
        assert!(l.take(1, t0).is_ok());
        assert!(l.take(1, t0).is_ok());
        assert!(l.take(1, t0).is_err());
        assert!(l.take(2, t0).is_ok(), "buckets are per user");
        assert!(l.take(1, t0 + Duration::from_millis(500)).is_ok());
    }
}
