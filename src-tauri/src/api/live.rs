//! The live picture: `snapshot`, filtered to the caller's parks.

use serde_json::Value;

use super::{Api, ApiError, Ctx};
use crate::auth::Permission;

/// `snapshot`: the same body the WebSocket sends right after auth.
pub(super) async fn snapshot(api: &Api, ctx: &Ctx) -> Result<Value, ApiError> {
    let p = api
        .auth()
        .check(api.token(ctx)?, Permission::ViewLive, None)
        .await?;
    Ok(api.snapshot_json(&p))
}
