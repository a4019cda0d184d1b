//! The per-source limit on failed logins (on top of the per-account lockout, which lives in the
//! `users` table so that it survives a restart and is shared by every process).

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

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

    /// Records one failure from this source.
    pub fn record(&self, source: &str, now: DateTime<Utc>) {
        let mut map = self.failures.lock();
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
}
