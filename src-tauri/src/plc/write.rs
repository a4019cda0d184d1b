//! Writes, PLC side: coerce to the node's type, write once (never retried), read back.
//!
//! Who may write is decided by the api layer (roles, parks, remote switch, rate limit, audit);
//! [`writable_by_policy`] gives it the config half of "may this tag be written".

use std::time::Duration;

use opcua::types::{
    AttributeId, DataValue, NodeId, NumericRange, QualifiedName, ReadValueId, StatusCode,
    TimestampsToReturn, WriteValue,
};
use serde_json::Value;

use crate::config::{Config, WritePolicy};
use crate::live::{PlcStatus, TagMeta, ValueUpdate};
use crate::plc::coerce::{self, Limits};
use crate::plc::engine::Engine;
use crate::plc::values::{data_value_to_tag_value, status_name};

/// How long a write (and its read-back) may take before it is reported as `not_connected`.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a write did not happen (or could not be confirmed). `code()` gives the api's stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The value does not fit the node (type, range, length) or the PLC said so.
    #[error("{0}")]
    Invalid(String),
    /// The PLC (or its access level) refuses writing this node.
    #[error("{0}")]
    Forbidden(String),
    /// The PLC is not connected, or did not answer in time.
    #[error("{0}")]
    NotConnected(String),
    /// No such PLC, tag or element.
    #[error("{0}")]
    NotFound(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl WriteError {
    /// Stable code for the api: `invalid`, `forbidden`, `not_connected`, `not_found`, `internal`.
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::Invalid(_) => "invalid",
            WriteError::Forbidden(_) => "forbidden",
            WriteError::NotConnected(_) => "not_connected",
            WriteError::NotFound(_) => "not_found",
            WriteError::Internal(_) => "internal",
        }
    }

    /// The human message.
    pub fn message(&self) -> &str {
        match self {
            WriteError::Invalid(m)
            | WriteError::Forbidden(m)
            | WriteError::NotConnected(m)
            | WriteError::NotFound(m)
            | WriteError::Internal(m) => m,
        }
    }

    /// The OPC UA status name the PLC answered with (`BadUserAccessDenied`), when it did.
    pub fn plc_status(&self) -> Option<&str> {
        self.message()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| {
                (w.starts_with("Bad") || w.starts_with("Uncertain"))
                    && w.parse::<opcua::types::SubStatusCode>().is_ok()
            })
    }

    /// Maps a PLC's refusal of a write to the api's classes, keeping the status name.
    pub fn from_status(status: StatusCode) -> WriteError {
        let name = status_name(status);
        let msg = format!("the PLC refused the write: {name}");
        let s = status.sub_code();
        let is = |c: StatusCode| s == c.sub_code();
        if is(StatusCode::BadUserAccessDenied)
            || is(StatusCode::BadNotWritable)
            || is(StatusCode::BadWriteNotSupported)
            || is(StatusCode::BadNotSupported)
        {
            WriteError::Forbidden(msg)
        } else if is(StatusCode::BadTypeMismatch)
            || is(StatusCode::BadOutOfRange)
            || is(StatusCode::BadIndexRangeInvalid)
            || is(StatusCode::BadIndexRangeNoData)
            || is(StatusCode::BadIndexRangeDataMismatch)
            || is(StatusCode::BadDataEncodingInvalid)
            || is(StatusCode::BadAttributeIdInvalid)
        {
            WriteError::Invalid(msg)
        } else if is(StatusCode::BadNodeIdUnknown) || is(StatusCode::BadNodeIdInvalid) {
            WriteError::NotFound(msg)
        } else if is(StatusCode::BadTimeout)
            || is(StatusCode::BadNotConnected)
            || is(StatusCode::BadConnectionClosed)
            || is(StatusCode::BadSessionClosed)
            || is(StatusCode::BadSessionIdInvalid)
            || is(StatusCode::BadSecureChannelClosed)
            || is(StatusCode::BadServerNotConnected)
            || is(StatusCode::BadCommunicationError)
        {
            WriteError::NotConnected(format!("the write did not reach the PLC: {name}"))
        } else {
            WriteError::Internal(msg)
        }
    }
}

/// `Tag[3]` → (`Tag`, Some(3)); anything else is the tag name itself.
pub fn split_element(node: &str) -> (&str, Option<u32>) {
    if let Some(open) = node.rfind('[') {
        if let Some(idx) = node[open..]
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) && open > 0 {
                if let Ok(i) = idx.parse() {
                    return (&node[..open], Some(i));
                }
            }
        }
    }
    (node, None)
}

/// The config half of "may this be written": the PLC must allow it (`meta.writable`), config must
/// not forbid it (`tags.<plc>/<tag>.writable: false`), and under `write_policy: allowlist` the tag
/// must be configured `writable: true`. `tag` may be an element (`Tag[3]`): the array decides.
pub fn writable_by_policy(
    cfg: &Config,
    plc: &str,
    tag: &str,
    meta: &TagMeta,
) -> Result<(), String> {
    let (base, _) = split_element(tag);
    if !meta.writable {
        return Err(format!("the PLC does not allow writing {base}"));
    }
    let Some(p) = cfg.plc(plc) else {
        return Err(format!("no PLC {plc:?} in the configuration"));
    };
    let configured = cfg.tag(plc, base).and_then(|t| t.writable);
    if configured == Some(false) {
        return Err(format!(
            "{plc}/{base} is configured read-only (writable: false)"
        ));
    }
    if p.write_policy == WritePolicy::Allowlist && configured != Some(true) {
        return Err(format!(
            "{plc} writes only tags configured writable: true (write_policy allowlist); {base} is not"
        ));
    }
    Ok(())
}

impl Engine {
    /// Writes `value` to `node` (a tag name or an element `Tag[3]`) of `plc`, once, and returns
    /// the value read back from the PLC; the read-back of the whole node also goes into the live
    /// cache right away. `range` is the engineering range to enforce (the unit
    /// for the message comes from config; when `None`, the configured range applies).
    /// Policy (roles, allowlist, remote writes) is the caller's job: see [`writable_by_policy`].
    pub async fn write(
        &self,
        plc: &str,
        node: &str,
        value: &Value,
        range: Option<(f64, f64)>,
    ) -> Result<Value, WriteError> {
        let Some(shared) = self.plcs.get(plc) else {
            return Err(WriteError::NotFound(format!("no PLC {plc:?}")));
        };
        let live = shared.live.read().clone();
        let Some(live) = live.filter(|_| self.cache.status(plc) == Some(PlcStatus::Connected))
        else {
            return Err(WriteError::NotConnected(format!("{plc} is not connected")));
        };
        let (base, element) = split_element(node);
        let Some(&i) = live.index.get(base) else {
            return Err(WriteError::NotFound(format!("{plc} has no tag {base:?}")));
        };
        let tag = &live.tags[i];
        let meta = &tag.meta;
        let cfg_tag = self.cfg.tag(plc, base);
        let limits = Limits {
            range: range.or_else(|| cfg_tag.and_then(|t| t.range).map(|[a, b]| (a, b))),
            unit: cfg_tag.and_then(|t| t.unit.clone()),
        };
        // What to write where: the whole node, an element child, or the array with an IndexRange.
        let (node_id, index_range, variant): (NodeId, NumericRange, _) = match element {
            None => {
                let v = coerce::coerce(value, &meta.data_type, meta.array_size, &limits)
                    .map_err(|e| WriteError::Invalid(format!("{node}: {e}")))?;
                (tag.node.clone(), NumericRange::None, v)
            }
            Some(k) => {
                let Some(size) = meta.array_size else {
                    return Err(WriteError::NotFound(format!("{base} is not an array")));
                };
                if k >= size {
                    return Err(WriteError::NotFound(format!(
                        "{base} has elements [0]..[{}], not [{k}]",
                        size.saturating_sub(1)
                    )));
                }
                let v = coerce::coerce(value, &meta.data_type, None, &limits)
                    .map_err(|e| WriteError::Invalid(format!("{node}: {e}")))?;
                match tag.elements.get(k as usize) {
                    Some(child) => (child.clone(), NumericRange::None, v),
                    None => {
                        let ty = coerce::scalar_type_id(&meta.data_type).ok_or_else(|| {
                            WriteError::Invalid(format!(
                                "writing {} is not supported",
                                meta.data_type
                            ))
                        })?;
                        let one =
                            coerce::single_array(ty, vec![v]).map_err(WriteError::Internal)?;
                        (tag.node.clone(), NumericRange::Index(k), one)
                    }
                }
            }
        };
        let wv = WriteValue {
            node_id,
            attribute_id: AttributeId::Value as u32,
            index_range,
            value: DataValue::value_only(variant),
        };
        let session = live.session.clone();
        let result = tokio::time::timeout(WRITE_TIMEOUT, session.write(&[wv])).await;
        let status = match result {
            Err(_) => {
                return Err(WriteError::NotConnected(
                    "timeout: the PLC did not answer within 5 s".into(),
                ))
            }
            Ok(Err(e)) => return Err(WriteError::from_status(e.status())),
            Ok(Ok(r)) => r.first().copied().unwrap_or(StatusCode::BadUnexpectedError),
        };
        if !status.is_good() {
            return Err(WriteError::from_status(status));
        }
        // Read back what the PLC now holds: the whole node, which also goes into the live cache
        // at once. async-opcua-server may hold back the second of two quick changes of one item
        // in a publish, so waiting for the subscription could show the older value for long.
        let rv = ReadValueId {
            node_id: tag.node.clone(),
            attribute_id: AttributeId::Value as u32,
            index_range: NumericRange::None,
            data_encoding: QualifiedName::null(),
        };
        let back = tokio::time::timeout(
            WRITE_TIMEOUT,
            session.read(&[rv], TimestampsToReturn::Source, 0.0),
        )
        .await;
        match back {
            Ok(Ok(r)) => match r.first() {
                Some(dv) if dv.status.unwrap_or(StatusCode::Good).is_good() => {
                    let tv = data_value_to_tag_value(dv, chrono::Utc::now());
                    let whole = tv.value.clone();
                    self.cache.update(
                        plc,
                        [ValueUpdate {
                            tag: base.to_string(),
                            value: tv,
                        }],
                    );
                    Ok(match element {
                        Some(k) => whole.get(k as usize).cloned().unwrap_or(Value::Null),
                        None => whole,
                    })
                }
                Some(dv) => Err(WriteError::Internal(format!(
                    "written, but reading it back failed: {}",
                    status_name(dv.status.unwrap_or(StatusCode::Good))
                ))),
                None => Err(WriteError::Internal(
                    "written, but reading it back returned nothing".into(),
                )),
            },
            Ok(Err(e)) => Err(WriteError::Internal(format!(
                "written, but reading it back failed: {}",
                status_name(e.status())
            ))),
            Err(_) => Err(WriteError::Internal(
                "written, but reading it back timed out".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn element_syntax() {
        assert_eq!(
            split_element("CMD_Instant_Cutoff[3]"),
            ("CMD_Instant_Cutoff", Some(3))
        );
        assert_eq!(split_element("A/B[10]"), ("A/B", Some(10)));
        assert_eq!(split_element("Plain"), ("Plain", None));
        assert_eq!(split_element("X[]"), ("X[]", None));
        assert_eq!(split_element("[3]"), ("[3]", None));
        assert_eq!(split_element("X[-1]"), ("X[-1]", None));
    }

    #[test]
    fn refusals_map_to_codes_with_the_status_name() {
        let e = WriteError::from_status(StatusCode::BadUserAccessDenied);
        assert_eq!(e.code(), "forbidden");
        assert_eq!(e.plc_status(), Some("BadUserAccessDenied"));
        let e = WriteError::from_status(StatusCode::BadNotWritable);
        assert_eq!(e.code(), "forbidden");
        let e = WriteError::from_status(StatusCode::BadTypeMismatch);
        assert_eq!(e.code(), "invalid");
        assert_eq!(e.plc_status(), Some("BadTypeMismatch"));
        assert_eq!(
            WriteError::from_status(StatusCode::BadOutOfRange).code(),
            "invalid"
        );
        assert_eq!(
            WriteError::from_status(StatusCode::BadTimeout).code(),
            "not_connected"
        );
        assert_eq!(
            WriteError::Invalid("x is out of range".into()).plc_status(),
            None
        );
    }

    fn cfg(extra: &str) -> Config {
        Config::parse(
            Path::new("t.json"),
            &format!(
                r#"{{ "plc_config": [{{"id":"p","url":"opc.tcp://h:4840","name":"P"{extra}}}],
                "common_root_node_id":"ns=4;i=2","broadcast_interval_seconds":1,
                "plc_reconnect_delay_minutes":1,
                "tags": {{"p/Ro": {{"writable": false}}, "p/Ok": {{"writable": true}}}} }}"#
            ),
        )
        .unwrap()
    }

    fn meta(writable: bool) -> TagMeta {
        TagMeta {
            name: "X".into(),
            node_id: "ns=4;i=9".into(),
            data_type: "Float".into(),
            array_size: None,
            writable,
            element_node_ids: vec![],
        }
    }

    #[test]
    fn policy_combines_plc_and_config() {
        let c = cfg("");
        assert!(writable_by_policy(&c, "p", "Free", &meta(true)).is_ok());
        assert!(writable_by_policy(&c, "p", "Free", &meta(false)).is_err());
        let e = writable_by_policy(&c, "p", "Ro", &meta(true)).unwrap_err();
        assert!(e.contains("writable: false"), "{e}");
        assert!(writable_by_policy(&c, "p", "Ro[2]", &meta(true)).is_err());
        let c = cfg(r#","write_policy":"allowlist""#);
        assert!(writable_by_policy(&c, "p", "Ok", &meta(true)).is_ok());
        let e = writable_by_policy(&c, "p", "Free", &meta(true)).unwrap_err();
        assert!(e.contains("allowlist"), "{e}");
    }
}
