//! TEMPORARY stand-in for the store contract (HELPERS.md), replaced by the `auth` branch.

pub mod cli;

use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Store {
    pub rows: Arc<parking_lot::Mutex<Vec<AuditEntry>>>,
}
impl Store {
    pub fn open(_p: &std::path::Path) -> Result<Store, std::io::Error> {
        Ok(Store::default())
    }
}
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Option<String>,
    pub role: Option<String>,
    pub source: String,
    pub action: String,
    pub target: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub result: String,
}
