//! OPC UA values → typed JSON for the live cache.
//!
//! Everything a PLC sends passes through here, so nothing in this module may panic: unknown or
//! exotic variants become `null` (or a descriptive string) instead of an error.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use opcua::types::{DataValue, StatusCode, Variant};
use serde_json::{Number, Value};

use crate::live::{Quality, TagValue};

/// Largest integer magnitude a double (and therefore JavaScript) represents exactly: 2^53.
pub const MAX_SAFE_INT: u64 = 1 << 53;

/// Converts one OPC UA variant to JSON. Int64/UInt64 beyond ±2^53 become decimal strings,
/// Float is rendered through its shortest decimal form (so `1.1f32` is `1.1`, not
/// `1.100000023841858`), non-finite floats become `null`, DateTime becomes RFC 3339.
pub fn variant_to_json(v: &Variant) -> Value {
    match v {
        Variant::Empty => Value::Null,
        Variant::Boolean(b) => Value::Bool(*b),
        Variant::SByte(x) => Value::from(*x),
        Variant::Byte(x) => Value::from(*x),
        Variant::Int16(x) => Value::from(*x),
        Variant::UInt16(x) => Value::from(*x),
        Variant::Int32(x) => Value::from(*x),
        Variant::UInt32(x) => Value::from(*x),
        Variant::Int64(x) => {
            if x.unsigned_abs() <= MAX_SAFE_INT {
                Value::from(*x)
            } else {
                Value::String(x.to_string())
            }
        }
        Variant::UInt64(x) => {
            if *x <= MAX_SAFE_INT {
                Value::from(*x)
            } else {
                Value::String(x.to_string())
            }
        }
        Variant::Float(f) => float32_to_json(*f),
        Variant::Double(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Variant::String(s) => s
            .value()
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.clone())),
        Variant::DateTime(d) => Value::String(rfc3339(d.as_chrono())),
        Variant::Guid(g) => Value::String(g.to_string()),
        Variant::StatusCode(s) => Value::String(status_name(*s).to_string()),
        Variant::ByteString(b) => b.value.as_ref().map_or(Value::Null, |b| {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }),
        Variant::XmlElement(x) => Value::String(x.to_string()),
        Variant::QualifiedName(q) => Value::String(q.name.to_string()),
        Variant::LocalizedText(t) => Value::String(t.text.to_string()),
        Variant::NodeId(n) => Value::String(n.to_string()),
        Variant::ExpandedNodeId(n) => Value::String(n.to_string()),
        Variant::Variant(inner) => variant_to_json(inner),
        Variant::DataValue(dv) => dv.value.as_ref().map_or(Value::Null, variant_to_json),
        Variant::Array(a) => Value::Array(a.values.iter().map(variant_to_json).collect()),
        // Structures and diagnostics have no meaningful flat representation on an HMI.
        Variant::ExtensionObject(_) | Variant::DiagnosticInfo(_) => Value::Null,
    }
}

fn float32_to_json(f: f32) -> Value {
    if !f.is_finite() {
        return Value::Null;
    }
    // Shortest round-trip decimal of the f32, reparsed as f64.
    let shortest: f64 = f.to_string().parse().unwrap_or(f as f64);
    Number::from_f64(shortest).map_or(Value::Null, Value::Number)
}

/// RFC 3339 with millisecond precision and `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The symbolic name of a status code (`BadUserAccessDenied`), without the info bits.
pub fn status_name(s: StatusCode) -> &'static str {
    if s.is_good() && s.sub_code() == opcua::types::SubStatusCode::Good {
        return "Good";
    }
    s.sub_code().name()
}

/// Quality class and (when not good) the status name as the reason.
pub fn quality(s: StatusCode) -> (Quality, Option<String>) {
    if s.is_good() {
        (Quality::Good, None)
    } else if s.is_uncertain() {
        (Quality::Uncertain, Some(status_name(s).to_string()))
    } else {
        (Quality::Bad, Some(status_name(s).to_string()))
    }
}

/// A DataValue as the cache stores it: typed value, quality from the StatusCode, and the source
/// timestamp (else the server timestamp, else `now`).
pub fn data_value_to_tag_value(dv: &DataValue, now: DateTime<Utc>) -> TagValue {
    let status = dv.status.unwrap_or(StatusCode::Good);
    let (quality, reason) = quality(status);
    let ts = dv
        .source_timestamp
        .filter(|t| !t.is_null())
        .or(dv.server_timestamp.filter(|t| !t.is_null()))
        .map(|t| t.as_chrono())
        .unwrap_or(now);
    TagValue {
        value: dv.value.as_ref().map_or(Value::Null, variant_to_json),
        quality,
        reason,
        ts: Some(ts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opcua::types::{Array, UAString, VariantScalarTypeId};
    use serde_json::json;

    #[test]
    fn scalars_become_typed_json() {
        assert_eq!(variant_to_json(&Variant::Boolean(true)), json!(true));
        assert_eq!(variant_to_json(&Variant::Int16(-5)), json!(-5));
        assert_eq!(variant_to_json(&Variant::UInt32(70000)), json!(70000));
        assert_eq!(variant_to_json(&Variant::Float(1.1)), json!(1.1));
        assert_eq!(variant_to_json(&Variant::Double(0.25)), json!(0.25));
        assert_eq!(variant_to_json(&Variant::Float(f32::NAN)), Value::Null);
        assert_eq!(
            variant_to_json(&Variant::Double(f64::INFINITY)),
            Value::Null
        );
        assert_eq!(
            variant_to_json(&Variant::String(UAString::from("abc"))),
            json!("abc")
        );
        assert_eq!(
            variant_to_json(&Variant::String(UAString::null())),
            Value::Null
        );
        assert_eq!(variant_to_json(&Variant::Empty), Value::Null);
    }

    #[test]
    fn big_64_bit_integers_become_strings() {
        assert_eq!(
            variant_to_json(&Variant::Int64(9_007_199_254_740_992)),
            json!(9_007_199_254_740_992i64)
        );
        assert_eq!(
            variant_to_json(&Variant::Int64(9_007_199_254_740_993)),
            json!("9007199254740993")
        );
        assert_eq!(
            variant_to_json(&Variant::Int64(i64::MIN)),
            json!("-9223372036854775808")
        );
        assert_eq!(
            variant_to_json(&Variant::UInt64(u64::MAX)),
            json!("18446744073709551615")
        );
    }

    #[test]
    fn datetime_is_rfc3339_and_arrays_are_lists() {
        let t = opcua::types::DateTime::ymd_hms(2026, 11, 23, 10, 0, 1);
        assert_eq!(
            variant_to_json(&Variant::from(t)),
            json!("2026-11-23T10:00:01.000Z")
        );
        let a = Array::new(
            VariantScalarTypeId::Boolean,
            vec![Variant::Boolean(true), Variant::Boolean(false)],
        )
        .unwrap();
        assert_eq!(
            variant_to_json(&Variant::Array(Box::new(a))),
            json!([true, false])
        );
    }

    #[test]
    fn quality_keeps_the_status_name() {
        assert_eq!(quality(StatusCode::Good), (Quality::Good, None));
        assert_eq!(
            quality(StatusCode::BadSensorFailure),
            (Quality::Bad, Some("BadSensorFailure".into()))
        );
        assert_eq!(
            quality(StatusCode::UncertainLastUsableValue),
            (Quality::Uncertain, Some("UncertainLastUsableValue".into()))
        );
        // Garbage status codes never panic.
        let (q, r) = quality(StatusCode::from(0xdead_beefu32));
        assert_eq!(q, Quality::Bad);
        assert!(r.is_some());
    }

    #[test]
    fn timestamps_fall_back_source_server_now() {
        let now = Utc::now();
        let mut dv = DataValue::value_only(Variant::Int32(3));
        assert_eq!(data_value_to_tag_value(&dv, now).ts, Some(now));
        let server = opcua::types::DateTime::ymd_hms(2026, 1, 1, 0, 0, 0);
        dv.server_timestamp = Some(server);
        assert_eq!(
            data_value_to_tag_value(&dv, now).ts,
            Some(server.as_chrono())
        );
        let source = opcua::types::DateTime::ymd_hms(2026, 1, 1, 0, 0, 5);
        dv.source_timestamp = Some(source);
        let tv = data_value_to_tag_value(&dv, now);
        assert_eq!(tv.ts, Some(source.as_chrono()));
        assert_eq!(tv.quality, Quality::Good);
        assert_eq!(tv.value, json!(3));
    }
}
