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
