//! REST endpoints: translate HTTP ⇄ [`crate::api`] requests. Error bodies are
//! `{"error":<code>,"message":…}` (+ `retry_after_s` for `locked`/`rate_limited`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::server::AppState;
use super::setup_code::CodeError;
use crate::api::wire::{HistoryReply, HttpError};
use crate::api::{dispatch, ApiError, Ctx, Empty, Request};
use crate::auth::Source;

fn error_response(e: ApiError) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, Json(HttpError::from(&e))).into_response();
    if let Some(s) = e.retry_after_s {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn reply(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => (StatusCode::OK, Json(v)).into_response(),
        Err(e) => error_response(e),
    }
}

/// `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn ctx(headers: &HeaderMap, addr: SocketAddr) -> Ctx {
    Ctx::new(
        bearer(headers),
        Source::Remote(addr.ip().to_canonical().to_string()),
    )
}

/// Parses a JSON object body and adds `"op"`.
fn request_from_body(op: &str, body: &Bytes) -> Result<Request, ApiError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("body is not JSON: {e}")))?;
    let Value::Object(m) = &mut v else {
        return Err(ApiError::invalid("body must be a JSON object"));
    };
    m.insert("op".into(), op.into());
    Request::from_json(v)
}

/// `GET /health`: liveness without auth and without park data.
pub(super) async fn health(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let c = ctx(&headers, addr);
    reply(dispatch(&st.api, &c, Request::Health(Empty {})).await)
}

/// `GET /metrics`: Prometheus text exposition; only when `remote.metrics` is on (it names the
/// parks and counts logins, which an anonymous client should not learn).
pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    if !st.cfg.metrics {
        return error_response(ApiError::not_found("metrics are off (remote.metrics)"));
    }
    let body = st.api.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `POST /api/login {username,password}`.
pub(super) async fn login(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match request_from_body("login", &body) {
        Ok(r @ Request::Login(_)) => r,
        Ok(_) => return error_response(ApiError::invalid("expected {username,password}")),
        Err(e) => return error_response(e),
    };
    let c = Ctx::new(None, ctx(&headers, addr).source);
    reply(dispatch(&st.api, &c, req).await)
}

/// `POST /api/setup` `{username,password,setup_code}`: creates the first superuser while no
/// user exists, only from the machine itself (loopback), only as a same-origin JSON request
/// under an allowed Host, and only with the one-time code from the server's log; answers like
/// `/api/login`.
pub(super) async fn setup(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if let Err(r) = super::origin::check_setup(&headers, &uri, &st.hosts, &st.cfg.allowed_origins) {
        return refused(r);
    }
    let (req, code) = match setup_request(&body) {
        Ok(v) => v,
        Err(e) => return error_response(e),
    };
    let Some(setup) = st.setup.clone() else {
        return error_response(ApiError::forbidden(
            "users already exist; log in as an administrator",
        ));
    };
    match setup.check(code.as_deref()) {
        Ok(()) => {}
        Err(CodeError::Wrong) => {
            tracing::warn!(source = %addr.ip(), "first-superuser setup with a wrong setup code");
            return error_response(ApiError::forbidden(
                "wrong or missing setup code (printed in the server log at start)",
            ));
        }
        Err(CodeError::RateLimited(s)) => {
            return error_response(ApiError::rate_limited(
                "too many wrong setup codes; wait",
                s,
            ));
        }
    }
    let c = Ctx::new(None, ctx(&headers, addr).source);
    let r = dispatch(&st.api, &c, req).await;
    if r.is_ok() {
        setup.consume();
    }
    reply(r)
}

/// The first-superuser request and the `setup_code` (a transport field, not part of the op).
fn setup_request(body: &Bytes) -> Result<(Request, Option<String>), ApiError> {
    let mut v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("body is not JSON: {e}")))?;
    let Value::Object(m) = &mut v else {
        return Err(ApiError::invalid("body must be a JSON object"));
    };
    let code = match m.remove("setup_code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 64 => Some(s),
        Some(_) => return Err(ApiError::invalid("setup_code must be a short string")),
    };
    m.insert("op".into(), "first_superuser".into());
    match Request::from_json(v)? {
        r @ Request::FirstSuperuser(_) => Ok((r, code)),
        _ => Err(ApiError::invalid("expected {username,password,setup_code}")),
    }
}

/// A request refused by the Host/Origin/content checks, in the usual error body.
fn refused(r: super::origin::Refused) -> Response {
    let body = HttpError {
        error: r.code,
        message: &r.message,
        retry_after_s: None,
    };
    (r.status, Json(body)).into_response()
}

/// `POST /api/logout` (Bearer) → 204.
pub(super) async fn logout(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match dispatch(&st.api, &ctx(&headers, addr), Request::Logout(Empty {})).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(e),
    }
}

/// `POST /api/session/refresh` (Bearer): a new token, answered like `/api/login`; the old one
/// ends after a short grace.
pub(super) async fn refresh(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let req = Request::SessionRefresh(Empty {});
    reply(dispatch(&st.api, &ctx(&headers, addr), req).await)
}

/// `GET /api/me` (Bearer).
pub(super) async fn me(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    reply(dispatch(&st.api, &ctx(&headers, addr), Request::Me(Empty {})).await)
}

/// `GET /api/snapshot` (Bearer): the WebSocket snapshot body.
pub(super) async fn snapshot(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    reply(dispatch(&st.api, &ctx(&headers, addr), Request::Snapshot(Empty {})).await)
}

/// `POST /api/write {plc,node,value}` (Bearer).
pub(super) async fn write(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx(&headers, addr);
    let req = match request_from_body("write", &body) {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    reply(dispatch(&st.api, &c, req).await)
}

/// A GET request built from query parameters: `op` plus each parameter (renamed by `rename`),
/// numbers for `limit` and `before_id` (text that is not a number stays text, so the request
/// parser answers `invalid`).
fn request_from_query(
    op: &str,
    q: HashMap<String, String>,
    rename: &[(&str, &str)],
) -> Result<Request, ApiError> {
    let mut m = serde_json::Map::new();
    for (k, v) in q {
        let k = rename
            .iter()
            .find(|(from, _)| *from == k)
            .map_or(k.clone(), |(_, to)| to.to_string());
        let v = match k.as_str() {
            "limit" | "before_id" => v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(v)),
            _ => Value::String(v),
        };
        m.insert(k, v);
    }
    m.insert("op".into(), op.into());
    Request::from_json(Value::Object(m))
}

/// `GET /api/alarms` (Bearer): the alarm list of the caller's parks.
pub(super) async fn alarms(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    reply(dispatch(&st.api, &ctx(&headers, addr), Request::Alarms(Empty {})).await)
}

/// `POST /api/alarms/ack {ids, comment?}` (Bearer).
pub(super) async fn alarm_ack(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let c = ctx(&headers, addr);
    match request_from_body("alarm_ack", &body) {
        Ok(req) => reply(dispatch(&st.api, &c, req).await),
        Err(e) => error_response(e),
    }
}

/// `GET /api/alarms/journal?from=&to=&park=&priority=&alarm=&limit=&before_id=` (Bearer).
pub(super) async fn alarm_journal(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = ctx(&headers, addr);
    match request_from_query("alarm_journal", q, &[]) {
        Ok(req) => reply(dispatch(&st.api, &c, req).await),
        Err(e) => error_response(e),
    }
}

/// `GET /api/incidents?start_date=&end_date=&type=&limit=` (Bearer): the parameter names the
/// plants' existing tools use (`park` too).
pub(super) async fn incidents(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = ctx(&headers, addr);
    let rename = [("start_date", "from"), ("end_date", "to")];
    match request_from_query("incidents", q, &rename) {
        Ok(req) => reply(dispatch(&st.api, &c, req).await),
        Err(e) => error_response(e),
    }
}

/// Rows one CSV export holds at most (newest first, like the journal page).
const JOURNAL_CSV_ROWS: i64 = 10_000;

/// `GET /api/alarms/journal.csv?…` (Bearer): the journal as RFC 4180 CSV (CRLF line ends,
/// quoted cells, spreadsheet formulas neutralised), same filters as `/api/alarms/journal`,
/// up to 10,000 rows unless `limit` says fewer.
pub(super) async fn alarm_journal_csv(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(mut q): Query<HashMap<String, String>>,
) -> Response {
    use crate::store::audit::csv_field;
    let c = ctx(&headers, addr);
    q.entry("limit".into())
        .or_insert_with(|| JOURNAL_CSV_ROWS.to_string());
    let req = match request_from_query("alarm_journal", q, &[]) {
        Ok(Request::AlarmJournal(r)) => r,
        Ok(_) => return error_response(ApiError::internal("not a journal request")),
        Err(e) => return error_response(e),
    };
    let rows = match crate::api::alarm_journal_export(&st.api, &c, req).await {
        Ok(r) => r,
        Err(e) => return error_response(e),
    };
    let mut out = String::from(crate::api::wire::alarms::JOURNAL_CSV_HEADER);
    out.push_str("\r\n");
    let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
    for r in rows {
        let value = if r.value.is_null() {
            String::new()
        } else {
            r.value.to_string()
        };
        let cells = [
            r.id.to_string(),
            csv_field(&r.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            csv_field(&r.alarm),
            csv_field(&r.park),
            csv_field(&r.priority),
            csv_field(&r.event),
            csv_field(&r.state),
            csv_field(&value),
            o(&r.actor),
            o(&r.comment),
            r.during_service.to_string(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "text/csv; charset=utf-8; header=present",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"alarm-journal.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

/// The `history` request of a query string: `tags` comma-separated or repeated, `from`, `to`,
/// `max_points`; other parameters (`width`, `height`) are returned apart.
fn history_request(
    q: &[(String, String)],
    default_points: Option<u64>,
) -> Result<(crate::api::HistoryReq, Option<u32>, Option<u32>), ApiError> {
    let mut r = crate::api::HistoryReq {
        tags: Vec::new(),
        from: None,
        to: None,
        max_points: default_points,
    };
    let (mut w, mut h) = (None, None);
    let int = |k: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("{k} must be a whole number")))
    };
    for (k, v) in q {
        match k.as_str() {
            "tags" => r
                .tags
                .extend(v.split(',').filter(|s| !s.is_empty()).map(String::from)),
            "from" => r.from = Some(v.clone()),
            "to" => r.to = Some(v.clone()),
            "max_points" => r.max_points = Some(int(k, v)?),
            "width" => w = Some(int(k, v)?.min(u64::from(u32::MAX)) as u32),
            "height" => h = Some(int(k, v)?.min(u64::from(u32::MAX)) as u32),
            _ => return Err(ApiError::invalid(format!("unknown parameter {k:?}"))),
        }
        if r.tags.len() > crate::history::MAX_TAGS {
            return Err(ApiError::invalid("too many tags"));
        }
    }
    Ok((r, w, h))
}

/// `GET /api/history?tags=&from=&to=&max_points=` (Bearer): the `history` reply.
pub(super) async fn history(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let req = match history_request(&q, None) {
        Ok((r, None, None)) => r,
        Ok(_) => return error_response(ApiError::invalid("width/height are for trend images")),
        Err(e) => return error_response(e),
    };
    reply(dispatch(&st.api, &ctx(&headers, addr), Request::History(req)).await)
}

/// Runs `history` for a derived format; the reply and the range it covers.
async fn history_for(
    st: &AppState,
    c: &Ctx,
    req: crate::api::HistoryReq,
) -> Result<(HistoryReply, crate::api::history::Plan), ApiError> {
    let (from, to) = (req.from.clone(), req.to.clone());
    let v = dispatch(&st.api, c, Request::History(req.clone())).await?;
    let r: HistoryReply =
        serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
    // The bounds as the op read them (same parser, same `now` to the millisecond is not
    // needed: they only place the axis).
    let now = chrono::Utc::now();
    let b = |s: Option<String>, d: &str, end: bool| {
        crate::store::bound::parse_time(s.as_deref().unwrap_or(d), end, now)
            .map_err(ApiError::invalid)
    };
    let plan = crate::api::history::Plan {
        tags: req.tags,
        from: b(from, "-1h", false)?,
        to: b(to, "now", true)?,
        max_points: 0,
    };
    Ok((r, plan))
}

/// `GET /api/history.csv?…` (Bearer): RFC 4180, ISO 8601 UTC, one column per tag. Raw samples
/// up to 10,000 per tag (`max_points`), else the last value of each bucket.
pub(super) async fn history_csv(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let req = match history_request(&q, Some(crate::history::MAX_POINTS as u64)) {
        Ok((r, None, None)) => r,
        Ok(_) => return error_response(ApiError::invalid("width/height are for trend images")),
        Err(e) => return error_response(e),
    };
    match history_for(&st, &ctx(&headers, addr), req).await {
        Ok((r, _)) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/csv; charset=utf-8; header=present",
                ),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"history.csv\"",
                ),
            ],
            crate::api::history::csv(&r),
        )
            .into_response(),
        Err(e) => error_response(e),
    }
}

async fn trend(
    st: AppState,
    c: Ctx,
    q: Vec<(String, String)>,
    format: crate::api::history::ChartFormat,
) -> Response {
    let (mut req, w, h) = match history_request(&q, None) {
        Ok(v) => v,
        Err(e) => return error_response(e),
    };
    let size = (w.unwrap_or(1280), h.unwrap_or(400));
    // One bucket per pixel column unless the caller asks otherwise.
    if req.max_points.is_none() {
        req.max_points = Some(u64::from(size.0).clamp(1, crate::history::MAX_POINTS as u64));
    }
    let (r, plan) = match history_for(&st, &c, req).await {
        Ok(v) => v,
        Err(e) => return error_response(e),
    };
    let drawn =
        tokio::task::spawn_blocking(move || crate::api::history::chart(&r, &plan, size, format))
            .await
            .unwrap_or_else(|e| Err(ApiError::internal(e.to_string())));
    let ty = match format {
        crate::api::history::ChartFormat::Svg => "image/svg+xml",
        crate::api::history::ChartFormat::Png => "image/png",
    };
    match drawn {
        Ok(bytes) => ([(header::CONTENT_TYPE, ty)], bytes).into_response(),
        Err(e) => error_response(e),
    }
}

/// `GET /api/trend.svg?tags=&from=&to=&width=&height=` (Bearer).
pub(super) async fn trend_svg(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let c = ctx(&headers, addr);
    trend(st, c, q, crate::api::history::ChartFormat::Svg).await
}

/// `GET /api/trend.png?tags=&from=&to=&width=&height=` (Bearer).
pub(super) async fn trend_png(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let c = ctx(&headers, addr);
    trend(st, c, q, crate::api::history::ChartFormat::Png).await
}

/// `GET /api/calibration/records?calibration=&from=&to=` (Bearer): `calibration_records`.
pub(super) async fn calibration_records(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<crate::api::CalibrationRecordsReq>,
) -> Response {
    reply(
        dispatch(
            &st.api,
            &ctx(&headers, addr),
            Request::CalibrationRecords(q),
        )
        .await,
    )
}

/// `GET /api/calibration/records/{n}.html` (Bearer): the printable certificate of record `n`.
pub(super) async fn calibration_certificate(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let Some(n) = file
        .strip_suffix(".html")
        .and_then(|n| n.parse::<i64>().ok())
    else {
        return error_response(ApiError::not_found("use /api/calibration/records/<n>.html"));
    };
    let req = Request::CalibrationRecords(Default::default());
    let all = match dispatch(&st.api, &ctx(&headers, addr), req).await {
        Ok(v) => v,
        Err(e) => return error_response(e),
    };
    let found = all["records"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["n"] == n));
    match found {
        Some(r) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::api::certificate_html(r),
        )
            .into_response(),
        None => error_response(ApiError::not_found(format!("no calibration record {n}"))),
    }
}

/// `GET /api/messages/export?channel=park:<id>|users=<a>,<b>&from=&to=` (Bearer, ExportMessages):
/// the conversation or channel in the range as `text/csv` (the `messages_export` op's CSV).
pub(super) async fn messages_export(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let req = query
        .map_err(|e| ApiError::invalid(format!("bad query: {e}")))
        .and_then(|Query(q)| request_from_query("messages_export", q, &[]));
    let r = match req {
        Ok(req) => dispatch(&st.api, &ctx(&headers, addr), req).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(v) => {
            let csv = v["csv"].as_str().unwrap_or_default().to_string();
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"messages.csv\"",
                    ),
                ],
                csv,
            )
                .into_response()
        }
        Err(e) => error_response(e),
    }
}
