//! The request vocabulary: one [`Request`] variant per operation, each wrapping its own struct.
//!
//! The `requests!` table names every operation once: the serde tag and [`Request::op`] both come
//! from it, so the wire name of an operation cannot drift from its variant.

use serde::Deserialize;

mod alarms;
pub use alarms::*;
mod history;
pub use history::*;
mod service;
pub use service::*;
mod messages;
pub use messages::*;
mod tokens;
pub use tokens::*;

/// Declares [`Request`] (internally tagged by `op`) and [`Request::op`] from one table.
macro_rules! requests {
    ($( $(#[$doc:meta])* $op:literal => $variant:ident($ty:ty), )*) => {
        /// One operation a person can ask for. Wire form: a JSON object with `"op"` naming the
        /// operation plus the operation's fields (extra fields such as a WebSocket `id` are
        /// ignored).
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "op")]
        pub enum Request {
            $( $(#[$doc])* #[serde(rename = $op)] $variant($ty), )*
        }

        impl Request {
            /// Every operation name, in table order.
            pub const OPS: &'static [&'static str] = &[$($op),*];

            /// The operation name as on the wire (for logs and metrics).
            pub fn op(&self) -> &'static str {
                match self {
                    $( Request::$variant(_) => $op, )*
                }
            }
        }
    };
}

requests! {
    /// Liveness and setup state (no session needed); answers like `GET /health`.
    "health" => Health(Empty),
    /// Liveness of the session; answers `{"pong":true}`.
    "ping" => Ping(Empty),
    /// Password login.
    "login" => Login(LoginReq),
    /// PIN login (panel only).
    "login_pin" => LoginPin(LoginPinReq),
    /// Badge login (panel only).
    "login_badge" => LoginBadge(LoginBadgeReq),
    /// Proves an existing token (the WebSocket's `auth`; the token comes with the transport).
    "auth" => Auth(Empty),
    /// Ends the caller's session.
    "logout" => Logout(Empty),
    /// Who the caller is.
    "me" => Me(Empty),
    /// The live picture of the caller's parks.
    "snapshot" => Snapshot(Empty),
    /// A write to a PLC node.
    "write" => Write(WriteReq),
    /// Admin: every user the caller may see.
    "users_list" => UsersList(Empty),
    /// Admin: create a user.
    "user_add" => UserAdd(UserAddReq),
    /// Admin: disable a user (ends their sessions).
    "user_disable" => UserDisable(UserReq),
    /// Admin: enable a user.
    "user_enable" => UserEnable(UserReq),
    /// Admin: change a user's role.
    "user_role" => UserRole(UserRoleReq),
    /// Admin: grant a park.
    "user_grant" => UserGrant(UserParkReq),
    /// Admin: revoke a park.
    "user_revoke" => UserRevoke(UserParkReq),
    /// Set a new password (admins; anyone for their own).
    "user_passwd" => UserPasswd(UserPasswdReq),
    /// Admin: set the panel PIN.
    "user_pin" => UserPin(UserPinReq),
    /// Admin: add a badge id.
    "user_badge_add" => UserBadgeAdd(UserBadgeReq),
    /// Admin: remove a badge id.
    "user_badge_remove" => UserBadgeRemove(UserBadgeReq),
    /// Audit trail page (needs ReadAudit).
    "audit_page" => AuditPage(AuditPageReq),
    /// Creates the first superuser; only while no user exists.
    "first_superuser" => FirstSuperuser(FirstSuperuserReq),
    /// Leaves kiosk mode (panel): an admin or superuser signs with their password.
    "exit_kiosk" => ExitKiosk(ExitKioskReq),
    // Alarms (ISA-18.2).
    /// Current non-normal, shelved and out-of-service alarms of the caller's parks.
    "alarms" => Alarms(Empty),
    /// Acknowledges alarms; one result per id.
    "alarm_ack" => AlarmAck(AlarmAckReq),
    /// Shelves an alarm for a while (with a reason).
    "alarm_shelve" => AlarmShelve(AlarmShelveReq),
    /// Returns a shelved alarm to annunciation.
    "alarm_unshelve" => AlarmUnshelve(AlarmReq),
    /// Takes an alarm out of service (with a reason).
    "alarm_out_of_service" => AlarmOutOfService(AlarmServiceReq),
    /// Returns an alarm to service.
    "alarm_in_service" => AlarmInService(AlarmReq),
    /// Every alarm transition, newest first, paged.
    "alarm_journal" => AlarmJournal(AlarmJournalReq),
    /// One row per occurrence (raise → clear).
    "incidents" => Incidents(IncidentsReq),
    /// EEMUA 191 figures.
    "alarm_stats" => AlarmStats(AlarmStatsReq),
    // History and trends.
    /// Trend data of up to 16 tags: raw samples or min/max buckets (ViewLive, park-filtered).
    "history" => History(HistoryReq),
    /// The recorded tags of the caller's parks (or of one park) with first/last sample time.
    "history_tags" => HistoryTags(HistoryTagsReq),
    // Service mode, calibration, diagnostics.
    /// Puts a park in service (serviceman, superuser).
    "service_start" => ServiceStart(ServiceStartReq),
    /// Ends a park's service mode.
    "service_end" => ServiceEnd(ParkReq),
    /// The configured calibrations of the caller's parks with their due state.
    "calibrations" => Calibrations(Empty),
    /// Opens a calibration run.
    "calibration_start" => CalibrationStart(CalibrationReq),
    /// Captures one point of a calibration run.
    "calibration_point" => CalibrationPoint(CalibrationPointReq),
    /// Writes the new gain and offset and verifies the live value.
    "calibration_apply" => CalibrationApply(CalibrationReq),
    /// Drops a calibration run without writing.
    "calibration_cancel" => CalibrationCancel(CalibrationReq),
    /// Stored calibration records of the caller's parks.
    "calibration_records" => CalibrationRecords(CalibrationRecordsReq),
    /// Diagnostics of the caller's parks and the panel.
    "diagnostics" => Diagnostics(Empty),
    /// One read round trip to a park's PLC.
    "diagnostics_ping" => DiagnosticsPing(ParkReq),
    /// Verifies the audit chain again (coalesced with a run under way) and replies its state.
    "diagnostics_audit_verify" => DiagnosticsAuditVerify(Empty),
    // Messages and the shift log.
    /// Sends a message to a user or a park channel.
    "message_send" => MessageSend(MessageSendReq),
    /// A page of a conversation or channel, newest first.
    "messages" => Messages(MessagesReq),
    /// Read receipts for messages sent to the caller.
    "message_read" => MessageRead(MessageReadReq),
    /// The caller's conversations with unread counts and last messages.
    "conversations" => Conversations(Empty),
    /// Who is online (sharing a park with the caller).
    "presence" => Presence(Empty),
    /// Export of a conversation or channel as CSV (needs ExportMessages).
    "messages_export" => MessagesExport(MessagesExportReq),
    /// Adds a shift-log entry.
    "logbook_add" => LogbookAdd(LogbookAddReq),
    /// A page of the shift log, newest first.
    "logbook" => Logbook(LogbookReq),
    /// Confirms a handover entry.
    "logbook_ack" => LogbookAck(LogbookAckReq),
    // API tokens and configuration over the API
    /// Creates an API token for the caller (shown once); the caller's password re-entered.
    "api_token_create" => ApiTokenCreate(ApiTokenCreateReq),
    /// Lists API tokens (a superuser every token, others their own); never the secret.
    "api_tokens" => ApiTokens(Empty),
    /// Revokes an API token; its open WebSockets close with 4001.
    "api_token_revoke" => ApiTokenRevoke(ApiTokenRevokeReq),
    /// The running configuration (no secrets) and its version.
    "config_get" => ConfigGet(Empty),
    /// Replaces the configuration (superuser, password re-entered), applied without restart
    /// where possible.
    "config_set" => ConfigSet(ConfigSetReq),
    /// Rotates the caller's session token (the old one ends after a short grace).
    "session_refresh" => SessionRefresh(Empty),
}

/// The body of an operation without fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Empty {}

/// `login {username,password}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginReq {
    pub username: String,
    pub password: String,
}

/// `login_pin {username,pin}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginPinReq {
    pub username: String,
    pub pin: String,
}

/// `login_badge {badge}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginBadgeReq {
    pub badge: String,
}

/// `first_superuser {username,password}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FirstSuperuserReq {
    pub username: String,
    pub password: String,
}

/// `exit_kiosk {username,password}`: the credentials of the admin who signs.
#[derive(Debug, Clone, Deserialize)]
pub struct ExitKioskReq {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

/// `write {plc,node,value}`; `node` may name an array element as `Tag[3]`.
#[derive(Debug, Clone, Deserialize)]
pub struct WriteReq {
    pub plc: String,
    pub node: String,
    pub value: serde_json::Value,
}

/// `user_add {username,password,role,parks?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserAddReq {
    pub username: String,
    pub password: String,
    pub role: String,
    #[serde(default)]
    pub parks: Vec<String>,
}

/// `user_disable` / `user_enable {username}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserReq {
    pub username: String,
}

/// `user_role {username,role}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserRoleReq {
    pub username: String,
    pub role: String,
}

/// `user_grant` / `user_revoke {username,park}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserParkReq {
    pub username: String,
    pub park: String,
}

/// `user_passwd {username,password}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserPasswdReq {
    pub username: String,
    pub password: String,
    /// Required when `username` is the caller: a stolen session alone cannot take the account.
    #[serde(default)]
    pub current_password: Option<String>,
}

/// `user_pin {username,pin}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserPinReq {
    pub username: String,
    pub pin: String,
}

/// `user_badge_add` / `user_badge_remove {username,badge}`.
#[derive(Debug, Clone, Deserialize)]
pub struct UserBadgeReq {
    pub username: String,
    pub badge: String,
}

/// `audit_page {from?,to?,actor?,action?,limit?,before_id?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditPageReq {
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub before_id: Option<i64>,
}

impl Request {
    /// Parses a request from JSON; an unknown `op` or a wrong field is `invalid`.
    pub fn from_json(v: serde_json::Value) -> Result<Request, super::ApiError> {
        serde_json::from_value(v).map_err(|e| super::ApiError::invalid(format!("bad request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_is_the_serde_tag() {
        for op in Request::OPS {
            // Every op parses from a body with its name (fields may be missing: then the error
            // must be about a field, never about an unknown variant).
            match serde_json::from_value::<Request>(serde_json::json!({ "op": op })) {
                Ok(r) => assert_eq!(r.op(), *op),
                Err(e) => assert!(e.to_string().contains("missing field"), "{op}: {e}"),
            }
        }
        let r: Request = serde_json::from_value(serde_json::json!({
            "op": "write", "id": 7, "plc": "a", "node": "n", "value": 1
        }))
        .unwrap();
        assert_eq!(r.op(), "write");
        assert!(serde_json::from_value::<Request>(serde_json::json!({"op": "nope"})).is_err());
    }
}
