//! What `health` tells about the MQTT (Sparkplug B) link, when one is configured.

use serde::Serialize;

/// The broker link: `state` is `connecting` (no broker session yet, or retrying with backoff),
/// `waiting_for_host` (connected, the primary host application is not online: data goes to the
/// on-disk store), `online` (births published, data flowing) or `stopped`.
#[derive(Debug, Clone, Serialize)]
pub struct MqttStatus {
    pub state: &'static str,
    /// Why the last connection attempt failed (while `connecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sparkplug messages handed to the MQTT client.
    pub published: u64,
    /// Messages or samples dropped because the broker (or the client's queue) could not keep up.
    pub dropped: u64,
    /// Malformed, foreign or refused commands received.
    pub rejected: u64,
    /// DDATA messages waiting on disk for the primary host.
    pub stored: u64,
    /// Stored messages dropped because the on-disk store was full (oldest first).
    pub store_dropped: u64,
}

/// `stator hub`, the Sparkplug B central view: its broker link and what it made of the
/// traffic. `state` is `connecting` (no broker session yet, or retrying with backoff),
/// `online` (subscribed to the group) or `stopped`.
#[derive(Debug, Clone, Serialize)]
pub struct HubStatus {
    pub state: &'static str,
    /// Why the last connection attempt failed (while `connecting`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The Sparkplug group subscribed to (`spBv1.0/<group>/#`).
    pub group: String,
    /// Edge nodes born now (NBIRTH seen, no NDEATH since).
    pub edge_nodes: usize,
    /// Parks fed by a born device now.
    pub parks_fed: usize,
    /// Sparkplug messages received and metrics applied to the live cache.
    pub messages: u64,
    pub metrics: u64,
    /// Payloads that did not decode, or births/data that made no sense (logged, ignored).
    pub malformed: u64,
    /// Messages on topics that are not Sparkplug B of the group (ignored).
    pub foreign: u64,
    /// Messages whose `seq` was not the one expected (each triggers a rebirth request).
    pub seq_gaps: u64,
    /// `Node Control/Rebirth` commands sent (rate-limited per edge node).
    pub rebirths_requested: u64,
    /// DBIRTHs refused because another edge node's device feeds that park now.
    pub collisions: u64,
    /// Messages of devices that feed no configured park (ignored).
    pub unmapped: u64,
    /// Metrics left out of a DBIRTH beyond `hub.max_tags_per_park`, or of edge nodes beyond
    /// the hub's bound.
    pub truncated: u64,
    /// Messages dropped because the hub could not keep up (the broker link's bounded inbox).
    pub dropped: u64,
}
