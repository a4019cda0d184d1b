//! The Sparkplug B edge node: NBIRTH/DBIRTH, DDATA batched per broadcast interval, DDEATH when a
//! PLC drops and DBIRTH after rediscovery, NCMD rebirth, DCMD writes through the api's write
//! path, and the primary host's STATE.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rumqttc::{AsyncClient, QoS};
use std::sync::atomic::Ordering;
use tokio::sync::{broadcast, mpsc, watch, Semaphore};

use super::link::{self, LinkEvent};
use super::sparkplug_b::{metric, property_value, Metric, Payload};
use super::spool::Spool;
use super::values::{self, props};
use super::{Stats, NAMESPACE};
use crate::api::{Api, ApiError, Ctx, WriteReq};
use crate::auth::{Principal, Source};
use crate::config::MqttConfig;
use crate::live::{PlcStatus, SampleBatch};

/// Values kept per park between two DDATA messages; beyond it they are dropped and counted.
const MAX_PENDING: usize = 50_000;
/// Metrics one DCMD may carry.
const MAX_DCMD_METRICS: usize = 64;
/// DCMD writes in flight at once; more are refused (counted).
const MAX_WRITES: usize = 8;
pub const REBIRTH: &str = "Node Control/Rebirth";
/// The folder of alarm metrics: `Alarms/<alarm id>` in the DBIRTH of the alarm's park.
pub const ALARMS: &str = "Alarms/";
/// Alarm metrics' aliases start here within a device's alias range (tags count from 0).
const ALARM_ALIAS: u64 = 1 << 31;

/// The metric of one alarm: its ISA-18.2 state as a String (`normal`, `unack`, `acked`,
/// `rtn_unack`) with the properties `priority`, `shelved`, `outOfService` and `quality`.
fn alarm_metric(a: &crate::alarms::AlarmInfo) -> Metric {
    Metric {
        timestamp: Some(values::millis(chrono::Utc::now())),
        value: Some(metric::Value::StringValue(a.state.as_str().into())),
        properties: Some(props(vec![
            (
                "priority",
                property_value::Value::StringValue(a.priority.as_str().into()),
                values::STRING,
            ),
            (
                "shelved",
                property_value::Value::BooleanValue(a.shelved_until.is_some()),
                values::BOOLEAN,
            ),
            (
                "outOfService",
                property_value::Value::BooleanValue(a.out_of_service),
                values::BOOLEAN,
            ),
            (
                "quality",
                property_value::Value::StringValue(a.quality.as_str().into()),
                values::STRING,
            ),
        ])),
        ..Default::default()
    }
}

/// What was last sent for a metric: value, `is_null`, properties (the `quality`).
type Sent = (
    Option<metric::Value>,
    Option<bool>,
    Option<super::sparkplug_b::PropertySet>,
);

/// What a born device knows about its metrics.
struct Born {
    tags_version: u64,
    /// Tag name → (alias, Sparkplug datatype).
    by_name: HashMap<String, (u64, u32)>,
    by_alias: HashMap<u64, String>,
    /// The last value (and quality property) sent per alias: a sample equal to it is no
    /// change (the PLC reports unchanged values too, e.g. after a reconnect).
    last: HashMap<u64, Sent>,
    /// Alarm id → alias of its `Alarms/<id>` metric.
    alarms: HashMap<String, u64>,
}

struct Device {
    park: String,
    born: Option<Born>,
    pending: Vec<Metric>,
}

pub struct Edge {
    api: Api,
    cfg: MqttConfig,
    client: AsyncClient,
    stats: Arc<Stats>,
    interval: Duration,
    devices: Vec<Device>,
    /// A broker session is up, with this `bdSeq`.
    session: Option<u64>,
    /// NBIRTH went out in this session (and the host, if any, is online).
    node_born: bool,
    host_online: bool,
    seq: u64,
    writes: Arc<Semaphore>,
    /// Store and forward (only with a primary host and a store directory).
    spool: Option<Arc<parking_lot::Mutex<Spool>>>,
    /// Stored records taken from disk, waiting to be replayed.
    replay: VecDeque<(String, Vec<u8>)>,
    /// [`crate::alarms::Alarms::version`] when the alarm metrics were last compared.
    alarms_seen: Option<u64>,
}

/// Stored DDATA messages replayed per broadcast interval.
const REPLAY_PER_TICK: usize = 50;

impl Edge {
    pub fn new(
        api: Api,
        cfg: MqttConfig,
        client: AsyncClient,
        stats: Arc<Stats>,
        interval: Duration,
        spool: Option<Spool>,
    ) -> Self {
        let devices = api
            .cache()
            .plc_ids()
            .into_iter()
            .map(|park| Device {
                park,
                born: None,
                pending: Vec::new(),
            })
            .collect();
        Self {
            api,
            cfg,
            client,
            stats,
            interval,
            devices,
            session: None,
            node_born: false,
            host_online: false,
            seq: 0,
            writes: Arc::new(Semaphore::new(MAX_WRITES)),
            spool: spool.map(|s| Arc::new(parking_lot::Mutex::new(s))),
            replay: VecDeque::new(),
            alarms_seen: None,
        }
    }

    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<LinkEvent>,
        mut stop: watch::Receiver<bool>,
        link_task: tokio::task::JoinHandle<()>,
    ) {
        let mut samples = self.api.cache().samples();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                ev = events.recv() => match ev {
                    Some(ev) => self.on_link(ev),
                    None => break,
                },
                s = samples.recv() => match s {
                    Ok(batch) => self.on_samples(&batch),
                    Err(broadcast::error::RecvError::Lagged(n)) => Stats::count(&self.stats.dropped, n),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        // Clean shutdown: the death certificate, then DISCONNECT (the broker then discards the
        // will, so NDEATH is sent once).
        if let Some(bd) = self.session {
            let _ = self.client.try_publish(
                link::node_topic(&self.cfg, "NDEATH"),
                QoS::AtLeastOnce,
                false,
                link::ndeath(bd),
            );
            let _ = self.client.try_disconnect();
        }
        self.stats.set_state(super::STOPPED);
        drop(events);
        let _ = tokio::time::timeout(Duration::from_secs(2), link_task).await;
    }

    fn on_link(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Up(bd) => {
                self.session = Some(bd);
                self.node_born = false;
                self.host_online = false;
                for d in &mut self.devices {
                    d.born = None;
                    d.pending.clear();
                }
                let mut subs = vec![
                    link::node_topic(&self.cfg, "NCMD"),
                    format!(
                        "{NAMESPACE}/{}/DCMD/{}/+",
                        self.cfg.group_id, self.cfg.edge_node_id
                    ),
                ];
                if let Some(h) = &self.cfg.primary_host_id {
                    subs.push(format!("{NAMESPACE}/STATE/{h}"));
                    self.stats.set_state(super::WAITING);
                }
                for t in subs {
                    if let Err(e) = self.client.try_subscribe(t, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, "mqtt: cannot subscribe");
                    }
                }
                self.births();
            }
            LinkEvent::Down => {
                self.session = None;
                self.node_born = false;
            }
            LinkEvent::Message(topic, payload) => self.on_message(&topic, &payload),
        }
    }

    /// Births wait for a broker session and, with a primary host, for it to be online.
    fn may_publish(&self) -> bool {
        self.session.is_some() && (self.cfg.primary_host_id.is_none() || self.host_online)
    }

    fn publish(&mut self, topic: String, payload: Payload) -> bool {
        match self
            .client
            .try_publish(topic, QoS::AtMostOnce, false, payload.encode_to_vec())
        {
            Ok(()) => {
                Stats::count(&self.stats.published, 1);
                true
            }
            Err(_) => {
                Stats::count(&self.stats.dropped, 1);
                false
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq = (self.seq + 1) % 256;
        s
    }

    fn payload(&mut self, metrics: Vec<Metric>) -> Payload {
        Payload {
            timestamp: Some(values::millis(chrono::Utc::now())),
            metrics,
            seq: Some(self.next_seq()),
            ..Default::default()
        }
    }

    /// NBIRTH (seq 0) and a DBIRTH for every connected park.
    fn births(&mut self) {
        if !self.may_publish() {
            return;
        }
        let Some(bd) = self.session else { return };
        self.seq = 0;
        let now = Some(values::millis(chrono::Utc::now()));
        let metrics = vec![
            link::bd_seq_metric(bd),
            Metric {
                name: Some(REBIRTH.into()),
                datatype: Some(values::BOOLEAN),
                timestamp: now,
                value: Some(metric::Value::BooleanValue(false)),
                ..Default::default()
            },
            Metric {
                name: Some("Properties/Stator Version".into()),
                datatype: Some(values::STRING),
                timestamp: now,
                value: Some(metric::Value::StringValue(env!("CARGO_PKG_VERSION").into())),
                ..Default::default()
            },
        ];
        let p = self.payload(metrics);
        self.node_born = self.publish(link::node_topic(&self.cfg, "NBIRTH"), p);
        for d in &mut self.devices {
            d.born = None;
            d.pending.clear();
        }
        if self.node_born {
            self.stats.set_state(super::ONLINE);
            for i in 0..self.devices.len() {
                self.device_birth(i);
            }
        }
    }

    fn device_topic(&self, kind: &str, park: &str) -> String {
        format!(
            "{NAMESPACE}/{}/{kind}/{}/{park}",
            self.cfg.group_id, self.cfg.edge_node_id
        )
    }

    /// DBIRTH of park `i` with every tag, when its PLC is connected and its tags are known.
    fn device_birth(&mut self, i: usize) {
        let park = self.devices[i].park.clone();
        let cache = self.api.cache();
        if cache.status(&park) != Some(PlcStatus::Connected) {
            return;
        }
        let tags_version = cache.tags_version(&park).unwrap_or(0);
        let snap = cache.snapshot(|id| id == park);
        let Some(plc) = snap.plcs.into_iter().next() else {
            return;
        };
        if plc.nodes.is_empty() {
            return;
        }
        let base = (i as u64 + 1) << 32;
        let mut born = Born {
            tags_version,
            by_name: HashMap::new(),
            by_alias: HashMap::new(),
            last: HashMap::new(),
            alarms: HashMap::new(),
        };
        let mut metrics = Vec::with_capacity(plc.nodes.len());
        for (k, n) in plc.nodes.iter().enumerate() {
            let ty = values::datatype(&n.data_type, n.array_size.is_some());
            let alias = base + k as u64;
            born.by_name.insert(n.name.clone(), (alias, ty));
            born.by_alias.insert(alias, n.name.clone());
            let v = crate::live::TagValue {
                value: n.value.clone(),
                quality: n.quality,
                reason: n.reason.clone(),
                ts: n.ts,
            };
            let mut m = values::metric(ty, &v);
            born.last
                .insert(alias, (m.value.clone(), m.is_null, m.properties.clone()));
            m.name = Some(n.name.clone());
            m.alias = Some(alias);
            m.datatype = Some(ty);
            let mut p = m.properties.take().unwrap_or_default();
            let mut extra = vec![(
                "readOnly",
                property_value::Value::BooleanValue(!n.writable),
                values::BOOLEAN,
            )];
            if let Some(u) = &n.unit {
                extra.push((
                    "engUnit",
                    property_value::Value::StringValue(u.clone()),
                    values::STRING,
                ));
            }
            if let Some([lo, hi]) = n.range {
                extra.push((
                    "engLow",
                    property_value::Value::DoubleValue(lo),
                    values::DOUBLE,
                ));
                extra.push((
                    "engHigh",
                    property_value::Value::DoubleValue(hi),
                    values::DOUBLE,
                ));
            }
            let e = props(extra);
            p.keys.extend(e.keys);
            p.values.extend(e.values);
            m.properties = Some(p);
            metrics.push(m);
        }
        for (k, a) in self.api.alarms().of_park(&park).iter().enumerate() {
            let alias = base + ALARM_ALIAS + k as u64;
            let name = format!("{ALARMS}{}", a.id);
            let mut m = alarm_metric(a);
            born.last
                .insert(alias, (m.value.clone(), m.is_null, m.properties.clone()));
            born.by_name.insert(name.clone(), (alias, values::STRING));
            born.by_alias.insert(alias, name.clone());
            born.alarms.insert(a.id.clone(), alias);
            m.name = Some(name);
            m.alias = Some(alias);
            m.datatype = Some(values::STRING);
            let p = m.properties.get_or_insert_with(Default::default);
            let ro = props(vec![(
                "readOnly",
                property_value::Value::BooleanValue(true),
                values::BOOLEAN,
            )]);
            p.keys.extend(ro.keys);
            p.values.extend(ro.values);
            metrics.push(m);
        }
        let payload = self.payload(metrics);
        if self.publish(self.device_topic("DBIRTH", &park), payload) {
            self.devices[i].born = Some(born);
        }
    }

    fn on_samples(&mut self, batch: &SampleBatch) {
        let Some(d) = self.devices.iter_mut().find(|d| d.park == batch.plc) else {
            return;
        };
        let Some(born) = &mut d.born else { return };
        for u in &batch.values {
            let Some(&(alias, ty)) = born.by_name.get(&u.tag) else {
                continue;
            };
            if d.pending.len() >= MAX_PENDING {
                Stats::count(&self.stats.dropped, 1);
                continue;
            }
            let mut m = values::metric(ty, &u.value);
            let now = (m.value.clone(), m.is_null, m.properties.clone());
            if born.last.get(&alias) == Some(&now) {
                continue;
            }
            born.last.insert(alias, now);
            m.alias = Some(alias);
            d.pending.push(m);
        }
    }

    /// Once per broadcast interval: deaths and (re)births of devices, then the batched DDATA
    /// (live, or to the on-disk store while the primary host is away), then a slice of the
    /// replay.
    async fn on_tick(&mut self) {
        if self.session.is_some() && !self.node_born {
            self.births();
        }
        let live = self.node_born;
        if live {
            self.device_lifecycle();
            self.alarm_changes();
        }
        let forward = self.spool.is_some()
            && (!live || !self.replay.is_empty() || self.stats.stored.load(Ordering::Relaxed) > 0);
        let mut records = Vec::new();
        for i in 0..self.devices.len() {
            if self.devices[i].pending.is_empty() {
                continue;
            }
            let mut metrics = std::mem::take(&mut self.devices[i].pending);
            let park = self.devices[i].park.clone();
            let Some(born) = &self.devices[i].born else {
                continue;
            };
            if forward {
                // Stored by name: aliases belong to a birth that may be gone at replay.
                for m in &mut metrics {
                    if let Some(a) = m.alias.take() {
                        m.name = born.by_alias.get(&a).cloned();
                        m.datatype = born
                            .by_name
                            .get(m.name.as_deref().unwrap_or(""))
                            .map(|x| x.1);
                    }
                }
                let p = Payload {
                    timestamp: Some(values::millis(chrono::Utc::now())),
                    metrics,
                    ..Default::default()
                };
                records.push((park, p.encode_to_vec()));
            } else if live {
                let p = self.payload(metrics);
                self.publish(self.device_topic("DDATA", &park), p);
            } else {
                Stats::count(&self.stats.dropped, metrics.len() as u64);
            }
        }
        let Some(spool) = self.spool.clone() else {
            return;
        };
        let want_more = live && self.replay.is_empty();
        if records.is_empty() && !want_more {
            return;
        }
        let (popped, stored, dropped) = tokio::task::spawn_blocking(move || {
            let mut s = spool.lock();
            for (park, bytes) in &records {
                if let Err(e) = s.push(park, bytes) {
                    tracing::warn!(error = %e, "mqtt: cannot store DDATA on disk");
                    s.dropped += 1;
                }
            }
            let popped = if want_more { s.pop() } else { Vec::new() };
            (popped, s.records(), s.dropped)
        })
        .await
        .unwrap_or_default();
        self.replay.extend(popped);
        self.stats
            .stored
            .store(stored + self.replay.len() as u64, Ordering::Relaxed);
        self.stats.store_dropped.store(dropped, Ordering::Relaxed);
        if live {
            self.replay_some();
        }
    }

    /// Queues the alarm metrics that changed since they were sent (compared only when the
    /// alarms changed at all); a park whose set of alarms changed (a new configuration) is born
    /// again.
    fn alarm_changes(&mut self) {
        let version = self.api.alarms().version();
        if self.alarms_seen == Some(version) {
            return;
        }
        self.alarms_seen = Some(version);
        for i in 0..self.devices.len() {
            let park = self.devices[i].park.clone();
            let Some(born) = &mut self.devices[i].born else {
                continue;
            };
            let now = self.api.alarms().of_park(&park);
            if now.len() != born.alarms.len()
                || now.iter().any(|a| !born.alarms.contains_key(&a.id))
            {
                self.device_birth(i);
                continue;
            }
            let d = &mut self.devices[i];
            let Some(born) = &mut d.born else { continue };
            for a in &now {
                let alias = born.alarms[&a.id];
                let mut m = alarm_metric(a);
                let sent = (m.value.clone(), m.is_null, m.properties.clone());
                if born.last.get(&alias) == Some(&sent) {
                    continue;
                }
                born.last.insert(alias, sent);
                m.alias = Some(alias);
                d.pending.push(m);
            }
        }
    }

    /// Publishes up to [`REPLAY_PER_TICK`] stored messages as historical DDATA.
    fn replay_some(&mut self) {
        for _ in 0..REPLAY_PER_TICK {
            let Some((park, bytes)) = self.replay.pop_front() else {
                break;
            };
            let Ok(mut p) = Payload::decode(bytes.as_slice()) else {
                continue;
            };
            for m in &mut p.metrics {
                m.is_historical = Some(true);
            }
            p.seq = Some(self.seq);
            let topic = self.device_topic("DDATA", &park);
            if self
                .client
                .try_publish(topic, QoS::AtMostOnce, false, p.encode_to_vec())
                .is_err()
            {
                self.replay.push_front((park, bytes));
                break;
            }
            self.next_seq();
            Stats::count(&self.stats.published, 1);
            self.stats.stored.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// DDEATH for parks whose PLC dropped, DBIRTH for parks that came (back) or were
    /// rediscovered.
    fn device_lifecycle(&mut self) {
        for i in 0..self.devices.len() {
            let park = self.devices[i].park.clone();
            let cache = self.api.cache();
            let connected = cache.status(&park) == Some(PlcStatus::Connected);
            let version = cache.tags_version(&park);
            match &self.devices[i].born {
                Some(_) if !connected => {
                    self.devices[i].born = None;
                    self.devices[i].pending.clear();
                    let p = self.payload(Vec::new());
                    self.publish(self.device_topic("DDEATH", &park), p);
                }
                Some(b) if Some(b.tags_version) != version => self.device_birth(i),
                None if connected => self.device_birth(i),
                _ => {}
            }
        }
    }

    fn reject(&self, what: &str, why: impl std::fmt::Display) {
        Stats::count(&self.stats.rejected, 1);
        tracing::warn!(topic = what, "mqtt: refused a message: {why}");
    }

    fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let parts: Vec<&str> = topic.split('/').collect();
        match parts.as_slice() {
            [NAMESPACE, "STATE", host] if Some(*host) == self.cfg.primary_host_id.as_deref() => {
                let online = serde_json::from_slice::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|v| v.get("online").and_then(|o| o.as_bool()));
                match online {
                    Some(true) if !self.host_online => {
                        self.host_online = true;
                        self.births();
                    }
                    Some(true) => {}
                    Some(false) => {
                        self.host_online = false;
                        self.node_born = false;
                        self.stats.set_state(super::WAITING);
                    }
                    None => self.reject(topic, "not a STATE payload"),
                }
            }
            [NAMESPACE, g, "NCMD", e] if *g == self.cfg.group_id && *e == self.cfg.edge_node_id => {
                match Payload::decode(payload) {
                    Ok(p)
                        if p.metrics.iter().any(|m| {
                            m.name.as_deref() == Some(REBIRTH)
                                && m.value == Some(metric::Value::BooleanValue(true))
                        }) =>
                    {
                        tracing::info!("mqtt: rebirth requested");
                        self.node_born = false;
                        self.births();
                    }
                    Ok(_) => self.reject(topic, "no supported node command"),
                    Err(e) => self.reject(topic, e),
                }
            }
            [NAMESPACE, g, "DCMD", e, park]
                if *g == self.cfg.group_id && *e == self.cfg.edge_node_id =>
            {
                match Payload::decode(payload) {
                    Ok(p) => self.on_dcmd(topic, park, p),
                    Err(e) => self.reject(topic, e),
                }
            }
            _ => self.reject(topic, "unexpected topic"),
        }
    }

    /// Each metric of a DCMD is one write through the api's write path (audited, source
    /// `mqtt`, actor the primary host id); refused and audited unless `mqtt.allow_writes`.
    fn on_dcmd(&mut self, topic: &str, park: &str, p: Payload) {
        let Some(born) = self
            .devices
            .iter()
            .find(|d| d.park == park)
            .and_then(|d| d.born.as_ref())
        else {
            return self.reject(topic, format!("no device {park:?} is born"));
        };
        if p.metrics.len() > MAX_DCMD_METRICS {
            return self.reject(topic, format!("more than {MAX_DCMD_METRICS} metrics"));
        }
        let mut writes = Vec::new();
        for m in &p.metrics {
            let name = match (&m.name, m.alias) {
                (Some(n), _) => n.clone(),
                (None, Some(a)) => match born.by_alias.get(&a) {
                    Some(n) => n.clone(),
                    None => {
                        self.reject(topic, format!("unknown alias {a}"));
                        continue;
                    }
                },
                _ => {
                    self.reject(topic, "a metric without name or alias");
                    continue;
                }
            };
            if name.starts_with(ALARMS) {
                self.reject(topic, format!("{name}: alarm metrics are read-only"));
                continue;
            }
            let Some(&(_, ty)) = born.by_name.get(&name) else {
                self.reject(topic, format!("unknown metric {name:?}"));
                continue;
            };
            let value = match m.value.as_ref().map(|v| values::decode(ty, v)) {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    self.reject(topic, format!("{name}: {e}"));
                    continue;
                }
                None => {
                    self.reject(topic, format!("{name}: no value"));
                    continue;
                }
            };
            writes.push((name, value));
        }
        let actor = match &self.cfg.primary_host_id {
            Some(h) => format!("mqtt:{h}"),
            None => "mqtt".to_string(),
        };
        for (node, value) in writes {
            let Ok(permit) = self.writes.clone().try_acquire_owned() else {
                self.reject(topic, "too many writes in flight");
                continue;
            };
            let allowed = if self.cfg.allow_writes {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "writes over MQTT are disabled (mqtt.allow_writes is false)",
                ))
            };
            let (api, stats) = (self.api.clone(), self.stats.clone());
            let who = Principal::system(&actor, Source::Mqtt);
            let req = WriteReq {
                plc: park.to_string(),
                node,
                value,
            };
            tokio::spawn(async move {
                let ctx = Ctx::new(None, Source::Mqtt);
                let (plc, node) = (req.plc.clone(), req.node.clone());
                if let Err(e) = api.service_write(&ctx, who, req, allowed).await {
                    Stats::count(&stats.rejected, 1);
                    tracing::warn!(plc, node, error = %e, "mqtt: DCMD write refused");
                }
                drop(permit);
            });
        }
    }
}
