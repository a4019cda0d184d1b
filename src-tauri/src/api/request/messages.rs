//! Requests of messages and the shift log.

use serde::Deserialize;

/// `message_send {to, text, alarm?, ref?}`: `to` is a username or `park:<id>`.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageSendReq {
    pub to: String,
    pub text: String,
    #[serde(default)]
    pub alarm: Option<String>,
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// `messages {with? | channel?, before_id?, limit?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesReq {
    #[serde(default)]
    pub with: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub before_id: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `message_read {ids}`.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReadReq {
    pub ids: Vec<i64>,
}

/// `messages_export {channel? | users?, from?, to?}` (also `GET /api/messages/export`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesExportReq {
    #[serde(default)]
    pub channel: Option<String>,
    /// Two usernames: `ann,bob`.
    #[serde(default)]
    pub users: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// `logbook_add {park, category, text, alarm?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogbookAddReq {
    pub park: String,
    pub category: String,
    pub text: String,
    #[serde(default)]
    pub alarm: Option<String>,
}

/// `logbook {park?, from?, to?, category?, before_id?, limit?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogbookReq {
    #[serde(default)]
    pub park: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub before_id: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `logbook_ack {entry}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogbookAckReq {
    pub entry: i64,
}
