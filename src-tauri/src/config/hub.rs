//! The optional `hub` section: how `stator hub` (the Sparkplug B central view) maps edge
//! devices to parks and whether it forwards writes. The broker and group come from the command
//! line (`--mqtt`, `--group`); everything else about users, parks, alarms and history is the
//! same configuration as for `serve`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, MqttTls};

/// Tags one park may have at the hub unless configured otherwise (a DBIRTH with more is cut
/// there and counted).
pub const DEFAULT_MAX_TAGS_PER_PARK: usize = 20_000;
/// The highest `hub.max_tags_per_park` accepted.
const MAX_TAGS_LIMIT: usize = 200_000;

/// `hub`: the central view's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Forward writes to the owning edge node as a DCMD (off: every write is refused with
    /// `forbidden` and audited). The edge node's own `mqtt.allow_writes` still decides there.
    #[serde(default)]
    pub allow_writes: bool,
    /// Park id → `<edge_node_id>/<device_id>`: where a park's data comes from. A configured
    /// park without an entry takes the device whose id equals the park id, from whichever
    /// edge node announces it first.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
    /// Tags kept per park; a DBIRTH with more is cut (counted in `health.hub.truncated`).
    #[serde(default = "default_max_tags")]
    pub max_tags_per_park: usize,
    /// Broker user name; the password is the secret `mqtt/hub`.
    #[serde(default)]
    pub username: Option<String>,
    /// MQTT client id; default `stator-hub-<host name>`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// TLS settings of an `mqtts://` broker.
    #[serde(default)]
    pub tls: Option<MqttTls>,
}

fn default_max_tags() -> usize {
    DEFAULT_MAX_TAGS_PER_PARK
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            allow_writes: false,
            sources: BTreeMap::new(),
            max_tags_per_park: DEFAULT_MAX_TAGS_PER_PARK,
            username: None,
            client_id: None,
            tls: None,
        }
    }
}

/// The secret-store entry of the hub's broker password.
pub const HUB_SECRET: &str = "mqtt/hub";

impl HubConfig {
    /// `(edge node, device)` of `park` when `sources` names one.
    pub fn source(&self, park: &str) -> Option<(&str, &str)> {
        self.sources.get(park).and_then(|s| s.split_once('/'))
    }

    pub(super) fn validate(&self, file: &Path, parks: &[&str]) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(file, format!("$.hub.{f}"), m));
        let mut taken = std::collections::HashMap::new();
        for (park, src) in &self.sources {
            let at = format!("sources.{park}");
            if !parks.contains(&park.as_str()) {
                return err(&at, format!("{park:?} is not a park of plc_config"));
            }
            let ok = src.split_once('/').filter(|(e, d)| {
                super::mqtt::sparkplug_id(e).is_ok() && super::mqtt::sparkplug_id(d).is_ok()
            });
            if ok.is_none() {
                return err(
                    &at,
                    format!("{src:?} is not <edge_node_id>/<device_id> (Sparkplug ids)"),
                );
            }
            if let Some(other) = taken.insert(src.as_str(), park.as_str()) {
                return err(&at, format!("{src:?} already feeds park {other:?}"));
            }
        }
        if self.max_tags_per_park == 0 || self.max_tags_per_park > MAX_TAGS_LIMIT {
            return err("max_tags_per_park", format!("must be 1-{MAX_TAGS_LIMIT}"));
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use serde_json::json;

    fn parse(hub: serde_json::Value) -> Result<Config, String> {
        let v = json!({
            "plc_config": [{"id": "alpha", "url": "opc.tcp://127.0.0.1:4840", "name": "A"},
                           {"id": "beta", "url": "opc.tcp://127.0.0.1:4841", "name": "B"}],
            "common_root_node_id": "ns=1;i=1",
            "broadcast_interval_seconds": 1,
            "plc_reconnect_delay_minutes": 1,
            "hub": hub,
        });
        Config::parse(std::path::Path::new("c.json"), &v.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_hub_section_is_validated_with_its_json_path() {
        let c = parse(json!({"sources": {"alpha": "panel1/alpha"}})).unwrap();
        let h = c.hub.unwrap();
        assert_eq!(h.source("alpha"), Some(("panel1", "alpha")));
        assert!(!h.allow_writes);
        assert_eq!(h.max_tags_per_park, super::DEFAULT_MAX_TAGS_PER_PARK);
        for (bad, path) in [
            (json!({"sources": {"gamma": "e/d"}}), "$.hub.sources.gamma"),
            (json!({"sources": {"alpha": "e"}}), "$.hub.sources.alpha"),
            (
                json!({"sources": {"alpha": "e/d/x"}}),
                "$.hub.sources.alpha",
            ),
            (
                json!({"sources": {"alpha": "e/d", "beta": "e/d"}}),
                "$.hub.sources.beta",
            ),
            (json!({"max_tags_per_park": 0}), "$.hub.max_tags_per_park"),
            (json!({"client_id": ""}), "$.hub.client_id"),
            (json!({"url": "mqtt://x"}), "$.hub"),
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert!(e.contains(path), "{bad}: {e}");
        }
    }
}
