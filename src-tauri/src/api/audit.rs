//! The audit trail, one page at a time (ReadAudit), newest first.

use super::request::AuditPageReq;
use super::wire::{AuditPage, AuditRowView};
use super::{Api, ApiError};
use crate::auth::Principal;
use crate::store::audit::AuditFilter;

fn bound(s: Option<String>, end: bool) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    s.map(|s| crate::store::bound::parse_bound(&s, end).map_err(ApiError::invalid))
        .transpose()
}

/// `audit_page {from,to,actor,action,limit,before_id}` → `{"rows":[…]}`.
pub(super) async fn page(api: &Api, p: &Principal, r: AuditPageReq) -> Result<AuditPage, ApiError> {
    let filter = AuditFilter {
        from: bound(r.from, false)?,
        to: bound(r.to, true)?,
        actor: r.actor,
        action: r.action,
        before_id: r.before_id,
        limit: r.limit,
    };
    let rows = api.auth().audit_page(p, filter).await?;
    Ok(AuditPage {
        rows: rows.into_iter().map(AuditRowView::from).collect(),
    })
}
