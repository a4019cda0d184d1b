//! The acquisition engine against the built-in simulator, over real OPC UA/TCP.
//!
//! Every wait polls a condition with a bounded timeout; nothing sleeps to synchronise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opcua::types::{DateTime, Variant};
use serde_json::{json, Value};
use stator::code::ErrorCode;
use stator::config::Config;
use stator::live::{Cache, PlcStatus, Quality};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{self, SimHandle, SimOptions};

use crate::support::{wait_until, ConfigBuilder};

const WAIT: Duration = Duration::from_secs(10);

/// `plcs` as (id, url, more keys of its entry), reconnecting after 3 s; `extra` merged at the
/// top level.
fn config(plcs: &[(&str, &str, Value)], extra: Value) -> Arc<Config> {
    let mut b = ConfigBuilder::new()
        .set("plc_reconnect_delay_minutes", 0.05)
        .merge(extra);
    for (id, url, more) in plcs {
        let mut entry = json!({"id": id, "url": url, "name": id});
        if let (Value::Object(e), Value::Object(m)) = (&mut entry, more.clone()) {
            e.extend(m);
        }
        b = b.plc_entry(entry);
    }
    Arc::new(b.build())
}

async fn sim_with(opts: SimOptions) -> SimHandle {
    sim::start(opts).await.expect("simulator starts")
}

struct Rig {
    engine: Engine,
    cache: Cache,
    _pki: tempfile::TempDir,
}

fn start_engine(cfg: Arc<Config>) -> Rig {
    let pki = tempfile::tempdir().unwrap();
    let cache = Cache::from_config(&cfg);
    let engine = Engine::start(cfg, cache.clone(), EngineOptions::new(pki.path()));
    Rig {
        engine,
        cache,
        _pki: pki,
    }
}

async fn connected(cache: &Cache, plc: &str) {
    wait_until(WAIT, &format!("{plc} CONNECTED"), || {
        cache.status(plc) == Some(PlcStatus::Connected)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_every_variable_with_name_type_and_writability() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let url = sim.endpoints()[0].clone();
    let rig = start_engine(config(&[("p", &url, json!({}))], json!({})));
    connected(&rig.cache, "p").await;

    let expected = sim.tags();
    let snap = rig.cache.snapshot(|_| true);
    let nodes = &snap.plcs[0].nodes;
    assert_eq!(
        nodes.len(),
        expected.len(),
        "one tag per variable, arrays once"
    );
    assert!(snap.plcs[0].server_name.is_some(), "server name read");
    for t in &expected {
        let m = rig
            .cache
            .tag_meta("p", &t.name)
            .unwrap_or_else(|| panic!("{} discovered", t.name));
        assert_eq!(m.data_type, t.sim_type.name(), "{}", t.name);
        assert_eq!(m.array_size, t.array_len.map(|n| n as u32), "{}", t.name);
        assert_eq!(m.writable, t.writable, "{}", t.name);
        assert_eq!(m.node_id, t.node_id().to_string(), "{}", t.name);
    }
    assert!(
        nodes.iter().all(|n| !n.name.contains('[')),
        "no element tags"
    );
    let cutoff = rig.cache.tag_meta("p", "CMD_Instant_Cutoff").unwrap();
    assert_eq!(cutoff.element_node_ids.len(), 8);
    assert!(rig.cache.tag_meta("p", "Meteo/Irradiance_W_m2").is_some());

    // `stator discover` uses the same code and sees the same tags, with values.
    let found = stator::plc::discover::discover_url(&url, "ns=4;i=2")
        .await
        .unwrap();
    let json = stator::cli::discover::to_json(&found);
    let tags = json["tags"].as_array().unwrap();
    assert_eq!(tags.len(), expected.len());
    let energy = tags
        .iter()
        .find(|t| t["name"] == "Energy_Total_Wh")
        .unwrap();
    assert_eq!(energy["type"], "UInt64");
    // The counter starts at 2^53 + 1 and only grows while the simulator runs: it must come as
    // an exact decimal string (a JSON number would lose precision beyond 2^53).
    let wh: u64 = energy["value"]
        .as_str()
        .expect("beyond 2^53 as string")
        .parse()
        .unwrap();
    assert!(wh >= 9_007_199_254_740_993, "{wh}");
    let c = tags
        .iter()
        .find(|t| t["name"] == "CMD_Instant_Cutoff")
        .unwrap();
    assert_eq!(c["array_size"], 8);
    assert_eq!(c["writable"], true);
    assert_eq!(c["value"].as_array().map(|a| a.len()), Some(8));
    assert!(stator::cli::discover::to_table(&found).contains("Meteo/Irradiance_W_m2"));

    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_delivers_changes_with_quality_and_timestamps() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;

    sim.set_value(0, "SP_Mode", Variant::Int16(7)).unwrap();
    wait_until(WAIT, "SP_Mode = 7 in the cache", || {
        rig.cache
            .value("p", "SP_Mode")
            .is_some_and(|v| v.value == json!(7) && v.quality == Quality::Good)
    })
    .await;
    let v = rig.cache.value("p", "SP_Mode").unwrap();
    assert!(v.ts.is_some() && v.reason.is_none());

    // The simulated process keeps changing on its own.
    let first = rig.cache.value("p", "Heartbeat_ms").unwrap().value;
    wait_until(WAIT, "Heartbeat_ms changes", || {
        rig.cache.value("p", "Heartbeat_ms").unwrap().value != first
    })
    .await;
    // Arrays arrive as lists.
    sim.set_value(0, "CMD_Instant_Cutoff[2]", Variant::Boolean(true))
        .unwrap();
    wait_until(WAIT, "cutoff[2] true", || {
        rig.cache.value("p", "CMD_Instant_Cutoff").unwrap().value[2] == json!(true)
    })
    .await;

    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_plc_goes_stale_and_recovers_by_itself() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let addr = sim.addrs()[0];
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;
    sim.set_value(0, "SP_Mode", Variant::Int16(5)).unwrap();
    wait_until(WAIT, "SP_Mode = 5", || {
        rig.cache.value("p", "SP_Mode").unwrap().value == json!(5)
    })
    .await;

    sim.stop().await;
    wait_until(
        Duration::from_secs(5),
        "ERROR/DISCONNECTED after the drop",
        || {
            matches!(
                rig.cache.status("p"),
                Some(PlcStatus::Error | PlcStatus::Disconnected | PlcStatus::Connecting)
            )
        },
    )
    .await;
    let v = rig.cache.value("p", "SP_Mode").unwrap();
    assert_eq!(v.value, json!(5), "last value kept");
    assert_eq!(v.quality, Quality::Bad);
    assert_eq!(v.reason.as_deref(), Some("not_connected"));
    wait_until(Duration::from_secs(5), "an error text", || {
        rig.cache.snapshot(|_| true).plcs[0].error.is_some()
    })
    .await;

    // The same port again: the engine reconnects, rediscovers and gets fresh values.
    let sim = sim_with(SimOptions {
        listen: addr.to_string(),
        ..SimOptions::ephemeral()
    })
    .await;
    connected(&rig.cache, "p").await;
    sim.set_value(0, "SP_Mode", Variant::Int16(9)).unwrap();
    wait_until(WAIT, "fresh SP_Mode = 9 after reconnect", || {
        rig.cache
            .value("p", "SP_Mode")
            .is_some_and(|v| v.value == json!(9) && v.quality == Quality::Good)
    })
    .await;
    let first = rig.cache.value("p", "Heartbeat_ms").unwrap().value;
    wait_until(WAIT, "heartbeat flows after reconnect", || {
        rig.cache.value("p", "Heartbeat_ms").unwrap().value != first
    })
    .await;

    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_mode_reads_in_bulk() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(
        &[(
            "p",
            &sim.endpoints()[0],
            json!({"acquisition": "poll", "sampling_interval_seconds": 0.2}),
        )],
        json!({}),
    ));
    connected(&rig.cache, "p").await;
    sim.set_value(0, "SP_Ramp_Rate_kW_s", Variant::Int32(-42))
        .unwrap();
    wait_until(WAIT, "polled value", || {
        rig.cache.value("p", "SP_Ramp_Rate_kW_s").unwrap().value == json!(-42)
    })
    .await;
    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_subscriptions_fall_back_to_polling() {
    let sim = sim::start_with(
        SimOptions::ephemeral(),
        sim::SimExtras {
            refuse_subscriptions: true,
        },
    )
    .await
    .unwrap();
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;
    sim.set_value(0, "SP_Alarm_Mask", Variant::UInt16(0x00F0))
        .unwrap();
    wait_until(WAIT, "value via the polling fallback", || {
        rig.cache.value("p", "SP_Alarm_Mask").unwrap().value == json!(0x00F0)
    })
    .await;
    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_endpoint_with_user_and_password() {
    let sim = sim_with(SimOptions {
        secure_user: Some(("operator".into(), "s3cret!".into())),
        ..SimOptions::ephemeral()
    })
    .await;
    let url = sim.endpoints()[0].clone();
    let secure = json!({
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "username": "operator"
    });
    let cfg = config(
        &[("good", &url, secure.clone()), ("bad", &url, secure)],
        json!({}),
    );
    let pki = tempfile::tempdir().unwrap();
    let cache = Cache::from_config(&cfg);
    let opts = EngineOptions {
        password: Arc::new(|id: &str| {
            Ok(Some(
                if id == "good" { "s3cret!" } else { "wrong" }.to_string(),
            ))
        }),
        ..EngineOptions::new(pki.path())
    };
    let engine = Engine::start(cfg, cache.clone(), opts);
    let error_of = |plc: &str| {
        cache
            .snapshot(|p| p == plc)
            .plcs
            .first()
            .and_then(|p| p.error.clone())
            .unwrap_or_default()
    };
    // The simulator's certificate is unknown: refused, with the way to trust it.
    wait_until(
        Duration::from_secs(20),
        "untrusted-certificate error",
        || error_of("good").contains("stator certs trust good"),
    )
    .await;
    assert!(
        pki.path().join("own").join("cert.der").exists(),
        "client cert created"
    );
    stator::plc::certs::trust(pki.path(), "good").unwrap();
    wait_until(Duration::from_secs(20), "good CONNECTED", || {
        cache.status("good") == Some(PlcStatus::Connected)
    })
    .await;
    assert!(cache.tag_meta("good", "SP_Mode").is_some());
    // Same server, same (now trusted) certificate, wrong password: a clear final error.
    wait_until(Duration::from_secs(20), "wrong-password error", || {
        error_of("bad").contains("user name or password")
    })
    .await;
    assert_ne!(cache.status("bad"), Some(PlcStatus::Connected));
    engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_every_type_and_reads_back_from_the_plc() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;
    let big = 9_007_199_254_740_993i64;
    let cases: Vec<(&str, Value, Value, Variant)> = vec![
        (
            "SP_Power_Limit_kW",
            json!(123.5),
            json!(123.5),
            Variant::Float(123.5),
        ),
        (
            "SP_Power_Factor",
            json!(0.95),
            json!(0.95),
            Variant::Double(0.95),
        ),
        ("SP_Mode", json!(-3), json!(-3), Variant::Int16(-3)),
        (
            "SP_Enable",
            json!(false),
            json!(false),
            Variant::Boolean(false),
        ),
        (
            "SP_Note",
            json!("héllo"),
            json!("héllo"),
            Variant::String("héllo".into()),
        ),
        (
            "SP_Ramp_Rate_kW_s",
            json!(-70000),
            json!(-70000),
            Variant::Int32(-70000),
        ),
        (
            "SP_Alarm_Mask",
            json!(65535),
            json!(65535),
            Variant::UInt16(65535),
        ),
        ("SP_Priority", json!(7), json!(7), Variant::Byte(7)),
        (
            "SP_Energy_Offset_Wh",
            json!(big.to_string()),
            json!(big.to_string()),
            Variant::Int64(big),
        ),
        (
            "SP_Maintenance_Due",
            json!("2026-12-01T08:00:00Z"),
            json!("2026-12-01T08:00:00.000Z"),
            Variant::from(DateTime::ymd_hms(2026, 12, 1, 8, 0, 0)),
        ),
    ];
    for (tag, value, back, variant) in cases {
        let got = rig.engine.write("p", tag, &value, None).await;
        assert_eq!(got, Ok(back), "{tag}");
        assert_eq!(sim.value(0, tag), Some(variant), "{tag} in the simulator");
    }
    // A whole array.
    let pattern = json!([true, false, true, false, false, false, false, true]);
    assert_eq!(
        rig.engine
            .write("p", "CMD_Instant_Cutoff", &pattern, None)
            .await,
        Ok(pattern.clone())
    );
    assert_eq!(sim.value_json(0, "CMD_Instant_Cutoff"), Some(pattern));
    // One element, through the element child node the simulator exposes.
    assert_eq!(
        rig.engine
            .write("p", "CMD_Instant_Cutoff[3]", &json!(true), None)
            .await,
        Ok(json!(true))
    );
    assert_eq!(
        sim.value(0, "CMD_Instant_Cutoff[3]"),
        Some(Variant::Boolean(true))
    );
    assert_eq!(
        sim.value(0, "CMD_Instant_Cutoff[2]"),
        Some(Variant::Boolean(true))
    );
    assert_eq!(
        sim.value(0, "CMD_Instant_Cutoff[1]"),
        Some(Variant::Boolean(false))
    );
    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_write_uses_an_index_range_without_element_children() {
    let sim = sim_with(SimOptions {
        array_elements: false,
        ..SimOptions::ephemeral()
    })
    .await;
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;
    let meta = rig.cache.tag_meta("p", "CMD_Instant_Cutoff").unwrap();
    assert!(meta.element_node_ids.is_empty());
    assert_eq!(meta.array_size, Some(8));
    assert_eq!(
        rig.engine
            .write("p", "CMD_Instant_Cutoff[5]", &json!(true), None)
            .await,
        Ok(json!(true))
    );
    assert_eq!(
        sim.value(0, "CMD_Instant_Cutoff[5]"),
        Some(Variant::Boolean(true))
    );
    assert_eq!(
        sim.value(0, "CMD_Instant_Cutoff[4]"),
        Some(Variant::Boolean(false))
    );
    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_and_refused_writes_are_rejected_and_never_reach_the_plc() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(
        &[("p", &sim.endpoints()[0], json!({}))],
        json!({"tags": {"p/SP_Power_Limit_kW": {"unit": "kW", "range": [0, 100]}}}),
    ));
    connected(&rig.cache, "p").await;
    let w = |tag: &'static str, v: Value| {
        let e = &rig.engine;
        async move { e.write("p", tag, &v, None).await.unwrap_err() }
    };
    let before = sim.value(0, "SP_Mode");
    for (v, needle) in [
        (json!("12"), "expected a whole number"),
        (json!(70000), "out of range for Int16"),
        (json!(1.5), "not a whole number"),
        (json!(null), "got null"),
    ] {
        let e = w("SP_Mode", v).await;
        assert_eq!(e.code(), "invalid");
        assert!(e.to_string().contains(needle), "{e}");
    }
    assert_eq!(sim.value(0, "SP_Mode"), before, "nothing written");
    let e = w("SP_Power_Limit_kW", json!(150)).await;
    assert_eq!(e.code(), "invalid");
    assert!(e.to_string().contains("out of range 0..100 kW"), "{e}");
    let e = w("CMD_Instant_Cutoff", json!([true, false])).await;
    assert_eq!(e.code(), "invalid");
    let e = w("SP_Note", json!("x".repeat(255))).await;
    assert_eq!(e.code(), "invalid");
    // The PLC itself refuses a read-only variable.
    let e = w("Active_Power_kW", json!(1.0)).await;
    assert_eq!(e.code(), "forbidden", "{e}");
    assert!(e.plc_status().is_some_and(|s| s.starts_with("Bad")), "{e}");
    assert_eq!(w("No_Such_Tag", json!(1)).await.code(), "not_found");
    assert_eq!(
        w("CMD_Instant_Cutoff[8]", json!(true)).await.code(),
        "not_found"
    );
    rig.engine.shutdown().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_while_the_plc_is_down_is_not_connected() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(&[("p", &sim.endpoints()[0], json!({}))], json!({})));
    connected(&rig.cache, "p").await;
    sim.stop().await;
    wait_until(Duration::from_secs(5), "PLC down", || {
        rig.cache.status("p") != Some(PlcStatus::Connected)
    })
    .await;
    let e = rig
        .engine
        .write("p", "SP_Mode", &json!(1), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_connected", "{e}");
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_plc_slows_no_other_and_shutdown_is_bounded() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    // A closed port (refused at once) and an address that never answers (black hole).
    let rig = start_engine(config(
        &[
            ("dead", "opc.tcp://127.0.0.1:1", json!({})),
            ("hole", "opc.tcp://10.255.255.1:4840", json!({})),
            ("p", &sim.endpoints()[0], json!({})),
        ],
        json!({}),
    ));
    connected(&rig.cache, "p").await;
    wait_until(WAIT, "dead PLC in ERROR", || {
        rig.cache.status("dead") == Some(PlcStatus::Error)
    })
    .await;
    assert_ne!(rig.cache.status("hole"), Some(PlcStatus::Connected));
    let t = Instant::now();
    rig.engine.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert_eq!(rig.cache.status("p"), Some(PlcStatus::Disconnected));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_command_prints_the_json_contract() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    let url = sim.endpoints()[0].clone();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_stator"))
            .args(["discover", "--url", &url, "--root", "ns=4;i=2", "--json"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("discover finishes")
    .expect("discover runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let tags = v["tags"].as_array().expect("tags list");
    assert_eq!(tags.len(), sim.tags().len());
    for t in tags {
        for key in ["name", "node_id", "type", "array_size", "writable", "value"] {
            assert!(t.get(key).is_some(), "{key} in {t}");
        }
    }
    let sp = tags.iter().find(|t| t["name"] == "SP_Mode").unwrap();
    assert_eq!(sp["type"], "Int16");
    assert_eq!(sp["writable"], true);
    assert_eq!(sp["array_size"], Value::Null);

    // A PLC that is not there: one clear line, exit code 1.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["discover", "--url", "opc.tcp://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: opc.tcp://127.0.0.1:1"), "{err}");
    sim.stop().await;
}

/// The PLC is switched off for `outage` (the scenario), then back on the same port; returns how
/// long after it answered again the first fresh good heartbeat was in the cache. Status and
/// values must agree: no fresh good value under a status other than CONNECTED.
async fn outage_and_recovery(rig: &Rig, plc: &str, sim: SimHandle, outage: Duration) -> Duration {
    let addr = sim.addrs()[0];
    sim.stop().await;
    wait_until(Duration::from_secs(5), "ERROR after the drop", || {
        rig.cache.status(plc) == Some(PlcStatus::Error)
    })
    .await;
    tokio::time::sleep(outage).await;
    let sim = sim_with(SimOptions {
        listen: addr.to_string(),
        ..SimOptions::ephemeral()
    })
    .await;
    let back = Instant::now();
    let mut rx = rig.cache.subscribe();
    loop {
        let v = rig.cache.value(plc, "Heartbeat_ms").unwrap();
        let fresh = v.quality == Quality::Good
            && v.ts
                .is_some_and(|ts| ts > chrono::Utc::now() - chrono::Duration::seconds(1));
        if fresh {
            let snap = rig.cache.snapshot(|p| p == plc);
            assert_eq!(snap.plcs[0].status, PlcStatus::Connected, "status agrees");
            assert_eq!(snap.plcs[0].error, None, "no stale error text");
            break;
        }
        assert!(back.elapsed() < WAIT, "no fresh values after reconnect");
        let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
    }
    let took = back.elapsed();
    sim.stop().await;
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plc_back_after_five_seconds_has_fresh_values_within_two_seconds() {
    let sim = sim_with(SimOptions::ephemeral()).await;
    // The seed's cap of 10 minutes: the first minutes of an outage still retry quickly.
    let cfg = Arc::new(
        ConfigBuilder::new()
            .plc("p", &sim.endpoints()[0], "p")
            .set("plc_reconnect_delay_minutes", 10)
            .build(),
    );
    let rig = start_engine(cfg);
    connected(&rig.cache, "p").await;
    let took = outage_and_recovery(&rig, "p", sim, Duration::from_secs(5)).await;
    assert!(
        took <= Duration::from_secs(2),
        "fresh values {took:?} after the PLC answered again"
    );
    rig.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_park_keeps_updating_while_another_is_down_and_reconnecting() {
    let a = sim_with(SimOptions::ephemeral()).await;
    let b = sim_with(SimOptions::ephemeral()).await;
    let rig = start_engine(config(
        &[
            ("a", &a.endpoints()[0], json!({})),
            ("b", &b.endpoints()[0], json!({})),
        ],
        json!({}),
    ));
    connected(&rig.cache, "a").await;
    connected(&rig.cache, "b").await;
    // Watch b's heartbeat (changes every 100 ms) through a's outage and reconnect.
    let cache = rig.cache.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut last = cache.value("b", "Heartbeat_ms").unwrap().value;
            let mut at = Instant::now();
            let mut worst = Duration::ZERO;
            let mut rx = cache.subscribe();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = tokio::time::timeout(Duration::from_millis(20), rx.changed()).await;
                let v = cache.value("b", "Heartbeat_ms").unwrap().value;
                if v != last {
                    worst = worst.max(at.elapsed());
                    last = v;
                    at = Instant::now();
                }
            }
            worst.max(at.elapsed())
        })
    };
    let took = outage_and_recovery(&rig, "a", a, Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = watcher.await.unwrap();
    assert!(
        worst < Duration::from_millis(600),
        "b paused for {worst:?} during a's outage (a back after {took:?})"
    );
    assert_eq!(rig.cache.status("b"), Some(PlcStatus::Connected));
    rig.engine.shutdown().await;
    b.stop().await;
}
