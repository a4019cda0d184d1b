//! The axum server: router, limits, TLS, start and shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::Router;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::conn::{self, Capped};
use super::fanout::Hub;
use super::origin::Hosts;
use super::setup_code::SetupCode;
use super::{assets, http, ws};
use crate::api::Api;
use crate::config::{Config, TlsConfig};

/// Everything the server needs besides the [`Api`]; [`ServerConfig::from_config`] fills it from
/// `config.json`, tests shorten the timers.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (`remote.listen`, `serve --listen`); port 0 picks a free one.
    pub listen: SocketAddr,
    /// Certificate and key (PEM) for HTTPS/WSS.
    pub tls: Option<TlsConfig>,
    /// Most authenticated WebSocket connections at once (`remote.max_clients`).
    pub max_clients: usize,
    /// Most WebSocket connections not yet authenticated (`remote.max_unauthenticated`).
    pub max_unauthenticated: usize,
    /// Most not-yet-authenticated WebSocket connections from one IP address.
    pub max_unauthenticated_per_address: usize,
    /// Most open connections of any kind (`remote.max_connections`); lowered at start to stay
    /// [`super::conn::FD_RESERVE`] below the descriptor limit.
    pub max_connections: usize,
    /// Request head / first request / TLS handshake / keep-alive wait (`remote.header_timeout_seconds`).
    pub header_timeout: Duration,
    /// No byte in either direction for this long closes a connection (`remote.idle_timeout_seconds`).
    pub idle_timeout: Duration,
    /// Host names accepted on `/ws` and `/api/setup` besides IP literals and localhost.
    pub allowed_hosts: Vec<String>,
    /// Whether `GET /metrics` is served (`remote.metrics`).
    pub metrics: bool,
    /// Most WebSocket connections from one IP address.
    pub max_connections_per_address: usize,
    /// Browser origins allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// At most one update per client per interval (`broadcast_interval_seconds`).
    pub broadcast_interval: Duration,
    /// WebSocket ping period; a peer silent for two periods is dropped.
    pub ping_interval: Duration,
    /// Time an unauthenticated socket has to send `login`/`auth`.
    pub auth_timeout: Duration,
    /// Largest inbound WebSocket message/frame and HTTP body.
    pub max_inbound_bytes: usize,
    /// Update frames a client may have queued before it counts as behind.
    pub client_queue: usize,
    /// How long a client may stay behind (or block one send) before it is closed (4008).
    pub slow_client_timeout: Duration,
}

impl ServerConfig {
    /// The server settings of a configuration (`listen` parsed; validated by `Config`).
    pub fn from_config(cfg: &Config) -> Result<ServerConfig, ServerError> {
        let listen = cfg
            .remote
            .listen
            .parse()
            .map_err(|e| ServerError::Config(format!("remote.listen: {e}")))?;
        Ok(ServerConfig {
            listen,
            tls: cfg.remote.tls.clone(),
            max_clients: cfg.remote.max_clients,
            max_unauthenticated: cfg.remote.max_unauthenticated,
            max_unauthenticated_per_address: (cfg.remote.max_unauthenticated / 4).max(1),
            max_connections: cfg.remote.max_connections,
            header_timeout: Duration::from_secs_f64(cfg.remote.header_timeout_seconds),
            idle_timeout: Duration::from_secs_f64(cfg.remote.idle_timeout_seconds),
            allowed_hosts: cfg.remote.allowed_hosts.clone(),
            metrics: cfg.remote.metrics,
            max_connections_per_address: cfg.remote.max_connections_per_address,
            allowed_origins: cfg.remote.allowed_origins.clone(),
            broadcast_interval: Duration::from_secs_f64(cfg.broadcast_interval_seconds),
            ping_interval: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(10),
            max_inbound_bytes: 64 * 1024,
            client_queue: 8,
            slow_client_timeout: Duration::from_secs(10),
        })
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid server configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS certificate/key {cert} / {key}: {source}")]
    Tls {
        cert: String,
        key: String,
        source: std::io::Error,
    },
}

/// Open connections per IP address and in total; a guard releases its slot on drop.
#[derive(Default)]
pub(super) struct ConnLimits {
    per_addr: Mutex<HashMap<IpAddr, usize>>,
}

/// One WebSocket connection's slot in [`ConnLimits`].
pub(super) struct ConnGuard {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

/// Why a connection was refused before the upgrade.
pub(super) enum LimitHit {
    Total,
    PerAddress,
}

impl ConnLimits {
    pub(super) fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_addr: usize,
    ) -> Result<ConnGuard, LimitHit> {
        let mut m = self.per_addr.lock();
        let total: usize = m.values().sum();
        if total >= max_total {
            return Err(LimitHit::Total);
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= max_per_addr {
            return Err(LimitHit::PerAddress);
        }
        *n += 1;
        Ok(ConnGuard {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut m = self.limits.per_addr.lock();
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub(super) struct AppState {
    pub api: Api,
    pub cfg: Arc<ServerConfig>,
    pub hub: Arc<Hub>,
    /// Authenticated WebSocket connections (`max_clients`).
    pub limits: Arc<ConnLimits>,
    /// WebSocket connections still authenticating (`max_unauthenticated`).
    pub pending: Arc<ConnLimits>,
    /// Host names `/ws` and `/api/setup` answer under.
    pub hosts: Arc<Hosts>,
    /// The one-time code `/api/setup` asks for; `None` when users existed at start.
    pub setup: Option<Arc<SetupCode>>,
    /// Flips to true on shutdown; client tasks close with 1001.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    fn new(
        api: Api,
        cfg: Arc<ServerConfig>,
        setup: Option<Arc<SetupCode>>,
        shutdown: watch::Receiver<bool>,
    ) -> AppState {
        AppState {
            api,
            hub: Arc::new(Hub::new(cfg.client_queue, cfg.slow_client_timeout)),
            limits: Arc::new(ConnLimits::default()),
            pending: Arc::new(ConnLimits::default()),
            hosts: Arc::new(Hosts::new(&cfg.allowed_hosts, &cfg.allowed_origins)),
            setup,
            shutdown,
            cfg,
        }
    }
}

/// A running server.
pub struct ServerHandle {
    local_addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    broadcaster: Option<tokio::task::JoinHandle<()>>,
    setup: Option<Arc<SetupCode>>,
}

impl ServerHandle {
    /// The one-time setup code while the first superuser has not been created through
    /// `/api/setup` (also logged at start); for embedders and tests.
    pub fn setup_code(&self) -> Option<String> {
        self.setup.as_ref().and_then(|s| s.display())
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes every WebSocket (1001), stops accepting, and waits at most ~3 s for the rest.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        self.handle.graceful_shutdown(Some(Duration::from_secs(2)));
        for t in [self.task.take(), self.broadcaster.take()]
            .into_iter()
            .flatten()
        {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        self.handle.shutdown();
        for t in [self.task.take(), self.broadcaster.take()]
            .into_iter()
            .flatten()
        {
            t.abort();
        }
    }
}

/// The routes [`start`] serves, over `api`, without a socket: tests drive it with
/// `tower::ServiceExt::oneshot` (handlers take the peer address from `ConnectInfo`, so add
/// `axum::extract::connect_info::MockConnectInfo`). No broadcaster runs, so `/ws` clients get
/// no updates; the shutdown signal lives as long as the router.
pub async fn router(api: Api, cfg: ServerConfig) -> Router {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let setup = setup_code(&api).await;
    let state = AppState::new(api, Arc::new(cfg), setup, shutdown_rx);
    routes(state).layer(axum::Extension(Arc::new(shutdown_tx)))
}

/// Declares the served routes once: [`SERVED`] (method, path) and the router that serves them.
/// The OpenAPI document (`openapi.rs`) is checked against [`SERVED`] by a test, in both
/// directions, so neither can gain a route the other lacks.
macro_rules! served {
    ($( $method:ident $path:literal => $handler:expr, )*) => {
        /// Every route served (method, path), in routing order.
        #[cfg(test)]
        pub(super) const SERVED: &[(&str, &str)] = &[$( (stringify!($method), $path) ),*];

        fn add_routes(r: Router<AppState>) -> Router<AppState> {
            r $( .route($path, $method($handler)) )*
        }
    };
}

served! {
    get "/health" => http::health,
    get "/metrics" => http::metrics,
    post "/api/login" => http::login,
    post "/api/setup" => http::setup,
    post "/api/logout" => http::logout,
    post "/api/session/refresh" => http::refresh,
    get "/api/me" => http::me,
    get "/api/snapshot" => http::snapshot,
    post "/api/write" => http::write,
    get "/api/openapi.json" => super::openapi::json,
    get "/api/docs" => super::openapi::page,
    get "/api/docs.js" => super::openapi::script,
    get "/api/alarms" => http::alarms,
    post "/api/alarms/ack" => http::alarm_ack,
    get "/api/alarms/journal" => http::alarm_journal,
    get "/api/alarms/journal.csv" => http::alarm_journal_csv,
    get "/api/incidents" => http::incidents,
    get "/api/history" => http::history,
    get "/api/history.csv" => http::history_csv,
    get "/api/trend.svg" => http::trend_svg,
    get "/api/trend.png" => http::trend_png,
    get "/api/calibration/records" => http::calibration_records,
    get "/api/calibration/records/{file}" => http::calibration_certificate,
    get "/api/messages/export" => http::messages_export,
    any "/ws" => ws::upgrade,
    get "/" => assets::index,
    get "/{*path}" => assets::file,
}

fn routes(state: AppState) -> Router {
    let max = state.cfg.max_inbound_bytes;
    add_routes(Router::new())
        .layer(DefaultBodyLimit::max(max))
        .layer(axum::middleware::from_fn(assets::security_headers))
        .with_state(state)
}

/// Binds and starts serving `api` in the background: HTTP(S) endpoints, the WebSocket and the
/// broadcaster. Must be called inside a tokio runtime.
pub async fn start(api: Api, cfg: ServerConfig) -> Result<ServerHandle, ServerError> {
    let listener = std::net::TcpListener::bind(cfg.listen).map_err(|source| ServerError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let tls = match &cfg.tls {
        None => None,
        Some(t) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rc = axum_server::tls_rustls::RustlsConfig::from_pem_file(&t.cert, &t.key)
                .await
                .map_err(|source| ServerError::Tls {
                    cert: t.cert.display().to_string(),
                    key: t.key.display().to_string(),
                    source,
                })?;
            Some(rc)
        }
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cfg = Arc::new(cfg);
    let setup = setup_code(&api).await;
    let capped = connection_cap(&cfg, &api);
    let state = AppState::new(api.clone(), cfg.clone(), setup.clone(), shutdown_rx.clone());
    let broadcaster = tokio::spawn(super::fanout::run(
        state.hub.clone(),
        api,
        cfg.broadcast_interval,
        shutdown_rx,
    ));
    let app = routes(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| ServerError::Bind {
            addr: cfg.listen,
            source,
        })?
        .handle(handle.clone())
        .first_request_timeout(cfg.header_timeout);
    // axum-server turns hyper's header-read timeout off; hyper starts it whenever it waits for a
    // request head, so it also ends idle keep-alive connections.
    server
        .http_builder()
        .http1()
        .header_read_timeout(cfg.header_timeout);
    let task = match tls {
        None => {
            let server = server.acceptor(capped);
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "remote server stopped");
                }
            })
        }
        Some(rc) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rc)
                .handshake_timeout(cfg.header_timeout)
                .acceptor(capped);
            let server = server.acceptor(acceptor);
            tokio::spawn(async move {
                if let Err(e) = server.serve(app).await {
                    tracing::error!(error = %e, "remote server stopped");
                }
            })
        }
    };
    tracing::info!(
        addr = %local_addr,
        tls = cfg.tls.is_some(),
        "remote server listening"
    );
    Ok(ServerHandle {
        local_addr,
        handle,
        shutdown_tx,
        task: Some(task),
        broadcaster: Some(broadcaster),
        setup,
    })
}

/// While no user exists: a fresh setup code, printed to the log/console.
async fn setup_code(api: &Api) -> Option<Arc<SetupCode>> {
    if api.auth().has_users().await.unwrap_or(true) {
        return None;
    }
    let code = SetupCode::generate();
    tracing::warn!(
        setup_code = %code.display().unwrap_or_default(),
        "no user exists yet: create the first superuser on the panel, or in a browser on this \
         machine with this one-time setup code"
    );
    Some(Arc::new(code))
}

/// The connection-capping acceptor, after raising the descriptor limit.
fn connection_cap(cfg: &ServerConfig, api: &Api) -> Capped {
    let fd_limit = conn::raise_fd_limit();
    let cap = conn::connection_cap(cfg.max_connections, fd_limit);
    if cap < cfg.max_connections {
        tracing::warn!(
            configured = cfg.max_connections,
            cap,
            fd_limit,
            "remote.max_connections lowered to keep descriptors for the PLCs and the database"
        );
    }
    if cap <= cfg.max_clients + cfg.max_unauthenticated {
        tracing::warn!(
            cap,
            max_clients = cfg.max_clients,
            "the connection cap leaves little room besides the WebSocket clients"
        );
    }
    tracing::info!(cap, fd_limit, "connection cap");
    Capped::new(cap, cfg.idle_timeout, api.metrics().clone())
}
