//! The one polling helper: tests wait for a condition with a bound, never sleep to synchronise.

use std::future::Future;
use std::time::Duration;

/// How often a condition is polled. Not shorter: the engine reports CONNECTED a moment before
/// it accepts writes, and the engine tests write as soon as they see CONNECTED.
const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` until it holds or `limit` passes; tells which (for callers that count misses).
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `cond` until it holds; panics naming `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let held = eventually(limit, || std::future::ready(cond())).await;
    assert!(held, "timed out after {limit:?} waiting for {what}");
}
