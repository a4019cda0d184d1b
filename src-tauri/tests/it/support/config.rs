//! The one way tests and benches write a `config.json`. Benches and `tests/auth_timing.rs` are
//! separate binaries and include this file by `#[path]`, so it depends on nothing else in
//! `support`.

use std::path::Path;

use serde_json::{json, Value};
use stator::config::Config;

/// The root folder the simulator and the real PLCs share.
pub const ROOT_NODE: &str = "ns=4;i=2";

/// A configuration under construction: no PLC yet, the common root node, updates every 0.1 s
/// and reconnects after 0.1 min (tests never wait out the seed's ten minutes by accident).
pub struct ConfigBuilder {
    v: Value,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            v: json!({
                "plc_config": [],
                "common_root_node_id": ROOT_NODE,
                "broadcast_interval_seconds": 0.1,
                "plc_reconnect_delay_minutes": 0.1,
            }),
        }
    }
}

impl ConfigBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a PLC (`id`, `url`, display `name`).
    pub fn plc(self, id: &str, url: &str, name: &str) -> Self {
        self.plc_entry(json!({"id": id, "url": url, "name": name}))
    }

    /// Adds a PLC entry written out in full (e.g. with a `write_policy`).
    pub fn plc_entry(mut self, entry: Value) -> Self {
        self.v["plc_config"]
            .as_array_mut()
            .expect("plc_config is a list")
            .push(entry);
        self
    }

    /// Sets one top-level key.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.v[key] = value.into();
        self
    }

    /// Merges the keys of `extra` (an object) into the top level, replacing what is there.
    pub fn merge(mut self, extra: Value) -> Self {
        if let (Value::Object(m), Value::Object(e)) = (&mut self.v, extra) {
            m.extend(e);
        }
        self
    }

    /// The JSON text, as a `config.json` file holds it.
    pub fn text(&self) -> String {
        self.v.to_string()
    }

    /// The parsed configuration; panics when the test wrote an invalid one.
    pub fn build(&self) -> Config {
        Config::parse(Path::new("test.json"), &self.text()).expect("test config is valid")
    }
}

/// The parks the auth tests and benches use: the first `n` of `eco_solar`, `isiada`, `kozani`.
pub fn parks(n: usize) -> ConfigBuilder {
    [
        ("eco_solar", "opc.tcp://127.0.0.1:4840", "Eco Solar"),
        ("isiada", "opc.tcp://127.0.0.1:4841", "Isiada"),
        ("kozani", "opc.tcp://127.0.0.1:4842", "Kozani"),
    ]
    .into_iter()
    .take(n)
    .fold(ConfigBuilder::new(), |b, (id, url, name)| {
        b.plc(id, url, name)
    })
}
