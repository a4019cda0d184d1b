//! The running core shared by `stator serve`, `stator hub` and the desktop window: store, auth,
//! live cache, what feeds the cache — the PLC engine (plus the in-process simulator with
//! `--demo`) or, for a hub, the Sparkplug B subscriber — and the remote server.
//!
//! Every front end starts exactly this, so the panel and remote browsers always see the same
//! engine, the same sessions and the same audit trail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Api, SharedEngine};
use crate::auth::Auth;
use crate::config::Config;
use crate::live::Cache;
use crate::plc::{Engine, EngineOptions};
use crate::remote::{ServerConfig, ServerError, ServerHandle};
use crate::sim::{SimError, SimHandle, SimOptions};
use crate::store::StoreError;

/// Why the core did not start. Whatever had started is stopped again before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The database could not be opened (or its directory created).
    #[error("cannot open the database: {source}")]
    Database { path: PathBuf, source: StoreError },
    /// The audit chain key could not be read from (or created in) the secret store.
    #[error("cannot get the audit chain key: {0}")]
    AuditKey(String),
    /// The historian's file could not be opened (or its writer started).
    #[error("cannot open the history database {path}: {source}")]
    History {
        path: PathBuf,
        source: crate::history::HistoryError,
    },
    /// The in-process simulator of `--demo` did not start.
    #[error("cannot start the simulator: {0}")]
    Simulator(#[source] SimError),
    /// The `remote` section does not describe a server that can run.
    #[error("bad remote configuration: {0}")]
    RemoteConfig(#[source] ServerError),
    /// The remote server could not listen.
    #[error("cannot start the remote server: {0}")]
    RemoteStart(#[source] ServerError),
    /// The MQTT publisher could not start (e.g. its CA file is unreadable).
    #[error("cannot start the MQTT publisher: {0}")]
    Mqtt(String),
    /// The Sparkplug hub could not start (e.g. its CA file or broker password is unreadable).
    #[error("cannot start the hub: {0}")]
    Hub(String),
}

/// What feeds the live cache.
pub enum Feed {
    /// The PLC engine (`serve`, the desktop); with `demo`, against the built-in simulator.
    Plcs { demo: bool },
    /// `stator hub`: the Sparkplug B edge nodes of `group` on `broker`.
    Hub {
        broker: crate::config::BrokerAddr,
        group: String,
    },
}

impl CoreError {
    /// True when the configuration is at fault (the command line exits 2 for those).
    pub fn is_config(&self) -> bool {
        matches!(self, CoreError::RemoteConfig(_))
    }
}

/// Everything that runs while Stator runs.
pub struct Core {
    /// The one dispatcher every transport uses.
    pub api: Api,
    engine: Option<SharedEngine>,
    hub: Option<crate::mqtt::hub::HubHandle>,
    history: Option<crate::history::Historian>,
    sim: Option<SimHandle>,
    server: Option<ServerHandle>,
    mqtt: Option<crate::mqtt::MqttHandle>,
}

impl Core {
    /// Opens the database (creating its directory) with the audit chain key from the secret
    /// store (created at the first start), starts the engine (and the simulator with `demo`) and
    /// the remote server.
    pub async fn start(cfg: Config, db: PathBuf, demo: bool) -> Result<Core, CoreError> {
        Self::start_fed(cfg, db, Feed::Plcs { demo }).await
    }

    /// Like [`Core::start`], with the cache fed by `feed`: for a hub no engine starts (and the
    /// `mqtt` edge section is not used), the Sparkplug subscriber does, and writes are refused
    /// unless `hub.allow_writes`.
    pub async fn start_fed(cfg: Config, db: PathBuf, feed: Feed) -> Result<Core, CoreError> {
        // Fail closed: without the key no audit row could be written, so nothing starts.
        let key = tokio::task::spawn_blocking(|| audit_key(true))
            .await
            .map_err(|e| e.to_string())
            .and_then(|k| k)
            .and_then(|k| k.ok_or_else(|| "no audit key".to_string()))
            .map_err(CoreError::AuditKey)?;
        let spool_dir = db.with_extension("mqtt-store");
        let store =
            crate::store::Store::open_keyed(&db, &key).map_err(|source| CoreError::Database {
                path: db.clone(),
                source,
            })?;
        tokio::spawn(maintenance(store.clone()));
        let auth = Auth::new(store, &cfg);
        if let Err(e) = auth.log_first_run_hint().await {
            tracing::error!(error = %e, "cannot read users");
        }
        let cfg = Arc::new(cfg);
        let cache = Cache::from_config(&cfg);
        // The historian listens before the engine starts, so it sees the first values too.
        let history = if cfg.history.enabled {
            let path = crate::history::Historian::path_for(&cfg.history, &db);
            let h = crate::history::Historian::open(&path, &cfg.history)
                .map_err(|source| CoreError::History { path, source })?;
            h.record(cache.clone(), cfg.clone());
            Some(h)
        } else {
            None
        };
        let (engine, sim, hub_feed) = match feed {
            Feed::Plcs { demo } => {
                let (engine, sim) = start_engine(&cfg, &cache, demo).await?;
                (Some(engine), sim, None)
            }
            Feed::Hub { broker, group } => (None, None, Some((broker, group))),
        };
        let api = match &engine {
            Some(e) => Api::with_writer(auth, cache, cfg.clone(), e.clone()),
            None => Api::new(auth, cache, cfg.clone()),
        };
        if let Some(h) = &history {
            api.attach_history(h.clone());
        }
        if let Err(e) = api.start_alarms().await {
            // Without the stored alarm state, acknowledged alarms would come back unacknowledged;
            // run without alarms rather than mislead, and say so loudly.
            tracing::error!(error = %e, "cannot read the stored alarm state: alarms are not evaluated");
        }
        let mut core = Core {
            api,
            engine,
            hub: None,
            history,
            sim,
            server: None,
            mqtt: None,
        };
        if let Some((broker, group)) = hub_feed {
            if cfg.mqtt.is_some() {
                tracing::warn!("a hub does not publish: the mqtt section is not used");
            }
            match start_hub(&core.api, &broker, group).await {
                Ok(h) => core.hub = Some(h),
                Err(e) => {
                    core.shutdown().await;
                    return Err(e);
                }
            }
        } else if let Some(m) = cfg.mqtt.clone() {
            match start_mqtt(&core.api, m, cfg.broadcast_interval_seconds, spool_dir).await {
                Ok(h) => core.mqtt = Some(h),
                Err(e) => {
                    core.shutdown().await;
                    return Err(e);
                }
            }
        }
        if !cfg.remote.enabled {
            tracing::warn!("remote.enabled is false: running without the remote server");
            return Ok(core);
        }
        let scfg = match ServerConfig::from_config(&cfg) {
            Ok(s) => s,
            Err(e) => {
                core.shutdown().await;
                return Err(CoreError::RemoteConfig(e));
            }
        };
        match crate::remote::start(core.api.clone(), scfg).await {
            Ok(s) => {
                tracing::info!(addr = %s.local_addr(), "remote server listening");
                core.server = Some(s);
                Ok(core)
            }
            Err(e) => {
                core.shutdown().await;
                Err(CoreError::RemoteStart(e))
            }
        }
    }

    /// Stops the server, the engine and the simulator, each bounded in time, then anchors the
    /// audit chain.
    pub async fn shutdown(self) {
        let store = self.api.auth().store().clone();
        if let Some(m) = self.mqtt {
            m.shutdown().await;
        }
        if let Some(h) = self.hub {
            h.shutdown().await;
        }
        if let Some(s) = self.server {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.shutdown()).await;
        }
        if let Some(e) = &self.engine {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.shutdown()).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api.alarms().stop()).await;
        if let Some(h) = &self.history {
            let _ = tokio::time::timeout(Duration::from_secs(5), h.shutdown()).await;
        }
        // Counted anonymous write refusals of the current minute are stored, not lost.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api.flush_refused_writes()).await;
        if let Some(h) = self.sim {
            let _ = tokio::time::timeout(Duration::from_secs(3), h.stop()).await;
        }
        let _ = tokio::task::spawn_blocking(move || store.anchor_now()).await;
    }
}

/// Starts the PLC engine (and with `demo` the simulator every PLC then points at).
async fn start_engine(
    cfg: &Arc<Config>,
    cache: &Cache,
    demo: bool,
) -> Result<(SharedEngine, Option<SimHandle>), CoreError> {
    let mut opts = EngineOptions::new(crate::plc::certs::pki_dir(cfg));
    opts.password = Arc::new(|id: &str| {
        crate::auth::secrets::get(&format!("plc/{id}")).map_err(|e| e.to_string())
    });
    let sim = if demo {
        let so = SimOptions {
            plcs: cfg.plc_config.len().min(u16::MAX as usize) as u16,
            ..SimOptions::ephemeral()
        };
        let h = crate::sim::start(so).await.map_err(CoreError::Simulator)?;
        let urls: HashMap<String, String> = cfg
            .plc_config
            .iter()
            .map(|p| p.id.clone())
            .zip(h.endpoints())
            .collect();
        tracing::info!(?urls, "--demo: every PLC points at the built-in simulator");
        opts.url_override = Some(urls);
        Some(h)
    } else {
        None
    };
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    Ok((engine, sim))
}

/// Starts the Sparkplug hub with its broker password from the secret store (`mqtt/hub`, when
/// `hub.username` is configured). A broker that is down is no error: the hub retries.
async fn start_hub(
    api: &Api,
    broker: &crate::config::BrokerAddr,
    group: String,
) -> Result<crate::mqtt::hub::HubHandle, CoreError> {
    let cfg = api.config();
    let password = if cfg.hub.as_ref().is_some_and(|h| h.username.is_some()) {
        let name = crate::config::HUB_SECRET;
        tokio::task::spawn_blocking(move || crate::auth::secrets::get(name))
            .await
            .map_err(|e| CoreError::Hub(e.to_string()))?
            .map_err(|e| CoreError::Hub(format!("secret {name}: {e}")))?
    } else {
        None
    };
    let (api, broker) = (api.clone(), broker.clone());
    tokio::task::spawn_blocking(move || crate::mqtt::hub::start(api, &broker, group, password))
        .await
        .map_err(|e| CoreError::Hub(e.to_string()))?
        .map_err(|e| CoreError::Hub(e.0))
}

/// Starts the MQTT publisher with its broker password from the secret store (when a user name
/// is configured). A broker that is down is no error: the publisher retries.
async fn start_mqtt(
    api: &Api,
    m: crate::config::MqttConfig,
    interval_s: f64,
    store_dir: PathBuf,
) -> Result<crate::mqtt::MqttHandle, CoreError> {
    let password = if m.username.is_some() {
        let name = m.secret_name();
        tokio::task::spawn_blocking(move || crate::auth::secrets::get(&name))
            .await
            .map_err(|e| CoreError::Mqtt(e.to_string()))?
            .map_err(|e| CoreError::Mqtt(format!("secret {}: {e}", m.secret_name())))?
    } else {
        None
    };
    let interval = Duration::from_secs_f64(interval_s);
    let api = api.clone();
    tokio::task::spawn_blocking(move || {
        crate::mqtt::start(api, m, password, interval, Some(&store_dir))
    })
    .await
    .map_err(|e| CoreError::Mqtt(e.to_string()))?
    .map_err(|e| CoreError::Mqtt(e.0))
}

/// The secret-store entry holding the audit chain's HMAC key.
pub const AUDIT_KEY_SECRET: &str = "audit/hmac";

/// The audit chain's key from the secret store; with `create`, a random one is stored first when
/// there is none (first start). Blocking (secret-store I/O).
pub fn audit_key(create: bool) -> Result<Option<crate::store::AuditKey>, String> {
    use crate::store::AuditKey;
    let fail = |e: crate::auth::secrets::SecretError| {
        format!("audit key (secret {AUDIT_KEY_SECRET}): {e}")
    };
    match crate::auth::secrets::get(AUDIT_KEY_SECRET).map_err(fail)? {
        Some(hex) => AuditKey::from_hex(&hex).map(Some),
        None if create => {
            let k = AuditKey::generate();
            crate::auth::secrets::set(AUDIT_KEY_SECRET, &k.to_hex()).map_err(fail)?;
            tracing::info!("created the audit chain key (secret {AUDIT_KEY_SECRET})");
            Ok(Some(k))
        }
        None => Ok(None),
    }
}

/// How often the maintenance task runs: anchors the audit head when rows were added; prunes
/// old sessions and `user_changes` every [`PRUNE_EVERY`] ticks (and at start).
const MAINTENANCE_TICK: Duration = Duration::from_secs(5 * 60);
const PRUNE_EVERY: u32 = 12;

/// Periodic store upkeep for as long as the process runs.
async fn maintenance(store: crate::store::Store) {
    let mut tick = tokio::time::interval(MAINTENANCE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u32.. {
        tick.tick().await;
        let s = store.clone();
        let prune = n % PRUNE_EVERY == 0;
        let res = tokio::task::spawn_blocking(move || {
            s.anchor_now();
            if prune {
                return s.prune_blocking(chrono::Utc::now()).map(Some);
            }
            Ok(None)
        })
        .await;
        match res {
            Ok(Ok(Some(p))) if p.sessions + p.user_changes > 0 => {
                tracing::info!(
                    sessions = p.sessions,
                    user_changes = p.user_changes,
                    "pruned"
                )
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "store maintenance failed"),
            _ => {}
        }
    }
}
