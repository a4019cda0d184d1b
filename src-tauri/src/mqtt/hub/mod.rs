//! `stator hub`: the Sparkplug B central view. A host application that subscribes to
//! `spBv1.0/<group>/#` and feeds the live cache from the edge nodes' births and data, so the
//! rest of Stator (users, roles, park grants, alarms, history, UI, WebSocket API) runs
//! unchanged against the broker instead of the PLCs.
//!
//! The broker link is the edge node's ([`super::link`], without a will); what the messages mean
//! is [`state`]; metric ↔ cache conversion is [`decode`]. Writes are refused by the api unless
//! `hub.allow_writes`; then they leave here as a DCMD to the edge node that owns the park.

mod decode;
mod state;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{mpsc, watch};

use super::link::{self, LinkEvent, LinkOptions};
use super::sparkplug_b::{Metric, Payload};
use super::{values, MqttError, Stats, NAMESPACE};
use crate::api::{wire::HubStatus, Api, ApiError, HubLink};
use crate::code::Code;
use crate::config::BrokerAddr;
use state::{Counters, HubState, Routes};
pub use state::{MAX_EDGE_NODES, REBIRTH_EVERY};

/// Largest message accepted (a DBIRTH of 20,000 tags is about 1.5 MB).
const MAX_INCOMING: usize = 16 * 1024 * 1024;
/// Received messages waiting for the hub; beyond it they are dropped and counted (the next
/// message of that edge node then shows a seq gap, and a rebirth repairs the picture).
const INBOX: usize = 4096;

/// The running hub: stopped like the edge node's publisher (disconnect, bounded: 3 s).
pub use super::MqttHandle as HubHandle;

/// What the api sees of the hub: `health` and the write route.
struct Link {
    client: AsyncClient,
    group: String,
    stats: Arc<Stats>,
    counters: Arc<Counters>,
    routes: Routes,
}

impl HubLink for Link {
    fn status(&self) -> HubStatus {
        let g = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        let state = match self.stats.state.load(Ordering::Relaxed) {
            super::ONLINE => "online",
            super::STOPPED => "stopped",
            _ => "connecting",
        };
        HubStatus {
            state,
            error: (state == "connecting")
                .then(|| self.stats.error.lock().clone())
                .flatten(),
            group: self.group.clone(),
            edge_nodes: c.edge_nodes.load(Ordering::Relaxed),
            parks_fed: c.parks_fed.load(Ordering::Relaxed),
            messages: g(&c.messages),
            metrics: g(&c.metrics),
            malformed: g(&c.malformed),
            foreign: g(&c.foreign),
            seq_gaps: g(&c.seq_gaps),
            rebirths_requested: g(&c.rebirths_requested),
            collisions: g(&c.collisions),
            unmapped: g(&c.unmapped),
            truncated: g(&c.truncated),
            dropped: g(&self.stats.rejected),
        }
    }

    fn write(&self, park: &str, node: &str, value: &serde_json::Value) -> Result<(), ApiError> {
        let route =
            self.routes.read().get(park).cloned().ok_or_else(|| {
                ApiError::not_connected(format!("{park} is fed by no edge node now"))
            })?;
        if node.contains('[') {
            return Err(ApiError::invalid(
                "array elements are not written over Sparkplug; write the whole tag",
            ));
        }
        let dt = *route
            .types
            .get(node)
            .ok_or_else(|| ApiError::not_found(format!("no node {node:?} on {park}")))?;
        let v = values::encode(dt, value).ok_or_else(|| {
            ApiError::invalid(format!("{value} does not fit the Sparkplug type of {node}"))
        })?;
        let p = Payload {
            timestamp: Some(values::millis(chrono::Utc::now())),
            metrics: vec![Metric {
                name: Some(node.to_string()),
                datatype: Some(dt),
                timestamp: Some(values::millis(chrono::Utc::now())),
                value: Some(v),
                ..Default::default()
            }],
            ..Default::default()
        };
        let topic = format!(
            "{NAMESPACE}/{}/DCMD/{}/{}",
            self.group, route.edge, route.device
        );
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, p.encode_to_vec())
            .map_err(|e| ApiError::new(Code::Unavailable, format!("the broker queue: {e}")))
    }
}

/// Starts the hub for the Sparkplug `group` on `broker` over `api` (its cache, its `hub`
/// configuration); `password` is the secret `mqtt/hub`. Returns at once: the broker may be
/// down; the link retries with backoff and `health.hub` says so.
pub fn start(
    api: Api,
    broker: &BrokerAddr,
    group: String,
    password: Option<String>,
) -> Result<HubHandle, MqttError> {
    let hc = api.config().hub.clone().unwrap_or_default();
    let tls = if broker.tls {
        Some(link::tls_config(
            hc.tls.as_ref().and_then(|t| t.ca.as_deref()),
        )?)
    } else {
        None
    };
    let client_id = hc.client_id.clone().unwrap_or_else(|| {
        let mut b = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        format!("stator-hub-{}", hex::encode(b))
    });
    let opts = LinkOptions {
        client_id,
        username: hc.username.clone(),
        password,
        will_topic: None,
        max_incoming: MAX_INCOMING,
        inbox: INBOX,
    };
    let stats = Arc::new(Stats::default());
    let (client, events, link_task) = link::start(opts, broker, tls, stats.clone());
    let counters = Arc::new(Counters::default());
    let routes = Routes::default();
    let hub = Arc::new(Link {
        client: client.clone(),
        group: group.clone(),
        stats,
        counters: counters.clone(),
        routes: routes.clone(),
    });
    api.set_hub(hub.clone());
    let state = HubState::new(group, api.cache().clone(), routes, counters);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(run(api, hub, state, events, stop_rx, link_task));
    Ok(HubHandle { stop, task })
}

async fn run(
    api: Api,
    hub: Arc<Link>,
    mut state: HubState,
    mut events: mpsc::Receiver<LinkEvent>,
    mut stop: watch::Receiver<bool>,
    link_task: tokio::task::JoinHandle<()>,
) {
    let mut cfg = api.config();
    let mut cfg_rx = api.running_config().subscribe();
    let mut cfg_alive = true;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let all = format!("{NAMESPACE}/{}/#", hub.group);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            ev = events.recv() => match ev {
                Some(LinkEvent::Message(t, p)) => state.on_message(&cfg, &t, &p, Instant::now()),
                Some(LinkEvent::Up(_)) => {
                    tracing::info!(topic = all, "mqtt hub: connected; subscribing");
                    if let Err(e) = hub.client.try_subscribe(all.clone(), QoS::AtMostOnce) {
                        tracing::warn!(error = %e, "mqtt hub: cannot subscribe");
                    }
                    hub.stats.set_state(super::ONLINE);
                    state.rebirth_all(Instant::now());
                }
                Some(LinkEvent::Down) => state.on_link_down("the hub's broker link is down"),
                None => break,
            },
            _ = tick.tick() => state.on_tick(Instant::now()),
            r = cfg_rx.changed(), if cfg_alive => match r {
                Ok(()) => {
                    let new = cfg_rx.borrow_and_update().clone();
                    state.on_config(&cfg, &new, Instant::now());
                    cfg = new;
                }
                Err(_) => cfg_alive = false,
            },
        }
        for edge in state.take_rebirths() {
            let topic = format!("{NAMESPACE}/{}/NCMD/{edge}", hub.group);
            if let Err(e) =
                hub.client
                    .try_publish(topic, QoS::AtLeastOnce, false, state::rebirth_payload())
            {
                tracing::warn!(edge, error = %e, "mqtt hub: cannot ask for a rebirth");
            }
        }
    }
    hub.stats.set_state(super::STOPPED);
    let _ = hub.client.try_disconnect();
    drop(events);
    let _ = tokio::time::timeout(Duration::from_secs(2), link_task).await;
}
