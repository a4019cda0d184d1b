//! `service_start` / `service_end`: a park in service shows a banner on every client of the
//! park, refuses operator writes (`in_service`, see `write.rs`) and allows calibration. The open
//! period is a store row (it survives a restart) written together with its audit row; it ends
//! on `service_end` or when the session of the serviceman who started it ends (logout, idle
//! timeout, expiry, disabled user), checked by [`watch_expiry`].

use std::time::Duration;

use chrono::Utc;

use super::request::{ParkReq, ServiceStartReq};
use super::wire::{ServiceBanner, ServicePush};
use super::{Api, ApiError, Audience, Ctx};
use crate::auth::Principal;
use crate::store::{self, AuditEntry, StoreError};

/// Longest `reason` accepted, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// How often the sessions of open service periods are checked.
const EXPIRY_TICK: Duration = Duration::from_millis(500);

/// `service_start {park, reason}` → the banner.
pub(super) async fn start(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: ServiceStartReq,
) -> Result<ServiceBanner, ApiError> {
    let reason = r.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    let mut entry = p.audit_entry("service_start", Some(&r.park), "ok");
    entry.source = ctx.source.to_string();
    entry.new_value = Some(reason.clone());
    let (park, who, uid, sid) = (r.park.clone(), p.username.clone(), p.user_id, p.session_id);
    let now = Utc::now();
    let period = api
        .auth()
        .store()
        .write(move |tx| {
            let period = store::service::start(tx, &park, uid, &who, sid, &reason, now)?;
            store::audit::append(tx, &entry, now)?;
            Ok(period)
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::new(crate::code::Code::InService, m),
            e => {
                tracing::error!(error = %e, "cannot store the start of service mode");
                ApiError::unavailable("service mode cannot be stored; nothing changed")
            }
        })?;
    let banner = ServiceBanner::of(&period);
    api.inner.service.started(period);
    publish(api, banner.clone());
    Ok(banner)
}

/// `service_end {park}` → the banner with `active: false`.
pub(super) async fn end(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: ParkReq,
) -> Result<ServiceBanner, ApiError> {
    let mut entry = p.audit_entry("service_end", Some(&r.park), "ok");
    entry.source = ctx.source.to_string();
    entry.new_value = Some("service_end".into());
    match end_period(api, &r.park, "service_end", entry).await? {
        true => Ok(ServiceBanner::ended(&r.park)),
        false => Err(ApiError::invalid(format!("{} is not in service", r.park))),
    }
}

/// Ends the open period of `park` with its audit row; false when there was none.
async fn end_period(
    api: &Api,
    park: &str,
    why: &'static str,
    entry: AuditEntry,
) -> Result<bool, ApiError> {
    let now = Utc::now();
    let p = park.to_string();
    let ended = api
        .auth()
        .store()
        .write(move |tx| {
            let ended = store::service::end(tx, &p, why, now)?;
            if ended.is_some() {
                store::audit::append(tx, &entry, now)?;
            }
            Ok(ended)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store the end of service mode");
            ApiError::unavailable("the end of service mode cannot be stored; nothing changed")
        })?;
    if ended.is_none() {
        return Ok(false);
    }
    api.inner.service.ended(park);
    super::calibration::drop_runs_of(api, park);
    publish(api, ServiceBanner::ended(park));
    Ok(true)
}

fn publish(api: &Api, banner: ServiceBanner) {
    let park = banner.park.clone();
    api.push(
        Audience::Park(park),
        &ServicePush {
            kind: "service",
            banner,
        },
    );
}

/// Ends every service period whose serviceman's session ended; runs for the life of the api.
pub(super) async fn watch_expiry(api: std::sync::Weak<super::Inner>) {
    let mut tick = tokio::time::interval(EXPIRY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = api.upgrade() else { return };
        let api = Api { inner };
        for period in api.inner.service.all() {
            let alive = match api.auth().session_alive_until(period.session_id).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the session of a service period");
                    continue;
                }
            };
            if alive.is_some() {
                continue;
            }
            let entry = AuditEntry {
                actor: Some(period.username.clone()),
                role: None,
                source: "system".into(),
                action: "service_end".into(),
                target: Some(period.park.clone()),
                old_value: None,
                new_value: Some("session_ended".into()),
                result: "ok".into(),
            };
            match end_period(&api, &period.park, "session_ended", entry).await {
                Ok(_) => {
                    tracing::info!(park = %period.park, user = %period.username, "service mode ended with the serviceman's session")
                }
                Err(e) => {
                    tracing::error!(error = %e, park = %period.park, "cannot end service mode")
                }
            }
        }
    }
}
