//! `stator serve`: headless engine + store + remote server.

use crate::cli::{GlobalArgs, ServeArgs};

pub fn run(global: &GlobalArgs, _args: ServeArgs) -> i32 {
    let (cfg, _path) = match crate::cli::load_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::logging::init(&cfg.logging.level);
    tracing::error!("stator serve is not implemented yet");
    1
}
