//! Credentials: the first superuser, passwords (an administrator's reset, or one's own change
//! proven with the current password), panel PINs and badges.

use std::sync::atomic::Ordering;

use super::change::{may_manage, require, role_str, Effect};
use super::{password, Auth, AuthError, LoginOk, Permission, Principal, Role, Source};
use crate::store::{self, AuditEntry};

impl Auth {
    /// Creates the first user, a superuser, and logs it in; refused once any user exists and
    /// from remote sources other than the machine itself (the panel's first-run screen, a
    /// browser on the panel via loopback, and the CLI create it).
    pub async fn create_first_superuser(
        &self,
        username: &str,
        password: &str,
        source: Source,
    ) -> Result<LoginOk, AuthError> {
        if source.is_remote() && !source.is_loopback() {
            return Err(AuthError::Forbidden(
                "the first superuser is created on the panel itself (window or local browser) or with `stator user add`".into(),
            ));
        }
        // Before any hashing: once set up, this must cost a caller nothing to be refused.
        if self.has_users().await? {
            return Err(AuthError::Forbidden(
                "users already exist; log in as an administrator".into(),
            ));
        }
        let name = username.trim().to_string();
        password::check_username(&name).map_err(AuthError::Invalid)?;
        password::check_policy(&name, password, self.settings().cfg.password_min_length)
            .map_err(AuthError::Invalid)?;
        let hash = self.hash(password.to_string()).await?;
        let now = self.now();
        let src = source.to_string();
        let n = name.clone();
        self.inner
            .store
            .transaction(move |tx| {
                if store::users::any(tx)? {
                    return Err(AuthError::Forbidden(
                        "users already exist; log in as an administrator".into(),
                    ));
                }
                store::users::insert(tx, &n, &hash, Role::Superuser.as_str(), now)?;
                store::audit::append(
                    tx,
                    &AuditEntry {
                        actor: Some(n.clone()),
                        role: None,
                        source: src,
                        action: "user_add".into(),
                        target: Some(n),
                        old_value: None,
                        new_value: Some("role=superuser".into()),
                        result: "ok".into(),
                    },
                    now,
                )?;
                Ok(())
            })
            .await?;
        self.inner.has_users.store(true, Ordering::Relaxed);
        self.login(&name, password, source).await
    }

    /// Sets another user's password (needs `ManageUsers`; an administrator's reset); revokes the
    /// user's sessions. Changing one's own password goes through [`Auth::change_password`] with
    /// the current password.
    pub async fn set_password(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        self.change_password(actor, username, password, None).await
    }

    /// Sets a user's password; revokes the user's sessions. For one's own account the current
    /// password is required and checked like a login (a wrong one is `invalid_credentials` and
    /// counts towards the lockout), so that a stolen session token cannot take the account
    /// over. For another account the actor needs `ManageUsers` and `current_password` is unused.
    pub async fn change_password(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
        current_password: Option<&str>,
    ) -> Result<(), AuthError> {
        let own = !actor.is_system() && actor.username.eq_ignore_ascii_case(username.trim());
        if !own {
            require(actor, Permission::ManageUsers)?;
        }
        password::check_policy(username, password, self.settings().cfg.password_min_length)
            .map_err(AuthError::Invalid)?;
        let _turn = if own {
            let Some(current) = current_password else {
                return Err(AuthError::Invalid(
                    "changing your own password needs current_password".into(),
                ));
            };
            self.verify_login(
                &actor.username,
                current,
                &actor.source,
                "current_password",
                false,
            )
            .await
            .map(Some)?
        } else {
            None
        };
        let hash = self.hash(password.to_string()).await?;
        let a = actor.clone();
        self.change(
            actor,
            "user_password",
            username,
            Effect::Revoke("password_changed"),
            move |tx, target, _now| {
                let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
                if !own {
                    may_manage(&a, Some(role_str(&t.role)?), None).map_err(AuthError::Forbidden)?;
                }
                store::users::set_password(tx, t.id, &hash)?;
                Ok((t.id, None, None))
            },
        )
        .await
    }

    /// Sets the panel PIN (4-8 digits).
    pub async fn set_pin(
        &self,
        actor: &Principal,
        username: &str,
        pin: &str,
    ) -> Result<(), AuthError> {
        require(actor, Permission::ManageUsers)?;
        password::check_pin(pin).map_err(AuthError::Invalid)?;
        let hash = self.hash(pin.to_string()).await?;
        let a = actor.clone();
        self.change(
            actor,
            "user_pin",
            username,
            Effect::None,
            move |tx, target, _now| {
                let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(AuthError::Forbidden)?;
                let old = t.pin_hash.is_some().then(|| "set".to_string());
                store::users::set_pin(tx, t.id, Some(&hash))?;
                Ok((t.id, old, Some("set".into())))
            },
        )
        .await
    }

    /// Registers a badge ID for a user (stored as SHA-256; unique across users).
    pub async fn add_badge(
        &self,
        actor: &Principal,
        username: &str,
        badge: &str,
    ) -> Result<(), AuthError> {
        self.change_badge(actor, username, badge, true).await
    }

    /// Removes a badge ID from a user.
    pub async fn remove_badge(
        &self,
        actor: &Principal,
        username: &str,
        badge: &str,
    ) -> Result<(), AuthError> {
        self.change_badge(actor, username, badge, false).await
    }

    async fn change_badge(
        &self,
        actor: &Principal,
        username: &str,
        badge: &str,
        add: bool,
    ) -> Result<(), AuthError> {
        require(actor, Permission::ManageUsers)?;
        if badge.trim().is_empty() || badge.len() > 256 {
            return Err(AuthError::Invalid(
                "badge ID must be 1-256 characters".into(),
            ));
        }
        let h = password::badge_hash(badge);
        let a = actor.clone();
        let action = if add { "badge_add" } else { "badge_remove" };
        // The audit row names the badge by a short prefix of its hash, never in clear.
        let label = format!("sha256:{}", &h[..12]);
        self.change(
            actor,
            action,
            username,
            Effect::None,
            move |tx, target, now| {
                let t = target.ok_or_else(|| AuthError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(AuthError::Forbidden)?;
                if add {
                    store::users::add_badge(tx, t.id, &h, now)?;
                } else if !store::users::remove_badge(tx, t.id, &h)? {
                    return Err(AuthError::NotFound(format!(
                        "{} has no such badge",
                        t.username
                    )));
                }
                Ok((t.id, None, Some(label)))
            },
        )
        .await
    }
}
