//! `stator serve`: headless engine + store + remote server, until Ctrl-C/SIGTERM. `stator hub`
//! runs the same way with another feed (`cli/hub.rs`).

use std::net::SocketAddr;

use super::{CliError, CliResult, GlobalArgs, ServeArgs};
use crate::app::{Core, Feed};

/// Entry point of `stator serve`.
pub(super) fn run(global: &GlobalArgs, args: ServeArgs) -> CliResult {
    let cfg = super::load_config(global)?;
    run_fed(
        global,
        cfg,
        args.listen.as_deref(),
        Feed::Plcs { demo: args.demo },
    )
}

/// Runs the core fed by `feed` until Ctrl-C/SIGTERM, reloading the configuration on SIGHUP;
/// `listen` overrides `remote.listen`.
pub(super) fn run_fed(
    global: &GlobalArgs,
    mut cfg: crate::config::Config,
    listen: Option<&str>,
    feed: Feed,
) -> CliResult {
    if let Some(l) = listen {
        if let Err(e) = l.parse::<SocketAddr>() {
            return Err(CliError::usage(format!(
                "--listen {l:?} is not an address such as 127.0.0.1:8765 ({e})"
            )));
        }
        cfg.remote.listen = l.to_string();
    }
    crate::logging::init(&cfg.logging.level);
    let db = super::db_path(global, Some(&cfg));
    super::runtime()?.block_on(async move {
        let shutdown = super::shutdown_signal();
        // Listen before anything starts: an early SIGHUP must not end the process.
        #[cfg(unix)]
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let core = Core::start_fed(cfg, db, feed).await?;
        core.api.set_config_file(super::config_path(global));
        #[cfg(unix)]
        let reload = tokio::spawn(reload_on_sighup(core.api.clone(), hup));
        shutdown.await;
        #[cfg(unix)]
        reload.abort();
        tracing::info!("shutting down");
        core.shutdown().await;
        Ok(())
    })
}

/// `SIGHUP`: re-read `config.json` and apply it like `config_set`; an invalid file keeps the
/// running configuration and logs the one-line error.
#[cfg(unix)]
async fn reload_on_sighup(api: crate::api::Api, hup: std::io::Result<tokio::signal::unix::Signal>) {
    let Ok(mut hup) = hup else {
        tracing::warn!("cannot listen for SIGHUP; configuration reload by signal is off");
        return;
    };
    while hup.recv().await.is_some() {
        match api.reload_config_file().await {
            Ok(r) if r.is_empty() => tracing::info!("SIGHUP: configuration reloaded"),
            Ok(r) => tracing::warn!(
                restart_required = %r.join(", "),
                "SIGHUP: configuration reloaded; some changes need a restart"
            ),
            Err(e) => tracing::error!("SIGHUP: configuration not reloaded: {e}"),
        }
    }
}
