//! The audit chain's state for `diagnostics` (`panel.audit_chain`): the result of the last
//! `stator audit verify`-equivalent run, cached, and `diagnostics_audit_verify` to run it again.
//!
//! Verifying walks the whole audit table, so it runs on the blocking pool and never on the async
//! runtime. Runs are coalesced: one at a time, and a request that arrives while one is under way
//! waits for it, then takes the result of the run that started after it asked (the first waiter
//! starts it, the others share it). However many clients press the button, at most one walk is
//! under way and one more is queued.
//!
//! In the running instance (which writes the audit rows) the head is anchored first: a young
//! database has no anchor file until [`crate::store::audit::ANCHOR_EVERY`] or
//! [`crate::store::audit::ANCHOR_EVERY_ROWS`], and `verify` would call that broken. Anchoring
//! only ever appends a head past the last anchored one, so rows deleted from the tail still
//! show against the earlier anchors. `stator diag` (another process) does not anchor, like
//! `stator audit verify`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::Utc;

use super::wire::AuditChain;
use super::{Api, ApiError, Ctx};
use crate::auth::Principal;

/// The cache and the one-run-at-a-time gate.
#[derive(Default)]
pub(super) struct AuditChainCheck {
    last: parking_lot::Mutex<Option<AuditChain>>,
    /// Held while a run is under way.
    gate: tokio::sync::Mutex<()>,
    /// Runs started so far (a waiter compares it with what it saw when it asked).
    started: AtomicU64,
    running: AtomicBool,
}

impl AuditChainCheck {
    /// The cached state (`unknown` before the first run).
    fn view(&self) -> AuditChain {
        let mut v = self.last.lock().clone().unwrap_or(AuditChain {
            state: "unknown",
            rows: 0,
            checked_at: None,
            error: None,
            running: false,
        });
        v.running = self.running.load(Ordering::Acquire);
        v
    }
}

/// `panel.audit_chain` of `diagnostics`: the cached state. The first time it is asked, a run is
/// started in the background (the reply says `running`).
pub(super) fn cached(api: &Api) -> AuditChain {
    let c = &api.inner.audit_chain;
    if c.last.lock().is_none() && c.started.load(Ordering::Acquire) == 0 {
        let api = api.clone();
        tokio::spawn(async move {
            check(&api, true).await;
        });
        let mut v = c.view();
        v.running = true;
        return v;
    }
    c.view()
}

/// Runs the check (or joins the run that starts next) and returns its result; `anchor`: this
/// process writes the audit trail, anchor its head first.
pub(super) async fn check(api: &Api, anchor: bool) -> AuditChain {
    let c = &api.inner.audit_chain;
    let asked = c.started.load(Ordering::Acquire);
    let _gate = c.gate.lock().await;
    if c.started.load(Ordering::Acquire) > asked {
        // A run that began after this request asked finished while it waited: it is fresh.
        if let Some(v) = c.last.lock().clone() {
            return v;
        }
    }
    c.started.fetch_add(1, Ordering::AcqRel);
    c.running.store(true, Ordering::Release);
    let store = api.auth().store().clone();
    let r = tokio::task::spawn_blocking(move || {
        if anchor {
            store.anchor_now();
        }
        store.verify_audit_keyed()
    })
    .await;
    let view = match r {
        Ok(Ok(rep)) => AuditChain {
            state: if rep.first_bad.is_some() {
                "broken"
            } else {
                "ok"
            },
            rows: rep.rows,
            checked_at: Some(Utc::now()),
            error: rep.first_bad.map(|(id, why)| format!("row {id}: {why}")),
            running: false,
        },
        Ok(Err(e)) => unknown(e.to_string()),
        Err(e) => unknown(format!("the check did not finish: {e}")),
    };
    if view.state == "broken" {
        tracing::error!(error = ?view.error, "the audit chain is broken");
    }
    *c.last.lock() = Some(view.clone());
    c.running.store(false, Ordering::Release);
    view
}

fn unknown(error: String) -> AuditChain {
    AuditChain {
        state: "unknown",
        rows: 0,
        checked_at: Some(Utc::now()),
        error: Some(error),
        running: false,
    }
}

/// `diagnostics_audit_verify` → the chain's state after a fresh run; one audit row per request
/// (`audit_verify`, result `ok`/`broken`/`unknown`).
pub(super) async fn rerun(api: &Api, ctx: &Ctx, p: &Principal) -> Result<AuditChain, ApiError> {
    let view = check(api, true).await;
    let mut entry = p.audit_entry("audit_verify", None, view.state);
    entry.source = ctx.source.to_string();
    entry.new_value = Some(match &view.error {
        Some(e) => format!("{} rows; {e}", view.rows),
        None => format!("{} rows", view.rows),
    });
    api.auth().audit(entry).await.map_err(|e| {
        tracing::error!(error = %e, "cannot store the audit row of an audit check");
        ApiError::unavailable("the audit trail cannot be written")
    })?;
    Ok(view)
}
