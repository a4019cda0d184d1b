//! `stator calibration list`: the configured calibrations with their due state and the stored
//! records, read from the database (works with or without a running instance).

use chrono::Utc;

use super::{CalibrationCommand, CliError, CliResult, GlobalArgs};
use crate::service::calibration::{due, Record};
use crate::store::service::{self, RecordFilter};

/// Entry point of `stator calibration …`.
pub(super) fn run(global: &GlobalArgs, cmd: CalibrationCommand) -> CliResult {
    let CalibrationCommand::List { calibration, json } = cmd;
    let cfg = super::load_config(global)?;
    let store = super::open_store(global, Some(&cfg))?;
    let filter = RecordFilter {
        calibration: calibration.clone(),
        limit: 10_000,
        ..Default::default()
    };
    let rows = store
        .read_blocking(|c| service::records(c, &filter))
        .map_err(CliError::failure)?;
    let parsed: Vec<(i64, Record)> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.record).ok().map(|rec| (r.id, rec)))
        .collect();
    if json {
        for (n, r) in &parsed {
            let mut v = serde_json::to_value(r).map_err(CliError::failure)?;
            v["n"] = (*n).into();
            println!("{v}");
        }
        return Ok(());
    }
    let now = Utc::now();
    println!(
        "{:<20} {:<12} {:<22} state",
        "calibration", "park", "next due"
    );
    for c in cfg
        .calibration
        .iter()
        .filter(|c| calibration.as_deref().is_none_or(|id| id == c.id))
    {
        let last = parsed
            .iter()
            .find(|(_, r)| r.calibration == c.id && r.pass)
            .map(|(_, r)| r.next_due);
        println!(
            "{:<20} {:<12} {:<22} {}",
            c.id,
            c.park(),
            last.map_or("never calibrated".into(), |t| t
                .format("%Y-%m-%d %H:%M")
                .to_string()),
            due(last, now)
        );
    }
    println!();
    println!(
        "{:>5} {:<20} {:<17} {:<12} {:>12} {:>12} result",
        "n", "calibration", "at (UTC)", "by", "as found", "as left"
    );
    for (n, r) in &parsed {
        println!(
            "{:>5} {:<20} {:<17} {:<12} {:>12.5} {:>12} {}",
            n,
            r.calibration,
            r.at.format("%Y-%m-%d %H:%M"),
            r.by,
            r.as_found_error,
            r.as_left_error.map_or("–".into(), |e| format!("{e:.5}")),
            if r.pass { "pass" } else { "FAIL" }
        );
    }
    Ok(())
}
