//! Messages, presence and the shift log over real WebSockets against the real server (real
//! SQLite store, real auth).

use std::sync::Arc;

use crate::support::*;
use serde_json::{json, Value};
use stator::auth::Role;

/// Opens `/ws` as `token` and consumes the snapshot.
async fn open(env: &Env, token: &str) -> Ws {
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(token), None)
        .await
        .unwrap();
    assert_eq!(next_of(&mut ws, "snapshot").await["type"], "snapshot");
    ws
}

/// Another session of an existing user.
async fn session(env: &Env, name: &str) -> String {
    env.auth
        .login(
            name,
            PASSWORD,
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
        .await
        .unwrap()
        .token
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A request with a fresh id; the reply.
async fn req(ws: &mut Ws, mut v: Value) -> Value {
    v["id"] = json!(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    call(ws, v).await
}

/// The result of a request that must succeed.
async fn ok(ws: &mut Ws, v: Value) -> Value {
    let r = req(ws, v.clone()).await;
    assert_eq!(r["ok"], true, "{v} → {r}");
    r["result"].clone()
}

/// The error code of a request that must fail.
async fn refused(ws: &mut Ws, v: Value) -> String {
    let r = req(ws, v.clone()).await;
    assert_eq!(r["ok"], false, "{v} → {r}");
    r["error"]["code"].as_str().unwrap().to_string()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

const MESSAGE_KEYS: [&str; 8] = [
    "alarm", "from", "id", "read_at", "ref", "sent_at", "text", "to",
];

#[tokio::test]
async fn a_message_reaches_every_session_of_the_recipient_and_the_receipt_the_sender() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    let tb1 = env.login("bob", Role::Operator, &["alpha", "beta"]).await;
    let tb2 = session(&env, "bob").await;
    let mut a = open(&env, &ta).await;
    let mut b1 = open(&env, &tb1).await;
    let mut b2 = open(&env, &tb2).await;

    let sent = ok(
        &mut a,
        json!({"op": "message_send", "to": "bob", "text": "Pump 3 trips\nchecking", "alarm": "alpha/Pump3_Trip", "ref": "alpha/P"}),
    )
    .await;
    let m = &sent["message"];
    assert_eq!(keys(m), MESSAGE_KEYS);
    assert_eq!(
        (
            &m["from"],
            &m["to"],
            &m["text"],
            &m["alarm"],
            &m["ref"],
            &m["read_at"]
        ),
        (
            &json!("ann"),
            &json!("bob"),
            &json!("Pump 3 trips\nchecking"),
            &json!("alpha/Pump3_Trip"),
            &json!("alpha/P"),
            &Value::Null
        )
    );
    let id = m["id"].as_i64().unwrap();
    for ws in [&mut b1, &mut b2] {
        let p = next_of(ws, "message").await;
        assert_eq!(keys(&p["message"]), MESSAGE_KEYS);
        assert_eq!(p["message"]["id"], id);
        assert_eq!(p["message"]["text"], "Pump 3 trips\nchecking");
    }

    let read = ok(&mut b2, json!({"op": "message_read", "ids": [id]})).await;
    assert_eq!(read["ids"], json!([id]));
    let receipt = next_of(&mut a, "receipt").await;
    assert_eq!(receipt["ids"], json!([id]));
    assert_eq!(receipt["by"], "bob");
    assert_eq!(receipt["read_at"], read["read_at"]);
    // Reading again records nothing new.
    let again = ok(&mut b1, json!({"op": "message_read", "ids": [id]})).await;
    assert_eq!(again["ids"], json!([]));

    let page = ok(&mut a, json!({"op": "messages", "with": "bob"})).await;
    let msgs = page["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["read_at"], read["read_at"]);
    let page = ok(&mut b1, json!({"op": "messages", "with": "ann"})).await;
    assert_eq!(page["messages"][0]["id"], id);
}

#[tokio::test]
async fn presence_follows_connections_and_shared_parks() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    let tb = env.login("bob", Role::Viewer, &["alpha"]).await;
    let tc = env.login("carl", Role::Operator, &["beta"]).await;
    let mut a = open(&env, &ta).await;
    let mut b = open(&env, &tb).await;
    let p = next_of(&mut a, "presence").await;
    assert_eq!(p["username"], "bob", "{p}");
    assert_eq!(p["online"], true);
    assert_eq!(p["clients"][0]["kind"], "browser");
    assert!(p["clients"][0]["since"].is_string());

    let mut c = open(&env, &tc).await;
    let list = ok(&mut a, json!({"op": "presence"})).await;
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob"], "carl shares no park with ann");
    let list = ok(&mut c, json!({"op": "presence"})).await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);

    // Bob disconnects: ann learns it (and never heard of carl: the next presence is bob's).
    b.close(None).await.unwrap();
    let p = next_of(&mut a, "presence").await;
    assert_eq!(
        (p["username"].clone(), p["online"].clone()),
        (json!("bob"), json!(false))
    );
    assert_eq!(p["clients"], json!([]));

    // Logout of carl's session ends his socket; he leaves the registry.
    let tc2 = session(&env, "carl").await;
    let mut c2 = open(&env, &tc2).await;
    ok(&mut c2, json!({"op": "logout"})).await;
    let mut s = open(&env, &env.login("sue", Role::Superuser, &[]).await).await;
    wait_until(WAIT, "carl's second client to leave", || {
        env.api
            .messages()
            .online(&caller_of_all())
            .iter()
            .any(|u| u.username == "carl" && u.clients.len() == 1)
    })
    .await;
    let all = ok(&mut s, json!({"op": "presence"})).await;
    assert_eq!(all["users"].as_array().unwrap().len(), 3, "{all}");
}

/// A superuser-like caller for reading the registry directly.
fn caller_of_all() -> stator::messages::Caller {
    stator::messages::Caller {
        user_id: 0,
        username: "test".into(),
        superuser: true,
        parks: vec![],
        audit: Default::default(),
    }
}

#[tokio::test]
async fn park_channels_honour_grants() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    let tb = env.login("bob", Role::Viewer, &["alpha"]).await;
    let tc = env.login("carl", Role::Operator, &["beta"]).await;
    let ts = env.login("sue", Role::Superuser, &[]).await;
    let (mut a, mut b, mut c, mut s) = (
        open(&env, &ta).await,
        open(&env, &tb).await,
        open(&env, &tc).await,
        open(&env, &ts).await,
    );
    let sent = ok(
        &mut a,
        json!({"op": "message_send", "to": "park:alpha", "text": "Wind picks up"}),
    )
    .await;
    assert_eq!(sent["message"]["to"], "park:alpha");
    for ws in [&mut b, &mut s] {
        let p = next_of(ws, "message").await;
        assert_eq!(p["message"]["text"], "Wind picks up");
    }
    // Carl (beta) does not get it: the first message push he sees is the one in his channel.
    ok(
        &mut c,
        json!({"op": "message_send", "to": "park:beta", "text": "Beta is fine"}),
    )
    .await;
    assert_eq!(
        next_of(&mut c, "message").await["message"]["to"],
        "park:beta"
    );

    assert_eq!(
        refused(
            &mut a,
            json!({"op": "message_send", "to": "park:beta", "text": "x"})
        )
        .await,
        "forbidden"
    );
    assert_eq!(
        refused(&mut c, json!({"op": "messages", "channel": "park:alpha"})).await,
        "forbidden"
    );
    // Viewers read their park's channel but may not send (by default).
    let page = ok(&mut b, json!({"op": "messages", "channel": "park:alpha"})).await;
    assert_eq!(page["messages"][0]["text"], "Wind picks up");
    assert_eq!(
        refused(
            &mut b,
            json!({"op": "message_send", "to": "park:alpha", "text": "x"})
        )
        .await,
        "forbidden"
    );
    let convs = ok(&mut b, json!({"op": "conversations"})).await;
    assert_eq!(convs["can_send"], false);
    // Bob received it as a channel member: unread until he reads it.
    let alpha = &convs["conversations"][0];
    assert_eq!(
        (alpha["channel"].clone(), alpha["unread"].clone()),
        (json!("park:alpha"), json!(1))
    );
}

#[tokio::test]
async fn viewers_may_send_when_configured() {
    let env = Env::start(json!({"messages": {"viewers_may_send": true}})).await;
    let tb = env.login("bob", Role::Viewer, &["alpha"]).await;
    let mut b = open(&env, &tb).await;
    ok(
        &mut b,
        json!({"op": "message_send", "to": "park:alpha", "text": "Viewer here"}),
    )
    .await;
    assert_eq!(
        ok(&mut b, json!({"op": "conversations"})).await["can_send"],
        true
    );
}

#[tokio::test]
async fn an_offline_recipient_finds_the_message_in_conversations() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    env.user("bob", Role::Operator, &["alpha"]).await;
    let mut a = open(&env, &ta).await;
    let id = ok(
        &mut a,
        json!({"op": "message_send", "to": "bob", "text": "Call me when you start"}),
    )
    .await["message"]["id"]
        .clone();
    let tb = session(&env, "bob").await;
    let mut b = open(&env, &tb).await;
    let convs = ok(&mut b, json!({"op": "conversations"})).await;
    let rows = convs["conversations"].as_array().unwrap();
    let dm = rows
        .iter()
        .find(|r| r["with"] == "ann")
        .expect("a row for ann");
    assert_eq!(dm["unread"], 1);
    assert_eq!(dm["channel"], Value::Null);
    assert_eq!(dm["last"]["id"], id);
    assert_eq!(dm["last"]["text"], "Call me when you start");
    assert!(rows.iter().any(|r| r["channel"] == "park:alpha"));
    assert_eq!(convs["phrases"]["de"][0], "Bin unterwegs");
    ok(&mut b, json!({"op": "message_read", "ids": [id]})).await;
    let convs = ok(&mut b, json!({"op": "conversations"})).await;
    let dm = convs["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["with"] == "ann")
        .cloned()
        .unwrap();
    assert_eq!(dm["unread"], 0);
}

#[tokio::test]
async fn more_than_ten_messages_in_ten_seconds_are_rate_limited() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    env.user("bob", Role::Operator, &["alpha"]).await;
    let mut a = open(&env, &ta).await;
    for i in 0..10 {
        ok(
            &mut a,
            json!({"op": "message_send", "to": "bob", "text": format!("n{i}")}),
        )
        .await;
    }
    let r = req(
        &mut a,
        json!({"op": "message_send", "to": "bob", "text": "one too many"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "rate_limited");
    assert!(r["error"]["retry_after_s"].as_u64().unwrap() >= 1);
    let page = ok(
        &mut a,
        json!({"op": "messages", "with": "bob", "limit": 50}),
    )
    .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 10);
    assert_eq!(page["messages"][0]["text"], "n9");
    assert_eq!(rows_of(&env, "message_send").await.len(), 10);
}

#[tokio::test]
async fn bad_input_has_a_stable_code_and_stores_nothing() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    let tb = env.login("bob", Role::Operator, &["alpha"]).await;
    env.user("carl", Role::Operator, &["beta"]).await;
    env.user("dan", Role::Operator, &["alpha"]).await;
    env.auth.set_active(&system(), "dan", false).await.unwrap();
    let mut a = open(&env, &ta).await;
    let mut b = open(&env, &tb).await;
    let send = |to: &str, text: Value| json!({"op": "message_send", "to": to, "text": text});
    let cases = [
        (send("bob", json!("")), "invalid"),
        (send("bob", json!(" \n ")), "invalid"),
        (send("bob", json!("x".repeat(2001))), "invalid"),
        (send("bob", json!("bell\u{7}")), "invalid"),
        (send("bob", json!("tab\tbed")), "invalid"),
        (send("bob", json!("rtl\u{202e}gnp.exe")), "invalid"),
        (send("nobody", json!("hi")), "not_found"),
        (send("carl", json!("hi")), "forbidden"),
        (send("dan", json!("hi")), "forbidden"),
        (send("ann", json!("hi")), "invalid"),
        (send("park:beta", json!("hi")), "forbidden"),
        (send("park:", json!("hi")), "invalid"),
        (
            json!({"op": "message_send", "to": "bob", "text": "hi", "alarm": "<b>x</b>"}),
            "invalid",
        ),
        (
            json!({"op": "message_send", "to": "bob", "text": "hi", "ref": "a b"}),
            "invalid",
        ),
        (json!({"op": "message_send", "to": "bob"}), "invalid"),
        (json!({"op": "messages"}), "invalid"),
        (
            json!({"op": "messages", "with": "bob", "channel": "park:alpha"}),
            "invalid",
        ),
        (
            json!({"op": "messages", "with": "bob", "limit": 0}),
            "invalid",
        ),
        (
            json!({"op": "messages", "with": "bob", "limit": 201}),
            "invalid",
        ),
        (json!({"op": "message_read", "ids": []}), "invalid"),
        (
            json!({"op": "logbook_add", "park": "beta", "category": "note", "text": "x"}),
            "forbidden",
        ),
        (
            json!({"op": "logbook_add", "park": "alpha", "category": "gossip", "text": "x"}),
            "invalid",
        ),
        (
            json!({"op": "logbook_add", "park": "alpha", "category": "note", "text": ""}),
            "invalid",
        ),
        (json!({"op": "logbook", "park": "beta"}), "forbidden"),
        (json!({"op": "logbook_ack", "entry": 999}), "not_found"),
        (
            json!({"op": "messages_export", "channel": "park:alpha"}),
            "forbidden",
        ),
    ];
    for (r, code) in cases {
        assert_eq!(refused(&mut a, r.clone()).await, code, "{r}");
    }
    // A read receipt for a message sent to someone else.
    let id = ok(
        &mut b,
        json!({"op": "message_send", "to": "ann", "text": "ok"}),
    )
    .await["message"]["id"]
        .clone();
    assert_eq!(
        refused(&mut b, json!({"op": "message_read", "ids": [id]})).await,
        "forbidden"
    );
    // Nothing of the refused requests was stored: one message, one send row, no entries.
    let page = ok(&mut a, json!({"op": "messages", "with": "bob"})).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["read_at"], Value::Null);
    assert_eq!(rows_of(&env, "message_send").await.len(), 1);
    assert!(rows_of(&env, "logbook_add").await.is_empty());
    let log = ok(&mut a, json!({"op": "logbook"})).await;
    assert_eq!(log["entries"], json!([]));
}

#[tokio::test]
async fn the_shift_log_records_handovers_and_their_confirmation() {
    let env = Env::start(json!({})).await;
    env.api.messages().set_handover_source(Arc::new((
        |park: &str| vec![json!({"id": format!("{park}/Pump3_Trip"), "state": "active"})],
        |_park: &str| json!({"active": false}),
    )));
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    let tb = env.login("bob", Role::Operator, &["alpha"]).await;
    let tc = env.login("carl", Role::Operator, &["beta"]).await;
    let tv = env.login("vic", Role::Viewer, &["alpha"]).await;
    let (mut a, mut b, mut c, mut v) = (
        open(&env, &ta).await,
        open(&env, &tb).await,
        open(&env, &tc).await,
        open(&env, &tv).await,
    );
    let note = ok(
        &mut a,
        json!({"op": "logbook_add", "park": "alpha", "category": "note", "text": "Gate 2 sticks", "alarm": "alpha/Gate2"}),
    )
    .await["entry"]
        .clone();
    assert_eq!(note["snapshot"], Value::Null);
    assert_eq!(note["alarm"], "alpha/Gate2");
    let h = ok(
        &mut a,
        json!({"op": "logbook_add", "park": "alpha", "category": "handover", "text": "Quiet night"}),
    )
    .await["entry"]
        .clone();
    assert_eq!(h["snapshot"]["alarms"][0]["id"], "alpha/Pump3_Trip");
    assert_eq!(h["snapshot"]["service"], json!({"active": false}));
    assert_eq!(h["acks"], json!([]));
    assert_eq!(next_of(&mut b, "logbook").await["entry"]["id"], note["id"]);

    let hid = h["id"].clone();
    assert_eq!(
        refused(&mut a, json!({"op": "logbook_ack", "entry": hid})).await,
        "invalid"
    );
    assert_eq!(
        refused(&mut b, json!({"op": "logbook_ack", "entry": note["id"]})).await,
        "invalid"
    );
    assert_eq!(
        refused(&mut c, json!({"op": "logbook_ack", "entry": hid})).await,
        "forbidden"
    );
    assert_eq!(
        refused(&mut v, json!({"op": "logbook_ack", "entry": hid})).await,
        "forbidden"
    );
    let acked = ok(&mut b, json!({"op": "logbook_ack", "entry": hid})).await["entry"].clone();
    assert_eq!(acked["acks"][0]["by"], "bob");
    let again = ok(&mut b, json!({"op": "logbook_ack", "entry": hid})).await["entry"].clone();
    assert_eq!(again["acks"].as_array().unwrap().len(), 1);

    let log = ok(&mut v, json!({"op": "logbook", "park": "alpha"})).await;
    let ids: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, [&hid, &note["id"]]);
    let only = ok(&mut v, json!({"op": "logbook", "category": "note"})).await;
    assert_eq!(only["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(&mut c, json!({"op": "logbook"})).await["entries"],
        json!([])
    );
    assert_eq!(
        refused(
            &mut v,
            json!({"op": "logbook_add", "park": "alpha", "category": "note", "text": "x"})
        )
        .await,
        "forbidden"
    );
    assert_eq!(rows_of(&env, "logbook_add").await.len(), 2);
    let acks = rows_of(&env, "logbook_ack").await;
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].actor.as_deref(), Some("bob"));
}

#[tokio::test]
async fn admins_export_a_channel_or_conversation_as_csv() {
    let env = Env::start(json!({})).await;
    let ta = env.login("ann", Role::Operator, &["alpha"]).await;
    env.user("bob", Role::Operator, &["alpha"]).await;
    let tadm = env.login("ada", Role::Admin, &["alpha"]).await;
    let mut a = open(&env, &ta).await;
    ok(
        &mut a,
        json!({"op": "message_send", "to": "park:alpha", "text": "=cmd|' /C calc'!A0, \"quoted\""}),
    )
    .await;
    ok(
        &mut a,
        json!({"op": "message_send", "to": "bob", "text": "direct"}),
    )
    .await;

    let (st, h, body) = http_as(
        &env,
        "GET",
        "/api/messages/export?channel=park:alpha&from=2000-01-01",
        &tadm,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(header(&h, "content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "id,sent_at,from,to,text,alarm,ref");
    assert_eq!(lines.len(), 2, "{body}");
    assert!(
        lines[1].contains(",ann,park:alpha,\"'=cmd|' /C calc'!A0, \"\"quoted\"\"\",,"),
        "{}",
        lines[1]
    );
    let (st, _, body) = http_as(
        &env,
        "GET",
        "/api/messages/export?users=ann,bob",
        &tadm,
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(body.contains(",ann,bob,direct,,"), "{body}");
    let (st, _, body) = http_as(
        &env,
        "GET",
        "/api/messages/export?channel=park:alpha",
        &ta,
        None,
    )
    .await;
    assert_eq!(st, 403, "{body}");
    let (st, _, _) = http_as(
        &env,
        "GET",
        "/api/messages/export?channel=park:beta",
        &tadm,
        None,
    )
    .await;
    assert_eq!(st, 403);
    let (st, _, body) = http_as(&env, "GET", "/api/messages/export", &tadm, None).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(rows_of(&env, "messages_export").await.len(), 2);
}
