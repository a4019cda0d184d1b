//! Requests of service mode, calibration and diagnostics.

use serde::Deserialize;

/// `service_start {park, reason}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceStartReq {
    pub park: String,
    pub reason: String,
}

/// `service_end {park}` and `diagnostics_ping {park}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ParkReq {
    pub park: String,
}

/// `calibration_start` / `calibration_apply` / `calibration_cancel {calibration}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CalibrationReq {
    pub calibration: String,
}

/// `calibration_point {calibration, reference}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CalibrationPointReq {
    pub calibration: String,
    pub reference: f64,
}

/// `calibration_records {calibration?, from?, to?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CalibrationRecordsReq {
    #[serde(default)]
    pub calibration: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}
