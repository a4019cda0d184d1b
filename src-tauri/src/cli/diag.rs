//! `stator diag [--json]`: connects to every configured PLC with its own engine (standalone,
//! next to a running instance or not), waits a bounded time for the connections, and prints
//! the same figures as the `diagnostics` op.

use std::sync::Arc;
use std::time::Duration;

use super::{CliError, CliResult, DiagArgs, GlobalArgs};
use crate::api::{Api, SharedEngine};
use crate::auth::{Auth, Principal, Source};
use crate::live::{Cache, PlcStatus};
use crate::plc::{Engine, EngineOptions};

/// Entry point of `stator diag`.
pub(super) fn run(global: &GlobalArgs, a: DiagArgs) -> CliResult {
    let cfg = Arc::new(super::load_config(global)?);
    let store = super::open_store(global, Some(&cfg))?;
    let wait = Duration::from_secs_f64(a.wait.clamp(0.0, 600.0));
    let rt = super::runtime()?;
    let report = rt.block_on(async {
        let auth = Auth::new(store, &cfg);
        let cache = Cache::from_config(&cfg);
        let mut opts = EngineOptions::new(crate::plc::certs::pki_dir(&cfg));
        opts.password = Arc::new(|id: &str| {
            crate::auth::secrets::get(&format!("plc/{id}")).map_err(|e| e.to_string())
        });
        let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
        let api = Api::with_writer(auth, cache.clone(), cfg.clone(), engine.clone());
        let deadline = tokio::time::Instant::now() + wait;
        let ids = cache.plc_ids();
        while tokio::time::Instant::now() < deadline
            && !ids
                .iter()
                .all(|id| cache.status(id) == Some(PlcStatus::Connected))
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = api
            .diagnostics(&Principal::system("cli", Source::Cli))
            .await;
        engine.shutdown().await;
        r
    });
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(CliError::failure)?
        );
        return Ok(());
    }
    for p in &report.parks {
        println!("{} — {} ({})", p.park, p.state, p.endpoint);
        if let Some(e) = &p.error {
            println!("  error: {e}");
        }
        if let Some(s) = &p.server_status {
            println!(
                "  server: {} {} {}, drift {} ms, rtt {:.1} ms",
                s.state.as_deref().unwrap_or("?"),
                s.product_name.as_deref().unwrap_or("?"),
                s.software_version.as_deref().unwrap_or(""),
                s.clock_drift_ms.map_or("?".into(), |d| d.to_string()),
                s.rtt_ms
            );
        }
        println!(
            "  tags {}, bad quality {}, security {}/{}",
            p.tags, p.bad_quality, p.security_policy, p.security_mode
        );
    }
    let d = &report.panel;
    println!(
        "panel: stator {}, database {} ({} bytes)",
        d.version, d.database, d.database_bytes
    );
    Ok(())
}
