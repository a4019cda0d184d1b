//! The wire contract: every reply and push message as a typed struct.
//!
//! Handlers return these; transports serialize them. Domain types (`auth::UserInfo`,
//! `store::audit::AuditRow`, `live::Snapshot`, …) are converted to view types here, so a change
//! in a domain type cannot silently change what clients receive. Field order is the JSON order
//! (the crate builds `serde_json` with `preserve_order`). The UI's `ui/src/protocol.ts` is
//! checked against these shapes through `ui/src/wire-samples.json`, which the test at the end of
//! this file regenerates and compares (docs/protocol.md describes every message).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::ApiError;

pub mod alarms;
use crate::auth::{Permission, Principal, Role, UserInfo};
use crate::code::Code;
use crate::live::{PlcDelta, PlcSnapshot, Snapshot};
use crate::store::audit::AuditRow;

/// Serializes a reply for a transport; a failure (never expected for these types) is `internal`.
pub fn to_value<T: Serialize>(reply: &T) -> Result<Value, ApiError> {
    serde_json::to_value(reply).map_err(|e| ApiError::internal(format!("encoding a reply: {e}")))
}

/// One role of THE role table, as `health` lists it for the UI.
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: Role,
    /// Everything this role may do (parks are granted per user on top).
    pub permissions: Vec<Permission>,
    /// The configured idle timeout of this role's sessions, in seconds.
    pub idle_timeout_s: u64,
}

/// THE role table (`auth::role_allows`) as the UI reads it, with each role's idle timeout.
pub fn role_table(idle_timeout_s: impl Fn(Role) -> u64) -> Vec<RoleView> {
    Role::ALL
        .into_iter()
        .map(|role| RoleView {
            role,
            permissions: Permission::ALL
                .into_iter()
                .filter(|p| crate::auth::role_allows(role, *p))
                .collect(),
            idle_timeout_s: idle_timeout_s(role),
        })
        .collect()
}

/// `GET /health` and the `health` op: liveness without park data.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Always `"ok"`.
    pub status: &'static str,
    pub version: &'static str,
    /// True while no user exists (the UI then offers the first-superuser screen).
    pub needs_setup: bool,
    /// Panel only: whether the window is a kiosk (the UI then offers the admin-only way out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kiosk: Option<bool>,
    /// Seconds since the core started.
    pub uptime_s: u64,
    /// THE role table, so that the UI needs no copy of it.
    pub roles: Vec<RoleView>,
    /// Configured alarms whose tag the connected PLC does not have (a count: no park data).
    pub alarms_tag_missing: usize,
    /// `alarm_settings.sound`: the panel sounds `urgent`/`high` alarms.
    pub alarm_sound: bool,
    /// The historian's counters (absent when it is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryHealth>,
    /// How many configured parks are connected, of how many (no names: anonymous callers).
    pub parks_connected: usize,
    pub parks_total: usize,
    /// Connection state per park the caller may see: the panel every park, a request with a
    /// valid session or API token its parks, an anonymous remote caller none.
    pub parks: Vec<ParkHealth>,
    /// State of the subsystems by name (`history`, `alarms`, … once they run); empty when
    /// none reports.
    pub subsystems: std::collections::BTreeMap<String, Value>,
    /// The MQTT (Sparkplug B) broker link, when `mqtt` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttStatus>,
    /// The Sparkplug B central view (`stator hub`), when this Stator is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubStatus>,
}

/// One park in `health`.
#[derive(Debug, Clone, Serialize)]
pub struct ParkHealth {
    pub id: String,
    pub status: crate::live::PlcStatus,
}

/// `ping` → `{"pong":true}`.
#[derive(Debug, Clone, Serialize)]
pub struct Pong {
    pub pong: bool,
}

/// `{}`: the reply of operations that only succeed or fail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Done {}

/// The `user` object of login and `auth` replies.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub username: String,
    pub role: Role,
    /// The configured parks this user sees, sorted.
    pub parks: Vec<String>,
}

/// Reply of `login`, `login_pin`, `login_badge`, `first_superuser` (`/api/login`, `/api/setup`).
#[derive(Debug, Clone, Serialize)]
pub struct LoginReply {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

/// Reply of the WebSocket `auth` op.
#[derive(Debug, Clone, Serialize)]
pub struct AuthReply {
    pub user: UserView,
}

/// The `user` object of `me`: the login user plus the session.
#[derive(Debug, Clone, Serialize)]
pub struct MeUser {
    pub username: String,
    pub role: Role,
    pub parks: Vec<String>,
    /// `panel`, the remote address, or `cli`.
    pub source: String,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
}

/// Reply of `me` (`GET /api/me`).
#[derive(Debug, Clone, Serialize)]
pub struct MeReply {
    pub user: MeUser,
}

impl MeUser {
    /// The `me` view of a principal whose visible parks are `parks`.
    pub fn new(p: &Principal, parks: Vec<String>) -> Self {
        Self {
            username: p.username.clone(),
            role: p.role,
            parks,
            source: p.source.to_string(),
            expires_at: p.expires_at,
            idle_expires_at: p.idle_expires_at,
        }
    }
}

/// The live picture, `{"type":"snapshot","seq","plcs":[…]}` (reply of `snapshot`, first
/// WebSocket message, desktop `live-snapshot` event).
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotMsg {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: u64,
    pub plcs: Vec<PlcSnapshot>,
    /// The alarm list of the same parks (what the `alarms` op answers).
    pub alarms: Vec<alarms::AlarmView>,
    /// The visible parks in service (absent when none): a client that missed the `service`
    /// push still shows the banner.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<ServiceBanner>,
}

impl From<Snapshot> for SnapshotMsg {
    fn from(s: Snapshot) -> Self {
        Self {
            kind: "snapshot",
            seq: s.seq,
            plcs: s.plcs,
            alarms: Vec::new(),
            service: Vec::new(),
        }
    }
}

/// A live update, `{"type":"update","seq","plcs":[…]}`: shared by the WebSocket fan-out and the
/// desktop window's `live-update` event.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateMsg<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    plcs: &'a [PlcDelta],
}

impl<'a> UpdateMsg<'a> {
    /// The update message for these changes.
    pub fn new(seq: u64, plcs: &'a [PlcDelta]) -> Self {
        Self {
            kind: "update",
            seq,
            plcs,
        }
    }
}

/// Reply of `write`: the value the PLC holds afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct WriteReply {
    pub plc: String,
    pub node: String,
    pub value: Value,
}

/// One user as `users_list` and `user_add` show it (no hashes).
#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub active: bool,
    /// Granted parks that exist in the configuration (superusers: every configured park).
    pub parks: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Set while the account is locked after failed logins.
    pub locked_until: Option<DateTime<Utc>>,
    pub has_pin: bool,
    /// How many badge ids the user has (the ids themselves are never shown).
    pub badges: u32,
}

impl From<UserInfo> for UserRow {
    fn from(u: UserInfo) -> Self {
        Self {
            id: u.id,
            username: u.username,
            role: u.role,
            active: u.active,
            parks: u.parks,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            locked_until: u.locked_until,
            has_pin: u.has_pin,
            badges: u.badges,
        }
    }
}

/// Reply of `users_list`.
#[derive(Debug, Clone, Serialize)]
pub struct UsersList {
    pub users: Vec<UserRow>,
}

/// Reply of `user_add`.
#[derive(Debug, Clone, Serialize)]
pub struct UserAdded {
    pub user: UserRow,
}

/// One audit row as `audit_page` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRowView {
    pub id: i64,
    /// UTC, RFC 3339.
    pub ts: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub result: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for AuditRowView {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            ts: r.ts,
            actor: r.actor,
            role: r.role,
            source: r.source,
            action: r.action,
            target: r.target,
            old_value: r.old_value,
            new_value: r.new_value,
            result: r.result,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// Reply of `audit_page`, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRowView>,
}

/// Reply of `exit_kiosk`: the panel closes right after sending it.
#[derive(Debug, Clone, Serialize)]
pub struct Exiting {
    pub exiting: bool,
}

/// The error object of WebSocket replies and desktop rejections:
/// `{"code","message","retry_after_s"?}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody<'a> {
    pub code: Code,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl<'a> From<&'a ApiError> for ErrorBody<'a> {
    fn from(e: &'a ApiError) -> Self {
        Self {
            code: e.code,
            message: &e.message,
            retry_after_s: e.retry_after_s,
        }
    }
}

/// The body of an HTTP error: `{"error":<code>,"message","retry_after_s"?}`.
#[derive(Debug, Clone, Serialize)]
pub struct HttpError<'a> {
    pub error: Code,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl<'a> From<&'a ApiError> for HttpError<'a> {
    fn from(e: &'a ApiError) -> Self {
        Self {
            error: e.code,
            message: &e.message,
            retry_after_s: e.retry_after_s,
        }
    }
}

/// A WebSocket reply: `{"type":"reply","id","ok":true,"result"}` or
/// `{"type":"reply","id","ok":false,"error":{…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct Reply<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a Value,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
}

impl<'a> Reply<'a> {
    /// A successful reply to request `id`.
    pub fn ok(id: &'a Value, result: &'a Value) -> Self {
        Self {
            kind: "reply",
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A refusal of request `id`.
    pub fn err(id: &'a Value, e: &'a ApiError) -> Self {
        Self {
            kind: "reply",
            id,
            ok: false,
            result: None,
            error: Some(e.into()),
        }
    }
}

/// The desktop `session-ended` event: `{"code":4001,"reason"}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEnded {
    pub code: u16,
    pub reason: String,
}

mod history;
pub use history::*;
mod service;
pub use service::*;
mod messages;
pub use messages::*;
mod tokens;
pub use tokens::*;

mod mqtt;
pub use mqtt::{HubStatus, MqttStatus};

mod samples;
pub use samples::reply_schemas;
