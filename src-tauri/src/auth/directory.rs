//! Reading for administrators: the users (as [`UserInfo`], never with hashes) and pages of the
//! audit trail, filtered to the parks the reader sees.

use super::change::require;
use super::{Auth, AuthError, Permission, Principal, UserInfo};
use crate::store::{self, AuditFilter, AuditRow};

impl Auth {
    /// Every user (needs `ManageUsers`).
    pub async fn list_users(&self, actor: &Principal) -> Result<Vec<UserInfo>, AuthError> {
        require(actor, Permission::ManageUsers)?;
        let scope = self.scope(actor);
        let rows = self
            .inner
            .store
            .read(move |c| {
                let mut out = Vec::new();
                for u in store::users::list_in(c, &scope)? {
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
            parks: self.parks_of(role, parks).to_list(&self.settings().parks),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            locked_until: u.locked_until.filter(|t| *t > self.now()),
            has_pin: u.pin_hash.is_some(),
            badges,
        })
    }

    /// A page of the audit trail (needs `ReadAudit`); newest first, only rows `actor` may see
    /// (filtered in SQL before the limit, so pages are full).
    pub async fn audit_page(
        &self,
        actor: &Principal,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditRow>, AuthError> {
        require(actor, Permission::ReadAudit)?;
        filter.limit = Some(filter.limit.unwrap_or(200).clamp(1, 1000));
        let scope = self.scope(actor);
        Ok(self
            .inner
            .store
            .read(move |c| store::audit::query_in(c, &filter, true, &scope))
            .await?)
    }

    /// What `actor` may see of users and the audit trail: all with every park, else what
    /// concerns their parks (see `store::audit::query_in`, `store::users::visible_sql`).
    fn scope(&self, actor: &Principal) -> store::Scope {
        match &actor.parks {
            super::Parks::All => store::Scope::All,
            super::Parks::Only(granted) => store::Scope::Parks {
                granted: granted.iter().cloned().collect(),
                configured: self.settings().parks.to_vec(),
            },
        }
    }
}
