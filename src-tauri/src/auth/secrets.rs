//! Secrets in the OS keyring (service `stator`).

use crate::cli::SecretCommand;

pub fn run_cli(_cmd: SecretCommand) -> i32 {
    eprintln!("error: stator secret is not implemented yet");
    1
}
