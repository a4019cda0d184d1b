//! Writes through the dispatcher and the transports: every permission/policy refusal, the
//! remote switch, rate limiting, PLC down, and one audit row per attempt. (The happy path with
//! read-back against the simulator is in remote_write_sim.rs.)

use crate::support::*;
use serde_json::{json, Value};
use stator::api::{
    dispatch, Ctx, Request, WriteReq, ACTION_REFUSED_ANONYMOUS, MAX_NAME_BYTES,
    MAX_VALUE_JSON_BYTES,
};
use stator::auth::{Role, Source};
use stator::live::PlcStatus;
use stator::store::AuditFilter;

async fn write_rows(env: &Env) -> Vec<stator::store::AuditRow> {
    rows_of(env, "write").await
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
    // The refusal without a valid session is counted per source instead of one row each.
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.actor.is_some()), "{rows:?}");
    env.api.flush_refused_writes().await;
    let anon = rows_of(&env, ACTION_REFUSED_ANONYMOUS).await;
    assert_eq!(anon.len(), 1, "{anon:?}");
    assert_eq!(anon[0].actor, None);
    assert_eq!(anon[0].source, "127.0.0.1");
    let details: Value = serde_json::from_str(anon[0].new_value.as_deref().unwrap()).unwrap();
    assert_eq!(details["count"], 1, "{details}");
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

/// Every audit row, oldest first, and their stored size in bytes (all text columns).
async fn all_rows(env: &Env) -> (Vec<stator::store::AuditRow>, usize) {
    let mut rows = env
        .auth
        .audit_page(
            &system(),
            AuditFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rows.reverse();
    let bytes = rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap().len())
        .sum();
    (rows, bytes)
}

#[tokio::test]
async fn oversized_fields_are_invalid_before_anything_else() {
    let env = Env::start(json!({"remote": {"allow_remote_writes": true}})).await;
    let op = env.login("olga", Role::Operator, &["alpha"]).await;
    let long = "N".repeat(MAX_NAME_BYTES + 1);
    let at_limit = "N".repeat(MAX_NAME_BYTES);
    for (plc, node, value) in [
        (long.as_str(), "P", json!(1.0)),
        ("alpha", long.as_str(), json!(1.0)),
        ("alpha", "P", json!("x".repeat(MAX_VALUE_JSON_BYTES))),
    ] {
        let (st, v) = http_write(&env, &op, plc, node, value).await;
        assert_eq!((st, v["error"].clone()), (400, json!("invalid")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("at most"), "{v}");
    }
    // At the limit the request goes on to the ordinary checks (here: no such node).
    let (st, v) = http_write(&env, &op, "alpha", &at_limit, json!(1.0)).await;
    assert_eq!((st, v["error"].clone()), (404, json!("not_found")), "{v}");
    assert_eq!(
        write_rows(&env).await.len(),
        1,
        "only the in-bounds attempt has its own row"
    );
    env.api.flush_refused_writes().await;
    let anon = rows_of(&env, ACTION_REFUSED_ANONYMOUS).await;
    assert_eq!(anon.len(), 1);
    let details: Value = serde_json::from_str(anon[0].new_value.as_deref().unwrap()).unwrap();
    assert_eq!(details["count"], 3, "{details}");
}

#[tokio::test]
async fn anonymous_refusals_cannot_flood_the_audit_trail() {
    let env = Env::start(json!({"remote": {"allow_remote_writes": true}})).await;
    let (before, _) = all_rows(&env).await;
    let big_node = "N".repeat(MAX_NAME_BYTES * 100);
    for i in 0..1000 {
        let (token, node) = match i % 3 {
            0 => ("", "P"),
            1 => ("Bearer bogus-token", "P"),
            _ => ("Bearer bogus-token", big_node.as_str()),
        };
        let b = json!({"plc": "alpha", "node": node, "value": i}).to_string();
        let headers: Vec<(&str, &str)> = if token.is_empty() {
            vec![]
        } else {
            vec![("Authorization", token)]
        };
        let (st, _, body) = http(env.addr, "POST", "/api/write", &headers, Some(&b)).await;
        assert!(st == 401 || st == 400, "{st}: {body}");
    }
    let (during, _) = all_rows(&env).await;
    assert_eq!(during.len(), before.len(), "nothing is stored per request");
    env.api.flush_refused_writes().await;
    let (after, bytes) = all_rows(&env).await;
    let new = &after[before.len()..];
    assert_eq!(new.len(), 1, "one row for the source: {new:?}");
    assert_eq!(new[0].action, ACTION_REFUSED_ANONYMOUS);
    assert_eq!(new[0].source, "127.0.0.1");
    let details: Value = serde_json::from_str(new[0].new_value.as_deref().unwrap()).unwrap();
    assert_eq!(details["count"], 1000, "{details}");
    assert_eq!(details["source"], "127.0.0.1");
    assert!(details["first"].as_str().unwrap() <= details["last"].as_str().unwrap());
    assert!(bytes < 2_000, "the whole trail is {bytes} bytes");
    eprintln!(
        "1,000 anonymous refusals: 1 row, {} bytes as JSON",
        serde_json::to_string(&new[0]).unwrap().len()
    );
}
