//! `stator serve`: headless engine + store + remote server, until Ctrl-C/SIGTERM.

use std::net::SocketAddr;

use super::{CliError, CliResult, GlobalArgs, ServeArgs};
use crate::app::Core;

/// Entry point of `stator serve`.
pub(super) fn run(global: &GlobalArgs, args: ServeArgs) -> CliResult {
    let mut cfg = super::load_config(global)?;
    if let Some(l) = &args.listen {
        if let Err(e) = l.parse::<SocketAddr>() {
            return Err(CliError::usage(format!(
                "--listen {l:?} is not an address such as 127.0.0.1:8765 ({e})"
            )));
        }
        cfg.remote.listen = l.clone();
    }
    crate::logging::init(&cfg.logging.level);
    let db = super::db_path(global, Some(&cfg));
    super::runtime()?.block_on(async move {
        let shutdown = super::shutdown_signal();
        let core = Core::start(cfg, db, args.demo).await?;
        shutdown.await;
        tracing::info!("shutting down");
        core.shutdown().await;
        Ok(())
    })
}
