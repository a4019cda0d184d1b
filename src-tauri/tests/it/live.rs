//! The live path seen from outside: what `stator serve` logs in normal operation.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::parks;

const WAIT: Duration = Duration::from_secs(60);

/// An operator must be able to trust ERROR: connecting two parks with security None (the
/// built-in simulator, `--demo`), running and shutting down logs no ERROR and no WARN line.
#[test]
fn serve_demo_logs_no_errors_or_warnings_in_normal_operation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let text = parks(2)
        .set("pki_dir", dir.path().join("pki").to_str().unwrap())
        .merge(json!({"remote": {"listen": "127.0.0.1:0"}}))
        .text();
    std::fs::write(&cfg, text).unwrap();
    let stator = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_stator"));
        c.arg("--config")
            .arg(&cfg)
            .arg("--db")
            .arg(dir.path().join("stator.db"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env("STATOR_SECRET_BACKEND", "file")
            .env("STATOR_SECRETS_DB", dir.path().join("secrets.enc"));
        c
    };
    // A plant in operation has its first user (otherwise the first-run hints warn, rightly).
    let mut add = stator(&[
        "user",
        "add",
        "admin",
        "--role",
        "superuser",
        "--password-stdin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    assert!(add.wait().unwrap().success());

    let mut child = stator(&["serve", "--demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + WAIT;
    let connected = |lines: &[String], plc: &str| {
        lines
            .iter()
            .any(|l| l.contains("stator::plc::engine: connected") && l.contains(plc))
    };
    while !(connected(&lines, "plc=eco_solar") && connected(&lines, "plc=isiada")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "both parks connected within {WAIT:?}:\n{}",
                    lines.join("\n")
                );
            }
        }
    }
    // Shutting down closes both sessions: that is normal operation too.
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("serve stopped within {WAIT:?}");
            }
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(
        lines.iter().any(|l| l.contains("shutting down")),
        "the log was read to the end:\n{}",
        lines.join("\n")
    );
    let loud: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .collect();
    assert!(loud.is_empty(), "ERROR/WARN in normal operation: {loud:#?}");
}

/// A network change (injected through the engine's signal, which the OS watcher feeds) makes a
/// PLC that is not connected retry at once instead of after its 1 s retry delay. The PLC's port
/// accepts TCP and closes it (OPC UA fails, and an open port is no probe signal), so only the
/// network change can bring the next attempt forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_change_retries_a_lost_plc_at_once() {
    use stator::live::{Cache, PlcStatus};
    use stator::plc::{Engine, EngineOptions};
    use std::sync::{Arc, Mutex};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("opc.tcp://{}", listener.local_addr().unwrap());
    let accepts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    {
        let accepts = accepts.clone();
        std::thread::spawn(move || {
            for s in listener.incoming() {
                accepts.lock().unwrap().push(Instant::now());
                drop(s);
            }
        });
    }
    let cfg = Arc::new(
        crate::support::ConfigBuilder::new()
            .plc("p", &url, "p")
            .set("plc_reconnect_delay_minutes", 10)
            .build(),
    );
    let pki = tempfile::tempdir().unwrap();
    let cache = Cache::from_config(&cfg);
    let opts = EngineOptions::new(pki.path());
    let network = opts.network.clone();
    let engine = Engine::start(cfg, cache.clone(), opts);
    crate::support::wait_until(WAIT, "p in ERROR", || {
        cache.status("p") == Some(PlcStatus::Error)
    })
    .await;
    let count = || accepts.lock().unwrap().len();
    // Three rounds: without the signal, the next attempt would land in the 250 ms window by
    // chance at most about a quarter of the time each.
    for _ in 0..3 {
        // The task is waiting: its attempt failed and its port probe is done (no connection
        // for 150 ms).
        let limit = Instant::now() + WAIT;
        let quiet_since = loop {
            assert!(Instant::now() < limit, "the task never waits");
            let last = *accepts.lock().unwrap().last().unwrap();
            if last.elapsed() >= Duration::from_millis(150) {
                break count();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let t = Instant::now();
        network.notify();
        crate::support::wait_until(Duration::from_secs(5), "a new attempt", || {
            count() > quiet_since
        })
        .await;
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "retried {:?} after the network change",
            t.elapsed()
        );
    }
    engine.shutdown().await;
}

/// What a client is shown of one park, frame by frame: status and values must agree on the
/// wire through an outage and a reconnect (issue: fresh good values arrived while the park
/// still said CONNECTING with the outage's error text).
struct Seen {
    /// The outage's error text, once shown.
    outage_error: Option<String>,
    /// Updates of the park shown under ERROR with stale values.
    stale_updates: usize,
}

impl Seen {
    /// Checks every entry of `plc` in one update frame; returns the good heartbeat timestamps.
    fn frame(
        &mut self,
        update: &serde_json::Value,
        plc: &str,
    ) -> Vec<chrono::DateTime<chrono::Utc>> {
        let mut fresh = Vec::new();
        for p in update["plcs"].as_array().into_iter().flatten() {
            if p["id"] != plc {
                continue;
            }
            let status = p["status"].as_str().unwrap_or_default();
            let error = p["error"].as_str();
            if status == "ERROR" {
                self.outage_error = error.map(str::to_string).or(self.outage_error.take());
            }
            let changes = p["changes"].as_array().cloned().unwrap_or_default();
            for c in &changes {
                if c["quality"] == "good" {
                    assert_eq!(status, "CONNECTED", "a good value under {status}: {p}");
                    assert!(error.is_none(), "a good value with an error text: {p}");
                    if c["name"] == "Heartbeat_ms" {
                        if let Some(ts) = c["ts"].as_str() {
                            fresh.push(ts.parse().unwrap());
                        }
                    }
                } else if status == "ERROR" {
                    assert_eq!(c["reason"], "not_connected", "{p}");
                }
            }
            if status == "ERROR" && !changes.is_empty() {
                self.stale_updates += 1;
            }
            if status == "CONNECTED" {
                assert!(error.is_none(), "CONNECTED with an error text: {p}");
            }
        }
        fresh
    }
}

/// Through one park's outage and reconnect, as a remote client sees it: the outage shows as
/// ERROR with stale (`not_connected`) values; no frame shows a good value under a status other
/// than CONNECTED or next to an error text; fresh values are back within 2 s of the PLC
/// answering again (seed's `plc_reconnect_delay_minutes: 10`); the other park's values keep
/// coming during the outage and the reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_values_agree_on_the_wire_through_an_outage_and_reconnect() {
    use crate::support::*;
    use stator::api::{Api, SharedEngine};
    use stator::auth::{Auth, Role};
    use stator::live::{Cache, PlcStatus};
    use stator::plc::{Engine, EngineOptions};
    use stator::sim::SimOptions;
    use std::collections::HashMap;
    use std::sync::Arc;

    let a = stator::sim::start(SimOptions::ephemeral()).await.unwrap();
    let b = stator::sim::start(SimOptions::ephemeral()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(
        dir.path(),
        json!({"plc_reconnect_delay_minutes": 10, "broadcast_interval_seconds": 0.1}),
    ));
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    opts.url_override = Some(HashMap::from([
        ("alpha".to_string(), a.endpoints()[0].clone()),
        ("beta".to_string(), b.endpoints()[0].clone()),
    ]));
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    let mut env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    for plc in ["alpha", "beta"] {
        wait_until(WAIT, "both parks connected", || {
            env.cache.status(plc) == Some(PlcStatus::Connected)
        })
        .await;
    }
    let t = env.login("ann", Role::Viewer, &["alpha", "beta"]).await;
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    let mut seen = Seen {
        outage_error: None,
        stale_updates: 0,
    };
    // Good values of alpha first.
    while seen
        .frame(&next_of(&mut ws, "update").await, "alpha")
        .is_empty()
    {}

    // The PLC goes away; the client is told, with stale values.
    let addr = a.addrs()[0];
    a.stop().await;
    let mut beta_during_outage = 0;
    while seen.stale_updates == 0 || seen.outage_error.is_none() {
        // (The last publish may still be on its way, under CONNECTED.)
        let u = next_of(&mut ws, "update").await;
        seen.frame(&u, "alpha");
        beta_during_outage += seen.frame(&u, "beta").len();
    }
    // Down for 2 s (the scenario), the other park still updating.
    let outage = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < outage {
        if let Some(Got::Json(u)) = quiet(&mut ws, Duration::from_millis(200)).await {
            assert!(
                seen.frame(&u, "alpha").is_empty(),
                "fresh values from a stopped PLC"
            );
            beta_during_outage += seen.frame(&u, "beta").len();
        }
    }
    assert!(
        beta_during_outage >= 5,
        "beta kept updating: {beta_during_outage}"
    );

    // Back on the same port: fresh values within 2 s, under CONNECTED and no error text.
    let a = stator::sim::start(SimOptions {
        listen: addr.to_string(),
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let back = tokio::time::Instant::now();
    let back_wall = chrono::Utc::now();
    loop {
        let u = next_of(&mut ws, "update").await;
        seen.frame(&u, "beta");
        if seen.frame(&u, "alpha").iter().any(|ts| *ts >= back_wall) {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(10), "no fresh values");
    }
    let took = back.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "fresh values {took:?} after the PLC was back"
    );
    // And afterwards, frames keep agreeing.
    for _ in 0..5 {
        let u = next_of(&mut ws, "update").await;
        seen.frame(&u, "alpha");
        seen.frame(&u, "beta");
    }
    if let Some(s) = env.server.take() {
        s.shutdown().await;
    }
    engine.shutdown().await;
    a.stop().await;
    b.stop().await;
}
