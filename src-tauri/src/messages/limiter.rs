//! Messages per user per window: a sliding window of send times, one small queue per user.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Users tracked at most; beyond it (only reachable with that many distinct senders within one
/// window) the oldest idle queues are dropped first, and when none is idle a send is refused.
const MAX_USERS: usize = 10_000;

/// At most `max` sends per user within `window`.
pub struct Limiter {
    max: usize,
    window: Duration,
    sent: Mutex<HashMap<i64, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for `user` now, or says in how many seconds one frees up.
    pub fn take(&self, user: i64, now: Instant) -> Result<(), u64> {
        let mut sent = self.sent.lock();
        if sent.len() >= MAX_USERS && !sent.contains_key(&user) {
            let window = self.window;
            sent.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            if sent.len() >= MAX_USERS {
                return Err(window.as_secs().max(1));
            }
        }
        let q = sent.entry(user).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = q.front().copied().unwrap_or(now);
            let wait = self.window.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_window_per_user() {
        let l = Limiter::new(10, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..10 {
            l.take(1, t0).unwrap();
        }
        let wait = l.take(1, t0 + Duration::from_secs(3)).unwrap_err();
        assert_eq!(wait, 7);
        l.take(2, t0).unwrap();
        l.take(1, t0 + Duration::from_secs(10)).unwrap();
    }
}
