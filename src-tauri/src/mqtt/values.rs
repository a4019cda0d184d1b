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
// The packed array types (Int8Array = 22 … DateTimeArray = 34) are the scalar type + 21.
pub const BOOLEAN_ARRAY: u32 = BOOLEAN + ARRAY_OFFSET;
pub const STRING_ARRAY: u32 = STRING + ARRAY_OFFSET;
const ARRAY_OFFSET: u32 = 21;

/// The element datatype of a packed Sparkplug array type (`None` for anything else).
pub fn element_of(datatype: u32) -> Option<u32> {
    (INT8 + ARRAY_OFFSET..=DATETIME + ARRAY_OFFSET)
        .contains(&datatype)
        .then(|| datatype - ARRAY_OFFSET)
}

/// The Sparkplug datatype of an OPC UA built-in type (`array` for one-dimensional arrays: the
/// packed array type of the element, e.g. `Boolean[]` → BooleanArray).
pub fn datatype(opc_type: &str, array: bool) -> u32 {
    let scalar = scalar_datatype(opc_type);
    if array {
        scalar + ARRAY_OFFSET
    } else {
        scalar
    }
}

fn scalar_datatype(opc_type: &str) -> u32 {
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
    if let Some(element) = element_of(datatype) {
        return encode_array(element, v.as_array()?).map(M::BytesValue);
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

/// A packed Sparkplug array (Sparkplug B 3.0, 6.4.17): numbers little-endian back to back,
/// booleans as a 4-byte little-endian count and then bits (first element = most significant bit
/// of the first byte), strings NUL-terminated, DateTimes as u64 milliseconds. `None` when an
/// element does not fit the type.
fn encode_array(element: u32, items: &[Value]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(items.len() * 4 + 4);
    if element == BOOLEAN {
        out.extend_from_slice(&u32::try_from(items.len()).ok()?.to_le_bytes());
        let mut bits = vec![0u8; items.len().div_ceil(8)];
        for (i, b) in items.iter().enumerate() {
            if b.as_bool()? {
                bits[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bits);
        return Some(out);
    }
    for x in items {
        match element {
            INT8 => out.extend_from_slice(&i8::try_from(as_i64(x)?).ok()?.to_le_bytes()),
            INT16 => out.extend_from_slice(&i16::try_from(as_i64(x)?).ok()?.to_le_bytes()),
            INT32 => out.extend_from_slice(&i32::try_from(as_i64(x)?).ok()?.to_le_bytes()),
            INT64 => out.extend_from_slice(&as_i64(x)?.to_le_bytes()),
            UINT8 => out.extend_from_slice(&u8::try_from(as_u64(x)?).ok()?.to_le_bytes()),
            UINT16 => out.extend_from_slice(&u16::try_from(as_u64(x)?).ok()?.to_le_bytes()),
            UINT32 => out.extend_from_slice(&u32::try_from(as_u64(x)?).ok()?.to_le_bytes()),
            UINT64 => out.extend_from_slice(&as_u64(x)?.to_le_bytes()),
            FLOAT => out.extend_from_slice(&(x.as_f64()? as f32).to_le_bytes()),
            DOUBLE => out.extend_from_slice(&x.as_f64()?.to_le_bytes()),
            DATETIME => {
                let t = DateTime::parse_from_rfc3339(x.as_str()?).ok()?;
                out.extend_from_slice(&millis(t.with_timezone(&Utc)).to_le_bytes());
            }
            _ => {
                let s = match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if s.contains('\0') {
                    return None;
                }
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
        }
    }
    Some(out)
}

/// An f32 as JSON with its own shortest digits (1.1, not 1.100000023841858).
pub fn f32_json(f: f32) -> Option<Value> {
    f.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// The JSON array of a packed Sparkplug array; an error names what is wrong (length not a
/// multiple of the element size, a count beyond the bytes, bad UTF-8, a missing NUL).
fn decode_array(element: u32, b: &[u8]) -> Result<Value, String> {
    fn chunks<const N: usize>(b: &[u8]) -> Result<impl Iterator<Item = [u8; N]> + '_, String> {
        if !b.len().is_multiple_of(N) {
            return Err(format!(
                "{} bytes are not a whole number of {N}-byte elements",
                b.len()
            ));
        }
        Ok(b.chunks_exact(N)
            .map(|c| c.try_into().expect("exact chunk")))
    }
    let num = |f: f64| serde_json::Number::from_f64(f).map(Value::Number);
    let items: Vec<Value> = match element {
        BOOLEAN => {
            let (count, bits) = b
                .split_first_chunk::<4>()
                .ok_or("boolean array without its count")?;
            let n = u32::from_le_bytes(*count) as usize;
            if bits.len() < n.div_ceil(8) {
                return Err(format!("boolean array of {n} in {} bytes", bits.len()));
            }
            (0..n)
                .map(|i| Value::from(bits[i / 8] & (0x80 >> (i % 8)) != 0))
                .collect()
        }
        INT8 => chunks::<1>(b)?
            .map(|c| Value::from(i8::from_le_bytes(c)))
            .collect(),
        INT16 => chunks::<2>(b)?
            .map(|c| Value::from(i16::from_le_bytes(c)))
            .collect(),
        INT32 => chunks::<4>(b)?
            .map(|c| Value::from(i32::from_le_bytes(c)))
            .collect(),
        INT64 => chunks::<8>(b)?
            .map(|c| Value::from(i64::from_le_bytes(c)))
            .collect(),
        UINT8 => chunks::<1>(b)?.map(|c| Value::from(c[0])).collect(),
        UINT16 => chunks::<2>(b)?
            .map(|c| Value::from(u16::from_le_bytes(c)))
            .collect(),
        UINT32 => chunks::<4>(b)?
            .map(|c| Value::from(u32::from_le_bytes(c)))
            .collect(),
        UINT64 => chunks::<8>(b)?
            .map(|c| Value::from(u64::from_le_bytes(c)))
            .collect(),
        FLOAT => chunks::<4>(b)?
            .map(|c| f32_json(f32::from_le_bytes(c)).ok_or("not a finite number"))
            .collect::<Result<_, _>>()?,
        DOUBLE => chunks::<8>(b)?
            .map(|c| num(f64::from_le_bytes(c)).ok_or("not a finite number"))
            .collect::<Result<_, _>>()?,
        DATETIME => chunks::<8>(b)?
            .map(|c| {
                let ms = u64::from_le_bytes(c);
                DateTime::<Utc>::from_timestamp_millis(ms as i64)
                    .map(|t| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                    .ok_or_else(|| format!("{ms} is not a DateTime"))
            })
            .collect::<Result<_, _>>()?,
        _ if b.is_empty() => Vec::new(),
        _ => {
            let body = b
                .strip_suffix(&[0])
                .ok_or("string array without its final NUL")?;
            body.split(|&c| c == 0)
                .map(|s| {
                    std::str::from_utf8(s)
                        .map(Value::from)
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(Value::Array(items))
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
        (_, M::StringValue(s)) => Value::from(s.clone()),
        (dt, M::BytesValue(b)) => match element_of(dt) {
            Some(element) => decode_array(element, b)?,
            None => return Err("bytes values are not supported".into()),
        },
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
        assert_eq!(datatype("Float", true), 30);
        assert_eq!(datatype("Boolean", true), BOOLEAN_ARRAY);
        assert_eq!(datatype("String", true), STRING_ARRAY);
    }

    #[test]
    fn packed_arrays_round_trip_and_match_the_specification() {
        for (el, v) in [
            (INT8, json!([-128, 0, 127])),
            (INT16, json!([-5, 300])),
            (INT32, json!([-70000, 1])),
            (INT64, json!([-9007199254740991i64, 3])),
            (UINT8, json!([0, 255])),
            (UINT16, json!([65535])),
            (UINT32, json!([4000000000u64])),
            (UINT64, json!([18446744073709551615u64])),
            (FLOAT, json!([1.1, -2.5])),
            (DOUBLE, json!([0.1, 1e300])),
            (
                BOOLEAN,
                json!([true, false, false, true, false, false, false, false, true]),
            ),
            (STRING, json!(["a", "", "zł"])),
            (DATETIME, json!(["2026-01-02T03:04:05.678Z"])),
            (BOOLEAN, json!([])),
            (STRING, json!([])),
        ] {
            let dt = el + ARRAY_OFFSET;
            let m = encode(dt, &v).unwrap_or_else(|| panic!("{dt}: {v}"));
            assert_eq!(decode(dt, &m).unwrap(), v, "{dt}");
        }
        // Booleans: count 9 (LE), then 1001 0000 1000 0000, as pysparkplug and Ignition pack.
        let m = encode(
            BOOLEAN_ARRAY,
            &json!([true, false, false, true, false, false, false, false, true]),
        );
        assert_eq!(
            m,
            Some(metric::Value::BytesValue(vec![9, 0, 0, 0, 0x90, 0x80]))
        );
        let m = encode(INT16 + ARRAY_OFFSET, &json!([1, -2]));
        assert_eq!(m, Some(metric::Value::BytesValue(vec![1, 0, 0xfe, 0xff])));
        // Out of range or the wrong shape: not sent (is_null), never wrapped.
        assert!(encode(INT8 + ARRAY_OFFSET, &json!([200])).is_none());
        assert!(encode(UINT8 + ARRAY_OFFSET, &json!([-1])).is_none());
        assert!(encode(BOOLEAN_ARRAY, &json!(true)).is_none());
        assert!(encode(STRING_ARRAY, &json!(["a\u{0}b"])).is_none());
        // Garbage from the network: an error, never a panic or a huge allocation.
        let bad = |dt: u32, b: Vec<u8>| decode(dt, &metric::Value::BytesValue(b)).is_err();
        assert!(bad(BOOLEAN_ARRAY, vec![255, 255, 255, 255, 1]));
        assert!(bad(BOOLEAN_ARRAY, vec![1, 0]));
        assert!(bad(INT32 + ARRAY_OFFSET, vec![1, 2, 3]));
        assert!(bad(STRING_ARRAY, b"no nul".to_vec()));
        assert!(bad(STRING_ARRAY, vec![0xff, 0]));
        assert!(bad(STRING, vec![1]));
    }
}
