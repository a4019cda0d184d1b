//! The HTTP endpoints against the real server (real SQLite auth).

use crate::support::*;
use serde_json::{json, Value};
use stator::auth::Role;

fn body(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}"))
}

#[tokio::test]
async fn health_is_open_and_carries_no_park_data() {
    let env = Env::start(json!({})).await;
    let (st, h, b) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(st, 200);
    let v = body(&b);
    assert_eq!(v["status"], "ok");
    assert!(!b.contains("alpha") && !b.contains("beta"), "{b}");
    assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn login_me_snapshot_logout() {
    let env = Env::start(json!({})).await;
    env.user("ann", Role::Operator, &["beta"]).await;
    let login = json!({"username": "ann", "password": PASSWORD}).to_string();
    let (st, h, b) = http(env.addr, "POST", "/api/login", &[], Some(&login)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(header(&h, "cache-control"), Some("no-store"));
    let v = body(&b);
    let token = v["token"].as_str().unwrap().to_string();
    assert!(v["expires_at"].is_string());
    assert_eq!(
        v["user"],
        json!({"username": "ann", "role": "operator", "parks": ["beta"]})
    );
    let (st, _, b) = http_as(&env, "GET", "/api/me", &token, None).await;
    assert_eq!(st, 200);
    assert_eq!(body(&b)["user"]["username"], "ann");
    let (st, _, b) = http_as(&env, "GET", "/api/snapshot", &token, None).await;
    assert_eq!(st, 200);
    let s = body(&b);
    assert_eq!(s["type"], "snapshot");
    assert_eq!(s["plcs"].as_array().unwrap().len(), 1);
    assert_eq!(s["plcs"][0]["id"], "beta");
    let (st, _, _) = http_as(&env, "POST", "/api/logout", &token, None).await;
    assert_eq!(st, 204);
    let (st, _, b) = http_as(&env, "GET", "/api/me", &token, None).await;
    assert_eq!(st, 401);
    assert_eq!(body(&b)["error"], "unauthorized");
    let (st, _, _) = http(env.addr, "GET", "/api/snapshot", &[], None).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn wrong_password_401_and_a_locked_account_answers_the_same() {
    let env = Env::start(json!({})).await;
    env.user("ann", Role::Viewer, &["alpha"]).await;
    let bad = json!({"username": "ann", "password": "wrong-password"}).to_string();
    for _ in 0..3 {
        let (st, _, b) = http(env.addr, "POST", "/api/login", &[], Some(&bad)).await;
        assert_eq!(st, 401);
        assert_eq!(body(&b)["error"], "invalid_credentials");
    }
    // Locked now: a remote caller is told exactly what a wrong password gets (no enumeration);
    // only the panel learns that the account is locked.
    let good = json!({"username": "ann", "password": PASSWORD}).to_string();
    let (st, h, b) = http(env.addr, "POST", "/api/login", &[], Some(&good)).await;
    assert_eq!(st, 401, "{b}");
    let v = body(&b);
    assert_eq!(v["error"], "invalid_credentials");
    assert_eq!(v["message"], "invalid username or password");
    assert!(v.get("retry_after_s").is_none());
    assert!(header(&h, "retry-after").is_none());
}

#[tokio::test]
async fn too_many_failures_from_one_address_429() {
    let env = Env::start(json!({"auth": {"source_failures_per_minute": 3}})).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let bad =
            json!({"username": format!("nobody{i}"), "password": "wrong-password"}).to_string();
        statuses.push(
            http(env.addr, "POST", "/api/login", &[], Some(&bad))
                .await
                .0,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn malformed_bodies_are_invalid() {
    let env = Env::start(json!({})).await;
    let (st, _, b) = http(env.addr, "POST", "/api/login", &[], Some("{nope")).await;
    assert_eq!(st, 400);
    assert_eq!(body(&b)["error"], "invalid");
    let (st, _, _) = http(
        env.addr,
        "POST",
        "/api/login",
        &[],
        Some("{\"username\":1}"),
    )
    .await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn metrics_expose_clients_logins_and_plc_states() {
    let env = Env::start(json!({"remote": {"metrics": true}})).await;
    env.user("ann", Role::Viewer, &["alpha"]).await;
    let good = json!({"username": "ann", "password": PASSWORD}).to_string();
    let bad = json!({"username": "ann", "password": "wrong-password"}).to_string();
    http(env.addr, "POST", "/api/login", &[], Some(&good)).await;
    http(env.addr, "POST", "/api/login", &[], Some(&bad)).await;
    let (st, h, m) = http(env.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(st, 200);
    assert!(header(&h, "content-type").unwrap().contains("text"));
    for needle in [
        "stator_remote_clients 0",
        "stator_remote_messages_out_total",
        "stator_value_changes_total",
        "stator_logins_total{result=\"ok\"} 1",
        "stator_logins_total{result=\"invalid_credentials\"} 1",
        "stator_plc_status{plc=\"alpha\",status=\"CONNECTED\"} 1",
        "stator_plc_status{plc=\"beta\",status=\"DISCONNECTED\"} 0",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
}

#[tokio::test]
async fn the_page_has_a_strict_csp_and_no_inline_script() {
    let env = Env::start(json!({})).await;
    let (st, h, b) = http(env.addr, "GET", "/", &[], None).await;
    assert_eq!(st, 200);
    assert!(header(&h, "content-type").unwrap().starts_with("text/html"));
    let csp = header(&h, "content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"));
    assert!(csp.contains("connect-src 'self';"), "{csp}");
    assert!(
        !csp.contains("ws:") && !csp.contains("wss:"),
        "any-host sockets: {csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&h, "x-frame-options"), Some("DENY"));
    // Whatever page is served (bundle or built-in) has no inline script.
    let lower = b.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        assert!(rest[i..tag_end].contains("src="), "inline script in {b}");
        rest = &rest[tag_end..];
    }
    let (st, _, _) = http(env.addr, "GET", "/no/such/file.js", &[], None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn first_superuser_from_a_browser_on_the_machine_itself() {
    let env = Env::start(json!({})).await;
    let (_, _, b) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(body(&b)["needs_setup"], true);
    // Policy still applies.
    let code = env.server.as_ref().unwrap().setup_code().unwrap();
    let weak = json!({"username": "chief", "password": "short", "setup_code": code}).to_string();
    let (st, _, b) = http(env.addr, "POST", "/api/setup", &[], Some(&weak)).await;
    assert_eq!(st, 400, "{b}");
    let req = json!({"username": "chief", "password": PASSWORD, "setup_code": code}).to_string();
    let (st, _, b) = http(env.addr, "POST", "/api/setup", &[], Some(&req)).await;
    assert_eq!(st, 200, "{b}");
    let v = body(&b);
    assert_eq!(v["user"]["role"], "superuser");
    assert!(v["token"].is_string());
    let (_, _, b) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(body(&b)["needs_setup"], false);
    // Only while no user exists.
    assert_eq!(
        env.server.as_ref().unwrap().setup_code(),
        None,
        "the code is spent"
    );
    let again = json!({"username": "chief2", "password": PASSWORD, "setup_code": code}).to_string();
    let (st, _, b) = http(env.addr, "POST", "/api/setup", &[], Some(&again)).await;
    assert_eq!(st, 403, "{b}");
}

/// `POST /api/setup` as a web page in a browser on the panel machine would send it.
async fn setup_as(env: &Env, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let (st, _, b) = http(env.addr, "POST", "/api/setup", headers, Some(body)).await;
    (st, serde_json::from_str(&b).unwrap_or(Value::Null))
}

/// A raw request with full control over Host and Content-Type (the `http` helper sets both).
async fn raw(env: &Env, head: &str, body: &str) -> u16 {
    let req = format!(
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let resp = exchange(env.addr, &req).await.expect("the server answered");
    status_of(&resp).unwrap()
}

#[tokio::test]
async fn setup_refuses_other_sites_other_hosts_non_json_and_a_wrong_code() {
    let env = Env::start(json!({})).await;
    let code = env.server.as_ref().unwrap().setup_code().unwrap();
    let ok = json!({"username": "chief", "password": PASSWORD, "setup_code": code}).to_string();
    // A cross-site form/fetch with text/plain (no CORS preflight).
    let plain = format!(
        "POST /api/setup HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\n",
        env.addr
    );
    assert_eq!(raw(&env, &plain, &ok).await, 415);
    // DNS rebinding: the page's own name now points at 127.0.0.1; Origin equals Host.
    let rebound = "POST /api/setup HTTP/1.1\r\nHost: evil.example:8765\r\nOrigin: http://evil.example:8765\r\nContent-Type: application/json\r\n";
    assert_eq!(raw(&env, rebound, &ok).await, 403);
    let (st, v) = setup_as(&env, &[("Origin", "http://evil.example")], &ok).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")));
    let (st, _) = setup_as(&env, &[("Sec-Fetch-Site", "cross-site")], &ok).await;
    assert_eq!(st, 403);
    // No code, a wrong code: forbidden, and guessing is rate-limited.
    let none = json!({"username": "chief", "password": PASSWORD}).to_string();
    let (st, v) = setup_as(&env, &[], &none).await;
    assert_eq!((st, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    let wrong = json!({"username": "chief", "password": PASSWORD, "setup_code": "0000-0000-0000"})
        .to_string();
    let mut last = (0, Value::Null);
    for _ in 0..5 {
        last = setup_as(&env, &[], &wrong).await;
    }
    assert_eq!(last.0, 429, "{}", last.1);
    assert!(last.1["retry_after_s"].as_u64().unwrap() >= 1);
    let (_, _, b) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(body(&b)["needs_setup"], true, "nothing was created");
}

#[tokio::test]
async fn setup_works_from_the_own_origin_with_the_code() {
    let env = Env::start(json!({})).await;
    let code = env.server.as_ref().unwrap().setup_code().unwrap();
    let own = format!("http://{}", env.addr);
    let ok = json!({"username": "chief", "password": PASSWORD, "setup_code": code.to_lowercase()})
        .to_string();
    let (st, v) = setup_as(
        &env,
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
        &ok,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user"]["role"], "superuser");
}

#[tokio::test]
async fn metrics_are_off_unless_configured() {
    let env = Env::start(json!({})).await;
    env.user("ann", Role::Viewer, &["alpha"]).await;
    let (st, _, b) = http(env.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(st, 404, "{b}");
    assert!(!b.contains("alpha") && !b.contains("stator_logins"), "{b}");
}
