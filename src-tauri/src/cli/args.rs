//! The clap tree: every subcommand, its options and their help text. Parsing only; what each
//! command does lives in its own file beside this one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stator",
    version,
    about = "Stator HMI for S7-1200 PLCs over OPC UA"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Start the built-in simulator in-process and point every configured PLC at it (desktop).
    #[arg(long)]
    pub demo: bool,
    /// Fullscreen without decorations; leaving needs an admin/superuser login (desktop).
    #[arg(long)]
    pub kiosk: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options accepted before or after any subcommand.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Configuration file (default: ./config.json, then the platform config dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// SQLite database file (default: "database" in config, then the platform data dir).
    #[arg(long, global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in S7-1200-like OPC UA server.
    Sim(SimArgs),
    /// Connect to a PLC and list its tags (commissioning).
    Discover(DiscoverArgs),
    /// Run headless: engine, store and the remote HTTP/WebSocket server.
    Serve(ServeArgs),
    /// Run headless as a Sparkplug B central view: every edge node's parks from an MQTT broker,
    /// with the same users, parks, alarms, history and remote server as `serve`.
    Hub(HubArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// API tokens for machine clients.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Secrets in the OS keyring.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// OPC UA certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// The historian's recorded values.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Draw a trend chart (PNG, or SVG when --out ends in .svg).
    Trend(TrendArgs),
    /// Diagnostics of every park (connects to the PLCs itself) and of the database.
    Diag(DiagArgs),
    /// Sensor calibration records.
    #[command(subcommand)]
    Calibration(CalibrationCommand),
}

/// Which recorded values: tags and a time range (RFC 3339, YYYY-MM-DD, or -15m, -1h, -7d, now).
#[derive(Debug, Args, Clone)]
pub struct RangeArgs {
    /// Comma-separated `<plc>/<tag>` names (array elements as `<plc>/<tag>[i]`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub tags: Vec<String>,
    /// Relative forms start with '-', so they are taken as values, not options.
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    pub from: String,
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    pub to: String,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Export as JSON (the `history` reply) on standard output, or as CSV into a file.
    Export {
        #[command(flatten)]
        range: RangeArgs,
        /// Write RFC 4180 CSV (ISO 8601 UTC, one column per tag) to this file.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Raw samples up to this many per tag, else min/max buckets (1–10000).
        #[arg(long, default_value_t = 10_000)]
        max_points: u64,
    },
}

#[derive(Debug, Args, Clone)]
pub struct TrendArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    /// The image file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1280)]
    pub width: u32,
    #[arg(long, default_value_t = 400)]
    pub height: u32,
}

#[derive(Debug, Args, Clone)]
pub struct SimArgs {
    /// Address of the first park's endpoint.
    #[arg(long, default_value = "127.0.0.1:4840")]
    pub listen: String,
    /// Number of parks, on consecutive ports.
    #[arg(long, default_value_t = 1)]
    pub plcs: u16,
    /// Extra changing tags per park (under the `Load` folder) for load tests.
    #[arg(long, default_value_t = 0)]
    pub tags: usize,
    /// How often the simulated process values change.
    #[arg(long, default_value_t = 500)]
    pub period_ms: u64,
    /// Expose arrays without element children `[0]`, `[1]`, … (writes then use an IndexRange).
    #[arg(long)]
    pub no_array_elements: bool,
    /// Also offer a Basic256Sha256 endpoint that requires this user name (password from
    /// STATOR_SIM_PASSWORD).
    #[arg(long)]
    pub secure_user: Option<String>,
    /// Directory for the simulator's own certificate and the client certificates it trusts
    /// (default with --secure-user: `sim-pki` in the platform data dir, else a temporary dir).
    #[arg(long, value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// Drive a scenario: `alarms` trips every park's breaker (CMD_Instant_Cutoff[7]) and raises
    /// SP_Power_Limit_kW to 1200, then restores both, every --scenario-seconds.
    #[arg(long, value_enum)]
    pub scenario: Option<SimScenario>,
    /// Seconds between the scenario's steps.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub scenario_seconds: u64,
}

/// Scenarios of `stator sim --scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimScenario {
    /// Alarm conditions coming and going (breaker trip, power limit overshoot).
    Alarms,
}

#[derive(Debug, Args, Clone)]
pub struct DiscoverArgs {
    /// Endpoint URL, e.g. opc.tcp://192.168.41.230:4840.
    #[arg(long)]
    pub url: String,
    /// Root node to browse below.
    #[arg(long, default_value = "ns=4;i=2")]
    pub root: String,
    /// Print JSON `{"tags":[…]}` instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Start the built-in simulator in-process and point every configured PLC at it.
    #[arg(long)]
    pub demo: bool,
    /// Listen address of the remote server (overrides remote.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct HubArgs {
    /// The broker: mqtt://host[:port] or mqtts://host[:port].
    #[arg(long, value_name = "URL")]
    pub mqtt: String,
    /// The Sparkplug group to show (default: mqtt.group_id of the configuration).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Listen address of the remote server (overrides remote.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (exactly one trailing newline,
    /// `\n` or `\r\n`, is removed; everything else is kept).
    Add {
        name: String,
        #[arg(long)]
        role: String,
        /// Comma-separated park ids to grant.
        #[arg(long, value_delimiter = ',')]
        parks: Vec<String>,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a new password (read from standard input; one trailing newline is removed).
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    /// Change a user's role.
    Role {
        name: String,
        role: String,
    },
    /// Grant a park.
    Grant {
        name: String,
        park: String,
    },
    /// Revoke a park.
    Revoke {
        name: String,
        park: String,
    },
    /// Set the panel PIN (4-8 digits, read from standard input; one trailing newline is removed).
    Pin {
        name: String,
        #[arg(long, required = true)]
        pin_stdin: bool,
    },
    /// Badge IDs for the panel's quick login.
    #[command(subcommand)]
    Badge(BadgeCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user (printed once; only its hash is kept).
    Create {
        /// A name saying what uses the token.
        name: String,
        /// The user the token acts for (it never does more than this user may).
        #[arg(long)]
        user: String,
        /// Comma-separated scopes: live:read, history:read, alarms:read, alarms:ack, write,
        /// audit:read, config:read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Comma-separated parks (default: every park the user sees).
        #[arg(long, value_delimiter = ',')]
        parks: Vec<String>,
        /// Lifetime in days (default 90, at most 365).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List API tokens (never the secrets).
    List,
    /// Revoke an API token by id.
    Revoke { token_id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum BadgeCommand {
    Add { name: String, id: String },
    Remove { name: String, id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Prove the hash chain; exit 1 and name the first bad row when it is broken.
    Verify,
    /// Export rows in a time range (RFC 3339 or YYYY-MM-DD), JSON lines or CSV.
    Export {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        csv: bool,
    },
}

#[derive(Debug, Args, Clone)]
pub struct DiagArgs {
    /// Print the figures as one JSON object (the `diagnostics` reply).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for the PLCs to connect.
    #[arg(long, default_value_t = 10.0)]
    pub wait: f64,
}

#[derive(Debug, Subcommand)]
pub enum CalibrationCommand {
    /// Every configured calibration with its last record and due state, then the records
    /// (newest first); `--json` prints the records as JSON lines.
    List {
        /// Only this calibration id.
        #[arg(long)]
        calibration: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret read from standard input, e.g. `plc/eco_solar` (exactly one trailing
    /// newline, `\n` or `\r\n`, is removed; everything else is kept).
    Set { key: String },
    /// Delete a secret.
    Delete { key: String },
    /// Show which keyring backend is in use.
    Backend,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Trust the certificate a PLC presented (moves it from rejected/ to trusted/).
    Trust { plc: String },
    /// Show the client certificate and the trusted/rejected server certificates.
    List,
}
