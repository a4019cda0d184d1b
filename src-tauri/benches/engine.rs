//! Engine throughput bench: the simulator serving N load tags changing every P ms, one engine
//! subscribed to all of them, over loopback TCP. Prints the figures for docs/performance.md.
//!
//! Run: `cargo bench --no-default-features --bench engine` (env: BENCH_TAGS, BENCH_PERIOD_MS,
//! BENCH_SECONDS).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use stator::live::{Cache, PlcStatus, Quality};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{self, SimOptions};

mod support;

use support::{env, percentile};

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// User+system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // rest starts at field 3 (state), so field n is at index n - 3.
    (ticks(14 - 3) + ticks(15 - 3)) / 100.0
}

fn main() {
    let tags = env("BENCH_TAGS", 10_000) as usize;
    let period = env("BENCH_PERIOD_MS", 100);
    let seconds = env("BENCH_SECONDS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let sim = sim::start(SimOptions {
            tags,
            period_ms: period,
            ..SimOptions::ephemeral()
        })
        .await
        .expect("simulator");
        let url = sim.endpoints()[0].clone();
        let cfg = Arc::new(
            support::config::ConfigBuilder::new()
                .plc("b", &url, "Bench")
                .set("broadcast_interval_seconds", period as f64 / 1000.0)
                .set("plc_reconnect_delay_minutes", 1)
                .build(),
        );
        let cache = Cache::from_config(&cfg);
        let pki = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        let engine = Engine::start(cfg, cache.clone(), EngineOptions::new(pki.path()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while cache.status("b") != Some(PlcStatus::Connected) {
            assert!(Instant::now() < deadline, "engine did not connect");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let connected = t0.elapsed();
        let n_tags = cache.snapshot(|_| true).plcs[0].nodes.len();
        // Until every tag has a good value.
        loop {
            let s = cache.snapshot(|_| true);
            if s.plcs[0].nodes.iter().all(|n| n.quality == Quality::Good) {
                break;
            }
            assert!(Instant::now() < deadline, "not all tags got values");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let all_values = t0.elapsed();

        // Sustained phase: a listener wakes on every cache change and takes the delta.
        let mut rx = cache.subscribe();
        let mut seq = cache.seq();
        let mut changes: u64 = 0;
        let mut latencies_ms: Vec<f64> = Vec::new();
        let cpu0 = cpu_seconds();
        let received0 = engine.values_received();
        let start = Instant::now();
        let end = start + Duration::from_secs(seconds);
        while Instant::now() < end {
            if tokio::time::timeout(Duration::from_millis(500), rx.changed())
                .await
                .is_err()
            {
                continue;
            }
            let now = Utc::now();
            let d = cache.changes_since(seq, |_| true);
            seq = d.seq;
            for p in &d.plcs {
                for c in &p.changes {
                    if !c.name.starts_with("Load/") {
                        continue;
                    }
                    changes += 1;
                    if let Some(ts) = c.ts {
                        latencies_ms.push((now - ts).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
            }
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu0;
        let received = engine.values_received() - received0;
        latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let expected = tags as f64 * 1000.0 / period as f64;
        println!("engine bench: {tags} load tags changing every {period} ms, publishing interval {period} ms, loopback");
        println!("  tags discovered:                 {n_tags}");
        println!("  connect+discover+subscribe:      {:.0} ms", connected.as_secs_f64() * 1000.0);
        println!("  ... until every tag has a value: {:.0} ms", all_values.as_secs_f64() * 1000.0);
        println!("  values into the cache:           {:.0}/s (simulator produces {expected:.0}/s)", received as f64 / wall);
        println!("  changes seen by a listener:      {:.0}/s (latest per tag per wake-up)", changes as f64 / wall);
        println!("  latency change->cache p50:       {:.1} ms", percentile(&latencies_ms, 0.50));
        println!("  latency change->cache p99:       {:.1} ms", percentile(&latencies_ms, 0.99));
        println!("  latency change->cache max:       {:.1} ms", latencies_ms.last().copied().unwrap_or(f64::NAN));
        println!("  CPU (whole process: simulator + engine + listener): {:.0} % of one core", cpu / wall * 100.0);
        println!("  peak RSS (whole process):        {:.1} MiB", peak_rss_mib());
        engine.shutdown().await;
        sim.stop().await;
    });
}
