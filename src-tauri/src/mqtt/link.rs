//! The broker connection: rumqttc's event loop in its own task, reconnecting with exponential
//! backoff (1 s … 30 s). Each connection attempt carries the NDEATH will with the next `bdSeq`,
//! so the NBIRTH that follows a CONNACK names the same `bdSeq` as the will the broker holds.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, Transport};
use tokio::sync::mpsc;

use super::sparkplug_b::{metric, Metric, Payload};
use super::{values, MqttError, Stats, NAMESPACE};
use crate::config::{BrokerAddr, MqttConfig};

/// Requests the client queues before `try_publish` fails (then the message is dropped and
/// counted): births and one DDATA per park per broadcast interval fit many times over.
const QUEUE: usize = 512;
/// Largest message accepted from the broker (commands are small; anything bigger is refused).
const MAX_INCOMING: usize = 256 * 1024;
/// Largest message sent (a DBIRTH of 20,000 tags is a few MB).
const MAX_OUTGOING: usize = 64 * 1024 * 1024;
/// Received messages waiting for the edge node; beyond it they are dropped and counted.
const INBOX: usize = 256;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What the link tells the edge node.
pub enum LinkEvent {
    /// A broker session started; the will carries this `bdSeq`.
    Up(u64),
    /// The session ended (or an attempt failed).
    Down,
    /// A message on a subscribed topic.
    Message(String, bytes::Bytes),
}

/// The NDEATH payload for `bd_seq` (the will, and what a clean shutdown sends).
pub fn ndeath(bd_seq: u64) -> Vec<u8> {
    Payload {
        timestamp: Some(values::millis(chrono::Utc::now())),
        metrics: vec![bd_seq_metric(bd_seq)],
        ..Default::default()
    }
    .encode_to_vec()
}

/// The `bdSeq` node metric.
pub fn bd_seq_metric(bd_seq: u64) -> Metric {
    Metric {
        name: Some("bdSeq".into()),
        datatype: Some(values::INT64),
        timestamp: Some(values::millis(chrono::Utc::now())),
        value: Some(metric::Value::LongValue(bd_seq)),
        ..Default::default()
    }
}

pub fn node_topic(cfg: &MqttConfig, kind: &str) -> String {
    format!("{NAMESPACE}/{}/{kind}/{}", cfg.group_id, cfg.edge_node_id)
}

/// A rustls client configuration (ring) trusting `ca` or the operating system's roots.
pub fn tls_config(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let pem = super::read_pem(path)?;
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| MqttError(format!("mqtt.tls.ca: {e}")))?;
                roots
                    .add(c)
                    .map_err(|e| MqttError(format!("mqtt.tls.ca: {e}")))?;
            }
            if roots.is_empty() {
                return Err(MqttError(format!(
                    "mqtt.tls.ca {}: no certificate in it",
                    path.display()
                )));
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Who connects and how: an edge node (with its NDEATH will) or the hub (a host application,
/// no will).
pub struct LinkOptions {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The NDEATH will's topic (an edge node); `None` for the hub.
    pub will_topic: Option<String>,
    /// Largest message accepted from the broker.
    pub max_incoming: usize,
    /// Received messages waiting for their consumer; beyond it they are dropped and counted
    /// (`Stats::rejected`).
    pub inbox: usize,
}

impl LinkOptions {
    /// An edge node's link for `cfg`.
    pub fn edge(cfg: &MqttConfig, password: Option<String>) -> Self {
        Self {
            client_id: cfg.client_id(),
            username: cfg.username.clone(),
            password,
            will_topic: Some(node_topic(cfg, "NDEATH")),
            max_incoming: MAX_INCOMING,
            inbox: INBOX,
        }
    }
}

/// Creates the client and starts the event loop task.
pub fn start(
    opts: LinkOptions,
    broker: &BrokerAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    stats: Arc<Stats>,
) -> (
    AsyncClient,
    mpsc::Receiver<LinkEvent>,
    tokio::task::JoinHandle<()>,
) {
    let mut o = MqttOptions::new(opts.client_id, broker.host.clone(), broker.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_max_packet_size(opts.max_incoming, MAX_OUTGOING);
    if let Some(user) = opts.username {
        o.set_credentials(user, opts.password.unwrap_or_default());
    }
    if let Some(t) = tls {
        o.set_transport(Transport::Tls(rumqttc::TlsConfiguration::Rustls(t)));
    }
    if let Some(will_topic) = &opts.will_topic {
        o.set_last_will(LastWill::new(
            will_topic,
            ndeath(0),
            QoS::AtLeastOnce,
            false,
        ));
    }
    let (client, el) = AsyncClient::new(o, QUEUE);
    let (tx, rx) = mpsc::channel(opts.inbox.max(1));
    let task = tokio::spawn(drive(el, opts.will_topic, tx, stats));
    (client, rx, task)
}

/// Polls the event loop until the edge node goes away or the client disconnected cleanly.
async fn drive(
    mut el: EventLoop,
    will_topic: Option<String>,
    tx: mpsc::Sender<LinkEvent>,
    stats: Arc<Stats>,
) {
    let mut bd_seq = 0u64;
    let mut backoff = Duration::from_secs(1);
    loop {
        match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_secs(1);
                *stats.error.lock() = None;
                tracing::info!(bd_seq, "mqtt: connected to the broker");
                if tx.send(LinkEvent::Up(bd_seq)).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.try_send(LinkEvent::Message(p.topic, p.payload)).is_err() {
                    Stats::count(&stats.rejected, 1);
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if tx.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "mqtt: broker link down");
                *stats.error.lock() = Some(e.to_string());
                stats.set_state(super::CONNECTING);
                let _ = tx.send(LinkEvent::Down).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                // The next session's will names the next birth/death sequence number.
                bd_seq = (bd_seq + 1) % 256;
                if let Some(t) = &will_topic {
                    el.mqtt_options.set_last_will(LastWill::new(
                        t,
                        ndeath(bd_seq),
                        QoS::AtLeastOnce,
                        false,
                    ));
                }
            }
        }
    }
}
