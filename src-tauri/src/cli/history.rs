//! `stator history export` and `stator trend`: the historian's data on the command line, read
//! from its file directly (like `stator audit export`, for the operator of the machine), with
//! the same validation, CSV and chart code as the `history` op and the HTTP routes.

use super::{CliError, CliResult, GlobalArgs, HistoryCommand, RangeArgs, TrendArgs};
use crate::api::history::{self, ChartFormat, Plan};
use crate::api::{ApiError, HistoryReq};
use crate::config::Config;
use crate::history::Historian;

fn usage_or_failure(e: ApiError) -> CliError {
    match e.code.http_status() {
        400..=499 => CliError::usage(e.message),
        _ => CliError::failure(e.message),
    }
}

/// Opens the historian read-only and validates the range (every park: the CLI runs as the
/// machine's operator).
fn open(
    global: &GlobalArgs,
    r: RangeArgs,
    max_points: u64,
) -> Result<(Historian, Config, Plan), CliError> {
    let cfg = super::load_config(global)?;
    let path = Historian::path_for(&cfg.history, &super::db_path(global, Some(&cfg)));
    if !path.exists() {
        return Err(CliError::failure(format!(
            "no history database at {}",
            path.display()
        )));
    }
    let h = Historian::open_read_only(&path, &cfg.history).map_err(CliError::failure)?;
    let req = HistoryReq {
        tags: r.tags,
        from: Some(r.from),
        to: Some(r.to),
        max_points: Some(max_points),
    };
    let plan = history::plan(&h, &cfg, None, req, chrono::Utc::now(), |_| true)
        .map_err(usage_or_failure)?;
    Ok((h, cfg, plan))
}

/// `stator history export --tags … --from --to [--csv FILE]`.
pub(super) fn export(global: &GlobalArgs, cmd: HistoryCommand) -> CliResult {
    let HistoryCommand::Export {
        range,
        csv,
        max_points,
    } = cmd;
    let (h, cfg, plan) = open(global, range, max_points)?;
    let reply = history::run_blocking(&h, &cfg, &plan).map_err(usage_or_failure)?;
    match csv {
        Some(file) => std::fs::write(&file, history::csv(&reply))
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", file.display()))),
        None => {
            println!(
                "{}",
                serde_json::to_string(&reply).map_err(CliError::failure)?
            );
            Ok(())
        }
    }
}

/// `stator trend --tags … --from --to --out trend.png`.
pub(super) fn trend(global: &GlobalArgs, a: TrendArgs) -> CliResult {
    let (h, cfg, plan) = open(global, a.range, u64::from(a.width).clamp(1, 10_000))?;
    let reply = history::run_blocking(&h, &cfg, &plan).map_err(usage_or_failure)?;
    let svg = a
        .out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    let format = if svg {
        ChartFormat::Svg
    } else {
        ChartFormat::Png
    };
    let bytes =
        history::chart(&reply, &plan, (a.width, a.height), format).map_err(usage_or_failure)?;
    std::fs::write(&a.out, bytes)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", a.out.display())))
}
