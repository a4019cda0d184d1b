//! JSON → OPC UA Variant for writes, by the node's own DataType.
//!
//! The PLC (and async-opcua's server) will happily store an Int32 written into an Int16 node, so
//! the client must build exactly the right Variant itself and refuse anything lossy: a string for
//! a number, 70000 for an Int16, 1.5 for an integer, NaN/Infinity, an array of the wrong length,
//! a value outside the configured engineering range.

use std::str::FromStr;

use opcua::types::{Array, DateTime, UAString, Variant, VariantScalarTypeId};
use serde_json::Value;

/// Longest string accepted for a String node, in bytes: an S7 `String` holds at most 254 bytes,
/// and OPC UA sends text as UTF-8, so "€" (3 bytes) counts three times.
pub const MAX_STRING_BYTES: usize = 254;

/// What the value is checked against besides its type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Engineering range `[min, max]` from config.
    pub range: Option<(f64, f64)>,
    /// Unit for the message ("out of range 0..100 kW").
    pub unit: Option<String>,
}

/// Builds the Variant for a node of `data_type` (a built-in type name such as `Int16`).
/// `array_size` `Some(n)` expects a JSON list of exactly `n` elements; `None` a scalar.
pub fn coerce(
    value: &Value,
    data_type: &str,
    array_size: Option<u32>,
    limits: &Limits,
) -> Result<Variant, String> {
    match array_size {
        None => coerce_scalar(value, data_type, limits),
        Some(n) => {
            let Value::Array(items) = value else {
                return Err(format!(
                    "expected a list of {n} {data_type} values, got {}",
                    describe(value)
                ));
            };
            if items.len() != n as usize {
                return Err(format!(
                    "expected a list of {n} {data_type} values, got {} elements",
                    items.len()
                ));
            }
            let ty = scalar_type_id(data_type)
                .ok_or_else(|| format!("writing {data_type} values is not supported"))?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    coerce_scalar(v, data_type, limits).map_err(|e| format!("element {i}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            single_array(ty, values)
        }
    }
}

/// A one-dimensional Array variant (also what an IndexRange write of one element carries).
pub fn single_array(ty: VariantScalarTypeId, values: Vec<Variant>) -> Result<Variant, String> {
    Array::new(ty, values)
        .map(|a| Variant::Array(Box::new(a)))
        .map_err(|e| format!("cannot build the array: {e}"))
}

/// The Variant scalar type of a built-in data type name, for the types Stator writes.
pub fn scalar_type_id(data_type: &str) -> Option<VariantScalarTypeId> {
    Some(match data_type {
        "Boolean" => VariantScalarTypeId::Boolean,
        "SByte" => VariantScalarTypeId::SByte,
        "Byte" => VariantScalarTypeId::Byte,
        "Int16" => VariantScalarTypeId::Int16,
        "UInt16" => VariantScalarTypeId::UInt16,
        "Int32" => VariantScalarTypeId::Int32,
        "UInt32" => VariantScalarTypeId::UInt32,
        "Int64" => VariantScalarTypeId::Int64,
        "UInt64" => VariantScalarTypeId::UInt64,
        "Float" => VariantScalarTypeId::Float,
        "Double" => VariantScalarTypeId::Double,
        "String" => VariantScalarTypeId::String,
        "DateTime" => VariantScalarTypeId::DateTime,
        _ => return None,
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 40 => "a string".into(),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn coerce_scalar(value: &Value, data_type: &str, limits: &Limits) -> Result<Variant, String> {
    let v = match data_type {
        "Boolean" => match value {
            Value::Bool(b) => Variant::Boolean(*b),
            other => return Err(format!("expected true or false, got {}", describe(other))),
        },
        "SByte" => Variant::SByte(int_in::<i8>(value, data_type, limits)?),
        "Byte" => Variant::Byte(int_in::<u8>(value, data_type, limits)?),
        "Int16" => Variant::Int16(int_in::<i16>(value, data_type, limits)?),
        "UInt16" => Variant::UInt16(int_in::<u16>(value, data_type, limits)?),
        "Int32" => Variant::Int32(int_in::<i32>(value, data_type, limits)?),
        "UInt32" => Variant::UInt32(int_in::<u32>(value, data_type, limits)?),
        "Int64" => Variant::Int64(int_in::<i64>(value, data_type, limits)?),
        "UInt64" => Variant::UInt64(int_in::<u64>(value, data_type, limits)?),
        "Float" => {
            let f = finite(value, data_type)?;
            if f.abs() > f32::MAX as f64 {
                return Err(format!("{f} is out of range for Float"));
            }
            check_range(f, limits)?;
            Variant::Float(f as f32)
        }
        "Double" => {
            let f = finite(value, data_type)?;
            check_range(f, limits)?;
            Variant::Double(f)
        }
        "String" => match value {
            Value::String(s) => {
                let n = s.len();
                if n > MAX_STRING_BYTES {
                    return Err(format!(
                        "text too long: {n} bytes in UTF-8, at most {MAX_STRING_BYTES}"
                    ));
                }
                Variant::String(UAString::from(s.as_str()))
            }
            other => return Err(format!("expected a string, got {}", describe(other))),
        },
        "DateTime" => match value {
            Value::String(s) => {
                let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                    format!("expected an RFC 3339 time such as 2026-01-31T12:00:00Z, got {s:?}")
                })?;
                Variant::from(DateTime::from(t.with_timezone(&chrono::Utc)))
            }
            other => {
                return Err(format!(
                    "expected an RFC 3339 time string, got {}",
                    describe(other)
                ))
            }
        },
        other => return Err(format!("writing {other} values is not supported")),
    };
    Ok(v)
}

fn finite(value: &Value, data_type: &str) -> Result<f64, String> {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => Ok(f),
            _ => Err(format!("{n} is not a finite number")),
        },
        other => Err(format!(
            "expected a number for {data_type}, got {}",
            describe(other)
        )),
    }
}

/// An integer that fits `T` exactly. Accepts JSON integers, integral floats (`5.0`) and, for the
/// 64-bit types only, decimal strings (the cache shows values beyond 2^53 as strings).
fn int_in<T>(value: &Value, data_type: &str, limits: &Limits) -> Result<T, String>
where
    T: TryFrom<i128> + Into<i128> + Copy + Bounded,
{
    let wide: i128 = match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i as i128
            } else if let Some(u) = n.as_u64() {
                u as i128
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if !f.is_finite() {
                    return Err(format!("{n} is not a finite number"));
                }
                if f.fract() != 0.0 {
                    return Err(format!("{n} is not a whole number ({data_type})"));
                }
                if f.abs() > 1e20 {
                    return Err(format!("{n} is out of range for {data_type}"));
                }
                f as i128
            }
        }
        Value::String(s) if matches!(data_type, "Int64" | "UInt64") => i128::from_str(s.trim())
            .map_err(|_| {
                format!("expected a whole number for {data_type}, got the string {s:?}")
            })?,
        other => {
            return Err(format!(
                "expected a whole number for {data_type}, got {}",
                describe(other)
            ))
        }
    };
    let t = T::try_from(wide).map_err(|_| {
        format!(
            "{wide} is out of range for {data_type} ({}..{})",
            T::MIN_I128,
            T::MAX_I128
        )
    })?;
    check_range(wide as f64, limits)?;
    Ok(t)
}

/// Integer bounds as i128, for messages.
trait Bounded {
    const MIN_I128: i128;
    const MAX_I128: i128;
}

macro_rules! bounded {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            const MIN_I128: i128 = <$t>::MIN as i128;
            const MAX_I128: i128 = <$t>::MAX as i128;
        }
    )*};
}
bounded!(i8, u8, i16, u16, i32, u32, i64, u64);

fn check_range(v: f64, limits: &Limits) -> Result<(), String> {
    if let Some((lo, hi)) = limits.range {
        if v < lo || v > hi {
            let unit = limits
                .unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            return Err(format!(
                "{} is out of range {}..{}{unit}",
                fmt_num(v),
                fmt_num(lo),
                fmt_num(hi)
            ));
        }
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value, t: &str) -> Variant {
        coerce(&v, t, None, &Limits::default()).unwrap()
    }
    fn err(v: Value, t: &str) -> String {
        coerce(&v, t, None, &Limits::default()).unwrap_err()
    }

    #[test]
    fn each_type_gets_its_exact_variant() {
        assert_eq!(ok(json!(true), "Boolean"), Variant::Boolean(true));
        assert_eq!(ok(json!(-128), "SByte"), Variant::SByte(-128));
        assert_eq!(ok(json!(255), "Byte"), Variant::Byte(255));
        assert_eq!(ok(json!(-32768), "Int16"), Variant::Int16(-32768));
        assert_eq!(ok(json!(5.0), "Int16"), Variant::Int16(5));
        assert_eq!(ok(json!(65535), "UInt16"), Variant::UInt16(65535));
        assert_eq!(ok(json!(-7), "Int32"), Variant::Int32(-7));
        assert_eq!(
            ok(json!(4_000_000_000u32), "UInt32"),
            Variant::UInt32(4_000_000_000)
        );
        assert_eq!(
            ok(json!("9223372036854775807"), "Int64"),
            Variant::Int64(i64::MAX)
        );
        assert_eq!(ok(json!(u64::MAX), "UInt64"), Variant::UInt64(u64::MAX));
        assert_eq!(ok(json!(1.5), "Float"), Variant::Float(1.5));
        assert_eq!(ok(json!(2), "Double"), Variant::Double(2.0));
        assert_eq!(ok(json!("hi"), "String"), Variant::String("hi".into()));
        assert_eq!(
            ok(json!("2026-11-23T10:00:00+01:00"), "DateTime"),
            Variant::from(DateTime::ymd_hms(2026, 11, 23, 9, 0, 0))
        );
    }

    #[test]
    fn lossy_values_are_refused_with_a_reason() {
        assert!(err(json!("12"), "Int16").contains("expected a whole number"));
        assert!(err(json!("1.5"), "Float").contains("expected a number"));
        assert!(err(json!(70000), "Int16").contains("out of range for Int16 (-32768..32767)"));
        assert!(err(json!(-1), "UInt16").contains("out of range"));
        assert!(err(json!(1.5), "Int32").contains("not a whole number"));
        assert!(err(json!(null), "Float").contains("got null"));
        assert!(err(json!(1e39), "Float").contains("out of range for Float"));
        assert!(err(json!(1), "Boolean").contains("expected true or false"));
        assert!(err(json!("x".repeat(255)), "String").contains("too long"));
        // S7 counts bytes: 254 × "€" is 762 bytes of UTF-8.
        let e = err(json!("€".repeat(254)), "String");
        assert!(e.contains("762 bytes"), "{e}");
        assert!(err(json!("€".repeat(85)), "String").contains("too long"));
        ok(json!("€".repeat(84)), "String");
        ok(json!("x".repeat(254)), "String");
        assert!(err(json!(12), "String").contains("expected a string"));
        assert!(err(json!("yesterday"), "DateTime").contains("RFC 3339"));
        assert!(err(json!(1), "Guid").contains("not supported"));
        // Strings for 64-bit integers only.
        assert!(err(json!("5"), "Int32").contains("expected a whole number"));
    }

    #[test]
    fn arrays_need_the_right_length_and_element_type() {
        let v = coerce(
            &json!([true, false, true]),
            "Boolean",
            Some(3),
            &Limits::default(),
        )
        .unwrap();
        let Variant::Array(a) = v else { panic!() };
        assert_eq!(a.value_type, VariantScalarTypeId::Boolean);
        assert_eq!(a.values.len(), 3);
        let e = coerce(&json!([true]), "Boolean", Some(8), &Limits::default()).unwrap_err();
        assert!(e.contains("got 1 elements"), "{e}");
        let e = coerce(&json!([true, 1]), "Boolean", Some(2), &Limits::default()).unwrap_err();
        assert!(e.starts_with("element 1:"), "{e}");
        let e = coerce(&json!(true), "Boolean", Some(2), &Limits::default()).unwrap_err();
        assert!(e.contains("expected a list"), "{e}");
    }

    #[test]
    fn engineering_range_names_the_unit() {
        let l = Limits {
            range: Some((0.0, 100.0)),
            unit: Some("kW".into()),
        };
        assert_eq!(
            coerce(&json!(150), "Float", None, &l).unwrap_err(),
            "150 is out of range 0..100 kW"
        );
        assert_eq!(
            coerce(&json!(-1), "Int16", None, &l).unwrap_err(),
            "-1 is out of range 0..100 kW"
        );
        assert_eq!(
            coerce(&json!(100), "Float", None, &l).unwrap(),
            Variant::Float(100.0)
        );
    }
}
