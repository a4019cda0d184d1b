//! API token management: create (password re-entered), list, revoke. The rules (scopes within
//! the role, parks within the grants, lifetimes) live in `crate::auth::api_tokens`; this file
//! only translates.

use super::request::{ApiTokenCreateReq, ApiTokenRevokeReq};
use super::wire::{ApiTokenCreated, ApiTokensList, Done};
use super::{Api, ApiError};
use crate::auth::api_tokens::TokenRequest;
use crate::auth::Principal;

/// `api_token_create {name,scopes,parks?,expires_days?,password}`.
pub(super) async fn create(
    api: &Api,
    p: &Principal,
    r: ApiTokenCreateReq,
) -> Result<ApiTokenCreated, ApiError> {
    let req = TokenRequest {
        name: r.name,
        scopes: r.scopes,
        parks: r.parks,
        expires_days: r.expires_days,
    };
    let t = api
        .auth()
        .create_api_token(p, None, req, Some(&r.password))
        .await?;
    Ok(ApiTokenCreated {
        id: t.info.id,
        token: t.token,
        info: t.info.into(),
    })
}

/// `api_tokens`.
pub(super) async fn list(api: &Api, p: &Principal) -> Result<ApiTokensList, ApiError> {
    let tokens = api.auth().list_api_tokens(p).await?;
    Ok(ApiTokensList {
        tokens: tokens.into_iter().map(Into::into).collect(),
    })
}

/// `api_token_revoke {token_id}`.
pub(super) async fn revoke(
    api: &Api,
    p: &Principal,
    r: ApiTokenRevokeReq,
) -> Result<Done, ApiError> {
    api.auth().revoke_api_token(p, r.token_id).await?;
    Ok(Done {})
}
