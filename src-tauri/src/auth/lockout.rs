//! Failed-login limits: the per-account lock (stored in `login_failures`, so that it survives a
//! restart and is shared by every process) and the per-address limit for remote sources (in
//! memory: only the server process takes remote logins).
//!
//! Both count an attempt BEFORE its password is checked, atomically, so parallel attempts cannot
//! all pass a check that is only updated after the ~200 ms verify. The account counter is kept
//! per kind of source ([`Scope`]): guessing over the network never locks the panel out.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

use super::Source;
use crate::store::login_failures::Failures;

/// The kind of source an account counter belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The panel and the command line (someone at the machine).
    Local,
    /// Any network client.
    Remote,
}

impl Scope {
    /// The counter a login from this source uses.
    pub fn of(source: &Source) -> Scope {
        if source.is_remote() {
            Scope::Remote
        } else {
            Scope::Local
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Remote => "remote",
        }
    }
}

/// The account limit: `attempts` per `window`; reaching it locks the account for `window`.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub attempts: u32,
    pub window: Duration,
}

/// What may happen with one login attempt on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; check the secret.
    Verify,
    /// Locked until then (already, or just now because more attempts were in flight than the
    /// limit allows); the secret is not checked.
    Locked(DateTime<Utc>),
}

impl Policy {
    /// The counter as it stands at `now`: an expired lock or a passed window starts afresh.
    pub fn current(&self, f: Option<Failures>, now: DateTime<Utc>) -> Failures {
        let fresh = Failures {
            attempts: 0,
            window_start: now,
            locked_until: None,
        };
        match f {
            Some(f) if f.locked_until.is_some_and(|t| t > now) => f,
            Some(f) if f.locked_until.is_none() && f.window_start + self.window > now => f,
            _ => fresh,
        }
    }

    /// Counts one attempt before its secret is checked. An attempt beyond the limit (the
    /// others still in flight) locks the account at once.
    pub fn admit(&self, f: Option<Failures>, now: DateTime<Utc>) -> (Admission, Failures) {
        let mut f = self.current(f, now);
        if let Some(until) = f.locked_until {
            return (Admission::Locked(until), f);
        }
        if f.attempts >= self.attempts {
            let f = self.locked(now);
            return (Admission::Locked(now + self.window), f);
        }
        f.attempts += 1;
        (Admission::Verify, f)
    }

    /// After a wrong secret (already counted by [`Policy::admit`]): `Some(until)` when this
    /// failure locks the account.
    pub fn failed(
        &self,
        f: Option<Failures>,
        now: DateTime<Utc>,
    ) -> (Option<DateTime<Utc>>, Failures) {
        let f = self.current(f, now);
        if f.locked_until.is_none() && f.attempts >= self.attempts {
            (Some(now + self.window), self.locked(now))
        } else {
            (None, f)
        }
    }

    fn locked(&self, now: DateTime<Utc>) -> Failures {
        Failures {
            attempts: 0,
            window_start: now,
            locked_until: Some(now + self.window),
        }
    }
}

/// Sliding one-minute window of failures per source address.
#[derive(Debug)]
pub struct SourceLimiter {
    per_minute: u32,
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

/// Sources tracked at most; beyond this the oldest-idle entries are dropped (memory bound
/// against address spraying).
const MAX_SOURCES: usize = 10_000;

impl SourceLimiter {
    /// A limiter allowing `per_minute` failures per source per minute.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(seconds to wait)` when this source has used up its failures for now.
    pub fn blocked(&self, source: &str, now: DateTime<Utc>) -> Option<u64> {
        let mut map = self.failures.lock();
        let q = map.get_mut(source)?;
        prune(q, now);
        self.wait(q, now)
    }

    fn wait(&self, q: &VecDeque<DateTime<Utc>>, now: DateTime<Utc>) -> Option<u64> {
        if q.len() as u32 >= self.per_minute {
            let oldest = *q.front()?;
            let left = (oldest + Duration::minutes(1) - now)
                .num_milliseconds()
                .max(0);
            Some(((left + 999) / 1000).max(1) as u64)
        } else {
            None
        }
    }

    /// Counts one attempt as a failure before it is checked (give it back with
    /// [`SourceLimiter::forgive`] when it succeeds); `Err(seconds to wait)` when the source has
    /// used up its failures.
    pub fn reserve(&self, source: &str, now: DateTime<Utc>) -> Result<(), u64> {
        let mut map = self.failures.lock();
        if let Some(s) = map.get_mut(source).and_then(|q| {
            prune(q, now);
            self.wait(q, now)
        }) {
            return Err(s);
        }
        Self::push(&mut map, source, now);
        Ok(())
    }

    /// Takes back an attempt reserved at `at` (it succeeded or was never checked).
    pub fn forgive(&self, source: &str, at: DateTime<Utc>) {
        let mut map = self.failures.lock();
        if let Some(q) = map.get_mut(source) {
            if let Some(i) = q.iter().rposition(|t| *t == at) {
                q.remove(i);
            }
        }
    }

    /// Records one failure from this source.
    pub fn record(&self, source: &str, now: DateTime<Utc>) {
        Self::push(&mut self.failures.lock(), source, now);
    }

    fn push(map: &mut HashMap<String, VecDeque<DateTime<Utc>>>, source: &str, now: DateTime<Utc>) {
        if map.len() >= MAX_SOURCES && !map.contains_key(source) {
            map.retain(|_, q| {
                prune(q, now);
                !q.is_empty()
            });
        }
        let q = map.entry(source.to_string()).or_default();
        prune(q, now);
        q.push_back(now);
    }
}

fn prune(q: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
    while q.front().is_some_and(|t| *t + Duration::minutes(1) <= now) {
        q.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let l = SourceLimiter::new(3);
        let t0 = Utc::now();
        for i in 0..3 {
            assert_eq!(l.blocked("1.2.3.4", t0), None);
            l.record("1.2.3.4", t0 + Duration::seconds(i));
        }
        assert_eq!(l.blocked("1.2.3.4", t0 + Duration::seconds(10)), Some(50));
        assert_eq!(l.blocked("5.6.7.8", t0), None);
        assert_eq!(l.blocked("1.2.3.4", t0 + Duration::seconds(60)), None);
    }

    #[test]
    fn reserve_counts_before_and_forgive_gives_back() {
        let l = SourceLimiter::new(2);
        let t0 = Utc::now();
        assert_eq!(l.reserve("a", t0), Ok(()));
        assert_eq!(l.reserve("a", t0), Ok(()));
        assert_eq!(l.reserve("a", t0), Err(60));
        l.forgive("a", t0);
        assert_eq!(l.reserve("a", t0), Ok(()));
        assert_eq!(l.reserve("b", t0), Ok(()));
    }

    fn policy() -> Policy {
        Policy {
            attempts: 3,
            window: Duration::minutes(5),
        }
    }

    #[test]
    fn attempts_in_flight_beyond_the_limit_lock_at_once() {
        let (p, t0) = (policy(), Utc::now());
        let mut f = None;
        for _ in 0..3 {
            let (a, next) = p.admit(f, t0);
            assert_eq!(a, Admission::Verify);
            f = Some(next);
        }
        let (a, next) = p.admit(f, t0);
        assert_eq!(a, Admission::Locked(t0 + Duration::minutes(5)));
        assert_eq!(next.locked_until, Some(t0 + Duration::minutes(5)));
        // The lock holds until it ends, then the count starts afresh.
        let later = t0 + Duration::minutes(5);
        assert_eq!(
            p.admit(Some(next), later - Duration::seconds(1)).0,
            Admission::Locked(later)
        );
        assert_eq!(
            p.admit(Some(next), later),
            (
                Admission::Verify,
                Failures {
                    attempts: 1,
                    window_start: later,
                    locked_until: None
                }
            )
        );
    }

    #[test]
    fn the_third_failure_locks_and_counts_decay() {
        let (p, t0) = (policy(), Utc::now());
        let mut f = None;
        for i in 0..3 {
            let (_, counted) = p.admit(f, t0);
            let (lock, next) = p.failed(Some(counted), t0);
            assert_eq!(lock.is_some(), i == 2);
            f = Some(next);
        }
        assert!(f.unwrap().locked_until.is_some());
        // Two failures, then a quiet window: the count has decayed.
        let (_, one) = p.admit(None, t0);
        let (_, two) = p.admit(Some(one), t0);
        let (a, three) = p.admit(Some(two), t0 + Duration::minutes(5));
        assert_eq!(a, Admission::Verify);
        assert_eq!(three.attempts, 1);
    }
}
