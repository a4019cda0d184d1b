//! What several benches share: the test config builder, the bench user, the child-process
//! plumbing and the /proc readings. Each bench includes it with `mod support;` and uses a part.
#![allow(dead_code)]

use std::path::Path;

/// A knob from the environment (`default` when unset or unreadable).
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0–1.0) of sorted figures (NaN when there are none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[path = "../../tests/it/support/config.rs"]
pub mod config;

/// The bench's viewer of `park` in a fresh store under `dir`; returns its auth and a remote
/// session token.
pub async fn bench_user(cfg: &stator::config::Config, dir: &Path) -> (stator::auth::Auth, String) {
    let store = stator::store::Store::open(&dir.join("bench.db")).unwrap();
    let auth = stator::auth::Auth::new(store, cfg);
    let system = stator::auth::Principal::system("bench", stator::auth::Source::Cli);
    auth.add_user(
        &system,
        "bench",
        "bench-password-1",
        stator::auth::Role::Viewer,
        &["park".into()],
    )
    .await
    .unwrap();
    let token = auth
        .login(
            "bench",
            "bench-password-1",
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
        .await
        .unwrap()
        .token;
    (auth, token)
}

/// The configuration of the server-side benches: one park `park` at `url`, room for thousands of
/// clients from loopback.
pub fn park_config(url: &str) -> config::ConfigBuilder {
    config::ConfigBuilder::new()
        .plc("park", url, "Park")
        .merge(serde_json::json!({
            "remote": {"listen": "127.0.0.1:0", "max_clients": 5000, "max_connections_per_address": 5000}
        }))
}

/// Returns once the parent process closes our stdin (the child roles run until then).
pub async fn until_stdin_closes() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        while std::io::stdin()
            .read_line(&mut s)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await;
}

/// CPU ticks (user + system, 100 per second on Linux) process `pid` has used.
pub fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state(0) … utime(11) stime(12).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// Ticks per second of [`proc_cpu_ticks`] (sysconf(_SC_CLK_TCK) is 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Peak resident set of process `pid` in KiB.
pub fn proc_hwm_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

/// Resident set of process `pid` now, in KiB.
pub fn proc_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Debian's `mosquitto` on a free loopback port with `extra` lines of configuration (anonymous,
/// no persistence), its config under `dir`; returns the broker process and its port.
pub fn mosquitto(dir: &Path, extra: &str) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}"),
    )
    .expect("conf");
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("mosquitto is not installed (scripts/setup.sh)");
    let broker = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto");
    (broker, port)
}
