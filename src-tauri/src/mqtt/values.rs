//! OPC UA types and the live cache's JSON values ↔ Sparkplug B datatypes and metric values.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::sparkplug_b::{metric, property_value, Metric, PropertySet, PropertyValue};
use crate::live::{Quality, TagValue};

// Sparkplug B datatypes (sparkplug_b.proto, "Indexes of Data Types").
pub const INT8: u32 = 1;
pub const INT16: u32 = 2;
pub const INT32: u32 = 3;
pub const INT64: u32 = 4;
pub const UINT8: u32 = 5;
pub const UINT16: u32 = 6;
pub const UINT32: u32 = 7;
pub const UINT64: u32 = 8;
pub const FLOAT: u32 = 9;
pub const DOUBLE: u32 = 10;
pub const BOOLEAN: u32 = 11;
pub const STRING: u32 = 12;
pub const DATETIME: u32 = 13;
/// Arrays are sent as their JSON text in a `String` metric: the packed Sparkplug array types
/// are not implemented yet.
const ARRAY_AS: u32 = STRING;

/// The Sparkplug datatype of an OPC UA built-in type (`array` for one-dimensional arrays).
pub fn datatype(opc_type: &str, array: bool) -> u32 {
    if array {
        return ARRAY_AS;
    }
    match opc_type {
        "SByte" => INT8,
        "Int16" => INT16,
        "Int32" => INT32,
        "Int64" => INT64,
        "Byte" => UINT8,
        "UInt16" => UINT16,
        "UInt32" => UINT32,
        "UInt64" => UINT64,
        "Float" => FLOAT,
        "Double" => DOUBLE,
        "Boolean" => BOOLEAN,
        "DateTime" => DATETIME,
        _ => STRING,
    }
}

/// Milliseconds since the epoch (Sparkplug timestamps).
pub fn millis(t: DateTime<Utc>) -> u64 {
    t.timestamp_millis().max(0) as u64
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .or_else(|| as_i64(v).and_then(|i| u64::try_from(i).ok()))
}

/// The metric value of a cache value for `datatype`; `None` (sent as `is_null`) when there is
/// no value or it does not fit.
pub fn encode(datatype: u32, v: &Value) -> Option<metric::Value> {
    use metric::Value as M;
    if v.is_null() {
        return None;
    }
    Some(match datatype {
        INT8 | INT16 | INT32 => M::IntValue(i32::try_from(as_i64(v)?).ok()? as u32),
        UINT8 | UINT16 | UINT32 => M::IntValue(u32::try_from(as_u64(v)?).ok()?),
        INT64 => M::LongValue(as_i64(v)? as u64),
        UINT64 => M::LongValue(as_u64(v)?),
        FLOAT => M::FloatValue(v.as_f64()? as f32),
        DOUBLE => M::DoubleValue(v.as_f64()?),
        BOOLEAN => M::BooleanValue(v.as_bool()?),
        DATETIME => M::LongValue(millis(
            DateTime::parse_from_rfc3339(v.as_str()?)
                .ok()?
                .with_timezone(&Utc),
        )),
        _ => M::StringValue(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    })
}

/// The JSON value a DCMD metric asks to write, read with the tag's datatype (signedness,
/// DateTime); the write path then coerces it to the node's type without loss or refuses it.
pub fn decode(datatype: u32, v: &metric::Value) -> Result<Value, String> {
    use metric::Value as M;
    Ok(match (datatype, v) {
        (INT8 | INT16 | INT32, M::IntValue(u)) => Value::from(*u as i32),
        (_, M::IntValue(u)) => Value::from(*u),
        (INT64, M::LongValue(l)) => Value::from(*l as i64),
        (DATETIME, M::LongValue(l)) => {
            let t = DateTime::<Utc>::from_timestamp_millis(*l as i64)
                .ok_or_else(|| format!("{l} is not a DateTime"))?;
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        (_, M::LongValue(l)) => Value::from(*l),
        (_, M::FloatValue(f)) => serde_json::Number::from_f64(*f as f64)
            .map(Value::Number)
            .ok_or("not a finite number")?,
        (_, M::DoubleValue(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or("not a finite number")?,
        (_, M::BooleanValue(b)) => Value::from(*b),
        (ARRAY_AS, M::StringValue(s)) if s.starts_with('[') => {
            serde_json::from_str(s).map_err(|e| format!("array: {e}"))?
        }
        (_, M::StringValue(s)) => Value::from(s.clone()),
        (_, M::BytesValue(_)) => return Err("bytes values are not supported".into()),
    })
}

/// OPC DA quality codes, as SCADA systems (Ignition) read the `quality` property.
fn quality_code(q: Quality) -> u32 {
    match q {
        Quality::Good => 192,
        Quality::Uncertain => 64,
        Quality::Bad => 0,
    }
}

/// Properties of a metric, in order.
pub fn props(pairs: Vec<(&str, property_value::Value, u32)>) -> PropertySet {
    let (keys, values) = pairs
        .into_iter()
        .map(|(k, v, t)| {
            (
                k.to_string(),
                PropertyValue {
                    r#type: Some(t),
                    is_null: None,
                    value: Some(v),
                },
            )
        })
        .unzip();
    PropertySet { keys, values }
}

/// One value of a tag as a metric (name and alias are set by the caller): value or `is_null`,
/// the PLC's source timestamp, and the `quality` property unless the value is good.
pub fn metric(datatype: u32, v: &TagValue) -> Metric {
    let value = encode(datatype, &v.value);
    let properties = (v.quality != Quality::Good).then(|| {
        props(vec![(
            "quality",
            property_value::Value::IntValue(quality_code(v.quality)),
            INT32,
        )])
    });
    Metric {
        timestamp: Some(v.ts.map(millis).unwrap_or_else(|| millis(Utc::now()))),
        is_null: value.is_none().then_some(true),
        value,
        properties,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        for (ty, v) in [
            (INT16, json!(-5)),
            (UINT32, json!(4_000_000_000u64)),
            (INT64, json!("-9007199254740993")),
            (DOUBLE, json!(1.25)),
            (BOOLEAN, json!(true)),
            (STRING, json!("x")),
            (DATETIME, json!("2026-01-02T03:04:05.678Z")),
        ] {
            let m = encode(ty, &v).unwrap();
            let back = decode(ty, &m).unwrap();
            match ty {
                INT64 => assert_eq!(back, json!(-9007199254740993i64)),
                _ => assert_eq!(back, v, "{ty}"),
            }
        }
        assert!(encode(INT16, &json!(1.5)).is_none());
        assert!(encode(BOOLEAN, &json!(null)).is_none());
        assert_eq!(datatype("Float", false), FLOAT);
        assert_eq!(datatype("Float", true), STRING);
    }
}
