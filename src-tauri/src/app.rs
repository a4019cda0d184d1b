//! The running core shared by `stator serve` and the desktop window: store, auth, live cache,
//! PLC engine (plus the in-process simulator with `--demo`) and the remote server.
//!
//! Both front ends start exactly this, so the panel and remote browsers always see the same
//! engine, the same sessions and the same audit trail.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Api, SharedEngine};
use crate::auth::Auth;
use crate::cli::{EXIT_CONFIG, EXIT_FAILURE};
use crate::config::Config;
use crate::live::Cache;
use crate::plc::{Engine, EngineOptions};
use crate::remote::{ServerConfig, ServerHandle};
use crate::sim::{SimHandle, SimOptions};

/// Everything that runs while Stator runs.
pub struct Core {
    /// The one dispatcher every transport uses.
    pub api: Api,
    engine: SharedEngine,
    sim: Option<SimHandle>,
    server: Option<ServerHandle>,
}

impl Core {
    /// Opens the database, starts the engine (and the simulator with `demo`) and the remote
    /// server. Errors are logged; the returned code is the process exit code to use.
    pub async fn start(cfg: Config, db: PathBuf, demo: bool) -> Result<Core, i32> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::error!(path = %dir.display(), error = %e, "cannot create the database directory");
                return Err(EXIT_FAILURE);
            }
        }
        let store = crate::store::Store::open(&db).map_err(|e| {
            tracing::error!(path = %db.display(), error = %e, "cannot open the database");
            EXIT_FAILURE
        })?;
        let auth = Auth::new(store, &cfg);
        if let Err(e) = auth.log_first_run_hint().await {
            tracing::error!(error = %e, "cannot read users");
        }
        let cfg = Arc::new(cfg);
        let cache = Cache::from_config(&cfg);
        let mut opts = EngineOptions::new(crate::plc::certs::pki_dir(&cfg));
        opts.password = Arc::new(|id: &str| {
            crate::auth::secrets::get(&format!("plc/{id}")).map_err(|e| e.to_string())
        });
        let sim = if demo {
            let so = SimOptions {
                plcs: cfg.plc_config.len().min(u16::MAX as usize) as u16,
                ..SimOptions::ephemeral()
            };
            let h = crate::sim::start(so).await.map_err(|e| {
                tracing::error!(error = %e, "cannot start the simulator");
                EXIT_FAILURE
            })?;
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
        let api = Api::with_writer(auth, cache, cfg.clone(), engine.clone());
        let mut core = Core {
            api,
            engine,
            sim,
            server: None,
        };
        if !cfg.remote.enabled {
            tracing::warn!("remote.enabled is false: running without the remote server");
            return Ok(core);
        }
        let scfg = match ServerConfig::from_config(&cfg) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "bad remote configuration");
                core.shutdown().await;
                return Err(EXIT_CONFIG);
            }
        };
        match crate::remote::start(core.api.clone(), scfg).await {
            Ok(s) => {
                tracing::info!(addr = %s.local_addr(), "remote server listening");
                core.server = Some(s);
                Ok(core)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the remote server");
                core.shutdown().await;
                Err(EXIT_FAILURE)
            }
        }
    }

    /// Stops the server, the engine and the simulator, each bounded in time.
    pub async fn shutdown(self) {
        if let Some(s) = self.server {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.shutdown()).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.engine.shutdown()).await;
        // Counted anonymous write refusals of the current minute are stored, not lost.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.api.flush_refused_writes()).await;
        if let Some(h) = self.sim {
            let _ = tokio::time::timeout(Duration::from_secs(3), h.stop()).await;
        }
    }
}
