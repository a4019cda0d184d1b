//! Writes through the dispatcher and the transports: every permission/policy refusal, the
//! remote switch, rate limiting, PLC down, and one audit row per attempt. (The happy path with
//! read-back against the simulator is in remote_write_sim.rs.)

use crate::support::*;
use serde_json::{json, Value};
use stator::api::{dispatch, Ctx, Request, WriteReq};
use stator::auth::{Role, Source};
use stator::live::PlcStatus;
use stator::store::AuditFilter;

async fn write_rows(env: &Env) -> Vec<stator::store::AuditRow> {
    let mut rows = env
        .auth
        .audit_page(
            &system(),
            AuditFilter {
                action: Some("write".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rows.reverse();
    rows
}

async fn http_write(env: &Env, token: &str, plc: &str, node: &str, value: Value) -> (u16, Value) {
    let b = json!({"plc": plc, "node": node, "value": value}).to_string();
    let auth = format!("Bearer {token}");
    let (st, _, body) = http(
        env.addr,
        "POST",
        "/api/write",
        &[("Authorization", &auth)],
        Some(&b),
    )
    .await;
    (st, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn role_and_park_refusals_are_forbidden_and_audited() {
    let env = Env::start(json!({"remote": {"allow_remote_writes": true}})).await;
    let viewer = env.login("vic", Role::Viewer, &["alpha"]).await;
    let op = env.login("olga", Role::Operator, &["alpha"]).await;
    let (st, v) = http_write(&env, &viewer, "alpha", "P", json!(2.0)).await;
    assert_eq!((st, v["error"].clone()), (403, json!("forbidden")));
    let (st, v) = http_write(&env, &op, "beta", "P", json!(2.0)).await;
    assert_eq!((st, v["error"].clone()), (403, json!("forbidden")), "{v}");
    let (st, v) = http_write(&env, "bogus-token", "alpha", "P", json!(2.0)).await;
    assert_eq!((st, v["error"].clone()), (401, json!("unauthorized")));
    let rows = write_rows(&env).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows
        .iter()
        .any(|r| r.actor.is_none() && r.result.starts_with("unauthorized")));
    let vic = rows
        .iter()
        .find(|r| r.actor.as_deref() == Some("vic"))
        .unwrap();
    assert_eq!(vic.role.as_deref(), Some("viewer"));
    assert_eq!(vic.source, "127.0.0.1");
    assert_eq!(vic.target.as_deref(), Some("alpha/P"));
    assert_eq!(vic.old_value.as_deref(), Some("1.0"));
    assert_eq!(vic.new_value.as_deref(), Some("2.0"));
    assert!(vic.result.starts_with("forbidden"), "{}", vic.result);
    let olga = rows
        .iter()
        .find(|r| r.actor.as_deref() == Some("olga"))
        .unwrap();
    assert_eq!(olga.target.as_deref(), Some("beta/P"));
    assert!(olga.result.starts_with("forbidden"));
}

#[tokio::test]
async fn the_remote_switch_refuses_remote_writes_but_not_the_panel() {
    let env = Env::start(json!({})).await;
    let op = env.login("olga", Role::Operator, &["alpha"]).await;
    let (st, v) = http_write(&env, &op, "alpha", "P", json!(2.0)).await;
    assert_eq!(st, 403);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("allow_remote_writes"),
        "{v}"
    );
    // Over the WebSocket too.
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&op), None).await.unwrap();
    let r = call(
        &mut ws,
        json!({"id": 1, "op": "write", "plc": "alpha", "node": "P", "value": 3.0}),
    )
    .await;
    assert_eq!(r["error"]["code"], "forbidden");
    // The panel is not affected by the switch: it gets past it (here to "no engine").
    let panel = env
        .auth
        .login("olga", PASSWORD, Source::Panel)
        .await
        .unwrap()
        .token;
    let req = Request::Write(WriteReq {
        plc: "alpha".into(),
        node: "P".into(),
        value: json!(4.0),
    });
    let e = dispatch(&env.api, &Ctx::new(Some(panel), Source::Panel), req)
        .await
        .unwrap_err();
    assert_eq!(e.code, "not_connected", "{e}");
    let rows = write_rows(&env).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].source, "panel");
}

#[tokio::test]
async fn policy_refusals_read_only_config_and_allowlist() {
    let env = Env::start(json!({
        "remote": {"allow_remote_writes": true},
        "plc_config": [
            {"id": "alpha", "url": "opc.tcp://127.0.0.1:48401", "name": "Alpha"},
            {"id": "beta", "url": "opc.tcp://127.0.0.1:48402", "name": "Beta", "write_policy": "allowlist"}
        ],
        "tags": {"alpha/P": {"writable": false}}
    }))
    .await;
    let op = env.login("olga", Role::Operator, &["alpha", "beta"]).await;
    for (plc, node, needle) in [
        ("alpha", "Label", "does not allow"),
        ("alpha", "P", "writable: false"),
        ("beta", "P", "allowlist"),
    ] {
        let (st, v) = http_write(&env, &op, plc, node, json!(1.0)).await;
        assert_eq!(st, 403, "{plc}/{node}: {v}");
        assert!(v["message"].as_str().unwrap().contains(needle), "{v}");
    }
    let (st, v) = http_write(&env, &op, "alpha", "Nope", json!(1.0)).await;
    assert_eq!((st, v["error"].clone()), (404, json!("not_found")));
    let (st, v) = http_write(&env, &op, "nowhere", "P", json!(1.0)).await;
    assert_eq!(st, 403, "unknown park is refused by auth: {v}");
    assert_eq!(write_rows(&env).await.len(), 5);
}

#[tokio::test]
async fn a_write_while_the_plc_is_down_is_not_connected() {
    let env = Env::start(json!({"remote": {"allow_remote_writes": true}})).await;
    let op = env.login("olga", Role::Operator, &["alpha"]).await;
    env.cache
        .set_status("alpha", PlcStatus::Error, Some("connection lost".into()));
    let (st, v) = http_write(&env, &op, "alpha", "P", json!(1.0)).await;
    assert_eq!(
        (st, v["error"].clone()),
        (503, json!("not_connected")),
        "{v}"
    );
    let rows = write_rows(&env).await;
    assert!(rows[0].result.starts_with("not_connected"));
}

#[tokio::test]
async fn per_user_write_rate_limit() {
    let env = Env::start(json!({
        "remote": {"allow_remote_writes": true},
        "auth": {"write_rate_per_second": 2.0}
    }))
    .await;
    let op = env.login("olga", Role::Operator, &["alpha"]).await;
    let other = env.login("otto", Role::Operator, &["alpha"]).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (_, v) = http_write(&env, &op, "alpha", "Nope", json!(1)).await;
        codes.push(v["error"].as_str().unwrap().to_string());
    }
    assert_eq!(&codes[..2], ["not_found", "not_found"]);
    assert!(codes[2..].iter().all(|c| c == "rate_limited"), "{codes:?}");
    // Another user has their own budget.
    let (_, v) = http_write(&env, &other, "alpha", "Nope", json!(1)).await;
    assert_eq!(v["error"], "not_found");
    assert_eq!(write_rows(&env).await.len(), 6);
}
