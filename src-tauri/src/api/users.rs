//! User administration (ManageUsers): list, add, disable/enable, role, grants, password, PIN,
//! badges. The rules ("admins may not manage admins/superusers") live in `crate::auth`.

use serde_json::Value;

use super::{Api, ApiError, Ctx, Request};
use crate::auth::Permission;

/// Runs one user-admin request.
pub(super) async fn dispatch(api: &Api, ctx: &Ctx, req: Request) -> Result<Value, ApiError> {
    let _actor = api
        .auth()
        .check(api.token(ctx)?, Permission::ManageUsers, None)
        .await?;
    Err(ApiError::internal(format!("{} is not available yet", req.op())))
}
