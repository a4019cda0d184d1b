//! Shared harness of the remote tests: a real SQLite store in a temp dir, real auth, the live
//! cache, the real server on an ephemeral loopback port, a real WebSocket client
//! (tokio-tungstenite 0.29, the version axum bundles) and a minimal HTTP/1.1 client; the one
//! config builder, polling helper and refusal assertion every test module uses.

mod config;
mod http;
mod wait;

pub use config::*;
pub use http::*;
pub use wait::*;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stator::api::Api;
use stator::auth::{Auth, Principal, Role, Source};
use stator::code::ErrorCode;
use stator::config::Config;
use stator::live::{Cache, PlcStatus, Quality, TagMeta, TagValue, ValueUpdate};
use stator::remote::{ServerConfig, ServerHandle};
use stator::store::{AuditFilter, AuditRow};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bound for every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);
pub const PASSWORD: &str = "correct-horse-1";

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub cfg: Arc<Config>,
    pub auth: Auth,
    pub cache: Cache,
    pub api: Api,
    pub server: Option<ServerHandle>,
    pub addr: SocketAddr,
}

/// A two-park configuration (`alpha`, `beta`) with `extra` merged into the top level.
pub fn config(dir: &Path, extra: Value) -> Config {
    ConfigBuilder::new()
        .plc("alpha", "opc.tcp://127.0.0.1:48401", "Alpha")
        .plc("beta", "opc.tcp://127.0.0.1:48402", "Beta")
        .set("database", dir.join("stator.db").to_string_lossy().as_ref())
        .merge(extra)
        .build()
}

/// Asserts that `result` is an error with the wire `code`.
#[track_caller]
pub fn assert_refused<T, E: ErrorCode + std::fmt::Display>(result: Result<T, E>, code: &str) {
    match result {
        Ok(_) => panic!("expected a refusal with code {code}, got success"),
        Err(e) => assert_eq!(e.code(), code, "{e}"),
    }
}

/// Audit rows of one action, oldest first.
pub async fn rows_of(env: &Env, action: &str) -> Vec<AuditRow> {
    let mut rows = env
        .auth
        .audit_page(
            &system(),
            AuditFilter {
                action: Some(action.into()),
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    rows.reverse();
    rows
}

pub fn meta(name: &str, ty: &str, writable: bool) -> TagMeta {
    TagMeta {
        name: name.into(),
        node_id: format!("ns=4;s={name}"),
        data_type: ty.into(),
        array_size: None,
        writable,
        element_node_ids: vec![],
    }
}

pub fn good(v: Value) -> TagValue {
    TagValue {
        value: v,
        quality: Quality::Good,
        reason: None,
        ts: Some(chrono::Utc::now()),
    }
}

/// Sets `tag` of `plc` to `v`.
pub fn set(cache: &Cache, plc: &str, tag: &str, v: Value) {
    cache.update(
        plc,
        [ValueUpdate {
            tag: tag.into(),
            value: good(v),
        }],
    );
}

/// Both parks CONNECTED with tags `P` (Float, writable) and `Label` (String, read-only).
pub fn feed(cache: &Cache) {
    for plc in ["alpha", "beta"] {
        cache.set_tags(
            plc,
            vec![meta("P", "Float", true), meta("Label", "String", false)],
        );
        cache.set_status(plc, PlcStatus::Connected, None);
        set(cache, plc, "P", json!(1.0));
        set(cache, plc, "Label", json!(plc));
    }
}

impl Env {
    pub async fn start(extra: Value) -> Env {
        Self::start_with(extra, |_| {}).await
    }

    pub async fn start_with(extra: Value, tweak: impl FnOnce(&mut ServerConfig)) -> Env {
        let env = Self::offline(extra);
        Self::serve(env._dir, env.cfg, env.auth, env.cache, env.api, tweak).await
    }

    /// The same store, auth, cache (fed) and api without a server: for driving
    /// [`stator::remote::router`] in memory. `addr` is unspecified.
    pub fn offline(extra: Value) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Arc::new(config(dir.path(), extra));
        let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
        let auth = Auth::new(store, &cfg);
        let cache = Cache::from_config(&cfg);
        feed(&cache);
        let api = Api::new(auth.clone(), cache.clone(), cfg.clone());
        Env {
            _dir: dir,
            cfg,
            auth,
            cache,
            api,
            server: None,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }

    pub async fn serve(
        dir: tempfile::TempDir,
        cfg: Arc<Config>,
        auth: Auth,
        cache: Cache,
        api: Api,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Env {
        let server = stator::remote::start(api.clone(), server_config(&cfg, tweak))
            .await
            .unwrap();
        let addr = server.local_addr();
        Env {
            _dir: dir,
            cfg,
            auth,
            cache,
            api,
            server: Some(server),
            addr,
        }
    }

    /// Creates a user (as the CLI would).
    pub async fn user(&self, name: &str, role: Role, parks: &[&str]) {
        let parks: Vec<String> = parks.iter().map(|s| s.to_string()).collect();
        self.auth
            .add_user(&system(), name, PASSWORD, role, &parks)
            .await
            .unwrap();
    }

    /// Creates a user and logs in from a remote address; returns the token.
    pub async fn login(&self, name: &str, role: Role, parks: &[&str]) -> String {
        self.user(name, role, parks).await;
        self.auth
            .login(name, PASSWORD, Source::Remote("127.0.0.1".into()))
            .await
            .unwrap()
            .token
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }
}

/// The server settings of `cfg` on an ephemeral loopback port with a short auth timeout, then
/// `tweak`ed.
pub fn server_config(cfg: &Config, tweak: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut scfg = ServerConfig::from_config(cfg).unwrap();
    scfg.listen = "127.0.0.1:0".parse().unwrap();
    scfg.auth_timeout = Duration::from_millis(500);
    tweak(&mut scfg);
    scfg
}

pub fn system() -> Principal {
    Principal::system("test", Source::Cli)
}

/// How the client authenticates on connect.
pub enum WsAuth<'a> {
    Protocol(&'a str),
    Query(&'a str),
    None,
}

/// Opens `/ws`; `Err` carries the HTTP status when the handshake is refused.
pub async fn ws_connect(
    env: &Env,
    auth: WsAuth<'_>,
    origin: Option<&str>,
) -> Result<(Ws, Option<String>), u16> {
    let url = match auth {
        WsAuth::Query(t) => env.url(&format!("/ws?token={t}")),
        _ => env.url("/ws"),
    };
    let mut req = url.into_client_request().unwrap();
    if let WsAuth::Protocol(t) = auth {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&format!("bearer, {t}")).unwrap(),
        );
    }
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).unwrap());
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req)).await {
        Err(_) => panic!("handshake timed out"),
        Ok(Ok((ws, resp))) => {
            let proto = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string());
            Ok((ws, proto))
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
        Ok(Err(e)) => panic!("connect failed: {e}"),
    }
}

/// What the server sent next.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    Close(u16, String),
    Ended,
}

/// The next text frame (pings skipped), close, or end; panics after `within`.
pub async fn next(ws: &mut Ws, within: Duration) -> Got {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("no message from the server in time");
        match m {
            None | Some(Err(_)) => return Got::Ended,
            Some(Ok(Message::Text(t))) => return Got::Json(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(f))) => {
                return match f {
                    Some(f) => Got::Close(f.code.into(), f.reason.to_string()),
                    None => Got::Close(1005, String::new()),
                }
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// The next JSON message; panics on close.
pub async fn next_json(ws: &mut Ws) -> Value {
    match next(ws, WAIT).await {
        Got::Json(v) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next message of `type` (skipping others), within `WAIT`.
pub async fn next_of(ws: &mut Ws, ty: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(ws, left).await {
            Got::Json(v) if v["type"] == ty => return v,
            Got::Json(_) => continue,
            other => panic!("expected {ty}, got {other:?}"),
        }
    }
}

/// The close code the server ends with (skipping messages).
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match next(ws, WAIT).await {
            Got::Json(_) => continue,
            Got::Close(c, _) => return c,
            Got::Ended => return 0,
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// Sends a request and waits for its reply (skipping updates).
pub async fn call(ws: &mut Ws, v: Value) -> Value {
    let id = v["id"].clone();
    send(ws, v).await;
    loop {
        let m = next_json(ws).await;
        if m["type"] == "reply" && m["id"] == id {
            return m;
        }
    }
}

/// Whatever the server sends within `within`, or `None` when it stays quiet.
pub async fn quiet(ws: &mut Ws, within: Duration) -> Option<Got> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(m) => m,
        };
        return Some(match m {
            None | Some(Err(_)) => Got::Ended,
            Some(Ok(Message::Text(t))) => Got::Json(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(f))) => match f {
                Some(f) => Got::Close(f.code.into(), f.reason.to_string()),
                None => Got::Close(1005, String::new()),
            },
            Some(Ok(_)) => continue,
        });
    }
}
