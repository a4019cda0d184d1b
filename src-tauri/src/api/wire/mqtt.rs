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
