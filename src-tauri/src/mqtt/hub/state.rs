//! What the hub knows about the group: edge nodes (session `bdSeq`, expected `seq`), their born
//! devices (alias tables) and which park each feeds. Every message is checked against it and
//! turned into live-cache calls; whatever does not fit is counted and ignored, and where the
//! edge node can repair it (a gap, data before a birth, an unknown alias) a rebirth is asked
//! for — at most once per [`REBIRTH_EVERY`] per edge node.
//!
//! Bounded by construction: at most [`MAX_EDGE_NODES`] edge nodes, devices only for configured
//! parks (one device per park), at most `hub.max_tags_per_park` tags (and aliases) per device,
//! at most one pending rebirth request per edge node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use super::super::sparkplug_b::{metric, Metric, Payload};
use super::super::NAMESPACE;
use super::decode;
use crate::config::Config;
use crate::live::{Cache, PlcStatus, SourceMeta, ValueUpdate};

/// Edge nodes the hub tracks; messages of more are ignored and counted (`truncated`).
pub const MAX_EDGE_NODES: usize = 1024;
/// Shortest time between two rebirth requests to one edge node.
pub const REBIRTH_EVERY: Duration = Duration::from_secs(2);
/// How long devices of a reborn edge node may take to send their DBIRTH before the hub
/// declares their parks disconnected.
pub const DBIRTH_GRACE: Duration = Duration::from_secs(10);
/// The edge node's alarm folder: the hub evaluates its own alarms, so these are not tags.
const ALARMS: &str = "Alarms/";

/// The hub's counters (the `health.hub` figures).
#[derive(Default)]
pub struct Counters {
    pub messages: AtomicU64,
    pub metrics: AtomicU64,
    pub malformed: AtomicU64,
    pub foreign: AtomicU64,
    pub seq_gaps: AtomicU64,
    pub rebirths_requested: AtomicU64,
    pub collisions: AtomicU64,
    pub unmapped: AtomicU64,
    pub truncated: AtomicU64,
    pub edge_nodes: AtomicUsize,
    pub parks_fed: AtomicUsize,
}

fn count(c: &AtomicU64) -> u64 {
    c.fetch_add(1, Ordering::Relaxed) + 1
}

/// Logs the 1st, 2nd, 4th, 8th… occurrence: a flood of garbage cannot flood the log.
fn warn_sometimes(n: u64, topic: &str, why: &str) {
    if n.is_power_of_two() {
        tracing::warn!(topic, count = n, "mqtt hub: ignored a message: {why}");
    }
}

/// Where a write to a park goes: its device and the datatype of each tag.
#[derive(Clone)]
pub struct Route {
    pub edge: String,
    pub device: String,
    pub types: Arc<HashMap<String, u32>>,
}

/// The routes of the parks fed now, shared with the api's write path.
pub type Routes = Arc<parking_lot::RwLock<HashMap<String, Route>>>;

struct Device {
    park: String,
    /// The node's birth generation this device was born in.
    generation: u64,
    /// Tag name and datatype by position; aliases and names index into it.
    tags: Vec<(String, u32)>,
    by_alias: HashMap<u64, usize>,
    by_name: HashMap<String, usize>,
}

#[derive(Default)]
struct Node {
    bd_seq: Option<u64>,
    born: bool,
    next_seq: Option<u64>,
    /// Incremented by every NBIRTH.
    generation: u64,
    reborn_at: Option<Instant>,
    devices: HashMap<String, Device>,
    last_rebirth: Option<Instant>,
}

/// The group as the hub sees it.
pub struct HubState {
    group: String,
    cache: Cache,
    nodes: HashMap<String, Node>,
    /// Park → (edge node, device) feeding it now.
    owners: HashMap<String, (String, String)>,
    routes: Routes,
    counters: Arc<Counters>,
    /// Edge nodes to send `Node Control/Rebirth` to (at most one entry each).
    rebirths: Vec<String>,
}

/// A parsed Sparkplug topic of the group.
enum Topic<'a> {
    Node(&'a str, &'a str),
    Device(&'a str, &'a str, &'a str),
    Command,
}

impl HubState {
    pub fn new(group: String, cache: Cache, routes: Routes, counters: Arc<Counters>) -> Self {
        Self {
            group,
            cache,
            nodes: HashMap::new(),
            owners: HashMap::new(),
            routes,
            counters,
            rebirths: Vec::new(),
        }
    }

    /// The edge nodes to ask for a rebirth now (drained).
    pub fn take_rebirths(&mut self) -> Vec<String> {
        std::mem::take(&mut self.rebirths)
    }

    fn parse<'a>(&self, topic: &'a str) -> Option<Topic<'a>> {
        let mut it = topic.split('/');
        if it.next()? != NAMESPACE || it.next()? != self.group {
            return None;
        }
        let (kind, edge, device) = (it.next()?, it.next()?, it.next());
        // Ids are topic levels of at most 64 characters: longer ones are not Sparkplug ids we
        // keep (and would let a sender grow the node table by megabytes).
        let id_ok = |v: &str| crate::config::sparkplug_id(v).is_ok();
        if it.next().is_some() || !id_ok(edge) || !device.is_none_or(id_ok) {
            return None;
        }
        match (kind, device) {
            ("NBIRTH" | "NDATA" | "NDEATH", None) => Some(Topic::Node(kind, edge)),
            ("DBIRTH" | "DDATA" | "DDEATH", Some(d)) => Some(Topic::Device(kind, edge, d)),
            ("NCMD", None) | ("DCMD", Some(_)) => Some(Topic::Command),
            _ => None,
        }
    }

    /// One message from the broker.
    pub fn on_message(&mut self, cfg: &Config, topic: &str, payload: &[u8], now: Instant) {
        count(&self.counters.messages);
        let Some(t) = self.parse(topic) else {
            let n = count(&self.counters.foreign);
            return warn_sometimes(n, topic, "not a Sparkplug B topic of the group");
        };
        if matches!(t, Topic::Command) {
            return; // Commands (ours and other hosts') are not the hub's business.
        }
        let p = match Payload::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                let n = count(&self.counters.malformed);
                return warn_sometimes(n, topic, &format!("not a Sparkplug payload: {e}"));
            }
        };
        let edge = match t {
            Topic::Node(_, e) | Topic::Device(_, e, _) => e,
            Topic::Command => return,
        };
        if !self.nodes.contains_key(edge) {
            if self.nodes.len() >= MAX_EDGE_NODES {
                let n = count(&self.counters.truncated);
                return warn_sometimes(n, topic, "too many edge nodes");
            }
            self.nodes.insert(edge.to_string(), Node::default());
        }
        match t {
            Topic::Node("NBIRTH", e) => self.nbirth(e, &p, now),
            Topic::Node("NDEATH", e) => self.ndeath(e, &p),
            Topic::Node(_, e) => {
                self.check_seq(e, &p, topic, now);
            }
            Topic::Device("DBIRTH", e, d) => self.dbirth(cfg, e, d, &p, topic, now),
            Topic::Device("DDATA", e, d) => self.ddata(cfg, e, d, &p, topic, now),
            Topic::Device(_, e, d) => {
                self.check_seq(e, &p, topic, now);
                if self.nodes[e].devices.contains_key(d) {
                    self.kill_device(e, d, "device offline (DDEATH)");
                }
            }
            Topic::Command => {}
        }
    }

    /// Asks `edge` for a rebirth unless one was asked for within [`REBIRTH_EVERY`].
    fn want_rebirth(&mut self, edge: &str, now: Instant) {
        let Some(n) = self.nodes.get_mut(edge) else {
            return;
        };
        if n.last_rebirth
            .is_some_and(|t| now.saturating_duration_since(t) < REBIRTH_EVERY)
        {
            return;
        }
        n.last_rebirth = Some(now);
        count(&self.counters.rebirths_requested);
        self.rebirths.push(edge.to_string());
    }

    /// Checks `seq` against the one expected; a gap (or a message of an unborn node) asks for
    /// a rebirth. Returns whether the node is born.
    fn check_seq(&mut self, edge: &str, p: &Payload, topic: &str, now: Instant) -> bool {
        let n = self.nodes.get_mut(edge).expect("node tracked");
        if !n.born {
            self.want_rebirth(edge, now);
            return false;
        }
        let expected = n.next_seq;
        n.next_seq = p.seq.map(|s| (s + 1) % 256);
        if p.seq.is_none() || expected != p.seq {
            let c = count(&self.counters.seq_gaps);
            warn_sometimes(
                c,
                topic,
                &format!("seq {:?} where {expected:?} was expected", p.seq),
            );
            self.want_rebirth(edge, now);
        }
        true
    }

    fn nbirth(&mut self, edge: &str, p: &Payload, now: Instant) {
        let bd = p
            .metrics
            .iter()
            .find(|m| m.name.as_deref() == Some("bdSeq"))
            .and_then(|m| match m.value {
                Some(metric::Value::LongValue(v)) => Some(v),
                Some(metric::Value::IntValue(v)) => Some(v as u64),
                _ => None,
            });
        let n = self.nodes.get_mut(edge).expect("node tracked");
        n.bd_seq = bd;
        n.born = true;
        n.next_seq = p.seq.map(|s| (s + 1) % 256);
        n.generation += 1;
        // Devices must now be born again; those that are not within the grace are dead.
        n.reborn_at = (!n.devices.is_empty()).then_some(now);
        tracing::info!(edge, bd_seq = ?bd, "mqtt hub: edge node born");
        self.publish_counts();
    }

    fn ndeath(&mut self, edge: &str, p: &Payload) {
        let n = self.nodes.get_mut(edge).expect("node tracked");
        let bd = p
            .metrics
            .iter()
            .find(|m| m.name.as_deref() == Some("bdSeq"))
            .and_then(|m| match m.value {
                Some(metric::Value::LongValue(v)) => Some(v),
                _ => None,
            });
        // The will of an earlier session must not kill the current one.
        if n.bd_seq.is_some() && bd.is_some() && n.bd_seq != bd {
            tracing::info!(edge, ?bd, current = ?n.bd_seq, "mqtt hub: a stale NDEATH ignored");
            return;
        }
        n.born = false;
        n.next_seq = None;
        n.reborn_at = None;
        tracing::info!(edge, "mqtt hub: edge node offline (NDEATH)");
        let devices: Vec<String> = n.devices.keys().cloned().collect();
        for d in devices {
            self.kill_device(edge, &d, "edge node offline (NDEATH)");
        }
        self.publish_counts();
    }

    /// The configured park `device` of `edge` feeds: the park whose `hub.sources` names it, or
    /// the park with the device's id when no source pins that park elsewhere.
    fn park_for(cfg: &Config, edge: &str, device: &str) -> Option<String> {
        let hub = cfg.hub.as_ref();
        if let Some((park, _)) = hub.and_then(|h| {
            h.sources
                .iter()
                .find(|(park, _)| h.source(park) == Some((edge, device)))
        }) {
            return Some(park.clone());
        }
        let pinned = hub.is_some_and(|h| h.sources.contains_key(device));
        (cfg.plc(device).is_some() && !pinned).then(|| device.to_string())
    }

    fn dbirth(
        &mut self,
        cfg: &Config,
        edge: &str,
        device: &str,
        p: &Payload,
        topic: &str,
        now: Instant,
    ) {
        if !self.check_seq(edge, p, topic, now) {
            return;
        }
        let Some(park) = Self::park_for(cfg, edge, device) else {
            let n = count(&self.counters.unmapped);
            return warn_sometimes(n, topic, "the device feeds no configured park");
        };
        let me = (edge.to_string(), device.to_string());
        if let Some(owner) = self.owners.get(&park).filter(|o| **o != me) {
            let n = count(&self.counters.collisions);
            if n.is_power_of_two() {
                tracing::warn!(
                    park,
                    owner = %format!("{}/{}", owner.0, owner.1),
                    refused = %format!("{edge}/{device}"),
                    "mqtt hub: two edge nodes announce the same park; the first keeps it (pin one with hub.sources)"
                );
            }
            return;
        }
        let max = cfg
            .hub
            .as_ref()
            .map_or(crate::config::DEFAULT_MAX_TAGS_PER_PARK, |h| {
                h.max_tags_per_park
            });
        let origin = format!("{NAMESPACE}/{}/{edge}/{device}", self.group);
        let generation = self.nodes[edge].generation;
        let mut dev = Device {
            park: park.clone(),
            generation,
            tags: Vec::new(),
            by_alias: HashMap::new(),
            by_name: HashMap::new(),
        };
        let (mut metas, mut source, mut values) = (Vec::new(), HashMap::new(), Vec::new());
        for m in &p.metrics {
            let (Some(name), Some(dt)) = (m.name.as_deref(), m.datatype) else {
                count(&self.counters.malformed);
                continue;
            };
            if name.starts_with(ALARMS) || name.is_empty() || name.len() > 256 {
                continue;
            }
            if dev.by_name.contains_key(name) {
                count(&self.counters.malformed);
                continue;
            }
            if dev.tags.len() >= max {
                count(&self.counters.truncated);
                continue;
            }
            let i = dev.tags.len();
            dev.tags.push((name.to_string(), dt));
            dev.by_name.insert(name.to_string(), i);
            if let Some(a) = m.alias {
                dev.by_alias.insert(a, i);
            }
            let (meta, src): (_, SourceMeta) = decode::tag_meta(&origin, name, dt, m);
            if src != SourceMeta::default() {
                source.insert(name.to_string(), src);
            }
            metas.push(meta);
            values.push(ValueUpdate {
                tag: name.to_string(),
                value: decode::tag_value(dt, m, p.timestamp),
            });
        }
        let types: HashMap<String, u32> = dev.tags.iter().cloned().collect();
        self.cache.set_tags_with(&park, metas, source);
        self.counters
            .metrics
            .fetch_add(values.len() as u64, Ordering::Relaxed);
        self.cache.update(&park, values);
        self.cache.set_status(&park, PlcStatus::Connected, None);
        self.cache
            .set_server_name(&park, Some(format!("{edge}/{device}")));
        self.routes.write().insert(
            park.clone(),
            Route {
                edge: edge.to_string(),
                device: device.to_string(),
                types: Arc::new(types),
            },
        );
        self.owners.insert(park.clone(), me);
        tracing::info!(
            park,
            edge,
            device,
            tags = dev.tags.len(),
            "mqtt hub: device born"
        );
        let n = self.nodes.get_mut(edge).expect("node tracked");
        n.devices.insert(device.to_string(), dev);
        self.publish_counts();
    }

    fn ddata(
        &mut self,
        cfg: &Config,
        edge: &str,
        device: &str,
        p: &Payload,
        topic: &str,
        now: Instant,
    ) {
        if !self.nodes[edge].devices.contains_key(device) {
            // Data of a device the hub has no birth of: ask for one if it feeds a park.
            if Self::park_for(cfg, edge, device).is_none() {
                count(&self.counters.unmapped);
                return;
            }
            if self.nodes[edge].born {
                self.check_seq(edge, p, topic, now);
            }
            self.want_rebirth(edge, now);
            return;
        }
        if !self.check_seq(edge, p, topic, now) {
            return;
        }
        let dev = &self.nodes[edge].devices[device];
        let mut updates = Vec::with_capacity(p.metrics.len());
        let mut unknown = false;
        for m in &p.metrics {
            // Store-and-forward replays are history, not the present value.
            if m.is_historical == Some(true) {
                continue;
            }
            let i = match (m.alias, m.name.as_deref()) {
                (Some(a), _) => dev.by_alias.get(&a),
                (None, Some(n)) => dev.by_name.get(n),
                _ => None,
            };
            let Some(&i) = i else {
                unknown |= !m.name.as_deref().is_some_and(|n| n.starts_with(ALARMS));
                continue;
            };
            let (name, dt) = &dev.tags[i];
            updates.push(ValueUpdate {
                tag: name.clone(),
                value: decode::tag_value(*dt, m, p.timestamp),
            });
        }
        let park = dev.park.clone();
        self.counters
            .metrics
            .fetch_add(updates.len() as u64, Ordering::Relaxed);
        self.cache.update(&park, updates);
        if unknown {
            let n = count(&self.counters.malformed);
            warn_sometimes(n, topic, "a metric with an unknown alias or name");
            self.want_rebirth(edge, now);
        }
    }

    /// Marks the park of `device` disconnected (values kept, stale) and forgets its birth.
    fn kill_device(&mut self, edge: &str, device: &str, why: &str) {
        let Some(d) = self
            .nodes
            .get_mut(edge)
            .and_then(|n| n.devices.remove(device))
        else {
            return;
        };
        self.cache
            .set_status(&d.park, PlcStatus::Disconnected, Some(why.to_string()));
        self.owners.remove(&d.park);
        self.routes.write().remove(&d.park);
        tracing::info!(
            park = d.park,
            edge,
            device,
            "mqtt hub: park disconnected: {why}"
        );
        self.publish_counts();
    }

    /// Once a second: devices that were not born again within [`DBIRTH_GRACE`] of their edge
    /// node's NBIRTH are dead.
    pub fn on_tick(&mut self, now: Instant) {
        let mut dead = Vec::new();
        for (e, n) in &mut self.nodes {
            if n.reborn_at
                .is_some_and(|t| now.saturating_duration_since(t) >= DBIRTH_GRACE)
            {
                n.reborn_at = None;
                dead.extend(
                    n.devices
                        .iter()
                        .filter(|(_, d)| d.generation < n.generation)
                        .map(|(d, _)| (e.clone(), d.clone())),
                );
            }
        }
        for (e, d) in dead {
            self.kill_device(&e, &d, "no DBIRTH after the edge node's rebirth");
        }
    }

    /// The broker link went down (`why`): nothing the hub shows is known any more.
    pub fn on_link_down(&mut self, why: &str) {
        let all: Vec<(String, String)> = self
            .nodes
            .iter()
            .flat_map(|(e, n)| n.devices.keys().map(move |d| (e.clone(), d.clone())))
            .collect();
        for (e, d) in all {
            self.kill_device(&e, &d, why);
        }
        for n in self.nodes.values_mut() {
            n.born = false;
            n.next_seq = None;
            n.reborn_at = None;
            n.last_rebirth = None;
        }
        self.publish_counts();
    }

    /// A new broker session (or a changed configuration): every known edge node is asked to
    /// announce itself again.
    pub fn rebirth_all(&mut self, now: Instant) {
        let edges: Vec<String> = self.nodes.keys().cloned().collect();
        for e in edges {
            self.want_rebirth(&e, now);
        }
    }

    fn publish_counts(&self) {
        let born = self.nodes.values().filter(|n| n.born).count();
        self.counters.edge_nodes.store(born, Ordering::Relaxed);
        self.counters
            .parks_fed
            .store(self.owners.len(), Ordering::Relaxed);
    }
}

/// The NCMD asking an edge node for a rebirth.
pub fn rebirth_payload() -> Vec<u8> {
    Payload {
        timestamp: Some(super::super::values::millis(chrono::Utc::now())),
        metrics: vec![Metric {
            name: Some(super::super::edge::REBIRTH.into()),
            datatype: Some(super::super::values::BOOLEAN),
            value: Some(metric::Value::BooleanValue(true)),
            ..Default::default()
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

impl HubState {
    /// A changed configuration: devices whose park mapping changed (`hub.sources`, parks added
    /// or removed) are let go, and every edge node is asked to announce itself again so that
    /// newly mapped devices appear. Other changes (alarms, users, tags) touch nothing here.
    pub fn on_config(&mut self, old: &Config, new: &Config, now: Instant) {
        let ids = |c: &Config| {
            c.plc_config
                .iter()
                .map(|p| p.id.clone())
                .collect::<Vec<_>>()
        };
        if old.hub == new.hub && ids(old) == ids(new) {
            return;
        }
        let moved: Vec<(String, String)> = self
            .nodes
            .iter()
            .flat_map(|(e, n)| {
                n.devices
                    .iter()
                    .filter(|(d, dev)| Self::park_for(new, e, d).as_ref() != Some(&dev.park))
                    .map(move |(d, _)| (e.clone(), d.clone()))
            })
            .collect();
        for (e, d) in moved {
            self.kill_device(&e, &d, "the hub's park mapping changed");
        }
        self.rebirth_all(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::values::{self, props};
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn cfg(extra: serde_json::Value) -> Config {
        let mut v = json!({
            "plc_config": [
                {"id": "alpha", "url": "opc.tcp://127.0.0.1:4840", "name": "Alpha"},
                {"id": "beta", "url": "opc.tcp://127.0.0.1:4841", "name": "Beta"}
            ],
            "common_root_node_id": "ns=1;i=1",
            "broadcast_interval_seconds": 1,
            "plc_reconnect_delay_minutes": 1
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        Config::parse(std::path::Path::new("t.json"), &v.to_string()).unwrap()
    }

    fn hub(c: &Config) -> HubState {
        HubState::new(
            "g".into(),
            Cache::from_config(c),
            Default::default(),
            Default::default(),
        )
    }

    fn payload(seq: u64, metrics: Vec<Metric>) -> Vec<u8> {
        Payload {
            timestamp: Some(1_700_000_000_000),
            seq: Some(seq),
            metrics,
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn birth_metric(name: &str, alias: u64, v: f64) -> Metric {
        Metric {
            name: Some(name.into()),
            alias: Some(alias),
            datatype: Some(values::DOUBLE),
            value: Some(metric::Value::DoubleValue(v)),
            properties: Some(props(vec![(
                "engUnit",
                super::super::super::sparkplug_b::property_value::Value::StringValue("kW".into()),
                values::STRING,
            )])),
            ..Default::default()
        }
    }

    fn data(alias: u64, v: f64) -> Metric {
        Metric {
            alias: Some(alias),
            value: Some(metric::Value::DoubleValue(v)),
            ..Default::default()
        }
    }

    fn born(h: &mut HubState, c: &Config, edge: &str, device: &str, now: Instant) {
        h.on_message(
            c,
            &format!("spBv1.0/g/NBIRTH/{edge}"),
            &payload(0, vec![]),
            now,
        );
        h.on_message(
            c,
            &format!("spBv1.0/g/DBIRTH/{edge}/{device}"),
            &payload(1, vec![birth_metric("P", 7, 1.0)]),
            now,
        );
    }

    #[test]
    fn birth_data_death_and_gaps() {
        let c = cfg(json!({}));
        let mut h = hub(&c);
        let now = Instant::now();
        // Data before any birth: a rebirth is asked for, nothing applied.
        h.on_message(
            &c,
            "spBv1.0/g/DDATA/e1/alpha",
            &payload(5, vec![data(7, 2.0)]),
            now,
        );
        assert_eq!(h.take_rebirths(), vec!["e1".to_string()]);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Disconnected));
        born(&mut h, &c, "e1", "alpha", now + REBIRTH_EVERY);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Connected));
        let snap = h.cache.snapshot(|p| p == "alpha");
        assert_eq!(snap.plcs[0].nodes[0].unit.as_deref(), Some("kW"));
        assert_eq!(snap.plcs[0].nodes[0].data_type, "Double");
        h.on_message(
            &c,
            "spBv1.0/g/DDATA/e1/alpha",
            &payload(2, vec![data(7, 3.0)]),
            now,
        );
        assert_eq!(h.cache.value("alpha", "P").unwrap().value, json!(3.0));
        assert!(h.take_rebirths().is_empty());
        // A gap: applied, counted, rebirth asked for (once within REBIRTH_EVERY).
        let later = now + REBIRTH_EVERY * 2;
        h.on_message(
            &c,
            "spBv1.0/g/DDATA/e1/alpha",
            &payload(9, vec![data(7, 4.0)]),
            later,
        );
        h.on_message(
            &c,
            "spBv1.0/g/DDATA/e1/alpha",
            &payload(12, vec![data(7, 5.0)]),
            later,
        );
        assert_eq!(h.counters.seq_gaps.load(Ordering::Relaxed), 2);
        assert_eq!(h.take_rebirths().len(), 1);
        assert_eq!(h.cache.value("alpha", "P").unwrap().value, json!(5.0));
        // Garbage and foreign topics are counted and ignored.
        h.on_message(&c, "spBv1.0/g/DDATA/e1/alpha", b"\xff\xff\xff", later);
        h.on_message(&c, "other/topic", b"x", later);
        let long = format!("spBv1.0/g/NBIRTH/{}", "e".repeat(65));
        h.on_message(&c, &long, &payload(0, vec![]), later);
        assert_eq!(h.counters.malformed.load(Ordering::Relaxed), 1);
        assert_eq!(h.counters.foreign.load(Ordering::Relaxed), 2);
        assert_eq!(h.nodes.len(), 1);
        // DDEATH: disconnected, value kept (stale).
        h.on_message(&c, "spBv1.0/g/DDEATH/e1/alpha", &payload(13, vec![]), later);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Disconnected));
        assert_eq!(h.cache.value("alpha", "P").unwrap().value, json!(5.0));
        assert!(h.routes.read().is_empty());
    }

    #[test]
    fn a_second_edge_announcing_a_park_is_refused_until_the_first_dies() {
        let c = cfg(json!({}));
        let mut h = hub(&c);
        let now = Instant::now();
        born(&mut h, &c, "e1", "alpha", now);
        born(&mut h, &c, "e2", "alpha", now);
        assert_eq!(h.counters.collisions.load(Ordering::Relaxed), 1);
        assert_eq!(h.routes.read()["alpha"].edge, "e1");
        let bd = |v: u64| {
            Payload {
                metrics: vec![super::super::super::link::bd_seq_metric(v)],
                ..Default::default()
            }
            .encode_to_vec()
        };
        h.on_message(&c, "spBv1.0/g/NDEATH/e1", &bd(0), now);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Disconnected));
        h.on_message(
            &c,
            "spBv1.0/g/DBIRTH/e2/alpha",
            &payload(2, vec![birth_metric("P", 7, 1.0)]),
            now,
        );
        assert_eq!(h.routes.read()["alpha"].edge, "e2");
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Connected));
    }

    #[test]
    fn sources_pin_parks_and_unknown_devices_are_ignored() {
        let c = cfg(json!({"hub": {"sources": {"beta": "e9/plant7"}}}));
        let mut h = hub(&c);
        let now = Instant::now();
        born(&mut h, &c, "e1", "beta", now);
        assert_eq!(
            h.counters.unmapped.load(Ordering::Relaxed),
            1,
            "beta is pinned to e9"
        );
        born(&mut h, &c, "e9", "plant7", now);
        assert_eq!(h.cache.status("beta"), Some(PlcStatus::Connected));
        born(&mut h, &c, "e1", "gamma", now);
        assert_eq!(h.counters.unmapped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_changed_mapping_lets_the_device_go_and_asks_for_rebirths() {
        let c = cfg(json!({}));
        let mut h = hub(&c);
        let now = Instant::now();
        born(&mut h, &c, "e1", "alpha", now);
        // Unrelated changes touch nothing.
        let mut same = c.clone();
        same.broadcast_interval_seconds = 2.0;
        h.on_config(&c, &same, now);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Connected));
        assert!(h.take_rebirths().is_empty());
        // alpha is pinned elsewhere now: e1's device no longer feeds it.
        let pinned = cfg(json!({"hub": {"sources": {"alpha": "e2/a"}}}));
        h.on_config(&c, &pinned, now);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Disconnected));
        assert_eq!(h.take_rebirths(), vec!["e1".to_string()]);
        assert!(h.routes.read().is_empty());
    }

    #[test]
    fn tags_beyond_the_bound_are_cut_and_an_unreborn_device_dies() {
        let c = cfg(json!({"hub": {"max_tags_per_park": 2}}));
        let mut h = hub(&c);
        let now = Instant::now();
        h.on_message(&c, "spBv1.0/g/NBIRTH/e1", &payload(0, vec![]), now);
        let many = (0..5)
            .map(|i| birth_metric(&format!("T{i}"), i, 0.0))
            .collect();
        h.on_message(&c, "spBv1.0/g/DBIRTH/e1/alpha", &payload(1, many), now);
        assert_eq!(h.cache.snapshot(|_| true).plcs[0].nodes.len(), 2);
        assert_eq!(h.counters.truncated.load(Ordering::Relaxed), 3);
        // The edge node is born again but the device is not: dead after the grace.
        h.on_message(&c, "spBv1.0/g/NBIRTH/e1", &payload(0, vec![]), now);
        h.on_tick(now + DBIRTH_GRACE / 2);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Connected));
        h.on_tick(now + DBIRTH_GRACE);
        assert_eq!(h.cache.status("alpha"), Some(PlcStatus::Disconnected));
    }
}
