//! `stator diag [--json]`: connects to every configured PLC with its own engine (standalone,
//! next to a running instance or not), waits a bounded time for the connections, and prints
//! the same figures as the `diagnostics` op, with the audit chain verified first (with the key
//! from the secret store when there is one, as `stator audit verify`).

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
    // The key from the secret store when there is one (never created here): a keyed chain can
    // only be verified with it; without it the check says so.
    let store = match crate::app::audit_key(false) {
        Ok(Some(key)) => crate::store::Store::open_keyed(&super::db_path(global, Some(&cfg)), &key)
            .map_err(CliError::failure)?,
        Ok(None) => super::open_store(global, Some(&cfg))?,
        Err(e) => {
            eprintln!("warning: {e}");
            super::open_store(global, Some(&cfg))?
        }
    };
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
        api.check_audit_chain().await;
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
        match (&p.server_certificate, &p.server_certificate_error) {
            (Some(c), _) => println!(
                "  certificate: {}, valid until {} ({} days left){}",
                c.subject,
                c.not_after.to_rfc3339(),
                c.days_left,
                if c.expires_soon {
                    " — RENEW SOON"
                } else {
                    ""
                }
            ),
            (None, e) => println!("  certificate: none ({})", e.as_deref().unwrap_or("?")),
        }
    }
    let d = &report.panel;
    println!(
        "panel: stator {}, database {} ({} bytes)",
        d.version, d.database, d.database_bytes
    );
    if let (Some(pct), Some(s)) = (d.cpu_percent, d.cpu_interval_s) {
        println!("  cpu {pct:.1} % over {s:.1} s");
    }
    let a = &d.audit_chain;
    println!(
        "  audit chain: {} ({} rows){}",
        a.state,
        a.rows,
        a.error
            .as_deref()
            .map_or(String::new(), |e| format!(": {e}"))
    );
    Ok(())
}
