//! Tracing setup. Called only after the configuration validated, so that a bad file yields
//! exactly one line on stderr.

use tracing_subscriber::EnvFilter;

/// The simulator's transport, silenced unless asked for (see [`init`]).
const SIM_TRANSPORT_QUIET: &str = "opcua_server::transport::tcp=off";

/// Installs the global subscriber; `RUST_LOG` wins over the configured level.
pub fn init(level: &str) {
    let mut filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // The OPC UA server in this binary is only the simulator (`stator sim`, `--demo`). Its TCP
    // transport reports a client that hangs up mid-write (every engine shutdown may do it) as
    // ERROR "write bytes task failed: Broken pipe": not the plant's error, and an operator must
    // be able to trust ERROR. Asked for by name in RUST_LOG, it is shown.
    let asked = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("opcua_server"));
    if !asked {
        if let Ok(d) = SIM_TRANSPORT_QUIET.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
