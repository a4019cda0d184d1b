//! Replies of API token management and configuration over the API.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::api_tokens::ApiTokenInfo;

/// One API token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenView {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub parks: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_from: Option<String>,
    pub revoked: bool,
}

impl From<ApiTokenInfo> for ApiTokenView {
    fn from(t: ApiTokenInfo) -> Self {
        ApiTokenView {
            id: t.id,
            name: t.name,
            scopes: t.scopes,
            parks: t.parks,
            created_by: t.created_by,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            last_used_from: t.last_used_from,
            revoked: t.revoked,
        }
    }
}

/// `api_token_create`: the token, shown this once, and what it grants.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenCreated {
    pub id: i64,
    /// `stator_<id>_<secret>`; only its hash is kept.
    pub token: String,
    #[serde(flatten)]
    pub info: ApiTokenView,
}

/// `api_tokens`.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokensList {
    pub tokens: Vec<ApiTokenView>,
}

/// `config_get`: the running configuration (no secrets: passwords live in the keyring) and the
/// version `config_set` must name.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReply {
    pub config: serde_json::Value,
    pub version: String,
}

/// `config_set`: the new version, the changed keys (JSON pointers) and what needs a restart.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSetReply {
    pub version: String,
    pub changed: Vec<String>,
    pub restart_required: Vec<String>,
}
