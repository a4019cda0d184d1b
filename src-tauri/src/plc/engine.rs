//! The engine: one tokio task per PLC running the connection state machine
//! `DISCONNECTED → CONNECTING → CONNECTED → ERROR → (reconnect scheduled)`.
//!
//! Each task connects, reads the server name, discovers the tags afresh, subscribes (or polls),
//! and on any loss reports ERROR with a reason and retries (every second for the first minutes of
//! an outage, at once when the PLC's port opens again, then backing off to
//! `plc_reconnect_delay_minutes`; see [`crate::plc::retry`]). One PLC failing never slows
//! another: they share nothing but the cache, whose critical sections are short.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opcua::client::Session;
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Acquisition, Config, PlcConfig};
use crate::live::{Cache, PlcStatus};
use crate::plc::connection::{self, ConnectError, Connected, Target};
use crate::plc::discovery::{self, DiscoveredTag, OpLimits};
use crate::plc::netwatch::NetSignal;
use crate::plc::{retry, subscribe};

/// Looks up the password of a PLC's user (the integrator wires the OS keyring, entry
/// `plc/<id>`). `Ok(None)`: no password stored.
pub type PasswordFn = Arc<dyn Fn(&str) -> Result<Option<String>, String> + Send + Sync>;

/// How the engine is wired into its surroundings.
#[derive(Clone)]
pub struct EngineOptions {
    /// OPC UA PKI directory (own/, private/, trusted/, rejected/).
    pub pki_dir: PathBuf,
    /// Password of a PLC's configured `username`, by PLC id.
    pub password: PasswordFn,
    /// `--demo`: PLC id → simulator endpoint URL, replacing the configured URL.
    pub url_override: Option<HashMap<String, String>>,
    /// Network changes: each one makes every PLC that is not connected retry at once (and
    /// restarts a connection attempt in flight). [`Engine::start`] feeds it from the OS.
    pub network: NetSignal,
}

impl EngineOptions {
    /// Options without passwords or overrides (tests, anonymous plants).
    pub fn new(pki_dir: impl Into<PathBuf>) -> Self {
        Self {
            pki_dir: pki_dir.into(),
            password: Arc::new(|_| Ok(None)),
            url_override: None,
            network: NetSignal::new(),
        }
    }
}

pub use crate::plc::retry::{Backoff, FAST_RETRY as FIRST_RETRY};
/// Total time [`Engine::shutdown`] may take.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_millis(1000);

/// What a connected PLC offers to writers.
pub(crate) struct Live {
    pub(crate) session: Arc<Session>,
    pub(crate) tags: Arc<Vec<DiscoveredTag>>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) limits: OpLimits,
}

/// Per-PLC state shared between its task and [`Engine::write`].
pub(crate) struct PlcShared {
    pub(crate) live: RwLock<Option<Arc<Live>>>,
    pub(crate) diag: crate::plc::diag::PlcDiag,
}

/// The running acquisition engine.
pub struct Engine {
    pub(crate) cfg: Arc<Config>,
    pub(crate) cache: Cache,
    pub(crate) plcs: HashMap<String, Arc<PlcShared>>,
    runs: HashMap<String, Run>,
    opts: EngineOptions,
}

/// One PLC's task and the switch that stops it (per PLC, so that a configuration change can
/// stop or restart one park without touching the others).
struct Run {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Engine {
    /// Spawns one task per configured PLC. Must be called inside a tokio runtime.
    pub fn start(cfg: Arc<Config>, cache: Cache, opts: EngineOptions) -> Engine {
        for w in cfg.warnings() {
            tracing::warn!("{w}");
        }
        if !opts.network.watch_os() {
            tracing::debug!("network changes are not watched on this system");
        }
        let mut e = Engine {
            cfg: cfg.clone(),
            cache,
            plcs: HashMap::new(),
            runs: HashMap::new(),
            opts,
        };
        for plc in &cfg.plc_config {
            e.spawn(plc);
        }
        e
    }

    fn spawn(&mut self, plc: &PlcConfig) {
        let shared = Arc::new(PlcShared {
            live: RwLock::new(None),
            diag: Default::default(),
        });
        let received = shared.diag.received.clone();
        self.plcs.insert(plc.id.clone(), shared.clone());
        let (stop, rx) = watch::channel(false);
        let ctx = PlcTask {
            cfg: self.cfg.clone(),
            plc: plc.clone(),
            cache: self.cache.clone(),
            opts: self.opts.clone(),
            shared,
            received,
        };
        let task = tokio::spawn(ctx.run(rx));
        self.runs.insert(plc.id.clone(), Run { task, stop });
    }

    /// Stops the tasks of these PLCs (bounded by [`SHUTDOWN_LIMIT`]) and forgets them.
    async fn stop(&mut self, ids: &[String]) {
        let mut runs: Vec<Run> = ids.iter().filter_map(|id| self.runs.remove(id)).collect();
        for id in ids {
            self.plcs.remove(id);
        }
        for r in &runs {
            let _ = r.stop.send(true);
        }
        let all = futures::future::join_all(runs.iter_mut().map(|r| &mut r.task));
        if tokio::time::timeout(SHUTDOWN_LIMIT, all).await.is_err() {
            for r in &runs {
                r.task.abort();
            }
        }
    }

    /// Follows a changed configuration: removed PLCs are disconnected, added ones connect, and
    /// changed ones (their entry, or the settings every PLC uses: root node, sampling interval,
    /// reconnect delay, PKI directory) reconnect; the others keep their sessions. Tag metadata
    /// is read from the new configuration from now on. The cache must already know the added
    /// PLCs ([`Cache::reconfigure`]).
    pub async fn reconfigure(&mut self, cfg: Arc<Config>) {
        let shared_changed = self.cfg.common_root_node_id != cfg.common_root_node_id
            || self.cfg.broadcast_interval_seconds != cfg.broadcast_interval_seconds
            || self.cfg.plc_reconnect_delay_minutes != cfg.plc_reconnect_delay_minutes
            || self.cfg.pki_dir != cfg.pki_dir;
        let stale: Vec<String> = self
            .runs
            .keys()
            .filter(|id| match (self.cfg.plc(id), cfg.plc(id)) {
                (Some(old), Some(new)) => shared_changed || old != new,
                _ => true,
            })
            .cloned()
            .collect();
        self.stop(&stale).await;
        self.cfg = cfg.clone();
        for plc in &cfg.plc_config {
            if !self.runs.contains_key(&plc.id) {
                tracing::info!(plc = %plc.id, "configuration changed: connecting");
                self.spawn(plc);
            }
        }
    }

    /// Value notifications (and polled values) taken from all PLCs since start; for benches and
    /// diagnostics.
    pub fn values_received(&self) -> u64 {
        self.plcs
            .values()
            .map(|s| s.diag.received.load(Ordering::Relaxed))
            .sum()
    }

    /// Connection state of one PLC (from the cache).
    pub fn status(&self, plc: &str) -> Option<PlcStatus> {
        self.cache.status(plc)
    }

    /// The cache the engine writes into.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Stops every PLC task and closes their sessions; bounded by [`SHUTDOWN_LIMIT`], never hangs.
    pub async fn shutdown(mut self) {
        let ids: Vec<String> = self.runs.keys().cloned().collect();
        self.stop(&ids).await;
        for id in &ids {
            self.cache
                .set_status(id, PlcStatus::Disconnected, Some("stopped".into()));
        }
    }
}

enum Outcome {
    Shutdown,
    /// The attempt failed or the connection was lost; `connected` tells whether it got as far
    /// as CONNECTED (then the backoff restarts from the first delay).
    Failed {
        error: ConnectError,
        connected: bool,
    },
}

struct PlcTask {
    cfg: Arc<Config>,
    plc: PlcConfig,
    cache: Cache,
    opts: EngineOptions,
    shared: Arc<PlcShared>,
    received: Arc<AtomicU64>,
}

impl PlcTask {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let id = self.plc.id.clone();
        let cap = Duration::from_secs_f64((self.cfg.plc_reconnect_delay_minutes * 60.0).max(1.0));
        let mut backoff = Backoff::new(cap);
        let mut last_error: Option<String> = None;
        let mut net = self.opts.network.subscribe();
        loop {
            if *shutdown.borrow() {
                break;
            }
            self.cache
                .set_status(&id, PlcStatus::Connecting, last_error.clone());
            // A network change from here on makes the next wait end at once.
            net.borrow_and_update();
            match self.cycle(&mut shutdown, &mut net).await {
                Outcome::Shutdown => break,
                Outcome::Failed { error, connected } => {
                    *self.shared.live.write() = None;
                    self.shared.diag.lost();
                    self.shared.diag.error(error.message());
                    if connected {
                        backoff.reset();
                        last_error = None;
                    }
                    let delay = backoff.next_delay();
                    let msg = format!("{}; retrying in {}", error.message(), human(delay));
                    // Once per outage and reason: retrying every second must not flood the log.
                    let repeated = last_error.as_deref() == Some(error.message());
                    match &error {
                        _ if repeated => tracing::debug!(plc = %id, "{msg}"),
                        ConnectError::Final(_) => tracing::error!(plc = %id, "{msg}"),
                        ConnectError::Transient(_) => tracing::warn!(plc = %id, "{msg}"),
                    }
                    self.cache
                        .set_status(&id, PlcStatus::Error, Some(error.message().to_string()));
                    last_error = Some(error.message().to_string());
                    let probe_every = if backoff.fast(tokio::time::Instant::now()) {
                        retry::PROBE_EVERY
                    } else {
                        retry::SLOW_PROBE_EVERY
                    };
                    let url = self.url();
                    tokio::select! {
                        woke = retry::wait(&url, delay, probe_every, &mut net) => {
                            if woke == retry::Woke::Network {
                                tracing::info!(plc = %id, "network changed: retrying now");
                            }
                        }
                        _ = shutdown.changed() => break,
                    }
                }
            }
        }
        *self.shared.live.write() = None;
    }

    /// The endpoint URL (the configured one, or the `--demo` override).
    fn url(&self) -> String {
        self.opts
            .url_override
            .as_ref()
            .and_then(|m| m.get(&self.plc.id))
            .cloned()
            .unwrap_or_else(|| self.plc.url.clone())
    }

    async fn target(&self) -> Result<Target, ConnectError> {
        let url = self.url();
        let password = match &self.plc.username {
            Some(_) => {
                // The lookup is blocking I/O (keyring over D-Bus, secret file): off the async
                // task, so that it never stalls the runtime's worker.
                let (lookup, id) = (self.opts.password.clone(), self.plc.id.clone());
                tokio::task::spawn_blocking(move || lookup(&id))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
                    .map_err(|e| {
                        ConnectError::Final(format!(
                            "cannot read the password of plc/{}: {e}",
                            self.plc.id
                        ))
                    })?
            }
            None => None,
        };
        Ok(Target {
            plc_id: Some(self.plc.id.clone()),
            url,
            policy: self.plc.security_policy,
            mode: self.plc.security_mode,
            username: self.plc.username.clone(),
            password,
            pki_dir: self.opts.pki_dir.clone(),
        })
    }

    fn interval(&self) -> Duration {
        let s = self.cfg.sampling_seconds_for(&self.plc);
        Duration::from_secs_f64(s.clamp(0.01, 86_400.0))
    }

    /// One connection: connect, discover, subscribe/poll, run until lost or shut down.
    async fn cycle(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        net: &mut watch::Receiver<u64>,
    ) -> Outcome {
        let failed = |error| Outcome::Failed {
            error,
            connected: false,
        };
        let target = match self.target().await {
            Ok(t) => t,
            Err(e) => return failed(e),
        };
        // An attempt stuck on a network that just changed (e.g. SYNs into a link that was
        // down) starts again at once instead of waiting out its timeout.
        let conn = loop {
            tokio::select! {
                r = connection::connect(&target) => break r,
                _ = shutdown.changed() => return Outcome::Shutdown,
                Ok(()) = net.changed() => {
                    tracing::debug!(plc = %self.plc.id, "network changed: connecting again");
                }
            }
        };
        let conn = match conn {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let setup = tokio::select! {
            r = self.setup(&conn) => Some(r),
            _ = shutdown.changed() => None,
        };
        let (live, poll) = match setup {
            Some(Ok(x)) => x,
            None => {
                *self.shared.live.write() = None;
                connection::close(conn, Duration::from_millis(500)).await;
                return Outcome::Shutdown;
            }
            Some(Err(e)) => {
                *self.shared.live.write() = None;
                connection::close(conn, Duration::from_millis(500)).await;
                return failed(e);
            }
        };
        self.run_connected(conn, live, poll, shutdown).await
    }

    /// Server name, discovery, acquisition. Returns the live state and the tag indices to poll.
    async fn setup(&self, conn: &Connected) -> Result<(Arc<Live>, Vec<usize>), ConnectError> {
        let id = &self.plc.id;
        let session = &conn.session;
        self.cache.set_server_name(id, conn.server_name.clone());
        self.shared.diag.server_cert(conn.server_cert.clone());
        let limits = discovery::read_limits(session).await;
        let root = self.cfg.root_for(&self.plc);
        let root: opcua::types::NodeId = root
            .parse()
            .map_err(|_| ConnectError::Final(format!("invalid root node id {root:?}")))?;
        let started = std::time::Instant::now();
        let tags = discovery::discover(session, &root, &limits, false)
            .await
            .map_err(|e| {
                ConnectError::Transient(format!(
                    "discovery below {root} failed ({})",
                    crate::plc::values::status_name(e.status())
                ))
            })?;
        if tags.is_empty() {
            tracing::warn!(plc = %id, "no variables found below {root}");
        }
        tracing::info!(plc = %id, tags = tags.len(), "discovered in {:?}", started.elapsed());
        self.shared
            .diag
            .discovery_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.cache
            .set_tags(id, tags.iter().map(|t| t.meta.clone()).collect());
        let tags = Arc::new(tags);
        let index = tags
            .iter()
            .enumerate()
            .map(|(i, t)| (t.meta.name.clone(), i))
            .collect();
        let live = Arc::new(Live {
            session: session.clone(),
            tags: tags.clone(),
            index,
            limits,
        });
        // Writable, then CONNECTED (and the old error cleared), both before the first value can
        // arrive: no update carries fresh values under a stale CONNECTING/error status, and a
        // park shown CONNECTED never refuses a write as not connected.
        *self.shared.live.write() = Some(live.clone());
        self.cache.set_status(id, PlcStatus::Connected, None);
        let poll: Vec<usize> = match self.plc.acquisition {
            Acquisition::Poll => (0..tags.len()).collect(),
            Acquisition::Subscribe => {
                match subscribe::subscribe(
                    session,
                    id,
                    &self.cache,
                    &tags,
                    self.interval(),
                    &limits,
                    &self.received,
                )
                .await
                {
                    Ok(refused) => {
                        if !refused.is_empty() {
                            tracing::warn!(plc = %id, n = refused.len(), "monitored items refused; polling those");
                        }
                        refused
                    }
                    Err(e) => {
                        tracing::warn!(plc = %id, "subscriptions refused ({}); polling instead", crate::plc::values::status_name(e.status()));
                        self.shared
                            .diag
                            .polling_fallback
                            .store(true, Ordering::Relaxed);
                        (0..tags.len()).collect()
                    }
                }
            }
        };
        let d = &self.shared.diag;
        d.polled_items.store(poll.len() as u64, Ordering::Relaxed);
        d.monitored_items.store(
            (tags.len() - poll.len().min(tags.len())) as u64,
            Ordering::Relaxed,
        );
        if !poll.is_empty() && poll.len() < tags.len() {
            d.polling_fallback.store(false, Ordering::Relaxed);
        }
        Ok((live, poll))
    }

    async fn run_connected(
        &self,
        conn: Connected,
        live: Arc<Live>,
        poll: Vec<usize>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let id = &self.plc.id;
        *self.shared.live.write() = Some(live.clone());
        self.cache.set_status(id, PlcStatus::Connected, None);
        self.shared.diag.connected();
        tracing::info!(plc = %id, "connected");
        // Field notes: make sure data flows right away after (re)connecting.
        conn.session.trigger_publish_now();
        let names: Vec<String> = poll
            .iter()
            .map(|&i| live.tags[i].meta.name.clone())
            .collect();
        let nodes: Vec<opcua::types::NodeId> =
            poll.iter().map(|&i| live.tags[i].node.clone()).collect();
        let mut ticker = tokio::time::interval(self.interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let Connected {
            session,
            mut event_loop,
            server_name,
            server_cert,
        } = conn;
        loop {
            tokio::select! {
                r = &mut event_loop => {
                    let status = r.unwrap_or(opcua::types::StatusCode::BadInternalError);
                    let why = if status.is_good() {
                        "connection lost".to_string()
                    } else {
                        format!("connection lost ({})", crate::plc::values::status_name(status))
                    };
                    return Outcome::Failed { error: ConnectError::Transient(why), connected: true };
                }
                _ = ticker.tick(), if !nodes.is_empty() => {
                    if let Err(e) = subscribe::poll_once(&session, id, &self.cache, &names, &nodes, &live.limits, &self.received).await {
                        tracing::debug!(plc = %id, "poll failed: {e}");
                    }
                }
                _ = shutdown.changed() => {
                    *self.shared.live.write() = None;
                    connection::close(Connected { session, event_loop, server_name, server_cert }, Duration::from_millis(500)).await;
                    return Outcome::Shutdown;
                }
            }
        }
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}
