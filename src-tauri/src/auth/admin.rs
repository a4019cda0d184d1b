//! User administration: creating users, passwords, enable/disable, roles, park grants, PINs,
//! badges, and reading the audit trail. Each change runs in one transaction with its audit row,
//! then revokes or updates the user's sessions and announces it on `Auth::changes()`.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::{
    password, role_allows, Auth, AuthError, Effect, LoginOk, Permission, Principal, Role, Source,
    UserInfo,
};
use crate::store::{self, AuditEntry, AuditFilter, AuditRow, StoreError};

impl Auth {
    // ----------------------------------------------------------------------------------------
    // User administration

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
        password::check_policy(&name, password, self.inner.cfg.password_min_length)
            .map_err(AuthError::Invalid)?;
        let hash = self.hash(password.to_string()).await?;
        let now = self.now();
        let src = source.to_string();
        let n = name.clone();
        self.inner
            .store
            .write(move |tx| {
                if store::users::any(tx)? {
                    return Err(StoreError::Forbidden(
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

    /// Every user (needs `ManageUsers`).
    pub async fn list_users(&self, actor: &Principal) -> Result<Vec<UserInfo>, AuthError> {
        require(actor, Permission::ManageUsers)?;
        let rows = self
            .inner
            .store
            .read(|c| {
                let mut out = Vec::new();
                for u in store::users::list(c)? {
                    let parks = store::users::parks(c, u.id)?;
                    let badges = store::users::badge_count(c, u.id)?;
                    out.push((u, parks, badges));
                }
                Ok(out)
            })
            .await?;
        rows.into_iter()
            .map(|(u, parks, badges)| self.user_info(u, parks, badges))
            .collect()
    }

    /// One user (needs `ManageUsers`).
    pub async fn get_user(&self, actor: &Principal, username: &str) -> Result<UserInfo, AuthError> {
        require(actor, Permission::ManageUsers)?;
        let n = username.to_string();
        let (u, parks, badges) = self
            .inner
            .store
            .read(move |c| {
                let u = store::users::require(c, &n)?;
                let p = store::users::parks(c, u.id)?;
                let b = store::users::badge_count(c, u.id)?;
                Ok((u, p, b))
            })
            .await?;
        self.user_info(u, parks, badges)
    }

    fn user_info(
        &self,
        u: store::users::UserRow,
        parks: Vec<String>,
        badges: u32,
    ) -> Result<UserInfo, AuthError> {
        let role = Self::role_of(&u.role)?;
        Ok(UserInfo {
            id: u.id,
            username: u.username,
            role,
            active: u.active,
            parks: self.parks_of(role, parks).to_list(&self.inner.parks),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            locked_until: u.locked_until.filter(|t| *t > self.now()),
            has_pin: u.pin_hash.is_some(),
            badges,
        })
    }

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
        password::check_policy(&name, password, self.inner.cfg.password_min_length)
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

    /// Sets a user's password (needs `ManageUsers`, or is the user's own); revokes the user's
    /// sessions.
    pub async fn set_password(
        &self,
        actor: &Principal,
        username: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let own = !actor.is_system() && actor.username.eq_ignore_ascii_case(username.trim());
        if !own {
            require(actor, Permission::ManageUsers)?;
        }
        password::check_policy(username, password, self.inner.cfg.password_min_length)
            .map_err(AuthError::Invalid)?;
        let hash = self.hash(password.to_string()).await?;
        let a = actor.clone();
        self.change(
            actor,
            "user_password",
            username,
            Effect::Revoke("password_changed"),
            move |tx, target, _now| {
                let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
                if !own {
                    may_manage(&a, Some(role_str(&t.role)?), None)
                        .map_err(StoreError::Forbidden)?;
                }
                store::users::set_password(tx, t.id, &hash)?;
                Ok((t.id, None, None))
            },
        )
        .await
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
            let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
            may_manage(&a, Some(role_str(&t.role)?), None).map_err(StoreError::Forbidden)?;
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
                let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), Some(role))
                    .map_err(StoreError::Forbidden)?;
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
                let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(StoreError::Forbidden)?;
                let changed = if grant {
                    store::users::grant(tx, t.id, &p, now)?
                } else {
                    store::users::revoke(tx, t.id, &p)?
                };
                if !changed {
                    return Err(StoreError::Invalid(if grant {
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
        if !self.inner.parks.iter().any(|p| p == park) {
            return Err(AuthError::NotFound(format!(
                "no park {park:?} in the configuration (parks: {})",
                self.inner.parks.join(", ")
            )));
        }
        if !actor.parks.contains(park) {
            return Err(AuthError::Forbidden(format!(
                "you may only grant parks you have yourself ({park:?})"
            )));
        }
        Ok(())
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
                let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(StoreError::Forbidden)?;
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
                let t = target.ok_or_else(|| StoreError::NotFound("no such user".into()))?;
                may_manage(&a, Some(role_str(&t.role)?), None).map_err(StoreError::Forbidden)?;
                if add {
                    store::users::add_badge(tx, t.id, &h, now)?;
                } else if !store::users::remove_badge(tx, t.id, &h)? {
                    return Err(StoreError::NotFound(format!(
                        "{} has no such badge",
                        t.username
                    )));
                }
                Ok((t.id, None, Some(label)))
            },
        )
        .await
    }

    /// A page of the audit trail (needs `ReadAudit`); newest first. Rows whose target is a
    /// configured park (or `park/…`) the actor does not see are left out.
    pub async fn audit_page(
        &self,
        actor: &Principal,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditRow>, AuthError> {
        require(actor, Permission::ReadAudit)?;
        filter.limit = Some(filter.limit.unwrap_or(200).clamp(1, 1000));
        let rows = self
            .inner
            .store
            .read(move |c| store::audit::query(c, &filter, true))
            .await?;
        let parks = &self.inner.parks;
        Ok(rows
            .into_iter()
            .filter(|r| {
                let Some(t) = &r.target else { return true };
                let head = t.split('/').next().unwrap_or(t);
                !parks.iter().any(|p| p == head) || actor.parks.contains(head)
            })
            .collect())
    }

    /// Audits a refused management attempt and returns the error.
    async fn denied(
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
    async fn change<F>(
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
            ) -> Result<(i64, Option<String>, Option<String>), StoreError>
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
            .write(move |tx| {
                let target = store::users::by_name(tx, &name)?;
                if target.is_none() && action != "user_add" {
                    return Err(StoreError::NotFound(format!("no user {name:?}")));
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
            Err(StoreError::Forbidden(why)) => {
                return Err(self.denied(actor, action, username.trim(), why).await)
            }
            Err(e) => return Err(e.into()),
        };
        if effect != Effect::None {
            self.inner.cache.invalidate_user(uid);
            let _ = self.inner.changes.send(uid);
        }
        Ok(())
    }
}

fn require(actor: &Principal, perm: Permission) -> Result<(), AuthError> {
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
fn may_manage(
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

fn role_str(s: &str) -> Result<Role, StoreError> {
    s.parse()
        .map_err(|e: String| StoreError::Invalid(format!("stored role: {e}")))
}

/// Refuses to disable or demote the last active superuser.
fn last_superuser_guard(tx: &rusqlite::Transaction<'_>, uid: i64) -> Result<(), StoreError> {
    let others = store::users::list(tx)?
        .into_iter()
        .filter(|u| u.id != uid && u.active && u.role == "superuser")
        .count();
    if others == 0 {
        return Err(StoreError::Invalid(
            "this is the last active superuser; create another superuser first".into(),
        ));
    }
    Ok(())
}
