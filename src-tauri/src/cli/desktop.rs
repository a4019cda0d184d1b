//! `stator [--demo] [--kiosk]` without a subcommand: the panel window with the engine, store and
//! remote server in the same process. The window itself is [`crate::desktop`]; this file only
//! starts the process around it and turns the outcome into an exit code.

use super::{CliResult, GlobalArgs};

/// Entry point of the desktop window.
#[cfg(feature = "desktop")]
pub(super) fn run(global: &GlobalArgs, demo: bool, kiosk: bool) -> CliResult {
    use super::CliError;
    let cfg = super::load_config(global)?;
    crate::logging::init(&cfg.logging.level);
    crate::desktop::display_available().map_err(CliError::Failure)?;
    let rt = super::runtime()?;
    let db = super::db_path(global, Some(&cfg));
    let (core, shutdown) = rt.block_on(async {
        let shutdown = super::shutdown_signal();
        crate::app::Core::start(cfg, db, demo)
            .await
            .map(|core| (core, shutdown))
    })?;
    // `config_set` from the panel writes the file the configuration came from.
    core.api.set_config_file(super::config_path(global));
    let outcome = crate::desktop::run(&rt, &core, kiosk, shutdown);
    rt.block_on(core.shutdown());
    match outcome {
        Ok(0) => Ok(()),
        Ok(code) => Err(CliError::failure(format!(
            "the desktop window exited with code {code}"
        ))),
        Err(e) => Err(CliError::failure(format!(
            "cannot open the desktop window: {e}"
        ))),
    }
}

/// Without the `desktop` feature there is no window to open: say what to run instead.
#[cfg(not(feature = "desktop"))]
pub(super) fn run(_global: &GlobalArgs, _demo: bool, _kiosk: bool) -> CliResult {
    Err(super::CliError::usage(
        "this stator was built without the desktop window (--no-default-features); \
         use `stator serve` (see `stator --help`)",
    ))
}
