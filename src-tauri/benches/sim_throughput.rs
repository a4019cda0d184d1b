//! How many value changes per second the built-in simulator delivers to one OPC UA client
//! subscribed to every `Load` tag. Prints figures; not a test.
//!
//! `cargo bench --no-default-features --bench sim_throughput [-- TAGS PERIOD_MS SECONDS]`
//! (defaults: 10000 tags, 100 ms, 5 s → the goal is TAGS * 1000 / PERIOD_MS changes/s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opcua::client::{ClientBuilder, DataChangeCallback, IdentityToken};
use opcua::crypto::SecurityPolicy;
use opcua::types::{MessageSecurityMode, MonitoredItemCreateRequest, NodeId, TimestampsToReturn};
use stator::sim::{self, SimOptions};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process (client and simulator share it) in clock ticks.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let tags = arg(1, 10_000) as usize;
    let period_ms = arg(2, 100);
    let seconds = arg(3, 5);
    let sim = sim::start(SimOptions {
        tags,
        period_ms,
        ..SimOptions::ephemeral()
    })
    .await
    .expect("simulator");
    let url = sim.endpoints()[0].clone();
    let pki = tempfile::tempdir().expect("tempdir");
    let mut client = ClientBuilder::new()
        .application_name("sim bench")
        .application_uri("urn:stator:sim-bench")
        .pki_dir(pki.path())
        .trust_server_certs(true)
        .session_retry_limit(0)
        .max_array_length(1_000_000)
        .max_message_size(64 * 1024 * 1024)
        .max_chunk_count(4096)
        .client()
        .expect("client");
    let (session, lp) = client
        .connect_to_matching_endpoint(
            (
                url.as_str(),
                SecurityPolicy::None.to_str(),
                MessageSecurityMode::None,
            ),
            IdentityToken::Anonymous,
        )
        .await
        .expect("endpoints");
    let _lp = lp.spawn();
    tokio::time::timeout(Duration::from_secs(10), session.wait_for_connection())
        .await
        .expect("connected");

    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let t = Instant::now();
    let sub = session
        .create_subscription(
            Duration::from_millis(period_ms),
            100,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |_, _| {
                c.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .await
        .expect("subscription");
    // Queue of 10 per item: two changes inside one publishing interval (timer jitter) must
    // not overwrite each other.
    let items: Vec<MonitoredItemCreateRequest> = (0..tags)
        .map(|i| {
            let mut r: MonitoredItemCreateRequest = NodeId::new(sim::NS, 100_000 + i as u32).into();
            r.requested_parameters.queue_size = 10;
            r.requested_parameters.sampling_interval = 0.0;
            r
        })
        .collect();
    let created = session
        .create_monitored_items(sub, TimestampsToReturn::Both, items)
        .await
        .expect("monitored items");
    let subscribe_s = t.elapsed().as_secs_f64();
    assert_eq!(created.len(), tags);

    tokio::time::sleep(Duration::from_secs(1)).await; // initial values settle
    let n0 = count.load(Ordering::Relaxed);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let dt = t0.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed) - n0;
    let cpu = cpu_seconds() - cpu0;
    let goal = tags as f64 * 1000.0 / period_ms as f64;
    println!("simulator throughput: {tags} tags every {period_ms} ms, one client subscription");
    println!("  subscribe {tags} items in one call: {subscribe_s:.3} s");
    println!(
        "  delivered {:.0} changes/s (goal {goal:.0}/s, {:.1} %)",
        n as f64 / dt,
        100.0 * n as f64 / dt / goal
    );
    println!(
        "  CPU (simulator + client, one process): {:.0} % of one core",
        100.0 * cpu / dt
    );
    println!("  peak RSS (simulator + client): {:.0} MiB", rss_mib());
    let _ = session.disconnect().await;
    sim.stop().await;
}
