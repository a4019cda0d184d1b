//! Live path benchmark: Stator's engine + remote server against its own simulator, with the
//! rows of the FUXA comparison (docs/performance.md, "Live path").
//!
//! Three processes, so each figure belongs to the right one:
//! - the simulator (this binary re-executed, role `sim`): one park with the 27 standard tags
//!   plus `STATOR_BENCH_TAGS` extra Float tags, all changing every 100 ms;
//! - the HMI (role `hmi`): engine + remote server as `stator serve` runs them, broadcast interval
//!   0.1 s; its CPU and RSS are the figures;
//! - this process: the WebSocket clients.
//!
//! Rows per tag count: start → all values at a client (HMI spawned → one client holds a good
//! value of every tag), HMI CPU and peak RSS with 1 and 100 clients, change → client p50/p99
//! (receipt − the simulator's source timestamp of the heartbeat, every heartbeat change in every
//! frame of every client), heartbeat changes seen per client per second against the changes the
//! simulator made (it counts them itself), and recovery: the simulator is stopped for 5 s and
//! restarted on the same port; from its READY to a client holding a fresh good heartbeat.
//!
//! Run: `cargo bench --no-default-features --bench live` (release profile). Knobs:
//! `STATOR_BENCH_TAGS=0,1994` (extra tags: 27 and 2,021 in all), `STATOR_BENCH_SECONDS=10`,
//! `STATOR_BENCH_RUNS=1`, `STATOR_BENCH_HISTORY=1` (the HMI also records every value in the
//! historian, as `stator serve` does by default; off by default so the rows compare with FUXA,
//! which has no historian).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

mod support;

const ROLE_ENV: &str = "STATOR_BENCH_LIVE_ROLE";
const PERIOD_MS: u64 = 100;
const HEARTBEAT: &str = "Heartbeat_ms";
const OUTAGE: Duration = Duration::from_secs(5);

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("sim") => return sim_role(),
        Ok("hmi") => return hmi_role(),
        _ => {}
    }
    let extra: Vec<usize> = env_list("STATOR_BENCH_TAGS", "0,1994");
    let secs: u64 = env_list("STATOR_BENCH_SECONDS", "10")[0] as u64;
    let runs: usize = env_list("STATOR_BENCH_RUNS", "1")[0];
    println!(
        "live bench: 1 park, tags change every {PERIOD_MS} ms, broadcast 0.1 s, {secs} s windows"
    );
    for &n in &extra {
        for r in 0..runs {
            run(n, Duration::from_secs(secs), r + 1);
        }
    }
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// A child process of this binary in `role`, with a line reader on its stdout.
fn spawn(role: &str, envs: &[(&str, String)]) -> (Child, BufReader<ChildStdout>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(ROLE_ENV, role)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn read_line(r: &mut BufReader<ChildStdout>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s.trim().to_string()
}

/// Simulator role: prints `READY <addr>`, then answers each stdin line with the number of
/// heartbeat changes it made so far; stops when stdin closes.
fn sim_role() {
    let listen = std::env::var("SIM_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let tags: usize = std::env::var("SIM_TAGS").unwrap().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sim = Arc::new(
            stator::sim::start(stator::sim::SimOptions {
                listen,
                plcs: 1,
                tags,
                period_ms: PERIOD_MS,
                ..stator::sim::SimOptions::ephemeral()
            })
            .await
            .unwrap(),
        );
        // Count the heartbeat's changes (it changes once per process step).
        let changes = Arc::new(AtomicU64::new(0));
        let counter = {
            let (sim, changes) = (sim.clone(), changes.clone());
            tokio::spawn(async move {
                let mut last = sim.value(0, HEARTBEAT);
                let mut tick = tokio::time::interval(Duration::from_millis(5));
                loop {
                    tick.tick().await;
                    let v = sim.value(0, HEARTBEAT);
                    if v != last {
                        changes.fetch_add(1, Ordering::Relaxed);
                        last = v;
                    }
                }
            })
        };
        println!("READY {}", sim.addrs()[0]);
        std::io::stdout().flush().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        std::thread::spawn(move || {
            let mut s = String::new();
            while std::io::stdin()
                .read_line(&mut s)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                if tx.blocking_send(()).is_err() {
                    break;
                }
                s.clear();
            }
        });
        while rx.recv().await.is_some() {
            println!("{}", changes.load(Ordering::Relaxed));
            std::io::stdout().flush().unwrap();
        }
        counter.abort();
        if let Ok(sim) = Arc::try_unwrap(sim) {
            sim.stop().await;
        }
    });
}

/// HMI role: engine + remote server; prints `READY <addr> <token>` once it listens; runs until
/// stdin closes.
fn hmi_role() {
    let url = std::env::var("PLC_URL").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // With STATOR_BENCH_HISTORY=1 the historian records every value (10 Hz: its minimum
        // interval lowered from the default 1 s), as `stator serve` would: the difference in
        // the HMI's CPU is its cost.
        let history = std::env::var("STATOR_BENCH_HISTORY").is_ok_and(|v| v == "1");
        let cfg = Arc::new(
            support::park_config(&url)
                .set("plc_reconnect_delay_minutes", 10)
                .merge(serde_json::json!({"history": {"min_interval_seconds": 0.1}}))
                .build(),
        );
        let cache = stator::live::Cache::from_config(&cfg);
        let historian = history.then(|| {
            let h = stator::history::Historian::open(&dir.path().join("history.db"), &cfg.history)
                .unwrap();
            h.record(cache.clone(), cfg.clone());
            h
        });
        // The engine starts at once, as `stator serve` does; the bench user is set up meanwhile.
        let engine = stator::api::SharedEngine::new(stator::plc::Engine::start(
            cfg.clone(),
            cache.clone(),
            stator::plc::EngineOptions::new(dir.path().join("pki")),
        ));
        let (auth, token) = support::bench_user(&cfg, dir.path()).await;
        let api = stator::api::Api::with_writer(auth, cache.clone(), cfg.clone(), engine.clone());
        let scfg = stator::remote::ServerConfig::from_config(&cfg).unwrap();
        let server = stator::remote::start(api, scfg).await.unwrap();
        let probe = Arc::new(Mutex::new(Probe::default()));
        let watcher = tokio::spawn(probe_cache(cache.clone(), probe.clone()));
        println!("READY {} {}", server.local_addr(), token);
        std::io::stdout().flush().unwrap();
        // Each stdin line: print what the probe saw since the last one.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        std::thread::spawn(move || {
            let mut s = String::new();
            while std::io::stdin()
                .read_line(&mut s)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                if tx.blocking_send(()).is_err() {
                    break;
                }
                s.clear();
            }
        });
        while rx.recv().await.is_some() {
            let p = std::mem::take(&mut *probe.lock());
            let (lat, gaps) = (pcts(p.lat_us), pcts(p.gaps_us));
            println!(
                "{} {} {} {} {} {}",
                lat.0, lat.1, lat.2, gaps.0, gaps.1, gaps.2
            );
            std::io::stdout().flush().unwrap();
            probe.lock().last = p.last;
        }
        watcher.abort();
        server.shutdown().await;
        engine.shutdown().await;
        if let Some(h) = historian {
            h.shutdown().await;
        }
    });
}

/// What the HMI's own cache saw of the heartbeat (inside the HMI process): the part of the
/// latency before the fan-out (the PLC's publishing, OPC UA, the engine), and the gaps between
/// the publishes that brought its changes.
#[derive(Default)]
struct Probe {
    lat_us: Vec<u64>,
    gaps_us: Vec<u64>,
    last: Option<Instant>,
}

/// Records every new good heartbeat value the cache takes: source ts → in the cache, and the
/// time since the previous one arrived.
async fn probe_cache(cache: stator::live::Cache, probe: Arc<Mutex<Probe>>) {
    let mut rx = cache.subscribe();
    let mut last = Value::Null;
    while rx.changed().await.is_ok() {
        let Some(v) = cache.value("park", HEARTBEAT) else {
            continue;
        };
        if v.quality != stator::live::Quality::Good || v.value == last {
            continue;
        }
        let (now, at) = (Utc::now(), Instant::now());
        last = v.value;
        let mut p = probe.lock();
        if let Some(ts) = v.ts {
            p.lat_us
                .push((now - ts).num_microseconds().unwrap_or(0).max(0) as u64);
        }
        if let Some(prev) = p.last.replace(at) {
            p.gaps_us.push((at - prev).as_micros() as u64);
        }
    }
}

/// p50, p99 and max in ms (NaN when empty).
fn pcts(mut v: Vec<u64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

/// What the clients saw.
#[derive(Default)]
struct Stats {
    measuring: AtomicBool,
    /// Heartbeat changes (distinct values, per client) seen while measuring.
    heartbeats: AtomicU64,
    lat_us: Mutex<Vec<u64>>,
    /// Newest heartbeat a client holds with good quality: (source ts, receipt).
    newest: Mutex<Option<(DateTime<Utc>, Instant)>>,
}

/// `(value, ts)` of every heartbeat change in an update frame, by a cheap scan: the changes of
/// one tag sit together, so only the region after the first match is searched.
fn heartbeats(text: &str) -> Vec<(String, Option<DateTime<Utc>>, bool)> {
    let key = "{\"name\":\"Heartbeat_ms\",";
    let mut out = Vec::new();
    let Some(first) = text.find(key) else {
        return out;
    };
    let region = &text[first..text.len().min(first + 2000)];
    for (i, _) in region.match_indices(key) {
        let rest = &region[i + key.len()..];
        let end = rest.find('}').unwrap_or(rest.len());
        let obj = &rest[..end];
        let value = obj
            .strip_prefix("\"value\":")
            .and_then(|v| v.split(',').next())
            .unwrap_or("")
            .to_string();
        let ts = obj.find("\"ts\":\"").and_then(|j| {
            let s = &obj[j + 6..];
            let e = s.find('"')?;
            DateTime::parse_from_rfc3339(&s[..e])
                .ok()
                .map(|t| t.with_timezone(&Utc))
        });
        out.push((value, ts, obj.contains("\"quality\":\"good\"")));
    }
    out
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str, token: &str) -> Ws {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&format!("bearer, {token}")).unwrap(),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}

/// Reads until the client holds a good value of every tag; returns the number of tags.
async fn until_all_values(ws: &mut Ws, tags: usize) -> usize {
    let mut have: HashSet<String> = HashSet::new();
    let mut all: HashSet<String> = HashSet::new();
    while all.len() < tags || have.len() < all.len() {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("connection closed during start-up");
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        let good = |n: &Value| n["quality"] == "good" && !n["value"].is_null();
        if v["type"] == "snapshot" {
            for n in v["plcs"][0]["nodes"].as_array().into_iter().flatten() {
                let name = n["name"].as_str().unwrap().to_string();
                all.insert(name.clone());
                if good(n) {
                    have.insert(name);
                }
            }
        } else if v["type"] == "update" {
            for p in v["plcs"].as_array().into_iter().flatten() {
                if p["rediscovered"] == true {
                    // The tag list arrived after the snapshot: ask for a fresh one.
                    use futures::SinkExt;
                    ws.send(Message::Text(r#"{"id":1,"op":"snapshot"}"#.into()))
                        .await
                        .unwrap();
                }
                for c in p["changes"].as_array().into_iter().flatten() {
                    if good(c) {
                        have.insert(c["name"].as_str().unwrap().to_string());
                    }
                }
            }
        }
    }
    all.len()
}

/// A client that records heartbeat latency and changes while `stats.measuring`.
fn listen(mut ws: Ws, stats: Arc<Stats>, track_newest: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = String::new();
        while let Some(Ok(m)) = ws.next().await {
            let Message::Text(t) = m else { continue };
            let now = Utc::now();
            let at = Instant::now();
            if !t.as_str().starts_with("{\"type\":\"update\"") {
                continue;
            }
            for (value, ts, good) in heartbeats(t.as_str()) {
                if track_newest && good {
                    if let Some(ts) = ts {
                        *stats.newest.lock() = Some((ts, at));
                    }
                }
                if value == last {
                    continue;
                }
                last = value;
                if stats.measuring.load(Ordering::Relaxed) {
                    stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                    if let Some(ts) = ts {
                        let us = (now - ts).num_microseconds().unwrap_or(0).max(0);
                        stats.lat_us.lock().push(us as u64);
                    }
                }
            }
        }
    })
}

struct Window {
    cpu: f64,
    p50: f64,
    p99: f64,
    max: f64,
    seen_per_client: f64,
    offered: f64,
    /// Source ts → the HMI's cache: p50, p99, max (ms).
    cache: (f64, f64, f64),
    /// Gaps between the heartbeat's arrivals in the cache: p50, p99, max (ms).
    gaps: (f64, f64, f64),
    /// VmRSS of the HMI after the window (MB).
    rss: f64,
}

type Proc = (Child, BufReader<ChildStdout>);

/// Asks the HMI's probe for what it saw since the last question.
fn ask_probe(hmi: &mut Proc) -> ((f64, f64, f64), (f64, f64, f64)) {
    writeln!(hmi.0.stdin.as_mut().unwrap()).unwrap();
    let line = read_line(&mut hmi.1);
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(f64::NAN))
        .collect();
    ((f[0], f[1], f[2]), (f[3], f[4], f[5]))
}

/// Measures one window with `clients` listening.
async fn window(
    stats: &Stats,
    hmi: &mut Proc,
    sim: &mut Proc,
    clients: usize,
    len: Duration,
) -> Window {
    let pid = hmi.0.id();
    stats.lat_us.lock().clear();
    stats.heartbeats.store(0, Ordering::Relaxed);
    let count = |sim: &mut Proc| -> u64 {
        writeln!(sim.0.stdin.as_mut().unwrap()).unwrap();
        read_line(&mut sim.1).parse().unwrap()
    };
    let h0 = count(sim);
    ask_probe(hmi);
    let c0 = support::proc_cpu_ticks(pid);
    let t0 = Instant::now();
    stats.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(len).await;
    stats.measuring.store(false, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (support::proc_cpu_ticks(pid) - c0) as f64 / support::TICKS_PER_SECOND / secs * 100.0;
    let (cache, gaps) = ask_probe(hmi);
    let offered = (count(sim) - h0) as f64 / secs;
    let mut lat = std::mem::take(&mut *stats.lat_us.lock());
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            f64::NAN
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
        }
    };
    Window {
        cpu,
        p50: pct(0.5),
        p99: pct(0.99),
        max: pct(1.0),
        seen_per_client: stats.heartbeats.load(Ordering::Relaxed) as f64 / secs / clients as f64,
        offered,
        cache,
        gaps,
        rss: support::proc_rss_kib(pid) as f64 / 1024.0,
    }
}

fn start_sim(extra: usize, listen: &str) -> (Proc, String, Instant) {
    let mut sim = spawn(
        "sim",
        &[
            ("SIM_TAGS", extra.to_string()),
            ("SIM_LISTEN", listen.to_string()),
        ],
    );
    let line = read_line(&mut sim.1);
    let ready = Instant::now();
    let addr = line
        .strip_prefix("READY ")
        .expect("simulator did not start")
        .to_string();
    (sim, addr, ready)
}

fn run(extra: usize, len: Duration, rep: usize) {
    let tags = 27 + extra;
    let (mut sim, sim_addr, _) = start_sim(extra, "127.0.0.1:0");
    let started = Instant::now();
    let history = std::env::var("STATOR_BENCH_HISTORY").unwrap_or_default();
    let mut hmi = spawn(
        "hmi",
        &[
            ("PLC_URL", format!("opc.tcp://{sim_addr}")),
            ("STATOR_BENCH_HISTORY", history),
        ],
    );
    let line = read_line(&mut hmi.1);
    let mut parts = line.split_whitespace().skip(1);
    let addr = parts.next().expect("HMI did not start").to_string();
    let token = parts.next().unwrap().to_string();
    let pid = hmi.0.id();
    let hmi = &mut hmi;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // Start → all values at one client.
        let mut first = connect(&addr, &token).await;
        let n = until_all_values(&mut first, tags).await;
        let start_s = started.elapsed().as_secs_f64();
        let stats = Arc::new(Stats::default());
        let mut tasks = vec![listen(first, stats.clone(), true)];
        tokio::time::sleep(Duration::from_secs(2)).await;
        let one = window(&stats, hmi, &mut sim, 1, len).await;
        let rss_one = support::proc_hwm_kib(pid) as f64 / 1024.0;
        for _ in 1..100 {
            let ws = connect(&addr, &token).await;
            tasks.push(listen(ws, stats.clone(), false));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let hundred = window(&stats, hmi, &mut sim, 100, len).await;
        let rss_hundred = support::proc_hwm_kib(pid) as f64 / 1024.0;
        // Recovery: the PLC off for 5 s, back on the same port.
        drop(sim.0.stdin.take());
        let _ = sim.0.wait();
        tokio::time::sleep(OUTAGE).await;
        let (sim2, _, ready) = start_sim(extra, &sim_addr);
        let ready_utc = Utc::now();
        let deadline = Instant::now() + Duration::from_secs(120);
        let recovery = loop {
            if let Some((ts, at)) = *stats.newest.lock() {
                if ts > ready_utc {
                    break at.saturating_duration_since(ready).as_secs_f64();
                }
            }
            assert!(Instant::now() < deadline, "no fresh values after the restart");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        for t in tasks {
            t.abort();
        }
        println!("\n## {n} tags (run {rep})");
        println!("| figure | 1 client | 100 clients |\n|---|---|---|");
        println!("| start → all values at a client | {start_s:.2} s | |");
        println!("| CPU of the HMI process | {:.1} % | {:.1} % |", one.cpu, hundred.cpu);
        println!("| peak RSS of the HMI process | {rss_one:.0} MB | {rss_hundred:.0} MB |");
        println!("| RSS of the HMI process after the window | {:.0} MB | {:.0} MB |", one.rss, hundred.rss);
        println!("| change → client p50 | {:.0} ms | {:.0} ms |", one.p50, hundred.p50);
        println!("| change → client p99 | {:.0} ms | {:.0} ms |", one.p99, hundred.p99);
        println!("| change → client max | {:.0} ms | {:.0} ms |", one.max, hundred.max);
        let trio = |t: (f64, f64, f64)| format!("{:.0} / {:.0} / {:.0} ms", t.0, t.1, t.2);
        println!(
            "| change → HMI cache p50 / p99 / max | {} | {} |",
            trio(one.cache),
            trio(hundred.cache)
        );
        println!(
            "| heartbeat arrivals in the HMI cache, gap p50 / p99 / max | {} | {} |",
            trio(one.gaps),
            trio(hundred.gaps)
        );
        println!(
            "| heartbeat changes seen per client / offered (per s) | {:.1} / {:.1} | {:.1} / {:.1} |",
            one.seen_per_client, one.offered, hundred.seen_per_client, hundred.offered
        );
        println!("| PLC back (READY) → fresh values at a client | {recovery:.2} s | |");
        let mut sim2 = sim2;
        drop(sim2.0.stdin.take());
        let _ = sim2.0.wait();
    });
    drop(hmi.0.stdin.take());
    let _ = hmi.0.wait();
}
