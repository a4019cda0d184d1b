//! User administration: list, add, disable/enable, role, grants, password, PIN, badges.
//! The rules ("admins may not manage admins/superusers", own password) live in `crate::auth`;
//! this file only checks the session first and translates.

use serde_json::{json, Value};

use super::{Api, ApiError, Ctx, Request};
use crate::auth::{Permission, Role};

fn role(s: &str) -> Result<Role, ApiError> {
    s.parse::<Role>().map_err(ApiError::invalid)
}

/// Runs one user-admin request.
pub(super) async fn dispatch(api: &Api, ctx: &Ctx, req: Request) -> Result<Value, ApiError> {
    let token = api.token(ctx)?;
    // Changing one's own password needs no ManageUsers; auth decides the rest.
    let perm = match &req {
        Request::UserPasswd { .. } => Permission::ViewLive,
        _ => Permission::ManageUsers,
    };
    let actor = api.auth().check(token, perm, None).await?;
    let auth = api.auth();
    let done = json!({});
    match req {
        Request::UsersList => {
            let users = auth.list_users(&actor).await?;
            Ok(json!({ "users": users }))
        }
        Request::UserAdd {
            username,
            password,
            role: r,
            parks,
        } => {
            let user = auth
                .add_user(&actor, &username, &password, role(&r)?, &parks)
                .await?;
            Ok(json!({ "user": user }))
        }
        Request::UserDisable { username } => {
            auth.set_active(&actor, &username, false).await?;
            Ok(done)
        }
        Request::UserEnable { username } => {
            auth.set_active(&actor, &username, true).await?;
            Ok(done)
        }
        Request::UserRole { username, role: r } => {
            auth.set_role(&actor, &username, role(&r)?).await?;
            Ok(done)
        }
        Request::UserGrant { username, park } => {
            auth.grant_park(&actor, &username, &park).await?;
            Ok(done)
        }
        Request::UserRevoke { username, park } => {
            auth.revoke_park(&actor, &username, &park).await?;
            Ok(done)
        }
        Request::UserPasswd {
            username,
            password,
            current_password,
        } => {
            auth.change_password(&actor, &username, &password, current_password.as_deref())
                .await?;
            Ok(done)
        }
        Request::UserPin { username, pin } => {
            auth.set_pin(&actor, &username, &pin).await?;
            Ok(done)
        }
        Request::UserBadgeAdd { username, badge } => {
            auth.add_badge(&actor, &username, &badge).await?;
            Ok(done)
        }
        Request::UserBadgeRemove { username, badge } => {
            auth.remove_badge(&actor, &username, &badge).await?;
            Ok(done)
        }
        other => Err(ApiError::internal(format!(
            "{} is not a user operation",
            other.op()
        ))),
    }
}
