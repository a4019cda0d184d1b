//! `stator audit verify|export`: proves the hash chain, or exports a time range as JSON lines
//! or CSV (streamed, so a large trail never sits in memory).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{AuditCommand, CliError, CliResult, GlobalArgs};
use crate::store::bound::parse_bound;
use crate::store::{audit, StoreError};

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
            // Without the key only the unkeyed part can be checked; verify says so.
            let key = crate::app::audit_key(false).unwrap_or_else(|e| {
                eprintln!("warning: {e}");
                None
            });
            let r = store
                .verify_audit(key.as_ref())
                .map_err(CliError::failure)?;
            if let Some((id, why)) = r.first_bad {
                return Err(CliError::failure(format!(
                    "audit chain broken at row {id}: {why}"
                )));
            }
            println!("ok: {} rows", r.rows);
            eprintln!(
                "note: keyed from row {}, {} anchor(s) matched",
                r.keyed_from
                    .map_or_else(|| "- (never keyed)".to_string(), |k| k.to_string()),
                r.anchors
            );
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
                let _ = writeln!(out, "{}", audit::CSV_HEADER);
            }
            let res = store.read_blocking(|c| {
                audit::for_each(c, from, to, |row| {
                    let line = if csv {
                        audit::csv_line(&row)
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
