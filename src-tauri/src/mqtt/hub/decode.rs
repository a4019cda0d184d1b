//! Sparkplug B metrics → what the live cache holds: tag metadata from a DBIRTH (type, unit,
//! range, writability), values from any birth or data message (value, quality, timestamp).
//! The inverse of `values.rs`: what an edge Stator encodes, the hub decodes back to the same
//! JSON, and a foreign edge node's metrics land in the same shapes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::super::sparkplug_b::{metric, property_value, Metric};
use super::super::values::{self as v, *};
use crate::live::{Quality, SourceMeta, TagMeta, TagValue};
use crate::plc::values::MAX_SAFE_INT;

/// Sparkplug `Text` and `UUID` (carried as strings).
const TEXT: u32 = 14;
const UUID: u32 = 15;

/// The OPC UA type name of a Sparkplug datatype (the live cache and the UI speak OPC UA type
/// names; a packed array is shown as an array of its element type); `None` for what the hub
/// does not show (bytes, datasets, files, templates).
pub fn type_name(datatype: u32) -> Option<&'static str> {
    if let Some(element) = element_of(datatype) {
        return type_name(element);
    }
    Some(match datatype {
        INT8 => "SByte",
        INT16 => "Int16",
        INT32 => "Int32",
        INT64 => "Int64",
        UINT8 => "Byte",
        UINT16 => "UInt16",
        UINT32 => "UInt32",
        UINT64 => "UInt64",
        FLOAT => "Float",
        DOUBLE => "Double",
        BOOLEAN => "Boolean",
        STRING | TEXT | UUID => "String",
        DATETIME => "DateTime",
        _ => return None,
    })
}

/// A property of a metric by key.
fn prop<'a>(m: &'a Metric, key: &str) -> Option<&'a property_value::Value> {
    let p = m.properties.as_ref()?;
    let i = p.keys.iter().position(|k| k == key)?;
    p.values.get(i)?.value.as_ref()
}

fn prop_f64(m: &Metric, key: &str) -> Option<f64> {
    use property_value::Value as P;
    match prop(m, key)? {
        P::DoubleValue(d) => Some(*d),
        P::FloatValue(f) => Some(*f as f64),
        P::IntValue(i) => Some(*i as i32 as f64),
        P::LongValue(l) => Some(*l as i64 as f64),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// The cache's metadata of a DBIRTH metric with a known datatype: `node_id` names where it
/// comes from (`spBv1.0/<group>/<edge>/<device>/<name>`); writable only when the edge says
/// `readOnly: false` (absent: read-only, fail closed).
pub fn tag_meta(origin: &str, name: &str, datatype: u32, m: &Metric) -> (TagMeta, SourceMeta) {
    use property_value::Value as P;
    let writable = matches!(prop(m, "readOnly"), Some(P::BooleanValue(false)));
    let unit = match prop(m, "engUnit") {
        Some(P::StringValue(s)) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        _ => None,
    };
    let range = match (prop_f64(m, "engLow"), prop_f64(m, "engHigh")) {
        (Some(lo), Some(hi)) if lo <= hi => Some([lo, hi]),
        _ => None,
    };
    (
        TagMeta {
            name: name.to_string(),
            node_id: format!("{origin}/{name}"),
            data_type: type_name(datatype).unwrap_or("String").to_string(),
            // A packed array's length is the one its birth carries.
            array_size: element_of(datatype).and_then(|_| {
                let born = m.value.as_ref().and_then(|x| json(datatype, x))?;
                u32::try_from(born.as_array()?.len()).ok()
            }),
            writable,
            element_node_ids: Vec::new(),
        },
        SourceMeta { unit, range },
    )
}

/// A 64-bit integer the way the cache keeps it: a number up to ±2^53, a decimal string beyond.
fn wide(i: i128) -> Value {
    if i.unsigned_abs() <= MAX_SAFE_INT as u128 {
        Value::from(i as i64)
    } else {
        Value::from(i.to_string())
    }
}

/// The JSON value of a metric value read as `datatype`; `None` when it does not fit.
pub fn json(datatype: u32, val: &metric::Value) -> Option<Value> {
    use metric::Value as M;
    match (datatype, val) {
        // An f32 shown with its own shortest digits (1.1, not 1.100000023841858).
        (_, M::FloatValue(f)) => v::f32_json(*f),
        (dt, M::BytesValue(_)) if element_of(dt).is_some() => v::decode(datatype, val).ok(),
        (INT64, M::LongValue(l)) => Some(wide(*l as i64 as i128)),
        (UINT64, M::LongValue(l)) => Some(wide(*l as i128)),
        (TEXT | UUID, M::StringValue(s)) => Some(Value::from(s.clone())),
        (INT8 | INT16 | INT32 | UINT8 | UINT16 | UINT32, M::IntValue(_))
        | (DATETIME, M::LongValue(_))
        | (DOUBLE, M::DoubleValue(_))
        | (BOOLEAN, M::BooleanValue(_))
        | (STRING, M::StringValue(_)) => v::decode(datatype, val).ok(),
        _ => None,
    }
}

/// OPC DA quality code (Ignition's `quality` property) → the cache's class.
fn quality_class(code: u32) -> Quality {
    match code {
        192.. => Quality::Good,
        64..=191 => Quality::Uncertain,
        _ => Quality::Bad,
    }
}

/// One metric's value as the cache's [`TagValue`]: the value (null for `is_null` or a value
/// that does not fit its datatype), the quality from the `quality` property (bad when null
/// without one), the metric's timestamp (else the payload's, else now).
pub fn tag_value(datatype: u32, m: &Metric, payload_ts: Option<u64>) -> TagValue {
    use property_value::Value as P;
    let ts = m
        .timestamp
        .or(payload_ts)
        .and_then(|ms| DateTime::<Utc>::from_timestamp_millis(ms as i64))
        .unwrap_or_else(Utc::now);
    let code = match prop(m, "quality") {
        Some(P::IntValue(c)) => Some(*c),
        Some(P::LongValue(c)) => Some((*c).min(u32::MAX as u64) as u32),
        _ => None,
    };
    let value = if m.is_null == Some(true) {
        None
    } else {
        m.value.as_ref().and_then(|x| json(datatype, x))
    };
    let (quality, reason) = match (&value, code) {
        (None, None) if m.is_null == Some(true) => (Quality::Bad, Some("is_null".to_string())),
        (None, None) => (Quality::Bad, Some("unsupported_value".to_string())),
        (_, Some(c)) if quality_class(c) != Quality::Good => {
            (quality_class(c), Some(format!("sparkplug_quality_{c}")))
        }
        (None, Some(c)) => (Quality::Bad, Some(format!("sparkplug_quality_{c}"))),
        (Some(_), _) => (Quality::Good, None),
    };
    TagValue {
        value: value.unwrap_or(Value::Null),
        quality,
        reason,
        ts: Some(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Quality;
    use serde_json::json;

    fn m(dt: u32, val: metric::Value) -> Metric {
        Metric {
            datatype: Some(dt),
            timestamp: Some(1_700_000_000_123),
            value: Some(val),
            ..Default::default()
        }
    }

    #[test]
    fn values_come_back_as_the_edge_encoded_them() {
        use metric::Value as M;
        for (dt, json_in) in [
            (INT16, json!(-5)),
            (UINT32, json!(4_000_000_000u64)),
            (INT64, json!("-9007199254740993")),
            (UINT64, json!(42)),
            (FLOAT, json!(1.1)),
            (DOUBLE, json!(1.25)),
            (BOOLEAN, json!(true)),
            (STRING, json!("x")),
            (DATETIME, json!("2026-01-02T03:04:05.678Z")),
        ] {
            let enc = v::encode(dt, &json_in).unwrap();
            let t = tag_value(dt, &m(dt, enc), None);
            assert_eq!(t.value, json_in, "{dt}");
            assert_eq!(t.quality, Quality::Good);
            assert_eq!(t.ts.unwrap().timestamp_millis(), 1_700_000_000_123);
        }
        // A value that does not fit its datatype is bad, never a panic.
        let t = tag_value(BOOLEAN, &m(BOOLEAN, M::StringValue("x".into())), None);
        assert_eq!((t.value, t.quality), (json!(null), Quality::Bad));
        assert_eq!(type_name(16), None, "datasets are not shown");
    }

    #[test]
    fn quality_and_null_follow_the_edge() {
        let live = crate::live::TagValue {
            value: json!(3.5),
            quality: Quality::Uncertain,
            reason: Some("UncertainLastUsableValue".into()),
            ts: None,
        };
        let t = tag_value(DOUBLE, &v::metric(DOUBLE, &live), None);
        assert_eq!(t.quality, Quality::Uncertain);
        assert_eq!(t.value, json!(3.5));
        assert_eq!(t.reason.as_deref(), Some("sparkplug_quality_64"));
        let bad = crate::live::TagValue {
            value: json!(null),
            quality: Quality::Bad,
            reason: None,
            ts: None,
        };
        let t = tag_value(DOUBLE, &v::metric(DOUBLE, &bad), None);
        assert_eq!((t.value, t.quality), (json!(null), Quality::Bad));
        assert_eq!(t.reason.as_deref(), Some("sparkplug_quality_0"));
    }

    #[test]
    fn birth_properties_become_unit_range_and_writability() {
        let mut b = m(FLOAT, metric::Value::FloatValue(1.0));
        b.properties = Some(props(vec![
            (
                "readOnly",
                property_value::Value::BooleanValue(false),
                BOOLEAN,
            ),
            (
                "engUnit",
                property_value::Value::StringValue("kW".into()),
                STRING,
            ),
            ("engLow", property_value::Value::DoubleValue(0.0), DOUBLE),
            ("engHigh", property_value::Value::DoubleValue(100.0), DOUBLE),
        ]));
        let (meta, src) = tag_meta("spBv1.0/g/e/d", "P", FLOAT, &b);
        assert!(meta.writable);
        assert_eq!(meta.data_type, "Float");
        assert_eq!(meta.node_id, "spBv1.0/g/e/d/P");
        assert_eq!(src.unit.as_deref(), Some("kW"));
        assert_eq!(src.range, Some([0.0, 100.0]));
        let (meta, _) = tag_meta("o", "P", FLOAT, &m(FLOAT, metric::Value::FloatValue(1.0)));
        assert!(!meta.writable, "no readOnly property: read-only");
    }
}
