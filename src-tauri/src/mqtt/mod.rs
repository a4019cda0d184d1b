//! Publishes the plant to an MQTT broker as a Sparkplug B 3.0 edge node.
//!
//! One edge node (`mqtt.edge_node_id`) with one device per park. The broker link (rumqttc's
//! event loop, reconnect with backoff) runs in its own task ([`link`]); the edge node
//! ([`edge`]) reads every value the PLCs report from `Cache::samples()` and publishes with
//! `try_publish` into the client's bounded queue. Nothing here can make the engine or the panel
//! wait: a slow or absent broker costs dropped (and counted) messages, never back-pressure.
//!
//! [`hub`] is the other side: `stator hub`, a host application that shows every edge node's
//! parks from the broker.

mod edge;
pub mod hub;
mod link;
pub mod sparkplug_b;
mod spool;
pub mod values;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::api::{wire::MqttStatus, Api};
use crate::config::MqttConfig;

/// The Sparkplug B topic namespace.
pub const NAMESPACE: &str = "spBv1.0";

/// Why the publisher did not start (configuration the validator could not check: files).
#[derive(Debug, thiserror::Error)]
#[error("mqtt: {0}")]
pub struct MqttError(pub String);

/// Link state and counters shared with `health`.
#[derive(Default)]
pub(crate) struct Stats {
    state: AtomicU8,
    error: Mutex<Option<String>>,
    published: AtomicU64,
    dropped: AtomicU64,
    rejected: AtomicU64,
    stored: AtomicU64,
    store_dropped: AtomicU64,
}

const CONNECTING: u8 = 0;
const WAITING: u8 = 1;
const ONLINE: u8 = 2;
const STOPPED: u8 = 3;

impl Stats {
    fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::Relaxed);
    }
    fn count(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    fn status(&self) -> MqttStatus {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let state = match self.state.load(Ordering::Relaxed) {
            CONNECTING => "connecting",
            WAITING => "waiting_for_host",
            ONLINE => "online",
            _ => "stopped",
        };
        MqttStatus {
            state,
            error: (state == "connecting")
                .then(|| self.error.lock().clone())
                .flatten(),
            published: g(&self.published),
            dropped: g(&self.dropped),
            rejected: g(&self.rejected),
            stored: g(&self.stored),
            store_dropped: g(&self.store_dropped),
        }
    }
}

/// The running publisher (or hub, [`hub::HubHandle`]).
pub struct MqttHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MqttHandle {
    /// Stops the task: the edge node publishes NDEATH, both disconnect cleanly (bounded: 3 s).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(3), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Starts the edge node for `cfg` over `api` (the live cache, the write path, `health`).
/// `password` comes from the secret store (`mqtt/<edge_node_id>`); `store_dir` holds the
/// store-and-forward segments (used with `primary_host_id`). Returns at once: the broker may
/// well be down; the link retries with backoff and `health` says so. Opening the store is
/// blocking file I/O (call from the blocking pool or at start).
pub fn start(
    api: Api,
    cfg: MqttConfig,
    password: Option<String>,
    interval: Duration,
    store_dir: Option<&Path>,
) -> Result<MqttHandle, MqttError> {
    let spool = match (&cfg.primary_host_id, store_dir) {
        (Some(_), Some(dir)) => Some(
            spool::Spool::open(dir.to_path_buf())
                .map_err(|e| MqttError(format!("store {}: {e}", dir.display())))?,
        ),
        _ => None,
    };
    let stats = Arc::new(Stats::default());
    let s = stats.clone();
    api.set_mqtt_status(Arc::new(move || s.status()));
    let broker = cfg.broker().map_err(MqttError)?;
    let tls = if broker.tls {
        Some(link::tls_config(
            cfg.tls.as_ref().and_then(|t| t.ca.as_deref()),
        )?)
    } else {
        None
    };
    let opts = link::LinkOptions::edge(&cfg, password);
    let (client, events, link_task) = link::start(opts, &broker, tls, stats.clone());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    stats
        .stored
        .store(spool.as_ref().map_or(0, |s| s.records()), Ordering::Relaxed);
    let edge = edge::Edge::new(api, cfg, client, stats, interval, spool);
    let task = tokio::spawn(edge.run(events, stop_rx, link_task));
    Ok(MqttHandle { stop, task })
}

/// Reads a CA file for [`link::tls_config`].
fn read_pem(path: &Path) -> Result<Vec<u8>, MqttError> {
    std::fs::read(path).map_err(|e| MqttError(format!("mqtt.tls.ca {}: {e}", path.display())))
}
