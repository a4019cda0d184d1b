//! The Tauri window (feature `desktop`): thin commands over the one dispatcher.

use crate::cli::GlobalArgs;

pub fn run(global: &GlobalArgs, _demo: bool, _kiosk: bool) -> i32 {
    let (cfg, _path) = match crate::cli::load_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::logging::init(&cfg.logging.level);
    tracing::error!("the desktop window is not implemented yet");
    1
}
