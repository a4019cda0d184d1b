//! `diagnostics` and `diagnostics_ping`: the per-park figures the engine keeps plus one
//! `ServerStatus` read per park (state, build info, clock drift, round trip), and the panel's own
//! figures (version, uptime, memory and CPU of the process, database size).

use super::request::ParkReq;
use super::wire::{
    ClientCounts, Diagnostics, PanelDiagnostics, ParkDiagnostics, PingReply, ServiceBanner,
};
use super::{Api, ApiError};
use crate::auth::Principal;
use crate::code::ErrorCode;
use crate::live::Quality;
use crate::messages::ClientKind;
use std::path::Path;

/// Bad-quality tag names listed per park (the count is complete).
const BAD_NAMES: usize = 20;

/// `diagnostics` → every visible park and the panel.
pub(super) async fn report(api: &Api, p: &Principal) -> Diagnostics {
    let snap = api.cache().snapshot(|id| p.parks.contains(id));
    let mut parks = Vec::new();
    for plc in snap.plcs {
        let config = api.config();
        let cfg = config.plc(&plc.id);
        let bad: Vec<String> = plc
            .nodes
            .iter()
            .filter(|n| n.quality != Quality::Good)
            .map(|n| n.name.clone())
            .collect();
        // The status read first: its round trip is one of the engine's RTT samples.
        let (engine, status) = match api.inner.writer.as_ref() {
            Some(w) => {
                let status = w.server_status(&plc.id).await;
                (w.diagnostics(&plc.id).await, Some(status))
            }
            None => (None, None),
        };
        let interval = cfg
            .and_then(|c| c.sampling_interval_seconds)
            .unwrap_or(api.config().broadcast_interval_seconds);
        parks.push(ParkDiagnostics {
            state: plc.status.as_str().to_string(),
            error: plc.error.clone(),
            endpoint: plc.url.clone(),
            security_policy: cfg.map_or("None".into(), |c| format!("{:?}", c.security_policy)),
            security_mode: cfg.map_or("None".into(), |c| format!("{:?}", c.security_mode)),
            acquisition: cfg.map_or("subscribe".into(), |c| {
                format!("{:?}", c.acquisition).to_lowercase()
            }),
            publishing_interval_s: interval,
            tags: plc.nodes.len(),
            bad_quality: bad.len(),
            bad_quality_tags: bad.into_iter().take(BAD_NAMES).collect(),
            engine,
            server_status_error: match &status {
                Some(Err(e)) => Some(format!("{}: {}", e.code(), e.message())),
                _ => None,
            },
            server_status: status.and_then(Result::ok),
            service: api
                .inner
                .service
                .get(&plc.id)
                .map(|s| ServiceBanner::of(&s)),
            park: plc.id,
        });
    }
    let db = api.auth().store().path().to_path_buf();
    let history = api.history().map(|h| h.path().to_path_buf());
    let (memory_rss_bytes, cpu_seconds) = process_figures();
    let presence = api.messages().presence();
    Diagnostics {
        parks,
        panel: PanelDiagnostics {
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: api.inner.started.elapsed().as_secs(),
            memory_rss_bytes,
            cpu_seconds,
            database_bytes: file_bytes(&db),
            disk_free_bytes: disk_free(&db),
            database: db.display().to_string(),
            history_database_bytes: history.as_deref().map(file_bytes),
            history_database: history.map(|h| h.display().to_string()),
            sessions: api.auth().live_sessions(),
            clients: ClientCounts {
                panel: presence.count(ClientKind::Panel),
                browser: presence.count(ClientKind::Browser),
            },
        },
    }
}

/// Size of an SQLite file plus its write-ahead log.
fn file_bytes(db: &Path) -> u64 {
    ["", "-wal"]
        .iter()
        .filter_map(|sfx| std::fs::metadata(format!("{}{sfx}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes an unprivileged process may still write on the file system holding `db`.
#[cfg(unix)]
fn disk_free(db: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let dir = match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // struct's size; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
fn disk_free(_db: &Path) -> Option<u64> {
    None
}

/// Resident memory and CPU time of this process (Linux `/proc`; `None` elsewhere).
fn process_figures() -> (Option<u64>, Option<f64>) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
                .map(|pages| pages * 4096)
        });
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        });
    (rss, cpu)
}

/// `diagnostics_ping {park}` → one read round trip.
pub(super) async fn ping(api: &Api, r: ParkReq) -> Result<PingReply, ApiError> {
    let Some(w) = api.inner.writer.as_ref() else {
        return Err(ApiError::not_connected("no PLC engine is running"));
    };
    let s = w.server_status(&r.park).await.map_err(|e| ApiError {
        code: e.code(),
        message: e.message().to_string(),
        retry_after_s: None,
    })?;
    Ok(PingReply {
        park: r.park,
        rtt_ms: s.rtt_ms,
        server_status: s,
    })
}
