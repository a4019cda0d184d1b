//! Prometheus metrics for `/metrics` (prometheus-client, text exposition format).
//!
//! Below both `api` (the dispatcher counts logins and writes) and `remote` (clients, messages,
//! encodes), so neither has to import the other.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::live::{Cache, PlcStatus};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlcLabel {
    plc: String,
    status: String,
}

struct Inner {
    registry: Registry,
    clients: Gauge,
    messages_out: Counter,
    bytes_out: Counter,
    encodes: Counter,
    slow_closed: Counter,
    connections_shed: Counter,
    value_changes: Counter,
    logins: Family<ResultLabel, Counter>,
    writes: Family<ResultLabel, Counter>,
    plc_status: Family<PlcLabel, Gauge>,
    /// The historian's counters, copied in before each render (`history` sits beside this
    /// module, not below it): stored, dropped, lagged_batches, queued.
    history: [Gauge; 4],
}

/// Counters and gauges of the remote server and the dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every Stator metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let clients = Gauge::default();
        let messages_out = Counter::default();
        let bytes_out = Counter::default();
        let encodes = Counter::default();
        let slow_closed = Counter::default();
        let connections_shed = Counter::default();
        let value_changes = Counter::default();
        let logins = Family::<ResultLabel, Counter>::default();
        let writes = Family::<ResultLabel, Counter>::default();
        let plc_status = Family::<PlcLabel, Gauge>::default();
        registry.register(
            "stator_remote_clients",
            "Authenticated WebSocket clients connected now",
            clients.clone(),
        );
        registry.register(
            "stator_remote_messages_out",
            "WebSocket text frames sent (snapshots, updates, replies)",
            messages_out.clone(),
        );
        registry.register(
            "stator_remote_bytes_out",
            "Bytes of WebSocket text frames sent",
            bytes_out.clone(),
        );
        registry.register(
            "stator_remote_update_encodes",
            "Update frames encoded (once per distinct park set and broadcast)",
            encodes.clone(),
        );
        registry.register(
            "stator_remote_slow_clients_closed",
            "WebSocket clients closed because they stayed behind",
            slow_closed.clone(),
        );
        registry.register(
            "stator_remote_connections_shed",
            "Connections closed at once because the connection cap was reached",
            connections_shed.clone(),
        );
        registry.register(
            "stator_value_changes",
            "Tag value changes seen by the broadcaster (rate() gives changes/s)",
            value_changes.clone(),
        );
        registry.register(
            "stator_logins",
            "Login attempts by result (ok or an error code)",
            logins.clone(),
        );
        registry.register(
            "stator_writes",
            "PLC write attempts by result (ok or an error code)",
            writes.clone(),
        );
        registry.register(
            "stator_plc_status",
            "1 for the current connection status of each PLC",
            plc_status.clone(),
        );
        let history: [Gauge; 4] = Default::default();
        for (g, (name, help)) in history.iter().zip([
            (
                "stator_history_samples_stored",
                "Samples the historian committed to disk",
            ),
            (
                "stator_history_samples_dropped",
                "Samples the historian dropped because the disk could not keep up",
            ),
            (
                "stator_history_batches_lagged",
                "Sample batches the historian missed because it fell behind the live values",
            ),
            (
                "stator_history_queued",
                "Samples waiting for the historian's writer",
            ),
        ]) {
            registry.register(name, help, g.clone());
        }
        Self {
            inner: Arc::new(Inner {
                history,
                registry,
                clients,
                messages_out,
                bytes_out,
                encodes,
                slow_closed,
                connections_shed,
                value_changes,
                logins,
                writes,
                plc_status,
            }),
        }
    }

    /// One login attempt ended with `result` (`ok` or an error code).
    pub fn login_result(&self, result: &str) {
        self.inner
            .logins
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// One write attempt ended with `result` (`ok` or an error code).
    pub fn write_result(&self, result: &str) {
        self.inner
            .writes
            .get_or_create(&ResultLabel {
                result: result.into(),
            })
            .inc();
    }

    /// A client finished authenticating (+1) or left (-1).
    pub fn client_delta(&self, d: i64) {
        self.inner.clients.inc_by(d);
    }

    /// A frame of `bytes` went out.
    pub fn sent(&self, bytes: usize) {
        self.inner.messages_out.inc();
        self.inner.bytes_out.inc_by(bytes as u64);
    }

    /// One update frame was encoded.
    pub fn encoded(&self) {
        self.inner.encodes.inc();
    }

    /// A slow client was closed.
    pub fn slow_closed(&self) {
        self.inner.slow_closed.inc();
    }

    /// A connection was closed at once because the connection cap was reached.
    pub fn connection_shed(&self) {
        self.inner.connections_shed.inc();
    }

    /// Copies the historian's counters in (see `Inner::history`).
    pub fn set_history(&self, stored: u64, dropped: u64, lagged: u64, queued: u64) {
        for (g, v) in self
            .inner
            .history
            .iter()
            .zip([stored, dropped, lagged, queued])
        {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }

    /// `n` value changes passed through the broadcaster.
    pub fn value_changes(&self, n: u64) {
        self.inner.value_changes.inc_by(n);
    }

    /// The text exposition, with PLC states refreshed from `cache`.
    pub fn render(&self, cache: &Cache) -> String {
        for id in cache.plc_ids() {
            let now = cache.status(&id).unwrap_or_default();
            for s in [
                PlcStatus::Disconnected,
                PlcStatus::Connecting,
                PlcStatus::Connected,
                PlcStatus::Error,
            ] {
                self.inner
                    .plc_status
                    .get_or_create(&PlcLabel {
                        plc: id.clone(),
                        status: s.as_str().into(),
                    })
                    .set(i64::from(s == now));
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}
