//! Connection-level protection against the real server: the connection cap (shedding beyond
//! it), the header-read / first-request / keep-alive timeouts, and `/health` staying reachable
//! while a client holds a thousand idle connections.

use std::time::Duration;

use crate::support::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// `GET path` on a fresh connection; `None` when the server closed it without an answer.
async fn try_get(env: &Env, path: &str) -> Option<u16> {
    status_of(&exchange(env.addr, &request(env.addr, "GET", path, &[], None)).await?)
}

/// Reads until the server ends the connection (EOF or reset); false if it is still open at
/// `deadline`.
async fn ended_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_thousand_idle_connections_are_shed_and_closed_and_health_still_answers() {
    let timeout = Duration::from_millis(800);
    let env = Env::start_with(json!({"remote": {"metrics": true}}), |s| {
        s.max_connections = 64;
        s.header_timeout = timeout;
    })
    .await;
    // 1,100 connections: half send nothing, half send half a request head.
    let mut held = Vec::new();
    for i in 0..1100 {
        let Ok(mut s) = TcpStream::connect(env.addr).await else {
            continue;
        };
        if i % 2 == 1 {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
        }
        held.push(s);
    }
    assert!(held.len() > 1000, "only {} connected", held.len());
    // While the client still holds all of them, /health answers within a bound.
    let t0 = Instant::now();
    let bound = timeout * 2 + Duration::from_secs(3);
    loop {
        match try_get(&env, "/health").await {
            Some(200) => {
                eprintln!(
                    "/health answered {:?} after 1,100 idle connections",
                    t0.elapsed()
                );
                break;
            }
            other if t0.elapsed() < bound => {
                let _ = other;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("/health did not answer within {bound:?}: {other:?}"),
        }
    }
    // Every idle or half-sent connection is ended by the server (cap or timeout).
    let deadline = Instant::now() + timeout + Duration::from_secs(3);
    for (i, s) in held.iter_mut().enumerate() {
        assert!(ended_by(s, deadline).await, "connection {i} still open");
    }
    let (_, _, m) = http(env.addr, "GET", "/metrics", &[], None).await;
    let shed = counter(&m, "stator_remote_connections_shed_total");
    assert!(shed >= 1000 - 64, "shed {shed}\n{m}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(500);
    let env = Env::start_with(json!({}), |s| s.header_timeout = timeout).await;
    let mut s = TcpStream::connect(env.addr).await.unwrap();
    let req = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", env.addr);
    s.write_all(req.as_bytes()).await.unwrap();
    // Read the whole answer (one response, kept alive).
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"status\"") {
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    let t0 = Instant::now();
    assert!(ended_by(&mut s, t0 + timeout + Duration::from_secs(3)).await);
    assert!(
        t0.elapsed() >= timeout / 2,
        "closed too early: {:?}",
        t0.elapsed()
    );
}
