//! Alarm benchmark (docs/performance.md, "Alarms"):
//! 1. evaluation cost: 10,000 definitions (two per tag on 5,000 tags) fed 100,000 value changes
//!    through the evaluator's (park, tag) index, CPU time per second of changes = share of one
//!    core;
//! 2. flood: 1,000 alarms raised within one second through the live cache's sample seam, the
//!    evaluator task and the push task — the number of push messages one client of that park
//!    receives (each push is one WebSocket frame) and the delay from the last raise to its push;
//! 3. 100 WebSocket clients (each a logged-in viewer of the park, over the real remote server on
//!    loopback): the delay from a transition (the value entering the live cache) to its `alarm`
//!    push at each client, p50/p99 over 40 transitions × 100 clients; then the 1,000-alarm flood
//!    again, counted per client (WebSocket messages, and frames: a message over 16 KiB is sent in
//!    16 KiB fragments) with the time from the last raise to each client's last alarm.
//!
//! Run: `cargo bench --no-default-features --bench alarms` (release profile). Overrides:
//! `STATOR_BENCH_CLIENTS` (100), `STATOR_BENCH_TRANSITIONS` (40).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};
use stator::alarms::Evaluator;
use stator::config::Config;
use stator::live::{Cache, PlcStatus, Quality, TagMeta, TagValue, ValueUpdate};

mod support;

use support::env;

const TAGS: usize = 5_000;
const CHANGES: usize = 100_000;
const FLOOD: usize = 1_000;

fn config(alarms: Vec<Value>, dir: &std::path::Path) -> Config {
    support::config::ConfigBuilder::new()
        .plc("park", "opc.tcp://127.0.0.1:4840", "Park")
        .set("database", dir.join("bench.db").to_string_lossy().as_ref())
        .set("alarms", Value::Array(alarms))
        .build()
}

fn good(x: f64) -> TagValue {
    TagValue {
        value: json!(x),
        quality: Quality::Good,
        reason: None,
        ts: None,
    }
}

/// CPU time of this thread: on a shared machine wall time would count other processes' work.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Rounds of 100,000 changes; the figure is their mean.
const ROUNDS: u32 = 10;

fn evaluation_cost(dir: &std::path::Path) {
    let alarms: Vec<Value> = (0..TAGS)
        .flat_map(|i| {
            [
                json!({"id": format!("hi{i}"), "tag": format!("park/Load/T{i:05}"), "condition": "high",
                       "limit": 90.0, "deadband": 2.0, "priority": "high", "message": "high"}),
                json!({"id": format!("lo{i}"), "tag": format!("park/Load/T{i:05}"), "condition": "low",
                       "limit": 10.0, "on_delay_seconds": 1, "priority": "low", "message": "low"}),
            ]
        })
        .collect();
    let cfg = config(alarms, dir);
    let mut e = Evaluator::new(&cfg, Vec::new());
    let names: Vec<String> = (0..TAGS).map(|i| format!("Load/T{i:05}")).collect();
    // Values sweep 0..100, so alarms keep raising and clearing (the expensive path).
    let values: Vec<TagValue> = (0..CHANGES)
        .map(|k| good((k * 7 % 100) as f64 + 0.5))
        .collect();
    let now = Utc::now();
    let start = thread_cpu();
    for _ in 0..ROUNDS {
        for (k, v) in values.iter().enumerate() {
            e.sample("park", &names[k % TAGS], v, now);
            if k % 1000 == 999 {
                let _ = e.take_writes();
                let _ = e.take_changed();
            }
        }
    }
    let cpu = (thread_cpu() - start) / ROUNDS;
    let others: Vec<String> = (0..TAGS).map(|i| format!("Other/{i}")).collect();
    let unknown = thread_cpu();
    for (k, v) in values.iter().enumerate() {
        e.sample("park", &others[k % TAGS], v, now);
    }
    let miss = thread_cpu() - unknown;
    println!(
        "evaluation: {} definitions, {CHANGES} changes in {:.1} ms thread CPU (mean of {ROUNDS}) = {:.2} % of one core \
         at 100,000 changes/s (tags without alarms: {:.1} ms)",
        e.len(),
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() * 100.0,
        miss.as_secs_f64() * 1000.0,
    );
}

async fn flood(dir: &std::path::Path) {
    let alarms: Vec<Value> = (0..FLOOD)
        .map(|i| {
            json!({"id": format!("f{i}"), "tag": format!("park/Load/T{i:05}"), "condition": "high",
                         "limit": 50.0, "priority": "medium", "message": "flood"})
        })
        .collect();
    let cfg = Arc::new(config(alarms, dir));
    let store = stator::store::Store::open(&dir.join("flood.db")).unwrap();
    let auth = stator::auth::Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    cache.set_tags(
        "park",
        (0..FLOOD)
            .map(|i| TagMeta {
                name: format!("Load/T{i:05}"),
                node_id: format!("ns=4;i={}", 1000 + i),
                data_type: "Float".into(),
                array_size: None,
                writable: false,
                element_node_ids: Vec::new(),
            })
            .collect(),
    );
    cache.set_status("park", PlcStatus::Connected, None);
    let api = stator::api::Api::new(auth, cache.clone(), cfg.clone());
    api.start_alarms().await.unwrap();
    let mut rx = api.pushes().subscribe();
    // 1,000 raises spread over one second: 10 batches of 100, 100 ms apart.
    let t0 = Instant::now();
    for b in 0..10 {
        let batch: Vec<ValueUpdate> = (b * 100..(b + 1) * 100)
            .map(|i| ValueUpdate {
                tag: format!("Load/T{i:05}"),
                value: good(80.0),
            })
            .collect();
        cache.update("park", batch);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last_raise = t0.elapsed();
    let mut frames = 0;
    let mut raised = 0;
    let mut last_push = Duration::ZERO;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while raised < FLOOD {
        let Ok(Ok(p)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        let n = match p.body["type"].as_str() {
            Some("alarm") => 1,
            Some("alarms") => p.body["alarms"].as_array().map_or(0, |a| a.len()),
            _ => continue,
        };
        frames += 1;
        raised += n;
        last_push = t0.elapsed();
    }
    println!(
        "flood: {raised} of {FLOOD} alarms raised within {:.2} s reached a client as {frames} frames \
         (broadcast interval {} s); last push {:.0} ms after the last raise",
        last_raise.as_secs_f64(),
        cfg.broadcast_interval_seconds,
        (last_push.as_secs_f64() - last_raise.as_secs_f64() + 0.1).max(0.0) * 1000.0,
    );
    api.alarms().stop().await;
}

/// The `p` percentile (0–100) of sorted figures.
fn pct(sorted: &[f64], p: f64) -> f64 {
    support::percentile(sorted, p / 100.0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    evaluation_cost(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(flood(dir.path()));
    let clients = env("STATOR_BENCH_CLIENTS", 100);
    let transitions = env("STATOR_BENCH_TRANSITIONS", 40);
    rt.block_on(ws_clients::run(dir.path(), clients, transitions));
}

#[path = "alarms/ws_clients.rs"]
mod ws_clients;
