//! Alarm management against the real simulator over OPC UA/TCP: raise with on-delay, deadband,
//! acknowledge, return unacknowledged, shelve and out-of-service refusals, the comm alarm of a
//! killed simulator, state kept across a restart of the api (same database file), park filtering
//! on the WebSocket and over HTTP, and every bad input with its code.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use opcua::types::Variant;
use serde_json::{json, Value};
use stator::api::{Api, SharedEngine};
use stator::auth::{Auth, Role};
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{SimHandle, SimOptions};

const LONG: Duration = Duration::from_secs(15);

fn alarm_config() -> Value {
    json!({
        "alarms": [
            { "id": "a_limit", "tag": "alpha/SP_Power_Limit_kW", "condition": "high", "limit": 1100,
              "deadband": 50, "on_delay_seconds": 1, "priority": "high",
              "message": { "en": "Power limit above 1100 kW", "de": "Leistungsgrenze über 1100 kW" } },
            { "id": "a_cut", "tag": "alpha/CMD_Instant_Cutoff[3]", "condition": "equals", "value": true,
              "priority": "urgent", "message": "Instant cutoff 3 active" },
            { "id": "a_breaker", "tag": "alpha/Breaker_Closed", "condition": "equals", "value": false,
              "priority": "urgent", "message": "Breaker open" },
            { "id": "a_missing", "tag": "alpha/No_Such_Tag", "condition": "equals", "value": true,
              "priority": "low", "message": "never" },
            { "id": "b_limit", "tag": "beta/SP_Power_Limit_kW", "condition": "high", "limit": 1100,
              "priority": "medium", "message": "Beta power limit high" }
        ],
        "alarm_settings": { "comm_on_delay_seconds": 2 }
    })
}

struct AlarmEnv {
    env: Env,
    sim: Option<SimHandle>,
    engine: SharedEngine,
}

async fn wait_status(cache: &Cache, plc: &str, want: PlcStatus) {
    let c = cache.clone();
    let plc = plc.to_string();
    wait_until(LONG, "PLC status", move || c.status(&plc) == Some(want)).await;
}

async fn start() -> AlarmEnv {
    let sim = stator::sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), alarm_config()));
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
    api.start_alarms().await.unwrap();
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    for plc in ["alpha", "beta"] {
        wait_status(&env.cache, plc, PlcStatus::Connected).await;
    }
    AlarmEnv {
        env,
        sim: Some(sim),
        engine,
    }
}

impl AlarmEnv {
    fn sim(&self) -> &SimHandle {
        self.sim.as_ref().unwrap()
    }

    fn set_limit(&self, park: usize, kw: f32) {
        self.sim()
            .set_value(park, "SP_Power_Limit_kW", Variant::Float(kw))
            .unwrap();
    }

    async fn stop(mut self) {
        self.env.api.alarms().stop().await;
        if let Some(s) = self.env.server.take() {
            s.shutdown().await;
        }
        self.engine.shutdown().await;
        if let Some(s) = self.sim.take() {
            s.stop().await;
        }
    }
}

/// `GET path` as `token`: (status, JSON body).
async fn get(env: &Env, token: &str, path: &str) -> (u16, Value) {
    let (st, _, body) = http_as(env, "GET", path, token, None).await;
    (st, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The alarm `id` as `GET /api/alarms` lists it for `token`.
async fn listed(env: &Env, token: &str, id: &str) -> Option<Value> {
    let (st, v) = get(env, token, "/api/alarms").await;
    assert_eq!(st, 200, "{v}");
    v["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

/// Polls the list until `id` satisfies `want`; returns it.
async fn until(env: &Env, token: &str, id: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let a = listed(env, token, id).await;
        if let Some(a) = a.as_ref().filter(|a| want(a)) {
            return a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alarm {id} never reached the wanted state; last {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alarms pushed to `ws` (`alarm` or `alarms` messages) until one is `id` in `state`; returns
/// every alarm pushed on the way (including that one).
async fn pushed_until(ws: &mut Ws, id: &str, state: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + LONG;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = match next(ws, left).await {
            Got::Json(m) => m,
            other => panic!("expected an alarm push, got {other:?}"),
        };
        let list = match m["type"].as_str() {
            Some("alarm") => vec![m["alarm"].clone()],
            Some("alarms") => m["alarms"].as_array().unwrap().clone(),
            _ => continue,
        };
        let done = list.iter().any(|a| a["id"] == id && a["state"] == state);
        seen.extend(list);
        if done {
            return seen;
        }
    }
}

fn results(v: &Value) -> Vec<(String, Value)> {
    v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {v}"))
        .iter()
        .map(|r| {
            let code = if r["ok"] == true {
                r["state"].clone()
            } else {
                r["code"].clone()
            };
            (r["alarm"].as_str().unwrap().to_string(), code)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raise_delay_deadband_ack_and_return_filtered_by_park() {
    let ae = start().await;
    let env = &ae.env;
    let op_a = env.login("ann", Role::Operator, &["alpha"]).await;
    let op_b = env.login("bob", Role::Operator, &["beta"]).await;
    let viewer = env.login("vic", Role::Viewer, &["alpha"]).await;
    let (mut ws_a, _) = ws_connect(env, WsAuth::Protocol(&op_a), None)
        .await
        .unwrap();
    let (mut ws_b, _) = ws_connect(env, WsAuth::Protocol(&op_b), None)
        .await
        .unwrap();
    let snap = next_of(&mut ws_a, "snapshot").await;
    assert!(snap["alarms"].is_array(), "{snap}");
    next_of(&mut ws_b, "snapshot").await;

    // A tag the PLC does not have is listed as tag_missing (not a config error).
    let m = until(env, &op_a, "a_missing", |a| a["quality"] == "tag_missing").await;
    assert_eq!(m["state"], "normal");
    let (st, _, h) = http(env.addr, "GET", "/health", &[], None).await;
    assert_eq!(st, 200);
    let h: Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["alarms_tag_missing"], 1, "{h}");
    assert_eq!(
        h["subsystems"]["alarms"],
        json!({"state": "running", "tag_missing": 1}),
        "{h}"
    );

    // Raise with on-delay: active no earlier than 1 s after the value changed.
    let t0 = chrono::Utc::now();
    ae.set_limit(0, 1200.0);
    let seen = pushed_until(&mut ws_a, "a_limit", "unack").await;
    let a = seen
        .iter()
        .rfind(|a| a["id"] == "a_limit" && a["state"] == "unack")
        .unwrap();
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(a["active_since"].clone()).unwrap();
    // The simulator stamps a scan step with its scheduled time, so a step that runs late on a
    // loaded machine may carry a stamp up to one scan period before `t0`: allow 250 ms of it
    // (without the delay the alarm would be active at once).
    assert!(
        since - t0 >= chrono::Duration::milliseconds(750),
        "raised {} ms after the change",
        (since - t0).num_milliseconds()
    );
    assert_eq!(a["priority"], "high");
    assert_eq!(a["condition"], "high");
    assert_eq!(a["limit"], 1100.0);
    assert_eq!(a["quality"], "good");
    assert_eq!(a["message"]["de"], "Leistungsgrenze über 1100 kW");

    // Beta's operator never sees alpha's alarm (WS and HTTP), but sees beta's.
    ae.set_limit(1, 1300.0);
    let seen_b = pushed_until(&mut ws_b, "b_limit", "unack").await;
    assert!(seen_b.iter().all(|a| a["park"] == "beta"), "{seen_b:?}");
    assert!(listed(env, &op_b, "a_limit").await.is_none());
    assert!(listed(env, &op_b, "b_limit").await.is_some());
    let (_, j) = get(env, &op_b, "/api/alarms/journal").await;
    assert!(
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["park"] == "beta"),
        "{j}"
    );
    let (st, _) = get(env, &op_b, "/api/alarms/journal?park=alpha").await;
    assert_eq!(st, 403);

    // Acknowledge: a viewer is refused (and audited); another park's operator gets forbidden
    // per id, an unknown id not_found; the owner acknowledges.
    let body = json!({"ids": ["a_limit"]}).to_string();
    let (st, _, _) = http_as(env, "POST", "/api/alarms/ack", &viewer, Some(&body)).await;
    assert_eq!(st, 403);
    let body = json!({"ids": ["a_limit", "nope", "b_limit"]}).to_string();
    let (st, _, reply) = http_as(env, "POST", "/api/alarms/ack", &op_b, Some(&body)).await;
    assert_eq!(st, 200, "{reply}");
    let r = results(&serde_json::from_str(&reply).unwrap());
    assert_eq!(
        r,
        [
            ("a_limit".to_string(), json!("forbidden")),
            ("nope".to_string(), json!("not_found")),
            ("b_limit".to_string(), json!("acked")),
        ]
    );
    assert_eq!(
        listed(env, &op_a, "a_limit").await.unwrap()["state"],
        "unack"
    );
    let reply = call(
        &mut ws_a,
        json!({"op": "alarm_ack", "id": 7, "ids": ["a_limit"], "comment": "seen"}),
    )
    .await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        results(&reply["result"]),
        [("a_limit".to_string(), json!("acked"))]
    );
    let a = listed(env, &op_a, "a_limit").await.unwrap();
    assert_eq!(a["acked_by"], "ann");
    assert_eq!(a["comment"], "seen");
    let acks = rows_of(env, "alarm_ack").await;
    let outcome: Vec<(Option<&str>, &str)> = acks
        .iter()
        .map(|r| (r.actor.as_deref(), r.result.as_str()))
        .collect();
    assert!(outcome.contains(&(Some("vic"), "forbidden")), "{outcome:?}");
    assert!(outcome.contains(&(Some("bob"), "forbidden")), "{outcome:?}");
    assert!(outcome.contains(&(Some("ann"), "ok")), "{outcome:?}");
    assert!(
        acks.iter()
            .any(|r| r.actor.as_deref() == Some("ann")
                && r.target.as_deref() == Some("alpha/a_limit"))
    );

    // Deadband: 1080 is inside (1100 - 50), so the alarm stays; 1000 clears it. Acked → normal.
    ae.set_limit(0, 1080.0);
    let a = until(env, &op_a, "a_limit", |a| a["value"] == 1080.0).await;
    assert_eq!(a["state"], "acked", "inside the deadband: {a}");
    ae.set_limit(0, 1000.0);
    pushed_until(&mut ws_a, "a_limit", "normal").await;
    let (_, j) = get(env, &op_a, "/api/alarms/journal?alarm=a_limit").await;
    let events: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["clear", "ack", "raise"], "{j}");

    // Return unacknowledged, then acknowledge → normal.
    ae.sim()
        .set_value(0, "CMD_Instant_Cutoff[3]", Variant::Boolean(true))
        .unwrap();
    pushed_until(&mut ws_a, "a_cut", "unack").await;
    ae.sim()
        .set_value(0, "CMD_Instant_Cutoff[3]", Variant::Boolean(false))
        .unwrap();
    pushed_until(&mut ws_a, "a_cut", "rtn_unack").await;
    let reply = call(
        &mut ws_a,
        json!({"op": "alarm_ack", "id": 8, "ids": ["a_cut"]}),
    )
    .await;
    assert_eq!(
        results(&reply["result"]),
        [("a_cut".to_string(), json!("normal"))]
    );

    // Incidents: one occurrence of a_limit with its peak, who acknowledged, and its end.
    let (st, inc) = get(
        env,
        &op_a,
        "/api/incidents?type=a_limit&start_date=2000-01-01&limit=5",
    )
    .await;
    assert_eq!(st, 200, "{inc}");
    let rows = inc["incidents"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{inc}");
    assert_eq!(rows[0]["acked_by"], "ann");
    assert_eq!(rows[0]["peak"], 1200.0);
    assert!(rows[0]["ended"].is_string(), "{inc}");
    assert!(rows[0]["duration_s"].as_f64().unwrap() > 0.0);

    // The CSV export: RFC 4180 lines with CRLF, newest first.
    let (st, h, csv) = http_as(
        env,
        "GET",
        "/api/alarms/journal.csv?alarm=a_limit",
        &op_a,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(header(&h, "content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,ts,alarm,park,priority,event,state,value,actor,comment,during_service"
    );
    assert_eq!(lines.len(), 5, "{csv:?}");
    assert!(
        lines[1].contains(",a_limit,alpha,high,clear,normal,"),
        "{csv}"
    );
    assert!(lines[2].ends_with(",ann,seen,false"), "{csv}");
    ae.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelve_out_of_service_and_bad_input_each_with_its_code() {
    let ae = start().await;
    let env = &ae.env;
    let su = env.login("sue", Role::Superuser, &[]).await;
    let op = env.login("ann", Role::Operator, &["alpha"]).await;
    let sm = env.login("sam", Role::Serviceman, &["alpha"]).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&su), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    let mut n = 0;
    let mut op_call = |v: Value| {
        n += 1;
        let mut v = v;
        v["id"] = json!(n);
        v
    };
    let code = |r: &Value| r["error"]["code"].as_str().unwrap_or("").to_string();

    for (req, want) in [
        (
            json!({"op": "alarm_shelve", "alarm": "a_limit", "minutes": 481, "reason": "x"}),
            "invalid",
        ),
        (
            json!({"op": "alarm_shelve", "alarm": "a_limit", "minutes": 10, "reason": "  "}),
            "invalid",
        ),
        (
            json!({"op": "alarm_shelve", "alarm": "nope", "minutes": 10, "reason": "x"}),
            "not_found",
        ),
        (
            json!({"op": "alarm_out_of_service", "alarm": "a_limit", "reason": ""}),
            "invalid",
        ),
        (json!({"op": "alarm_ack", "ids": []}), "invalid"),
        (
            json!({"op": "alarm_journal", "priority": "severe"}),
            "invalid",
        ),
        (
            json!({"op": "alarm_journal", "from": "yesterday"}),
            "invalid",
        ),
        (json!({"op": "incidents", "limit": 0}), "invalid"),
        (
            json!({"op": "alarm_shelve", "alarm": "a_limit", "minutes": 10}),
            "invalid",
        ),
    ] {
        let r = call(&mut ws, op_call(req.clone())).await;
        assert_eq!(r["ok"], false, "{req}: {r}");
        assert_eq!(code(&r), want, "{req}: {r}");
    }
    // The shelve beyond the maximum is audited as a refused action.
    let rows = rows_of(env, "alarm_shelve").await;
    assert!(rows
        .iter()
        .any(|r| r.result == "invalid" && r.target.as_deref() == Some("alpha/a_limit")));

    // An operator may neither shelve nor take out of service (audited); a serviceman may take
    // out of service but not shelve.
    let body = json!({"alarm": "a_limit", "minutes": 10, "reason": "x"});
    let ctx = |t: &str| {
        stator::api::Ctx::new(
            Some(t.to_string()),
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
    };
    let shelve = |b: &Value| {
        stator::api::Request::from_json(json!({"op": "alarm_shelve", "alarm": b["alarm"], "minutes": b["minutes"], "reason": b["reason"]})).unwrap()
    };
    assert_refused(
        stator::api::dispatch(&env.api, &ctx(&op), shelve(&body)).await,
        "forbidden",
    );
    assert_refused(
        stator::api::dispatch(&env.api, &ctx(&sm), shelve(&body)).await,
        "forbidden",
    );
    let oos = stator::api::Request::from_json(
        json!({"op": "alarm_out_of_service", "alarm": "a_limit", "reason": "sensor swap"}),
    )
    .unwrap();
    assert_refused(
        stator::api::dispatch(&env.api, &ctx(&op), oos.clone()).await,
        "forbidden",
    );
    let rows = rows_of(env, "alarm_out_of_service").await;
    assert!(
        rows.iter()
            .any(|r| r.actor.as_deref() == Some("ann") && r.result == "forbidden"),
        "{rows:?}"
    );
    let r = stator::api::dispatch(&env.api, &ctx(&sm), oos)
        .await
        .unwrap();
    assert_eq!(r["alarm"]["out_of_service"], true);

    // Out of service: evaluated and journaled, listed, not annunciated as a normal alarm.
    ae.set_limit(0, 1500.0);
    let a = until(env, &su, "a_limit", |a| a["state"] == "unack").await;
    assert_eq!(a["out_of_service"], true);
    let r = call(
        &mut ws,
        op_call(json!({"op": "alarm_in_service", "alarm": "a_limit"})),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["alarm"]["out_of_service"], false);

    // Shelve and unshelve (expiry itself is covered with a fake clock in the evaluator's tests).
    let before = chrono::Utc::now();
    let r = call(
        &mut ws,
        op_call(json!({"op": "alarm_shelve", "alarm": "a_limit", "minutes": 5, "reason": "storm"})),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let until_t: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(r["result"]["alarm"]["shelved_until"].clone()).unwrap();
    let mins = (until_t - before).num_seconds();
    assert!((295..=305).contains(&mins), "{mins}");
    let rows = rows_of(env, "alarm_shelve").await;
    assert!(rows
        .iter()
        .any(|r| r.result == "ok" && r.new_value.as_deref().unwrap_or("").contains("storm")));
    let r = call(
        &mut ws,
        op_call(json!({"op": "alarm_unshelve", "alarm": "a_limit"})),
    )
    .await;
    assert!(r["result"]["alarm"]["shelved_until"].is_null(), "{r}");
    let (_, j) = get(env, &su, "/api/alarms/journal?alarm=a_limit&limit=10").await;
    let events: Vec<&str> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "unshelve",
            "shelve",
            "in_service",
            "raise",
            "out_of_service"
        ],
        "{j}"
    );

    // EEMUA figures: admin/serviceman/superuser only.
    let r = call(&mut ws, op_call(json!({"op": "alarm_stats"}))).await;
    assert_eq!(r["ok"], true, "{r}");
    let top = r["result"]["top"].as_array().unwrap();
    assert!(
        top.contains(&json!({"alarm": "a_limit", "count": 1})),
        "{r}"
    );
    assert_refused(
        stator::api::dispatch(
            &env.api,
            &ctx(&op),
            stator::api::Request::from_json(json!({"op": "alarm_stats"})).unwrap(),
        )
        .await,
        "forbidden",
    );
    ae.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_survives_a_restart_and_a_killed_simulator_raises_comm() {
    let mut ae = start().await;
    let op = ae.env.login("ann", Role::Operator, &["alpha"]).await;
    ae.set_limit(0, 1500.0);
    until(&ae.env, &op, "a_limit", |a| a["state"] == "unack").await;
    let body = json!({"ids": ["a_limit"]}).to_string();
    let (st, _, _) = http_as(&ae.env, "POST", "/api/alarms/ack", &op, Some(&body)).await;
    assert_eq!(st, 200);

    // Restart the api on the same database file (the engine and simulator keep running).
    ae.env.api.alarms().stop().await;
    if let Some(s) = ae.env.server.take() {
        s.shutdown().await;
    }
    let old = std::mem::replace(&mut ae.env, Env::offline(json!({})));
    let Env {
        _dir: dir,
        cfg,
        cache,
        ..
    } = old;
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), ae.engine.clone());
    api.start_alarms().await.unwrap();
    ae.env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    let op = ae
        .env
        .auth
        .login(
            "ann",
            PASSWORD,
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
        .await
        .unwrap()
        .token;
    let a = until(&ae.env, &op, "a_limit", |a| a["quality"] == "good").await;
    assert_eq!(a["state"], "acked", "{a}");
    assert_eq!(a["acked_by"], "ann");

    // Kill the simulator: the comm alarm rises after its on-delay; a_limit is bad, still acked.
    let (mut ws, _) = ws_connect(&ae.env, WsAuth::Protocol(&op), None)
        .await
        .unwrap();
    next_of(&mut ws, "snapshot").await;
    ae.sim.take().unwrap().stop().await;
    let seen = pushed_until(&mut ws, "alpha.comm", "unack").await;
    assert!(seen.iter().all(|a| a["park"] == "alpha"), "{seen:?}");
    let c = listed(&ae.env, &op, "alpha.comm").await.unwrap();
    assert_eq!(c["priority"], "high");
    assert_eq!(c["condition"], "comm");
    let a = until(&ae.env, &op, "a_limit", |a| a["quality"] == "bad").await;
    assert_eq!(a["state"], "acked");
    ae.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_alarm_scenario_raises_and_clears_on_demand() {
    let ae = start().await;
    let su = ae.env.login("sue", Role::Superuser, &[]).await;
    stator::sim::alarm_scenario(ae.sim(), true);
    let b = until(&ae.env, &su, "a_breaker", |a| a["state"] == "unack").await;
    assert_eq!(b["value"], false);
    until(&ae.env, &su, "a_limit", |a| a["state"] == "unack").await;
    until(&ae.env, &su, "b_limit", |a| a["state"] == "unack").await;
    stator::sim::alarm_scenario(ae.sim(), false);
    until(&ae.env, &su, "a_breaker", |a| a["state"] == "rtn_unack").await;
    until(&ae.env, &su, "b_limit", |a| a["state"] == "rtn_unack").await;
    ae.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_1000_alarms_in_one_second_reaches_a_client_in_at_most_10_frames() {
    const N: usize = 1000;
    let alarms: Vec<Value> = (0..N)
        .map(|i| {
            json!({"id": format!("f{i}"), "tag": format!("alpha/L{i}"), "condition": "high",
                   "limit": 50, "priority": "medium", "message": "flood"})
        })
        .collect();
    let env = Env::start(json!({ "alarms": alarms })).await;
    env.cache.set_tags(
        "alpha",
        (0..N)
            .map(|i| meta(&format!("L{i}"), "Float", false))
            .collect(),
    );
    env.api.start_alarms().await.unwrap();
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    // Ten batches of 100 raises, spread over one second (load generation, not synchronisation).
    for b in 0..10 {
        env.cache.update(
            "alpha",
            (b * 100..(b + 1) * 100).map(|i| stator::live::ValueUpdate {
                tag: format!("L{i}"),
                value: good(json!(80.0)),
            }),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut raised = std::collections::HashSet::new();
    let mut frames = 0;
    while raised.len() < N {
        let m = match next(&mut ws, LONG).await {
            Got::Json(m) => m,
            other => panic!(
                "expected alarm pushes, got {other:?} after {} alarms",
                raised.len()
            ),
        };
        let list = match m["type"].as_str() {
            Some("alarm") => vec![m["alarm"].clone()],
            Some("alarms") => m["alarms"].as_array().unwrap().clone(),
            _ => continue,
        };
        frames += 1;
        for a in list {
            assert_eq!(a["state"], "unack");
            raised.insert(a["id"].as_str().unwrap().to_string());
        }
    }
    assert!(frames <= 10, "{N} alarms arrived in {frames} frames");
    let (_, list) = get(&env, &t, "/api/alarms").await;
    assert_eq!(list["alarms"].as_array().unwrap().len(), N);
}
