//! Replies and pushes of messages and the shift log.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::messages::{ClientView, Conversation, UserPresence};
use crate::store::logbook::EntryRow;
use crate::store::messages::MessageRow;

/// A message in replies and pushes: `{"id","from","to","text","alarm","ref","sent_at","read_at"}`.
/// `to` is a username or `park:<id>`; `read_at` is the reader's own read time for a message they
/// received, the peer's for a direct message they sent, else `null`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub from: String,
    pub to: String,
    pub text: String,
    pub alarm: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub sent_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<MessageRow> for MessageView {
    fn from(m: MessageRow) -> Self {
        Self {
            id: m.id,
            from: m.sender,
            to: m.recipient,
            text: m.text,
            alarm: m.alarm,
            reference: m.reference,
            sent_at: m.sent_at,
            read_at: m.read_at,
        }
    }
}

/// `message_send` → `{"message":{…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSent {
    pub message: MessageView,
}

/// `messages` → `{"messages":[…]}`, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct MessagesPage {
    pub messages: Vec<MessageView>,
}

/// `message_read` → `{"ids":[…],"read_at"}`: the ids read now (ones read before are left out).
#[derive(Debug, Clone, Serialize)]
pub struct ReadReply {
    pub ids: Vec<i64>,
    pub read_at: DateTime<Utc>,
}

/// One row of `conversations`: a peer (`with`) or a `channel`, unread count, last message.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationView {
    pub with: Option<String>,
    pub channel: Option<String>,
    pub unread: u64,
    pub last: Option<MessageView>,
}

impl From<Conversation> for ConversationView {
    fn from(c: Conversation) -> Self {
        Self {
            with: c.with,
            channel: c.channel,
            unread: c.unread,
            last: c.last.map(MessageView::from),
        }
    }
}

/// `conversations` → `{"conversations":[…],"can_send","phrases":{"en":[…],…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationsReply {
    pub conversations: Vec<ConversationView>,
    /// Whether the caller may send (role, or `messages.viewers_may_send`).
    pub can_send: bool,
    /// The configured canned phrases per language.
    pub phrases: BTreeMap<String, Vec<String>>,
}

/// `presence` → `{"users":[{"username","clients":[…]}]}`.
#[derive(Debug, Clone, Serialize)]
pub struct PresenceReply {
    pub users: Vec<UserPresence>,
}

/// `messages_export` → `{"csv":"…"}` (the HTTP route answers the CSV itself).
#[derive(Debug, Clone, Serialize)]
pub struct MessagesCsv {
    pub csv: String,
}

/// One confirmation of a handover: `{"by","at"}`.
#[derive(Debug, Clone, Serialize)]
pub struct AckView {
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A shift-log entry. `snapshot` is `{"alarms":[…],"service":…}` for a handover, else `null`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: i64,
    pub park: String,
    pub category: String,
    pub author: String,
    pub text: String,
    pub alarm: Option<String>,
    pub snapshot: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub acks: Vec<AckView>,
}

impl From<EntryRow> for EntryView {
    fn from(e: EntryRow) -> Self {
        Self {
            id: e.id,
            park: e.park,
            category: e.category,
            author: e.author,
            text: e.text,
            alarm: e.alarm,
            snapshot: e
                .snapshot
                .as_deref()
                .map(|s| serde_json::from_str(s).unwrap_or(Value::Null)),
            created_at: e.created_at,
            acks: e
                .acks
                .into_iter()
                .map(|a| AckView {
                    by: a.username,
                    at: a.acked_at,
                })
                .collect(),
        }
    }
}

/// `logbook_add` / `logbook_ack` → `{"entry":{…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReply {
    pub entry: EntryView,
}

/// `logbook` → `{"entries":[…]}`, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct EntriesReply {
    pub entries: Vec<EntryView>,
}

/// Push `{"type":"message","message":{…}}` to every session of the recipient(s) and the
/// sender's other sessions.
#[derive(Debug, Clone, Serialize)]
pub struct MessagePush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub message: MessageView,
}

/// Push `{"type":"receipt","ids":[…],"by","read_at"}` to the sender.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptPush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ids: Vec<i64>,
    pub by: String,
    pub read_at: DateTime<Utc>,
}

/// Push `{"type":"presence","username","online","clients":[…]}` when a client of a user comes
/// or goes (login, logout, disconnect), to users sharing a park with them.
#[derive(Debug, Clone, Serialize)]
pub struct PresencePush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub username: String,
    /// Whether any client of the user is still live.
    pub online: bool,
    pub clients: Vec<ClientView>,
}

/// Push `{"type":"logbook","entry":{…}}` to the park when an entry is added or confirmed.
#[derive(Debug, Clone, Serialize)]
pub struct LogbookPush {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub entry: EntryView,
}
