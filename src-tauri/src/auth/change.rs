//! The machinery of every user-management change: one transaction that checks the rules
//! ("admins may not manage admins/superusers", the last superuser) and writes the audit row, then
//! the effect on the target's sessions (revoke/update, cache invalidation, `changes()` event).
//! Refusals decided inside the transaction are audited too.

use chrono::{DateTime, Utc};

use super::{role_allows, Auth, AuthError, Permission, Principal, Role};
use crate::store::{self, AuditEntry};

/// What a user-management change does to the target's sessions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing to tell anyone.
    None,
    /// Sessions stay; their role/grants are reloaded (cache invalidated, `changes()` event).
    Update,
    /// Every session of the user is revoked (with this reason) and the event is sent.
    Revoke(&'static str),
}

impl Auth {
    /// Audits a refused management attempt and returns the error.
    pub(super) async fn denied(
        &self,
        actor: &Principal,
        action: &str,
        target: &str,
        why: String,
    ) -> AuthError {
        let e = AuditEntry {
            actor: Some(actor.username.clone()),
            role: Some(actor.audit_role()),
            source: actor.source.to_string(),
            action: action.into(),
            target: Some(target.into()),
            old_value: None,
            new_value: None,
            result: "forbidden".into(),
        };
        let _ = self.audit(e).await;
        AuthError::Forbidden(why)
    }

    /// Runs one user-management change in a transaction with its audit row, then applies the
    /// effect on sessions (revoke/update, cache invalidation, `changes()` event).
    pub(super) async fn change<F>(
        &self,
        actor: &Principal,
        action: &'static str,
        username: &str,
        effect: Effect,
        f: F,
    ) -> Result<(), AuthError>
    where
        F: FnOnce(
                &rusqlite::Transaction<'_>,
                Option<store::users::UserRow>,
                DateTime<Utc>,
            ) -> Result<(i64, Option<String>, Option<String>), AuthError>
            + Send
            + 'static,
    {
        let now = self.now();
        let name = username.trim().to_string();
        let base = AuditEntry {
            actor: Some(actor.username.clone()),
            role: Some(actor.audit_role()),
            source: actor.source.to_string(),
            action: action.into(),
            target: Some(name.clone()),
            old_value: None,
            new_value: None,
            result: "ok".into(),
        };
        let own = self.inner.own_changes.clone();
        let res = self
            .inner
            .store
            .transaction(move |tx| {
                let target = store::users::by_name(tx, &name)?;
                if target.is_none() && action != "user_add" {
                    return Err(AuthError::NotFound(format!("no user {name:?}")));
                }
                let (uid, old, new) = f(tx, target, now)?;
                let e = AuditEntry {
                    target: Some(
                        store::users::by_id(tx, uid)?
                            .map(|u| u.username)
                            .unwrap_or(name),
                    ),
                    old_value: old,
                    new_value: new,
                    ..base
                };
                store::audit::append(tx, &e, now)?;
                if let Effect::Revoke(reason) = effect {
                    store::sessions::revoke_user(tx, uid, reason, now)?;
                }
                if effect != Effect::None {
                    own.lock()
                        .insert(store::sessions::record_change(tx, uid, now)?);
                }
                Ok(uid)
            })
            .await;
        let uid = match res {
            Ok(uid) => uid,
            Err(AuthError::Forbidden(why)) => {
                return Err(self.denied(actor, action, username.trim(), why).await)
            }
            Err(e) => return Err(e),
        };
        if effect != Effect::None {
            self.inner.cache.invalidate_user(uid);
            let _ = self.inner.changes.send(uid);
        }
        Ok(())
    }
}

pub(super) fn require(actor: &Principal, perm: Permission) -> Result<(), AuthError> {
    if role_allows(actor.role, perm) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "role {} may not {}",
            actor.role, perm
        )))
    }
}

/// "Admins may not manage admins/superusers": neither the target's current role nor a new role
/// may be admin or superuser when the actor is an admin.
pub(super) fn may_manage(
    actor: &Principal,
    target: Option<Role>,
    new_role: Option<Role>,
) -> Result<(), String> {
    if !role_allows(actor.role, Permission::ManageUsers) {
        return Err(format!("role {} may not manage users", actor.role));
    }
    if actor.role == Role::Superuser {
        return Ok(());
    }
    let high = |r: Option<Role>| matches!(r, Some(Role::Admin | Role::Superuser));
    if high(target) || high(new_role) {
        return Err("admins may not manage admins or superusers".into());
    }
    Ok(())
}

pub(super) fn role_str(s: &str) -> Result<Role, AuthError> {
    s.parse()
        .map_err(|e: String| AuthError::Invalid(format!("stored role: {e}")))
}

/// Refuses to disable or demote the last active superuser.
pub(super) fn last_superuser_guard(
    tx: &rusqlite::Transaction<'_>,
    uid: i64,
) -> Result<(), AuthError> {
    let others = store::users::list(tx)?
        .into_iter()
        .filter(|u| u.id != uid && u.active && u.role == "superuser")
        .count();
    if others == 0 {
        return Err(AuthError::Invalid(
            "this is the last active superuser; create another superuser first".into(),
        ));
    }
    Ok(())
}
