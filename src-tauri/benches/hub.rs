//! `stator hub` bench: N simulated Sparkplug B edge nodes × T tags on one Debian `mosquitto`
//! (loopback) → the hub (a full `app::Core` fed by the broker: live cache, alarms, historian;
//! no remote server) in this process. Each edge node is its own MQTT connection publishing
//! prost-encoded NBIRTH/DBIRTH, then every P ms a DDATA with C changed Double metrics (staggered
//! across the period), answering rebirth requests like a real edge node. One metric per DDATA
//! (`Probe_us`, alias 0) carries the publish time in microseconds: publish → hub cache latency is
//! taken from the cache's sample seam when that value arrives.
//!
//! Prints metrics/s applied, p50/p99/max publish → cache, the hub's CPU (this process minus the
//! publisher threads, named `pub`), RSS, and the hub's drop/gap counters for
//! docs/performance.md. Run: `cargo bench --no-default-features --bench hub` (env BENCH_NODES,
//! BENCH_TAGS, BENCH_PERIOD_MS, BENCH_CHANGED, BENCH_SECONDS). Needs `mosquitto`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use stator::mqtt::sparkplug_b::{metric, Metric, Payload};

mod support;

use support::{env, percentile};

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// CPU ticks of this process's threads whose name starts with `prefix`.
fn thread_ticks(prefix: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter(|s| {
            s.split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .is_some_and(|(comm, _)| comm.starts_with(prefix))
        })
        .map(|s| {
            let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

/// One simulated edge node: births, then DDATA every `period` (offset by `phase`), rebirth on
/// NCMD. Counts what it published.
struct EdgeSim {
    id: String,
    park: String,
    tags: usize,
    changed: usize,
}

impl EdgeSim {
    fn payload(seq: &mut u64, metrics: Vec<Metric>) -> Vec<u8> {
        let p = Payload {
            timestamp: Some(now_us() / 1000),
            metrics,
            seq: Some(*seq),
            ..Default::default()
        };
        *seq = (*seq + 1) % 256;
        p.encode_to_vec()
    }

    fn births(&self, c: &AsyncClient, seq: &mut u64, bd: u64) -> bool {
        *seq = 0;
        let ts = Some(now_us() / 1000);
        let nbirth = Self::payload(
            seq,
            vec![Metric {
                name: Some("bdSeq".into()),
                datatype: Some(4),
                value: Some(metric::Value::LongValue(bd)),
                timestamp: ts,
                ..Default::default()
            }],
        );
        let mut metrics = Vec::with_capacity(self.tags);
        for i in 0..self.tags {
            metrics.push(Metric {
                name: Some(if i == 0 {
                    "Probe_us".to_string()
                } else {
                    format!("Tag_{i:05}")
                }),
                alias: Some(i as u64),
                datatype: Some(10),
                timestamp: ts,
                value: Some(metric::Value::DoubleValue(0.0)),
                ..Default::default()
            });
        }
        let dbirth = Self::payload(seq, metrics);
        c.try_publish(
            format!("spBv1.0/bench/NBIRTH/{}", self.id),
            QoS::AtMostOnce,
            false,
            nbirth,
        )
        .is_ok()
            && c.try_publish(
                format!("spBv1.0/bench/DBIRTH/{}/{}", self.id, self.park),
                QoS::AtMostOnce,
                false,
                dbirth,
            )
            .is_ok()
    }

    async fn run(self, port: u16, period: Duration, phase: Duration, published: Arc<AtomicU64>) {
        let mut o = MqttOptions::new(format!("bench-{}", self.id), "127.0.0.1", port);
        o.set_max_packet_size(1 << 20, 16 << 20);
        o.set_keep_alive(Duration::from_secs(30));
        let (c, mut el) = AsyncClient::new(o, 64);
        c.subscribe(format!("spBv1.0/bench/NCMD/{}", self.id), QoS::AtMostOnce)
            .await
            .expect("subscribe");
        let rebirth = Arc::new(tokio::sync::Notify::new());
        let r2 = rebirth.clone();
        tokio::spawn(async move {
            while let Ok(ev) = el.poll().await {
                if let Event::Incoming(Packet::Publish(_)) = ev {
                    r2.notify_one();
                }
            }
        });
        let mut seq = 0u64;
        let mut round = 0u64;
        tokio::time::sleep(phase).await;
        while !self.births(&c, &mut seq, 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = rebirth.notified() => { self.births(&c, &mut seq, 0); }
                _ = tick.tick() => {
                    round += 1;
                    let ts = now_us();
                    let mut metrics = Vec::with_capacity(self.changed);
                    metrics.push(Metric {
                        alias: Some(0),
                        timestamp: Some(ts / 1000),
                        value: Some(metric::Value::DoubleValue(ts as f64)),
                        ..Default::default()
                    });
                    for k in 1..self.changed.max(1) {
                        // A different slice of the tags each round.
                        let alias = 1 + ((round as usize * self.changed + k) % (self.tags - 1));
                        metrics.push(Metric {
                            alias: Some(alias as u64),
                            timestamp: Some(ts / 1000),
                            value: Some(metric::Value::DoubleValue(round as f64 + k as f64 * 0.001)),
                            ..Default::default()
                        });
                    }
                    let n = metrics.len() as u64;
                    let p = Self::payload(&mut seq, metrics);
                    let topic = format!("spBv1.0/bench/DDATA/{}/{}", self.id, self.park);
                    if c.try_publish(topic, QoS::AtMostOnce, false, p).is_ok() {
                        published.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn main() {
    let nodes = env("BENCH_NODES", 50) as usize;
    let tags = env("BENCH_TAGS", 2_000).max(2) as usize;
    let period = env("BENCH_PERIOD_MS", 1_000);
    let changed = env("BENCH_CHANGED", 200).clamp(1, tags as u64) as usize;
    let seconds = env("BENCH_SECONDS", 20);
    let dir = tempfile::tempdir().expect("tempdir");
    // Set before any thread exists: the core's audit key goes to a file store in `dir`.
    std::env::set_var("STATOR_SECRET_BACKEND", "file");
    std::env::set_var("STATOR_SECRETS_DB", dir.path().join("secrets.enc"));
    let hub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hub")
        .enable_all()
        .build()
        .expect("runtime");
    let pub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pub")
        .enable_all()
        .build()
        .expect("runtime");
    let (mut broker, port) = support::mosquitto(dir.path(), "max_queued_messages 100000\n");
    let me = std::process::id();

    hub_rt.block_on(async {
        let mut b = support::config::ConfigBuilder::new()
            .set("broadcast_interval_seconds", 0.5)
            .set("database", dir.path().join("hub.db").to_string_lossy().as_ref())
            .merge(serde_json::json!({"remote": {"enabled": false}}));
        for i in 0..nodes {
            b = b.plc(&format!("park{i:03}"), "opc.tcp://127.0.0.1:4840", &format!("Park {i}"));
        }
        let cfg = b.build();
        let broker_addr = stator::config::parse_broker_url(&format!("mqtt://127.0.0.1:{port}")).expect("url");
        // The broker must listen first (the hub would retry, but after a backoff).
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let core = stator::app::Core::start_fed(
            cfg,
            dir.path().join("hub.db"),
            stator::app::Feed::Hub { broker: broker_addr, group: "bench".into() },
        )
        .await
        .expect("hub core");
        let api = core.api.clone();
        let ctx = stator::api::Ctx::new(None, stator::auth::Source::Cli);
        let deadline = Instant::now() + Duration::from_secs(10);
        while api.health(&ctx).await.hub.map(|h| h.state) != Some("online") {
            assert!(Instant::now() < deadline, "the hub did not connect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rss_idle = support::proc_rss_kib(me);

        // Latencies from the sample seam: the probe's value is its publish time in µs.
        let lat = Arc::new(parking_lot::Mutex::new((Vec::<f64>::new(), false)));
        let mut samples = api.cache().samples();
        let l2 = lat.clone();
        let lagged = Arc::new(AtomicU64::new(0));
        let lag2 = lagged.clone();
        tokio::spawn(async move {
            loop {
                match samples.recv().await {
                    Ok(b) => {
                        let now = now_us() as f64;
                        let mut g = l2.lock();
                        if !g.1 {
                            continue;
                        }
                        for v in &b.values {
                            if v.tag == "Probe_us" {
                                if let Some(t) = v.value.value.as_f64() {
                                    g.0.push((now - t) / 1000.0);
                                }
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        lag2.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
        });

        let published = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        for i in 0..nodes {
            let e = EdgeSim {
                id: format!("edge{i:03}"),
                park: format!("park{i:03}"),
                tags,
                changed,
            };
            let phase = Duration::from_millis(period * i as u64 / nodes as u64);
            pub_rt.spawn(e.run(port, Duration::from_millis(period), phase, published.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let h = api.health(&ctx).await.hub.expect("hub health");
            if h.parks_fed == nodes {
                break;
            }
            assert!(Instant::now() < deadline, "not every park was born: {h:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let births = started.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;

        let h0 = api.health(&ctx).await.hub.expect("hub");
        let p0 = published.load(Ordering::Relaxed);
        let (c0, pub0, b0) = (support::proc_cpu_ticks(me), thread_ticks("pub"), support::proc_cpu_ticks(broker.id()));
        lat.lock().1 = true;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        lat.lock().1 = false;
        let (c1, pub1, b1) = (support::proc_cpu_ticks(me), thread_ticks("pub"), support::proc_cpu_ticks(broker.id()));
        let h1 = api.health(&ctx).await;
        let hub = h1.hub.clone().expect("hub");
        let p1 = published.load(Ordering::Relaxed);
        let secs = seconds as f64;
        let cpu = |t: u64| t as f64 / support::TICKS_PER_SECOND / secs * 100.0;
        let mut l = std::mem::take(&mut lat.lock().0);
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        println!(
            "hub bench: {nodes} edge nodes × {tags} tags, DDATA every {period} ms with {changed} changed metrics each \
             ({:.0} metrics/s offered) → mosquitto → stator hub (cache, alarms, historian), {seconds} s",
            nodes as f64 * changed as f64 * 1000.0 / period as f64
        );
        println!("  all parks born:                  {:.2} s after the publishers started (staggered over one period)", births.as_secs_f64());
        println!("  metrics published:               {:.0}/s", (p1 - p0) as f64 / secs);
        println!("  metrics applied by the hub:      {:.0}/s", (hub.metrics - h0.metrics) as f64 / secs);
        println!("  DDATA messages received:         {:.0}/s", (hub.messages - h0.messages) as f64 / secs);
        println!("  publish → hub cache p50:         {:.2} ms ({} probes)", percentile(&l, 0.5), l.len());
        println!("  publish → hub cache p99:         {:.2} ms", percentile(&l, 0.99));
        println!("  publish → hub cache max:         {:.2} ms", l.last().copied().unwrap_or(f64::NAN));
        println!("  hub CPU:                         {:.1} % of a core (process {:.1} % minus publishers {:.1} %)", cpu((c1 - c0).saturating_sub(pub1 - pub0)), cpu(c1 - c0), cpu(pub1 - pub0));
        println!("  mosquitto CPU:                   {:.1} % of a core", cpu(b1 - b0));
        println!(
            "  RSS:                             {:.0} MiB now, peak {:.0} MiB (hub before the births: {:.0} MiB; includes the publishers)",
            support::proc_rss_kib(me) as f64 / 1024.0,
            support::proc_hwm_kib(me) as f64 / 1024.0,
            rss_idle as f64 / 1024.0
        );
        println!(
            "  hub counters (whole run): dropped {} seq_gaps {} rebirths_requested {} malformed {} truncated {}; sample seam lagged {}",
            hub.dropped, hub.seq_gaps, hub.rebirths_requested, hub.malformed, hub.truncated, lagged.load(Ordering::Relaxed)
        );
        if let Some(hs) = h1.history {
            println!("  historian: stored {} dropped {} lagged_batches {}", hs.stored, hs.dropped, hs.lagged_batches);
        }
        core.shutdown().await;
    });
    pub_rt.shutdown_background();
    let _ = broker.kill();
    let _ = broker.wait();
}
