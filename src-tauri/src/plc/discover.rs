//! `stator discover`: the commissioning tool. Connects, browses below the root with the very
//! same discovery code as the engine, and prints the tags with type, array size, writability
//! and current value (a table, or `{"tags":[…]}` with `--json`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::{DiscoverArgs, EXIT_CONFIG, EXIT_FAILURE};
use crate::config::{validate_node_id, validate_opc_url, SecurityMode, SecurityPolicy};
use crate::plc::connection::{self, Target};
use crate::plc::discovery::{self, DiscoveredTag};
use crate::plc::values::variant_to_json;

/// Runs the command; returns the exit code.
pub fn run(args: DiscoverArgs) -> i32 {
    if let Err(e) = validate_opc_url(&args.url) {
        eprintln!("error: --url: {e}");
        return EXIT_CONFIG;
    }
    if let Err(e) = validate_node_id(&args.root) {
        eprintln!("error: --root: {e}");
        return EXIT_CONFIG;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    let result = rt.block_on(discover_url(&args.url, &args.root));
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(tags) => {
            if args.json {
                println!("{}", to_json(&tags));
            } else {
                print!("{}", to_table(&tags));
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILURE
        }
    }
}

/// Connects anonymously without security, discovers everything below `root` with values.
pub async fn discover_url(url: &str, root: &str) -> Result<Vec<DiscoveredTag>, String> {
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
    r.map_err(|e| {
        format!(
            "browsing below {root} failed: {}",
            crate::plc::values::status_name(e.status())
        )
    })
}

fn value_of(t: &DiscoveredTag) -> Value {
    t.value
        .as_ref()
        .and_then(|dv| dv.value.as_ref())
        .map(variant_to_json)
        .unwrap_or(Value::Null)
}

/// `{"tags":[{"name","node_id","type","array_size","writable","value"}]}`.
pub fn to_json(tags: &[DiscoveredTag]) -> Value {
    json!({
        "tags": tags.iter().map(|t| json!({
            "name": t.meta.name,
            "node_id": t.meta.node_id,
            "type": t.meta.data_type,
            "array_size": t.meta.array_size,
            "writable": t.meta.writable,
            "value": value_of(t),
        })).collect::<Vec<_>>()
    })
}

/// A plain aligned table for people.
pub fn to_table(tags: &[DiscoveredTag]) -> String {
    let header = ["NAME", "TYPE", "ARRAY", "WRITABLE", "VALUE"];
    let rows: Vec<[String; 5]> = tags
        .iter()
        .map(|t| {
            let mut v = value_of(t).to_string();
            if v.chars().count() > 60 {
                v = v.chars().take(57).collect::<String>() + "...";
            }
            [
                t.meta.name.clone(),
                t.meta.data_type.clone(),
                t.meta.array_size.map(|n| n.to_string()).unwrap_or_default(),
                if t.meta.writable { "yes" } else { "no" }.to_string(),
                v,
            ]
        })
        .collect();
    let mut w = header.map(|h| h.len());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out.push_str(&format!("{} tags\n", rows.len()));
    out
}
