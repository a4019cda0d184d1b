//! Per-PLC diagnostics the engine keeps as it runs (connects, last error, discovery time,
//! acquisition mode, values received, round-trip times) and the one small read that measures a
//! round trip: the server's `ServerStatus` (state, build info, current time → clock drift), and
//! the server certificate its endpoint carried at the last connect (expiry).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opcua::types::{
    AttributeId, NodeId, NumericRange, QualifiedName, ReadValueId, TimestampsToReturn, Variant,
};
use parking_lot::Mutex;
use serde::Serialize;

use crate::plc::engine::Engine;
use crate::plc::values::status_name;
use crate::plc::WriteError;

/// Round-trip times kept per PLC for p50/max.
const RTT_KEPT: usize = 64;
/// A server certificate with fewer days left than this is flagged (`expires_soon`): enough
/// time to order and install a new one on the PLC.
pub const CERT_WARN_DAYS: i64 = 30;

/// Counters of one PLC connection, updated by its task.
#[derive(Debug, Default)]
pub struct PlcDiag {
    /// Sessions established (the first connect plus every reconnect).
    pub connects: AtomicU64,
    /// Value notifications and polled values taken.
    pub received: Arc<AtomicU64>,
    pub discovery_ms: AtomicU64,
    pub monitored_items: AtomicU64,
    pub polled_items: AtomicU64,
    /// Subscriptions were refused as a whole and everything is polled.
    pub polling_fallback: AtomicBool,
    inner: Mutex<DiagInner>,
}

#[derive(Debug, Default)]
struct DiagInner {
    last_error: Option<(String, DateTime<Utc>)>,
    connected_at: Option<(Instant, u64)>,
    /// When the session was last established or lost.
    state_since: Option<DateTime<Utc>>,
    rtt_ms: VecDeque<f64>,
    /// What the endpoint of the last established session said about the server certificate:
    /// `(subject, not_after)`, or why there is none. `None` before the first connect.
    server_cert: Option<Result<(String, DateTime<Utc>), String>>,
}

impl PlcDiag {
    pub(crate) fn error(&self, e: &str) {
        self.inner.lock().last_error = Some((e.to_string(), Utc::now()));
    }
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        let mut i = self.inner.lock();
        i.connected_at = Some((Instant::now(), self.received.load(Ordering::Relaxed)));
        i.state_since = Some(Utc::now());
    }
    pub(crate) fn lost(&self) {
        let mut i = self.inner.lock();
        if i.connected_at.take().is_some() {
            i.state_since = Some(Utc::now());
        }
    }
    /// Records the server certificate of the session just established.
    pub(crate) fn server_cert(&self, c: Result<(String, DateTime<Utc>), String>) {
        self.inner.lock().server_cert = Some(c);
    }

    /// The server certificate as of `now`, or why there is none.
    pub fn certificate(&self, now: DateTime<Utc>) -> Result<ServerCertificate, String> {
        match &self.inner.lock().server_cert {
            None => Err("not connected yet".into()),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok((subject, not_after))) => Ok(ServerCertificate::new(subject, *not_after, now)),
        }
    }

    fn rtt(&self, d: Duration) {
        let mut i = self.inner.lock();
        if i.rtt_ms.len() == RTT_KEPT {
            i.rtt_ms.pop_front();
        }
        i.rtt_ms.push_back(d.as_secs_f64() * 1000.0);
    }

    /// The figures as of now.
    pub fn report(&self) -> DiagReport {
        let i = self.inner.lock();
        let mut sorted: Vec<f64> = i.rtt_ms.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let received = self.received.load(Ordering::Relaxed);
        let values_per_s = i.connected_at.map(|(t, n)| {
            let s = t.elapsed().as_secs_f64();
            if s > 0.0 {
                received.saturating_sub(n) as f64 / s
            } else {
                0.0
            }
        });
        DiagReport {
            reconnects: self.connects.load(Ordering::Relaxed).saturating_sub(1),
            state_since: i.state_since,
            last_error: i.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: i.last_error.as_ref().map(|(_, t)| *t),
            rtt_last_ms: i.rtt_ms.back().copied(),
            rtt_p50_ms: sorted.get(sorted.len() / 2).copied(),
            rtt_max_ms: sorted.last().copied(),
            values_received: received,
            values_per_s,
            discovery_ms: self.discovery_ms.load(Ordering::Relaxed),
            monitored_items: self.monitored_items.load(Ordering::Relaxed),
            polled_items: self.polled_items.load(Ordering::Relaxed),
            polling_fallback: self.polling_fallback.load(Ordering::Relaxed),
        }
    }
}

/// The counters of one PLC (wire shape of the diagnostics reply's `engine` part).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiagReport {
    pub reconnects: u64,
    /// When the session was last established (connected since) or lost (not connected since);
    /// `None` before the first connect.
    pub state_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub rtt_last_ms: Option<f64>,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub values_received: u64,
    /// Average since the current connection was established.
    pub values_per_s: Option<f64>,
    pub discovery_ms: u64,
    pub monitored_items: u64,
    pub polled_items: u64,
    pub polling_fallback: bool,
}

/// The PLC's application instance certificate (from the endpoint the session was opened on;
/// with security None a server that has a certificate still sends it there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerCertificate {
    /// The subject as an RFC 4514-like string (`CN=…/O=…`).
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    /// Fewer than [`CERT_WARN_DAYS`] days left (or expired).
    pub expires_soon: bool,
}

impl ServerCertificate {
    pub fn new(subject: &str, not_after: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let days_left = (not_after - now).num_days();
        ServerCertificate {
            subject: subject.to_string(),
            not_after,
            days_left,
            expires_soon: days_left < CERT_WARN_DAYS,
        }
    }
}

/// What one `ServerStatus` read returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerStatus {
    /// `Running`, `Failed`, … (OPC UA ServerState), or the number when unknown.
    pub state: Option<String>,
    pub product_name: Option<String>,
    pub software_version: Option<String>,
    pub build_date: Option<DateTime<Utc>>,
    pub current_time: Option<DateTime<Utc>>,
    /// Server time minus Stator's time at the middle of the round trip, in milliseconds.
    pub clock_drift_ms: Option<i64>,
    pub rtt_ms: f64,
}

// Server_ServerStatus_State, _CurrentTime, _BuildInfo_ProductName, _SoftwareVersion, _BuildDate.
const STATUS_NODES: [u32; 5] = [2259, 2258, 2261, 2264, 2266];

fn state_name(n: i32) -> String {
    match n {
        0 => "Running",
        1 => "Failed",
        2 => "NoConfiguration",
        3 => "Suspended",
        4 => "Shutdown",
        5 => "Test",
        6 => "CommunicationFault",
        _ => return n.to_string(),
    }
    .to_string()
}

impl Engine {
    /// The counters of `plc`.
    pub fn diagnostics(&self, plc: &str) -> Option<DiagReport> {
        self.plcs.get(plc).map(|s| s.diag.report())
    }

    /// The server certificate `plc`'s last session was opened with, or why there is none.
    pub fn server_certificate(&self, plc: &str) -> Result<ServerCertificate, String> {
        match self.plcs.get(plc) {
            Some(s) => s.diag.certificate(Utc::now()),
            None => Err(format!("no PLC {plc:?}")),
        }
    }

    /// One read round trip: the server's `ServerStatus` (also recorded as an RTT sample).
    pub async fn server_status(&self, plc: &str) -> Result<ServerStatus, WriteError> {
        let Some(shared) = self.plcs.get(plc) else {
            return Err(WriteError::NotFound(format!("no PLC {plc:?}")));
        };
        let Some(live) = shared.live.read().clone() else {
            return Err(WriteError::NotConnected(format!("{plc} is not connected")));
        };
        let ids: Vec<ReadValueId> = STATUS_NODES
            .iter()
            .map(|&i| ReadValueId {
                node_id: NodeId::new(0, i),
                attribute_id: AttributeId::Value as u32,
                index_range: NumericRange::None,
                data_encoding: QualifiedName::null(),
            })
            .collect();
        let sent = Utc::now();
        let t0 = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            live.session.read(&ids, TimestampsToReturn::Neither, 0.0),
        )
        .await;
        let rtt = t0.elapsed();
        let values = match r {
            Err(_) => return Err(WriteError::NotConnected(format!("{plc}: timeout"))),
            Ok(Err(e)) => {
                return Err(WriteError::NotConnected(format!(
                    "{plc}: read failed ({})",
                    status_name(e.status())
                )))
            }
            Ok(Ok(v)) => v,
        };
        shared.diag.rtt(rtt);
        let v = |i: usize| values.get(i).and_then(|dv| dv.value.clone());
        // A null string is absent (its Display would say "[null]").
        let text = |i: usize| {
            match v(i) {
                Some(Variant::String(s)) => s.value().clone(),
                Some(Variant::LocalizedText(t)) => t.text.value().clone(),
                _ => None,
            }
            .filter(|s| !s.is_empty())
        };
        let time = |i: usize| match v(i) {
            Some(Variant::DateTime(d)) if !d.is_null() => Some(d.as_chrono()),
            _ => None,
        };
        let current_time = time(1);
        let middle = sent + chrono::Duration::from_std(rtt / 2).unwrap_or_default();
        Ok(ServerStatus {
            state: match v(0) {
                Some(Variant::Int32(n)) => Some(state_name(n)),
                Some(Variant::UInt32(n)) => Some(state_name(n as i32)),
                _ => None,
            },
            product_name: text(2),
            software_version: text(3),
            build_date: time(4),
            current_time,
            clock_drift_ms: current_time.map(|t| (t - middle).num_milliseconds()),
            rtt_ms: rtt.as_secs_f64() * 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_percentiles_and_reconnects() {
        let d = PlcDiag::default();
        assert_eq!(d.report().reconnects, 0);
        d.connected();
        d.connected();
        for ms in [5, 1, 9] {
            d.rtt(Duration::from_millis(ms));
        }
        let r = d.report();
        assert_eq!(r.reconnects, 1);
        let up = r.state_since.expect("connected since");
        d.lost();
        let down = d.report().state_since.expect("lost since");
        assert!(down >= up);
        d.lost();
        assert_eq!(
            d.report().state_since,
            Some(down),
            "a second loss is no new state"
        );
        assert_eq!(r.rtt_p50_ms, Some(5.0));
        assert_eq!(r.rtt_max_ms, Some(9.0));
        assert_eq!(r.rtt_last_ms, Some(9.0));
        assert!(r.values_per_s.is_some());
        for _ in 0..200 {
            d.rtt(Duration::from_millis(1));
        }
        assert_eq!(d.inner.lock().rtt_ms.len(), RTT_KEPT);
    }

    #[test]
    fn certificate_days_left_and_warning() {
        let d = PlcDiag::default();
        let now = Utc::now();
        assert!(
            d.certificate(now).is_err(),
            "nothing before the first connect"
        );
        d.server_cert(Ok(("CN=plc".into(), now + chrono::Duration::days(400))));
        let c = d.certificate(now).unwrap();
        assert_eq!((c.days_left, c.expires_soon), (400, false));
        let c = ServerCertificate::new("CN=plc", now + chrono::Duration::hours(29 * 24 + 1), now);
        assert_eq!((c.days_left, c.expires_soon), (29, true));
        let c = ServerCertificate::new("CN=plc", now - chrono::Duration::days(2), now);
        assert_eq!((c.days_left, c.expires_soon), (-2, true));
        d.server_cert(Err("the server sent no certificate".into()));
        assert_eq!(
            d.certificate(now),
            Err("the server sent no certificate".to_string())
        );
    }
}
