//! One sample of every reply and push message, committed as `ui/src/wire-samples.ts`: each is an
//! object literal declared with its `protocol.ts` type, so the UI's type check (`vue-tsc`, run by
//! `npm run build`) fails on a missing, extra or mistyped field, and `wire.test.ts` feeds them to
//! the UI's decoders. The test below fails when the committed file differs from what the Rust
//! types produce. Regenerate with `UPDATE_WIRE_SAMPLES=1 cargo test --no-default-features --lib
//! wire` and commit the file.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::auth::{Parks, Principal, Source, UserInfo};
use crate::live::{Change, NodeSnapshot, PlcStatus, Quality};

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).unwrap()
}

fn principal() -> Principal {
    Principal {
        user_id: 7,
        username: "ann".into(),
        role: Role::Operator,
        parks: Parks::Only(["alpha".to_string()].into_iter().collect()),
        source: Source::Remote("192.0.2.10".into()),
        session_id: 3,
        expires_at: at(43_200),
        idle_expires_at: at(1_800),
    }
}

fn user_view() -> UserView {
    UserView {
        username: "ann".into(),
        role: Role::Operator,
        parks: vec!["alpha".into()],
    }
}

fn user_row() -> UserRow {
    UserInfo {
        id: 7,
        username: "ann".into(),
        role: Role::Operator,
        active: true,
        parks: vec!["alpha".into()],
        created_at: at(0),
        last_login_at: Some(at(60)),
        locked_until: Some(at(900)),
        has_pin: true,
        badges: 2,
    }
    .into()
}

fn snapshot() -> SnapshotMsg {
    let node = NodeSnapshot {
        name: "Setpoint".into(),
        node_id: "ns=3;s=\"DB\".\"Setpoint\"".into(),
        data_type: "Float".into(),
        array_size: Some(4),
        value: json!([1.5, 2.0, 0.0, 0.0]),
        quality: Quality::Good,
        reason: Some("not_connected".into()),
        ts: Some(at(5)),
        writable: true,
        unit: Some("°C".into()),
        range: Some([0.0, 100.0]),
        key: true,
        description: Some("Boiler setpoint".into()),
    };
    crate::live::Snapshot {
        seq: 42,
        plcs: vec![PlcSnapshot {
            id: "alpha".into(),
            name: "Alpha".into(),
            url: "opc.tcp://192.0.2.1:4840".into(),
            status: PlcStatus::Connected,
            error: Some("last error".into()),
            server_name: Some("SIMATIC S7-1200".into()),
            nodes: vec![node],
        }],
    }
    .into()
}

fn audit_row() -> AuditRowView {
    AuditRow {
        id: 12,
        ts: "2026-09-21T12:00:00.000Z".into(),
        actor: Some("ann".into()),
        role: Some("operator".into()),
        source: "192.0.2.10".into(),
        action: "write".into(),
        target: Some("alpha/Setpoint".into()),
        old_value: Some("1.5".into()),
        new_value: Some("2".into()),
        result: "ok".into(),
        prev_hash: "00".repeat(32),
        hash: "ab".repeat(32),
    }
    .into()
}

/// `(name, protocol.ts type, JSON)` of every sample.
fn samples() -> Vec<(&'static str, &'static str, Value)> {
    let mut m = Vec::new();
    let mut add = |name: &'static str, v: &dyn erased::Sample| {
        m.push((name, ts_type(name), v.value()));
    };
    let refused = ApiError::rate_limited("more than 5 writes per second", 1);
    let deltas = vec![PlcDelta {
        id: "alpha".into(),
        status: PlcStatus::Error,
        error: Some("connection lost".into()),
        rediscovered: true,
        changes: vec![Change {
            name: "Setpoint".into(),
            value: json!(2.0),
            quality: Quality::Bad,
            reason: Some("not_connected".into()),
            ts: Some(at(6)),
            index: 0,
        }],
    }];
    add(
        "health",
        &Health {
            status: "ok",
            version: "0.0.0",
            needs_setup: false,
            kiosk: Some(true),
            uptime_s: 12,
            roles: role_table(|r| r.default_idle_timeout().as_secs()),
            mqtt: Some(MqttStatus {
                state: "online",
                error: None,
                published: 120,
                dropped: 0,
                rejected: 1,
                stored: 0,
                store_dropped: 0,
            }),
        },
    );
    add("ping", &Pong { pong: true });
    add("done", &Done {});
    add(
        "login",
        &LoginReply {
            token: "t".repeat(43),
            expires_at: at(43_200),
            user: user_view(),
        },
    );
    add("auth", &AuthReply { user: user_view() });
    add(
        "me",
        &MeReply {
            user: MeUser::new(&principal(), vec!["alpha".into()]),
        },
    );
    add("snapshot", &snapshot());
    add("update", &UpdateMsg::new(43, &deltas));
    add(
        "write",
        &WriteReply {
            plc: "alpha".into(),
            node: "Setpoint".into(),
            value: json!(2.0),
        },
    );
    add(
        "users_list",
        &UsersList {
            users: vec![user_row()],
        },
    );
    add("user_add", &UserAdded { user: user_row() });
    add(
        "audit_page",
        &AuditPage {
            rows: vec![audit_row()],
        },
    );
    add("exit_kiosk", &Exiting { exiting: true });
    add("error", &ErrorBody::from(&refused));
    add("http_error", &HttpError::from(&refused));
    let id = json!(1);
    let result = json!({ "pong": true });
    add("reply_ok", &Reply::ok(&id, &result));
    add("reply_err", &Reply::err(&id, &refused));
    add(
        "session_ended",
        &SessionEnded {
            code: 4001,
            reason: "session revoked".into(),
        },
    );
    m
}

/// The `protocol.ts` type each sample must satisfy.
fn ts_type(name: &str) -> &'static str {
    match name {
        "health" => "Health",
        "ping" => "Pong",
        "done" => "Done",
        "login" => "LoginResult",
        "auth" => "AuthResult",
        "me" => "MeReply",
        "snapshot" => "SnapshotMsg",
        "update" => "UpdateMsg",
        "write" => "WriteResult",
        "users_list" => "UsersList",
        "user_add" => "UserAdded",
        "audit_page" => "AuditPage",
        "exit_kiosk" => "Exiting",
        "error" => "ApiErrorBody",
        "http_error" => "HttpErrorBody",
        "reply_ok" | "reply_err" => "ReplyMsg",
        "session_ended" => "SessionEnded",
        other => panic!("no protocol.ts type named for the sample {other}"),
    }
}

/// The generated TypeScript module.
fn typescript() -> String {
    let all = samples();
    let mut types: Vec<&str> = all.iter().map(|(_, t, _)| *t).collect();
    types.sort();
    types.dedup();
    let mut out = String::from(
        "// Generated by `cargo test` from src-tauri/src/api/wire.rs (api/wire/samples.rs): do not\n\
         // edit. One sample of every reply, typed with protocol.ts, so that the type check fails\n\
         // when the Rust and TypeScript shapes drift apart.\n\n",
    );
    out += &format!("import type {{ {} }} from './protocol'\n", types.join(", "));
    for (name, ty, v) in &all {
        let json = serde_json::to_string_pretty(v).unwrap();
        out += &format!("\nexport const {name}: {ty} = {json}\n");
    }
    let names: Vec<&str> = all.iter().map(|(n, _, _)| *n).collect();
    out += &format!("\nexport const samples = {{ {} }}\n", names.join(", "));
    out
}

/// Object-safe serialization for the sample table.
mod erased {
    pub trait Sample {
        fn value(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Sample for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("samples serialize")
        }
    }
}

#[test]
fn committed_wire_samples_match_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/wire-samples.ts");
    let text = typescript();
    if std::env::var_os("UPDATE_WIRE_SAMPLES").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is out of date with api/wire.rs: regenerate it with \
         `UPDATE_WIRE_SAMPLES=1 cargo test --no-default-features --lib wire`, check the UI's \
         protocol.ts against it (`npm test` in ui/), and commit both",
        path.display()
    );
}

#[test]
fn every_error_code_serializes_as_its_wire_string() {
    for c in Code::ALL {
        let e = ApiError::new(c, "m");
        assert_eq!(
            serde_json::to_value(ErrorBody::from(&e)).unwrap()["code"],
            c.as_str()
        );
        assert_eq!(
            serde_json::to_value(HttpError::from(&e)).unwrap()["error"],
            c.as_str()
        );
    }
}
