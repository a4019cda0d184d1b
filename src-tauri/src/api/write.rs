//! `write {plc, node, value}`: the most dangerous operation, so every step is explicit and every
//! attempt, allowed or refused, leaves exactly one audit row.
//!
//! Order of checks: session + WriteTags + park (auth) → remote switch → per-user rate limit →
//! node known → write policy (PLC access level, config `writable`, `write_policy`) → PLC
//! connected → engine write (type coercion, range, IndexRange, read-back live in the engine).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde_json::Value;

use super::request::WriteReq;
use super::wire::WriteReply;
use super::{Api, ApiError, Ctx};
use crate::auth::Principal;
use crate::code::{Code, ErrorCode};
use crate::live::PlcStatus;
use crate::plc::{split_element, writable_by_policy, Engine, WriteError};
use crate::store::AuditEntry;

/// The PLC side of a write, implemented by the engine: coerce `value` to the node's DataType,
/// check `range`, write, read back. `node` may name an array element as `Tag[3]`.
pub trait PlcWriter: Send + Sync + 'static {
    /// Writes and returns the value the PLC holds afterwards.
    fn write<'a>(
        &'a self,
        plc: &'a str,
        node: &'a str,
        value: &'a Value,
        range: Option<(f64, f64)>,
    ) -> BoxFuture<'a, Result<Value, WriteFailure>>;
}

/// Why the PLC side refused or failed a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct WriteFailure {
    /// An api error code: `invalid`, `forbidden`, `not_found`, `not_connected`, `internal`.
    pub code: Code,
    /// Human text; carries the OPC UA status name when the PLC refused.
    pub message: String,
}

impl From<WriteError> for WriteFailure {
    fn from(e: WriteError) -> Self {
        WriteFailure {
            code: e.code(),
            message: e.message().to_string(),
        }
    }
}

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
}

impl PlcWriter for SharedEngine {
    fn write<'a>(
        &'a self,
        plc: &'a str,
        node: &'a str,
        value: &'a Value,
        range: Option<(f64, f64)>,
    ) -> BoxFuture<'a, Result<Value, WriteFailure>> {
        Box::pin(async move {
            let guard = self.inner.read().await;
            let Some(engine) = guard.as_ref() else {
                return Err(WriteFailure {
                    code: Code::NotConnected,
                    message: "the PLC engine is stopped".into(),
                });
            };
            engine
                .write(plc, node, value, range)
                .await
                .map_err(WriteFailure::from)
        })
    }
}

/// Longest a write may take before the api answers `not_connected` ("timeout"); the engine
/// itself gives up after 5 s, this is the backstop.
const WRITE_TIMEOUT: Duration = Duration::from_secs(6);
/// Longest requested value kept in an audit row.
const AUDIT_VALUE_MAX: usize = 1000;

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

fn clip(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > AUDIT_VALUE_MAX {
        let mut end = AUDIT_VALUE_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
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
    let (plc, node) = (plc.as_str(), node.as_str());
    let mut principal: Option<Principal> = None;
    let r = attempt(api, ctx, checked, plc, node, &value, &mut principal).await;
    let result = match &r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{}: {}", e.code, e.message),
    };
    api.metrics()
        .write_result(r.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code.as_str()));
    let old = api
        .cache()
        .value(plc, split_element(node).0)
        .map(|v| match split_element(node).1 {
            Some(i) => v.value.get(i as usize).cloned().unwrap_or(Value::Null),
            None => v.value,
        });
    let entry = AuditEntry {
        actor: principal.as_ref().map(|p| p.username.clone()),
        role: principal.as_ref().map(|p| p.role.as_str().to_string()),
        source: ctx.source.to_string(),
        action: "write".into(),
        target: Some(format!("{plc}/{node}")),
        old_value: old.as_ref().map(clip),
        new_value: Some(clip(&value)),
        result,
    };
    if let Err(e) = api.auth().audit(entry).await {
        tracing::error!(error = %e, plc, node, "could not write the audit row of a write");
    }
    let readback = r?;
    Ok(WriteReply {
        plc: plc.to_string(),
        node: node.to_string(),
        value: readback,
    })
}

#[allow(clippy::too_many_arguments)]
async fn attempt(
    api: &Api,
    ctx: &Ctx,
    checked: Result<Principal, ApiError>,
    plc: &str,
    node: &str,
    value: &Value,
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
    let user_id = p.user_id;
    *principal = Some(p);
    let cfg = api.config();
    if cfg.plc(plc).is_none() {
        return Err(ApiError::not_found(format!("no PLC {plc:?}")));
    }
    if ctx.source.is_remote() && !cfg.remote.allow_remote_writes {
        return Err(ApiError::forbidden(
            "remote writes are disabled (remote.allow_remote_writes is false)",
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
    writable_by_policy(cfg, plc, node, &meta).map_err(ApiError::forbidden)?;
    if status != PlcStatus::Connected {
        return Err(ApiError::not_connected(format!(
            "{plc} is {}",
            status.as_str()
        )));
    }
    let Some(writer) = api.inner.writer.as_ref() else {
        return Err(ApiError::not_connected("no PLC engine is running"));
    };
    let range = cfg
        .tag(plc, tag)
        .and_then(|t| t.range)
        .map(|[lo, hi]| (lo, hi));
    match tokio::time::timeout(WRITE_TIMEOUT, writer.write(plc, node, value, range)).await {
        Err(_) => Err(ApiError::not_connected(format!("{plc}: timeout"))),
        Ok(Err(f)) => Err(ApiError {
            code: f.code,
            message: f.message,
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
