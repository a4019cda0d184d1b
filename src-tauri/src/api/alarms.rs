//! Alarm operations: the list, acknowledge, shelve, out of service, journal, incidents and
//! EEMUA figures, plus the task that pushes transitions to clients.
//!
//! `dispatch` has checked the session and the role's permission. An alarm's park comes from the
//! configuration, not from the request, so park visibility is decided here, per alarm, against
//! the checked principal's grants (lists are filtered, an action on another park's alarm is
//! `forbidden`). Every acknowledge, shelve and out-of-service change is one audit row written
//! before the change (no row → `unavailable`, nothing changed); refusals of these actions by a
//! known user are audited too.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::request::*;
use super::wire::alarms::*;
use super::{signed_in, Api, ApiError, Audience, Ctx};
use crate::alarms::Refusal;
use crate::auth::Principal;
use crate::code::Code;
use crate::config::Priority;
use crate::store::alarms::{Filter, MAX_ROWS};
use crate::store::bound::parse_bound;

/// Most ids one `alarm_ack` may name.
pub const MAX_ACK_IDS: usize = 1000;
/// Longest comment or reason.
pub const MAX_TEXT: usize = 500;
/// Rows of a journal or incident page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 200;
/// Most rows of one page (the CSV export may ask for [`MAX_ROWS`]).
const MAX_PAGE: u32 = 1000;

/// Whether `op` changes an alarm (its refusals are audited).
fn is_action(req: &Request) -> bool {
    matches!(
        req,
        Request::AlarmAck(_)
            | Request::AlarmShelve(_)
            | Request::AlarmUnshelve(_)
            | Request::AlarmOutOfService(_)
            | Request::AlarmInService(_)
    )
}

/// Runs an alarm request with the outcome of dispatch's access check.
pub(super) async fn run(
    api: &Api,
    ctx: &Ctx,
    checked: Result<Option<Principal>, ApiError>,
    req: Request,
) -> Result<serde_json::Value, ApiError> {
    use super::wire::to_value as v;
    let op = req.op();
    let p = match checked {
        Ok(p) => signed_in(p, op)?,
        Err(e) => {
            if is_action(&req) && e.code == Code::Forbidden {
                refused_by_role(api, ctx, &req, &e).await;
            }
            return Err(e);
        }
    };
    match req {
        Request::Alarms(_) => v(&list(api, &p)),
        Request::AlarmAck(r) => v(&ack(api, &p, r).await?),
        Request::AlarmShelve(r) => v(&shelve(api, &p, r).await?),
        Request::AlarmUnshelve(r) => v(&service(api, &p, &r.alarm, Change::Unshelve).await?),
        Request::AlarmOutOfService(r) => {
            let reason = reason(&r.reason)?;
            v(&service(api, &p, &r.alarm, Change::OutOfService(reason)).await?)
        }
        Request::AlarmInService(r) => v(&service(api, &p, &r.alarm, Change::InService).await?),
        Request::AlarmJournal(r) => v(&journal(api, &p, r, MAX_PAGE).await?),
        Request::Incidents(r) => v(&incidents(api, &p, r).await?),
        Request::AlarmStats(r) => v(&stats(api, &p, r).await?),
        other => Err(ApiError::internal(format!(
            "{} is not an alarm request",
            other.op()
        ))),
    }
}

/// Whether `req` is an alarm request (dispatch routes those here).
pub(super) fn is_alarm(req: &Request) -> bool {
    is_action(req)
        || matches!(
            req,
            Request::Alarms(_)
                | Request::AlarmJournal(_)
                | Request::Incidents(_)
                | Request::AlarmStats(_)
        )
}

/// `alarms`: the listed alarms of the caller's parks.
pub(super) fn list(api: &Api, p: &Principal) -> AlarmList {
    AlarmList {
        alarms: api
            .alarms()
            .list(|park| p.parks.contains(park))
            .into_iter()
            .map(AlarmView::from)
            .collect(),
    }
}

fn target(park: &str, alarm: &str) -> String {
    format!("{park}/{alarm}")
}

/// Appends one audit row of `p`; a row that cannot be stored is `unavailable`.
async fn audit(
    api: &Api,
    p: &Principal,
    action: &str,
    target: &str,
    detail: Option<String>,
    result: &str,
) -> Result<(), ApiError> {
    let mut e = p.audit_entry(action, Some(target), result);
    e.new_value = detail;
    api.auth().audit(e).await.map_err(|e| {
        tracing::error!(error = %e, "cannot write the alarm audit row");
        ApiError::unavailable("the audit trail cannot be written; nothing was changed")
    })
}

/// A refusal by the role table: audited with the session's user when the token is valid.
async fn refused_by_role(api: &Api, ctx: &Ctx, req: &Request, e: &ApiError) {
    let Some(token) = ctx.token.as_deref() else {
        return;
    };
    let Ok(p) = api.auth().peek(token).await else {
        return;
    };
    let alarm = match req {
        Request::AlarmAck(r) => r.ids.join(","),
        Request::AlarmShelve(r) => r.alarm.clone(),
        Request::AlarmUnshelve(r) | Request::AlarmInService(r) => r.alarm.clone(),
        Request::AlarmOutOfService(r) => r.alarm.clone(),
        _ => return,
    };
    let alarm: String = alarm.chars().take(MAX_TEXT).collect();
    let park = api.alarms().park_of(&alarm);
    let t = park.map_or(alarm.clone(), |park| target(&park, &alarm));
    let _ = audit(api, &p, req.op(), &t, None, e.code.as_str()).await;
}

/// The park of `alarm` if the caller may act on it: `not_found` / `forbidden` (audited).
async fn visible_alarm(
    api: &Api,
    p: &Principal,
    op: &str,
    alarm: &str,
) -> Result<String, ApiError> {
    if alarm.len() > crate::config::MAX_ALARM_ID {
        return Err(ApiError::invalid("alarm id too long"));
    }
    let Some(park) = api.alarms().park_of(alarm) else {
        return Err(ApiError::not_found(format!("no alarm {alarm:?}")));
    };
    if !p.parks.contains(&park) {
        audit(
            api,
            p,
            op,
            &target(&park, alarm),
            None,
            Code::Forbidden.as_str(),
        )
        .await?;
        return Err(ApiError::forbidden(format!(
            "alarm {alarm:?} belongs to a park you are not granted"
        )));
    }
    Ok(park)
}

fn text(field: &str, s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.len() > MAX_TEXT {
        return Err(ApiError::invalid(format!(
            "{field} is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(t.to_string())
}

fn reason(s: &str) -> Result<String, ApiError> {
    let t = text("reason", s)?;
    if t.is_empty() {
        return Err(ApiError::invalid("a reason is required"));
    }
    Ok(t)
}

fn refusal(r: Refusal, alarm: &str) -> ApiError {
    match r {
        Refusal::NotFound => ApiError::not_found(format!("no alarm {alarm:?}")),
        Refusal::Invalid(m) => ApiError::invalid(m),
    }
}

fn stored(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "cannot store an alarm change");
    ApiError::unavailable("the alarm state cannot be stored")
}

/// `alarm_ack {ids, comment?}`: one result per id; the others are still acknowledged.
async fn ack(api: &Api, p: &Principal, r: AlarmAckReq) -> Result<AckReply, ApiError> {
    if r.ids.is_empty() || r.ids.len() > MAX_ACK_IDS {
        return Err(ApiError::invalid(format!(
            "ids must name 1 to {MAX_ACK_IDS} alarms"
        )));
    }
    let comment = r
        .comment
        .as_deref()
        .map(|c| text("comment", c))
        .transpose()?
        .filter(|c| !c.is_empty());
    let alarms = api.alarms();
    let mut results = Vec::with_capacity(r.ids.len());
    for id in r.ids {
        let fail = |code: Code, alarm: String| AckResult {
            alarm,
            ok: false,
            state: None,
            code: Some(code),
        };
        let park = match visible_alarm(api, p, "alarm_ack", &id).await {
            Ok(park) => park,
            Err(e) => {
                results.push(fail(e.code, id));
                continue;
            }
        };
        if alarms.ackable(&id) == Some(true) {
            if let Err(e) = audit(
                api,
                p,
                "alarm_ack",
                &target(&park, &id),
                comment.clone(),
                "ok",
            )
            .await
            {
                results.push(fail(e.code, id));
                continue;
            }
        }
        match alarms.ack(&id, &p.username, comment.as_deref()).await {
            Ok(Ok(state)) => results.push(AckResult {
                alarm: id,
                ok: true,
                state: Some(state.as_str()),
                code: None,
            }),
            Ok(Err(_)) => results.push(fail(Code::NotFound, id)),
            Err(e) => results.push(fail(stored(e).code, id)),
        }
    }
    Ok(AckReply { results })
}

/// `alarm_shelve {alarm, minutes, reason}`.
async fn shelve(api: &Api, p: &Principal, r: AlarmShelveReq) -> Result<AlarmReply, ApiError> {
    let why = reason(&r.reason)?;
    let park = visible_alarm(api, p, "alarm_shelve", &r.alarm).await?;
    let t = target(&park, &r.alarm);
    if let Err(e) = api.alarms().check_shelve(r.minutes) {
        let e = refusal(e, &r.alarm);
        audit(api, p, "alarm_shelve", &t, Some(why), e.code.as_str()).await?;
        return Err(e);
    }
    let detail = format!("{} min: {why}", r.minutes);
    audit(api, p, "alarm_shelve", &t, Some(detail), "ok").await?;
    api.alarms()
        .shelve(&r.alarm, r.minutes, &p.username, &why)
        .await
        .map_err(stored)?
        .map_err(|e| refusal(e, &r.alarm))?;
    reply(api, &r.alarm)
}

enum Change {
    Unshelve,
    OutOfService(String),
    InService,
}

/// `alarm_unshelve`, `alarm_out_of_service`, `alarm_in_service`.
async fn service(
    api: &Api,
    p: &Principal,
    alarm: &str,
    change: Change,
) -> Result<AlarmReply, ApiError> {
    let op = match change {
        Change::Unshelve => "alarm_unshelve",
        Change::OutOfService(_) => "alarm_out_of_service",
        Change::InService => "alarm_in_service",
    };
    let park = visible_alarm(api, p, op, alarm).await?;
    let detail = match &change {
        Change::OutOfService(why) => Some(why.clone()),
        _ => None,
    };
    audit(api, p, op, &target(&park, alarm), detail, "ok").await?;
    let a = api.alarms();
    let r = match &change {
        Change::Unshelve => a.unshelve(alarm, &p.username).await,
        Change::OutOfService(why) => a.set_service(alarm, Some(why), &p.username).await,
        Change::InService => a.set_service(alarm, None, &p.username).await,
    };
    r.map_err(stored)?.map_err(|e| refusal(e, alarm))?;
    reply(api, alarm)
}

fn reply(api: &Api, alarm: &str) -> Result<AlarmReply, ApiError> {
    api.alarms()
        .info(alarm)
        .map(|a| AlarmReply { alarm: a.into() })
        .ok_or_else(|| ApiError::not_found(format!("no alarm {alarm:?}")))
}

fn bound(s: Option<&str>, end: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    s.map(|s| parse_bound(s, end).map_err(ApiError::invalid))
        .transpose()
}

/// The parks a read covers: the caller's, or the one asked for (`forbidden` if not granted).
fn parks(api: &Api, p: &Principal, park: Option<&str>) -> Result<Vec<String>, ApiError> {
    let visible = api.visible_parks(&p.parks);
    match park {
        None => Ok(visible),
        Some(park) if visible.iter().any(|v| v == park) => Ok(vec![park.to_string()]),
        Some(park) if api.config().plc(park).is_some() => Err(ApiError::forbidden(format!(
            "park {park:?} is not granted to you"
        ))),
        Some(park) => Err(ApiError::not_found(format!("no park {park:?}"))),
    }
}

fn limit(l: Option<u32>, max: u32) -> Result<u32, ApiError> {
    match l {
        None => Ok(DEFAULT_LIMIT.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit must be between 1 and {max} (got {n})"
        ))),
    }
}

/// `alarm_journal`: newest first, `max` rows at most per page.
pub(super) async fn journal(
    api: &Api,
    p: &Principal,
    r: AlarmJournalReq,
    max: u32,
) -> Result<JournalPage, ApiError> {
    if let Some(pr) = r.priority.as_deref() {
        if Priority::parse(pr).is_none() {
            return Err(ApiError::invalid(format!(
                "priority must be urgent, high, medium or low (got {pr:?})"
            )));
        }
    }
    let f = Filter {
        from: bound(r.from.as_deref(), false)?,
        to: bound(r.to.as_deref(), true)?,
        parks: parks(api, p, r.park.as_deref())?,
        priority: r.priority,
        alarm: r.alarm,
        before_id: r.before_id,
        limit: limit(r.limit, max.min(MAX_ROWS))?,
    };
    let rows = api.alarms().journal(f).await.map_err(read_failed)?;
    let service = ServiceMarks::read(api, rows.iter().map(|r| r.ts)).await?;
    Ok(JournalPage {
        rows: rows
            .into_iter()
            .map(|r| {
                let during_service = service.at(&r.park, r.ts);
                JournalView {
                    during_service,
                    ..r.into()
                }
            })
            .collect(),
    })
}

/// The service periods (issue 14) that mark journal rows and incidents: an event that happened
/// while its park was in service mode is `during_service`.
struct ServiceMarks(Vec<crate::store::service::ServicePeriod>);

impl ServiceMarks {
    /// The periods overlapping the times `ts` span.
    async fn read(api: &Api, ts: impl Iterator<Item = DateTime<Utc>>) -> Result<Self, ApiError> {
        let (mut lo, mut hi) = (None::<DateTime<Utc>>, None::<DateTime<Utc>>);
        for t in ts {
            lo = Some(lo.map_or(t, |l| l.min(t)));
            hi = Some(hi.map_or(t, |h| h.max(t)));
        }
        let (Some(from), Some(to)) = (lo, hi) else {
            return Ok(Self(Vec::new()));
        };
        let to = to + chrono::Duration::milliseconds(1);
        let periods = api
            .auth()
            .store()
            .read(move |c| crate::store::service::periods_between(c, from, to, MAX_ROWS))
            .await
            .map_err(read_failed)?;
        Ok(Self(periods))
    }

    /// Whether `park` was in service at `t`.
    fn at(&self, park: &str, t: DateTime<Utc>) -> bool {
        self.0
            .iter()
            .any(|p| p.park == park && p.started_at <= t && p.ended_at.is_none_or(|e| t < e))
    }
}

fn read_failed(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "cannot read alarms");
    ApiError::internal("cannot read the alarm journal")
}

/// `incidents`: one row per occurrence, newest first.
async fn incidents(api: &Api, p: &Principal, r: IncidentsReq) -> Result<IncidentPage, ApiError> {
    let f = Filter {
        from: bound(r.from.as_deref(), false)?,
        to: bound(r.to.as_deref(), true)?,
        parks: parks(api, p, r.park.as_deref())?,
        priority: None,
        alarm: r.kind,
        before_id: None,
        limit: limit(r.limit, MAX_PAGE)?,
    };
    let rows = api.alarms().incidents(f).await.map_err(read_failed)?;
    let service = ServiceMarks::read(api, rows.iter().map(|r| r.started)).await?;
    let now = Utc::now();
    Ok(IncidentPage {
        incidents: rows
            .into_iter()
            .map(|r| {
                let during_service = service.at(&r.park, r.started);
                IncidentView {
                    during_service,
                    ..IncidentView::new(r, now)
                }
            })
            .collect(),
    })
}

/// `alarm_stats`: EEMUA 191 figures (default range: the last 24 hours).
async fn stats(api: &Api, p: &Principal, r: AlarmStatsReq) -> Result<AlarmStats, ApiError> {
    let to = bound(r.to.as_deref(), true)?.unwrap_or_else(Utc::now);
    let from = bound(r.from.as_deref(), false)?.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to || to - from > chrono::Duration::days(366) {
        return Err(ApiError::invalid(
            "from must be before to, at most 366 days apart",
        ));
    }
    let parks = parks(api, p, r.park.as_deref())?;
    let s = api
        .alarms()
        .stats(parks, from, to)
        .await
        .map_err(read_failed)?;
    Ok(s.into())
}

/// Pushes alarm transitions to the clients that may see their park: the first change at once,
/// then at most one message per park per broadcast interval (one change: `alarm`, several:
/// `alarms`), so a flood reaches each client as a few frames.
pub(super) async fn push_loop(api: Api) {
    let interval = Duration::from_secs_f64(api.config().broadcast_interval_seconds);
    let alarms = api.alarms().clone();
    loop {
        alarms.changed().await;
        let mut by_park: BTreeMap<String, Vec<AlarmView>> = BTreeMap::new();
        for a in alarms.take_changed() {
            by_park.entry(a.park.clone()).or_default().push(a.into());
        }
        for (park, mut list) in by_park {
            if list.len() == 1 {
                let alarm = list.pop().expect("one alarm");
                api.push(
                    Audience::Park(park),
                    &AlarmPush {
                        kind: "alarm",
                        alarm,
                    },
                );
            } else {
                api.push(
                    Audience::Park(park),
                    &AlarmsPush {
                        kind: "alarms",
                        alarms: list,
                    },
                );
            }
        }
        tokio::time::sleep(interval).await;
    }
}
