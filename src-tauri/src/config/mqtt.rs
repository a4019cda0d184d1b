//! The optional `mqtt` section: publish the plant to an MQTT broker as a Sparkplug B edge node.
//!
//! Validated here (not at connect time) so that a typo stops the start with exit 2 and the JSON
//! path, like every other key; the password is never in the file (secret store,
//! `mqtt/<edge_node_id>`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `mqtt`: the Sparkplug B edge node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]` (8883).
    pub url: String,
    /// Sparkplug group id (topic level after `spBv1.0`).
    pub group_id: String,
    /// Sparkplug edge node id: this panel.
    pub edge_node_id: String,
    /// Broker user name; the password is the secret `mqtt/<edge_node_id>`.
    #[serde(default)]
    pub username: Option<String>,
    /// MQTT client id; default `stator-<edge_node_id>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A primary host application: births wait for its `spBv1.0/STATE/<id>` `online: true`,
    /// data is stored on disk (and replayed as historical) while it is offline.
    #[serde(default)]
    pub primary_host_id: Option<String>,
    /// Accept DCMD writes (off by default: a broker is a new way into the plant).
    #[serde(default)]
    pub allow_writes: bool,
    /// TLS settings of an `mqtts://` broker.
    #[serde(default)]
    pub tls: Option<MqttTls>,
}

/// `mqtt.tls`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MqttTls {
    /// PEM file of the CA(s) that signed the broker's certificate; without it the operating
    /// system's roots are used.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// Where a broker is, parsed from [`MqttConfig::url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl MqttConfig {
    /// The broker address of `url`.
    pub fn broker(&self) -> Result<BrokerAddr, String> {
        parse_url(&self.url)
    }

    /// The MQTT client id to use.
    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("stator-{}", self.edge_node_id))
    }

    /// The secret-store entry holding the broker password.
    pub fn secret_name(&self) -> String {
        format!("mqtt/{}", self.edge_node_id)
    }

    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(file, format!("$.mqtt.{f}"), m));
        let broker = match self.broker() {
            Ok(b) => b,
            Err(m) => return err("url", m),
        };
        for (f, v) in [
            ("group_id", Some(&self.group_id)),
            ("edge_node_id", Some(&self.edge_node_id)),
            ("primary_host_id", self.primary_host_id.as_ref()),
        ] {
            if let Some(v) = v {
                if let Err(m) = sparkplug_id(v) {
                    return err(f, m);
                }
            }
        }
        if let Some(u) = &self.username {
            if u.is_empty() || u.len() > 256 {
                return err("username", "must be 1-256 bytes".into());
            }
        }
        if let Some(c) = &self.client_id {
            if c.is_empty() || c.len() > 128 || c.chars().any(|c| c.is_control()) {
                return err("client_id", "must be 1-128 printable characters".into());
            }
        }
        if self.tls.is_some() && !broker.tls {
            return err("tls", "only applies to an mqtts:// url".into());
        }
        Ok(())
    }
}

/// A Sparkplug id (group, edge node, host): a topic level, so no `/`, `+`, `#`.
pub fn sparkplug_id(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 64 {
        return Err(format!("{v:?} must be 1-64 characters"));
    }
    if v.chars()
        .any(|c| matches!(c, '/' | '+' | '#') || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "{v:?} must not contain '/', '+', '#', spaces or control characters (it is an MQTT topic level)"
        ));
    }
    Ok(())
}

/// `mqtt://host[:port]` or `mqtts://host[:port]`, nothing after the port.
pub fn parse_url(url: &str) -> Result<BrokerAddr, String> {
    let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("mqtt://") {
        (r, false, 1883)
    } else if let Some(r) = url.strip_prefix("mqtts://") {
        (r, true, 8883)
    } else {
        return Err(format!("{url:?} is not an mqtt:// or mqtts:// URL"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') {
        return Err(format!(
            "{url:?}: give only host and port (credentials: mqtt.username and the secret store)"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{url:?}: bad port {p:?}"))?;
            (h, port)
        }
        _ => (rest, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(BrokerAddr {
        host: host.to_string(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let b = parse_url("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!((b.host.as_str(), b.port, b.tls), ("127.0.0.1", 1884, false));
        let b = parse_url("mqtts://broker.plant").unwrap();
        assert_eq!(
            (b.host.as_str(), b.port, b.tls),
            ("broker.plant", 8883, true)
        );
        assert_eq!(parse_url("mqtt://[::1]:1").unwrap().host, "::1");
        for bad in [
            "tcp://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://u:p@h",
            "mqtt://h/t",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(sparkplug_id("plant/1").is_err());
        assert!(sparkplug_id("a+").is_err());
        assert!(sparkplug_id("scada1").is_ok());
    }
}
