//! The command line, the edge of the program: the clap tree ([`args`]), one file per subcommand
//! that builds the domain objects, calls them and prints, and the few things every command
//! shares — the exit codes, the tokio runtime, the shutdown signal and the stdin secret reader.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage. They are chosen in
//! exactly one place, [`CliError::exit_code`]; nothing below `cli/` prints or exits.

mod args;
mod audit;
mod calibration;
mod certs;
mod desktop;
mod diag;
pub mod discover;
mod history;
mod hub;
mod secret;
mod serve;
mod sim;
mod token;
mod user;

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;

use clap::Parser;

pub use args::*;

use crate::app::CoreError;
use crate::auth::secrets::SecretError;
use crate::auth::AuthError;
use crate::config::{Config, ConfigError};
use crate::sim::SimError;

/// Why a command failed; decides the exit code and the one `error: …` line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad configuration, option or input: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The command ran and failed: exit 1.
    #[error("{0}")]
    Failure(String),
}

impl CliError {
    /// A usage error from anything printable.
    pub fn usage(e: impl std::fmt::Display) -> Self {
        CliError::Usage(e.to_string())
    }

    /// A runtime failure from anything printable.
    pub fn failure(e: impl std::fmt::Display) -> Self {
        CliError::Failure(e.to_string())
    }

    /// The process exit code: the one place where errors become numbers.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failure(_) => 1,
        }
    }
}

// Every domain error that reaches the command line becomes usage (2) or failure (1) here, and
// nowhere else.
impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::usage(e)
    }
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        if e.is_config() {
            CliError::usage(e)
        } else {
            CliError::failure(e)
        }
    }
}

impl From<AuthError> for CliError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid(_) => CliError::usage(e),
            _ => CliError::failure(e),
        }
    }
}

impl From<SecretError> for CliError {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::InvalidKey(_) => CliError::usage(e),
            _ => CliError::failure(e),
        }
    }
}

impl From<SimError> for CliError {
    fn from(e: SimError) -> Self {
        match e {
            SimError::BadListen(_) | SimError::Options(_) => CliError::usage(e),
            _ => CliError::failure(e),
        }
    }
}

/// What a command returns.
pub type CliResult = Result<(), CliError>;

/// Parses the command line and runs it; returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // `--help` and `--version` are "errors" that print to stdout and succeed.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let result = match cli.command {
        Some(Command::Sim(a)) => sim::run(a),
        Some(Command::Discover(a)) => discover::run(a),
        Some(Command::Serve(a)) => serve::run(&cli.global, a),
        Some(Command::Hub(a)) => hub::run(&cli.global, a),
        Some(Command::User(c)) => user::run(&cli.global, c),
        Some(Command::Audit(c)) => audit::run(&cli.global, c),
        Some(Command::Token(c)) => token::run(&cli.global, c),
        Some(Command::Secret(c)) => secret::run(c),
        Some(Command::Certs(c)) => certs::run(&cli.global, c),
        Some(Command::History(c)) => history::export(&cli.global, c),
        Some(Command::Trend(a)) => history::trend(&cli.global, a),
        Some(Command::Calibration(c)) => calibration::run(&cli.global, c),
        Some(Command::Diag(a)) => diag::run(&cli.global, a),
        None => desktop::run(&cli.global, cli.demo, cli.kiosk),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Loads the configuration named by `--config` (or the default).
fn load_config(global: &GlobalArgs) -> Result<Config, CliError> {
    Ok(Config::load(&config_path(global))?)
}

/// The configuration file: `--config`, else the default path.
fn config_path(global: &GlobalArgs) -> PathBuf {
    global.config.clone().unwrap_or_else(Config::default_path)
}

/// The database file: `--db`, else `database` in the config, else the platform data dir.
fn db_path(global: &GlobalArgs, cfg: Option<&Config>) -> PathBuf {
    crate::store::Store::default_path(
        global.db.as_deref(),
        cfg.and_then(|c| c.database.as_deref()),
    )
}

/// Opens the database named by `--db` / the configuration for reading (no audit key needed).
fn open_store(global: &GlobalArgs, cfg: Option<&Config>) -> Result<crate::store::Store, CliError> {
    crate::store::Store::open(&db_path(global, cfg)).map_err(CliError::failure)
}

/// Opens the database with the audit chain key (created in the secret store when missing), as
/// every command that writes audit rows needs it. Fails closed: no key, no change.
fn open_store_keyed(
    global: &GlobalArgs,
    cfg: Option<&Config>,
) -> Result<crate::store::Store, CliError> {
    let key = crate::app::audit_key(true)
        .and_then(|k| k.ok_or_else(|| "no audit key".to_string()))
        .map_err(CliError::failure)?;
    crate::store::Store::open_keyed(&db_path(global, cfg), &key).map_err(CliError::failure)
}

/// The one tokio runtime of the process (multi-threaded: the engine, the server and the
/// simulator share it; blocking SQLite and keyring work goes to its blocking pool).
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

/// Ctrl-C or (on Unix) SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives right after (say, from whoever read the
/// endpoints `stator sim` printed) is not lost. Call it inside the runtime.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::spawn(tokio::signal::ctrl_c());
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

/// Reads a secret (password, PIN, PLC password) from standard input: everything, minus exactly
/// one trailing line end (`\n` or `\r\n`) — what `echo` or a here-string adds. Any other
/// whitespace is part of the secret. Empty is a usage error.
fn read_secret(what: &str) -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| {
        CliError::failure(format!("cannot read the {what} from standard input: {e}"))
    })?;
    let s = strip_line_end(&s);
    if s.is_empty() {
        return Err(CliError::usage(format!("no {what} on standard input")));
    }
    Ok(s.to_string())
}

/// `s` without one trailing `\n` or `\r\n`.
fn strip_line_end(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_line_end_is_stripped() {
        assert_eq!(strip_line_end("pw\n"), "pw");
        assert_eq!(strip_line_end("pw\r\n"), "pw");
        assert_eq!(strip_line_end("pw\n\n"), "pw\n");
        assert_eq!(strip_line_end("pw\r"), "pw\r");
        assert_eq!(strip_line_end(" pw \n"), " pw ");
        assert_eq!(strip_line_end("pw"), "pw");
        assert_eq!(strip_line_end("\n"), "");
    }

    #[test]
    fn usage_is_2_and_failure_is_1() {
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(CliError::failure("x").exit_code(), 1);
    }
}
