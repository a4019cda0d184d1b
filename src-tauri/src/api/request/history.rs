//! Requests of the historian: trend data and the list of recorded tags.

use serde::Deserialize;

/// `history {tags, from?, to?, max_points?}`: `tags` as `<plc>/<tag>` (array elements
/// `<plc>/<tag>[i]`); `from`/`to` RFC 3339, `YYYY-MM-DD` or relative (`-1h`, `-7d`, `now`;
/// default the last hour); `max_points` 1–10,000 (default 1,000).
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryReq {
    pub tags: Vec<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub max_points: Option<u64>,
}

/// `history_tags {park?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryTagsReq {
    #[serde(default)]
    pub park: Option<String>,
}
