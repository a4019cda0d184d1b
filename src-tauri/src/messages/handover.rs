//! Where a handover entry takes "the open alarms and service state of the park" from.
//!
//! The alarm and service subsystems are separate modules this one may not import; `app` (or the
//! api) plugs an implementation in with `Messages::set_handover_source`. Until one is plugged in,
//! a handover records no alarms and no service state (`[]` and `null`), and says so.

use serde_json::Value;

/// The state a handover records, per park.
pub trait HandoverSource: Send + Sync {
    /// The park's open alarms as their wire objects (each at least `{"id", …}`).
    fn open_alarms(&self, park: &str) -> Vec<Value>;
    /// The park's service state as its wire object (`null` when there is none).
    fn service_state(&self, park: &str) -> Value;
}

/// No alarm or service subsystem connected.
pub struct NoHandoverSource;

impl HandoverSource for NoHandoverSource {
    fn open_alarms(&self, _park: &str) -> Vec<Value> {
        Vec::new()
    }
    fn service_state(&self, _park: &str) -> Value {
        Value::Null
    }
}

/// Any pair of closures is a source (handy for wiring and tests).
impl<A, S> HandoverSource for (A, S)
where
    A: Fn(&str) -> Vec<Value> + Send + Sync,
    S: Fn(&str) -> Value + Send + Sync,
{
    fn open_alarms(&self, park: &str) -> Vec<Value> {
        (self.0)(park)
    }
    fn service_state(&self, park: &str) -> Value {
        (self.1)(park)
    }
}
