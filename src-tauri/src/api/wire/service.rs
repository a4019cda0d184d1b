//! Replies and pushes of service mode, calibration and diagnostics.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plc::{DiagReport, ServerCertificate, ServerStatus};
use crate::service::calibration::{Point, Record};
use crate::store::service::ServicePeriod;

/// A park's service state: the banner every client of the park shows (`active` false once it
/// ended). Reply of `service_start`/`service_end`, element of the snapshot's `service`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceBanner {
    pub park: String,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ServiceBanner {
    /// The banner of an open period.
    pub fn of(p: &ServicePeriod) -> Self {
        Self {
            park: p.park.clone(),
            active: true,
            by: Some(p.username.clone()),
            since: Some(p.started_at),
            reason: Some(p.reason.clone()),
        }
    }
    /// The banner of a park no longer in service.
    pub fn ended(park: &str) -> Self {
        Self {
            park: park.into(),
            active: false,
            by: None,
            since: None,
            reason: None,
        }
    }
}

/// The push `{"type":"service", …banner}` to every session of the park.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub banner: ServiceBanner,
}

/// The state of a calibration run (reply of every calibration op); fields appear once known.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRunView {
    /// The configured calibration id.
    pub id: String,
    pub points: Vec<Point>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gain: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_found_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_left_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<bool>,
    /// Gain and offset the PLC held when the run started.
    pub old_gain: f64,
    pub old_offset: f64,
    pub unit: String,
    pub range: [f64; 2],
    pub tolerance: f64,
    /// `open`, `applied` or `cancelled`.
    pub state: &'static str,
    /// The number of the stored record once applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<i64>,
}

/// One stored record with its number `n`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRecordView {
    pub n: i64,
    #[serde(flatten)]
    pub record: Record,
}

/// Reply of `calibration_records`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationRecords {
    pub records: Vec<CalibrationRecordView>,
}

/// The last passed calibration of a sensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCalibration {
    /// The record number.
    pub n: i64,
    pub at: DateTime<Utc>,
    pub by: String,
}

/// One configured calibration in the `calibrations` reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationView {
    pub id: String,
    pub park: String,
    pub tag: String,
    pub raw_tag: String,
    pub unit: String,
    pub range: [f64; 2],
    pub tolerance: f64,
    pub interval_days: u32,
    /// The last passed calibration (absent: never calibrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<LastCalibration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due: Option<DateTime<Utc>>,
    /// `ok`, `due_soon` (within 14 days) or `overdue` (also: never calibrated).
    pub due: &'static str,
    /// Whether the caller has an open run of this calibration (its state comes with
    /// `calibration_start`).
    pub open_run: bool,
}

/// Reply of `calibrations`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationList {
    pub calibrations: Vec<CalibrationView>,
}

/// One park in the `diagnostics` reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkDiagnostics {
    pub park: String,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub endpoint: String,
    pub security_policy: String,
    pub security_mode: String,
    pub acquisition: String,
    pub publishing_interval_s: f64,
    pub tags: usize,
    pub bad_quality: usize,
    /// The first few tags with bad quality.
    pub bad_quality_tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<DiagReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_status: Option<ServerStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_status_error: Option<String>,
    /// The PLC's server certificate from the last session's endpoint (`null`: see
    /// `server_certificate_error`).
    pub server_certificate: Option<ServerCertificate>,
    /// Why there is no `server_certificate` (not connected yet, none sent, unreadable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceBanner>,
}

/// The panel part of `diagnostics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanelDiagnostics {
    pub version: &'static str,
    pub uptime_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_rss_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// CPU use of the process over `cpu_interval_s` (100 = one core busy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// The interval `cpu_percent` covers: since the previous `diagnostics` (at least 1 s
    /// before) or since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_interval_s: Option<f64>,
    pub database: String,
    /// The database file and its write-ahead log.
    pub database_bytes: u64,
    /// Free space for an unprivileged writer on the database's file system (Unix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
    /// The historian's file and its size (with its write-ahead log), while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_database_bytes: Option<u64>,
    /// Live clients registered now: panel windows and WebSocket (browser) clients.
    pub clients: ClientCounts,
    /// People's sessions alive now that made a request since Stator started.
    pub sessions: usize,
    /// The cached result of verifying the audit chain.
    pub audit_chain: AuditChain,
}

/// The audit chain's state (`stator audit verify`, cached; re-run by
/// `diagnostics_audit_verify`, which also replies with it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditChain {
    /// `ok`, `broken` or `unknown` (never checked, or the check failed: see `error`).
    pub state: &'static str,
    /// Rows checked by the last run.
    pub rows: u64,
    /// When the last run finished.
    pub checked_at: Option<DateTime<Utc>>,
    /// Where the chain breaks, or why it could not be checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A run is under way now.
    pub running: bool,
}

/// Live clients by kind (the presence registry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientCounts {
    pub panel: usize,
    pub browser: usize,
}

/// Reply of `diagnostics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostics {
    pub parks: Vec<ParkDiagnostics>,
    pub panel: PanelDiagnostics,
}

/// Reply of `diagnostics_ping`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingReply {
    pub park: String,
    pub rtt_ms: f64,
    pub server_status: ServerStatus,
}
