//! The running configuration, swappable while Stator runs (`config_set`, SIGHUP).
//!
//! One `watch` channel holds the current `Arc<Config>`: a reader takes a consistent snapshot
//! with [`Running::get`] (one request sees one configuration from start to end), a part that
//! must react (the WebSocket clients' pictures) awaits [`Running::subscribe`]. Parts that keep
//! derived state (the live cache's park list and tag metadata, the engine's PLC tasks, auth's
//! parks and settings) are told explicitly by `api::Api::apply_config`, in an order that never
//! shows a client a park the cache does not have.

use std::sync::Arc;

use tokio::sync::watch;

use super::Config;

/// The current configuration; cheap to clone (shared).
#[derive(Clone)]
pub struct Running {
    tx: Arc<watch::Sender<Arc<Config>>>,
}

impl Running {
    /// Starts with `cfg`.
    pub fn new(cfg: Arc<Config>) -> Self {
        Self {
            tx: Arc::new(watch::channel(cfg).0),
        }
    }

    /// The configuration as of now.
    pub fn get(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// Makes `cfg` the running configuration and wakes every subscriber.
    pub fn replace(&self, cfg: Arc<Config>) {
        self.tx.send_replace(cfg);
    }

    /// Wakes on every replacement.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.tx.subscribe()
    }
}
