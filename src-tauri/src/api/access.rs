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
    }
}
