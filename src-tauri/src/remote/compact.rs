//! The opt-in compact update encoding (`Sec-WebSocket-Protocol: stator.v1.compact`).
//!
//! Why: the JSON update repeats every tag's name and the field names for every change (~95 bytes
//! per tag); with 2,000 changed tags that is ~190 kB ten times a second per client. The compact
//! update refers to a tag by its position in the snapshot's `nodes` list and sends each change as
//! an array, leaving out a good quality. The snapshot and every reply are unchanged, so a client
//! needs only a second decoder for `update`. The exact shape is in docs/protocol.md.

use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;

use super::wsock::Utf8Bytes;
use crate::live::{Change, PlcDelta, PlcStatus, Quality};

/// The subprotocol a client offers to receive compact updates.
pub const PROTOCOL: &str = "stator.v1.compact";

/// One change: `[index, value, ts]`, `[index, value, ts, quality]` or
/// `[index, value, ts, quality, reason]` (quality and reason only when not `good`/absent).
struct C<'a>(&'a Change);

impl Serialize for C<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let tail = match (&c.reason, c.quality) {
            (Some(_), _) => 2,
            (None, Quality::Good) => 0,
            (None, _) => 1,
        };
        let mut seq = s.serialize_seq(Some(3 + tail))?;
        seq.serialize_element(&c.index)?;
        seq.serialize_element(&c.value)?;
        seq.serialize_element(&c.ts)?;
        if tail > 0 {
            seq.serialize_element(&c.quality)?;
        }
        if let Some(r) = &c.reason {
            seq.serialize_element(r)?;
        }
        seq.end()
    }
}

struct Changes<'a>(&'a [Change]);

impl Serialize for Changes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(C))
    }
}

#[derive(Serialize)]
struct Plc<'a> {
    id: &'a str,
    status: PlcStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rediscovered: bool,
    /// Left out when the tag list changed: the indices would refer to a list the client does
    /// not have yet (it fetches a new snapshot, which carries the values).
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<Changes<'a>>,
}

#[derive(Serialize)]
struct Update<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    plcs: Vec<Plc<'a>>,
}

/// Encodes a compact `update` for these changes.
pub(super) fn encode_update(seq: u64, plcs: &[PlcDelta]) -> Utf8Bytes {
    let msg = Update {
        kind: "update",
        seq,
        plcs: plcs
            .iter()
            .map(|p| Plc {
                id: &p.id,
                status: p.status,
                error: &p.error,
                rediscovered: p.rediscovered,
                c: (!p.rediscovered).then_some(Changes(&p.changes)),
            })
            .collect(),
    };
    Utf8Bytes::from(serde_json::to_string(&msg).unwrap_or_else(|_| String::from("{}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(index: usize, quality: Quality, reason: Option<&str>) -> Change {
        Change {
            name: format!("T{index}"),
            index,
            value: json!(1.5),
            quality,
            reason: reason.map(String::from),
            ts: Some("2026-11-23T11:16:28.012Z".parse().unwrap()),
        }
    }

    #[test]
    fn changes_are_arrays_by_index_and_leave_out_good_quality() {
        let plcs = vec![PlcDelta {
            id: "p".into(),
            status: PlcStatus::Connected,
            error: None,
            rediscovered: false,
            changes: vec![
                change(3, Quality::Good, None),
                change(7, Quality::Uncertain, None),
                change(9, Quality::Bad, Some("not_connected")),
            ],
        }];
        let v: serde_json::Value = serde_json::from_str(encode_update(5, &plcs).as_str()).unwrap();
        let ts = "2026-11-23T11:16:28.012Z";
        assert_eq!(
            v,
            json!({"type":"update","seq":5,"plcs":[{"id":"p","status":"CONNECTED","c":[
                [3,1.5,ts],[7,1.5,ts,"uncertain"],[9,1.5,ts,"bad","not_connected"]]}]})
        );
    }

    #[test]
    fn a_rediscovered_plc_carries_no_indices() {
        let plcs = vec![PlcDelta {
            id: "p".into(),
            status: PlcStatus::Connected,
            error: Some("x".into()),
            rediscovered: true,
            changes: vec![change(0, Quality::Good, None)],
        }];
        let v: serde_json::Value = serde_json::from_str(encode_update(5, &plcs).as_str()).unwrap();
        assert_eq!(
            v,
            json!({"type":"update","seq":5,"plcs":[{"id":"p","status":"CONNECTED","error":"x","rediscovered":true}]})
        );
    }
}
