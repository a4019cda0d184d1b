//! User administration: creating users, enabling/disabling them, roles and park grants. Each
//! change runs through `change.rs` (one transaction with its audit row, then the effect on the
//! user's sessions); passwords, PINs and badges are in `credentials.rs`, reading users and the
//! audit trail in `directory.rs`.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use super::change::{last_superuser_guard, may_manage, require, role_str, Effect};
use super::{password, Auth, AuthError, Permission, Principal, Role, UserInfo};
use crate::store;

impl Auth {
    /// Creates a user with a role and park grants.
    pub async fn add_user(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
        role: Role,
        parks: &[String],
    ) -> Result<UserInfo, AuthError> {
        require(actor, Permission::ManageUsers)?;
        let name = username.trim().to_string();
        password::check_username(&name).map_err(AuthError::Invalid)?;
        password::check_policy(&name, password, self.settings().cfg.password_min_length)
            .map_err(AuthError::Invalid)?;
        if let Err(e) = may_manage(actor, None, Some(role)) {
            return Err(self.denied(actor, "user_add", &name, e).await);
        }
        for p in parks {
            self.check_grantable(actor, p)?;
        }
        let hash = self.hash(password.to_string()).await?;
        let parks: BTreeSet<String> = parks.iter().cloned().collect();
        let parks_text = parks.iter().cloned().collect::<Vec<_>>().join(",");
        let new_value = if parks.is_empty() {
            format!("role={role}")
        } else {
            format!("role={role} parks={parks_text}")
        };
        let shown = name.clone();
        self.change(
            actor,
            "user_add",
            &shown,
            Effect::None,
            move |tx, _target, now| {
                let id = store::users::insert(tx, &name, &hash, role.as_str(), now)?;
                for p in &parks {
                    store::users::grant(tx, id, p, now)?;
                }
                Ok((id, None, Some(new_value)))
            },
        )
        .await?;
        self.inner.has_users.store(true, Ordering::Relaxed);
        self.get_user(actor, username.trim()).await
    }

    /// Enables or disables a user; disabling revokes the user's sessions at once.
    pub async fn set_active(
        &self,
        actor: &Principal,
        username: &str,
        active: bool,
    ) -> Result<(), AuthError> {
        require(actor, Permission::ManageUsers)?;
        let a = actor.clone();
        let (action, effect) = if active {
            ("user_enable", Effect::Update)
        } else {
            ("user_disable", Effect::Revoke("disabled"))
        };
        self.change(actor, action, username, effect, move |tx, target, _now| {
            let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
            may_manage(&a, Some(role_str(&t.role)?), None).map_err(AuthError::Forbidden)?;
            if !active && t.active && t.role == "superuser" {
                last_superuser_guard(tx, t.id)?;
            }
            store::users::set_active(tx, t.id, active)?;
            Ok((t.id, Some(t.active.to_string()), Some(active.to_string())))
        })
        .await
    }

    /// Changes a user's role; revokes the user's sessions (the idle timeout and rights change).
    pub async fn set_role(
        &self,
        actor: &Principal,
        username: &str,
        role: Role,
    ) -> Result<(), AuthError> {
        require(actor, Permission::ManageUsers)?;
        let a = actor.clone();
        self.change(
            actor,
            "user_role",
            username,
            Effect::Revoke("role_changed"),
            move |tx, target, _now| {
                let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), Some(role))
                    .map_err(AuthError::Forbidden)?;
                if t.role == "superuser" && role != Role::Superuser && t.active {
                    last_superuser_guard(tx, t.id)?;
                }
                store::users::set_role(tx, t.id, role.as_str())?;
                Ok((t.id, Some(t.role), Some(role.as_str().into())))
            },
        )
        .await
    }

    /// Grants a configured park; the user's open sessions see it at once.
    pub async fn grant_park(
        &self,
        actor: &Principal,
        username: &str,
        park: &str,
    ) -> Result<(), AuthError> {
        self.change_park(actor, username, park, true).await
    }

    /// Revokes a park; the user's open sessions lose it at once.
    pub async fn revoke_park(
        &self,
        actor: &Principal,
        username: &str,
        park: &str,
    ) -> Result<(), AuthError> {
        self.change_park(actor, username, park, false).await
    }

    async fn change_park(
        &self,
        actor: &Principal,
        username: &str,
        park: &str,
        grant: bool,
    ) -> Result<(), AuthError> {
        require(actor, Permission::ManageUsers)?;
        self.check_grantable(actor, park)?;
        let a = actor.clone();
        let p = park.to_string();
        let action = if grant { "park_grant" } else { "park_revoke" };
        self.change(
            actor,
            action,
            username,
            Effect::Update,
            move |tx, target, now| {
                let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(AuthError::Forbidden)?;
                let changed = if grant {
                    store::users::grant(tx, t.id, &p, now)?
                } else {
                    store::users::revoke(tx, t.id, &p)?
                };
                if !changed {
                    return Err(AuthError::Invalid(if grant {
                        format!("{} already has park {p:?}", t.username)
                    } else {
                        format!("{} does not have park {p:?}", t.username)
                    }));
                }
                Ok((t.id, None, Some(p)))
            },
        )
        .await
    }

    fn check_grantable(&self, actor: &Principal, park: &str) -> Result<(), AuthError> {
        if !self.settings().parks.iter().any(|p| p == park) {
            return Err(AuthError::NotFound(format!(
                "no park {park:?} in the configuration (parks: {})",
                self.settings().parks.join(", ")
            )));
        }
        if !actor.parks.contains(park) {
            return Err(AuthError::Forbidden(format!(
                "you may only grant parks you have yourself ({park:?})"
            )));
        }
        Ok(())
    }
}
