//! Alarm replies and pushes (docs/protocol.md, "Alarms").

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::alarms::stats::Stats;
use crate::alarms::AlarmInfo;
use crate::code::Code;
use crate::store::alarms::{IncidentRow, JournalRow};

/// One alarm as the list, the snapshot and the `alarm` push show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlarmView {
    pub id: String,
    pub park: String,
    /// `<park>/<tag>` (`Name[i]` for an element); empty for the built-in `<park>.comm`.
    pub tag: String,
    /// `high`, `high_high`, `low`, `low_low`, `equals`, `not_equals` or `comm`.
    pub condition: &'static str,
    /// `urgent`, `high`, `medium`, `low`.
    pub priority: &'static str,
    /// `normal`, `unack`, `acked`, `rtn_unack`.
    pub state: &'static str,
    pub shelved_until: Option<DateTime<Utc>>,
    pub out_of_service: bool,
    /// A text or a map of language → text.
    pub message: Value,
    pub value: Value,
    pub limit: Value,
    pub active_since: Option<DateTime<Utc>>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// `good`, `bad` or `tag_missing`.
    pub quality: &'static str,
}

impl From<AlarmInfo> for AlarmView {
    fn from(a: AlarmInfo) -> Self {
        AlarmView {
            id: a.id,
            park: a.park,
            tag: a.tag,
            condition: a.condition.as_str(),
            priority: a.priority.as_str(),
            state: a.state.as_str(),
            shelved_until: a.shelved_until,
            out_of_service: a.out_of_service,
            message: serde_json::to_value(&a.message).unwrap_or(Value::Null),
            value: a.value,
            limit: a.limit,
            active_since: a.active_since,
            acked_by: a.acked_by,
            acked_at: a.acked_at,
            comment: a.comment,
            quality: a.quality.as_str(),
        }
    }
}

/// Reply of `alarms`.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmList {
    pub alarms: Vec<AlarmView>,
}

/// Push of one transition: `{"type":"alarm","alarm":{…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmPush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub alarm: AlarmView,
}

/// Push of several transitions of one park within one broadcast interval (a flood arrives as a
/// few of these instead of one frame per alarm): `{"type":"alarms","alarms":[…]}`, oldest change
/// first, each alarm once in its newest state.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmsPush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub alarms: Vec<AlarmView>,
}

/// One id's outcome in `alarm_ack`.
#[derive(Debug, Clone, Serialize)]
pub struct AckResult {
    pub alarm: String,
    pub ok: bool,
    /// The state after (when `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Why not (when not `ok`): `not_found`, `forbidden`, `unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Code>,
}

/// Reply of `alarm_ack`: one result per id, in request order.
#[derive(Debug, Clone, Serialize)]
pub struct AckReply {
    pub results: Vec<AckResult>,
}

/// Reply of `alarm_shelve`, `alarm_unshelve`, `alarm_out_of_service`, `alarm_in_service`.
#[derive(Debug, Clone, Serialize)]
pub struct AlarmReply {
    pub alarm: AlarmView,
}

/// One journal row.
#[derive(Debug, Clone, Serialize)]
pub struct JournalView {
    pub id: i64,
    pub ts: DateTime<Utc>,
    pub alarm: String,
    pub park: String,
    pub priority: String,
    /// `raise`, `clear`, `ack`, `shelve`, `unshelve`, `out_of_service`, `in_service`.
    pub event: String,
    pub state: String,
    pub value: Value,
    pub actor: Option<String>,
    pub comment: Option<String>,
    /// The event happened while its park was in service mode.
    pub during_service: bool,
}

impl From<JournalRow> for JournalView {
    fn from(r: JournalRow) -> Self {
        JournalView {
            id: r.id,
            ts: r.ts,
            alarm: r.alarm,
            park: r.park,
            priority: r.priority,
            event: r.event,
            state: r.state,
            value: r
                .value
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or(Value::Null),
            actor: r.actor,
            comment: r.comment,
            during_service: false,
        }
    }
}

/// Reply of `alarm_journal`.
#[derive(Debug, Clone, Serialize)]
pub struct JournalPage {
    pub rows: Vec<JournalView>,
}

/// One incident (occurrence).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    pub id: i64,
    pub alarm: String,
    pub park: String,
    pub priority: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    /// Seconds from raise to clear (to now while still active).
    pub duration_s: f64,
    pub peak: Option<f64>,
    pub acked_by: Option<String>,
    pub acked_at: Option<DateTime<Utc>>,
    /// It was raised while its park was in service mode.
    pub during_service: bool,
}

impl IncidentView {
    /// The view of `r` as of `now`.
    pub fn new(r: IncidentRow, now: DateTime<Utc>) -> Self {
        let end = r.ended.unwrap_or(now);
        IncidentView {
            id: r.id,
            duration_s: (end - r.started).num_milliseconds().max(0) as f64 / 1000.0,
            alarm: r.alarm,
            park: r.park,
            priority: r.priority,
            started: r.started,
            ended: r.ended,
            peak: r.peak,
            acked_by: r.acked_by,
            acked_at: r.acked_at,
            during_service: false,
        }
    }
}

/// Reply of `incidents`.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentPage {
    pub incidents: Vec<IncidentView>,
}

/// One alarm and a count (`alarm_stats.top`).
#[derive(Debug, Clone, Serialize)]
pub struct AlarmCount {
    pub alarm: String,
    pub count: usize,
}

/// One standing alarm.
#[derive(Debug, Clone, Serialize)]
pub struct StandingAlarm {
    pub alarm: String,
    pub active_since: DateTime<Utc>,
}

/// Reply of `alarm_stats` (EEMUA 191).
#[derive(Debug, Clone, Serialize)]
pub struct AlarmStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub raised: usize,
    pub per_10_min_mean: f64,
    pub per_10_min_max: usize,
    pub flood_percent: f64,
    pub standing: Vec<StandingAlarm>,
    pub top: Vec<AlarmCount>,
    pub chattering: Vec<String>,
    pub truncated: bool,
}

impl From<Stats> for AlarmStats {
    fn from(s: Stats) -> Self {
        AlarmStats {
            from: s.from,
            to: s.to,
            raised: s.raised,
            per_10_min_mean: s.per_10_min_mean,
            per_10_min_max: s.per_10_min_max,
            flood_percent: s.flood_percent,
            standing: s
                .standing
                .into_iter()
                .map(|(alarm, active_since)| StandingAlarm {
                    alarm,
                    active_since,
                })
                .collect(),
            top: s
                .top
                .into_iter()
                .map(|(alarm, count)| AlarmCount { alarm, count })
                .collect(),
            chattering: s.chattering,
            truncated: s.truncated,
        }
    }
}

/// The CSV header of the journal export.
pub const JOURNAL_CSV_HEADER: &str =
    "id,ts,alarm,park,priority,event,state,value,actor,comment,during_service";
