//! `stator serve`: headless engine + store + remote server, until Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cli::{GlobalArgs, ServeArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::config::Config;

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
    let core = match crate::app::Core::start(cfg, db, demo).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    core.shutdown().await;
    0
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() {
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
