//! Roles and the ONE table of what each role may do.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A user's role. Ordered from least to most privileged only for display; permissions come from
/// [`role_allows`], never from comparing roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Serviceman,
    Admin,
    Superuser,
}

/// Something a caller may want to do; every operation maps to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See live values (of granted parks; superusers: all parks).
    ViewLive,
    /// Write command/setpoint tags.
    WriteTags,
    /// Acknowledge alarms.
    AckAlarms,
    /// Shelve alarms.
    ShelveAlarms,
    /// Service mode, calibration, diagnostics.
    ServiceMode,
    /// Manage users and park grants (admins: not admins/superusers).
    ManageUsers,
    /// Read the audit trail.
    ReadAudit,
    /// Edit the configuration.
    EditConfig,
    /// Leave kiosk mode on the panel (signed with the password).
    ExitKiosk,
    /// Take alarms out of service and return them to service.
    AlarmService,
    /// Read alarm statistics (EEMUA 191 figures).
    AlarmStats,
    /// Read diagnostics of the PLC connections and the panel.
    Diagnostics,
    /// Send messages to people and park channels.
    SendMessages,
    /// Export conversations and channels.
    ExportMessages,
    /// Add entries to the shift log and confirm handovers.
    WriteLogbook,
    /// Create, list and revoke API tokens for machine clients.
    ManageTokens,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Serviceman,
        Role::Admin,
        Role::Superuser,
    ];

    /// The wire/database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Serviceman => "serviceman",
            Role::Admin => "admin",
            Role::Superuser => "superuser",
        }
    }

    /// The idle timeout when the configuration does not override it.
    pub fn default_idle_timeout(self) -> Duration {
        let minutes = match self {
            Role::Viewer => 30,
            Role::Operator => 30,
            Role::Serviceman => 240,
            Role::Admin => 60,
            Role::Superuser => 120,
        };
        Duration::from_secs(minutes * 60)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; expected one of viewer, operator, serviceman, admin, superuser"
                )
            })
    }
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 16] = [
        Permission::ViewLive,
        Permission::WriteTags,
        Permission::AckAlarms,
        Permission::ShelveAlarms,
        Permission::ServiceMode,
        Permission::ManageUsers,
        Permission::ReadAudit,
        Permission::EditConfig,
        Permission::ExitKiosk,
        Permission::AlarmService,
        Permission::AlarmStats,
        Permission::Diagnostics,
        Permission::SendMessages,
        Permission::ExportMessages,
        Permission::WriteLogbook,
        Permission::ManageTokens,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ViewLive => "view_live",
            Permission::WriteTags => "write_tags",
            Permission::AckAlarms => "ack_alarms",
            Permission::ShelveAlarms => "shelve_alarms",
            Permission::ServiceMode => "service_mode",
            Permission::ManageUsers => "manage_users",
            Permission::ReadAudit => "read_audit",
            Permission::EditConfig => "edit_config",
            Permission::ExitKiosk => "exit_kiosk",
            Permission::AlarmService => "alarm_service",
            Permission::AlarmStats => "alarm_stats",
            Permission::Diagnostics => "diagnostics",
            Permission::SendMessages => "send_messages",
            Permission::ExportMessages => "export_messages",
            Permission::WriteLogbook => "write_logbook",
            Permission::ManageTokens => "manage_tokens",
        }
    }

    /// What the permission lets a person do, for refusals people read.
    pub fn phrase(self) -> &'static str {
        match self {
            Permission::ViewLive => "see live values",
            Permission::WriteTags => "write tags",
            Permission::AckAlarms => "acknowledge alarms",
            Permission::ShelveAlarms => "shelve alarms",
            Permission::ServiceMode => "start service mode",
            Permission::ManageUsers => "manage users",
            Permission::ReadAudit => "read the audit trail",
            Permission::EditConfig => "edit the configuration",
            Permission::ExitKiosk => "leave kiosk mode",
            Permission::AlarmService => "take alarms out of service",
            Permission::AlarmStats => "read alarm statistics",
            Permission::Diagnostics => "read diagnostics",
            Permission::SendMessages => "send messages",
            Permission::ExportMessages => "export messages",
            Permission::WriteLogbook => "write the shift log",
            Permission::ManageTokens => "manage API tokens",
        }
    }

    /// "only an admin or superuser may leave kiosk mode": the refusal, from the table.
    pub fn only_message(self) -> String {
        let allowed: Vec<&str> = Role::ALL
            .iter()
            .filter(|r| role_allows(**r, self))
            .map(|r| r.as_str())
            .collect();
        let who = match allowed.split_last() {
            None => "nobody".to_string(),
            Some((last, [])) => format!("a{} {last}", article_n(last)),
            Some((last, rest)) => {
                let first = rest.join(", ");
                format!("a{} {first} or {last}", article_n(&first))
            }
        };
        format!("only {who} may {}", self.phrase())
    }
}

/// "n" before a vowel ("an admin"), else nothing ("a viewer").
fn article_n(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "n"
    } else {
        ""
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// THE role → permission table (docs/security.md shows the same table). Park access and the
/// "admins may not manage admins/superusers" rule are checked on top of it by `Auth`.
pub fn role_allows(role: Role, perm: Permission) -> bool {
    use Permission::*;
    use Role::*;
    match perm {
        ViewLive => true,
        WriteTags => matches!(role, Operator | Serviceman | Superuser),
        AckAlarms => matches!(role, Operator | Serviceman | Superuser),
        ShelveAlarms => matches!(role, Superuser),
        ServiceMode => matches!(role, Serviceman | Superuser),
        ManageUsers => matches!(role, Admin | Superuser),
        ReadAudit => matches!(role, Admin | Superuser),
        EditConfig => matches!(role, Superuser),
        ExitKiosk => matches!(role, Admin | Superuser),
        AlarmService => matches!(role, Serviceman | Superuser),
        AlarmStats => matches!(role, Serviceman | Admin | Superuser),
        Diagnostics => matches!(role, Serviceman | Admin | Superuser),
        SendMessages => matches!(role, Operator | Serviceman | Admin | Superuser),
        ExportMessages => matches!(role, Admin | Superuser),
        WriteLogbook => matches!(role, Operator | Serviceman | Admin | Superuser),
        ManageTokens => matches!(role, Admin | Superuser),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_who_may() {
        assert_eq!(
            Permission::ExitKiosk.only_message(),
            "only an admin or superuser may leave kiosk mode"
        );
    }
}
