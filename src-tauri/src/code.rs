//! The one vocabulary of wire error codes.
//!
//! Every error that reaches a client carries a [`Code`]; its string is a contract (the `code` of
//! a WebSocket/desktop error, the `error` of an HTTP error body) and its HTTP status is chosen
//! here, once, so that no transport maps codes by itself. A leaf module: it imports nothing from
//! the crate, so every layer may name a code without depending on another layer.

use std::fmt;

use serde::Serialize;

/// A stable, machine-readable error code (docs/protocol.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// No, bad, expired or revoked session token.
    Unauthorized,
    /// Wrong username/password, PIN or badge (deliberately not saying which).
    InvalidCredentials,
    /// The caller may not do this (role, park, policy).
    Forbidden,
    /// Malformed or unacceptable request.
    Invalid,
    /// No such PLC, node or user.
    NotFound,
    /// The PLC is not reachable (or did not answer in time).
    NotConnected,
    /// Too many requests (failed logins per address, writes per user); retry later.
    RateLimited,
    /// The account is locked after failed logins; retry later.
    Locked,
    /// A fault on our side; details are in the log.
    Internal,
    /// Stator cannot do it safely right now (e.g. the audit trail cannot be written, so a write
    /// is not sent); retry later.
    Unavailable,
    /// The park is in service mode: operator writes are refused (except the tags configured in
    /// `service.operator_writable`). HTTP 409: the request conflicts with the park's state.
    InService,
    /// The thing changed since the caller read it (a stale configuration `version`); read it
    /// again and retry.
    Conflict,
}

impl Code {
    /// Every code, for tests and the wire samples.
    pub const ALL: [Code; 12] = [
        Code::Unauthorized,
        Code::InvalidCredentials,
        Code::Forbidden,
        Code::Invalid,
        Code::NotFound,
        Code::NotConnected,
        Code::RateLimited,
        Code::Locked,
        Code::Internal,
        Code::Unavailable,
        Code::InService,
        Code::Conflict,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::InvalidCredentials => "invalid_credentials",
            Code::Forbidden => "forbidden",
            Code::Invalid => "invalid",
            Code::NotFound => "not_found",
            Code::NotConnected => "not_connected",
            Code::RateLimited => "rate_limited",
            Code::Locked => "locked",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::InService => "in_service",
            Code::Conflict => "conflict",
        }
    }

    /// The HTTP status of an error with this code (a plain number, so this module needs no HTTP
    /// crate). Exhaustive on purpose: a new code must choose its status here.
    pub fn http_status(self) -> u16 {
        match self {
            Code::Unauthorized | Code::InvalidCredentials => 401,
            Code::Forbidden => 403,
            Code::Invalid => 400,
            Code::NotFound => 404,
            Code::NotConnected => 503,
            Code::RateLimited => 429,
            Code::Locked => 423,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::InService => 409,
            Code::Conflict => 409,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets tests and logs compare a code with its wire string directly.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error that can reach a client: it names its wire code.
pub trait ErrorCode {
    /// The stable wire code of this error.
    fn code(&self) -> Code;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_is_the_wire_string() {
        for c in Code::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }

    #[test]
    fn statuses_are_errors() {
        for c in Code::ALL {
            assert!((400..600).contains(&c.http_status()), "{c}");
        }
        assert_eq!(Code::Locked.http_status(), 423);
    }
}
