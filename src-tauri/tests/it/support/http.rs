//! A minimal HTTP/1.1 client over a real socket: tests that probe the server's connection
//! handling need exact control of the bytes, which a full client library would hide.

use std::net::SocketAddr;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Env, WAIT};

/// The bytes of one request that closes the connection afterwards; a `body` is sent as JSON.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    req
}

/// Sends `request` as-is on a fresh connection and reads until the server closes it; `None`
/// when connecting, sending or reading fails or takes longer than [`WAIT`].
pub async fn exchange(addr: SocketAddr, request: &str) -> Option<String> {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The status code of a raw response.
pub fn status_of(response: &str) -> Option<u16> {
    response.split_whitespace().nth(1)?.parse().ok()
}

/// One HTTP/1.1 exchange: (status, headers lower-cased, body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let text = exchange(addr, &request(addr, method, path, headers, body))
        .await
        .expect("the server answered");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = status_of(head).unwrap_or(0);
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The `Authorization` header value for `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One exchange with `env`'s server as `token` (a bearer header).
pub async fn http_as(
    env: &Env,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    http(
        env.addr,
        method,
        path,
        &[("Authorization", &bearer(token))],
        body,
    )
    .await
}

/// `POST /api/write {plc, node, value}` as `token`: (status, JSON reply).
pub async fn http_write(
    env: &Env,
    token: &str,
    plc: &str,
    node: &str,
    value: Value,
) -> (u16, Value) {
    let b = json!({"plc": plc, "node": node, "value": value}).to_string();
    let (st, _, body) = http_as(env, "POST", "/api/write", token, Some(&b)).await;
    (st, serde_json::from_str(&body).unwrap())
}
