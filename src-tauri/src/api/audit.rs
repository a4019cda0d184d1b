//! The audit trail, one page at a time (ReadAudit), newest first.

use serde_json::{json, Value};

use super::{Api, ApiError, Ctx};
use crate::auth::Permission;
use crate::store::audit::AuditFilter;

fn bound(s: Option<String>, end: bool) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    s.map(|s| crate::store::bound::parse_bound(&s, end).map_err(ApiError::invalid))
        .transpose()
}

/// `audit_page {from,to,actor,action,limit,before_id}` → `{"rows":[…]}`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn page(
    api: &Api,
    ctx: &Ctx,
    from: Option<String>,
    to: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    limit: Option<u32>,
    before_id: Option<i64>,
) -> Result<Value, ApiError> {
    let p = api
        .auth()
        .check(api.token(ctx)?, Permission::ReadAudit, None)
        .await?;
    let filter = AuditFilter {
        from: bound(from, false)?,
        to: bound(to, true)?,
        actor,
        action,
        before_id,
        limit,
    };
    let rows = api.auth().audit_page(&p, filter).await?;
    Ok(json!({ "rows": rows }))
}
