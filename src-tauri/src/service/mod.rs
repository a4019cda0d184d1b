//! Service mode and calibration, below the api: which parks are in service (mirrored from the
//! store's open `service_periods`, so it survives a restart) and the pure arithmetic of a
//! two-point calibration (`calibration.rs`). The api decides who may, writes through its safe
//! write path and pushes banners; this module only holds state and computes.
//!
//! Seam for alarms (which may not import this module): a park's service periods are rows of
//! `store::service` (`open_periods`, `periods_between`), so an alarm journal can mark alarms
//! raised in service, and `<id>.cal_due` can be derived from `store::service::last_passed` plus
//! the configured `interval_days` (see [`calibration::due`]).

pub mod calibration;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::store::service::{self, ServicePeriod};
use crate::store::{Store, StoreError};

/// The parks in service now. Cheap to clone.
#[derive(Clone)]
pub struct ServiceModes {
    open: Arc<RwLock<HashMap<String, ServicePeriod>>>,
    /// Bumped on every start and end, so watchers (the expiry task) wake at once.
    changed: Arc<watch::Sender<u64>>,
}

impl Default for ServiceModes {
    fn default() -> Self {
        Self {
            open: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }
}

impl ServiceModes {
    /// The open periods stored in `store` (blocking: called once at start).
    pub fn load(store: &Store) -> Result<ServiceModes, StoreError> {
        let open = store.read_blocking(service::open_periods)?;
        let m = ServiceModes::default();
        m.open
            .write()
            .extend(open.into_iter().map(|p| (p.park.clone(), p)));
        Ok(m)
    }

    /// The open period of `park`.
    pub fn get(&self, park: &str) -> Option<ServicePeriod> {
        self.open.read().get(park).cloned()
    }

    /// Whether `park` is in service.
    pub fn in_service(&self, park: &str) -> bool {
        self.open.read().contains_key(park)
    }

    /// Every open period, by park.
    pub fn all(&self) -> Vec<ServicePeriod> {
        let mut v: Vec<ServicePeriod> = self.open.read().values().cloned().collect();
        v.sort_by(|a, b| a.park.cmp(&b.park));
        v
    }

    /// Records a period that was stored as started.
    pub fn started(&self, p: ServicePeriod) {
        self.open.write().insert(p.park.clone(), p);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Records that the period of `park` was stored as ended.
    pub fn ended(&self, park: &str) {
        self.open.write().remove(park);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Wakes on every start and end.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
