//! REST endpoints: translate HTTP ⇄ [`crate::api`] requests. Error bodies are
//! `{"error":<code>,"message":…}` (+ `retry_after_s` for `locked`/`rate_limited`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::server::AppState;
use super::setup_code::CodeError;
use crate::api::wire::HttpError;
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
    let body = st.api.metrics().render(st.api.cache());
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
