//! Messages benchmark, in one process on loopback (server and clients share the two cores, so the
//! figures are upper bounds):
//!
//! 1. Delivery: 100 users, each with a live WebSocket; 50 direct messages per second spread
//!    round-robin over senders and recipients (0.5 per user per second, inside the 10 per 10 s
//!    limit). Latency = the recipient's receipt of the `message` push − the moment the sender's
//!    request was written to its socket.
//! 2. History: 1,000,000 stored messages in 1,000 direct conversations; opening a conversation
//!    (`messages {with, limit: 50}` through the dispatcher, as a client asks for it) timed 200
//!    times over random conversations.
//!
//! Run: `cargo bench --no-default-features --bench messages` (release). Overrides:
//! `STATOR_BENCH_USERS` (100), `STATOR_BENCH_RATE` (50 per second), `STATOR_BENCH_SECONDS` (10),
//! `STATOR_BENCH_MESSAGES` (1000000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use stator::api::{dispatch, Api, Ctx, Request};
use stator::auth::{Auth, Principal, Role, Source};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::env;

const PASSWORD: &str = "bench-password-1";

/// The `p` percentile (0–100) of sorted figures.
fn pct(sorted: &[f64], p: f64) -> f64 {
    support::percentile(sorted, p / 100.0)
}

fn main() {
    let users = env("STATOR_BENCH_USERS", 100) as usize;
    let rate = env("STATOR_BENCH_RATE", 50);
    let secs = env("STATOR_BENCH_SECONDS", 10);
    let stored = env("STATOR_BENCH_MESSAGES", 1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        // Every bench user logs in from loopback: lift the per-address login limit.
        let cfg = Arc::new(
            support::park_config("opc.tcp://127.0.0.1:4840")
                .merge(json!({"auth": {"source_failures_per_minute": 100000}}))
                .build(),
        );
        let store = stator::store::Store::open(&dir.path().join("bench.db")).unwrap();
        let auth = Auth::new(store.clone(), &cfg);
        let system = Principal::system("bench", Source::Cli);
        let t = Instant::now();
        let mut tokens = Vec::new();
        for i in 0..users {
            let name = format!("u{i:03}");
            auth.add_user(&system, &name, PASSWORD, Role::Operator, &["park".into()])
                .await
                .unwrap();
            let tok = auth
                .login(&name, PASSWORD, Source::Remote("127.0.0.1".into()))
                .await
                .unwrap()
                .token;
            tokens.push(tok);
        }
        println!(
            "{users} users created and logged in in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let cache = stator::live::Cache::from_config(&cfg);
        let api = Api::new(auth.clone(), cache, cfg.clone());
        let mut scfg = stator::remote::ServerConfig::from_config(&cfg).unwrap();
        scfg.listen = "127.0.0.1:0".parse().unwrap();
        let server = stator::remote::start(api.clone(), scfg).await.unwrap();
        let addr = server.local_addr();

        delivery(addr, &tokens, rate, Duration::from_secs(secs)).await;
        history(&api, &store, &tokens, stored).await;
        drop(server);
    });
}

async fn delivery(addr: std::net::SocketAddr, tokens: &[String], rate: u64, run: Duration) {
    let n = tokens.len();
    let start = Instant::now();
    let lat: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let mut sinks = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("bearer, {tok}")).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let (sink, mut stream) = ws.split();
        sinks.push(sink);
        let me = format!("u{i:03}");
        let lat = lat.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                let Message::Text(t) = m else { continue };
                if !t.starts_with("{\"type\":\"message\"") {
                    continue;
                }
                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                let msg = &v["message"];
                if msg["to"] != me.as_str() {
                    continue;
                }
                if let Some(us) = msg["text"]
                    .as_str()
                    .and_then(|s| s.strip_prefix("t="))
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    let now = start.elapsed().as_micros() as u64;
                    lat.lock().push(now.saturating_sub(us) as f64 / 1000.0);
                }
            }
        });
    }
    println!("{n} WebSocket clients connected");
    let every = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (run.as_secs_f64() * rate as f64) as usize;
    let mut tick = tokio::time::interval(every);
    for k in 0..total {
        tick.tick().await;
        let from = k % n;
        let to = (from + 1 + (k / n) % (n - 1)) % n;
        let now = start.elapsed().as_micros() as u64;
        let body = json!({"id": k, "op": "message_send", "to": format!("u{to:03}"), "text": format!("t={now}")});
        sinks[from]
            .send(Message::text(body.to_string()))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while lat.lock().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut v = lat.lock().clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "delivery: {} users, {rate} msg/s for {:.0} s: {} of {total} received; send → receive p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n,
        run.as_secs_f64(),
        v.len(),
        pct(&v, 50.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

async fn history(api: &Api, store: &stator::store::Store, tokens: &[String], stored: u64) {
    use stator::store::messages::{direct_conv, insert, NewMessage};
    let n = tokens.len() as i64;
    // User ids are 1..=n in creation order (fresh database).
    let pairs: Vec<(i64, i64)> = (0..1000)
        .map(|k| {
            let a = 1 + k % n;
            let b = 1 + (k / n + 1 + k) % n;
            (a, if b == a { 1 + (a % n) } else { b })
        })
        .collect();
    let t = Instant::now();
    let chunk = 50_000u64;
    let mut done = 0u64;
    while done < stored {
        let upto = (done + chunk).min(stored);
        let pairs = pairs.clone();
        store
            .write(move |tx| {
                let now = chrono::Utc::now();
                for i in done..upto {
                    let (a, b) = pairs[(i % pairs.len() as u64) as usize];
                    let m = NewMessage {
                        conv: direct_conv(a, b),
                        sender_id: a,
                        sender: format!("u{:03}", a - 1),
                        recipient_id: Some(b),
                        recipient: format!("u{:03}", b - 1),
                        text: format!("stored message {i}"),
                        alarm: None,
                        reference: None,
                    };
                    insert(tx, &m, &[b], |_| true, now)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        done = upto;
    }
    println!(
        "history: {stored} messages in {} conversations stored in {:.1} s",
        pairs.len(),
        t.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    let mut rows = 0usize;
    for k in 0..200usize {
        let (a, b) = pairs[(k * 37) % pairs.len()];
        let ctx = Ctx::new(
            Some(tokens[(a - 1) as usize].clone()),
            Source::Remote("127.0.0.1".into()),
        );
        let req = Request::from_json(
            json!({"op": "messages", "with": format!("u{:03}", b - 1), "limit": 50}),
        )
        .unwrap();
        let t = Instant::now();
        let r = dispatch(api, &ctx, req).await.unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        rows += r["messages"].as_array().map_or(0, |m| m.len());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "history: open a conversation (last 50) ×200: {} rows; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        rows,
        pct(&times, 50.0),
        pct(&times, 99.0),
        times.last().copied().unwrap_or(f64::NAN)
    );
}
