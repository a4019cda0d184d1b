//! The audit half of a write: the bounds checked before anything else, the "write requested" row
//! that must be stored before a value may leave for the PLC, and the aggregation of refusals from
//! callers without a valid session.
//!
//! Why these exist: a write is the one request that changes the plant, so it must never reach a
//! PLC without a trace (the row is stored first, and the send only happens once it is), and an
//! anonymous client must never be able to grow the append-only audit table at network speed
//! (its refusals become one counted row per source and minute).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::{Api, ApiError};
use crate::store::AuditEntry;

/// Longest `plc` and `node` accepted, in bytes (a PLC id is ≤ 64, an S7 tag path well below).
pub const MAX_NAME_BYTES: usize = 256;
/// Longest `value` accepted, as compact JSON in bytes: room for an array of about a thousand
/// numbers, and half of the transports' 64 KiB inbound limit, so the panel (which has no such
/// limit) gets the same bound as remote clients.
pub const MAX_VALUE_JSON_BYTES: usize = 32 * 1024;
/// Longest requested value kept in an audit row.
const AUDIT_VALUE_MAX: usize = 1000;
/// One aggregated row per source per window.
pub(super) const REFUSAL_WINDOW: Duration = Duration::from_secs(60);
/// Distinct sources counted separately per window; beyond it they share the row of source
/// `other`, so even many addresses cannot multiply the rows without bound.
const MAX_SOURCES: usize = 1024;
/// The action of an aggregated row.
pub const ACTION_REFUSED_ANONYMOUS: &str = "write_refused_anonymous";
/// The action of the row stored before a value is sent.
pub const ACTION_REQUESTED: &str = "write_requested";

/// Refuses oversized fields before anything else runs (no session lookup, no row per request).
pub(super) fn check_bounds(plc: &str, node: &str, value: &Value) -> Result<(), ApiError> {
    for (field, v) in [("plc", plc), ("node", node)] {
        if v.len() > MAX_NAME_BYTES {
            return Err(ApiError::invalid(format!(
                "{field} is {} bytes long, at most {MAX_NAME_BYTES}",
                v.len()
            )));
        }
    }
    let n = json_len(value);
    if n > MAX_VALUE_JSON_BYTES {
        return Err(ApiError::invalid(format!(
            "value is {n} bytes of JSON, at most {MAX_VALUE_JSON_BYTES}"
        )));
    }
    Ok(())
}

/// Length of the compact JSON of `v` without building the string.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// A value as kept in an audit row: compact JSON, clipped to [`AUDIT_VALUE_MAX`] bytes.
pub(super) fn clip(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > AUDIT_VALUE_MAX {
        let mut end = AUDIT_VALUE_MAX;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Stores the row saying this write is about to be sent. When it cannot be stored the write
/// must not happen: the caller answers `unavailable` and sends nothing.
pub(super) async fn record_requested(api: &Api, entry: AuditEntry) -> Result<(), ApiError> {
    api.auth().audit(entry).await.map_err(|e| {
        tracing::error!(error = %e, "the audit trail cannot be written; write refused");
        ApiError::unavailable("the audit trail cannot be written; nothing was sent to the PLC")
    })
}

/// Refusals counted for one source in the current window.
#[derive(Debug, Clone)]
struct Window {
    count: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Per-source counters of refused writes without a valid session (no, unknown or expired token;
/// oversized fields). Memory is bounded by [`MAX_SOURCES`].
#[derive(Default)]
pub(super) struct AnonymousRefusals {
    open: Mutex<HashMap<String, Window>>,
}

impl AnonymousRefusals {
    /// Counts one refusal; `Some(key)` when it opened a window that must be flushed later.
    fn count(&self, source: &str, now: DateTime<Utc>) -> Option<String> {
        let mut open = self.open.lock();
        let key = if open.contains_key(source) || open.len() < MAX_SOURCES {
            source.to_string()
        } else {
            "other".to_string()
        };
        match open.get_mut(&key) {
            Some(w) => {
                w.count += 1;
                w.last = now;
                None
            }
            None => {
                open.insert(
                    key.clone(),
                    Window {
                        count: 1,
                        first: now,
                        last: now,
                    },
                );
                Some(key)
            }
        }
    }

    fn take(&self, key: &str) -> Option<Window> {
        self.open.lock().remove(key)
    }

    fn take_all(&self) -> Vec<(String, Window)> {
        self.open.lock().drain().collect()
    }
}

fn aggregated_entry(source: &str, w: &Window) -> AuditEntry {
    let t = |d: DateTime<Utc>| d.to_rfc3339_opts(SecondsFormat::Millis, true);
    AuditEntry {
        actor: None,
        role: None,
        source: source.to_string(),
        action: ACTION_REFUSED_ANONYMOUS.into(),
        target: None,
        old_value: None,
        new_value: Some(
            json!({"count": w.count, "source": source, "first": t(w.first), "last": t(w.last)})
                .to_string(),
        ),
        result: "refused".into(),
    }
}

async fn store_aggregate(api: &Api, source: &str, w: Window) {
    if let Err(e) = api.auth().audit(aggregated_entry(source, &w)).await {
        tracing::error!(error = %e, source, count = w.count, "could not audit refused anonymous writes");
    }
}

/// Counts a refused write without a valid session from `source`; the first one of a window
/// schedules the one row that will carry the window's count.
pub(super) fn refused_anonymous(api: &Api, source: &str) {
    let Some(key) = api.inner.refusals.count(source, Utc::now()) else {
        return;
    };
    let api = api.clone();
    tokio::spawn(async move {
        tokio::time::sleep(REFUSAL_WINDOW).await;
        if let Some(w) = api.inner.refusals.take(&key) {
            store_aggregate(&api, &key, w).await;
        }
    });
}

impl Api {
    /// Stores the counted refusals of anonymous writes now instead of at the end of their
    /// minute: called at shutdown so no count is lost (and by tests).
    pub async fn flush_refused_writes(&self) {
        for (source, w) in self.inner.refusals.take_all() {
            store_aggregate(self, &source, w).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_in_bytes() {
        assert!(check_bounds("a", "b", &json!(1)).is_ok());
        let long = "€".repeat(86); // 258 bytes, 86 characters
        assert_eq!(
            check_bounds(&long, "b", &json!(1)).unwrap_err().code,
            "invalid"
        );
        assert_eq!(
            check_bounds("a", &long, &json!(1)).unwrap_err().code,
            "invalid"
        );
        let big = json!(vec![1.5f64; 10_000]);
        assert!(json_len(&big) > MAX_VALUE_JSON_BYTES);
        assert_eq!(check_bounds("a", "b", &big).unwrap_err().code, "invalid");
        assert_eq!(
            json_len(&json!({"a": [1, "x"]})),
            json!({"a": [1, "x"]}).to_string().len()
        );
    }

    #[test]
    fn refusals_open_one_window_per_source_and_cap_the_sources() {
        let r = AnonymousRefusals::default();
        let now = Utc::now();
        assert_eq!(r.count("1.2.3.4", now).as_deref(), Some("1.2.3.4"));
        assert_eq!(r.count("1.2.3.4", now), None);
        for i in 0..MAX_SOURCES {
            r.count(&format!("10.0.{}.{}", i / 256, i % 256), now);
        }
        assert_eq!(
            r.open.lock().len(),
            MAX_SOURCES + 1,
            "the cap folds the rest into `other`"
        );
        assert_eq!(r.take("1.2.3.4").unwrap().count, 2);
        assert!(r.take("1.2.3.4").is_none());
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        let s = clip(&json!("€".repeat(600)));
        assert!(s.len() <= AUDIT_VALUE_MAX + '…'.len_utf8());
        assert!(s.ends_with('…'));
    }
}
