//! The WebSocket `/ws` against the real server (real SQLite auth, live cache fed directly).

use std::time::Duration;

use crate::support::*;
use futures::SinkExt;
use serde_json::json;
use stator::auth::Role;
use tokio_tungstenite::tungstenite::Message;

fn parks_of(snapshot: &serde_json::Value) -> Vec<String> {
    snapshot["plcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn auth_by_subprotocol_selects_bearer_and_sends_the_snapshot() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, proto) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    assert_eq!(proto.as_deref(), Some("bearer"));
    let s = next_json(&mut ws).await;
    assert_eq!(s["type"], "snapshot");
    assert!(s["seq"].as_u64().unwrap() > 0);
    let p = &s["plcs"][0];
    assert_eq!(p["id"], "alpha");
    assert_eq!(p["name"], "Alpha");
    assert_eq!(p["status"], "CONNECTED");
    let node = &p["nodes"][0];
    for f in [
        "name", "node_id", "type", "value", "quality", "ts", "writable",
    ] {
        assert!(node.get(f).is_some(), "node lacks {f}: {node}");
    }
}

#[tokio::test]
async fn auth_by_query_token() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Query(&t), None).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
}

#[tokio::test]
async fn auth_by_first_message_login_or_token() {
    let env = Env::start(json!({})).await;
    env.user("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::None, None).await.unwrap();
    send(
        &mut ws,
        json!({"id": 1, "op": "login", "username": "ann", "password": PASSWORD}),
    )
    .await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["type"], "reply");
    assert_eq!(r["ok"], true);
    let token = r["result"]["token"].as_str().unwrap().to_string();
    assert_eq!(r["result"]["user"]["parks"], json!(["alpha"]));
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");

    let (mut ws2, _) = ws_connect(&env, WsAuth::None, None).await.unwrap();
    send(&mut ws2, json!({"id": "a", "op": "auth", "token": token})).await;
    let r = next_json(&mut ws2).await;
    assert_eq!(
        (r["id"].clone(), r["ok"].clone()),
        (json!("a"), json!(true))
    );
    assert_eq!(next_json(&mut ws2).await["type"], "snapshot");
}

#[tokio::test]
async fn bad_missing_or_late_auth_closes_4001() {
    let env = Env::start(json!({})).await;
    env.user("ann", Role::Viewer, &["alpha"]).await;
    let bogus = "A".repeat(43);
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&bogus), None)
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    let (mut ws, _) = ws_connect(&env, WsAuth::Query("nope"), None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    // Nothing within the (shortened) auth timeout.
    let (mut ws, _) = ws_connect(&env, WsAuth::None, None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    // A first message that is not login/auth.
    let (mut ws, _) = ws_connect(&env, WsAuth::None, None).await.unwrap();
    send(&mut ws, json!({"id": 1, "op": "snapshot"})).await;
    assert_eq!(close_code(&mut ws).await, 4001);
    // Wrong password: an error reply, then 4001.
    let (mut ws, _) = ws_connect(&env, WsAuth::None, None).await.unwrap();
    send(
        &mut ws,
        json!({"id": 1, "op": "login", "username": "ann", "password": "wrong-password"}),
    )
    .await;
    let r = next_json(&mut ws).await;
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"]["code"], "invalid_credentials");
    assert_eq!(close_code(&mut ws).await, 4001);
    // A token that was logged out.
    let t = env
        .auth
        .login(
            "ann",
            PASSWORD,
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
        .await
        .unwrap()
        .token;
    env.auth.logout(&t).await.unwrap();
    let (mut ws, _) = ws_connect(&env, WsAuth::Query(&t), None).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
}

#[tokio::test]
async fn two_users_see_only_their_parks_in_snapshots_updates_and_replies() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Viewer, &["alpha"]).await;
    let tb = env.login("bob", Role::Viewer, &["beta"]).await;
    let ts = env.login("sue", Role::Superuser, &[]).await;
    let (mut a, _) = ws_connect(&env, WsAuth::Protocol(&ta), None).await.unwrap();
    let (mut b, _) = ws_connect(&env, WsAuth::Protocol(&tb), None).await.unwrap();
    let (mut s, _) = ws_connect(&env, WsAuth::Protocol(&ts), None).await.unwrap();
    assert_eq!(parks_of(&next_of(&mut a, "snapshot").await), ["alpha"]);
    assert_eq!(parks_of(&next_of(&mut b, "snapshot").await), ["beta"]);
    assert_eq!(
        parks_of(&next_of(&mut s, "snapshot").await),
        ["alpha", "beta"]
    );

    set(&env.cache, "beta", "P", json!(42.0));
    let u = next_of(&mut b, "update").await;
    assert_eq!(parks_of(&u), ["beta"]);
    assert_eq!(u["plcs"][0]["changes"][0]["name"], "P");
    assert_eq!(u["plcs"][0]["changes"][0]["value"], 42.0);
    assert_eq!(parks_of(&next_of(&mut s, "update").await), ["beta"]);
    set(&env.cache, "alpha", "P", json!(7.0));
    // ann's first update is about alpha: she never saw beta's change.
    let u = next_of(&mut a, "update").await;
    assert_eq!(parks_of(&u), ["alpha"]);

    let r = call(&mut a, json!({"id": 9, "op": "snapshot"})).await;
    assert_eq!(parks_of(&r["result"]), ["alpha"]);
}

#[tokio::test]
async fn pushes_reach_only_the_sessions_their_audience_admits() {
    use stator::api::Audience;
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Viewer, &["alpha"]).await;
    let tb = env.login("bob", Role::Viewer, &["beta"]).await;
    let (mut a, _) = ws_connect(&env, WsAuth::Protocol(&ta), None).await.unwrap();
    let (mut b, _) = ws_connect(&env, WsAuth::Protocol(&tb), None).await.unwrap();
    next_of(&mut a, "snapshot").await;
    next_of(&mut b, "snapshot").await;

    env.api.push(
        Audience::Park("alpha".into()),
        &json!({"type": "t", "n": 1}),
    );
    assert_eq!(next_of(&mut a, "t").await["n"], 1);
    let bob = env.auth.peek(&tb).await.unwrap().user_id;
    env.api
        .push(Audience::Users(vec![bob]), &json!({"type": "t", "n": 2}));
    env.api
        .push(Audience::Everyone, &json!({"type": "t", "n": 3}));
    // bob never got the alpha push: his first is the one addressed to him.
    assert_eq!(next_of(&mut b, "t").await["n"], 2);
    assert_eq!(next_of(&mut b, "t").await["n"], 3);
    assert_eq!(next_of(&mut a, "t").await["n"], 3);
}

#[tokio::test]
async fn updates_carry_only_changes_after_the_snapshot_and_are_coalesced() {
    let env = Env::start(json!({"broadcast_interval_seconds": 0.3})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    let snap = next_of(&mut ws, "snapshot").await;
    let seq0 = snap["seq"].as_u64().unwrap();

    // Nothing changes: nothing is sent.
    assert!(quiet(&mut ws, Duration::from_millis(700)).await.is_none());

    // 150 changes over ~1.5 s with a 0.3 s interval: a handful of updates, never more than one
    // per interval, each carrying only the changed tag, the last one the final value.
    let writer = {
        let cache = env.cache.clone();
        tokio::spawn(async move {
            let t0 = tokio::time::Instant::now();
            for i in 0..150 {
                set(&cache, "alpha", "P", json!(i as f64));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            t0.elapsed()
        })
    };
    let start = tokio::time::Instant::now();
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    loop {
        match quiet(&mut ws, Duration::from_millis(800)).await {
            None => break,
            Some(Got::Json(u)) => {
                assert_eq!(u["type"], "update");
                assert!(u["seq"].as_u64().unwrap() > seq0);
                let changes = u["plcs"][0]["changes"].as_array().unwrap();
                assert_eq!(changes.len(), 1, "only P changed: {u}");
                assert_eq!(changes[0]["name"], "P");
                last = changes[0]["value"].clone();
                times.push(start.elapsed());
            }
            Some(other) => panic!("socket ended: {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    let changing = writer.await.unwrap();
    assert_eq!(last, json!(149.0));
    assert!(times.len() >= 3, "updates: {times:?}");
    // On average at most one per interval while the changes lasted (the rate rule allows two
    // more), plus the trailing flush.
    let most = (changing.as_secs_f64() / 0.3).floor() as usize + 3;
    assert!(
        times.len() <= most,
        "not coalesced: {} updates in {changing:?}",
        times.len()
    );
    for w in times.windows(2) {
        // Never two closer than ¾ interval (225 ms; client-side receipt jitter allowed).
        assert!(w[1] - w[0] >= Duration::from_millis(200), "{times:?}");
    }
}

#[tokio::test]
async fn logout_elsewhere_closes_the_socket_with_4001_at_once() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    let (st, _, _) = http_as(&env, "POST", "/api/logout", &t, None).await;
    assert_eq!(st, 204);
    let t0 = tokio::time::Instant::now();
    assert_eq!(close_code(&mut ws).await, 4001);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn disabling_the_user_closes_the_socket_with_4001() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Query(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    env.auth.set_active(&system(), "ann", false).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
}

#[tokio::test]
async fn a_grant_change_sends_a_fresh_snapshot_and_changes_the_updates() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    assert_eq!(parks_of(&next_of(&mut ws, "snapshot").await), ["alpha"]);
    env.auth.grant_park(&system(), "ann", "beta").await.unwrap();
    assert_eq!(
        parks_of(&next_of(&mut ws, "snapshot").await),
        ["alpha", "beta"]
    );
    set(&env.cache, "beta", "P", json!(5.0));
    assert_eq!(parks_of(&next_of(&mut ws, "update").await), ["beta"]);
    env.auth
        .revoke_park(&system(), "ann", "alpha")
        .await
        .unwrap();
    assert_eq!(parks_of(&next_of(&mut ws, "snapshot").await), ["beta"]);
    set(&env.cache, "alpha", "P", json!(6.0));
    set(&env.cache, "beta", "P", json!(7.0));
    let u = next_of(&mut ws, "update").await;
    assert_eq!(parks_of(&u), ["beta"]);
}

#[tokio::test]
async fn malformed_unknown_and_oversized_frames() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    ws.send(Message::text("{not json")).await.unwrap();
    let r = next_of(&mut ws, "reply").await;
    assert_eq!(
        (r["ok"].clone(), r["error"]["code"].clone()),
        (json!(false), json!("invalid"))
    );
    let r = call(&mut ws, json!({"id": 2, "op": "launch_rockets"})).await;
    assert_eq!(r["error"]["code"], "invalid");
    // The socket stays usable.
    let r = call(&mut ws, json!({"id": 3, "op": "ping"})).await;
    assert_eq!(r["ok"], true);
    assert_eq!(r["result"]["pong"], true);
    // A 70 KiB message is over the 64 KiB limit: close 1009.
    let big = format!(
        "{{\"id\":4,\"op\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let _ = ws.send(Message::text(big)).await;
    assert_eq!(close_code(&mut ws).await, 1009);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_same_origin_and_allowlisted_pass() {
    let env = Env::start(json!({"remote": {"allowed_origins": ["https://hmi.example"]}})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    assert_eq!(
        ws_connect(&env, WsAuth::Protocol(&t), Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    let own = format!("http://{}", env.addr);
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), Some(&own))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), Some("https://hmi.example"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
}

#[tokio::test]
async fn connection_limits_per_address_and_in_total() {
    let env = Env::start(json!({"remote": {"max_connections_per_address": 2}})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (_a, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    let (_b, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    assert_eq!(
        ws_connect(&env, WsAuth::Protocol(&t), None).await.err(),
        Some(429)
    );
    drop(_a);
    // The slot is freed once the server notices the close.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match ws_connect(&env, WsAuth::Protocol(&t), None).await {
            Ok(_) => break,
            Err(429) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("still refused: {e}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_delay_a_fast_one_and_is_closed() {
    let env = Env::start_with(
        json!({"broadcast_interval_seconds": 0.05, "remote": {"metrics": true}}),
        |s| {
            s.client_queue = 2;
            s.slow_client_timeout = Duration::from_millis(500);
        },
    )
    .await;
    // Big values so that the slow client's socket buffers fill quickly.
    env.cache.set_tags(
        "alpha",
        (0..50)
            .map(|i| meta(&format!("S{i}"), "String", false))
            .collect(),
    );
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut slow, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    let (mut fast, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut fast, "snapshot").await;
    let pad = "y".repeat(2000);
    let mut worst = Duration::ZERO;
    for round in 0..60 {
        let stamp = format!("{round}-{pad}");
        let updates = (0..50).map(|i| stator::live::ValueUpdate {
            tag: format!("S{i}"),
            value: good(json!(stamp.clone())),
        });
        let t0 = tokio::time::Instant::now();
        env.cache.update("alpha", updates);
        // The fast client gets this round's values promptly.
        loop {
            let u = next_of(&mut fast, "update").await;
            let v = u["plcs"][0]["changes"][0]["value"]
                .as_str()
                .unwrap()
                .to_string();
            if v.starts_with(&format!("{round}-")) {
                break;
            }
        }
        worst = worst.max(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        worst < Duration::from_millis(1000),
        "fast client delayed: {worst:?}"
    );
    // The slow one was closed (too slow) or dropped; reading now shows the end.
    let code = close_code(&mut slow).await;
    assert!(code == 4008 || code == 0, "slow client close code {code}");
    let m = http(env.addr, "GET", "/metrics", &[], None).await.2;
    assert!(
        m.contains("stator_remote_slow_clients_closed_total 1"),
        "{m}"
    );
}

#[tokio::test]
async fn unauthenticated_sockets_do_not_take_the_client_slots() {
    let env = Env::start_with(json!({"remote": {"max_clients": 2}}), |s| {
        s.max_unauthenticated = 3;
        s.max_unauthenticated_per_address = 3;
        s.auth_timeout = Duration::from_secs(10);
    })
    .await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(ws_connect(&env, WsAuth::None, None).await.unwrap().0);
    }
    assert_eq!(ws_connect(&env, WsAuth::None, None).await.err(), Some(503));
    // The pre-auth cap is full; logged-in clients still connect, up to max_clients.
    let (mut a, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    assert_eq!(next_json(&mut a).await["type"], "snapshot");
    let (mut b, _) = ws_connect(&env, WsAuth::Query(&t), None).await.unwrap();
    assert_eq!(next_json(&mut b).await["type"], "snapshot");
    assert_eq!(
        ws_connect(&env, WsAuth::Protocol(&t), None).await.err(),
        Some(503)
    );
    // A pending socket that authenticates while every client slot is taken: 1013.
    let p = &mut pending[0];
    send(p, json!({"op": "auth", "token": t, "id": 1})).await;
    assert_eq!(close_code(p).await, 1013);
}

#[tokio::test]
async fn unauthenticated_sockets_are_also_capped_per_address() {
    let env = Env::start_with(json!({}), |s| {
        s.max_unauthenticated_per_address = 2;
        s.auth_timeout = Duration::from_secs(10);
    })
    .await;
    let _a = ws_connect(&env, WsAuth::None, None).await.unwrap();
    let _b = ws_connect(&env, WsAuth::None, None).await.unwrap();
    assert_eq!(ws_connect(&env, WsAuth::None, None).await.err(), Some(429));
}

#[tokio::test]
async fn dns_rebinding_is_refused_on_the_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let env = Env::start(json!({"remote": {"allowed_hosts": ["hmi.plant.local"]}})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let open = |host: &'static str| {
        let mut req = env.url("/ws").into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("host", HeaderValue::from_static(host));
        h.insert(
            "origin",
            HeaderValue::from_str(&format!("http://{host}")).unwrap(),
        );
        h.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("bearer, {t}")).unwrap(),
        );
        req
    };
    // The attacker's name, re-pointed at this server: Origin equals Host, and still refused.
    match tokio_tungstenite::connect_async(open("evil.example:8765")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!(
            "rebinding not refused: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    // A name the operator allowed works.
    let (mut ws, _) = tokio_tungstenite::connect_async(open("hmi.plant.local:8765"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
}
