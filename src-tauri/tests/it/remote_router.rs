//! The routes driven in memory with `tower::ServiceExt::oneshot`, without a socket: the same
//! handlers, limits and headers as the bound server, at the cost of a function call.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use stator::auth::Role;
use tower::ServiceExt;

use crate::support::*;

/// The router over `env`'s api; handlers see the peer as 127.0.0.1.
async fn app(env: &Env) -> axum::Router {
    stator::remote::router(env.api.clone(), server_config(&env.cfg, |_| {}))
        .await
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
}

/// One request through the router: (status, headers, JSON body).
async fn call(env: &Env, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let resp = app(env).await.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[tokio::test]
async fn health_answers_in_memory_with_the_security_headers() {
    let env = Env::offline(json!({}));
    let req = Request::get("/health").body(Body::empty()).unwrap();
    let (st, h, v) = call(&env, req).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert!(!v.to_string().contains("alpha"), "{v}");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn a_viewer_write_is_refused_in_memory_and_audited() {
    let env = Env::offline(json!({"remote": {"allow_remote_writes": true}}));
    let viewer = env.login("vic", Role::Viewer, &["alpha"]).await;
    let req = Request::post("/api/write")
        .header(header::AUTHORIZATION, bearer(&viewer))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"plc": "alpha", "node": "P", "value": 2.0}).to_string(),
        ))
        .unwrap();
    let (st, _, v) = call(&env, req).await;
    assert_eq!(
        (st, v["error"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let rows = rows_of(&env, "write").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].source, "127.0.0.1");
    assert_eq!(env.cache.value("alpha", "P").unwrap().value, json!(1.0));
}
