//! The bounded, fair queue in front of password verification, and the per-account turns.
//!
//! One argon2 verify costs ~200 ms of a core and 64 MiB, so they run at most one per core. Without
//! a bound, a burst of logins from one address queues every later login behind it (100 parallel
//! failures made a legitimate login from elsewhere wait 16.8 s). The gate admits a remote attempt
//! only while the queue (running + waiting) is below [`MAX_QUEUED`] and its address has fewer
//! than [`PER_SOURCE`] attempts in it; otherwise the caller answers `rate_limited` at once. Of
//! one address's attempts only one waits for a core at a time, so a burst from one address
//! occupies at most one core and a login from elsewhere waits for at most one verify per busy
//! address. The panel and the command line are always admitted (someone at the machine).
//!
//! [`Turns`] serialise the checks of one account (per kind of source): the counter is read,
//! raised, the secret checked and the outcome recorded before the next attempt on that account
//! is looked at, so parallel attempts see each other's failures exactly as sequential ones do.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{OwnedMutexGuard, Semaphore};

use super::lockout::Scope;
use super::{password, Source};

/// Attempts from one remote address in the queue at most: one address cannot fill it. More than
/// the default `lockout_attempts` (3), so that a burst against one account reaches the lock.
pub const PER_SOURCE: usize = 4;
/// Remote attempts in the queue at most (running or waiting). Large enough for a crowd of
/// people logging in at once from their own machines (each address has only [`PER_SOURCE`]
/// places); small enough that the last one waits a few seconds at worst (64 verifies of ~200 ms
/// on 2 cores ≈ 6 s), instead of the unbounded queue that one address could fill.
pub const MAX_QUEUED: usize = 64;

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
    per_source: HashMap<String, Share>,
}

/// One address's share of the queue.
#[derive(Debug)]
struct Share {
    queued: usize,
    /// One verify of this address waits for a core at a time.
    one: Arc<Semaphore>,
}

/// A place in the queue; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<Mutex<Queue>>,
    source: Option<(String, Arc<Semaphore>)>,
}

impl Gate {
    /// A gate running `workers` verifies at once.
    pub fn new(workers: usize) -> Gate {
        let workers = workers.max(1);
        Gate {
            running: Arc::new(Semaphore::new(workers)),
            max_queued: MAX_QUEUED,
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
            Source::Panel | Source::Cli | Source::Mqtt => {
                return Some(Ticket {
                    queue: self.queue.clone(),
                    source: None,
                })
            }
        };
        let mut q = self.queue.lock();
        let mine = q.per_source.get(&key).map_or(0, |s| s.queued);
        if q.remote >= self.max_queued || mine >= PER_SOURCE {
            return None;
        }
        q.remote += 1;
        let share = q.per_source.entry(key.clone()).or_insert_with(|| Share {
            queued: 0,
            one: Arc::new(Semaphore::new(1)),
        });
        share.queued += 1;
        let one = share.one.clone();
        Some(Ticket {
            queue: self.queue.clone(),
            source: Some((key, one)),
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
        self.on_core(move || {
            let _held = ticket;
            let known = phc.is_some();
            let ok =
                password::verify_secret(phc.as_deref().unwrap_or(password::dummy_hash()), &secret);
            ok && known
        })
        .await
    }

    /// Hashes a new password or PIN, sharing the cores with the verifies.
    pub async fn hash(&self, secret: String) -> Result<String, String> {
        self.on_core(move || password::hash_secret(&secret)).await?
    }

    /// Runs `work` on the blocking pool once a core is free; the core stays taken until `work`
    /// ends, even when the caller goes away.
    async fn on_core<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, String> {
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || {
            let _held = permit;
            work()
        })
        .await
        .map_err(|e| e.to_string())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some((key, _)) = self.source.take() else {
            return;
        };
        let mut q = self.queue.lock();
        q.remote = q.remote.saturating_sub(1);
        if let Some(s) = q.per_source.get_mut(&key) {
            s.queued -= 1;
            if s.queued == 0 {
                q.per_source.remove(&key);
            }
        }
    }
}

/// The lock whose guard is a turn.
type TurnLock = tokio::sync::Mutex<()>;

/// One check at a time per account and kind of source (see the module documentation).
#[derive(Debug, Default)]
pub struct Turns {
    waiting: Mutex<HashMap<(String, Scope), Weak<TurnLock>>>,
}

/// The turn of one attempt on an account; the next one goes when this is dropped.
#[derive(Debug)]
pub struct Turn(#[allow(dead_code)] OwnedMutexGuard<()>);

impl Turns {
    /// Waits for the turn on `username` (case-insensitive) for this kind of source. Entries live
    /// only while someone holds or waits for them, so the map is bounded by the queue.
    pub async fn take(&self, username: &str, scope: Scope) -> Turn {
        let lock = {
            let mut map = self.waiting.lock();
            map.retain(|_, w| w.strong_count() > 0);
            let key = (username.to_ascii_lowercase(), scope);
            match map.get(&key).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(TurnLock::new(()));
                    map.insert(key, Arc::downgrade(&l));
                    l
                }
            }
        };
        Turn(lock.lock_owned().await)
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
        assert_eq!(held.len(), MAX_QUEUED);
        assert!(g.enter(&Source::Remote("10.9.9.9".into())).is_none());
        assert!(g.enter(&Source::Panel).is_some());
        assert!(g.enter(&Source::Cli).is_some());
    }
}
