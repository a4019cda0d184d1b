//! `config.json`: the schema the plants already have, plus optional extensions.
//!
//! Validation is strict because a typo in a plant's configuration must never be silently ignored:
//! every error names the file, the JSON path and what is wrong, in one line, and the binary exits
//! with code 2 (see [`ConfigError`]). This module never touches the network.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::roles::Role;

mod alarms;
pub use alarms::{
    cal_due_alarm_id, comm_alarm_id, split_index, AlarmConfig, AlarmSettings, Condition, Message,
    Priority, MAX_ALARM_ID,
};
mod history;
pub use history::{HistoryConfig, HistoryFilter, TagHistory};
mod service;
pub use service::{CalibrationConfig, ServiceConfig, MAX_CALIBRATIONS};
mod messages;
pub use messages::MessagesConfig;
pub mod change;
mod running;
pub use running::Running;
mod hub;
mod mqtt;
pub use hub::{HubConfig, DEFAULT_MAX_TAGS_PER_PARK, HUB_SECRET};
pub use mqtt::{parse_url as parse_broker_url, sparkplug_id, BrokerAddr, MqttConfig, MqttTls};

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The PLCs ("parks") to connect to. Their `id`s are the park names used for access grants.
    pub plc_config: Vec<PlcConfig>,
    /// The folder (object) under which every variable of interest lives, e.g. `ns=4;i=2`.
    pub common_root_node_id: String,
    /// Sampling/publishing interval of subscriptions and the remote broadcast cadence.
    pub broadcast_interval_seconds: f64,
    /// Upper bound of the exponential reconnect backoff.
    pub plc_reconnect_delay_minutes: f64,
    /// The local HTTP/WebSocket server for remote viewers.
    #[serde(default)]
    pub remote: RemoteConfig,
    /// SQLite database file (overridden by `--db`).
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// Per-tag metadata keyed by `<plc id>/<tag name>`, e.g. `eco_solar/Active_Power_kW`.
    #[serde(default)]
    pub tags: BTreeMap<String, TagConfig>,
    /// Login protection, password policy and session timeouts.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Log level / filter.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Directory of the OPC UA PKI (own/, private/, trusted/, rejected/). Default: `certs`.
    #[serde(default)]
    pub pki_dir: Option<PathBuf>,
    /// Alarm definitions (ISA-18.2); every park also has a built-in `<park>.comm` alarm.
    #[serde(default)]
    pub alarms: Vec<AlarmConfig>,
    /// Limits of alarm handling (shelve time, sound).
    #[serde(default)]
    pub alarm_settings: AlarmSettings,
    /// The embedded historian (see `config/history.rs`).
    #[serde(default)]
    pub history: HistoryConfig,
    /// Service mode (what operators may still write while a park is in service).
    #[serde(default)]
    pub service: ServiceConfig,
    /// Two-point sensor calibrations (see `config/service.rs`).
    #[serde(default)]
    pub calibration: Vec<CalibrationConfig>,
    /// Messages between people and park channels.
    #[serde(default)]
    pub messages: MessagesConfig,
    /// Publish the plant to an MQTT broker as a Sparkplug B edge node (off when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttConfig>,
    /// How `stator hub` maps Sparkplug devices to parks and whether it forwards writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubConfig>,
}

/// One PLC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlcConfig {
    pub id: String,
    pub url: String,
    pub name: String,
    /// Security policy of the endpoint; default `None`.
    #[serde(default)]
    pub security_policy: SecurityPolicy,
    /// Message security mode; default `None`. Must be `Sign`/`SignAndEncrypt` with Basic256Sha256.
    #[serde(default)]
    pub security_mode: SecurityMode,
    /// User name for a username/password identity; the password lives in the OS keyring under
    /// service `stator`, entry `plc/<id>`.
    #[serde(default)]
    pub username: Option<String>,
    /// Overrides `common_root_node_id` for this PLC.
    #[serde(default)]
    pub root_node_id: Option<String>,
    /// Overrides `broadcast_interval_seconds` for this PLC's subscription.
    #[serde(default)]
    pub sampling_interval_seconds: Option<f64>,
    /// `subscribe` (default) or `poll` (one bulk Read per interval).
    #[serde(default)]
    pub acquisition: Acquisition,
    /// `plc` (default: what the PLC allows, minus tags configured `writable: false`) or
    /// `allowlist` (only tags configured `writable: true`).
    #[serde(default)]
    pub write_policy: WritePolicy,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SecurityPolicy {
    #[default]
    None,
    Basic256Sha256,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SecurityMode {
    #[default]
    None,
    Sign,
    SignAndEncrypt,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Acquisition {
    #[default]
    Subscribe,
    Poll,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    #[default]
    Plc,
    Allowlist,
}

/// Metadata of one tag that the PLC does not carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    #[serde(default)]
    pub unit: Option<String>,
    /// Engineering range `[min, max]`; writes outside it are refused.
    #[serde(default)]
    pub range: Option<[f64; 2]>,
    /// `false` forbids writes; `true` allows them under `write_policy: allowlist`.
    #[serde(default)]
    pub writable: Option<bool>,
    /// Shown on the overview screen.
    #[serde(default)]
    pub key: bool,
    #[serde(default)]
    pub description: Option<String>,
    /// `false`, `true` or `{deadband, min_interval_seconds}` (see `config/history.rs`).
    #[serde(default)]
    pub history: Option<TagHistory>,
}

/// The remote server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// Listen address; loopback unless deliberately opened.
    pub listen: String,
    /// Writes from WebSocket/HTTP clients; the local panel is not affected.
    pub allow_remote_writes: bool,
    pub max_clients: usize,
    pub max_connections_per_address: usize,
    /// Browser origins allowed to open the WebSocket besides the server's own origin.
    pub allowed_origins: Vec<String>,
    pub tls: Option<TlsConfig>,
    /// Set to false to run the engine without the remote server.
    pub enabled: bool,
    /// Most open HTTP/WebSocket connections at once; kept below the descriptor limit.
    pub max_connections: usize,
    /// Most WebSocket connections that have not authenticated yet (they do not count against
    /// `max_clients`); a quarter of it per source address.
    pub max_unauthenticated: usize,
    /// Time a connection has to send a complete request head (also the TLS handshake, the first
    /// request and the wait for the next keep-alive request).
    pub header_timeout_seconds: f64,
    /// A connection with no byte in either direction for this long is closed.
    pub idle_timeout_seconds: f64,
    /// Host names (besides IP literals and `localhost`) under which `/ws` and `/api/setup`
    /// answer; guards against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Serve `GET /metrics` (off by default: it names parks and counts logins).
    pub metrics: bool,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8765".into(),
            allow_remote_writes: false,
            max_clients: 1000,
            max_connections_per_address: 64,
            allowed_origins: Vec::new(),
            tls: None,
            enabled: true,
            max_connections: 4096,
            max_unauthenticated: 64,
            header_timeout_seconds: 10.0,
            idle_timeout_seconds: 60.0,
            allowed_hosts: Vec::new(),
            metrics: false,
        }
    }
}

impl RemoteConfig {
    /// Bounds of the connection-protection keys (`validate` calls it).
    fn validate_limits(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(file, format!("$.remote.{f}"), m));
        for (f, v, lo, hi) in [
            ("max_connections", self.max_connections, 16, 1_000_000),
            ("max_unauthenticated", self.max_unauthenticated, 1, 100_000),
        ] {
            if !(lo..=hi).contains(&v) {
                return err(f, format!("must be between {lo} and {hi} (got {v})"));
            }
        }
        for (f, v, lo, hi, why) in [
            (
                "header_timeout_seconds",
                self.header_timeout_seconds,
                0.1,
                300.0,
                "",
            ),
            (
                "idle_timeout_seconds",
                self.idle_timeout_seconds,
                35.0,
                3600.0,
                ", above the 30 s WebSocket ping",
            ),
        ] {
            if !(v.is_finite() && (lo..=hi).contains(&v)) {
                return err(
                    f,
                    format!("must be between {lo} and {hi} seconds{why} (got {v})"),
                );
            }
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            let bad = h.is_empty()
                || h.len() > 253
                || !h.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
                });
            if bad {
                return err(
                    &format!("allowed_hosts[{i}]"),
                    format!("{h:?} is not a host name such as hmi.plant.local"),
                );
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Login protection and sessions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Failed attempts before the account is locked.
    pub lockout_attempts: u32,
    pub lockout_minutes: f64,
    /// Failed attempts per source address per minute before `rate_limited`.
    pub source_failures_per_minute: u32,
    pub password_min_length: usize,
    /// Absolute session lifetime.
    pub session_lifetime_hours: f64,
    /// Idle timeout per role in minutes (`viewer`, `operator`, `serviceman`, `admin`, `superuser`).
    pub idle_timeout_minutes: BTreeMap<String, f64>,
    /// Writes per second per user.
    pub write_rate_per_second: f64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            lockout_attempts: 3,
            lockout_minutes: 5.0,
            source_failures_per_minute: 10,
            password_min_length: 8,
            session_lifetime_hours: 12.0,
            idle_timeout_minutes: BTreeMap::new(),
            write_rate_per_second: 10.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A `tracing` filter such as `info` or `stator=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// A configuration error: one line naming file, JSON path and problem.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {path}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    fn new(file: &Path, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.display().to_string(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "$", format!("cannot read file: {e}")))?;
        Self::parse(path, &text)
    }

    /// Parses and validates text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let p = e.path().to_string();
            let p = if p == "." || p == "?" || p.is_empty() {
                "$".to_string()
            } else {
                format!("$.{p}")
            };
            // serde_json appends " at line L column C", which is useful; keep it.
            ConfigError::new(path, p, e.into_inner().to_string())
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |p: String, m: String| Err(ConfigError::new(file, p, m));
        if self.plc_config.is_empty() {
            return err("$.plc_config".into(), "at least one PLC is required".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, plc) in self.plc_config.iter().enumerate() {
            let at = |f: &str| format!("$.plc_config[{i}].{f}");
            if !valid_id(&plc.id) {
                return err(
                    at("id"),
                    format!(
                        "invalid id {:?}: use 1-64 characters a-z, A-Z, 0-9, '_' or '-', starting with a letter",
                        plc.id
                    ),
                );
            }
            if !seen.insert(plc.id.to_ascii_lowercase()) {
                return err(at("id"), format!("duplicate id {:?}", plc.id));
            }
            if let Err(m) = validate_opc_url(&plc.url) {
                return err(at("url"), m);
            }
            if plc.name.trim().is_empty() {
                return err(at("name"), "must not be empty".into());
            }
            if let Some(root) = &plc.root_node_id {
                if let Err(m) = validate_node_id(root) {
                    return err(at("root_node_id"), m);
                }
            }
            if let Some(s) = plc.sampling_interval_seconds {
                if let Err(m) = positive_at_most(s, MAX_INTERVAL_SECONDS) {
                    return err(at("sampling_interval_seconds"), m);
                }
            }
            let secure = plc.security_policy != SecurityPolicy::None;
            let signed = plc.security_mode != SecurityMode::None;
            if secure != signed {
                return err(
                    at("security_mode"),
                    "security_policy Basic256Sha256 needs security_mode Sign or SignAndEncrypt, and security_mode None needs security_policy None".into(),
                );
            }
            if let Some(u) = &plc.username {
                if u.is_empty() {
                    return err(at("username"), "must not be empty".into());
                }
            }
        }
        if let Err(m) = validate_node_id(&self.common_root_node_id) {
            return err("$.common_root_node_id".into(), m);
        }
        if let Err(m) = positive_at_most(self.broadcast_interval_seconds, MAX_INTERVAL_SECONDS) {
            return err("$.broadcast_interval_seconds".into(), m);
        }
        if let Err(m) = positive_at_most(self.plc_reconnect_delay_minutes, MAX_RECONNECT_MINUTES) {
            return err("$.plc_reconnect_delay_minutes".into(), m);
        }
        if let Err(e) = self.remote.listen.parse::<SocketAddr>() {
            return err(
                "$.remote.listen".into(),
                format!(
                    "{:?} is not an address such as 127.0.0.1:8765 ({e})",
                    self.remote.listen
                ),
            );
        }
        if self.remote.max_clients == 0 {
            return err("$.remote.max_clients".into(), "must be at least 1".into());
        }
        if self.remote.max_connections_per_address == 0 {
            return err(
                "$.remote.max_connections_per_address".into(),
                "must be at least 1".into(),
            );
        }
        self.remote.validate_limits(file)?;
        self.messages.validate(file)?;
        for (key, tag) in &self.tags {
            let at = |f: &str| format!("$.tags[{key:?}]{f}");
            let Some((plc, name)) = key.split_once('/') else {
                return err(at(""), "key must be \"<plc id>/<tag name>\"".into());
            };
            if name.is_empty() || !self.plc_config.iter().any(|p| p.id == plc) {
                return err(at(""), format!("no PLC with id {plc:?} in plc_config"));
            }
            if let Some([lo, hi]) = tag.range {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return err(at(".range"), "must be [min, max] with min < max".into());
                }
            }
            if let Some(h) = &tag.history {
                h.validate(file, &at(".history"))?;
            }
        }
        self.history.validate(file)?;
        if let Some(m) = &self.mqtt {
            m.validate(file)?;
        }
        if let Some(h) = &self.hub {
            let parks: Vec<&str> = self.plc_config.iter().map(|p| p.id.as_str()).collect();
            h.validate(file, &parks)?;
        }
        let a = &self.auth;
        if a.lockout_attempts == 0 {
            return err(
                "$.auth.lockout_attempts".into(),
                "must be at least 1".into(),
            );
        }
        for (f, v, max) in [
            ("lockout_minutes", a.lockout_minutes, MAX_MINUTES),
            (
                "session_lifetime_hours",
                a.session_lifetime_hours,
                MAX_SESSION_HOURS,
            ),
            (
                "write_rate_per_second",
                a.write_rate_per_second,
                MAX_WRITE_RATE,
            ),
        ] {
            if let Err(m) = positive_at_most(v, max) {
                return err(format!("$.auth.{f}"), m);
            }
        }
        if a.password_min_length < 8 {
            return err(
                "$.auth.password_min_length".into(),
                "must be at least 8".into(),
            );
        }
        for (role, v) in &a.idle_timeout_minutes {
            // Role names come from THE role type (exact wire names: the lookup in auth is exact
            // too), so a new role is configurable at once.
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            if !names.contains(&role.as_str()) {
                return err(
                    format!("$.auth.idle_timeout_minutes.{role}"),
                    format!("unknown role; expected one of {}", names.join(", ")),
                );
            }
            if let Err(m) = positive_at_most(*v, MAX_MINUTES) {
                return err(format!("$.auth.idle_timeout_minutes.{role}"), m);
            }
        }
        self.validate_alarms(file)?;
        service::validate(self, file)?;
        Ok(())
    }

    /// Settings that are valid but unsafe, one line each with its JSON path; logged at start.
    pub fn warnings(&self) -> Vec<String> {
        self.plc_config
            .iter()
            .enumerate()
            .filter(|(_, p)| p.username.is_some() && p.security_policy == SecurityPolicy::None)
            .map(|(i, p)| {
                format!(
                    "$.plc_config[{i}].username: security_policy is None, so the password of plc/{} \
                     may cross the network in clear text unless the PLC encrypts user tokens on \
                     its own; use Basic256Sha256 with SignAndEncrypt",
                    p.id
                )
            })
            .collect()
    }

    /// The configured PLC with this id.
    pub fn plc(&self, id: &str) -> Option<&PlcConfig> {
        self.plc_config.iter().find(|p| p.id == id)
    }

    /// This PLC's sampling (and publishing) interval in seconds: its own override, else the
    /// broadcast interval.
    pub fn sampling_seconds_for(&self, plc: &PlcConfig) -> f64 {
        plc.sampling_interval_seconds
            .unwrap_or(self.broadcast_interval_seconds)
    }

    /// The root node to browse for this PLC.
    pub fn root_for<'a>(&'a self, plc: &'a PlcConfig) -> &'a str {
        plc.root_node_id
            .as_deref()
            .unwrap_or(&self.common_root_node_id)
    }

    /// Metadata of `<plc>/<tag>`, if configured.
    pub fn tag(&self, plc: &str, tag: &str) -> Option<&TagConfig> {
        self.tags.get(&format!("{plc}/{tag}"))
    }

    /// The default location: `./config.json`, else `<platform config dir>/config.json`.
    pub fn default_path() -> PathBuf {
        let local = PathBuf::from("config.json");
        if local.exists() {
            return local;
        }
        if let Some(dirs) = directories::ProjectDirs::from("", "", "stator") {
            let p = dirs.config_dir().join("config.json");
            if p.exists() {
                return p;
            }
        }
        local
    }
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

// Upper bounds of every number that later becomes a `Duration` or a chrono value (or a rate
// divided into one): beyond them the conversions panic or overflow at run time, so a config
// that validates must stay far inside them.
/// `broadcast_interval_seconds`, `sampling_interval_seconds`: one day.
pub const MAX_INTERVAL_SECONDS: f64 = 86_400.0;
/// `plc_reconnect_delay_minutes`: one day.
pub const MAX_RECONNECT_MINUTES: f64 = 1_440.0;
/// `auth.lockout_minutes`, `auth.idle_timeout_minutes.*`: one year.
pub const MAX_MINUTES: f64 = 525_600.0;
/// `auth.session_lifetime_hours`: one year.
pub const MAX_SESSION_HOURS: f64 = 8_760.0;
/// `auth.write_rate_per_second`.
pub const MAX_WRITE_RATE: f64 = 10_000.0;

fn positive_at_most(v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v <= max {
        Ok(())
    } else {
        Err(format!(
            "must be a positive number of at most {max} (got {v})"
        ))
    }
}

/// `opc.tcp://host[:port][/path]`.
pub fn validate_opc_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("opc.tcp://") else {
        return Err(format!("{url:?} is not an opc.tcp:// URL"));
    };
    let host_port = rest.split('/').next().unwrap_or("");
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(p) = port {
        if p.parse::<u16>().map(|p| p == 0).unwrap_or(true) {
            return Err(format!("{url:?} has an invalid port {p:?}"));
        }
    }
    Ok(())
}

/// A NodeId in OPC UA text form (`ns=4;i=2`, `ns=3;s="DB".Tag`, `i=85`, `g=…`, `b=…`).
pub fn validate_node_id(s: &str) -> Result<(), String> {
    opcua::types::NodeId::from_str(s)
        .map(|_| ())
        .map_err(|_| format!("{s:?} is not a NodeId such as ns=4;i=2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLANT: &str = r#"{
  "plc_config": [
    { "id": "eco_solar", "url": "opc.tcp://192.168.41.230:4840", "name": "Eco Solar" },
    { "id": "isiada",    "url": "opc.tcp://192.168.42.230:4840", "name": "Isiada" }
  ],
  "common_root_node_id": "ns=4;i=2",
  "broadcast_interval_seconds": 2.0,
  "plc_reconnect_delay_minutes": 10
}"#;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.json"), t)
    }

    #[test]
    fn accepts_the_plant_format_exactly() {
        let c = parse(PLANT).unwrap();
        assert_eq!(c.plc_config.len(), 2);
        assert_eq!(c.plc_config[1].id, "isiada");
        assert_eq!(c.remote.listen, "127.0.0.1:8765");
        assert!(!c.remote.allow_remote_writes);
    }

    fn bad(t: &str) -> String {
        parse(t).unwrap_err().to_string()
    }

    #[test]
    fn the_mqtt_section_is_validated_with_its_json_path() {
        let with = |m: &str| {
            PLANT.replace(
                "\"plc_reconnect_delay_minutes\": 10",
                &format!("\"plc_reconnect_delay_minutes\": 10, \"mqtt\": {m}"),
            )
        };
        let ok = parse(&with(
            r#"{"url": "mqtt://127.0.0.1:1883", "group_id": "plants", "edge_node_id": "panel1"}"#,
        ))
        .unwrap();
        let m = ok.mqtt.unwrap();
        assert!(!m.allow_writes, "writes over MQTT are off by default");
        assert_eq!(m.client_id(), "stator-panel1");
        assert_eq!(m.secret_name(), "mqtt/panel1");
        for (m, path) in [
            (
                r#"{"url": "tcp://x", "group_id": "g", "edge_node_id": "e"}"#,
                "$.mqtt.url",
            ),
            (
                r#"{"url": "mqtt://x", "group_id": "g/1", "edge_node_id": "e"}"#,
                "$.mqtt.group_id",
            ),
            (
                r#"{"url": "mqtt://x", "group_id": "g", "edge_node_id": "e#"}"#,
                "$.mqtt.edge_node_id",
            ),
            (
                r#"{"url": "mqtt://x", "group_id": "g", "edge_node_id": "e", "primary_host_id": ""}"#,
                "$.mqtt.primary_host_id",
            ),
            (
                r#"{"url": "mqtt://x", "group_id": "g", "edge_node_id": "e", "tls": {"ca": "ca.pem"}}"#,
                "$.mqtt.tls",
            ),
            (
                r#"{"url": "mqtt://x", "group_id": "g", "edge_node_id": "e", "password": "p"}"#,
                "$.mqtt",
            ),
        ] {
            let e = bad(&with(m));
            assert!(e.starts_with(&format!("config.json: {path}")), "{m}: {e}");
        }
    }

    #[test]
    fn rejects_with_file_path_and_reason() {
        let e = bad(&PLANT.replace(
            "\"name\": \"Isiada\"",
            "\"name\": \"Isiada\", \"colour\": 1",
        ));
        assert!(e.starts_with("config.json: $.plc_config[1]"), "{e}");
        assert!(e.contains("unknown field `colour`"), "{e}");

        let e = bad(&PLANT.replace("isiada", "eco_solar"));
        assert_eq!(
            e,
            "config.json: $.plc_config[1].id: duplicate id \"eco_solar\""
        );

        let e = bad(&PLANT.replace("\"isiada\"", "\"is iada\""));
        assert!(
            e.starts_with("config.json: $.plc_config[1].id: invalid id"),
            "{e}"
        );

        let e = bad(&PLANT.replace("opc.tcp://192.168.42.230", "http://192.168.42.230"));
        assert!(e.starts_with("config.json: $.plc_config[1].url:"), "{e}");

        let e = bad(&PLANT.replace("ns=4;i=2", "ns=4;x=2"));
        assert!(e.starts_with("config.json: $.common_root_node_id:"), "{e}");

        let e = bad(&PLANT.replace("2.0", "0"));
        assert!(
            e.starts_with("config.json: $.broadcast_interval_seconds: must be a positive"),
            "{e}"
        );

        let e = bad(&PLANT.replace("10\n", "-1\n"));
        assert!(
            e.starts_with("config.json: $.plc_reconnect_delay_minutes:"),
            "{e}"
        );

        let e = bad(&PLANT.replace("2.0", "\"2\""));
        assert!(
            e.starts_with("config.json: $.broadcast_interval_seconds: invalid type"),
            "{e}"
        );

        let e = bad("{ not json");
        assert!(e.starts_with("config.json: $:"), "{e}");
    }

    #[test]
    fn validates_extensions() {
        let with = |ext: &str| {
            PLANT.replacen(
                "{\n  \"plc_config\"",
                &format!("{{ {ext},\n  \"plc_config\""),
                1,
            )
        };
        let c = parse(&with(
            r#""tags": {"eco_solar/Active_Power_kW": {"unit": "kW", "range": [0, 100]}}"#,
        ))
        .unwrap();
        assert_eq!(
            c.tag("eco_solar", "Active_Power_kW")
                .unwrap()
                .unit
                .as_deref(),
            Some("kW")
        );

        let e = bad(&with(r#""tags": {"nowhere/X": {}}"#));
        assert!(e.contains("no PLC with id \"nowhere\""), "{e}");
        let e = bad(&with(r#""tags": {"eco_solar/X": {"range": [5, 1]}}"#));
        assert!(e.contains(".range: must be [min, max]"), "{e}");
        let e = bad(&with(r#""remote": {"listen": "everywhere"}"#));
        assert!(e.starts_with("config.json: $.remote.listen:"), "{e}");
        let e = bad(&with(r#""remote": {"max_connections": 3}"#));
        assert!(
            e.starts_with("config.json: $.remote.max_connections: must be between 16"),
            "{e}"
        );
        let e = bad(&with(r#""remote": {"max_unauthenticated": 0}"#));
        assert!(
            e.starts_with("config.json: $.remote.max_unauthenticated:"),
            "{e}"
        );
        let e = bad(&with(r#""remote": {"header_timeout_seconds": 1e300}"#));
        assert!(
            e.starts_with("config.json: $.remote.header_timeout_seconds:"),
            "{e}"
        );
        let e = bad(&with(r#""remote": {"idle_timeout_seconds": 5}"#));
        assert!(
            e.contains("$.remote.idle_timeout_seconds: must be between 35"),
            "{e}"
        );
        let e = bad(&with(r#""remote": {"allowed_hosts": ["http://x/"]}"#));
        assert!(
            e.starts_with("config.json: $.remote.allowed_hosts[0]:"),
            "{e}"
        );
        let e = bad(&with(r#""remote": {"metrics": "yes"}"#));
        assert!(e.starts_with("config.json: $.remote.metrics:"), "{e}");
        let c = parse(&with(
            r#""remote": {"allowed_hosts": ["hmi.plant.local"], "metrics": true, "max_unauthenticated": 8}"#,
        ))
        .unwrap();
        assert!(c.remote.metrics);
        assert_eq!(c.remote.max_unauthenticated, 8);
        assert_eq!(c.remote.max_connections, 4096);
        let e = bad(&with(r#""auth": {"idle_timeout_minutes": {"janitor": 5}}"#));
        assert!(
            e.contains("$.auth.idle_timeout_minutes.janitor: unknown role"),
            "{e}"
        );
        let e = bad(&PLANT.replace(
            "\"name\": \"Isiada\"",
            "\"name\": \"Isiada\", \"security_policy\": \"Basic256Sha256\"",
        ));
        assert!(e.contains("$.plc_config[1].security_mode"), "{e}");
    }

    #[test]
    fn numbers_that_become_durations_have_upper_bounds() {
        let with = |ext: &str| {
            PLANT.replacen(
                "{\n  \"plc_config\"",
                &format!("{{ {ext},\n  \"plc_config\""),
                1,
            )
        };
        let e = bad(&PLANT.replace("2.0", "1e300"));
        assert!(
            e.starts_with("config.json: $.broadcast_interval_seconds: must be a positive number of at most 86400"),
            "{e}"
        );
        let e = bad(&PLANT.replace("10\n", "1e300\n"));
        assert!(
            e.starts_with("config.json: $.plc_reconnect_delay_minutes:"),
            "{e}"
        );
        for (key, path) in [
            (
                r#""auth": {"session_lifetime_hours": 1e300}"#,
                "$.auth.session_lifetime_hours",
            ),
            (
                r#""auth": {"lockout_minutes": 1e300}"#,
                "$.auth.lockout_minutes",
            ),
            (
                r#""auth": {"write_rate_per_second": 1e300}"#,
                "$.auth.write_rate_per_second",
            ),
            (
                r#""auth": {"idle_timeout_minutes": {"viewer": 1e300}}"#,
                "$.auth.idle_timeout_minutes.viewer",
            ),
        ] {
            let e = bad(&with(key));
            assert!(
                e.starts_with(&format!("config.json: {path}: must be")),
                "{e}"
            );
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let e = bad(&PLANT.replace(
            "\"name\": \"Isiada\"",
            "\"name\": \"Isiada\", \"sampling_interval_seconds\": 1e300",
        ));
        assert!(
            e.contains("$.plc_config[1].sampling_interval_seconds"),
            "{e}"
        );
        // The largest accepted values still convert without panicking.
        let c = parse(&with(
            r#""auth": {"session_lifetime_hours": 8760, "lockout_minutes": 525600}"#,
        ))
        .unwrap();
        let _ = std::time::Duration::from_secs_f64(MAX_INTERVAL_SECONDS);
        let _ =
            chrono::Duration::milliseconds((c.auth.session_lifetime_hours * 3_600_000.0) as i64);
    }

    #[test]
    fn a_plc_password_without_encryption_is_warned_about() {
        let c = parse(&PLANT.replace(
            "\"name\": \"Isiada\"",
            "\"name\": \"Isiada\", \"username\": \"hmi\"",
        ))
        .unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("$.plc_config[1].username: security_policy is None"),
            "{w:?}"
        );
        assert!(w[0].contains("plc/isiada"), "{w:?}");
        let c = parse(&PLANT.replace(
            "\"name\": \"Isiada\"",
            "\"name\": \"Isiada\", \"username\": \"hmi\", \"security_policy\": \"Basic256Sha256\", \"security_mode\": \"SignAndEncrypt\"",
        ))
        .unwrap();
        assert!(c.warnings().is_empty());
        assert!(parse(PLANT).unwrap().warnings().is_empty());
    }

    #[test]
    fn url_forms() {
        assert!(validate_opc_url("opc.tcp://localhost:4840").is_ok());
        assert!(validate_opc_url("opc.tcp://plc").is_ok());
        assert!(validate_opc_url("opc.tcp://[::1]:4840/x").is_ok());
        assert!(validate_opc_url("opc.tcp://:4840").is_err());
        assert!(validate_opc_url("opc.tcp://h:99999").is_err());
    }
}
