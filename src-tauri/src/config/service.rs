//! The `service` and `calibration` sections: what operators may still write while a park is in
//! service, how long a calibration point is captured, and the two-point sensor calibrations a
//! serviceman can run (the PLC computes `value = raw × gain + offset`, Stator computes and writes
//! the new gain and offset).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{valid_id, Config, ConfigError};

/// Service mode.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Tags (`<plc id>/<tag name>`) operators may still write while their park is in service,
    /// e.g. an emergency stop reset; every other operator write to that park is `in_service`.
    pub operator_writable: Vec<String>,
    /// How long the raw value is averaged for one calibration point (its spread is measured over
    /// the same window).
    pub capture_seconds: f64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            operator_writable: Vec::new(),
            capture_seconds: 2.0,
        }
    }
}

/// One two-point (zero/span) calibration of a sensor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// The name the ops use (`calibration` field), e.g. `eco_p1`.
    pub id: String,
    /// The scaled value the PLC computes, `<plc id>/<tag name>`.
    pub tag: String,
    /// The raw input the PLC scales.
    pub raw_tag: String,
    /// The gain the PLC multiplies the raw value with (Stator writes it).
    pub gain_tag: String,
    /// The offset the PLC adds (Stator writes it).
    pub offset_tag: String,
    pub unit: String,
    /// Allowed references `[min, max]` in `unit`.
    pub range: [f64; 2],
    /// Largest accepted difference between the live value and the reference, in `unit`; also
    /// the largest accepted spread of a captured point.
    pub tolerance: f64,
    /// Days until the next calibration is due.
    pub interval_days: u32,
}

/// Most calibrations configured (each is a small record; bounded like everything else).
pub const MAX_CALIBRATIONS: usize = 1000;

impl CalibrationConfig {
    /// The park (PLC id) of this sensor.
    pub fn park(&self) -> &str {
        self.tag.split_once('/').map_or("", |(p, _)| p)
    }

    /// The tag name (without the park) of one of the configured `<plc>/<tag>` keys.
    pub fn name_of(key: &str) -> &str {
        key.split_once('/').map_or(key, |(_, t)| t)
    }
}

impl Config {
    /// The calibration with this id.
    pub fn calibration(&self, id: &str) -> Option<&CalibrationConfig> {
        self.calibration.iter().find(|c| c.id == id)
    }

    /// Whether operators may write `<plc>/<tag>` while the park is in service.
    pub fn operator_writable_in_service(&self, plc: &str, tag: &str) -> bool {
        self.service
            .operator_writable
            .iter()
            .any(|k| k.split_once('/') == Some((plc, tag)))
    }
}

/// Checks a `<plc id>/<tag name>` key against the configured PLCs.
fn tag_key<'a>(cfg: &Config, key: &'a str) -> Result<(&'a str, &'a str), String> {
    match key.split_once('/') {
        Some((plc, name)) if !name.is_empty() && cfg.plc(plc).is_some() => Ok((plc, name)),
        Some((plc, name)) if !name.is_empty() => {
            Err(format!("no PLC with id {plc:?} in plc_config"))
        }
        _ => Err(format!("{key:?} is not \"<plc id>/<tag name>\"")),
    }
}

/// Validates both sections (called by `Config::validate`).
pub(super) fn validate(cfg: &Config, file: &Path) -> Result<(), ConfigError> {
    let err = |p: String, m: String| Err(ConfigError::new(file, p, m));
    let s = &cfg.service;
    for (i, k) in s.operator_writable.iter().enumerate() {
        if let Err(m) = tag_key(cfg, k) {
            return err(format!("$.service.operator_writable[{i}]"), m);
        }
    }
    if !(s.capture_seconds.is_finite() && (0.1..=60.0).contains(&s.capture_seconds)) {
        return err(
            "$.service.capture_seconds".into(),
            format!(
                "must be between 0.1 and 60 seconds (got {})",
                s.capture_seconds
            ),
        );
    }
    if cfg.calibration.len() > MAX_CALIBRATIONS {
        return err(
            "$.calibration".into(),
            format!("at most {MAX_CALIBRATIONS} calibrations"),
        );
    }
    let mut seen = HashSet::new();
    for (i, c) in cfg.calibration.iter().enumerate() {
        let at = |f: &str| format!("$.calibration[{i}].{f}");
        if !valid_id(&c.id) {
            return err(
                at("id"),
                format!(
                    "invalid id {:?}: use 1-64 characters a-z, A-Z, 0-9, '_' or '-', starting with a letter",
                    c.id
                ),
            );
        }
        if !seen.insert(c.id.as_str()) {
            return err(at("id"), format!("duplicate id {:?}", c.id));
        }
        let mut park = None;
        for (f, key) in [
            ("tag", &c.tag),
            ("raw_tag", &c.raw_tag),
            ("gain_tag", &c.gain_tag),
            ("offset_tag", &c.offset_tag),
        ] {
            let (plc, _) = match tag_key(cfg, key) {
                Ok(x) => x,
                Err(m) => return err(at(f), m),
            };
            if *park.get_or_insert(plc) != plc {
                return err(
                    at(f),
                    format!("must be on the same PLC as tag ({:?})", park.unwrap_or("")),
                );
            }
        }
        if c.gain_tag == c.offset_tag {
            return err(at("offset_tag"), "must differ from gain_tag".into());
        }
        if c.unit.trim().is_empty() || c.unit.len() > 32 {
            return err(at("unit"), "must be 1 to 32 characters".into());
        }
        let [lo, hi] = c.range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return err(at("range"), "must be [min, max] with min < max".into());
        }
        if !(c.tolerance.is_finite() && c.tolerance > 0.0 && c.tolerance < hi - lo) {
            return err(
                at("tolerance"),
                format!(
                    "must be positive and below the width of the range (got {})",
                    c.tolerance
                ),
            );
        }
        if !(1..=3650).contains(&c.interval_days) {
            return err(
                at("interval_days"),
                format!("must be between 1 and 3650 (got {})", c.interval_days),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{
  "plc_config": [
    { "id": "eco_solar", "url": "opc.tcp://192.168.41.230:4840", "name": "Eco Solar" },
    { "id": "isiada",    "url": "opc.tcp://192.168.42.230:4840", "name": "Isiada" }
  ],
  "common_root_node_id": "ns=4;i=2",
  "broadcast_interval_seconds": 2.0,
  "plc_reconnect_delay_minutes": 10,
  "service": { "operator_writable": ["eco_solar/SP_Enable"] },
  "calibration": [ { "id": "eco_p1", "tag": "eco_solar/Pressure_P1_bar",
    "raw_tag": "eco_solar/Pressure_P1_raw", "gain_tag": "eco_solar/P1_Cal_Gain",
    "offset_tag": "eco_solar/P1_Cal_Offset", "unit": "bar", "range": [0, 10],
    "tolerance": 0.05, "interval_days": 365 } ]
}"#;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.json"), t)
    }

    #[test]
    fn the_example_of_the_documentation_parses() {
        let c = parse(BASE).unwrap();
        let cal = c.calibration("eco_p1").unwrap();
        assert_eq!(cal.park(), "eco_solar");
        assert_eq!(CalibrationConfig::name_of(&cal.raw_tag), "Pressure_P1_raw");
        assert!(c.operator_writable_in_service("eco_solar", "SP_Enable"));
        assert!(!c.operator_writable_in_service("isiada", "SP_Enable"));
        assert_eq!(c.service.capture_seconds, 2.0);
    }

    #[test]
    fn bad_calibrations_name_the_path() {
        for (from, to, path) in [
            (
                "\"id\": \"eco_p1\"",
                "\"id\": \"1x\"",
                "$.calibration[0].id",
            ),
            (
                "\"raw_tag\": \"eco_solar/",
                "\"raw_tag\": \"isiada/",
                "$.calibration[0].raw_tag",
            ),
            (
                "\"gain_tag\": \"eco_solar/",
                "\"gain_tag\": \"nowhere/",
                "$.calibration[0].gain_tag",
            ),
            ("[0, 10]", "[10, 0]", "$.calibration[0].range"),
            ("0.05", "0", "$.calibration[0].tolerance"),
            ("365", "0", "$.calibration[0].interval_days"),
            ("\"bar\"", "\"\"", "$.calibration[0].unit"),
            (
                "\"eco_solar/SP_Enable\"",
                "\"SP_Enable\"",
                "$.service.operator_writable[0]",
            ),
            (
                "\"operator_writable\"",
                "\"capture_seconds\": 0, \"operator_writable\"",
                "$.service.capture_seconds",
            ),
        ] {
            let e = parse(&BASE.replace(from, to)).unwrap_err().to_string();
            assert!(e.starts_with(&format!("config.json: {path}:")), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let e = parse(&BASE.replace("\"interval_days\"", "\"colour\": 1, \"interval_days\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `colour`"), "{e}");
    }
}
