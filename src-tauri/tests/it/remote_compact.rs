//! The opt-in compact update encoding (subprotocol `stator.v1.compact`) against the default JSON,
//! with real WebSocket clients: same values after decoding, JSON unchanged byte for byte, large
//! updates delivered whole (they are sent fragmented).

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use stator::auth::Role;
use stator::live::{Quality, TagValue, ValueUpdate};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Opens `/ws` offering `protocols`; returns the socket and the selected protocol.
async fn connect(env: &Env, protocols: &str) -> (Ws, Option<String>) {
    let mut req = env.url("/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocols).unwrap(),
    );
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
        .expect("handshake");
    let proto = resp
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    (ws, proto)
}

/// The next text message as sent (raw), skipping control frames.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no error");
        if let Message::Text(t) = m {
            return t.to_string();
        }
    }
}

/// Decodes a compact update into the JSON update's shape, with the names from `snapshot`.
fn decode(compact: &Value, snapshot: &Value) -> Value {
    let plcs: Vec<Value> = compact["plcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let snap = snapshot["plcs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == p["id"])
                .expect("update for a snapshot PLC");
            let changes: Vec<Value> = p["c"]
                .as_array()
                .expect("changes present")
                .iter()
                .map(|c| {
                    let c = c.as_array().unwrap();
                    let i = c[0].as_u64().unwrap() as usize;
                    let mut out = json!({
                        "name": snap["nodes"][i]["name"],
                        "value": c[1],
                        "quality": c.get(3).cloned().unwrap_or(json!("good")),
                        "ts": c[2],
                    });
                    if let Some(r) = c.get(4) {
                        out["reason"] = r.clone();
                    }
                    out
                })
                .collect();
            let mut d = json!({"id": p["id"], "status": p["status"], "changes": changes});
            if let Some(e) = p.get("error") {
                d["error"] = e.clone();
            }
            d
        })
        .collect();
    json!({"type": "update", "seq": compact["seq"], "plcs": plcs})
}

#[tokio::test]
async fn compact_updates_decode_to_the_values_of_the_json_updates() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut plain, p1) = connect(&env, &format!("bearer, {t}")).await;
    let (mut compact, p2) = connect(&env, &format!("stator.v1.compact, bearer, {t}")).await;
    assert_eq!(p1.as_deref(), Some("bearer"));
    assert_eq!(p2.as_deref(), Some("stator.v1.compact"));

    // The snapshot is the same message in both encodings.
    let s1: Value = serde_json::from_str(&next_text(&mut plain).await).unwrap();
    let s2: Value = serde_json::from_str(&next_text(&mut compact).await).unwrap();
    assert_eq!(s1["type"], "snapshot");
    assert_eq!(s1, s2);
    let since = s1["seq"].as_u64().unwrap();

    // One batch: a good float, a bad value with a reason, and a 60 kB multi-byte string (an
    // update far larger than one 16 KiB fragment).
    let big: String = "Wärme €".repeat(7_000);
    env.cache.update(
        "alpha",
        [
            ValueUpdate {
                tag: "P".into(),
                value: TagValue {
                    value: json!(42.25),
                    quality: Quality::Bad,
                    reason: Some("BadSensorFailure".into()),
                    ts: Some(chrono::Utc::now()),
                },
            },
            ValueUpdate {
                tag: "Label".into(),
                value: good(json!(big)),
            },
        ],
    );

    let raw = next_text(&mut plain).await;
    let u1: Value = serde_json::from_str(&raw).unwrap();
    let u2: Value = serde_json::from_str(&next_text(&mut compact).await).unwrap();
    assert_eq!(u1["type"], "update");
    assert_eq!(u2["type"], "update");
    assert_eq!(u1["seq"], u2["seq"]);
    assert!(
        raw.len() > 3 * 16 * 1024,
        "the update spans several fragments"
    );

    // The default stays the documented JSON, byte for byte.
    let d = env.cache.changes_since(since, |p| p == "alpha");
    assert_eq!(
        raw,
        serde_json::to_string(&stator::api::UpdateMsg::new(d.seq, &d.plcs)).unwrap()
    );
    assert_eq!(u1["plcs"][0]["changes"][1]["value"], json!(big));

    // Compact: changes by index, good quality left out, decoded values equal.
    assert!(u2["plcs"][0].get("changes").is_none());
    let c = u2["plcs"][0]["c"].as_array().unwrap();
    assert_eq!(c[0][3], "bad");
    assert_eq!(
        c[1].as_array().unwrap().len(),
        3,
        "good: no quality: {}",
        c[1]
    );
    assert_eq!(decode(&u2, &s2), u1);
}

#[tokio::test]
async fn a_rediscovery_sends_no_indices_and_a_snapshot_request_restores_them() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, proto) = connect(&env, &format!("stator.v1.compact, bearer, {t}")).await;
    assert_eq!(proto.as_deref(), Some("stator.v1.compact"));
    let _snap = next_text(&mut ws).await;

    // New tag list (order changed, one tag added): the old indices are void.
    env.cache.set_tags(
        "alpha",
        vec![
            meta("Q", "Float", false),
            meta("Label", "String", false),
            meta("P", "Float", true),
        ],
    );
    let u: Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(u["plcs"][0]["rediscovered"], true);
    assert!(u["plcs"][0].get("c").is_none(), "{u}");

    // A fresh snapshot gives the new positions; later updates use them.
    let snap = call(&mut ws, json!({"id": 1, "op": "snapshot"})).await;
    assert_eq!(snap["ok"], true);
    let nodes = snap["result"]["plcs"][0]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    set(&env.cache, "alpha", "P", json!(7.5));
    let u: Value = loop {
        let v: Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        if v["type"] == "update" {
            break v;
        }
    };
    let c = &u["plcs"][0]["c"][0];
    let i = c[0].as_u64().unwrap() as usize;
    assert_eq!(nodes[i]["name"], "P");
    assert_eq!(c[1], json!(7.5));
}

#[tokio::test]
async fn compact_alone_is_selected_and_authentication_follows_as_a_message() {
    let env = Env::start(json!({})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;
    let (mut ws, proto) = connect(&env, "stator.v1.compact").await;
    assert_eq!(proto.as_deref(), Some("stator.v1.compact"));
    let r = call(&mut ws, json!({"id": 1, "op": "auth", "token": t})).await;
    assert_eq!(r["ok"], true);
    let snap = next_of(&mut ws, "snapshot").await;
    assert_eq!(snap["plcs"][0]["id"], "alpha");
    set(&env.cache, "alpha", "P", json!(3.0));
    let u = next_of(&mut ws, "update").await;
    assert_eq!(
        u["plcs"][0]["c"][0],
        json!([0, 3.0, u["plcs"][0]["c"][0][2]])
    );
    // Nothing else is pending.
    assert!(quiet(&mut ws, Duration::from_millis(300)).await.is_none());
}
