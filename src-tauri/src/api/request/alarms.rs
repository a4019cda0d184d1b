//! Alarm requests. An alarm is named by `alarm` (its configured id), several by `ids` — never
//! `id`, which is the WebSocket correlation id.

use serde::Deserialize;

/// `alarm_ack {ids, comment?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmAckReq {
    pub ids: Vec<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// `alarm_shelve {alarm, minutes, reason}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmShelveReq {
    pub alarm: String,
    pub minutes: u32,
    pub reason: String,
}

/// `alarm_unshelve {alarm}` / `alarm_in_service {alarm}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmReq {
    pub alarm: String,
}

/// `alarm_out_of_service {alarm, reason}`.
#[derive(Debug, Clone, Deserialize)]
pub struct AlarmServiceReq {
    pub alarm: String,
    pub reason: String,
}

/// `alarm_journal {from?, to?, park?, priority?, alarm?, limit?, before_id?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlarmJournalReq {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub park: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub alarm: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub before_id: Option<i64>,
}

/// `incidents {from?, to?, type?, park?, limit?}`; `type` is an alarm id or `comm`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IncidentsReq {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub park: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `alarm_stats {from?, to?, park?}` (default: the last 24 hours).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlarmStatsReq {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub park: Option<String>,
}
