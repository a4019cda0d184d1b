//! Getting values: one subscription with monitored items for every tag (created in batches),
//! and the bulk-Read fallback for servers that refuse subscriptions or when `acquisition: poll`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use opcua::client::{MonitoredItemMap, OnSubscriptionNotificationCore, Session};
use opcua::types::{
    AttributeId, DataChangeNotification, Error, ExtensionObject, MonitoredItemCreateRequest,
    MonitoringMode, MonitoringParameters, NodeId, NotificationMessage, NumericRange, QualifiedName,
    ReadValueId, TimestampsToReturn,
};

use crate::live::{Cache, ValueUpdate};
use crate::plc::discovery::{read_values, DiscoveredTag, OpLimits, MAX_PER_CALL};
use crate::plc::values::data_value_to_tag_value;

/// Monitored-item queue size: more than 1, so two changes landing in one publishing interval
/// (timer jitter) are both delivered instead of one overwriting the other.
pub const QUEUE_SIZE: u32 = 10;

/// Delivers one publish response into the cache as one batch (one lock, one notification).
struct Sink {
    plc: String,
    cache: Cache,
    /// Tag names by client handle − 1.
    names: Arc<Vec<String>>,
    /// Values received (diagnostics, benches).
    received: Arc<AtomicU64>,
}

impl OnSubscriptionNotificationCore for Sink {
    fn on_subscription_notification(
        &mut self,
        notification: NotificationMessage,
        _items: MonitoredItemMap<'_>,
    ) {
        let now = Utc::now();
        let mut updates = Vec::new();
        for obj in notification.notification_data.into_iter().flatten() {
            let obj: ExtensionObject = obj;
            let Some(dc) = obj.into_inner_as::<DataChangeNotification>() else {
                continue;
            };
            for item in dc.monitored_items.into_iter().flatten() {
                let Some(name) = (item.client_handle as usize)
                    .checked_sub(1)
                    .and_then(|i| self.names.get(i))
                else {
                    continue;
                };
                updates.push(ValueUpdate {
                    tag: name.clone(),
                    value: data_value_to_tag_value(&item.value, now),
                });
            }
        }
        if !updates.is_empty() {
            self.received
                .fetch_add(updates.len() as u64, Ordering::Relaxed);
            self.cache.update(&self.plc, updates);
        }
    }
}

/// Creates one subscription publishing every `interval` and a monitored item per tag, in
/// batches of the server's MaxMonitoredItemsPerCall (≤ 1000). Returns the indices of tags the
/// server refused to monitor (to be polled instead).
pub async fn subscribe(
    session: &Arc<Session>,
    plc: &str,
    cache: &Cache,
    tags: &[DiscoveredTag],
    interval: Duration,
    limits: &OpLimits,
    received: &Arc<AtomicU64>,
) -> Result<Vec<usize>, Error> {
    let names: Arc<Vec<String>> = Arc::new(tags.iter().map(|t| t.meta.name.clone()).collect());
    let interval_ms = interval.as_secs_f64() * 1000.0;
    // Keep-alive about every 10 s; lifetime 3× that (as the spec requires at least).
    let keep_alive = ((10_000.0 / interval_ms).ceil() as u32).clamp(1, 1000);
    let sub = session
        .create_subscription(
            interval,
            keep_alive * 3,
            keep_alive,
            0,
            0,
            true,
            Sink {
                plc: plc.to_string(),
                cache: cache.clone(),
                names,
                received: received.clone(),
            },
        )
        .await?;
    // Sampling = publishing interval (what an S7 is commonly set up for). Sampling at half the
    // interval was measured too and did not lower the latency (docs/performance.md).
    let sampling_interval = interval_ms;
    let items: Vec<MonitoredItemCreateRequest> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| MonitoredItemCreateRequest {
            item_to_monitor: ReadValueId {
                node_id: t.node.clone(),
                attribute_id: AttributeId::Value as u32,
                index_range: NumericRange::None,
                data_encoding: QualifiedName::null(),
            },
            monitoring_mode: MonitoringMode::Reporting,
            requested_parameters: MonitoringParameters {
                client_handle: i as u32 + 1,
                sampling_interval,
                filter: ExtensionObject::null(),
                queue_size: QUEUE_SIZE,
                discard_oldest: true,
            },
        })
        .collect();
    let chunk = limits.monitored_items_per_call.clamp(1, MAX_PER_CALL);
    let mut refused = Vec::new();
    let mut offset = 0;
    for batch in items.chunks(chunk) {
        let results = session
            .create_monitored_items(sub, TimestampsToReturn::Both, batch.to_vec())
            .await?;
        for (k, r) in results.iter().enumerate() {
            if !r.result.status_code.is_good() {
                refused.push(offset + k);
            }
        }
        // A short answer means the rest were not created.
        for k in results.len()..batch.len() {
            refused.push(offset + k);
        }
        offset += batch.len();
    }
    session.trigger_publish_now();
    Ok(refused)
}

/// One bulk Read of `nodes` into the cache.
pub async fn poll_once(
    session: &Session,
    plc: &str,
    cache: &Cache,
    names: &[String],
    nodes: &[NodeId],
    limits: &OpLimits,
    received: &AtomicU64,
) -> Result<(), Error> {
    let values = read_values(session, nodes, limits).await?;
    received.fetch_add(values.len() as u64, Ordering::Relaxed);
    let now = Utc::now();
    cache.update(
        plc,
        names.iter().zip(values.iter()).map(|(n, dv)| ValueUpdate {
            tag: n.clone(),
            value: data_value_to_tag_value(dv, now),
        }),
    );
    Ok(())
}
