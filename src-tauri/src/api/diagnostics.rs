//! `diagnostics` and `diagnostics_ping`: the per-park figures the engine keeps plus one
//! `ServerStatus` read per park (state, build info, clock drift, round trip), and the panel's own
//! figures (version, uptime, memory and CPU of the process, database size, the audit chain's
//! cached state from `audit_chain.rs`), and the server certificate each PLC session was opened
//! with (its expiry).

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
use std::time::Instant;

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
        let (engine, status, cert) = match api.inner.writer.as_ref() {
            Some(w) => {
                let status = w.server_status(&plc.id).await;
                let cert = w.server_certificate(&plc.id).await;
                (w.diagnostics(&plc.id).await, Some(status), cert)
            }
            None => (None, None, Err("no PLC engine is running".into())),
        };
        let interval = cfg.map_or(config.broadcast_interval_seconds, |c| {
            config.sampling_seconds_for(c)
        });
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
            server_certificate_error: cert.as_ref().err().cloned(),
            server_certificate: cert.ok(),
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
    let cpu = cpu_seconds.and_then(|s| api.inner.cpu.percent(s, Instant::now()));
    let presence = api.messages().presence();
    Diagnostics {
        parks,
        panel: PanelDiagnostics {
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: api.inner.started.elapsed().as_secs(),
            memory_rss_bytes,
            cpu_seconds,
            cpu_percent: cpu.map(|c| c.0),
            cpu_interval_s: cpu.map(|c| c.1),
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
            audit_chain: super::audit_chain::cached(api),
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

/// The shortest interval `cpu_percent` is computed over: a `diagnostics` asked sooner than this
/// after the previous one reports the previous figure (a few ms would say nothing).
const CPU_MIN_INTERVAL_S: f64 = 1.0;

/// CPU use of the process between two `diagnostics` replies: the sample taken by the previous
/// one (or when the api was built) and now.
pub(super) struct CpuSampler(parking_lot::Mutex<CpuState>);

struct CpuState {
    /// The previous sample: when and the process's CPU seconds then.
    at: Instant,
    cpu_s: f64,
    /// The last figure: percent and the interval it covers.
    last: Option<(f64, f64)>,
}

impl CpuSampler {
    pub(super) fn new() -> Self {
        let cpu_s = process_figures().1.unwrap_or(0.0);
        CpuSampler(parking_lot::Mutex::new(CpuState {
            at: Instant::now(),
            cpu_s,
            last: None,
        }))
    }

    /// `(percent, interval_s)` with the process's CPU seconds `cpu_s` at `now` (100 % = one core).
    pub(super) fn percent(&self, cpu_s: f64, now: Instant) -> Option<(f64, f64)> {
        let mut st = self.0.lock();
        let dt = now.saturating_duration_since(st.at).as_secs_f64();
        if dt < CPU_MIN_INTERVAL_S {
            return st.last;
        }
        let pct = ((cpu_s - st.cpu_s).max(0.0) / dt * 100.0 * 10.0).round() / 10.0;
        *st = CpuState {
            at: now,
            cpu_s,
            last: Some((pct, (dt * 10.0).round() / 10.0)),
        };
        st.last
    }
}

/// Resident memory and CPU time of this process (Linux `/proc`; `None` elsewhere).
fn process_figures() -> (Option<u64>, Option<f64>) {
    let (page, ticks_per_s) = os_units();
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
                .map(|pages| pages * page)
        });
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may contain spaces) in parentheses.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / ticks_per_s)
        });
    (rss, cpu)
}

/// The page size and clock ticks per second `/proc` counts in.
#[cfg(unix)]
fn os_units() -> (u64, f64) {
    // SAFETY: sysconf only reads a system constant.
    let (page, tck) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    (
        u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096),
        if tck > 0 { tck as f64 } else { 100.0 },
    )
}

#[cfg(not(unix))]
fn os_units() -> (u64, f64) {
    (4096, 100.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cpu_percent_over_the_interval_since_the_previous_sample() {
        let s = CpuSampler::new();
        let (t0, c0) = {
            let st = s.0.lock();
            (st.at, st.cpu_s)
        };
        assert_eq!(s.percent(c0 + 0.1, t0 + Duration::from_millis(500)), None);
        assert_eq!(
            s.percent(c0 + 0.5, t0 + Duration::from_secs(2)),
            Some((25.0, 2.0))
        );
        // Too soon after: the previous figure.
        assert_eq!(
            s.percent(c0 + 0.9, t0 + Duration::from_millis(2500)),
            Some((25.0, 2.0))
        );
        assert_eq!(
            s.percent(c0 + 2.5, t0 + Duration::from_secs(4)),
            Some((100.0, 2.0))
        );
    }

    #[test]
    fn process_figures_are_plausible() {
        let (rss, cpu) = process_figures();
        if cfg!(target_os = "linux") {
            assert!(rss.unwrap() > 1_000_000);
            assert!(cpu.unwrap() >= 0.0);
        }
    }
}
