//! Remote fan-out benchmark: N concurrent WebSocket clients on one simulated park with 2,000
//! tags changing every 100 ms, broadcast interval 0.1 s, everything on loopback.
//!
//! The server side (simulator + engine + remote server, as `stator serve --demo` runs them) is
//! a child process (this binary re-executed), so its CPU and peak RSS are measured without the
//! clients. Latency = client receipt time − the source timestamp the simulator gave the change.
//!
//! Run: `cargo bench --no-default-features --bench remote` (release profile);
//! `STATOR_BENCH_CLIENTS=100,1000` and `STATOR_BENCH_SECONDS=10` override the defaults;
//! `STATOR_BENCH_ENCODING=compact` makes the clients negotiate the compact update encoding
//! (`stator.v1.compact`) instead of the default JSON. `STATOR_BENCH_DUMP=<dir>` writes one
//! 2,000-change update in both encodings (`update-json.json`, `update-compact.json`) for the
//! browser decode bench (`ui/bench/decode.mjs`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

mod support;

const TAGS: usize = 2000;
const PERIOD_MS: u64 = 100;
const CHILD_ENV: &str = "STATOR_BENCH_REMOTE_CHILD";

fn main() {
    if std::env::var(CHILD_ENV).is_ok() {
        child();
        return;
    }
    let clients: Vec<usize> = std::env::var("STATOR_BENCH_CLIENTS")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = std::env::var("STATOR_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    println!(
        "remote bench: 1 park, {TAGS} tags changing every {PERIOD_MS} ms, broadcast 0.1 s, {secs} s per run"
    );
    for n in clients {
        run(n, Duration::from_secs(secs));
    }
}

/// Server side: simulator + engine + remote server in this process until stdin closes.
fn child() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sim = stator::sim::start(stator::sim::SimOptions {
            plcs: 1,
            tags: TAGS,
            period_ms: PERIOD_MS,
            ..stator::sim::SimOptions::ephemeral()
        })
        .await
        .unwrap();
        let cfg = Arc::new(support::park_config("opc.tcp://127.0.0.1:4840").build());
        let (auth, token) = support::bench_user(&cfg, dir.path()).await;
        let cache = stator::live::Cache::from_config(&cfg);
        let mut opts = stator::plc::EngineOptions::new(dir.path().join("pki"));
        opts.url_override = Some(HashMap::from([(
            "park".to_string(),
            sim.endpoints()[0].clone(),
        )]));
        let engine = stator::api::SharedEngine::new(stator::plc::Engine::start(
            cfg.clone(),
            cache.clone(),
            opts,
        ));
        let api = stator::api::Api::with_writer(auth, cache.clone(), cfg.clone(), engine.clone());
        let scfg = stator::remote::ServerConfig::from_config(&cfg).unwrap();
        let server = stator::remote::start(api, scfg).await.unwrap();
        // Wait until the park is connected and its load tags arrive.
        let deadline = Instant::now() + Duration::from_secs(30);
        while cache.snapshot(|_| true).plcs[0].nodes.len() < TAGS {
            assert!(Instant::now() < deadline, "the park did not connect");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // One update as the fan-out sees it: everything that changed in 300 ms (all load tags).
        let s0 = cache.seq();
        tokio::time::sleep(Duration::from_millis(300)).await;
        encode_figures(&cache, s0);
        println!("READY {} {}", server.local_addr(), token);
        std::io::stdout().flush().unwrap();
        support::until_stdin_closes().await;
        server.shutdown().await;
        engine.shutdown().await;
        sim.stop().await;
    });
}

/// Bytes per tag and encode time of one update carrying every tag, in both encodings (printed
/// to stderr so the READY line stays first on stdout).
fn encode_figures(cache: &stator::live::Cache, since: u64) {
    let d = cache.changes_since(since, |_| true);
    let tags: usize = d.plcs.iter().map(|p| p.changes.len()).sum();
    let dump = std::env::var("STATOR_BENCH_DUMP").ok();
    for (name, compact) in [("json", false), ("compact", true)] {
        let text = stator::remote::encode_update(compact, d.seq, &d.plcs);
        let n = 50;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(stator::remote::encode_update(compact, d.seq, &d.plcs));
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        eprintln!(
            "encode {name:>7}: {tags} changes, {} bytes ({:.1} bytes/tag), {us:.0} us per update",
            text.len(),
            text.len() as f64 / tags as f64
        );
        if let Some(dir) = &dump {
            std::fs::write(format!("{dir}/update-{name}.json"), &text).unwrap();
            if !compact {
                let snap = serde_json::to_string(&cache.snapshot(|_| true)).unwrap();
                std::fs::write(format!("{dir}/snapshot.json"), snap).unwrap();
            }
        }
    }
}

#[derive(Default)]
struct Stats {
    msgs: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicU64,
    lat_us: Mutex<Vec<u64>>,
    measuring: std::sync::atomic::AtomicBool,
}

/// Source timestamp of the first change in an update frame (cheap: no full parse).
/// In the compact encoding the first change is `[index,value,"ts"…`; the load tags' values are
/// numbers, so the first quote after `"c":[[` opens the timestamp.
fn first_ts(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let i = match text.find("\"ts\":\"") {
        Some(i) => i + 6,
        None => {
            let c = text.find("\"c\":[[")? + 6;
            text[c..].find('"')? + c + 1
        }
    };
    let end = text[i..].find('"')? + i;
    chrono::DateTime::parse_from_rfc3339(&text[i..end])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn run(n: usize, window: Duration) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(CHILD_ENV, "1")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace().skip(1);
    let addr = parts
        .next()
        .expect("child did not report READY")
        .to_string();
    let token = parts.next().unwrap().to_string();

    let compact = std::env::var("STATOR_BENCH_ENCODING").is_ok_and(|e| e == "compact");
    let protocols = if compact {
        format!("{}, bearer, {token}", stator::remote::COMPACT_PROTOCOL)
    } else {
        format!("bearer, {token}")
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stats = Arc::new(Stats::default());
    let (connected, cpu, elapsed) = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
            req.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(&protocols).unwrap(),
            );
            let (ws, _) = tokio_tungstenite::connect_async(req)
                .await
                .expect("connect");
            let stats = stats.clone();
            tasks.push(tokio::spawn(async move {
                let (_tx, mut rx) = ws.split();
                while let Some(m) = rx.next().await {
                    match m {
                        Ok(Message::Text(t)) => {
                            let now = chrono::Utc::now();
                            if !stats.measuring.load(Ordering::Relaxed) {
                                continue;
                            }
                            stats.msgs.fetch_add(1, Ordering::Relaxed);
                            stats.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                            if t.as_str().starts_with("{\"type\":\"update\"") {
                                if let Some(ts) = first_ts(t.as_str()) {
                                    let us = (now - ts).num_microseconds().unwrap_or(0).max(0);
                                    stats.lat_us.lock().push(us as u64);
                                }
                            }
                        }
                        Ok(Message::Close(_)) | Err(_) => {
                            stats.closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(_) => {}
                    }
                }
            }));
        }
        // Warm-up, then the measured window.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let c0 = support::proc_cpu_ticks(pid);
        let t0 = Instant::now();
        stats.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(window).await;
        stats.measuring.store(false, Ordering::Relaxed);
        let elapsed = t0.elapsed().as_secs_f64();
        let cpu = (support::proc_cpu_ticks(pid) - c0) as f64 / support::TICKS_PER_SECOND / elapsed
            * 100.0;
        let alive = n as u64 - stats.closed.load(Ordering::Relaxed);
        for t in tasks {
            t.abort();
        }
        (alive, cpu, elapsed)
    });
    let hwm = support::proc_hwm_kib(pid);
    drop(child.stdin.take());
    let _ = child.wait();
    let mut lat = std::mem::take(&mut *stats.lat_us.lock());
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        lat[((lat.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
    };
    let msgs = stats.msgs.load(Ordering::Relaxed) as f64 / elapsed;
    let bytes = stats.bytes.load(Ordering::Relaxed) as f64 / elapsed;
    let per_update = stats.bytes.load(Ordering::Relaxed) as f64
        / (stats.msgs.load(Ordering::Relaxed) as f64).max(1.0);
    println!(
        "encoding={} clients={n:>5} served={connected:>5} updates/s={msgs:>9.0} MB/s={:>8.1} latency p50={:>7.1} ms p99={:>7.1} ms server CPU={cpu:>5.0}% server peak RSS={:>5.0} MB bytes/update={per_update:.0}",
        if compact { "compact" } else { "json" },
        bytes / 1e6,
        pct(0.5),
        pct(0.99),
        hwm as f64 / 1024.0
    );
}
