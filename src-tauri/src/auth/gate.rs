//! The bounded queue in front of password verification.
//!
//! One argon2 verify costs ~200 ms of a core and 64 MiB, so they run at most one per core. Without
//! a bound, a burst of logins from one address queues every later login behind it (100 parallel
//! failures made a legitimate login from elsewhere wait 16.8 s). The gate admits a remote attempt
//! only while the queue (running + waiting) is below [`Gate::max_queued`] and its address has fewer
//! than [`PER_SOURCE`] attempts in it; otherwise the caller answers `rate_limited` at once. The
//! panel and the command line are always admitted (they are someone at the machine) but wait
//! in the same first-come queue, which the bound keeps short.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::{password, Source};

/// Attempts from one remote address in the queue at most: one address cannot fill it.
pub const PER_SOURCE: usize = 2;
/// Queued remote attempts at most, per verify that may run at once.
pub const QUEUED_PER_WORKER: usize = 4;

/// See the module documentation.
#[derive(Debug)]
pub struct Gate {
    running: Arc<Semaphore>,
    max_queued: usize,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    remote: usize,
    per_source: HashMap<String, usize>,
}

/// A place in the queue; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<Mutex<Queue>>,
    source: Option<String>,
}

impl Gate {
    /// A gate running `workers` verifies at once.
    pub fn new(workers: usize) -> Gate {
        let workers = workers.max(1);
        Gate {
            running: Arc::new(Semaphore::new(workers)),
            max_queued: workers * QUEUED_PER_WORKER,
            queue: Arc::default(),
        }
    }

    /// Remote attempts queued at most.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// A place in the queue, or `None` when the queue or this address's share of it is full.
    pub fn enter(&self, source: &Source) -> Option<Ticket> {
        let key = match source {
            Source::Remote(a) => a.clone(),
            Source::Panel | Source::Cli => {
                return Some(Ticket {
                    queue: self.queue.clone(),
                    source: None,
                })
            }
        };
        let mut q = self.queue.lock();
        let mine = q.per_source.get(&key).copied().unwrap_or(0);
        if q.remote >= self.max_queued || mine >= PER_SOURCE {
            return None;
        }
        q.remote += 1;
        *q.per_source.entry(key.clone()).or_default() += 1;
        Some(Ticket {
            queue: self.queue.clone(),
            source: Some(key),
        })
    }

    /// Verifies `secret` against `phc` once a core is free (first come, first served); `None`
    /// verifies against the dummy hash and fails, costing the same time. The place and the core
    /// are held until the verify itself ends, even when the caller goes away.
    pub async fn verify(
        &self,
        ticket: Ticket,
        phc: Option<String>,
        secret: String,
    ) -> Result<bool, String> {
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let _held = (ticket, permit);
            let known = phc.is_some();
            let ok =
                password::verify_secret(phc.as_deref().unwrap_or(password::dummy_hash()), &secret);
            ok && known
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// Hashes a new password or PIN, sharing the cores with the verifies.
    pub async fn hash(&self, secret: String) -> Result<String, String> {
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            password::hash_secret(&secret)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(key) = self.source.take() else {
            return;
        };
        let mut q = self.queue.lock();
        q.remote = q.remote.saturating_sub(1);
        if let Some(n) = q.per_source.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                q.per_source.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_fill_the_queue() {
        let g = Gate::new(2);
        let a = Source::Remote("10.0.0.1".into());
        let held: Vec<Ticket> = (0..PER_SOURCE).map(|_| g.enter(&a).unwrap()).collect();
        assert!(
            g.enter(&a).is_none(),
            "a third attempt from one address is shed"
        );
        let b = Source::Remote("10.0.0.2".into());
        let other = g.enter(&b);
        assert!(other.is_some(), "another address still gets in");
        drop(held);
        assert!(g.enter(&a).is_some(), "places are given back");
    }

    #[test]
    fn the_queue_is_bounded_but_the_panel_always_enters() {
        let g = Gate::new(1);
        let held: Vec<Ticket> = (0..g.max_queued())
            .map(|i| g.enter(&Source::Remote(format!("10.0.0.{i}"))).unwrap())
            .collect();
        assert_eq!(held.len(), QUEUED_PER_WORKER);
        assert!(g.enter(&Source::Remote("10.9.9.9".into())).is_none());
        assert!(g.enter(&Source::Panel).is_some());
        assert!(g.enter(&Source::Cli).is_some());
    }
}
