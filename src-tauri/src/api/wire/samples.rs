//! One sample of every reply and push message, committed as `ui/src/wire-samples.ts`: each is an
//! object literal declared with its `protocol.ts` type, so the UI's type check (`vue-tsc`, run by
//! `npm run build`) fails on a missing, extra or mistyped field, and `wire.test.ts` feeds them to
//! the UI's decoders. The test below fails when the committed file differs from what the Rust
//! types produce. Regenerate with `UPDATE_WIRE_SAMPLES=1 cargo test --no-default-features --lib
//! wire` and commit the file. The same samples give the OpenAPI document its schemas
//! ([`reply_schemas`]), so the document cannot drift from the replies either.

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
        token: None,
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
    let snap = crate::live::Snapshot {
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
    };
    let mut s: SnapshotMsg = snap.into();
    s.alarms = vec![alarm()];
    s
}

fn alarm() -> alarms::AlarmView {
    alarms::AlarmView {
        id: "alpha_power_high".into(),
        park: "alpha".into(),
        tag: "alpha/Active_Power_kW".into(),
        condition: "high",
        priority: "high",
        state: "acked",
        shelved_until: Some(at(3_600)),
        out_of_service: false,
        message: json!({"en": "Active power above 1100 kW", "de": "Wirkleistung über 1100 kW"}),
        value: json!(1150.5),
        limit: json!(1100.0),
        active_since: Some(at(10)),
        acked_by: Some("ann".into()),
        acked_at: Some(at(20)),
        comment: Some("seen".into()),
        quality: "good",
    }
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("samples serialize")
}

fn alarm_samples() -> Vec<(&'static str, Value)> {
    use alarms::*;
    vec![
        (
            "alarms",
            to_json(AlarmList {
                alarms: vec![alarm()],
            }),
        ),
        (
            "alarm_push",
            to_json(AlarmPush {
                kind: "alarm",
                alarm: alarm(),
            }),
        ),
        (
            "alarms_push",
            to_json(AlarmsPush {
                kind: "alarms",
                alarms: vec![alarm()],
            }),
        ),
        (
            "alarm_ack",
            to_json(AckReply {
                results: vec![
                    AckResult {
                        alarm: "alpha_power_high".into(),
                        ok: true,
                        state: Some("acked"),
                        code: None,
                    },
                    AckResult {
                        alarm: "nope".into(),
                        ok: false,
                        state: None,
                        code: Some(Code::NotFound),
                    },
                ],
            }),
        ),
        ("alarm_reply", to_json(AlarmReply { alarm: alarm() })),
        (
            "alarm_journal",
            to_json(JournalPage {
                rows: vec![JournalView {
                    id: 5,
                    ts: at(10),
                    alarm: "alpha_power_high".into(),
                    park: "alpha".into(),
                    priority: "high".into(),
                    event: "ack".into(),
                    state: "acked".into(),
                    value: json!(1150.5),
                    actor: Some("ann".into()),
                    comment: Some("seen".into()),
                    during_service: false,
                }],
            }),
        ),
        (
            "incidents",
            to_json(IncidentPage {
                incidents: vec![IncidentView {
                    id: 3,
                    alarm: "alpha.comm".into(),
                    park: "alpha".into(),
                    priority: "high".into(),
                    started: at(0),
                    ended: Some(at(90)),
                    duration_s: 90.0,
                    peak: Some(1180.0),
                    acked_by: Some("ann".into()),
                    acked_at: Some(at(30)),
                    during_service: true,
                }],
            }),
        ),
        (
            "alarm_stats",
            to_json(AlarmStats {
                from: at(0),
                to: at(86_400),
                raised: 14,
                per_10_min_mean: 0.1,
                per_10_min_max: 12,
                flood_percent: 0.7,
                standing: vec![StandingAlarm {
                    alarm: "alpha.comm".into(),
                    active_since: at(-100_000),
                }],
                top: vec![AlarmCount {
                    alarm: "alpha_power_high".into(),
                    count: 12,
                }],
                chattering: vec!["alpha_power_high".into()],
                truncated: false,
            }),
        ),
    ]
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
            alarms_tag_missing: 1,
            alarm_sound: true,
            history: Some(HistoryHealth {
                stored: 1200,
                dropped: 0,
                lagged_batches: 0,
                queued: 3,
            }),
            parks_connected: 1,
            parks_total: 2,
            parks: vec![ParkHealth {
                id: "alpha".into(),
                status: PlcStatus::Connected,
            }],
            subsystems: [("history".to_string(), json!({"state": "running"}))].into(),
            mqtt: Some(MqttStatus {
                state: "online",
                error: None,
                published: 120,
                dropped: 0,
                rejected: 1,
                stored: 0,
                store_dropped: 0,
            }),
            hub: Some(HubStatus {
                state: "online",
                error: None,
                group: "plants".into(),
                edge_nodes: 2,
                parks_fed: 2,
                messages: 5400,
                metrics: 210_000,
                malformed: 1,
                foreign: 0,
                seq_gaps: 0,
                rebirths_requested: 2,
                collisions: 0,
                unmapped: 0,
                truncated: 0,
                dropped: 0,
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
    let banner = ServiceBanner {
        park: "alpha".into(),
        active: true,
        by: Some("sam".into()),
        since: Some(at(0)),
        reason: Some("pump swap".into()),
    };
    add("service_start", &banner);
    add(
        "service_push",
        &ServicePush {
            kind: "service",
            banner: ServiceBanner::ended("alpha"),
        },
    );
    let point = crate::service::calibration::Point {
        reference: 2.0,
        raw: 5916.5,
        spread: 1.0,
    };
    let run = CalibrationRunView {
        id: "alpha_p1".into(),
        points: vec![point, point],
        gain: Some(0.000354),
        offset: Some(-0.095),
        as_found_error: Some(0.26),
        as_left_error: Some(0.001),
        pass: Some(true),
        old_gain: 0.0003617,
        old_offset: 0.0,
        unit: "bar".into(),
        range: [0.0, 10.0],
        tolerance: 0.05,
        state: "applied",
        record: Some(1),
    };
    add("calibration_run", &run);
    add(
        "calibration_records",
        &CalibrationRecords {
            records: vec![CalibrationRecordView {
                n: 1,
                record: crate::service::calibration::Record {
                    calibration: "alpha_p1".into(),
                    park: "alpha".into(),
                    tag: "alpha/Pressure_P1_bar".into(),
                    unit: "bar".into(),
                    range: [0.0, 10.0],
                    tolerance: 0.05,
                    by: "sam".into(),
                    at: at(60),
                    points: vec![point],
                    old_gain: 0.0003617,
                    old_offset: 0.0,
                    new_gain: 0.000354,
                    new_offset: -0.095,
                    as_found_error: 0.26,
                    as_left_error: Some(0.001),
                    pass: true,
                    next_due: at(86_400 * 365),
                    result: "ok".into(),
                },
            }],
        },
    );
    add(
        "calibrations",
        &CalibrationList {
            calibrations: vec![CalibrationView {
                id: "alpha_p1".into(),
                park: "alpha".into(),
                tag: "alpha/Pressure_P1_bar".into(),
                raw_tag: "alpha/Pressure_P1_raw".into(),
                unit: "bar".into(),
                range: [0.0, 10.0],
                tolerance: 0.05,
                interval_days: 365,
                last: Some(LastCalibration {
                    n: 1,
                    at: at(60),
                    by: "sam".into(),
                }),
                next_due: Some(at(86_400 * 365)),
                due: "ok",
                open_run: false,
            }],
        },
    );
    let status = crate::plc::ServerStatus {
        state: Some("Running".into()),
        product_name: Some("Stator simulator".into()),
        software_version: Some("0.1.0".into()),
        build_date: Some(at(-86_400)),
        current_time: Some(at(120)),
        clock_drift_ms: Some(-3),
        rtt_ms: 1.8,
    };
    let audit_chain = AuditChain {
        state: "broken",
        rows: 1_204,
        checked_at: Some(at(60)),
        error: Some("row 17: hash does not match".into()),
        running: false,
    };
    add(
        "diagnostics",
        &Diagnostics {
            parks: vec![ParkDiagnostics {
                park: "alpha".into(),
                state: "CONNECTED".into(),
                error: None,
                endpoint: "opc.tcp://192.0.2.20:4840".into(),
                security_policy: "Basic256Sha256".into(),
                security_mode: "SignAndEncrypt".into(),
                acquisition: "subscribe".into(),
                publishing_interval_s: 0.5,
                tags: 42,
                bad_quality: 1,
                bad_quality_tags: vec!["Pump3_Flow".into()],
                engine: Some(crate::plc::DiagReport {
                    reconnects: 2,
                    state_since: Some(at(30)),
                    last_error: Some("connection lost".into()),
                    last_error_at: Some(at(25)),
                    rtt_last_ms: Some(1.8),
                    rtt_p50_ms: Some(2.1),
                    rtt_max_ms: Some(9.5),
                    values_received: 12_345,
                    values_per_s: Some(41.5),
                    discovery_ms: 120,
                    monitored_items: 41,
                    polled_items: 1,
                    polling_fallback: false,
                }),
                server_status: Some(status.clone()),
                server_status_error: None,
                server_certificate: Some(crate::plc::ServerCertificate {
                    subject: "CN=S7-1200 alpha/O=Plant".into(),
                    not_after: at(86_400 * 21),
                    days_left: 21,
                    expires_soon: true,
                }),
                server_certificate_error: None,
                service: Some(banner.clone()),
            }],
            panel: PanelDiagnostics {
                version: "0.1.0",
                uptime_s: 3600,
                memory_rss_bytes: Some(52_428_800),
                cpu_seconds: Some(12.5),
                cpu_percent: Some(3.2),
                cpu_interval_s: Some(5.0),
                database: "/var/lib/stator/stator.db".into(),
                database_bytes: 1_048_576,
                disk_free_bytes: Some(8_000_000_000),
                history_database: Some("/var/lib/stator/stator.history.db".into()),
                history_database_bytes: Some(4_194_304),
                clients: ClientCounts {
                    panel: 1,
                    browser: 2,
                },
                sessions: 3,
                audit_chain: audit_chain.clone(),
            },
        },
    );
    add("diagnostics_audit_verify", &audit_chain);
    add(
        "diagnostics_ping",
        &PingReply {
            park: "alpha".into(),
            rtt_ms: 1.8,
            server_status: status,
        },
    );
    // Messages and the shift log.
    let msg = || MessageView {
        id: 41,
        from: "ann".into(),
        to: "park:alpha".into(),
        text: "Pump 3 trips\nchecking".into(),
        alarm: Some("alpha/Pump3_Trip".into()),
        reference: Some("alpha/Setpoint".into()),
        sent_at: at(10),
        read_at: Some(at(20)),
    };
    let client = crate::messages::ClientView {
        kind: crate::messages::ClientKind::Panel,
        since: at(3),
    };
    let entry = || EntryView {
        id: 5,
        park: "alpha".into(),
        category: "handover".into(),
        author: "ann".into(),
        text: "Quiet night".into(),
        alarm: None,
        snapshot: Some(json!({"alarms": [{"id": "alpha/Pump3_Trip"}], "service": null})),
        created_at: at(30),
        acks: vec![AckView {
            by: "bob".into(),
            at: at(40),
        }],
    };
    add("message_sent", &MessageSent { message: msg() });
    add(
        "messages_page",
        &MessagesPage {
            messages: vec![msg()],
        },
    );
    add(
        "message_read",
        &ReadReply {
            ids: vec![41],
            read_at: at(20),
        },
    );
    add(
        "conversations",
        &ConversationsReply {
            conversations: vec![
                ConversationView {
                    with: Some("bob".into()),
                    channel: None,
                    unread: 2,
                    last: Some(msg()),
                },
                ConversationView {
                    with: None,
                    channel: Some("park:alpha".into()),
                    unread: 0,
                    last: None,
                },
            ],
            can_send: true,
            phrases: [("en".to_string(), vec!["On my way".to_string()])].into(),
        },
    );
    add(
        "presence",
        &PresenceReply {
            users: vec![crate::messages::UserPresence {
                username: "bob".into(),
                clients: vec![client.clone()],
            }],
        },
    );
    add(
        "messages_export",
        &MessagesCsv {
            csv: "id,sent_at,from,to,text,alarm,ref\n".into(),
        },
    );
    add("logbook_entry", &EntryReply { entry: entry() });
    add(
        "logbook",
        &EntriesReply {
            entries: vec![entry()],
        },
    );
    add(
        "message_push",
        &MessagePush {
            kind: "message",
            message: msg(),
        },
    );
    add(
        "receipt_push",
        &ReceiptPush {
            kind: "receipt",
            ids: vec![41],
            by: "bob".into(),
            read_at: at(20),
        },
    );
    add(
        "presence_push",
        &PresencePush {
            kind: "presence",
            username: "bob".into(),
            online: true,
            clients: vec![client],
        },
    );
    add(
        "logbook_push",
        &LogbookPush {
            kind: "logbook",
            entry: entry(),
        },
    );
    add(
        "session_ended",
        &SessionEnded {
            code: 4001,
            reason: "session revoked".into(),
        },
    );
    // History and trends.
    add(
        "history",
        &HistoryReply {
            series: vec![
                SeriesView {
                    tag: "alpha/P".into(),
                    kind: "raw".into(),
                    points: vec![
                        json!([1_790_000_000_000i64, 2.5, "good"]),
                        json!([1_790_000_001_000i64, null, "bad"]),
                    ],
                    unit: Some("kW".into()),
                    range: Some([0.0, 1000.0]),
                    alarm_limits: vec![AlarmLimitView {
                        alarm: "alpha.p_high".into(),
                        condition: "high".into(),
                        limit: 900.0,
                        priority: "medium".into(),
                    }],
                },
                SeriesView {
                    tag: "alpha/Q".into(),
                    kind: "buckets".into(),
                    points: vec![
                        json!([1_790_000_000_000i64, 1.0, 4.0, 2.0, 3.0]),
                        json!([1_790_000_060_000i64, null, null, null, null]),
                    ],
                    unit: None,
                    range: None,
                    alarm_limits: vec![],
                },
            ],
        },
    );
    add(
        "history_tags",
        &HistoryTags {
            tags: vec![HistoryTagView {
                tag: "alpha/P".into(),
                value_type: crate::history::Kind::Number,
                first: 1_790_000_000_000,
                last: 1_790_000_060_000,
                samples: 61,
                unit: Some("kW".into()),
                range: Some([0.0, 1000.0]),
                alarm_limits: vec![AlarmLimitView {
                    alarm: "alpha.p_high".into(),
                    condition: "high".into(),
                    limit: 900.0,
                    priority: "medium".into(),
                }],
            }],
        },
    );
    let token = || ApiTokenView {
        id: 7,
        name: "historian gateway".into(),
        scopes: vec!["live:read".into(), "history:read".into()],
        parks: vec!["alpha".into()],
        created_by: "ann".into(),
        created_at: at(0),
        expires_at: at(90 * 86_400),
        last_used_at: Some(at(60)),
        last_used_from: Some("192.0.2.20".into()),
        revoked: false,
    };
    add(
        "api_token_create",
        &ApiTokenCreated {
            id: 7,
            token: format!("stator_7_{}", "s".repeat(43)),
            info: token(),
        },
    );
    add(
        "api_tokens",
        &ApiTokensList {
            tokens: vec![token()],
        },
    );
    add(
        "config_get",
        &ConfigReply {
            config: json!({"plc_config": [{"id": "alpha", "url": "opc.tcp://192.0.2.1:4840", "name": "Alpha"}]}),
            version: "ab".repeat(32),
        },
    );
    add(
        "config_set",
        &ConfigSetReply {
            version: "cd".repeat(32),
            changed: vec!["/tags/alpha~1P/range".into()],
            restart_required: vec!["remote.listen".into()],
        },
    );
    for (name, v) in alarm_samples() {
        m.push((name, ts_type(name), v));
    }
    m
}

/// Every reply and push type by its `protocol.ts` name, as a JSON Schema inferred from its
/// sample (for `GET /api/openapi.json`).
pub fn reply_schemas() -> Vec<(&'static str, Value)> {
    let mut out: Vec<(&'static str, Value)> = Vec::new();
    for (_, ty, v) in samples() {
        if !out.iter().any(|(t, _)| *t == ty) {
            out.push((ty, schema_of(&v)));
        }
    }
    out
}

/// A JSON Schema (2020-12, as OpenAPI 3.1 uses) describing the shape of one sample value.
fn schema_of(v: &Value) -> Value {
    match v {
        Value::Null => json!({"type": "null"}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
        Value::Number(_) => json!({"type": "number"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(a) => match a.first() {
            Some(x) => json!({"type": "array", "items": schema_of(x)}),
            None => json!({"type": "array"}),
        },
        Value::Object(m) => {
            let props: serde_json::Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), schema_of(v))).collect();
            json!({"type": "object", "properties": props, "required": m.keys().collect::<Vec<_>>()})
        }
    }
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
        "alarms" => "AlarmList",
        "alarm_push" => "AlarmPush",
        "alarms_push" => "AlarmsPush",
        "alarm_ack" => "AlarmAckReply",
        "alarm_reply" => "AlarmReply",
        "alarm_journal" => "AlarmJournalPage",
        "incidents" => "IncidentPage",
        "alarm_stats" => "AlarmStats",
        "history" => "HistoryReply",
        "history_tags" => "HistoryTagsReply",
        "service_start" => "ServiceBanner",
        "service_push" => "ServicePush",
        "calibration_run" => "CalibrationRun",
        "calibration_records" => "CalibrationRecords",
        "calibrations" => "CalibrationList",
        "diagnostics" => "Diagnostics",
        "diagnostics_ping" => "PingReply",
        "diagnostics_audit_verify" => "AuditChain",
        "message_sent" => "MessageSent",
        "messages_page" => "MessagesPage",
        "message_read" => "ReadReply",
        "conversations" => "ConversationsReply",
        "presence" => "PresenceReply",
        "messages_export" => "MessagesCsv",
        "logbook_entry" => "EntryReply",
        "logbook" => "EntriesReply",
        "message_push" => "MessagePush",
        "receipt_push" => "ReceiptPush",
        "presence_push" => "PresencePush",
        "logbook_push" => "LogbookPush",
        "api_token_create" => "ApiTokenCreated",
        "api_tokens" => "ApiTokensList",
        "config_get" => "ConfigReply",
        "config_set" => "ConfigSetReply",
        other => panic!("no protocol.ts type named for the sample {other}"),
    }
}

/// The generated TypeScript module.
#[cfg(test)]
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
