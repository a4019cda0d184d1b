//! API tokens for machine clients against the real server: life cycle over HTTP and the
//! WebSocket (revocation closes an open socket with 4001), scope and park limits, the creator's
//! demotion, park loss and disabling shrinking the token, expiry, and the audit rows.

use std::sync::Arc;

use chrono::{Duration, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};
use stator::auth::api_tokens::TokenRequest;
use stator::auth::{Auth, Permission, Role, Source};

use crate::support::*;

/// Logs `name` in over the WebSocket; returns the open session socket.
async fn session_ws(env: &Env, name: &str, role: Role, parks: &[&str]) -> Ws {
    let t = env.login(name, role, parks).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&t), None).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    ws
}

/// `api_token_create` over `ws`; the reply.
async fn create(ws: &mut Ws, body: Value) -> Value {
    let mut req = json!({"id": "c", "op": "api_token_create", "password": PASSWORD});
    req.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    call(ws, req).await
}

fn parks_in(snapshot: &Value) -> Vec<String> {
    snapshot["plcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

async fn http_json(env: &Env, method: &str, path: &str, token: &str) -> (u16, Value) {
    let (st, _, body) = http_as(env, method, path, token, None).await;
    (st, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_life_cycle_over_http_and_ws_and_revocation_closes_4001() {
    let env = Env::start(json!({})).await;
    let mut admin = session_ws(&env, "sue", Role::Superuser, &[]).await;
    let r = create(
        &mut admin,
        json!({"name": "gateway", "scopes": ["live:read"]}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let res = &r["result"];
    let id = res["id"].as_i64().unwrap();
    let token = res["token"].as_str().unwrap().to_string();
    let prefix = format!("stator_{id}_");
    assert!(token.starts_with(&prefix), "{token}");
    assert!(
        token.len() - prefix.len() >= 22,
        "at least 128 bits of secret"
    );
    assert_eq!(res["scopes"], json!(["live:read"]));
    assert_eq!(res["parks"], json!(["alpha", "beta"]));
    let days = (res["expires_at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<Utc>>()
        .unwrap()
        - Utc::now())
    .num_days();
    assert!(
        (89..=90).contains(&days),
        "default lifetime 90 days, got {days}"
    );

    // HTTP: Bearer, exactly like a session token.
    let (st, snap) = http_json(&env, "GET", "/api/snapshot", &token).await;
    assert_eq!(st, 200, "{snap}");
    assert_eq!(parks_in(&snap), ["alpha", "beta"]);
    let (st, me) = http_json(&env, "GET", "/api/me", &token).await;
    assert_eq!((st, me["user"]["username"].clone()), (200, json!("sue")));

    // WebSocket: the bearer subprotocol.
    let (mut machine, proto) = ws_connect(&env, WsAuth::Protocol(&token), None)
        .await
        .unwrap();
    assert_eq!(proto.as_deref(), Some("bearer"));
    assert_eq!(
        parks_in(&next_of(&mut machine, "snapshot").await),
        ["alpha", "beta"]
    );

    // The list never carries the secret; the last use is recorded with its address.
    let l = call(&mut admin, json!({"id": "l", "op": "api_tokens"})).await;
    assert_eq!(l["ok"], true, "{l}");
    assert!(
        !l.to_string().contains(&token[prefix.len()..]),
        "secret listed: {l}"
    );
    let row = l["result"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(row["name"], "gateway");
    assert_eq!(row["created_by"], "sue");
    assert_eq!(row["revoked"], false);
    assert_eq!(row["last_used_from"], "127.0.0.1");
    assert!(row["last_used_at"].is_string(), "{row}");

    // Revocation closes the machine's open socket with 4001 at once, and HTTP refuses it.
    let r = call(
        &mut admin,
        json!({"id": "r", "op": "api_token_revoke", "token_id": id}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(close_code(&mut machine).await, 4001);
    let (st, e) = http_json(&env, "GET", "/api/snapshot", &token).await;
    assert_eq!((st, e["error"].clone()), (401, json!("unauthorized")));
    // The creator's own session is untouched.
    let p = call(&mut admin, json!({"id": "p", "op": "ping"})).await;
    assert_eq!(p["ok"], true);
    let r = call(
        &mut admin,
        json!({"id": "r2", "op": "api_token_revoke", "token_id": id}),
    )
    .await;
    assert_eq!(r["error"]["code"], "not_found");

    let created = rows_of(&env, "api_token_create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].result, "ok");
    assert!(created[0]
        .new_value
        .as_deref()
        .unwrap()
        .contains("scopes=live:read"));
    let revoked = rows_of(&env, "api_token_revoke").await;
    assert_eq!(
        revoked
            .iter()
            .map(|r| r.result.as_str())
            .collect::<Vec<_>>(),
        ["ok", "not_found"]
    );
    let audited = eventually(WAIT, || async {
        rows_of(&env, "api_token_use")
            .await
            .iter()
            .any(|r| r.result == "unauthorized" && r.actor.as_deref() == Some("sue (token 1)"))
    })
    .await;
    assert!(audited, "the refused use of a revoked token is audited");
}

#[tokio::test]
async fn scopes_parks_lifetime_and_password_are_checked_at_creation() {
    let env = Env::start(json!({})).await;
    let mut olga = session_ws(&env, "olga", Role::Operator, &["alpha"]).await;
    let r = create(&mut olga, json!({"name": "x", "scopes": ["live:read"]})).await;
    assert_eq!(
        r["error"]["code"], "forbidden",
        "operators may not manage tokens: {r}"
    );
    let mut ada = session_ws(&env, "ada", Role::Admin, &["alpha"]).await;
    let refused = [
        (json!({"name": "x", "scopes": ["live:write"]}), "invalid"),
        (json!({"name": "x", "scopes": []}), "invalid"),
        (json!({"name": "x", "scopes": ["write"]}), "forbidden"),
        (
            json!({"name": "x", "scopes": ["live:read", "alarms:ack"]}),
            "forbidden",
        ),
        (json!({"name": "x", "scopes": ["config:read"]}), "forbidden"),
        (
            json!({"name": "x", "scopes": ["live:read"], "parks": ["beta"]}),
            "forbidden",
        ),
        (
            json!({"name": "x", "scopes": ["live:read"], "expires_days": 366}),
            "invalid",
        ),
        (json!({"name": "", "scopes": ["live:read"]}), "invalid"),
    ];
    for (body, code) in &refused {
        let r = create(&mut ada, body.clone()).await;
        assert_eq!(r["error"]["code"], *code, "{body}: {r}");
    }
    let r = call(
        &mut ada,
        json!({"id": 9, "op": "api_token_create", "name": "x", "scopes": ["live:read"], "password": "wrong-password-1"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "invalid_credentials", "{r}");
    let rows = rows_of(&env, "api_token_create").await;
    assert_eq!(rows.len(), refused.len(), "every refusal audited: {rows:?}");
    assert!(rows.iter().all(|r| r.result != "ok"));
    // Nothing was created.
    let l = call(&mut ada, json!({"id": "l", "op": "api_tokens"})).await;
    assert_eq!(l["result"]["tokens"], json!([]), "{l}");
    let all = env.auth.list_api_tokens(&system()).await.unwrap();
    assert!(all.is_empty(), "{all:?}");
}

#[tokio::test]
async fn a_token_calls_only_what_its_scopes_allow_on_its_parks() {
    let env = Env::start(json!({})).await;
    env.user("ada", Role::Admin, &["alpha", "beta"]).await;
    let me = env
        .auth
        .login("ada", PASSWORD, Source::Remote("127.0.0.1".into()))
        .await
        .unwrap()
        .principal;
    let req = |scopes: &[&str], parks: Option<&[&str]>| TokenRequest {
        name: "t".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        parks: parks.map(|p| p.iter().map(|s| s.to_string()).collect()),
        expires_days: Some(1),
    };
    let audit = env
        .auth
        .create_api_token(
            &me,
            None,
            req(&["audit:read"], Some(&["beta"])),
            Some(PASSWORD),
        )
        .await
        .unwrap();
    // No live:read: the audit trail yes, the snapshot and the socket's live picture no.
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&audit.token), None)
        .await
        .unwrap();
    let s = next_of(&mut ws, "snapshot").await;
    assert!(
        parks_in(&s).is_empty(),
        "a token without live:read sees no values: {s}"
    );
    let a = call(&mut ws, json!({"id": 1, "op": "audit_page", "limit": 5})).await;
    assert_eq!(a["ok"], true, "{a}");
    let snap = call(&mut ws, json!({"id": 2, "op": "snapshot"})).await;
    assert_eq!(snap["error"]["code"], "forbidden", "{snap}");
    for op in ["api_tokens", "users_list", "logout"] {
        let r = call(&mut ws, json!({"id": op, "op": op})).await;
        assert_eq!(r["error"]["code"], "forbidden", "{op}: {r}");
    }
    let (st, _) = http_json(&env, "GET", "/api/snapshot", &audit.token).await;
    assert_eq!(st, 403);

    // live:read on beta only: alpha stays invisible, over HTTP and the socket.
    let live = env
        .auth
        .create_api_token(
            &me,
            None,
            req(&["live:read"], Some(&["beta"])),
            Some(PASSWORD),
        )
        .await
        .unwrap();
    let (st, snap) = http_json(&env, "GET", "/api/snapshot", &live.token).await;
    assert_eq!((st, parks_in(&snap)), (200, vec!["beta".to_string()]));
    let (st, w) = http_write(&env, &live.token, "beta", "P", json!(2.0)).await;
    assert_eq!((st, w["error"].clone()), (403, json!("forbidden")), "{w}");

    let refused = rows_of(&env, "api_token_use").await;
    assert!(
        refused.iter().any(|r| r.result == "forbidden"
            && r.actor.as_deref() == Some(&format!("ada (token {})", audit.info.id))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn demotion_park_loss_and_disabling_shrink_the_token() {
    let env = Env::start(json!({"remote": {"allow_remote_writes": true}})).await;
    env.user("olga", Role::Operator, &["alpha", "beta"]).await;
    let token = env
        .auth
        .create_api_token(
            &system(),
            Some("olga"),
            TokenRequest {
                name: "scada".into(),
                scopes: vec!["live:read".into(), "write".into()],
                parks: None,
                expires_days: None,
            },
            None,
        )
        .await
        .unwrap()
        .token;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&token), None)
        .await
        .unwrap();
    assert_eq!(
        parks_in(&next_of(&mut ws, "snapshot").await),
        ["alpha", "beta"]
    );

    // The creator loses beta: the open socket gets a snapshot without it.
    env.auth
        .revoke_park(&system(), "olga", "beta")
        .await
        .unwrap();
    assert_eq!(parks_in(&next_of(&mut ws, "snapshot").await), ["alpha"]);
    let (st, snap) = http_json(&env, "GET", "/api/snapshot", &token).await;
    assert_eq!((st, parks_in(&snap)), (200, vec!["alpha".to_string()]));

    // Writing is the operator's; as a viewer the token may no longer write.
    let (st, w) = http_write(&env, &token, "alpha", "P", json!(2.0)).await;
    assert_ne!(
        st, 403,
        "an operator's write token passes the access check: {w}"
    );
    env.auth
        .set_role(&system(), "olga", Role::Viewer)
        .await
        .unwrap();
    let (st, w) = http_write(&env, &token, "alpha", "P", json!(2.0)).await;
    assert_eq!((st, w["error"].clone()), (403, json!("forbidden")), "{w}");

    // Disabled creator: the token is dead, the socket closed with 4001.
    env.auth.set_active(&system(), "olga", false).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    let (st, _) = http_json(&env, "GET", "/api/snapshot", &token).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn expiry_is_enforced() {
    let env = Env::offline(json!({}));
    let now = Arc::new(Mutex::new(Utc::now()));
    let clock = now.clone();
    let auth = Auth::with_clock(
        env.auth.store().clone(),
        &env.cfg,
        Arc::new(move || *clock.lock()),
    );
    auth.add_user(&system(), "ann", PASSWORD, Role::Viewer, &["alpha".into()])
        .await
        .unwrap();
    let t = auth
        .create_api_token(
            &system(),
            Some("ann"),
            TokenRequest {
                name: "logger".into(),
                scopes: vec!["live:read".into()],
                parks: None,
                expires_days: Some(1),
            },
            None,
        )
        .await
        .unwrap();
    let use_it = || {
        auth.check_as(
            &t.token,
            Permission::ViewLive,
            None,
            None,
            "snapshot",
            stator::auth::TokenUse::Scope(stator::auth::Scope::LiveRead),
        )
    };
    let p = use_it().await.unwrap();
    assert_eq!(p.token.as_ref().map(|g| g.id), Some(t.info.id));
    // Plain `check` (no operation named) never admits a token.
    assert_refused(
        auth.check(&t.token, Permission::ViewLive, None).await,
        "forbidden",
    );
    *now.lock() += Duration::hours(25);
    assert_refused(use_it().await, "unauthorized");
    // Also when read fresh from the database.
    let fresh = Auth::with_clock(
        env.auth.store().clone(),
        &env.cfg,
        Arc::new(move || Utc::now() + Duration::hours(25)),
    );
    assert_refused(fresh.peek(&t.token).await, "unauthorized");
}

#[tokio::test]
async fn session_refresh_rotates_the_token_with_a_short_grace() {
    let env = Env::start(json!({})).await;
    let old = env.login("vic", Role::Viewer, &["alpha"]).await;
    let (st, _, body) = http_as(&env, "POST", "/api/session/refresh", &old, None).await;
    assert_eq!(st, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    let new = r["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(r["user"]["username"], "vic");
    let (st, _) = http_json(&env, "GET", "/api/me", new).await;
    assert_eq!(st, 200);
    // The old token still works within the grace, but no longer than it.
    let (st, me) = http_json(&env, "GET", "/api/me", &old).await;
    assert_eq!(st, 200);
    let idle_end = me["user"]["idle_expires_at"].as_str().unwrap();
    let end: chrono::DateTime<Utc> = idle_end.parse().unwrap();
    assert!(
        end <= Utc::now() + Duration::seconds(31),
        "old token ends within the grace: {me}"
    );
    let rows = rows_of(&env, "session_refresh").await;
    assert_eq!(rows.len(), 1);
    // API tokens are not refreshed.
    env.user("sue", Role::Superuser, &[]).await;
    let t = env
        .auth
        .create_api_token(
            &system(),
            Some("sue"),
            TokenRequest {
                name: "m".into(),
                scopes: vec!["live:read".into()],
                parks: None,
                expires_days: None,
            },
            None,
        )
        .await
        .unwrap();
    let (st, _) = http_json(&env, "POST", "/api/session/refresh", &t.token).await;
    assert_eq!(st, 403);
}

#[tokio::test]
async fn openapi_is_served_and_health_shows_park_states_to_who_may_see_them() {
    let env = Env::start(json!({})).await;
    let (st, _, doc) = http(env.addr, "GET", "/api/openapi.json", &[], None).await;
    assert_eq!(st, 200);
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/session/refresh"]["post"].is_object());
    let (st, _, page) = http(env.addr, "GET", "/api/docs", &[], None).await;
    assert_eq!(st, 200);
    assert!(page.contains("/api/docs.js"));

    let (st, _, h) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(st, 200);
    let h: Value = serde_json::from_str(&h).unwrap();
    assert_eq!(
        (h["parks_total"].clone(), h["parks_connected"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(h["parks"], json!([]), "no park names for anonymous callers");
    assert!(h["uptime_s"].is_u64() && h["version"].is_string());
    assert!(h["subsystems"].is_object());
    let alarms = h["subsystems"]["alarms"]["state"].as_str();
    assert!(matches!(alarms, Some("running" | "stopped")), "{h}");
    let history = if h["history"].is_null() {
        "off"
    } else {
        "running"
    };
    assert_eq!(h["subsystems"]["history"]["state"], history, "{h}");
    let t = env.login("vic", Role::Viewer, &["beta"]).await;
    let (_, h) = http_json(&env, "GET", "/health", &t).await;
    assert_eq!(h["parks"], json!([{"id": "beta", "status": "CONNECTED"}]));
}
