//! Replies of the historian ops (`history`, `history_tags`) and the `history` part of `/health`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `history` → `{"series":[…]}`, one entry per asked tag, in the asked order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryReply {
    pub series: Vec<SeriesView>,
}

/// One tag's trend: `kind` `raw` (points `[t, value, quality]`) or `buckets` (points
/// `[t, min, max, first, last]`, nulls for a bucket that held only bad-quality samples).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeriesView {
    pub tag: String,
    pub kind: String,
    pub points: Vec<Value>,
    /// The configured unit, for axes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unit: Option<String>,
    /// The configured engineering range `[min, max]` (tag `range`), drawn as limit lines.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub range: Option<[f64; 2]>,
    /// The configured limit alarms of the tag, drawn as alarm limit lines.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub alarm_limits: Vec<AlarmLimitView>,
}

/// One configured limit alarm (`high`, `high_high`, `low`, `low_low`) of a trended tag: the
/// trend draws it as a line at `limit` marked with its priority (colour and letter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmLimitView {
    /// The alarm id.
    pub alarm: String,
    /// `high`, `high_high`, `low` or `low_low`.
    pub condition: String,
    /// In engineering units.
    pub limit: f64,
    /// `urgent`, `high`, `medium` or `low`.
    pub priority: String,
}

/// `history_tags` → `{"tags":[…]}`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryTags {
    pub tags: Vec<HistoryTagView>,
}

/// One recorded tag: what it holds and its first/last sample (Unix ms).
#[derive(Debug, Clone, Serialize)]
pub struct HistoryTagView {
    pub tag: String,
    /// `number`, `bool` or `text`.
    #[serde(rename = "type")]
    pub value_type: crate::history::Kind,
    pub first: i64,
    pub last: i64,
    pub samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// As in [`SeriesView::range`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// As in [`SeriesView::alarm_limits`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarm_limits: Vec<AlarmLimitView>,
}

/// The historian's counters in `/health`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryHealth {
    /// Samples committed to disk since start.
    pub stored: u64,
    /// Samples dropped because the disk could not keep up (or a write failed).
    pub dropped: u64,
    /// Sample batches missed because the historian fell behind the live values.
    pub lagged_batches: u64,
    /// Samples waiting for the writer.
    pub queued: u64,
}

impl From<crate::history::StatsView> for HistoryHealth {
    fn from(s: crate::history::StatsView) -> Self {
        Self {
            stored: s.stored,
            dropped: s.dropped,
            lagged_batches: s.lagged_batches,
            queued: s.queued,
        }
    }
}
