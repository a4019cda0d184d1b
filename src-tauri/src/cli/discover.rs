//! `stator discover`: the commissioning tool. Connects, browses below the root with the very
//! same discovery code as the engine ([`crate::plc::discover`]), and prints the tags with type,
//! array size, writability and current value (a table, or `{"tags":[…]}` with `--json`).

use std::time::Duration;

use serde_json::{json, Value};

use super::{CliError, CliResult, DiscoverArgs};
use crate::config::{validate_node_id, validate_opc_url};
use crate::plc::discover::{discover_url, TagRow};

/// Entry point of `stator discover`.
pub(super) fn run(args: DiscoverArgs) -> CliResult {
    validate_opc_url(&args.url).map_err(|e| CliError::usage(format!("--url: {e}")))?;
    validate_node_id(&args.root).map_err(|e| CliError::usage(format!("--root: {e}")))?;
    let rt = super::runtime()?;
    let result = rt.block_on(discover_url(&args.url, &args.root));
    // The OPC UA client leaves tasks behind; do not wait for them.
    rt.shutdown_timeout(Duration::from_millis(200));
    let tags = result.map_err(CliError::failure)?;
    if args.json {
        println!("{}", to_json(&tags));
    } else {
        print!("{}", to_table(&tags));
    }
    Ok(())
}

/// `{"tags":[{"name","node_id","type","array_size","writable","value"}]}`.
pub fn to_json(tags: &[TagRow]) -> Value {
    json!({ "tags": tags })
}

/// A plain aligned table for people; values longer than 60 characters are cut.
pub fn to_table(tags: &[TagRow]) -> String {
    let header = ["NAME", "TYPE", "ARRAY", "WRITABLE", "VALUE"];
    let rows: Vec<[String; 5]> = tags
        .iter()
        .map(|t| {
            let mut v = t.value.to_string();
            if v.chars().count() > 60 {
                v = v.chars().take(57).collect::<String>() + "...";
            }
            [
                t.name.clone(),
                t.data_type.clone(),
                t.array_size.map(|n| n.to_string()).unwrap_or_default(),
                if t.writable { "yes" } else { "no" }.to_string(),
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
