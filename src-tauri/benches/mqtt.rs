//! MQTT Sparkplug B bench: the simulator with N load tags changing every P ms → engine → the
//! Sparkplug publisher → Debian `mosquitto` on loopback → a subscriber in this process that
//! decodes every DDATA. Prints the PLC change → subscriber latency (from the metric's PLC
//! source timestamp) and the CPU the publisher adds (this process with and without it; the
//! subscriber's decoding is included, so it is an upper bound) for docs/performance.md.
//!
//! Run: `cargo bench --no-default-features --bench mqtt` (env: BENCH_TAGS, BENCH_PERIOD_MS,
//! BENCH_SECONDS). Needs `mosquitto` (scripts/setup.sh installs it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use stator::api::Api;
use stator::auth::Auth;
use stator::live::{Cache, PlcStatus};
use stator::mqtt::sparkplug_b::Payload;
use stator::plc::{Engine, EngineOptions};
use stator::sim::{self, SimOptions};

mod support;

use support::{env, percentile};

fn main() {
    let tags = env("BENCH_TAGS", 2_000) as usize;
    let period = env("BENCH_PERIOD_MS", 100);
    let seconds = env("BENCH_SECONDS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut broker, port) = support::mosquitto(dir.path(), "");
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
        let engine = Engine::start(cfg.clone(), cache.clone(), EngineOptions::new(dir.path().join("pki")));
        let deadline = Instant::now() + Duration::from_secs(60);
        while cache.status("b") != Some(PlcStatus::Connected) {
            assert!(Instant::now() < deadline, "engine did not connect");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let store = stator::store::Store::open(&dir.path().join("stator.db")).expect("store");
        let api = Api::new(Auth::new(store, &cfg), cache.clone(), cfg.clone());
        let me = std::process::id();

        // Baseline: engine only.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let c0 = support::proc_cpu_ticks(me);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let base = (support::proc_cpu_ticks(me) - c0) as f64 / support::TICKS_PER_SECOND / seconds as f64;

        // The subscriber.
        let mut o = MqttOptions::new("bench-sub", "127.0.0.1", port);
        o.set_max_packet_size(64 << 20, 1 << 20);
        let (sub, mut el) = AsyncClient::new(o, 64);
        sub.subscribe("spBv1.0/bench/#", QoS::AtMostOnce).await.expect("subscribe");
        let lat = Arc::new(parking_lot::Mutex::new((Vec::<f64>::new(), 0u64, false)));
        let l2 = lat.clone();
        tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                if let Event::Incoming(Packet::Publish(p)) = ev {
                    if !p.topic.contains("/DDATA/") {
                        continue;
                    }
                    let now = chrono::Utc::now().timestamp_millis() as f64;
                    let Ok(pl) = Payload::decode(p.payload.as_ref()) else { continue };
                    let mut g = l2.lock();
                    if !g.2 {
                        continue;
                    }
                    for m in pl.metrics {
                        g.1 += 1;
                        if let Some(ts) = m.timestamp {
                            g.0.push(now - ts as f64);
                        }
                    }
                }
            }
        });
        let mcfg: stator::config::MqttConfig = serde_json::from_value(serde_json::json!({
            "url": format!("mqtt://127.0.0.1:{port}"), "group_id": "bench", "edge_node_id": "e1"
        }))
        .expect("mqtt config");
        let edge = stator::mqtt::start(api.clone(), mcfg, None, Duration::from_millis(period), None)
            .expect("publisher");
        tokio::time::sleep(Duration::from_secs(2)).await;
        lat.lock().2 = true;
        let c0 = support::proc_cpu_ticks(me);
        let b0 = support::proc_cpu_ticks(broker.id());
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let with = (support::proc_cpu_ticks(me) - c0) as f64 / support::TICKS_PER_SECOND / seconds as f64;
        let brk = (support::proc_cpu_ticks(broker.id()) - b0) as f64 / support::TICKS_PER_SECOND / seconds as f64;
        let (mut l, n) = {
            let mut g = lat.lock();
            g.2 = false;
            (std::mem::take(&mut g.0), g.1)
        };
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let h = api.health(&stator::api::Ctx::new(None, stator::auth::Source::Cli)).await.mqtt.expect("mqtt health");
        println!("mqtt bench: {tags} load tags every {period} ms → engine → Sparkplug B → mosquitto → subscriber (loopback)");
        println!("  metrics received:              {:.0}/s", n as f64 / seconds as f64);
        println!("  PLC source ts → subscriber p50: {:.0} ms", percentile(&l, 0.5));
        println!("  PLC source ts → subscriber p99: {:.0} ms", percentile(&l, 0.99));
        println!("  PLC source ts → subscriber max: {:.0} ms", l.last().copied().unwrap_or(f64::NAN));
        println!("  CPU without publisher:         {:.1} % of a core (simulator + engine)", base * 100.0);
        println!("  CPU with publisher+subscriber: {:.1} % of a core (added: {:.1} %)", with * 100.0, (with - base) * 100.0);
        println!("  mosquitto CPU:                 {:.1} % of a core", brk * 100.0);
        println!("  published {} dropped {}", h.published, h.dropped);
        edge.shutdown().await;
        engine.shutdown().await;
        sim.stop().await;
        let _ = broker.kill();
        let _ = broker.wait();
    });
}
