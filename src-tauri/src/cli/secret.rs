//! `stator secret set|delete|backend`: PLC passwords in the process-wide secret backend
//! ([`crate::auth::secrets`]). Confirmations go to stderr, so stdout stays empty for scripts
//! (except `backend`, which prints the backend's name).

use super::{CliError, CliResult, SecretCommand};
use crate::auth::secrets;

/// Entry point of `stator secret …`.
pub(super) fn run(cmd: SecretCommand) -> CliResult {
    let s = secrets::global()?;
    match cmd {
        SecretCommand::Backend => println!("{}", s.backend_name()),
        SecretCommand::Set { key } => {
            let value = super::read_secret("secret")?;
            s.set(&key, &value)?;
            eprintln!("stored {key} in {}", s.backend_name());
        }
        SecretCommand::Delete { key } => {
            if !s.delete(&key)? {
                return Err(CliError::failure(format!(
                    "no secret {key:?} in {}",
                    s.backend_name()
                )));
            }
            eprintln!("deleted {key}");
        }
    }
    Ok(())
}
