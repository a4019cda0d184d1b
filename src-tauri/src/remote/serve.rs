//! `stator serve`: headless engine + store + remote server, until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use crate::api::{Api, SharedEngine};
use crate::auth::Auth;
use crate::cli::{GlobalArgs, ServeArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::config::Config;
use crate::live::Cache;
use crate::plc::{Engine, EngineOptions};
use crate::sim::SimOptions;

/// Entry point of `stator serve`; returns the exit code.
pub fn run(global: &GlobalArgs, args: ServeArgs) -> i32 {
    let (mut cfg, _path) = match crate::cli::load_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(l) = &args.listen {
        if let Err(e) = l.parse::<SocketAddr>() {
            eprintln!("error: --listen {l:?} is not an address such as 127.0.0.1:8765 ({e})");
            return EXIT_CONFIG;
        }
        cfg.remote.listen = l.clone();
    }
    crate::logging::init(&cfg.logging.level);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let db = crate::store::cli::db_path(global, Some(&cfg));
    rt.block_on(serve(cfg, db, args.demo))
}

async fn serve(cfg: Config, db: PathBuf, demo: bool) -> i32 {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::error!(path = %dir.display(), error = %e, "cannot create the database directory");
            return EXIT_FAILURE;
        }
    }
    let store = match crate::store::Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(path = %db.display(), error = %e, "cannot open the database");
            return EXIT_FAILURE;
        }
    };
    let auth = Auth::new(store, &cfg);
    if let Err(e) = auth.log_first_run_hint().await {
        tracing::error!(error = %e, "cannot read users");
    }
    let cfg = Arc::new(cfg);
    let cache = Cache::from_config(&cfg);
    let mut sim = None;
    let mut opts = EngineOptions::new(
        cfg.pki_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("certs")),
    );
    opts.password = Arc::new(|id: &str| {
        crate::auth::secrets::get(&format!("plc/{id}")).map_err(|e| e.to_string())
    });
    if demo {
        let so = SimOptions {
            plcs: cfg.plc_config.len().min(u16::MAX as usize) as u16,
            ..SimOptions::ephemeral()
        };
        match crate::sim::start(so).await {
            Ok(h) => {
                let urls: HashMap<String, String> = cfg
                    .plc_config
                    .iter()
                    .map(|p| p.id.clone())
                    .zip(h.endpoints())
                    .collect();
                tracing::info!(?urls, "--demo: every PLC points at the built-in simulator");
                opts.url_override = Some(urls);
                sim = Some(h);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot start the simulator");
                return EXIT_FAILURE;
            }
        }
    }
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth, cache, cfg.clone(), Arc::new(engine.clone()));
    let code = run_server(&cfg, api).await;
    tracing::info!("shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.shutdown()).await;
    if let Some(h) = sim {
        let _ = tokio::time::timeout(Duration::from_secs(3), h.stop()).await;
    }
    code
}

/// Runs the remote server (when enabled) until a signal; returns the exit code.
async fn run_server(cfg: &Config, api: Api) -> i32 {
    if !cfg.remote.enabled {
        tracing::warn!("remote.enabled is false: running without the remote server");
        wait_for_signal().await;
        return 0;
    }
    let scfg = match super::ServerConfig::from_config(cfg) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "bad remote configuration");
            return EXIT_CONFIG;
        }
    };
    let server = match super::start(api, scfg).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the remote server");
            return EXIT_FAILURE;
        }
    };
    wait_for_signal().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await;
    0
}
/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
