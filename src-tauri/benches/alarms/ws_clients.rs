//! Part 3 of the alarm bench: alarm pushes at 100 real WebSocket clients (logged-in viewers of
//! the park, the real remote server on loopback; clients and server share the two cores, so the
//! figures are upper bounds).
//!
//! - Transition → client: one alarm raised at a time (its value entering the live cache, as the
//!   engine does); the delay to its `alarm` push at every client. Two series: 300 ms apart (each
//!   transition finds the fan-out idle and goes out at once) and 30 ms apart (faster than the
//!   broadcast interval: a transition waits for the next interval, the worst case).
//! - Flood: 1,000 alarms raised within one second (10 batches of 100, 100 ms apart); per client
//!   the WebSocket messages and frames that carried them and the delay from the last raise to
//!   the client's last alarm.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use stator::auth::{Auth, Principal, Role, Source};
use stator::live::{Cache, PlcStatus, TagMeta, ValueUpdate};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::{good, pct, support, FLOOD};

const PASSWORD: &str = "bench-password-1";
/// The server's fragment size (`remote::wsock::FRAGMENT`): a longer message is several frames.
const FRAGMENT: usize = 16 * 1024;

/// What one client saw: alarm id → when its raise arrived (since the bench's start), and the
/// messages/frames that carried flood alarms.
#[derive(Default)]
struct Seen {
    raised: HashMap<String, Duration>,
    flood_messages: usize,
    flood_frames: usize,
}

fn tag(name: &str) -> TagMeta {
    TagMeta {
        name: name.into(),
        node_id: format!("ns=4;s={name}"),
        data_type: "Float".into(),
        array_size: None,
        writable: false,
        element_node_ids: Vec::new(),
    }
}

pub async fn run(dir: &std::path::Path, clients: usize, transitions: usize) {
    let alarm = |id: String, tag: String| {
        json!({"id": id, "tag": format!("park/{tag}"), "condition": "high", "limit": 50.0,
               "priority": "medium", "message": "bench"})
    };
    let mut alarms: Vec<Value> = (0..transitions)
        .flat_map(|i| {
            [
                alarm(format!("t{i}"), format!("Step/S{i:03}")),
                alarm(format!("u{i}"), format!("Busy/S{i:03}")),
            ]
        })
        .collect();
    alarms.extend((0..FLOOD).map(|i| alarm(format!("f{i}"), format!("Load/T{i:05}"))));
    let cfg = Arc::new(
        support::park_config("opc.tcp://127.0.0.1:4840")
            .set(
                "database",
                dir.join("clients.db").to_string_lossy().as_ref(),
            )
            .merge(json!({"alarms": alarms, "auth": {"source_failures_per_minute": 100000}}))
            .build(),
    );
    let interval = cfg.broadcast_interval_seconds;
    let store = stator::store::Store::open(&dir.join("clients.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let system = Principal::system("bench", Source::Cli);
    let mut tokens = Vec::new();
    for i in 0..clients {
        let name = format!("v{i:03}");
        auth.add_user(&system, &name, PASSWORD, Role::Viewer, &["park".into()])
            .await
            .unwrap();
        let t = auth
            .login(&name, PASSWORD, Source::Remote("127.0.0.1".into()))
            .await
            .unwrap();
        tokens.push(t.token);
    }
    let cache = Cache::from_config(&cfg);
    let mut tags: Vec<TagMeta> = (0..transitions)
        .flat_map(|i| [tag(&format!("Step/S{i:03}")), tag(&format!("Busy/S{i:03}"))])
        .collect();
    tags.extend((0..FLOOD).map(|i| tag(&format!("Load/T{i:05}"))));
    cache.set_tags("park", tags);
    cache.set_status("park", PlcStatus::Connected, None);
    let api = stator::api::Api::new(auth, cache.clone(), cfg.clone());
    api.start_alarms().await.unwrap();
    let mut scfg = stator::remote::ServerConfig::from_config(&cfg).unwrap();
    scfg.listen = "127.0.0.1:0".parse().unwrap();
    let server = stator::remote::start(api.clone(), scfg).await.unwrap();
    let addr = server.local_addr();

    let start = Instant::now();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..clients).map(|_| Default::default()).collect();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients.max(1));
    for (tok, seen) in tokens.iter().zip(&seen) {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("bearer, {tok}")).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let (_sink, mut stream) = ws.split();
        let seen = seen.clone();
        let ready = ready_tx.clone();
        tokio::spawn(async move {
            let _sink = _sink; // kept open for as long as the client reads
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                let at = start.elapsed();
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                let list = match v["type"].as_str() {
                    Some("snapshot") => {
                        let _ = ready.try_send(());
                        continue;
                    }
                    Some("alarm") => vec![v["alarm"].clone()],
                    Some("alarms") => v["alarms"].as_array().cloned().unwrap_or_default(),
                    _ => continue,
                };
                let mut s = seen.lock();
                let mut flood = false;
                for a in list {
                    let id = a["id"].as_str().unwrap_or_default().to_string();
                    flood |= id.starts_with('f');
                    if a["state"] == "unack" {
                        s.raised.entry(id).or_insert(at);
                    }
                }
                if flood {
                    s.flood_messages += 1;
                    s.flood_frames += t.len().div_ceil(FRAGMENT).max(1);
                }
            }
        });
    }
    drop(ready_tx);
    for _ in 0..clients {
        ready_rx
            .recv()
            .await
            .expect("every client gets its snapshot");
    }
    println!("{clients} WebSocket clients connected (broadcast interval {interval} s)");

    let all_in = |ids: &[String]| {
        seen.iter()
            .all(|s| ids.iter().all(|id| s.lock().raised.contains_key(id)))
    };
    for (prefix, dir, gap_ms) in [("t", "Step", 300), ("u", "Busy", 30)] {
        // Transition → client, one alarm every `gap_ms`.
        let mut sent = Vec::new();
        for i in 0..transitions {
            let at = start.elapsed();
            cache.update(
                "park",
                vec![ValueUpdate {
                    tag: format!("{dir}/S{i:03}"),
                    value: good(80.0),
                }],
            );
            sent.push((format!("{prefix}{i}"), at));
            tokio::time::sleep(Duration::from_millis(gap_ms)).await;
        }
        let ids: Vec<String> = sent.iter().map(|(id, _)| id.clone()).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_in(&ids) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut lat: Vec<f64> = Vec::new();
        for s in &seen {
            let s = s.lock();
            for (id, at) in &sent {
                if let Some(got) = s.raised.get(id) {
                    lat.push(got.saturating_sub(*at).as_secs_f64() * 1000.0);
                }
            }
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "transition → client, one every {gap_ms} ms: {} of {} deliveries ({transitions} transitions × \
             {clients} clients); p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal ≤ interval + 50 = {:.0} ms)",
            lat.len(),
            transitions * clients,
            pct(&lat, 50.0),
            pct(&lat, 99.0),
            lat.last().copied().unwrap_or(f64::NAN),
            interval * 1000.0 + 50.0
        );
    }

    // Flood.
    let t0 = start.elapsed();
    for b in 0..10 {
        let batch: Vec<ValueUpdate> = (b * 100..(b + 1) * 100)
            .map(|i| ValueUpdate {
                tag: format!("Load/T{i:05}"),
                value: good(80.0),
            })
            .collect();
        cache.update("park", batch);
        if b < 9 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let last_raise = start.elapsed();
    let flood_ids: Vec<String> = (0..FLOOD).map(|i| format!("f{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !all_in(&flood_ids) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut complete = 0;
    let mut messages = Vec::new();
    let mut frames = Vec::new();
    let mut tail = Vec::new();
    for s in &seen {
        let s = s.lock();
        let got: Vec<Duration> = flood_ids
            .iter()
            .filter_map(|id| s.raised.get(id).copied())
            .collect();
        if got.len() == FLOOD {
            complete += 1;
        }
        messages.push(s.flood_messages);
        frames.push(s.flood_frames);
        if let Some(last) = got.iter().max() {
            tail.push(last.saturating_sub(last_raise).as_secs_f64() * 1000.0);
        }
    }
    tail.sort_by(f64::total_cmp);
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    println!(
        "flood to {clients} clients: {FLOOD} alarms raised within {:.2} s; {complete} clients got all; \
         messages per client min {} / mean {:.1} / max {}; WebSocket frames per client min {} / mean {:.1} / max {}; \
         last raise → client's last alarm p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        (last_raise - t0).as_secs_f64(),
        messages.iter().min().unwrap_or(&0),
        mean(&messages),
        messages.iter().max().unwrap_or(&0),
        frames.iter().min().unwrap_or(&0),
        mean(&frames),
        frames.iter().max().unwrap_or(&0),
        pct(&tail, 50.0),
        pct(&tail, 99.0),
        tail.last().copied().unwrap_or(f64::NAN),
    );
    api.alarms().stop().await;
    drop(server);
}
