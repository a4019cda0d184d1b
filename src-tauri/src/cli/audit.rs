//! `stator audit verify|export`: proves the hash chain, or exports a time range as JSON lines
//! or CSV (streamed, so a large trail never sits in memory).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{AuditCommand, CliError, CliResult, GlobalArgs};
use crate::store::bound::parse_bound;
use crate::store::{audit, AuditRow, StoreError};

/// Entry point of `stator audit …`.
pub(super) fn run(global: &GlobalArgs, cmd: AuditCommand) -> CliResult {
    // With --db the configuration is not needed.
    let cfg = match global.db {
        Some(_) => None,
        None => Some(super::load_config(global)?),
    };
    let store = super::open_store(global, cfg.as_ref())?;
    match cmd {
        AuditCommand::Verify => {
            let r = store
                .read_blocking(audit::verify)
                .map_err(CliError::failure)?;
            if let Some((id, why)) = r.first_bad {
                return Err(CliError::failure(format!(
                    "audit chain broken at row {id}: {why}"
                )));
            }
            println!("ok: {} rows", r.rows);
            Ok(())
        }
        AuditCommand::Export { from, to, csv } => {
            let bound =
                |s: &Option<String>, end: bool| -> Result<Option<DateTime<Utc>>, CliError> {
                    s.as_deref()
                        .map(|s| parse_bound(s, end))
                        .transpose()
                        .map_err(CliError::Usage)
                };
            let (from, to) = (bound(&from, false)?, bound(&to, true)?);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if csv {
                let _ = writeln!(
                    out,
                    "id,ts,actor,role,source,action,target,old_value,new_value,result,prev_hash,hash"
                );
            }
            let res = store.read_blocking(|c| {
                audit::for_each(c, from, to, |row| {
                    let line = if csv {
                        csv_line(&row)
                    } else {
                        serde_json::to_string(&row).unwrap_or_default()
                    };
                    writeln!(out, "{line}").map_err(|e| StoreError::Task(e.to_string()))
                })
            });
            let _ = out.flush();
            res.map(|_| ()).map_err(CliError::failure)
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(r: &AuditRow) -> String {
    let o = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
    [
        r.id.to_string(),
        csv_field(&r.ts),
        o(&r.actor),
        o(&r.role),
        csv_field(&r.source),
        csv_field(&r.action),
        o(&r.target),
        o(&r.old_value),
        o(&r.new_value),
        csv_field(&r.result),
        r.prev_hash.clone(),
        r.hash.clone(),
    ]
    .join(",")
}
