//! `stator hub` end to end: an edge Stator (the engine against the simulator, the Sparkplug
//! publisher) → Debian `mosquitto` on a free loopback port → the built `stator hub` binary, seen
//! by a real WebSocket client and `/health` over HTTP. Skipped without `mosquitto` (a failure
//! under `CI=true`), like `mqtt.rs`.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use stator::api::{Api, SharedEngine};
use stator::auth::Auth;
use stator::live::Cache;
use stator::plc::{Engine, EngineOptions};
use stator::sim::SimOptions;
use tokio_tungstenite::tungstenite::Message;

use crate::mqtt::{broker, free_port, mosquitto, required, Proc};
use crate::support::*;

const LONG: Duration = Duration::from_secs(30);

/// Runs the built binary with this test's config, database and file secret store.
fn stator(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stator"));
    c.arg("--config")
        .arg(dir.join("hub.json"))
        .arg("--db")
        .arg(dir.join("hub.db"))
        .args(args)
        .env("STATOR_SECRET_BACKEND", "file")
        .env("STATOR_SECRETS_DB", dir.join("secrets.enc"));
    c
}

fn add_user(dir: &Path, name: &str, role: &str, parks: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    if !parks.is_empty() {
        args.extend(["--parks", parks]);
    }
    let mut child = stator(dir, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(child.wait().unwrap().success(), "user add {name}");
}

/// `/health` of the hub (`null` while it does not answer yet).
async fn health(addr: SocketAddr) -> Value {
    let Some(text) = exchange(addr, &request(addr, "GET", "/health", &[], None)).await else {
        return Value::Null;
    };
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// A logged-in WebSocket client of the hub (its first snapshot returned).
async fn client(addr: SocketAddr, user: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    let r = call(
        &mut ws,
        json!({"id": 1, "op": "login", "username": user, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    let snap = next_of(&mut ws, "snapshot").await;
    (ws, snap)
}

/// The next message satisfying `want` within `LONG` (updates, snapshots, replies).
async fn until(ws: &mut Ws, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        match m {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if want(&v) {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the hub closed the socket waiting for {what}: {other:?}"),
        }
    }
}

/// `status` of `park` in a snapshot or update, when it is in it.
fn status_of<'a>(m: &'a Value, park: &str) -> Option<&'a str> {
    m["plcs"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == park)?
        .get("status")?
        .as_str()
}

/// A temp dir with mosquitto on a free port, or `None` (skipped) without mosquitto.
async fn with_broker() -> Option<(tempfile::TempDir, Proc, u16)> {
    let mosq = required("mosquitto (Debian package mosquitto)", mosquitto())?;
    let dir = tempfile::tempdir().unwrap();
    let (b, port) = broker(&mosq, dir.path()).await;
    Some((dir, b, port))
}

/// A `write` request over the socket; its reply.
async fn write(ws: &mut Ws, plc: &str, node: &str, value: Value) -> Value {
    call(
        ws,
        json!({"id": format!("w-{node}"), "op": "write", "plc": plc, "node": node, "value": value}),
    )
    .await
}

/// The edge side: two simulated parks, the engine, the Sparkplug publisher (`panel1` in group
/// `plants`, DCMD writes allowed); the unit/range of one tag is configured here only, so the hub
/// can only learn it from the DBIRTH.
struct EdgeRig {
    sim: stator::sim::SimHandle,
    cache: Cache,
    engine: SharedEngine,
    edge: stator::mqtt::MqttHandle,
}

async fn edge_rig(d: &Path, port: u16) -> EdgeRig {
    let sim = stator::sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let edge_cfg = Arc::new(
        ConfigBuilder::new()
            .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
            .plc("beta", "opc.tcp://127.0.0.1:48402", "Beta")
            .merge(json!({"tags": {"alpha/SP_Power_Limit_kW": {"unit": "kW", "range": [0, 100]}}}))
            .build(),
    );
    let store = stator::store::Store::open(&d.join("edge.db")).unwrap();
    let cache = Cache::from_config(&edge_cfg);
    let mut opts = EngineOptions::new(d.join("pki"));
    opts.url_override = Some(HashMap::from([
        ("alpha".to_string(), sim.endpoints()[0].clone()),
        ("beta".to_string(), sim.endpoints()[1].clone()),
    ]));
    let engine = SharedEngine::new(Engine::start(edge_cfg.clone(), cache.clone(), opts));
    let edge_api = Api::with_writer(
        Auth::new(store, &edge_cfg),
        cache.clone(),
        edge_cfg.clone(),
        engine.clone(),
    );
    let mqtt: stator::config::MqttConfig = serde_json::from_value(json!({
        "url": format!("mqtt://127.0.0.1:{port}"), "group_id": "plants", "edge_node_id": "panel1",
        "allow_writes": true,
    }))
    .unwrap();
    let edge = stator::mqtt::start(edge_api, mqtt, None, Duration::from_millis(100), None).unwrap();
    let connected = eventually(LONG, || {
        let c = cache.clone();
        async move {
            c.status("alpha") == Some(stator::live::PlcStatus::Connected)
                && c.status("beta") == Some(stator::live::PlcStatus::Connected)
        }
    })
    .await;
    assert!(connected, "the edge connects to both simulated parks");
    EdgeRig {
        sim,
        cache,
        engine,
        edge,
    }
}

/// The `stator hub` binary with the parks `alpha` and `beta`, remote writes allowed (so a
/// refusal is the hub's own), `hub` merged in, users `op` (operator of alpha) and `root`
/// (superuser); returns once it feeds both parks.
async fn start_hub(d: &Path, port: u16, hub: Value) -> (Proc, SocketAddr) {
    let hub_cfg = ConfigBuilder::new()
        .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
        .plc("beta", "opc.tcp://127.0.0.1:48402", "Beta")
        .merge(json!({"remote": {"enabled": true, "allow_remote_writes": true}, "hub": hub}));
    std::fs::write(d.join("hub.json"), hub_cfg.text()).unwrap();
    add_user(d, "op", "operator", "alpha");
    add_user(d, "root", "superuser", "");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let proc = Proc(
        stator(
            d,
            &[
                "hub",
                "--mqtt",
                &format!("mqtt://127.0.0.1:{port}"),
                "--group",
                "plants",
                "--listen",
                &addr.to_string(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("hub.log")).unwrap())
        .spawn()
        .unwrap(),
    );
    let fed = eventually(LONG, || async move {
        let h = health(addr).await;
        h["hub"]["state"] == "online" && h["hub"]["parks_fed"] == 2
    })
    .await;
    assert!(
        fed,
        "the hub feeds both parks: {} / log: {}",
        health(addr).await,
        std::fs::read_to_string(d.join("hub.log")).unwrap_or_default()
    );
    (proc, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_shows_the_edge_parks_live_read_only_and_filtered_by_grants() {
    let Some((dir, _broker, port)) = with_broker().await else {
        return;
    };
    let d = dir.path();
    let EdgeRig {
        sim,
        cache,
        engine,
        edge,
    } = edge_rig(d, port).await;
    let addrs = sim.addrs();
    // Started after the edge was born: the hub must ask for a rebirth to see anything.
    let (_hub, addr) = start_hub(d, port, json!({})).await;
    let h = health(addr).await;
    assert!(h["hub"]["rebirths_requested"].as_u64() >= Some(1), "{h}");
    assert_eq!(h["hub"]["edge_nodes"], 1);
    assert_eq!(h["parks_connected"], 2);

    // An operator granted alpha sees alpha only, with the edge's tags, unit and range.
    let (mut ws, snap) = client(addr, "op").await;
    let plcs = snap["plcs"].as_array().unwrap();
    assert_eq!(plcs.len(), 1, "park grants filter at the hub: {snap}");
    assert_eq!(plcs[0]["id"], "alpha");
    assert_eq!(plcs[0]["status"], "CONNECTED");
    let sp = plcs[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "SP_Power_Limit_kW")
        .expect("the setpoint is a tag at the hub")
        .clone();
    assert_eq!(sp["unit"], "kW");
    assert_eq!(sp["range"], json!([0.0, 100.0]));
    assert_eq!(sp["type"], "Float");
    let edge_tags = cache.snapshot(|p| p == "alpha").plcs[0].nodes.len();
    assert_eq!(plcs[0]["nodes"].as_array().unwrap().len(), edge_tags);
    // An array travels as a packed Sparkplug BooleanArray and is an array again at the hub.
    let cutoff = plcs[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "CMD_Instant_Cutoff")
        .expect("the array is a tag at the hub")
        .clone();
    let at_edge = cache.value("alpha", "CMD_Instant_Cutoff").unwrap().value;
    assert_eq!(cutoff["type"], "Boolean", "{cutoff}");
    assert_eq!(cutoff["value"], at_edge, "{cutoff}");
    assert_eq!(
        cutoff["array_size"].as_u64(),
        at_edge.as_array().map(|a| a.len() as u64),
        "{cutoff}"
    );

    // Live values change at the hub as they change at the simulator.
    let hb0 = plcs[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "Heartbeat_ms")
        .unwrap()["value"]
        .clone();
    until(&mut ws, "a heartbeat change at the hub", |m| {
        m["type"] == "update"
            && m["plcs"].as_array().is_some_and(|ps| {
                ps.iter().all(|p| p["id"] == "alpha")
                    && ps.iter().any(|p| {
                        p["changes"].as_array().is_some_and(|c| {
                            c.iter()
                                .any(|c| c["name"] == "Heartbeat_ms" && c["value"] != hb0)
                        })
                    })
            })
    })
    .await;

    // A write at the hub: refused with `forbidden` (hub.allow_writes is false), audited,
    // nothing reaches the simulator.
    let before = sim.value_json(0, "SP_Power_Limit_kW");
    let r = write(&mut ws, "alpha", "SP_Power_Limit_kW", json!(42.5)).await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let (mut admin, _) = client(addr, "root").await;
    let a = call(
        &mut admin,
        json!({"id": 2, "op": "audit_page", "action": "write", "limit": 10}),
    )
    .await;
    let rows = a["result"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{a}");
    assert_eq!(rows[0]["actor"], "op");
    assert_eq!(rows[0]["target"], "alpha/SP_Power_Limit_kW");
    assert!(
        rows[0]["result"].as_str().unwrap().starts_with("forbidden"),
        "{a}"
    );
    assert_eq!(sim.value_json(0, "SP_Power_Limit_kW"), before);

    // Garbage on the group's topics is counted; the hub carries on.
    let mut o = rumqttc::MqttOptions::new("garbage", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (g, mut el) = rumqttc::AsyncClient::new(o, 10);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    for (t, p) in [
        ("spBv1.0/plants/DDATA/panel1/alpha", vec![0xff, 0xff, 0xff]),
        (
            "spBv1.0/plants/DBIRTH/panel1",
            b"not a device topic".to_vec(),
        ),
    ] {
        g.publish(t, rumqttc::QoS::AtLeastOnce, false, p)
            .await
            .unwrap();
    }
    let counted = eventually(LONG, || async move {
        let h = health(addr).await;
        h["hub"]["malformed"].as_u64() >= Some(1) && h["hub"]["foreign"].as_u64() >= Some(1)
    })
    .await;
    assert!(counted, "malformed/foreign counted: {}", health(addr).await);
    let later = until(&mut ws, "values still flowing after the garbage", |m| {
        m["type"] == "update" && status_of(m, "alpha") == Some("CONNECTED")
    })
    .await;
    assert!(later["plcs"][0]["changes"].as_array().is_some());

    // The PLCs drop: the edge sends DDEATH, the hub shows the park disconnected.
    sim.stop().await;
    until(&mut ws, "alpha disconnected at the hub", |m| {
        status_of(m, "alpha") == Some("DISCONNECTED")
    })
    .await;
    // They come back: DBIRTH, connected again at the hub.
    let sim = stator::sim::start(SimOptions {
        listen: addrs[0].to_string(),
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    until(&mut ws, "alpha connected again at the hub", |m| {
        status_of(m, "alpha") == Some("CONNECTED")
    })
    .await;
    let h = health(addr).await;
    assert_eq!(h["hub"]["collisions"], 0, "{h}");
    assert_eq!(h["hub"]["dropped"], 0, "{h}");

    // The edge node goes away cleanly (NDEATH): every park of it is disconnected at the hub.
    edge.shutdown().await;
    let gone = eventually(LONG, || async move {
        let h = health(addr).await;
        h["parks_connected"] == 0 && h["hub"]["edge_nodes"] == 0
    })
    .await;
    assert!(gone, "NDEATH disconnects the parks: {}", health(addr).await);
    engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_allows_writes_sends_them_to_the_edge_as_dcmd() {
    let Some((dir, _broker, port)) = with_broker().await else {
        return;
    };
    let d = dir.path();
    let rig = edge_rig(d, port).await;
    let (_hub, addr) = start_hub(d, port, json!({"allow_writes": true})).await;
    let (mut ws, _) = client(addr, "op").await;
    // The edge (its own mqtt.allow_writes is true) writes through its write path: the value
    // lands at the simulator and comes back to the hub in the next DDATA.
    let r = write(&mut ws, "alpha", "SP_Power_Limit_kW", json!(42.5)).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["value"], 42.5);
    let landed = eventually(LONG, || {
        let v = rig.sim.value_json(0, "SP_Power_Limit_kW");
        async move { v == Some(json!(42.5)) }
    })
    .await;
    assert!(landed, "the DCMD reached the simulator through the edge");
    until(&mut ws, "the written value back at the hub", |m| {
        m["type"] == "update"
            && m["plcs"][0]["changes"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["name"] == "SP_Power_Limit_kW" && c["value"] == 42.5)
            })
    })
    .await;
    // Grants still hold (beta is not the operator's), and a park's element write is refused.
    let r = write(&mut ws, "beta", "SP_Power_Limit_kW", json!(1)).await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
    let r = write(&mut ws, "alpha", "CMD_Instant_Cutoff[3]", json!(true)).await;
    assert_eq!(r["error"]["code"], "invalid", "{r}");
    rig.edge.shutdown().await;
    rig.engine.shutdown().await;
    rig.sim.stop().await;
}

#[tokio::test]
async fn a_hub_without_its_broker_runs_retries_and_says_so_and_bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = ConfigBuilder::new()
        .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
        .merge(json!({"remote": {"enabled": true}}));
    std::fs::write(d.join("hub.json"), cfg.text()).unwrap();
    for (args, why) in [
        (
            vec!["hub", "--mqtt", "http://127.0.0.1:1883", "--group", "g"],
            "--mqtt",
        ),
        (
            vec!["hub", "--mqtt", "mqtt://127.0.0.1:1883", "--group", "a/b"],
            "--group",
        ),
        (
            vec!["hub", "--mqtt", "mqtt://127.0.0.1:1883"],
            "--group is required",
        ),
    ] {
        let o = stator(d, &args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _hub = Proc(
        stator(
            d,
            &[
                "hub",
                "--mqtt",
                &format!("mqtt://127.0.0.1:{}", free_port()),
                "--group",
                "plants",
                "--listen",
                &addr.to_string(),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let reported = eventually(LONG, || async move {
        let h = health(addr).await;
        h["hub"]["state"] == "connecting" && h["hub"]["error"].is_string()
    })
    .await;
    assert!(
        reported,
        "health says the broker is down: {}",
        health(addr).await
    );
    let h = health(addr).await;
    assert_eq!(h["subsystems"]["hub"]["state"], "connecting");
    assert_eq!(
        h["parks"],
        json!([]),
        "no park names for an anonymous caller"
    );
    assert_eq!(h["parks_connected"], 0);
}
