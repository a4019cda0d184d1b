//! User administration: list, add, disable/enable, role, grants, password, PIN, badges.
//! The rules ("admins may not manage admins/superusers", own password) live in `crate::auth`;
//! the access check already ran in `dispatch`, this file only translates.

use serde_json::Value;

use super::wire::{self, Done, UserAdded, UserRow, UsersList};
use super::{Api, ApiError, Request};
use crate::auth::{Principal, Role};

fn role(s: &str) -> Result<Role, ApiError> {
    s.parse::<Role>().map_err(ApiError::invalid)
}

/// Runs one user-admin request for the checked `actor`.
pub(super) async fn run(api: &Api, actor: &Principal, req: Request) -> Result<Value, ApiError> {
    let auth = api.auth();
    let done = || wire::to_value(&Done {});
    match req {
        Request::UsersList(_) => {
            let users = auth.list_users(actor).await?;
            wire::to_value(&UsersList {
                users: users.into_iter().map(UserRow::from).collect(),
            })
        }
        Request::UserAdd(r) => {
            let user = auth
                .add_user(actor, &r.username, &r.password, role(&r.role)?, &r.parks)
                .await?;
            wire::to_value(&UserAdded { user: user.into() })
        }
        Request::UserDisable(r) => {
            auth.set_active(actor, &r.username, false).await?;
            done()
        }
        Request::UserEnable(r) => {
            auth.set_active(actor, &r.username, true).await?;
            done()
        }
        Request::UserRole(r) => {
            auth.set_role(actor, &r.username, role(&r.role)?).await?;
            done()
        }
        Request::UserGrant(r) => {
            auth.grant_park(actor, &r.username, &r.park).await?;
            done()
        }
        Request::UserRevoke(r) => {
            auth.revoke_park(actor, &r.username, &r.park).await?;
            done()
        }
        Request::UserPasswd(r) => {
            auth.change_password(
                actor,
                &r.username,
                &r.password,
                r.current_password.as_deref(),
            )
            .await?;
            done()
        }
        Request::UserPin(r) => {
            auth.set_pin(actor, &r.username, &r.pin).await?;
            done()
        }
        Request::UserBadgeAdd(r) => {
            auth.add_badge(actor, &r.username, &r.badge).await?;
            done()
        }
        Request::UserBadgeRemove(r) => {
            auth.remove_badge(actor, &r.username, &r.badge).await?;
            done()
        }
        other => Err(ApiError::internal(format!(
            "{} is not a user operation",
            other.op()
        ))),
    }
}
