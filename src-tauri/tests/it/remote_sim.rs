//! The remote server fed by the real engine talking OPC UA to the built-in simulator: live data
//! over the WebSocket, and writes with the value read back from the simulator itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};
use stator::api::{dispatch, Api, Ctx, Empty, Request, SharedEngine, WriteReq, ACTION_REQUESTED};
use stator::auth::{Auth, Role, Source};
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{SimHandle, SimOptions};
use stator::store::AuditFilter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct SimEnv {
    env: Env,
    sim: Option<SimHandle>,
    engine: SharedEngine,
}

async fn wait_status(cache: &Cache, plc: &str, want: impl Fn(PlcStatus) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut rx = cache.subscribe();
    while !want(cache.status(plc).unwrap_or_default()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{plc} stayed {:?}",
            cache.status(plc)
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
}

async fn start(extra: Value) -> SimEnv {
    let sim = stator::sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), extra));
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    let urls: HashMap<String, String> = ["alpha", "beta"]
        .iter()
        .map(|s| s.to_string())
        .zip(sim.endpoints())
        .collect();
    opts.url_override = Some(urls);
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    for plc in ["alpha", "beta"] {
        wait_status(&env.cache, plc, |s| s == PlcStatus::Connected).await;
    }
    SimEnv {
        env,
        sim: Some(sim),
        engine,
    }
}

impl SimEnv {
    async fn stop(mut self) {
        if let Some(s) = self.env.server.take() {
            s.shutdown().await;
        }
        self.engine.shutdown().await;
        if let Some(s) = self.sim.take() {
            s.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_values_from_the_simulator_reach_the_client_filtered_by_park() {
    let se = start(json!({})).await;
    let env = &se.env;
    let t = env.login("ann", Role::Viewer, &["beta"]).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&t), None).await.unwrap();
    let snap = next_of(&mut ws, "snapshot").await;
    assert_eq!(snap["plcs"].as_array().unwrap().len(), 1);
    assert_eq!(snap["plcs"][0]["id"], "beta");
    assert_eq!(snap["plcs"][0]["status"], "CONNECTED");
    let names: Vec<&str> = snap["plcs"][0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Active_Power_kW"), "{names:?}");
    // The simulated process keeps changing: updates follow, only for beta.
    for _ in 0..3 {
        let u = next_of(&mut ws, "update").await;
        assert!(u["seq"].as_u64().unwrap() > snap["seq"].as_u64().unwrap());
        for p in u["plcs"].as_array().unwrap() {
            assert_eq!(p["id"], "beta");
        }
    }
    se.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_the_simulator_and_reply_with_the_read_back() {
    let se = start(json!({
        "remote": {"allow_remote_writes": true},
        "tags": {"alpha/SP_Power_Limit_kW": {"range": [0.0, 100.0], "unit": "kW"}}
    }))
    .await;
    let env = &se.env;
    let sim = se.sim.as_ref().unwrap();
    let t = env.login("olga", Role::Operator, &["alpha"]).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;

    let before = env.cache.value("alpha", "SP_Power_Limit_kW").unwrap().value;
    let r = call(
        &mut ws,
        json!({"id": 1, "op": "write", "plc": "alpha", "node": "SP_Power_Limit_kW", "value": 42.5}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["result"],
        json!({"plc": "alpha", "node": "SP_Power_Limit_kW", "value": 42.5})
    );
    assert_eq!(sim.value_json(0, "SP_Power_Limit_kW"), Some(json!(42.5)));

    // One element of a Bool[8], over HTTP.
    let b = json!({"plc": "alpha", "node": "CMD_Instant_Cutoff[3]", "value": true}).to_string();
    let (st, _, body) = http_as(env, "POST", "/api/write", &t, Some(&b)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        sim.value_json(0, "CMD_Instant_Cutoff[3]"),
        Some(json!(true))
    );

    // Out of the configured range and the wrong type: invalid, the PLC keeps its value.
    let r = call(
        &mut ws,
        json!({"id": 2, "op": "write", "plc": "alpha", "node": "SP_Power_Limit_kW", "value": 150.0}),
    )
    .await;
    assert_eq!(r["error"]["code"], "invalid", "{r}");
    let r = call(
        &mut ws,
        json!({"id": 3, "op": "write", "plc": "alpha", "node": "SP_Power_Limit_kW", "value": "abc"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "invalid", "{r}");
    assert_eq!(sim.value_json(0, "SP_Power_Limit_kW"), Some(json!(42.5)));

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
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].result, "ok");
    assert_eq!(rows[0].actor.as_deref(), Some("olga"));
    assert_eq!(rows[0].target.as_deref(), Some("alpha/SP_Power_Limit_kW"));
    assert_eq!(
        rows[0].old_value.as_deref(),
        Some(before.to_string().as_str())
    );
    assert_eq!(rows[0].new_value.as_deref(), Some("42.5"));
    assert_eq!(
        rows[1].target.as_deref(),
        Some("alpha/CMD_Instant_Cutoff[3]")
    );
    assert!(rows[2].result.starts_with("invalid"), "{}", rows[2].result);
    se.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_while_the_simulator_is_down_is_not_connected() {
    let mut se = start(json!({"remote": {"allow_remote_writes": true}})).await;
    let t = se.env.login("olga", Role::Operator, &["alpha"]).await;
    se.sim.take().unwrap().stop().await;
    wait_status(&se.env.cache, "alpha", |s| s != PlcStatus::Connected).await;
    let b = json!({"plc": "alpha", "node": "SP_Power_Limit_kW", "value": 1.0}).to_string();
    let (st, _, body) = http_as(&se.env, "POST", "/api/write", &t, Some(&b)).await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("not_connected"));
    se.stop().await;
}

/// The raw bytes of `POST /api/write` with a bearer token.
fn write_request(env: &Env, token: &str, body: &Value) -> String {
    let auth = bearer(token);
    request(
        env.addr,
        "POST",
        "/api/write",
        &[("Authorization", &auth)],
        Some(&body.to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_never_leaves_a_write_unaudited() {
    let se = start(json!({
        "remote": {"allow_remote_writes": true},
        "auth": {"write_rate_per_second": 1000.0}
    }))
    .await;
    let env = &se.env;
    let sim = se.sim.as_ref().unwrap();
    let t = env.login("olga", Role::Operator, &["alpha"]).await;
    let tag = "SP_Ramp_Rate_kW_s";
    let mut received = BTreeSet::new();
    for i in 1..=40i64 {
        let v = 7_000 + i;
        let req = write_request(env, &t, &json!({"plc": "alpha", "node": tag, "value": v}));
        let mut s = TcpStream::connect(env.addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        // Hang up right after sending, while the write is in flight.
        drop(s);
        // What the simulator received: wait a bounded time for v to land (a request dropped
        // before the server read it never reaches the PLC, and then must not).
        if eventually(Duration::from_millis(1500), || {
            std::future::ready(sim.value_json(0, tag) == Some(json!(v)))
        })
        .await
        {
            received.insert(v);
        }
    }
    assert!(!received.is_empty(), "no write reached the simulator");
    // The row stored before the send exists for every value the PLC took…
    let requested: BTreeSet<i64> = rows_of(env, ACTION_REQUESTED)
        .await
        .iter()
        .map(|r| r.new_value.as_deref().unwrap().parse().unwrap())
        .collect();
    let missing: Vec<_> = received.difference(&requested).collect();
    assert!(
        missing.is_empty(),
        "received without an audit row: {missing:?}"
    );
    // …and the detached task also stores each outcome.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ok: BTreeSet<i64> = rows_of(env, "write")
            .await
            .iter()
            .filter(|r| r.result == "ok")
            .map(|r| r.new_value.as_deref().unwrap().parse().unwrap())
            .collect();
        if received.is_subset(&ok) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outcome rows missing: {:?}",
            received.difference(&ok).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{} of 40 hung-up writes reached the simulator, all audited",
        received.len()
    );
    se.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_closed_when_the_audit_trail_cannot_be_written() {
    let se = start(json!({"remote": {"allow_remote_writes": true}})).await;
    let env = &se.env;
    let sim = se.sim.as_ref().unwrap();
    let t = env.login("olga", Role::Operator, &["alpha"]).await;
    let before = sim.value_json(0, "SP_Mode").unwrap();
    let wanted = json!(if before == json!(7) { 8 } else { 7 });
    // A second connection holds the database's write lock, as a stuck or foreign writer would.
    let db = env.cfg.database.clone().unwrap();
    let lock = rusqlite::Connection::open(&db).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let req = write_request(
        env,
        &t,
        &json!({"plc": "alpha", "node": "SP_Mode", "value": wanted}),
    );
    let mut s = TcpStream::connect(env.addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // The store waits out its busy timeout (10 s) before giving up.
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("an answer within the busy timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"error\":\"unavailable\""), "{text}");
    assert_eq!(
        sim.value_json(0, "SP_Mode"),
        Some(before),
        "nothing was sent"
    );
    lock.execute_batch("COMMIT").unwrap();
    drop(lock);
    // With the trail writable again the same write goes through.
    let r = dispatch(
        &env.api,
        &Ctx::new(Some(t), Source::Remote("127.0.0.1".into())),
        Request::Write(WriteReq {
            plc: "alpha".into(),
            node: "SP_Mode".into(),
            value: wanted.clone(),
        }),
    )
    .await
    .unwrap();
    assert_eq!(r["value"], wanted);
    assert_eq!(sim.value_json(0, "SP_Mode"), Some(wanted));
    se.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_back_of_two_quick_writes_is_in_the_snapshot_at_once() {
    let se = start(json!({})).await;
    let env = &se.env;
    env.user("pat", Role::Operator, &["alpha"]).await;
    let token = env
        .auth
        .login("pat", PASSWORD, Source::Panel)
        .await
        .unwrap()
        .token;
    let ctx = Ctx::new(Some(token), Source::Panel);
    let write = |v: Value| {
        Request::Write(WriteReq {
            plc: "alpha".into(),
            node: "SP_Power_Factor".into(),
            value: v,
        })
    };
    let snapshot_value = |snap: &Value| {
        snap["plcs"][0]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == "SP_Power_Factor")
            .unwrap()["value"]
            .clone()
    };
    for (a, b) in [(0.91, 0.92), (0.93, 0.94), (0.95, 0.96)] {
        dispatch(&env.api, &ctx, write(json!(a))).await.unwrap();
        dispatch(&env.api, &ctx, write(json!(b))).await.unwrap();
        let snap = dispatch(&env.api, &ctx, Request::Snapshot(Empty {}))
            .await
            .unwrap();
        assert_eq!(snapshot_value(&snap), json!(b), "{a} then {b}");
    }
    // An element write updates its array in the cache too.
    dispatch(
        &env.api,
        &ctx,
        Request::Write(WriteReq {
            plc: "alpha".into(),
            node: "CMD_Instant_Cutoff[5]".into(),
            value: json!(true),
        }),
    )
    .await
    .unwrap();
    let v = env
        .cache
        .value("alpha", "CMD_Instant_Cutoff")
        .unwrap()
        .value;
    assert_eq!(v[5], json!(true), "{v}");
    se.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_string_length_is_counted_in_bytes() {
    let se = start(json!({"remote": {"allow_remote_writes": true}})).await;
    let env = &se.env;
    let sim = se.sim.as_ref().unwrap();
    let t = env.login("olga", Role::Operator, &["alpha"]).await;
    let ctx = Ctx::new(Some(t), Source::Remote("127.0.0.1".into()));
    let write = |v: String| {
        Request::Write(WriteReq {
            plc: "alpha".into(),
            node: "SP_Note".into(),
            value: json!(v),
        })
    };
    let ok = "€".repeat(84); // 252 bytes
    let r = dispatch(&env.api, &ctx, write(ok.clone())).await.unwrap();
    assert_eq!(r["value"], json!(ok));
    // 254 characters, but 762 bytes: more than an S7 String holds.
    let e = dispatch(&env.api, &ctx, write("€".repeat(254)))
        .await
        .unwrap_err();
    assert_eq!(e.code, "invalid", "{e}");
    assert!(e.message.contains("bytes"), "{e}");
    assert_eq!(sim.value_json(0, "SP_Note"), Some(json!(ok)));
    se.stop().await;
}

/// Values of `tag` of park `plc` in one update frame, in order.
fn values_of(update: &Value, plc: &str, tag: &str) -> Vec<Value> {
    update["plcs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"] == plc)
        .flat_map(|p| p["changes"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["name"] == tag)
        .map(|c| c["value"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_one_interval_apart_all_reach_the_client() {
    let se = start(json!({})).await;
    let env = &se.env;
    let sim = se.sim.as_ref().unwrap();
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    // The stimulus: a setpoint changed every 120 ms (the broadcast interval is 100 ms), as an
    // operator panel or a PLC program would. The pacing is the scenario, not synchronisation.
    let sent: Vec<i16> = (1..=15).map(|i| 1000 + i).collect();
    let feeder = {
        let values = sent.clone();
        let sim_set = |v: i16| sim.set_value(0, "SP_Mode", opcua::types::Variant::Int16(v));
        async move {
            for v in values {
                sim_set(v).unwrap();
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        }
    };
    let receiver = async {
        let mut seen: Vec<i64> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while seen.last() != Some(&1015) {
            assert!(tokio::time::Instant::now() < deadline, "saw only {seen:?}");
            let u = next_of(&mut ws, "update").await;
            for v in values_of(&u, "alpha", "SP_Mode") {
                let v = v.as_i64().unwrap();
                if seen.last() != Some(&v) {
                    seen.push(v);
                }
            }
        }
        seen
    };
    let ((), seen) = tokio::join!(feeder, receiver);
    let want: Vec<i64> = sent.iter().map(|&v| i64::from(v)).collect();
    assert_eq!(seen, want, "every change, in order");
    se.stop().await;
}
