//! The `history` section and the per-tag `history` key: what the embedded historian records,
//! where, and for how long.
//!
//! Kept beside `config.rs` so that the historian's settings and their bounds live in one place;
//! `Config::validate` calls [`HistoryConfig::validate`] and [`TagHistory::validate`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Longest retention accepted (100 years): a typo such as `9e9` is caught, real plants are not.
const MAX_RETENTION_DAYS: f64 = 36_500.0;
/// Longest per-tag or global minimum interval between two stored samples.
const MAX_MIN_INTERVAL_SECONDS: f64 = 3_600.0;
/// Longest time samples may wait in memory before they are written.
const MAX_FLUSH_SECONDS: f64 = 60.0;

/// `"history": {…}`: the embedded historian (on by default, with these defaults).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Record at all.
    pub enabled: bool,
    /// The historian's own SQLite file; default `history.db` next to the user database.
    pub database: Option<PathBuf>,
    /// Samples older than this are deleted, oldest first.
    pub retention_days: f64,
    /// Disk budget of the historian's data; the oldest blocks go first when it is exceeded.
    pub max_disk_mb: f64,
    /// Default minimum time between two stored samples of one tag (a tag's own setting wins).
    pub min_interval_seconds: f64,
    /// How often the writer thread commits what it collected (and so the most a crash loses).
    pub flush_seconds: f64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            database: None,
            retention_days: 90.0,
            max_disk_mb: 2048.0,
            min_interval_seconds: 1.0,
            flush_seconds: 1.0,
        }
    }
}

impl HistoryConfig {
    /// Bounds of every key; errors name `$.history.<key>`.
    pub(super) fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        let err = |f: &str, m: String| Err(ConfigError::new(file, format!("$.history.{f}"), m));
        for (f, v, lo, hi, open) in [
            (
                "retention_days",
                self.retention_days,
                0.0,
                MAX_RETENTION_DAYS,
                true,
            ),
            (
                "max_disk_mb",
                self.max_disk_mb,
                1.0,
                16.0 * 1024.0 * 1024.0,
                false,
            ),
            (
                "min_interval_seconds",
                self.min_interval_seconds,
                0.0,
                MAX_MIN_INTERVAL_SECONDS,
                false,
            ),
            (
                "flush_seconds",
                self.flush_seconds,
                0.0,
                MAX_FLUSH_SECONDS,
                true,
            ),
        ] {
            let low_ok = if open { v > lo } else { v >= lo };
            if !(v.is_finite() && low_ok && v <= hi) {
                let lo = if open {
                    format!("above {lo}")
                } else {
                    format!("at least {lo}")
                };
                return err(f, format!("must be {lo} and at most {hi} (got {v})"));
            }
        }
        if let Some(p) = &self.database {
            if p.as_os_str().is_empty() {
                return err("database", "must not be empty".into());
            }
        }
        Ok(())
    }
}

/// A tag's `history` key: `false` (never recorded), `true` (recorded, also strings and
/// DateTimes) or `{deadband, min_interval_seconds}` (recorded with these filters).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum TagHistory {
    Off,
    On(HistoryFilter),
}

/// Per-tag recording filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryFilter {
    /// A numeric change smaller than this (absolute) is not stored.
    #[serde(default)]
    pub deadband: Option<f64>,
    /// Minimum time between two stored samples of this tag (overrides the global default).
    #[serde(default)]
    pub min_interval_seconds: Option<f64>,
}

impl TryFrom<serde_json::Value> for TagHistory {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        match v {
            serde_json::Value::Bool(false) => Ok(TagHistory::Off),
            serde_json::Value::Bool(true) => Ok(TagHistory::On(HistoryFilter::default())),
            o @ serde_json::Value::Object(_) => serde_json::from_value(o)
                .map(TagHistory::On)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "expected true, false or {{\"deadband\":…,\"min_interval_seconds\":…}}, got {other}"
            )),
        }
    }
}

impl From<TagHistory> for serde_json::Value {
    fn from(h: TagHistory) -> Self {
        match h {
            TagHistory::Off => serde_json::Value::Bool(false),
            TagHistory::On(f) => serde_json::to_value(f).unwrap_or(serde_json::Value::Bool(true)),
        }
    }
}

impl TagHistory {
    /// Bounds of the filters; `at` is the JSON path of the tag's `history` key.
    pub(super) fn validate(&self, file: &Path, at: &str) -> Result<(), ConfigError> {
        let TagHistory::On(f) = self else {
            return Ok(());
        };
        if let Some(d) = f.deadband {
            if !(d.is_finite() && d >= 0.0) {
                return Err(ConfigError::new(
                    file,
                    format!("{at}.deadband"),
                    format!("must be a number of at least 0 (got {d})"),
                ));
            }
        }
        if let Some(s) = f.min_interval_seconds {
            if !(s.is_finite() && (0.0..=MAX_MIN_INTERVAL_SECONDS).contains(&s)) {
                return Err(ConfigError::new(
                    file,
                    format!("{at}.min_interval_seconds"),
                    format!("must be between 0 and {MAX_MIN_INTERVAL_SECONDS} (got {s})"),
                ));
            }
        }
        Ok(())
    }
}
