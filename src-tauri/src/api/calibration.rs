//! The calibration ops: a run per configured calibration, open only while its park is in
//! service. Points capture the live raw value averaged over `service.capture_seconds` (with its
//! spread); apply writes gain and offset through the normal safe-write path (`write.rs`: park,
//! service mode, policy, coercion, read-back, audit), then verifies the live value against the
//! last reference and stores an append-only record. Every op leaves an audit row.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::request::{CalibrationPointReq, CalibrationRecordsReq, CalibrationReq};
use super::wire::{
    CalibrationList, CalibrationRecordView, CalibrationRecords, CalibrationRunView,
    CalibrationView, LastCalibration,
};
use super::{Api, ApiError, Ctx};
use crate::auth::Principal;
use crate::config::CalibrationConfig;
use crate::live::Quality;
use crate::service::calibration::{self as cal, Point, Record};
use crate::store::service::RecordFilter;

/// One open run (in memory: a run does not outlive the process or its park's service period).
#[derive(Debug, Clone)]
pub(super) struct Run {
    user_id: i64,
    view: CalibrationRunView,
}

/// Sampling period of a capture window.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Most records one `calibration_records` returns.
const MAX_RECORDS: u32 = 1000;

/// The configured calibration (a copy: the running configuration may change meanwhile).
fn cfg_of(api: &Api, id: &str) -> Result<CalibrationConfig, ApiError> {
    api.config()
        .calibration(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no calibration {id:?}")))
}

/// A numeric live value with good quality.
fn good_number(api: &Api, key: &str) -> Result<f64, ApiError> {
    let (plc, tag) = key.split_once('/').unwrap_or(("", key));
    let v = api
        .cache()
        .value(plc, tag)
        .ok_or_else(|| ApiError::not_connected(format!("{key} is not known (yet)")))?;
    if v.quality != Quality::Good {
        return Err(ApiError::invalid(format!(
            "{key} has {} quality ({})",
            match v.quality {
                Quality::Bad => "bad",
                _ => "uncertain",
            },
            v.reason.unwrap_or_default()
        )));
    }
    v.value
        .as_f64()
        .ok_or_else(|| ApiError::invalid(format!("{key} is not a number")))
}

/// Averages `key` over the capture window.
async fn capture(api: &Api, key: &str) -> Result<cal::Capture, ApiError> {
    let window = Duration::from_secs_f64(api.config().service.capture_seconds);
    let end = tokio::time::Instant::now() + window;
    let mut samples = Vec::new();
    loop {
        samples.push(good_number(api, key)?);
        if tokio::time::Instant::now() >= end || samples.len() >= 10_000 {
            break;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    cal::capture(&samples).ok_or_else(|| ApiError::invalid(format!("{key}: no usable samples")))
}

fn in_service(api: &Api, c: &CalibrationConfig) -> Result<(), ApiError> {
    if !api.inner.service.in_service(c.park()) {
        return Err(ApiError::forbidden(format!(
            "calibration needs service mode: put {} in service first",
            c.park()
        )));
    }
    Ok(())
}

async fn audit(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    action: &str,
    id: &str,
    detail: Value,
    r: &Result<CalibrationRunView, ApiError>,
) -> Result<(), ApiError> {
    let result = match r {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{}: {}", e.code, e.message),
    };
    let mut e = p.audit_entry(action, Some(id), &result);
    e.source = ctx.source.to_string();
    e.new_value = Some(detail.to_string());
    api.auth().audit(e).await.map_err(|e| {
        tracing::error!(error = %e, "cannot audit a calibration step");
        ApiError::unavailable("the audit trail cannot be written")
    })
}

/// `calibration_start {calibration}`.
pub(super) async fn start(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: CalibrationReq,
) -> Result<CalibrationRunView, ApiError> {
    let res = start_inner(api, p, &r.calibration).await;
    audit(
        api,
        ctx,
        p,
        "calibration_start",
        &r.calibration,
        json!({}),
        &res,
    )
    .await?;
    let view = res?;
    api.inner.runs.lock().insert(
        r.calibration.clone(),
        Run {
            user_id: p.user_id,
            view: view.clone(),
        },
    );
    Ok(view)
}

async fn start_inner(api: &Api, p: &Principal, id: &str) -> Result<CalibrationRunView, ApiError> {
    let c = &cfg_of(api, id)?;
    in_service(api, c)?;
    if let Some(run) = api.inner.runs.lock().get(id) {
        if run.user_id != p.user_id {
            return Err(ApiError::invalid(format!(
                "{id} has an open run of another user; cancel it first"
            )));
        }
    }
    Ok(CalibrationRunView {
        id: id.to_string(),
        points: Vec::new(),
        gain: None,
        offset: None,
        as_found_error: None,
        as_left_error: None,
        pass: None,
        old_gain: good_number(api, &c.gain_tag)?,
        old_offset: good_number(api, &c.offset_tag)?,
        unit: c.unit.clone(),
        range: c.range,
        tolerance: c.tolerance,
        state: "open",
        record: None,
    })
}

fn open_run(api: &Api, p: &Principal, id: &str) -> Result<Run, ApiError> {
    match api.inner.runs.lock().get(id) {
        Some(r) if r.user_id == p.user_id && r.view.state == "open" => Ok(r.clone()),
        Some(_) => Err(ApiError::invalid(format!("{id} has no open run of yours"))),
        None => Err(ApiError::invalid(format!(
            "{id} has no open run; start one with calibration_start"
        ))),
    }
}

/// `calibration_point {calibration, reference}`.
pub(super) async fn point(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: CalibrationPointReq,
) -> Result<CalibrationRunView, ApiError> {
    let res = point_inner(api, p, &r).await;
    let detail = match &res {
        Ok(v) => json!({"reference": r.reference, "point": v.points.last()}),
        Err(_) => json!({"reference": r.reference}),
    };
    audit(
        api,
        ctx,
        p,
        "calibration_point",
        &r.calibration,
        detail,
        &res,
    )
    .await?;
    let view = res?;
    if let Some(run) = api.inner.runs.lock().get_mut(&r.calibration) {
        run.view = view.clone();
    }
    Ok(view)
}

async fn point_inner(
    api: &Api,
    p: &Principal,
    r: &CalibrationPointReq,
) -> Result<CalibrationRunView, ApiError> {
    let c = &cfg_of(api, &r.calibration)?;
    in_service(api, c)?;
    let mut run = open_run(api, p, &r.calibration)?;
    if run.view.points.len() >= 2 {
        return Err(ApiError::invalid(
            "both points are captured; apply or cancel",
        ));
    }
    cal::check_reference(c, r.reference).map_err(|e| ApiError::invalid(e.to_string()))?;
    let got = capture(api, &c.raw_tag).await?;
    let gain = run.view.old_gain;
    cal::check_spread(c, &got, gain).map_err(|e| ApiError::invalid(e.to_string()))?;
    let pt = Point {
        reference: r.reference,
        raw: got.mean,
        spread: got.spread,
    };
    let v = &mut run.view;
    if let Some(first) = v.points.first() {
        cal::check_second(c, first, &pt, gain).map_err(|e| ApiError::invalid(e.to_string()))?;
        let (g, o) = cal::fit(first, &pt).map_err(|e| ApiError::invalid(e.to_string()))?;
        v.gain = Some(g);
        v.offset = Some(o);
    }
    v.points.push(pt);
    v.as_found_error = Some(cal::worst_error(&v.points, v.old_gain, v.old_offset));
    Ok(run.view)
}

/// `calibration_apply {calibration}`.
pub(super) async fn apply(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: CalibrationReq,
) -> Result<CalibrationRunView, ApiError> {
    let res = apply_inner(api, ctx, p, &r.calibration).await;
    let detail = match &res {
        Ok(v) => {
            json!({"gain": v.gain, "offset": v.offset, "as_left_error": v.as_left_error, "pass": v.pass, "record": v.record})
        }
        Err(_) => json!({}),
    };
    audit(
        api,
        ctx,
        p,
        "calibration_apply",
        &r.calibration,
        detail,
        &res,
    )
    .await?;
    let view = res?;
    api.inner.runs.lock().remove(&r.calibration);
    Ok(view)
}

async fn apply_inner(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    id: &str,
) -> Result<CalibrationRunView, ApiError> {
    let c = cfg_of(api, id)?;
    in_service(api, &c)?;
    let run = open_run(api, p, id)?;
    let mut v = run.view;
    let (Some(gain), Some(offset), 2) = (v.gain, v.offset, v.points.len()) else {
        return Err(ApiError::invalid(format!(
            "{id} needs two points before apply ({} captured)",
            v.points.len()
        )));
    };
    let park = c.park().to_string();
    let gain_tag = CalibrationConfig::name_of(&c.gain_tag).to_string();
    let offset_tag = CalibrationConfig::name_of(&c.offset_tag).to_string();
    // The normal safe-write path; the gain first: a refused gain leaves nothing written.
    super::write::write_as(api, ctx, p, &park, &gain_tag, json!(gain)).await?;
    if let Err(e) = super::write::write_as(api, ctx, p, &park, &offset_tag, json!(offset)).await {
        // Put the old gain back so the sensor is not left half calibrated.
        let _ = super::write::write_as(api, ctx, p, &park, &gain_tag, json!(v.old_gain)).await;
        return Err(e);
    }
    // Verify: the live value must follow the reference still applied (the last point).
    let target = v.points[1].reference;
    let (plc, tag) = c.tag.split_once('/').unwrap_or(("", &c.tag));
    // Only a value stamped one sampling interval after the writes proves the new gain/offset:
    // a server that emulates the sampling interval (async-opcua, the simulator) holds a value
    // that came early and restamps it up to one interval later, so a reading computed with the
    // old coefficients can carry a stamp just after the write.
    let cfg = api.config();
    let sampling = cfg.plc(plc).map_or(cfg.broadcast_interval_seconds, |p| {
        cfg.sampling_seconds_for(p)
    });
    let sampling = Duration::from_secs_f64(sampling.clamp(0.0, 60.0));
    let written = Utc::now() + chrono::Duration::from_std(sampling).unwrap_or_default();
    let deadline = tokio::time::Instant::now() + sampling + Duration::from_secs(5);
    while api
        .cache()
        .value(plc, tag)
        .and_then(|t| t.ts)
        .is_none_or(|t| t < written)
    {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let (as_left, result) = match capture(api, &c.tag).await {
        Ok(got) => (Some(got.mean - target), "ok".to_string()),
        Err(e) => (None, format!("verification failed: {}", e.message)),
    };
    let pass = as_left.is_some_and(|e| e.abs() <= c.tolerance);
    v.as_left_error = as_left;
    v.pass = Some(pass);
    v.state = "applied";
    let now = Utc::now();
    let record = Record {
        calibration: id.to_string(),
        park: park.clone(),
        tag: c.tag.clone(),
        unit: c.unit.clone(),
        range: c.range,
        tolerance: c.tolerance,
        by: p.username.clone(),
        at: now,
        points: v.points.clone(),
        old_gain: v.old_gain,
        old_offset: v.old_offset,
        new_gain: gain,
        new_offset: offset,
        as_found_error: v.as_found_error.unwrap_or_default(),
        as_left_error: as_left,
        pass,
        next_due: cal::next_due(&c, now, pass),
        result: if pass || result != "ok" {
            result
        } else {
            "as-left error above tolerance".into()
        },
    };
    let text = serde_json::to_string(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    let (cid, actor) = (id.to_string(), p.username.clone());
    let n = api
        .auth()
        .store()
        .write(move |tx| crate::store::service::append_record(tx, &cid, &park, &actor, &text, now))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store a calibration record");
            ApiError::unavailable("the calibration record cannot be stored")
        })?;
    v.record = Some(n);
    check_due(api, &api.config()).await;
    Ok(v)
}

/// How often the due dates are looked at (a date passes with time alone).
const DUE_EVERY: Duration = Duration::from_secs(60);

/// Raises or clears every calibration's `<id>.cal_due` alarm: due within
/// [`cal::DUE_SOON_DAYS`] or overdue ([`cal::due`]) after the newest passing record, never
/// calibrated counting as overdue; the calibrations of `cfg` (the running configuration, or the
/// one being applied).
pub(super) async fn check_due(api: &Api, cfg: &crate::config::Config) {
    let rows = match api
        .auth()
        .store()
        .read(crate::store::service::last_passed)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read calibration records for their due dates");
            return;
        }
    };
    let next: std::collections::HashMap<String, chrono::DateTime<Utc>> = rows
        .into_iter()
        .filter_map(|r| {
            let rec = serde_json::from_str::<Record>(&r.record).ok()?;
            Some((r.calibration, rec.next_due))
        })
        .collect();
    let now = Utc::now();
    let due: Vec<(String, bool)> = cfg
        .calibration
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                cal::due(next.get(&c.id).copied(), now) != "ok",
            )
        })
        .collect();
    api.alarms().set_cal_due(&due);
}

/// Checks the due dates at once and then every [`DUE_EVERY`] (started with the alarms).
pub(super) async fn due_loop(api: Api) {
    let mut tick = tokio::time::interval(DUE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        check_due(&api, &api.config()).await;
    }
}

/// `calibration_cancel {calibration}`.
pub(super) async fn cancel(
    api: &Api,
    ctx: &Ctx,
    p: &Principal,
    r: CalibrationReq,
) -> Result<CalibrationRunView, ApiError> {
    let res = open_run(api, p, &r.calibration).map(|run| CalibrationRunView {
        state: "cancelled",
        ..run.view
    });
    audit(
        api,
        ctx,
        p,
        "calibration_cancel",
        &r.calibration,
        json!({}),
        &res,
    )
    .await?;
    let view = res?;
    api.inner.runs.lock().remove(&r.calibration);
    Ok(view)
}

/// Drops the runs of a park whose service period ended.
pub(super) fn drop_runs_of(api: &Api, park: &str) {
    let cfg = api.config().clone();
    api.inner
        .runs
        .lock()
        .retain(|id, _| cfg.calibration(id).is_some_and(|c| c.park() != park));
}

/// `calibration_records {calibration?, from?, to?}` → the caller's parks' records, newest first.
pub(super) async fn records(
    api: &Api,
    p: &Principal,
    r: CalibrationRecordsReq,
) -> Result<CalibrationRecords, ApiError> {
    // The audit trail's range syntax: RFC 3339 or a date (`to` a date means its end).
    let parse = |s: &Option<String>, f: &str, end: bool| -> Result<_, ApiError> {
        s.as_deref()
            .map(|t| crate::store::bound::parse_bound(t, end))
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{f}: {e}")))
    };
    let filter = RecordFilter {
        calibration: r.calibration,
        from: parse(&r.from, "from", false)?,
        to: parse(&r.to, "to", true)?,
        limit: MAX_RECORDS,
    };
    let rows = api
        .auth()
        .store()
        .read(move |c| crate::store::service::records(c, &filter))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let records = rows
        .into_iter()
        .filter(|row| p.parks.contains(&row.park))
        .filter_map(|row| {
            serde_json::from_str::<Record>(&row.record)
                .ok()
                .map(|record| CalibrationRecordView { n: row.id, record })
        })
        .collect();
    Ok(CalibrationRecords { records })
}

/// `calibrations` → the configured calibrations of the caller's parks, with the last passed
/// record and the due state.
pub(super) async fn list(api: &Api, p: &Principal) -> Result<CalibrationList, ApiError> {
    let rows = api
        .auth()
        .store()
        .read(crate::store::service::last_passed)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let last: std::collections::HashMap<String, (i64, Record)> = rows
        .into_iter()
        .filter_map(|row| {
            let rec = serde_json::from_str::<Record>(&row.record).ok()?;
            Some((row.calibration, (row.id, rec)))
        })
        .collect();
    let now = Utc::now();
    let runs = api.inner.runs.lock().clone();
    let calibrations = api
        .config()
        .calibration
        .iter()
        .filter(|c| p.parks.contains(c.park()))
        .map(|c| {
            let l = last.get(&c.id);
            let next_due = l.map(|(_, r)| r.next_due);
            CalibrationView {
                id: c.id.clone(),
                park: c.park().to_string(),
                tag: c.tag.clone(),
                raw_tag: c.raw_tag.clone(),
                unit: c.unit.clone(),
                range: c.range,
                tolerance: c.tolerance,
                interval_days: c.interval_days,
                last: l.map(|(n, r)| LastCalibration {
                    n: *n,
                    at: r.at,
                    by: r.by.clone(),
                }),
                next_due,
                due: cal::due(next_due, now),
                open_run: runs
                    .get(&c.id)
                    .is_some_and(|r| r.user_id == p.user_id && r.view.state == "open"),
            }
        })
        .collect();
    Ok(CalibrationList { calibrations })
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A printable certificate of one record (as returned by `calibration_records`): plain HTML
/// with print styles, no scripts, nothing loaded from elsewhere (the CSP stays strict).
pub fn certificate_html(r: &Value) -> String {
    let s = |k: &str| {
        esc(&r[k]
            .as_str()
            .map_or_else(|| r[k].to_string(), str::to_string))
    };
    let num = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.6}"));
    let unit = s("unit");
    let mut rows = String::new();
    if let Some(points) = r["points"].as_array() {
        for (i, p) in points.iter().enumerate() {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{} {unit}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                num(&p["reference"]),
                num(&p["raw"]),
                num(&p["spread"])
            ));
        }
    }
    let verdict = if r["pass"] == Value::Bool(true) {
        "PASS"
    } else {
        "FAIL"
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Calibration certificate {n}</title><style>\
body{{font:11pt sans-serif;margin:2cm;color:#000;background:#fff}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #000;padding:4px 8px;text-align:left}}\
h1{{font-size:16pt}}@media print{{body{{margin:1cm}}}}</style></head><body>\
<h1>Calibration certificate no. {n}</h1>\
<table><tr><th>Calibration</th><td>{cal}</td></tr><tr><th>Park</th><td>{park}</td></tr>\
<tr><th>Tag</th><td>{tag}</td></tr><tr><th>Range</th><td>{lo} – {hi} {unit}</td></tr>\
<tr><th>Tolerance</th><td>± {tol} {unit}</td></tr><tr><th>Calibrated by</th><td>{by}</td></tr>\
<tr><th>Date (UTC)</th><td>{at}</td></tr><tr><th>Next due (UTC)</th><td>{due}</td></tr></table>\
<h2>Points</h2><table><tr><th>#</th><th>Reference</th><th>Raw (mean)</th><th>Raw spread</th></tr>{rows}</table>\
<h2>Result</h2><table><tr><th></th><th>Gain</th><th>Offset</th></tr>\
<tr><th>As found</th><td>{og}</td><td>{oo}</td></tr><tr><th>As left</th><td>{ng}</td><td>{no}</td></tr></table>\
<table><tr><th>As-found error</th><td>{afe} {unit}</td></tr><tr><th>As-left error</th><td>{ale} {unit}</td></tr>\
<tr><th>Verdict</th><td><strong>{verdict}</strong> ({result})</td></tr></table>\
<p>Signature: ______________________________</p></body></html>",
        n = esc(&r["n"].to_string()),
        cal = s("calibration"),
        park = s("park"),
        tag = s("tag"),
        lo = num(&r["range"][0]),
        hi = num(&r["range"][1]),
        tol = num(&r["tolerance"]),
        by = s("by"),
        at = s("at"),
        due = s("next_due"),
        og = num(&r["old_gain"]),
        oo = num(&r["old_offset"]),
        ng = num(&r["new_gain"]),
        no = num(&r["new_offset"]),
        afe = num(&r["as_found_error"]),
        ale = num(&r["as_left_error"]),
        result = s("result"),
    )
}

/// The calibration id of a calibration run op (these leave an audit row even when the access
/// check refuses them: a refused calibration attempt is part of the record).
pub(super) fn audited_target(req: &super::Request) -> Option<&str> {
    use super::Request as R;
    match req {
        R::CalibrationStart(r) | R::CalibrationApply(r) | R::CalibrationCancel(r) => {
            Some(&r.calibration)
        }
        R::CalibrationPoint(r) => Some(&r.calibration),
        _ => None,
    }
}

/// Audits a calibration op refused by the access check, naming the caller when the session is
/// valid (callers without one are not recorded: they could grow the trail at network speed).
pub(super) async fn audit_refusal(api: &Api, ctx: &Ctx, op: &str, target: &str, e: &ApiError) {
    let Some(token) = ctx.token.as_deref() else {
        return;
    };
    let Ok(p) = api.auth().peek(token).await else {
        return;
    };
    let mut entry = p.audit_entry(op, Some(target), &format!("{}: {}", e.code, e.message));
    entry.source = ctx.source.to_string();
    if let Err(err) = api.auth().audit(entry).await {
        tracing::error!(error = %err, "cannot audit a refused calibration op");
    }
}
