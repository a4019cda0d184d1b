//! The audit trail, one page at a time (ReadAudit).

use serde_json::Value;

use super::{Api, ApiError, Ctx};
use crate::auth::Permission;

/// `audit_page {from,to,actor,action,limit,before_id}` → `{"rows":[…]}`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn page(
    api: &Api,
    ctx: &Ctx,
    _from: Option<String>,
    _to: Option<String>,
    _actor: Option<String>,
    _action: Option<String>,
    _limit: Option<u32>,
    _before_id: Option<i64>,
) -> Result<Value, ApiError> {
    let _actor = api
        .auth()
        .check(api.token(ctx)?, Permission::ReadAudit, None)
        .await?;
    Err(ApiError::internal("audit_page is not available yet"))
}
