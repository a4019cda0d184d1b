//! Discovery for commissioning (`stator discover`): connects anonymously, browses below a root
//! with the very same code as the engine ([`super::discovery`]) and returns one typed row per
//! tag with its current value. Printing is the command line's job.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::config::{SecurityMode, SecurityPolicy};
use crate::plc::connection::{self, Target};
use crate::plc::discovery::{self, DiscoveredTag};
use crate::plc::values::variant_to_json;

/// One discovered tag as `stator discover` shows it (the JSON field names are its `--json`
/// output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagRow {
    /// Browse path below the root joined with `/`.
    pub name: String,
    /// The NodeId in OPC UA text form.
    pub node_id: String,
    /// OPC UA built-in data type name.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Length of a one-dimensional array; `None` for scalars.
    pub array_size: Option<u32>,
    /// The PLC allows writing.
    pub writable: bool,
    /// The current value as typed JSON (`null` when it could not be read).
    pub value: Value,
}

impl From<&DiscoveredTag> for TagRow {
    fn from(t: &DiscoveredTag) -> Self {
        TagRow {
            name: t.meta.name.clone(),
            node_id: t.meta.node_id.clone(),
            data_type: t.meta.data_type.clone(),
            array_size: t.meta.array_size,
            writable: t.meta.writable,
            value: t
                .value
                .as_ref()
                .and_then(|dv| dv.value.as_ref())
                .map(variant_to_json)
                .unwrap_or(Value::Null),
        }
    }
}

/// Connects anonymously without security, discovers everything below `root` with values.
pub async fn discover_url(url: &str, root: &str) -> Result<Vec<TagRow>, String> {
    let root: opcua::types::NodeId = root
        .parse()
        .map_err(|_| format!("{root:?} is not a NodeId"))?;
    let target = Target {
        plc_id: None,
        url: url.to_string(),
        policy: SecurityPolicy::None,
        mode: SecurityMode::None,
        username: None,
        password: None,
        pki_dir: PathBuf::from("certs"),
    };
    let conn = connection::connect(&target)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let limits = discovery::read_limits(&conn.session).await;
    let r = discovery::discover(&conn.session, &root, &limits, true).await;
    connection::close(conn, Duration::from_millis(500)).await;
    let tags = r.map_err(|e| {
        format!(
            "browsing below {root} failed: {}",
            crate::plc::values::status_name(e.status())
        )
    })?;
    Ok(tags.iter().map(TagRow::from).collect())
}
