//! The `alarms` and `alarm_settings` keys: alarm definitions (ISA-18.2) and their global limits.
//!
//! Definitions are validated as strictly as the rest of the file (one line naming the JSON path),
//! but a tag that the PLC does not have is not an error here: the PLC may be offline at start, so
//! the alarm list shows such an alarm as `tag_missing` instead.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Config, ConfigError, PlcConfig};

/// Most alarm definitions one file may hold (the evaluator is sized for 10,000).
pub const MAX_ALARMS: usize = 100_000;
/// Longest on/off delay: one day.
pub const MAX_DELAY_SECONDS: f64 = 86_400.0;
/// Longest shelve a configuration may allow: one year.
pub const MAX_SHELVE_MINUTES: u32 = 525_600;
/// Longest alarm id (the built-in `<park>.comm` ids are at most 69 bytes).
pub const MAX_ALARM_ID: usize = 128;
/// Longest message text per language.
pub const MAX_MESSAGE: usize = 500;

/// One alarm definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlarmConfig {
    /// Unique, `[A-Za-z0-9_.-]`.
    pub id: String,
    /// `<plc id>/<tag name>`, the tag name possibly an array element `Name[i]`.
    pub tag: String,
    pub condition: Condition,
    /// The limit of `high`, `high_high`, `low`, `low_low`, in engineering units.
    #[serde(default)]
    pub limit: Option<f64>,
    /// The value compared by `equals` / `not_equals` (a boolean, number or string).
    #[serde(default)]
    pub value: Option<Value>,
    /// Hysteresis applied on return to normal (limit conditions only), in engineering units.
    #[serde(default)]
    pub deadband: f64,
    /// How long the condition must hold before the alarm is raised (0 = immediately).
    #[serde(default)]
    pub on_delay_seconds: f64,
    /// How long the condition must be gone before the alarm returns to normal (0 = immediately).
    #[serde(default)]
    pub off_delay_seconds: f64,
    pub priority: Priority,
    /// A text, or a map of language → text (the UI falls back to `en`, then to any).
    pub message: Message,
}

/// What makes an alarm active.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    High,
    HighHigh,
    Low,
    LowLow,
    Equals,
    NotEquals,
    /// The built-in `<park>.comm` alarm (not configurable).
    #[serde(skip_deserializing)]
    Comm,
    /// The built-in `<calibration id>.cal_due` alarm (not configurable): the calibration is
    /// due within 14 days or overdue.
    #[serde(skip_deserializing)]
    CalDue,
}

impl Condition {
    /// Limit conditions compare a number with `limit`; the others compare with `value`.
    pub fn is_limit(self) -> bool {
        matches!(self, Self::High | Self::HighHigh | Self::Low | Self::LowLow)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::HighHigh => "high_high",
            Self::Low => "low",
            Self::LowLow => "low_low",
            Self::Equals => "equals",
            Self::NotEquals => "not_equals",
            Self::Comm => "comm",
            Self::CalDue => "cal_due",
        }
    }
}

/// ISA-18.2 priority, most urgent first (the derived order sorts `urgent` first).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    High,
    Medium,
    Low,
}

impl Priority {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Urgent => "urgent",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Priority> {
        [Self::Urgent, Self::High, Self::Medium, Self::Low]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// An alarm text: one string, or one per language.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Message {
    Text(String),
    Languages(BTreeMap<String, String>),
}

/// `alarm_settings`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// Longest shelve an operator may ask for, in minutes.
    pub max_shelve_minutes: u32,
    /// Audible annunciation of `urgent`/`high` alarms on the panel.
    pub sound: bool,
    /// On-delay of the built-in `<park>.comm` alarm, in seconds.
    pub comm_on_delay_seconds: f64,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        Self {
            max_shelve_minutes: 480,
            sound: false,
            comm_on_delay_seconds: 10.0,
        }
    }
}

/// The id of a park's built-in communication alarm.
pub fn comm_alarm_id(park: &str) -> String {
    format!("{park}.comm")
}

/// The built-in communication alarm of `plc`: raised while its connection is not CONNECTED.
pub fn comm_alarm(plc: &PlcConfig, settings: &AlarmSettings) -> AlarmConfig {
    AlarmConfig {
        id: comm_alarm_id(&plc.id),
        tag: format!("{}/", plc.id),
        condition: Condition::Comm,
        limit: None,
        value: None,
        deadband: 0.0,
        on_delay_seconds: settings.comm_on_delay_seconds,
        off_delay_seconds: 0.0,
        priority: Priority::High,
        message: Message::Languages(BTreeMap::from([
            ("en".to_string(), "PLC not connected".to_string()),
            ("de".to_string(), "SPS nicht verbunden".to_string()),
            ("pl".to_string(), "Sterownik PLC niepołączony".to_string()),
        ])),
    }
}

/// The id of a calibration's built-in due alarm.
pub fn cal_due_alarm_id(calibration: &str) -> String {
    format!("{calibration}.cal_due")
}

/// The built-in alarm of calibration `c`, raised while it is due (within 14 days) or overdue
/// (`api` tells the evaluator from the calibration records).
pub fn cal_due_alarm(c: &crate::config::CalibrationConfig) -> AlarmConfig {
    AlarmConfig {
        id: cal_due_alarm_id(&c.id),
        tag: c.tag.clone(),
        condition: Condition::CalDue,
        limit: None,
        value: None,
        deadband: 0.0,
        on_delay_seconds: 0.0,
        off_delay_seconds: 0.0,
        priority: Priority::Low,
        message: Message::Languages(BTreeMap::from([
            ("en".to_string(), format!("Calibration {} due", c.id)),
            ("de".to_string(), format!("Kalibrierung {} fällig", c.id)),
            ("pl".to_string(), format!("Wymagana kalibracja {}", c.id)),
        ])),
    }
}

/// Splits `Name[i]` into the tag name and the element index.
pub fn split_index(tag: &str) -> Result<(&str, Option<usize>), String> {
    let Some(open) = tag.find('[') else {
        return Ok((tag, None));
    };
    let inner = tag[open + 1..]
        .strip_suffix(']')
        .ok_or_else(|| format!("{tag:?}: an array element is written Name[i]"))?;
    let i = inner
        .parse::<usize>()
        .ok()
        .filter(|_| inner.chars().all(|c| c.is_ascii_digit()) && inner.len() <= 6)
        .ok_or_else(|| format!("{tag:?}: the index must be a number such as [3]"))?;
    Ok((&tag[..open], Some(i)))
}

fn valid_alarm_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ALARM_ID
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn positive_or_zero_at_most(v: f64, max: f64) -> Result<(), String> {
    if v.is_finite() && (0.0..=max).contains(&v) {
        Ok(())
    } else {
        Err(format!("must be a number from 0 to {max} (got {v})"))
    }
}

impl Config {
    /// Every alarm the evaluator runs: the configured ones, then one `<park>.comm` per PLC and
    /// one `<calibration id>.cal_due` per calibration.
    pub fn all_alarms(&self) -> Vec<AlarmConfig> {
        let mut all = self.alarms.clone();
        all.extend(
            self.plc_config
                .iter()
                .map(|p| comm_alarm(p, &self.alarm_settings)),
        );
        all.extend(self.calibration.iter().map(cal_due_alarm));
        all
    }

    /// Validates `alarms` and `alarm_settings` (called by `validate`).
    pub(super) fn validate_alarms(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |p: String, m: String| Err(ConfigError::new(file, p, m));
        let s = &self.alarm_settings;
        if !(1..=MAX_SHELVE_MINUTES).contains(&s.max_shelve_minutes) {
            return err(
                "$.alarm_settings.max_shelve_minutes".into(),
                format!(
                    "must be between 1 and {MAX_SHELVE_MINUTES} (got {})",
                    s.max_shelve_minutes
                ),
            );
        }
        if let Err(m) = positive_or_zero_at_most(s.comm_on_delay_seconds, MAX_DELAY_SECONDS) {
            return err("$.alarm_settings.comm_on_delay_seconds".into(), m);
        }
        if self.alarms.len() > MAX_ALARMS {
            return err(
                "$.alarms".into(),
                format!("at most {MAX_ALARMS} alarms (got {})", self.alarms.len()),
            );
        }
        let mut seen: HashSet<String> = self
            .plc_config
            .iter()
            .map(|p| comm_alarm_id(&p.id))
            .chain(self.calibration.iter().map(|c| cal_due_alarm_id(&c.id)))
            .collect();
        for (i, a) in self.alarms.iter().enumerate() {
            let at = |f: &str| format!("$.alarms[{i}].{f}");
            if !valid_alarm_id(&a.id) {
                return err(
                    at("id"),
                    format!(
                        "invalid id {:?}: use 1-{MAX_ALARM_ID} characters A-Z, a-z, 0-9, '_', '.' or '-'",
                        a.id
                    ),
                );
            }
            if !seen.insert(a.id.clone()) {
                return err(
                    at("id"),
                    format!(
                        "duplicate id {:?} (ids <park>.comm and <calibration>.cal_due are built in)",
                        a.id
                    ),
                );
            }
            let Some((plc, name)) = a.tag.split_once('/') else {
                return err(at("tag"), "must be \"<plc id>/<tag name>\"".into());
            };
            if self.plc(plc).is_none() {
                return err(at("tag"), format!("no PLC with id {plc:?} in plc_config"));
            }
            match split_index(name) {
                Ok(("", _)) => return err(at("tag"), "the tag name is empty".into()),
                Ok(_) => {}
                Err(m) => return err(at("tag"), m),
            }
            if a.condition.is_limit() {
                match a.limit {
                    Some(l) if l.is_finite() => {}
                    Some(l) => {
                        return err(at("limit"), format!("must be a finite number (got {l})"))
                    }
                    None => {
                        return err(
                            at("limit"),
                            format!("condition {} needs a limit", a.condition.as_str()),
                        )
                    }
                }
                if a.value.is_some() {
                    return err(
                        at("value"),
                        format!(
                            "condition {} compares with limit, not value",
                            a.condition.as_str()
                        ),
                    );
                }
                if let Err(m) = positive_or_zero_at_most(a.deadband, f64::MAX) {
                    return err(at("deadband"), m);
                }
            } else {
                match &a.value {
                    Some(Value::Bool(_) | Value::Number(_)) => {}
                    Some(Value::String(s)) if s.len() <= MAX_MESSAGE => {}
                    Some(_) => {
                        return err(
                            at("value"),
                            "must be a boolean, a number or a short string".into(),
                        )
                    }
                    None => {
                        return err(
                            at("value"),
                            format!("condition {} needs a value", a.condition.as_str()),
                        )
                    }
                }
                if a.limit.is_some() {
                    return err(
                        at("limit"),
                        format!(
                            "condition {} compares with value, not limit",
                            a.condition.as_str()
                        ),
                    );
                }
                if a.deadband != 0.0 {
                    return err(
                        at("deadband"),
                        "only limit conditions (high, high_high, low, low_low) have a deadband"
                            .into(),
                    );
                }
            }
            for (f, v) in [
                ("on_delay_seconds", a.on_delay_seconds),
                ("off_delay_seconds", a.off_delay_seconds),
            ] {
                if let Err(m) = positive_or_zero_at_most(v, MAX_DELAY_SECONDS) {
                    return err(at(f), m);
                }
            }
            let texts: Vec<(String, &String)> = match &a.message {
                Message::Text(t) => vec![("message".into(), t)],
                Message::Languages(m) if m.is_empty() => {
                    return err(at("message"), "needs at least one language".into())
                }
                Message::Languages(m) => {
                    m.iter().map(|(l, t)| (format!("message.{l}"), t)).collect()
                }
            };
            for (f, t) in texts {
                if t.trim().is_empty() || t.len() > MAX_MESSAGE {
                    return err(
                        at(&f),
                        format!("must be a text of 1 to {MAX_MESSAGE} bytes"),
                    );
                }
            }
            if let Message::Languages(m) = &a.message {
                if let Some(l) = m.keys().find(|l| {
                    !(2..=8).contains(&l.len())
                        || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }) {
                    return err(
                        at("message"),
                        format!("{l:?} is not a language code such as en or de"),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{
  "plc_config": [ { "id": "eco_solar", "url": "opc.tcp://127.0.0.1:4840", "name": "Eco" } ],
  "common_root_node_id": "ns=4;i=2",
  "broadcast_interval_seconds": 1,
  "plc_reconnect_delay_minutes": 1,
  "alarms": ALARMS
}"#;

    fn parse(alarms: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.json"), &BASE.replace("ALARMS", alarms))
    }

    fn bad(alarms: &str) -> String {
        parse(alarms).unwrap_err().to_string()
    }

    #[test]
    fn accepts_the_issue_examples() {
        let c = parse(
            r#"[
  { "id": "eco_power_high", "tag": "eco_solar/Active_Power_kW", "condition": "high", "limit": 1100,
    "deadband": 10, "on_delay_seconds": 2, "off_delay_seconds": 0, "priority": "high",
    "message": { "en": "Active power above 1100 kW", "de": "Wirkleistung über 1100 kW" } },
  { "id": "eco_breaker_open", "tag": "eco_solar/Breaker_Closed", "condition": "equals", "value": false,
    "priority": "urgent", "message": "Breaker open" },
  { "id": "eco_cutoff_3", "tag": "eco_solar/CMD_Instant_Cutoff[3]", "condition": "equals", "value": true,
    "priority": "medium", "message": "Instant cutoff 3 active" }
]"#,
        )
        .unwrap();
        assert_eq!(c.alarms.len(), 3);
        assert_eq!(c.alarms[0].condition, Condition::High);
        assert_eq!(c.alarm_settings.max_shelve_minutes, 480);
        let all = c.all_alarms();
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].id, "eco_solar.comm");
        assert_eq!(all[3].priority, Priority::High);
        assert_eq!(all[3].on_delay_seconds, 10.0);
        assert_eq!(
            split_index("CMD_Instant_Cutoff[3]").unwrap(),
            ("CMD_Instant_Cutoff", Some(3))
        );
    }

    #[test]
    fn rejects_with_the_json_path() {
        for (alarms, want) in [
            (
                one("").replace("\"a\"", "\"a b\""),
                "$.alarms[0].id: invalid id",
            ),
            (
                one("").replace("\"a\"", "\"eco_solar.comm\""),
                "$.alarms[0].id: duplicate id",
            ),
            (
                one("").replace("eco_solar/P", "nowhere/P"),
                "$.alarms[0].tag: no PLC",
            ),
            (
                one("").replace("eco_solar/P", "P"),
                "$.alarms[0].tag: must be",
            ),
            (
                one("").replace("eco_solar/P", "eco_solar/P[x]"),
                "$.alarms[0].tag: \"P[x]\"",
            ),
            (
                one("").replace("\"limit\": 1,", ""),
                "$.alarms[0].limit: condition high needs a limit",
            ),
            (one(", \"value\": 3"), "$.alarms[0].value:"),
            (one(", \"deadband\": -1"), "$.alarms[0].deadband:"),
            (
                one(", \"on_delay_seconds\": 1e9"),
                "$.alarms[0].on_delay_seconds:",
            ),
            (
                one("").replace("\"high\"", "\"equals\""),
                "$.alarms[0].value: condition equals needs a value",
            ),
            (one("").replace("\"m\"", "\"\""), "$.alarms[0].message:"),
            (one("").replace("\"m\"", "{}"), "$.alarms[0].message:"),
            (
                one("").replace("\"low\"", "\"severe\""),
                "$.alarms[0].priority",
            ),
            (
                one("").replace("\"high\"", "\"comm\""),
                "$.alarms[0].condition",
            ),
            (one(", \"colour\": 1"), "$.alarms[0]"),
        ] {
            let e = bad(&alarms);
            assert!(
                e.starts_with(&format!("config.json: {want}")),
                "{want}: {e}"
            );
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let two = format!(
            "[{}, {}]",
            one("").trim_matches(['[', ']']),
            one("").trim_matches(['[', ']'])
        );
        assert!(bad(&two).starts_with("config.json: $.alarms[1].id: duplicate id"));
        let e = Config::parse(
            Path::new("config.json"),
            &BASE.replace(
                "ALARMS",
                "[], \"alarm_settings\": {\"max_shelve_minutes\": 0}",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("config.json: $.alarm_settings.max_shelve_minutes:"),
            "{e}"
        );
    }

    fn one(extra: &str) -> String {
        format!(
            r#"[{{ "id": "a", "tag": "eco_solar/P", "condition": "high", "limit": 1, "priority": "low", "message": "m"{extra} }}]"#
        )
    }

    #[test]
    fn defaults() {
        let c = parse(&one("")).unwrap();
        let a = &c.alarms[0];
        assert_eq!(
            (a.deadband, a.on_delay_seconds, a.off_delay_seconds),
            (0.0, 0.0, 0.0)
        );
        assert!(!c.alarm_settings.sound);
    }
}
