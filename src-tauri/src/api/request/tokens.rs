//! Requests of API tokens and configuration over the API.

use serde::Deserialize;

/// `api_token_create {name,scopes,parks?,expires_days?,password}`; `password` is the caller's
/// own, re-entered.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiTokenCreateReq {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub parks: Option<Vec<String>>,
    #[serde(default)]
    pub expires_days: Option<u32>,
    pub password: String,
}

/// `api_token_revoke {token_id}` (not `id`: over the WebSocket `id` is the correlation id).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiTokenRevokeReq {
    pub token_id: i64,
}

/// `config_set {config,version,password}`: the whole new configuration, the `version` it was
/// based on (from `config_get`), and the caller's password re-entered.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigSetReq {
    pub config: serde_json::Value,
    pub version: String,
    pub password: String,
}
