//! The remote server fed by the real engine talking OPC UA to the built-in simulator: live data
//! over the WebSocket, and writes with the value read back from the simulator itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};
use stator::api::{Api, SharedEngine};
use stator::auth::{Auth, Role};
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{SimHandle, SimOptions};
use stator::store::AuditFilter;

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
    let api = Api::with_writer(
        auth.clone(),
        cache.clone(),
        cfg.clone(),
        Arc::new(engine.clone()),
    );
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
    let (st, _, body) = http(
        env.addr,
        "POST",
        "/api/write",
        &[("Authorization", &format!("Bearer {t}"))],
        Some(&b),
    )
    .await;
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
    let (st, _, body) = http(
        se.env.addr,
        "POST",
        "/api/write",
        &[("Authorization", &format!("Bearer {t}"))],
        Some(&b),
    )
    .await;
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("not_connected"));
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
