//! Sparkplug B over a real broker: Debian's `mosquitto` on a free loopback port, Stator's engine
//! against the built-in simulator, and an independent Sparkplug implementation (Python
//! `pysparkplug`, tests/interop/sparkplug_peer.py) that decodes what Stator publishes and sends
//! the commands. The Rust side only drives and asserts on what the peer decoded.
//!
//! Without `mosquitto` (or the test venv) the test is skipped with a message, except under
//! `CI=true`, where that is a failure.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};
use stator::api::{Api, SharedEngine};
use stator::auth::Auth;
use stator::config::MqttConfig;
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::SimOptions;
use stator::store::AuditFilter;

const LONG: Duration = Duration::from_secs(20);

/// A tool the test needs, or `None` after saying why it is skipped (a panic under CI).
pub(crate) fn required(what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        let msg = format!("mqtt test: {what} not found");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{msg} (CI=true: scripts/setup.sh installs it)"
        );
        eprintln!("SKIPPED: {msg}; install it (scripts/setup.sh) to run this test");
    }
    found
}

pub(crate) fn mosquitto() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect();
    dirs.push("/usr/sbin".into());
    dirs.into_iter()
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

fn python() -> Option<PathBuf> {
    let cache = std::env::var_os("STATOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/stator")))?;
    let py = cache.join("venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import pysparkplug"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(py)
}

pub(crate) struct Proc(pub(crate) Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Mosquitto with a generated config on a free loopback port.
/// A broker and the independent Sparkplug peer subscribed to it; `None` (the test is skipped,
/// or fails under CI) without mosquitto or the test venv.
async fn broker_and_peer(dir: &std::path::Path) -> Option<(Proc, u16, Peer)> {
    let mosq = required("mosquitto (Debian package mosquitto)", mosquitto())?;
    let py = required("the test venv with pysparkplug", python())?;
    let (broker, port) = broker(&mosq, dir).await;
    let mut peer = Peer::start(&py, port);
    peer.expect("the peer's subscription", is("ready")).await;
    Some((broker, port, peer))
}

pub(crate) async fn broker(bin: &PathBuf, dir: &std::path::Path) -> (Proc, u16) {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let up = eventually(WAIT, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "mosquitto did not listen on {port}");
    (Proc(child), port)
}

/// The Python peer: its decoded messages arrive on the channel.
struct Peer {
    _proc: Proc,
    stdin: std::process::ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Peer {
    fn start(py: &PathBuf, port: u16) -> Peer {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/sparkplug_peer.py");
        let mut child = Command::new(py)
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--group",
                "plants",
                "--edge",
                "panel1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python peer");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value =
                    serde_json::from_str(&l).unwrap_or(json!({"type": "garbage", "line": l}));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Peer {
            _proc: Proc(child),
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, cmd: Value) {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next decoded message satisfying `want` (within `LONG`).
    async fn expect(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + LONG;
        loop {
            let v = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|| panic!("the peer exited while waiting for {what}"));
            assert_ne!(v["type"], "violation", "{v}");
            self.seen.push(v.clone());
            if want(&v) {
                return v;
            }
        }
    }
}

fn is(ty: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == ty
}

fn metric<'a>(msg: &'a Value, name: &str) -> Option<&'a Value> {
    msg["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

fn mqtt_cfg(port: u16, allow_writes: bool) -> MqttConfig {
    serde_json::from_value(json!({
        "url": format!("mqtt://127.0.0.1:{port}"),
        "group_id": "plants",
        "edge_node_id": "panel1",
        "allow_writes": allow_writes,
    }))
    .unwrap()
}

async fn audit_writes(auth: &Auth) -> Vec<stator::store::AuditRow> {
    auth.audit_page(
        &system(),
        AuditFilter {
            action: Some("write".into()),
            limit: Some(100),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparkplug_births_data_rebirth_commands_and_death_seen_by_an_independent_peer() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_broker, port, mut peer)) = broker_and_peer(dir.path()).await else {
        return;
    };

    // Stator: the engine against one simulated park.
    let sim = stator::sim::start(SimOptions::ephemeral()).await.unwrap();
    let addr = sim.addrs()[0];
    let cfg = Arc::new(
        ConfigBuilder::new()
            .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
            .set(
                "database",
                dir.path().join("stator.db").to_string_lossy().as_ref(),
            )
            .merge(json!({"tags": {"alpha/SP_Power_Limit_kW": {"unit": "kW", "range": [0, 100]}}}))
            .build(),
    );
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    opts.url_override = Some(HashMap::from([(
        "alpha".to_string(),
        sim.endpoints()[0].clone(),
    )]));
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    let interval = Duration::from_millis(100);
    let edge =
        stator::mqtt::start(api.clone(), mqtt_cfg(port, false), None, interval, None).unwrap();

    // Births: NBIRTH (seq 0, bdSeq, rebirth control, version), then the park as a device with
    // every tag, its Sparkplug datatype, an alias and the configured unit/range.
    let nbirth = peer.expect("NBIRTH", is("NBIRTH")).await;
    assert_eq!(nbirth["seq"], 0);
    assert!(metric(&nbirth, "bdSeq").is_some(), "{nbirth}");
    assert_eq!(
        metric(&nbirth, "Node Control/Rebirth").unwrap()["value"],
        false
    );
    assert_eq!(
        metric(&nbirth, "Properties/Stator Version").unwrap()["value"],
        env!("CARGO_PKG_VERSION")
    );
    let dbirth = peer
        .expect("DBIRTH of alpha", |v| {
            v["type"] == "DBIRTH" && v["device"] == "alpha"
        })
        .await;
    let sp = metric(&dbirth, "SP_Power_Limit_kW").expect("setpoint born");
    assert_eq!(sp["datatype"], 9, "Float");
    assert!(sp["alias"].is_u64());
    assert_eq!(sp["props"]["engUnit"], "kW");
    assert_eq!(sp["props"]["engHigh"], 100.0);
    assert_eq!(sp["props"]["readOnly"], false);
    assert_eq!(
        metric(&dbirth, "Heartbeat_ms").unwrap()["datatype"],
        3,
        "Int32"
    );
    assert_eq!(
        metric(&dbirth, "Grid_Frequency_Hz").unwrap()["datatype"],
        10,
        "Double"
    );
    assert_eq!(
        metric(&dbirth, "Breaker_Closed").unwrap()["datatype"],
        11,
        "Boolean"
    );
    assert_eq!(
        metric(&dbirth, "Energy_Total_Wh").unwrap()["datatype"],
        8,
        "UInt64"
    );
    // Arrays are packed Sparkplug arrays, read back by the independent decoder.
    let cutoff = metric(&dbirth, "CMD_Instant_Cutoff").expect("the array is born");
    assert_eq!(cutoff["datatype"], 32, "BooleanArray: {cutoff}");
    assert_eq!(
        cutoff["value"],
        cache.value("alpha", "CMD_Instant_Cutoff").unwrap().value,
        "{cutoff}"
    );
    let born = dbirth["metrics"].as_array().unwrap().len();
    // Every tag, and every alarm of the park (here only the built-in `alpha.comm`).
    assert_eq!(born, cache.snapshot(|_| true).plcs[0].nodes.len() + 1);
    assert_eq!(
        metric(&dbirth, "Alarms/alpha.comm").unwrap()["value"],
        "normal"
    );

    // Data: changed metrics by alias (the peer resolved the names through the birth), with the
    // PLC's source timestamps.
    let ddata = peer
        .expect("DDATA with the heartbeat", |v| {
            v["type"] == "DDATA" && metric(v, "Heartbeat_ms").is_some()
        })
        .await;
    // The first values after the birth may still fill in nulls; from then on only changes.
    let ddata = peer
        .expect("a later DDATA with the heartbeat", |v| {
            v["type"] == "DDATA" && v["seq"] != ddata["seq"] && metric(v, "Heartbeat_ms").is_some()
        })
        .await;
    let hb = metric(&ddata, "Heartbeat_ms").unwrap();
    assert!(hb["value"].is_i64() && hb["timestamp"].is_u64(), "{hb}");
    // Only what changed: the setpoints stand still.
    assert!(metric(&ddata, "SP_Mode").is_none(), "{ddata}");
    assert!(ddata["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["alias"].is_u64()));

    // NCMD rebirth → NBIRTH and DBIRTH again.
    peer.send(json!({"cmd": "rebirth"}));
    peer.expect("NBIRTH after NCMD", is("NBIRTH")).await;
    peer.expect("DBIRTH after NCMD", |v| v["type"] == "DBIRTH")
        .await;

    // DCMD while allow_writes is false: refused, audited (source mqtt), nothing written.
    let before = sim.value_json(0, "SP_Power_Limit_kW");
    peer.send(json!({"cmd": "dcmd", "device": "alpha", "name": "SP_Power_Limit_kW", "datatype": 9, "value": 42.5}));
    let audited = eventually(WAIT, || {
        let auth = auth.clone();
        async move { !audit_writes(&auth).await.is_empty() }
    })
    .await;
    assert!(audited, "the refused DCMD is audited");
    let rows = audit_writes(&auth).await;
    assert_eq!(rows.len(), 1, "one audited refusal");
    assert_eq!(rows[0].source, "mqtt");
    assert!(
        rows[0].result.starts_with("forbidden"),
        "{}",
        rows[0].result
    );
    assert_eq!(sim.value_json(0, "SP_Power_Limit_kW"), before);
    // Garbage on the command topics is counted, never a crash.
    peer.send(json!({"cmd": "raw", "topic": "spBv1.0/plants/NCMD/panel1", "hex": "ffffffff"}));
    peer.send(json!({"cmd": "raw", "topic": "spBv1.0/plants/DCMD/panel1/nope", "hex": "00"}));
    let ctx = stator::api::Ctx::new(None, stator::auth::Source::Cli);
    let counted = eventually(WAIT, || {
        let (api, ctx) = (api.clone(), ctx.clone());
        async move {
            let h = api.health(&ctx).await;
            h.mqtt
                .is_some_and(|m| m.rejected >= 3 && m.state == "online")
        }
    })
    .await;
    assert!(
        counted,
        "rejected commands are counted in health: {:?}",
        api.health(&ctx).await.mqtt
    );

    // A clean stop sends NDEATH; a publisher that allows writes lands a DCMD at the simulator.
    edge.shutdown().await;
    peer.expect("NDEATH", is("NDEATH")).await;
    let edge =
        stator::mqtt::start(api.clone(), mqtt_cfg(port, true), None, interval, None).unwrap();
    peer.expect("DBIRTH of the new session", |v| v["type"] == "DBIRTH")
        .await;
    peer.send(json!({"cmd": "dcmd", "device": "alpha", "name": "SP_Power_Limit_kW", "datatype": 9, "value": 42.5}));
    let landed = eventually(LONG, || {
        let v = sim.value_json(0, "SP_Power_Limit_kW");
        async move { v == Some(json!(42.5)) }
    })
    .await;
    assert!(landed, "the DCMD write reached the simulator");
    // A value of the wrong type is refused by the same coercion as every write, and audited.
    peer.send(json!({"cmd": "dcmd", "device": "alpha", "name": "SP_Mode", "datatype": 12, "value": "abc"}));
    let refused = eventually(LONG, || {
        let auth = auth.clone();
        async move {
            audit_writes(&auth).await.iter().any(|r| {
                r.source == "mqtt"
                    && r.target.as_deref() == Some("alpha/SP_Mode")
                    && r.result.starts_with("invalid")
            })
        }
    })
    .await;
    assert!(
        refused,
        "a wrong-type DCMD is refused as invalid: {:?}",
        audit_writes(&auth).await
    );
    let rows = audit_writes(&auth).await;
    assert!(
        rows.iter().any(|r| r.result == "ok" && r.source == "mqtt"),
        "{rows:?}"
    );

    // The PLC drops: DDEATH; it comes back: DBIRTH.
    sim.stop().await;
    peer.expect("DDEATH of alpha", |v| {
        v["type"] == "DDEATH" && v["device"] == "alpha"
    })
    .await;
    let sim = stator::sim::start(SimOptions {
        listen: addr.to_string(),
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    peer.expect("DBIRTH after reconnect", |v| {
        v["type"] == "DBIRTH" && v["device"] == "alpha"
    })
    .await;
    assert_eq!(cache.status("alpha"), Some(PlcStatus::Connected));
    assert!(
        !peer.seen.iter().any(|v| v["type"] == "violation"),
        "the peer saw no seq or alias violation"
    );
    edge.shutdown().await;
    engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_broker_that_is_down_is_retried_and_reported() {
    let env = Env::offline(json!({}));
    let port = free_port();
    let edge = stator::mqtt::start(
        env.api.clone(),
        mqtt_cfg(port, false),
        None,
        Duration::from_millis(100),
        None,
    )
    .unwrap();
    let ctx = stator::api::Ctx::new(None, stator::auth::Source::Cli);
    let failing = eventually(WAIT, || {
        let (api, ctx) = (env.api.clone(), ctx.clone());
        async move {
            api.health(&ctx)
                .await
                .mqtt
                .is_some_and(|m| m.error.is_some())
        }
    })
    .await;
    assert!(failing, "health reports the failing broker");
    let m = env.api.health(&ctx).await.mqtt.unwrap();
    assert_eq!(m.state, "connecting");
    edge.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_primary_host_births_wait_for_it_and_data_is_stored_and_replayed_as_historical() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_broker, port, mut peer)) = broker_and_peer(dir.path()).await else {
        return;
    };
    let sim = stator::sim::start(SimOptions::ephemeral()).await.unwrap();
    let cfg = Arc::new(
        ConfigBuilder::new()
            .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
            .set(
                "database",
                dir.path().join("stator.db").to_string_lossy().as_ref(),
            )
            .build(),
    );
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    opts.url_override = Some(HashMap::from([(
        "alpha".to_string(),
        sim.endpoints()[0].clone(),
    )]));
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth, cache.clone(), cfg.clone(), engine.clone());
    let mut m = mqtt_cfg(port, false);
    m.primary_host_id = Some("scada1".into());
    let store_dir = dir.path().join("mqtt-store");
    let edge = stator::mqtt::start(
        api.clone(),
        m,
        None,
        Duration::from_millis(100),
        Some(&store_dir),
    )
    .unwrap();
    let ctx = stator::api::Ctx::new(None, stator::auth::Source::Cli);
    let health = |api: Api| {
        let ctx = ctx.clone();
        async move { api.health(&ctx).await.mqtt.unwrap() }
    };
    let waiting = eventually(WAIT, || {
        let api = api.clone();
        let h = health;
        async move { h(api).await.state == "waiting_for_host" }
    })
    .await;
    assert!(waiting, "no births before the host is online");
    peer.send(json!({"cmd": "state", "host": "scada1", "online": true}));
    peer.expect("NBIRTH once the host is online", is("NBIRTH"))
        .await;
    peer.expect("DBIRTH", |v| v["type"] == "DBIRTH").await;
    assert!(
        !peer.seen.iter().any(|v| v["type"] == "NBIRTH"
            && peer.seen.iter().position(|x| x == v)
                < peer.seen.iter().position(|x| x["type"] == "sent")),
        "no NBIRTH before the STATE was sent"
    );
    // The host goes away: data goes to disk.
    peer.send(json!({"cmd": "state", "host": "scada1", "online": false}));
    let stored = eventually(LONG, || {
        let api = api.clone();
        let h = health;
        async move { h(api).await.stored >= 5 }
    })
    .await;
    assert!(stored, "DDATA stored while the host is offline");
    assert!(std::fs::read_dir(&store_dir).unwrap().count() > 0);
    // It returns: births, then the stored data, flagged historical, in order.
    peer.send(json!({"cmd": "state", "host": "scada1", "online": true}));
    peer.expect("NBIRTH on the host's return", is("NBIRTH"))
        .await;
    let hist = peer
        .expect("historical DDATA", |v| {
            v["type"] == "DDATA"
                && v["metrics"]
                    .as_array()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|x| x["is_historical"] == true))
        })
        .await;
    assert!(metric(&hist, "Heartbeat_ms").is_some(), "{hist}");
    let drained = eventually(LONG, || {
        let api = api.clone();
        let h = health;
        async move { h(api).await.stored == 0 }
    })
    .await;
    assert!(drained, "the store is replayed completely");
    edge.shutdown().await;
    engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_states_are_metrics_of_their_park_born_and_changed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_broker, port, mut peer)) = broker_and_peer(dir.path()).await else {
        return;
    };

    let sim = stator::sim::start(SimOptions::ephemeral()).await.unwrap();
    let high = |id: &str, limit: f64| {
        json!({"id": id, "tag": "alpha/SP_Power_Limit_kW", "condition": "high", "limit": limit,
            "priority": "high", "message": id})
    };
    let builder = ConfigBuilder::new()
        .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
        .set(
            "database",
            dir.path().join("stator.db").to_string_lossy().as_ref(),
        )
        .set("alarms", json!([high("a_high", 1100.0)]));
    let cfg = Arc::new(builder.build());
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    opts.url_override = Some(HashMap::from([(
        "alpha".to_string(),
        sim.endpoints()[0].clone(),
    )]));
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    api.start_alarms().await.unwrap();
    let interval = Duration::from_millis(100);
    let edge =
        stator::mqtt::start(api.clone(), mqtt_cfg(port, true), None, interval, None).unwrap();

    let dbirth = peer
        .expect("DBIRTH of alpha", |v| {
            v["type"] == "DBIRTH" && v["device"] == "alpha"
        })
        .await;
    let a = metric(&dbirth, "Alarms/a_high").expect("the alarm is born");
    assert_eq!(a["datatype"], 12, "String");
    assert_eq!(a["value"], "normal");
    assert_eq!(a["props"]["priority"], "high");
    assert_eq!(a["props"]["shelved"], false);
    assert_eq!(a["props"]["readOnly"], true);
    let alias = a["alias"].clone();
    assert!(metric(&dbirth, "Alarms/alpha.comm").is_some(), "{dbirth}");

    // Raised, then returned unacknowledged: each a DDATA of the alarm's alias.
    let alarm_in = |state: &'static str| {
        move |v: &Value| {
            v["type"] == "DDATA" && metric(v, "Alarms/a_high").is_some_and(|m| m["value"] == state)
        }
    };
    sim.set_value(0, "SP_Power_Limit_kW", opcua::types::Variant::Float(1200.0))
        .unwrap();
    let d = peer.expect("a_high unack", alarm_in("unack")).await;
    assert_eq!(metric(&d, "Alarms/a_high").unwrap()["alias"], alias);
    sim.set_value(0, "SP_Power_Limit_kW", opcua::types::Variant::Float(1000.0))
        .unwrap();
    peer.expect("a_high rtn_unack", alarm_in("rtn_unack")).await;

    // An alarm cannot be written by DCMD.
    peer.send(json!({"cmd": "dcmd", "device": "alpha", "name": "Alarms/a_high", "datatype": 12, "value": "normal"}));
    let ctx = stator::api::Ctx::new(None, stator::auth::Source::Cli);
    let counted = eventually(WAIT, || {
        let (api, ctx) = (api.clone(), ctx.clone());
        async move { api.health(&ctx).await.mqtt.is_some_and(|m| m.rejected >= 1) }
    })
    .await;
    assert!(counted, "the alarm DCMD is refused");

    // A new alarm in the configuration: the park is born again with it.
    let mut c = (*cfg).clone();
    c.alarms
        .push(serde_json::from_value(high("a_low_limit", 900.0)).unwrap());
    api.apply_config(c).await;
    let again = peer
        .expect("DBIRTH with the new alarm", |v| {
            v["type"] == "DBIRTH" && metric(v, "Alarms/a_low_limit").is_some()
        })
        .await;
    assert_eq!(
        metric(&again, "Alarms/a_high").unwrap()["value"],
        "rtn_unack"
    );
    assert!(
        !peer.seen.iter().any(|v| v["type"] == "violation"),
        "the peer saw no seq or alias violation"
    );
    edge.shutdown().await;
    api.alarms().stop().await;
    engine.shutdown().await;
    sim.stop().await;
}
