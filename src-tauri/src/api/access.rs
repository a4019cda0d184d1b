//! What each request needs before it may run — the one place that says so.
//!
//! [`required`] maps every [`Request`] to an [`Access`]; `dispatch` resolves the caller from it
//! and checks once (through `Auth::check`, which applies THE role table `roles` and the
//! park grants). Handlers then receive the checked principal and never check again. The match is
//! exhaustive, so a new operation cannot be added without deciding its access here.

use super::request::Request;
use crate::auth::{Permission, Scope, TokenUse};

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access<'a> {
    /// Nothing: login, health, first superuser (these decide themselves whom they admit).
    Anonymous,
    /// A live session whose role has the permission.
    Session(Permission),
    /// A live session whose role has the permission, granted this park.
    Park(Permission, &'a str),
    /// The username and password carried in the request itself, of a role with the permission
    /// (no session is opened: the proof is used once).
    Credentials(Permission),
    /// A live session whose role has the permission, granted the park of this configured
    /// calibration (the dispatcher resolves the park from the configuration).
    Calibration(Permission, &'a str),
}

/// The access `req` needs.
pub fn required(req: &Request) -> Access<'_> {
    use Access::*;
    use Permission::*;
    match req {
        Request::Health(_)
        | Request::Login(_)
        | Request::LoginPin(_)
        | Request::LoginBadge(_)
        | Request::FirstSuperuser(_) => Anonymous,
        Request::Ping(_)
        | Request::Auth(_)
        | Request::Logout(_)
        | Request::Me(_)
        | Request::Snapshot(_) => Session(ViewLive),
        Request::Write(w) => Park(WriteTags, &w.plc),
        // Changing one's own password needs no ManageUsers; auth decides the rest.
        Request::UserPasswd(_) => Session(ViewLive),
        Request::UsersList(_)
        | Request::UserAdd(_)
        | Request::UserDisable(_)
        | Request::UserEnable(_)
        | Request::UserRole(_)
        | Request::UserGrant(_)
        | Request::UserRevoke(_)
        | Request::UserPin(_)
        | Request::UserBadgeAdd(_)
        | Request::UserBadgeRemove(_) => Session(ManageUsers),
        Request::AuditPage(_) => Session(ReadAudit),
        Request::ExitKiosk(_) => Credentials(ExitKiosk),
        // Alarms: an alarm's park comes from the configuration, not from the request, so the
        // handler filters by park (lists) or refuses per alarm (`forbidden`) after this check.
        Request::Alarms(_) | Request::AlarmJournal(_) | Request::Incidents(_) => Session(ViewLive),
        Request::AlarmAck(_) => Session(AckAlarms),
        Request::AlarmShelve(_) | Request::AlarmUnshelve(_) => Session(ShelveAlarms),
        Request::AlarmOutOfService(_) | Request::AlarmInService(_) => Session(AlarmService),
        Request::AlarmStats(_) => Session(AlarmStats),
        // History: tags of several parks may be asked at once; the handler keeps only the
        // caller's parks (like the snapshot) and refuses a foreign one.
        Request::History(_) => Session(ViewLive),
        Request::HistoryTags(r) => match r.park.as_deref() {
            Some(park) => Park(ViewLive, park),
            None => Session(ViewLive),
        },
        // Service mode, calibration, diagnostics.
        Request::ServiceStart(r) => Park(ServiceMode, &r.park),
        Request::ServiceEnd(r) => Park(ServiceMode, &r.park),
        Request::CalibrationStart(r)
        | Request::CalibrationApply(r)
        | Request::CalibrationCancel(r) => Calibration(ServiceMode, &r.calibration),
        Request::CalibrationPoint(r) => Calibration(ServiceMode, &r.calibration),
        Request::CalibrationRecords(_) | Request::Calibrations(_) => Session(ServiceMode),
        Request::Diagnostics(_) => Session(Diagnostics),
        Request::DiagnosticsPing(r) => Park(Diagnostics, &r.park),
        Request::DiagnosticsAuditVerify(_) => Session(Diagnostics),
        // Messages and the shift log. Sending checks SendMessages in the handler, because
        // `messages.viewers_may_send` can extend it to viewers; reading is any session's (the
        // handler limits channels and entries to the caller's parks).
        Request::MessageSend(_)
        | Request::Messages(_)
        | Request::MessageRead(_)
        | Request::Conversations(_)
        | Request::Presence(_) => Session(ViewLive),
        Request::MessagesExport(_) => Session(ExportMessages),
        Request::LogbookAdd(r) => Park(WriteLogbook, &r.park),
        Request::Logbook(r) => match r.park.as_deref() {
            Some(p) => Park(ViewLive, p),
            None => Session(ViewLive),
        },
        Request::LogbookAck(_) => Session(WriteLogbook),
        // API tokens and configuration over the API
        Request::ApiTokenCreate(_) | Request::ApiTokens(_) | Request::ApiTokenRevoke(_) => {
            Session(ManageTokens)
        }
        Request::ConfigGet(_) | Request::ConfigSet(_) => Session(EditConfig),
        Request::SessionRefresh(_) => Session(ViewLive),
    }
}

/// THE scope → operation table: which operations an API token may call, and with which scope
/// (on top of [`required`], which the token's creator must still pass with their current role
/// and parks). Exhaustive like [`required`]: a new operation must decide here whether machines
/// may call it. `history:read`, `alarms:read` and `alarms:ack` are meant for the historian's and
/// the alarm list's read ops and for acknowledging alarms.
pub fn token_use(req: &Request) -> TokenUse {
    use Scope::*;
    use TokenUse::{Any, Never};
    let scope = TokenUse::Scope;
    match req {
        // Anonymous operations never consult a token.
        Request::Health(_)
        | Request::Login(_)
        | Request::LoginPin(_)
        | Request::LoginBadge(_)
        | Request::FirstSuperuser(_)
        | Request::ExitKiosk(_) => Never,
        Request::Ping(_) | Request::Auth(_) | Request::Me(_) => Any,
        Request::Snapshot(_) => scope(LiveRead),
        Request::Write(_) => scope(Write),
        Request::AuditPage(_) => scope(AuditRead),
        Request::ConfigGet(_) => scope(ConfigRead),
        // People's business: sessions only.
        Request::Logout(_)
        | Request::UserPasswd(_)
        | Request::UsersList(_)
        | Request::UserAdd(_)
        | Request::UserDisable(_)
        | Request::UserEnable(_)
        | Request::UserRole(_)
        | Request::UserGrant(_)
        | Request::UserRevoke(_)
        | Request::UserPin(_)
        | Request::UserBadgeAdd(_)
        | Request::UserBadgeRemove(_)
        | Request::ApiTokenCreate(_)
        | Request::ApiTokens(_)
        | Request::ApiTokenRevoke(_)
        | Request::ConfigSet(_)
        | Request::SessionRefresh(_) => Never,
        // Alarms: reading (lists, journal, incidents, figures) and acknowledging; shelving and
        // taking out of service are a person's decision with a reason.
        Request::Alarms(_)
        | Request::AlarmJournal(_)
        | Request::Incidents(_)
        | Request::AlarmStats(_) => scope(AlarmsRead),
        Request::AlarmAck(_) => scope(AlarmsAck),
        Request::AlarmShelve(_)
        | Request::AlarmUnshelve(_)
        | Request::AlarmOutOfService(_)
        | Request::AlarmInService(_) => Never,
        Request::History(_) | Request::HistoryTags(_) => scope(HistoryRead),
        // Service mode, calibration and diagnostics need a serviceman on site.
        Request::ServiceStart(_)
        | Request::ServiceEnd(_)
        | Request::CalibrationStart(_)
        | Request::CalibrationPoint(_)
        | Request::CalibrationApply(_)
        | Request::CalibrationCancel(_)
        | Request::CalibrationRecords(_)
        | Request::Calibrations(_)
        | Request::Diagnostics(_)
        | Request::DiagnosticsPing(_)
        | Request::DiagnosticsAuditVerify(_) => Never,
        // Messages and the shift log are between people.
        Request::MessageSend(_)
        | Request::Messages(_)
        | Request::MessageRead(_)
        | Request::Conversations(_)
        | Request::Presence(_)
        | Request::MessagesExport(_)
        | Request::LogbookAdd(_)
        | Request::Logbook(_)
        | Request::LogbookAck(_) => Never,
    }
}
