//! Configuration over the API against the real server: `config_get` → change → `config_set`
//! round trip (live clients see a tag's new range without reconnecting), parks added (connect
//! to the simulator) and removed (their values vanish), `conflict`, `invalid` at depth, the
//! last park, the password, tokens with `config:read`, atomic write with backups, and the
//! SIGHUP reload path.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use stator::api::{Api, SharedEngine};
use stator::auth::api_tokens::TokenRequest;
use stator::auth::{Auth, Role};
use stator::config::change::backups;
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::SimOptions;

use crate::support::*;

/// Writes the running configuration to `config.json` in the env's directory and names it.
fn with_file(env: &Env) -> PathBuf {
    let path = env._dir.path().join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&*env.cfg).unwrap()).unwrap();
    env.api.set_config_file(path.clone());
    path
}

async fn session(env: &Env, name: &str, role: Role) -> Ws {
    let parks: &[&str] = if role == Role::Superuser {
        &[]
    } else {
        &["alpha", "beta"]
    };
    let t = env.login(name, role, parks).await;
    let (mut ws, _) = ws_connect(env, WsAuth::Protocol(&t), None).await.unwrap();
    next_of(&mut ws, "snapshot").await;
    ws
}

async fn get(ws: &mut Ws) -> (Value, String) {
    let r = call(ws, json!({"id": "g", "op": "config_get"})).await;
    assert_eq!(r["ok"], true, "{r}");
    (
        r["result"]["config"].clone(),
        r["result"]["version"].as_str().unwrap().to_string(),
    )
}

async fn set(ws: &mut Ws, config: &Value, version: &str) -> Value {
    call(
        ws,
        json!({"id": "s", "op": "config_set", "config": config, "version": version, "password": PASSWORD}),
    )
    .await
}

fn node<'a>(snapshot: &'a Value, plc: &str, tag: &str) -> &'a Value {
    snapshot["plcs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == plc)
        .and_then(|p| {
            p["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["name"] == tag)
        })
        .unwrap_or_else(|| panic!("no {plc}/{tag} in {snapshot}"))
}

/// Everything the cache shows (as a superuser sees it).
fn snap(api: &Api) -> Value {
    serde_json::to_value(api.snapshot_msg(&system())).unwrap()
}

fn park_ids(snapshot: &Value) -> Vec<String> {
    snapshot["plcs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn round_trip_changes_a_tag_range_live_without_reconnect() {
    let env = Env::start(json!({})).await;
    let path = with_file(&env);
    let before = std::fs::read_to_string(&path).unwrap();
    let mut sue = session(&env, "sue", Role::Superuser).await;
    let mut viewer = session(&env, "vic", Role::Viewer).await;
    let (mut cfg, version) = get(&mut sue).await;
    assert_eq!(cfg["plc_config"][0]["id"], "alpha");
    assert!(node(&snap(&env.api), "alpha", "P")["range"].is_null());

    cfg["tags"]["alpha/P"] = json!({"unit": "bar", "range": [0.0, 50.0]});
    let r = set(&mut sue, &cfg, &version).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["changed"], json!(["/tags/alpha~1P"]));
    assert_eq!(r["result"]["restart_required"], json!([]));
    let new_version = r["result"]["version"].as_str().unwrap();
    assert_ne!(new_version, version);

    // The open viewer socket gets a fresh snapshot with the new metadata.
    let s = next_of(&mut viewer, "snapshot").await;
    assert_eq!(node(&s, "alpha", "P")["range"], json!([0.0, 50.0]));
    assert_eq!(node(&s, "alpha", "P")["unit"], "bar");
    // The running configuration (which the write rules read) has it at once.
    let (running, _) = get(&mut sue).await;
    assert_eq!(running["tags"]["alpha/P"]["range"], json!([0.0, 50.0]));
    assert_eq!(env.api.config().tags["alpha/P"].range, Some([0.0, 50.0]));

    // Written atomically; the previous file is the first backup.
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(written["tags"]["alpha/P"]["unit"], "bar");
    let b = backups(path.parent().unwrap(), "config.json").unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(std::fs::read_to_string(&b[0].1).unwrap(), before);
    let (_, v2) = get(&mut sue).await;
    assert_eq!(v2, new_version, "the version is the file's hash");

    let rows = rows_of(&env, "config_set").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].result, "ok");
    assert!(
        rows[0]
            .new_value
            .as_deref()
            .unwrap()
            .contains("/tags/alpha~1P"),
        "{rows:?}"
    );

    // Changing what needs a restart says so.
    let (mut cfg, version) = get(&mut sue).await;
    cfg["remote"]["max_clients"] = json!(7);
    cfg["remote"]["allow_remote_writes"] = json!(true);
    let r = set(&mut sue, &cfg, &version).await;
    assert_eq!(
        r["result"]["restart_required"],
        json!(["remote.max_clients"]),
        "{r}"
    );
    assert!(env.api.config().remote.allow_remote_writes);
}

#[tokio::test]
async fn conflict_invalid_last_park_password_and_role_change_nothing() {
    let env = Env::start(json!({})).await;
    let path = with_file(&env);
    let original = std::fs::read_to_string(&path).unwrap();
    let mut sue = session(&env, "sue", Role::Superuser).await;
    let (cfg, version) = get(&mut sue).await;

    let mut stale = cfg.clone();
    stale["tags"]["alpha/P"] = json!({"unit": "K"});
    let r = set(&mut sue, &stale, &"0".repeat(64)).await;
    assert_eq!(r["error"]["code"], "conflict", "{r}");
    assert_eq!(stator::code::Code::Conflict.http_status(), 409);

    let cases = [
        (
            "/plc_config/1/url",
            json!("http://10.0.0.1"),
            "$.plc_config[1].url",
        ),
        ("/tags", json!({"alpha/P": {"range": [0, "x"]}}), "$.tags"),
        ("/plc_config", json!([]), "$.plc_config"),
        (
            "/auth/lockout_attempts",
            json!("many"),
            "$.auth.lockout_attempts",
        ),
    ];
    for (ptr, value, named) in &cases {
        let mut bad = cfg.clone();
        *bad.pointer_mut(ptr).unwrap_or_else(|| panic!("{ptr}")) = value.clone();
        let r = set(&mut sue, &bad, &version).await;
        assert_eq!(r["error"]["code"], "invalid", "{ptr}: {r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(named), "{ptr}: {msg}");
    }
    let r = call(
        &mut sue,
        json!({"id": 1, "op": "config_set", "config": stale, "version": version, "password": "not-my-password"}),
    )
    .await;
    assert_eq!(r["error"]["code"], "invalid_credentials", "{r}");

    let mut ada = session(&env, "ada", Role::Admin).await;
    let r = call(&mut ada, json!({"id": 2, "op": "config_get"})).await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");

    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "nothing written"
    );
    assert!(backups(path.parent().unwrap(), "config.json")
        .unwrap()
        .is_empty());
    assert_eq!(park_ids(&snap(&env.api)), ["alpha", "beta"]);
    let rows = rows_of(&env, "config_set").await;
    let results: Vec<&str> = rows.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(
        results,
        ["conflict", "invalid", "invalid", "invalid", "invalid"]
    );
}

#[tokio::test]
async fn a_config_read_token_reads_but_never_writes() {
    let env = Env::start(json!({})).await;
    with_file(&env);
    env.user("sue", Role::Superuser, &[]).await;
    let t = env
        .auth
        .create_api_token(
            &system(),
            Some("sue"),
            TokenRequest {
                name: "backup job".into(),
                scopes: vec!["config:read".into()],
                parks: None,
                expires_days: None,
            },
            None,
        )
        .await
        .unwrap();
    let (mut ws, _) = ws_connect(&env, WsAuth::Protocol(&t.token), None)
        .await
        .unwrap();
    let (cfg, version) = get(&mut ws).await;
    let r = set(&mut ws, &cfg, &version).await;
    assert_eq!(r["error"]["code"], "forbidden", "{r}");
}

#[tokio::test]
async fn parks_added_connect_and_removed_vanish() {
    let sim = stator::sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let urls = sim.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(
        ConfigBuilder::new()
            .plc("alpha", &urls[0], "Alpha")
            .set(
                "database",
                dir.path().join("stator.db").to_string_lossy().as_ref(),
            )
            .build(),
    );
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let engine = SharedEngine::new(Engine::start(
        cfg.clone(),
        cache.clone(),
        EngineOptions::new(dir.path().join("pki")),
    ));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    let path = with_file(&env);
    let mut sue = session(&env, "sue", Role::Superuser).await;
    wait_status(&env.cache, "alpha", PlcStatus::Connected).await;

    let (mut cfg, version) = get(&mut sue).await;
    cfg["plc_config"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "gamma", "url": urls[1], "name": "Gamma"}));
    let r = set(&mut sue, &cfg, &version).await;
    assert_eq!(r["ok"], true, "{r}");
    let s = next_of(&mut sue, "snapshot").await;
    assert_eq!(park_ids(&s), ["alpha", "gamma"]);
    wait_status(&env.cache, "gamma", PlcStatus::Connected).await;
    let valued = eventually(Duration::from_secs(10), || async {
        let s = snap(&env.api);
        s["plcs"][1]["nodes"]
            .as_array()
            .is_some_and(|n| !n.is_empty())
    })
    .await;
    assert!(valued, "gamma's tags arrive");

    // Remove alpha: it disconnects and its values vanish from every snapshot.
    let (mut cfg, version) = get(&mut sue).await;
    cfg["plc_config"].as_array_mut().unwrap().remove(0);
    let r = set(&mut sue, &cfg, &version).await;
    assert_eq!(r["ok"], true, "{r}");
    let s = next_of(&mut sue, "snapshot").await;
    assert_eq!(park_ids(&s), ["gamma"]);
    assert_eq!(env.cache.plc_ids(), ["gamma"]);
    assert_eq!(env.cache.status("alpha"), None);
    let t = env
        .auth
        .login(
            "sue",
            PASSWORD,
            stator::auth::Source::Remote("127.0.0.1".into()),
        )
        .await
        .unwrap()
        .token;
    let (st, _, body) = http_as(&env, "GET", "/api/snapshot", &t, None).await;
    assert_eq!(st, 200);
    assert!(!body.contains("\"alpha\""), "{body}");
    assert!(std::fs::read_to_string(&path).unwrap().contains("gamma"));

    // The last park cannot be removed.
    let (mut cfg, version) = get(&mut sue).await;
    cfg["plc_config"] = json!([]);
    let r = set(&mut sue, &cfg, &version).await;
    assert_eq!(r["error"]["code"], "invalid", "{r}");
    assert_eq!(env.cache.plc_ids(), ["gamma"]);

    if let Some(s) = env.server {
        s.shutdown().await;
    }
    engine.shutdown().await;
    sim.stop().await;
}

async fn wait_status(cache: &Cache, plc: &str, want: PlcStatus) {
    let ok = eventually(Duration::from_secs(15), || {
        std::future::ready(cache.status(plc) == Some(want))
    })
    .await;
    assert!(ok, "{plc} stayed {:?}", cache.status(plc));
}

#[tokio::test]
async fn reload_keeps_the_old_config_when_invalid_and_applies_a_valid_one() {
    let env = Env::start(json!({})).await;
    let path = with_file(&env);
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, good.replace("\"Alpha\"", "\"\"")).unwrap();
    let e = env.api.reload_config_file().await.unwrap_err();
    assert!(
        e.contains("$.plc_config[0].name") && !e.contains('\n'),
        "{e}"
    );
    assert_eq!(env.api.config().plc_config[0].name, "Alpha");

    let mut v: Value = serde_json::from_str(&good).unwrap();
    v["tags"] = json!({"beta/P": {"unit": "kW"}});
    v["auth"]["password_min_length"] = json!(14);
    std::fs::write(&path, v.to_string()).unwrap();
    assert_eq!(
        env.api.reload_config_file().await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(env.api.config().tags["beta/P"].unit.as_deref(), Some("kW"));
    let s = snap(&env.api);
    assert_eq!(node(&s, "beta", "P")["unit"], "kW");
    // Auth settings apply without a restart: a 12-character password is now too short.
    let r = env
        .auth
        .add_user(&system(), "newbie", "twelve-chars", Role::Viewer, &[])
        .await;
    assert_refused(r, "invalid");
    let rows = rows_of(&env, "config_reload").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor.as_deref(), Some("sighup"));
}

/// The real signal: `stator serve` re-reads its file on SIGHUP, keeps running on an invalid one
/// (logging the one-line error) and applies a valid one.
#[cfg(unix)]
#[test]
fn sighup_reloads_the_file_of_a_running_server() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    let good = ConfigBuilder::new()
        .plc("alpha", "opc.tcp://127.0.0.1:9", "Alpha")
        .set("remote", json!({"listen": "127.0.0.1:0"}))
        .text();
    std::fs::write(&file, &good).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_stator"))
        .arg("--config")
        .arg(&file)
        .arg("--db")
        .arg(dir.path().join("stator.db"))
        .arg("serve")
        .env("RUST_LOG", "stator=info")
        .env("STATOR_SECRET_BACKEND", "file")
        .env("STATOR_SECRETS_DB", dir.path().join("secrets.enc"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => continue,
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    };
    let hup = |pid: u32| {
        // SAFETY: kill(2) with a child's pid and a valid signal number has no memory effects.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGHUP) }, 0);
    };
    wait_for("remote server listening");
    std::fs::write(&file, good.replace("\"Alpha\"", "\"\"")).unwrap();
    hup(child.id());
    let line = wait_for("configuration not reloaded");
    assert!(line.contains("$.plc_config[0].name"), "{line}");
    std::fs::write(&file, good.replace("\"Alpha\"", "\"Alpha two\"")).unwrap();
    hup(child.id());
    wait_for("SIGHUP: configuration reloaded");
    assert!(child.try_wait().unwrap().is_none(), "still running");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The alarm `id` as the `alarms` op lists it for `ws`.
async fn listed_alarm(ws: &mut Ws, id: &str) -> Option<Value> {
    let r = call(ws, json!({"id": "l", "op": "alarms"})).await;
    assert_eq!(r["ok"], true, "{r}");
    r["result"]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
}

/// Polls the alarm list until `id` is in `state` (`None`: not listed).
async fn alarm_until(ws: &mut Ws, id: &str, state: Option<&str>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let a = listed_alarm(ws, id).await;
        if a.as_ref().map(|a| a["state"].as_str().unwrap()) == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alarm {id} never reached {state:?}; last {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn limit_alarm(id: &str, limit: f64, priority: &str) -> Value {
    json!({"id": id, "tag": "alpha/SP_Power_Limit_kW", "condition": "high", "limit": limit,
        "priority": priority, "message": id})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_change_live_and_unchanged_ones_keep_their_state() {
    let sim = stator::sim::start(SimOptions {
        plcs: 1,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let urls = sim.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(
        ConfigBuilder::new()
            .plc("alpha", &urls[0], "Alpha")
            .set(
                "database",
                dir.path().join("stator.db").to_string_lossy().as_ref(),
            )
            .set(
                "alarms",
                json!([
                    limit_alarm("a_keep", 1100.0, "high"),
                    limit_alarm("a_move", 1150.0, "low"),
                    limit_alarm("a_gone", 1050.0, "medium"),
                ]),
            )
            .build(),
    );
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let engine = SharedEngine::new(Engine::start(
        cfg.clone(),
        cache.clone(),
        EngineOptions::new(dir.path().join("pki")),
    ));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    api.start_alarms().await.unwrap();
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    with_file(&env);
    let mut sue = session(&env, "sue", Role::Superuser).await;
    wait_status(&env.cache, "alpha", PlcStatus::Connected).await;

    sim.set_value(0, "SP_Power_Limit_kW", opcua::types::Variant::Float(1200.0))
        .unwrap();
    for id in ["a_keep", "a_move", "a_gone"] {
        alarm_until(&mut sue, id, Some("unack")).await;
    }
    let r = call(
        &mut sue,
        json!({"id": "a", "op": "alarm_ack", "ids": ["a_keep"]}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    alarm_until(&mut sue, "a_keep", Some("acked")).await;
    let shelve = json!({"id": "sh", "op": "alarm_shelve", "alarm": "a_keep", "minutes": 60, "reason": "test"});
    let r = call(&mut sue, shelve.clone()).await;
    assert_eq!(r["ok"], true, "{r}");
    let r = call(
        &mut sue,
        json!({"id": "u", "op": "alarm_unshelve", "alarm": "a_keep"}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");

    // a_keep unchanged, a_move's limit moves above the value, a_gone goes, a_new comes, and
    // the shelve limit shrinks.
    let (mut c, version) = get(&mut sue).await;
    c["alarms"] = json!([
        limit_alarm("a_keep", 1100.0, "high"),
        limit_alarm("a_move", 1300.0, "low"),
        limit_alarm("a_new", 1000.0, "urgent"),
    ]);
    c["alarm_settings"]["max_shelve_minutes"] = json!(30);
    let r = set(&mut sue, &c, &version).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["restart_required"], json!([]));

    alarm_until(&mut sue, "a_new", Some("unack")).await;
    alarm_until(&mut sue, "a_move", Some("rtn_unack")).await;
    alarm_until(&mut sue, "a_gone", None).await;
    let keep = listed_alarm(&mut sue, "a_keep").await.unwrap();
    assert_eq!(keep["state"], "acked", "{keep}");
    assert_eq!(keep["acked_by"], "sue", "{keep}");
    let r = call(&mut sue, shelve).await;
    assert_eq!(
        r["error"]["code"], "invalid",
        "the new shelve limit applies: {r}"
    );

    // Journal rows are stored by the alarm task after the transition is pushed: wait until the
    // rows of the removal and of the moved limit are there (or give up and let the asserts say).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let j = loop {
        let j = call(&mut sue, json!({"id": "j", "op": "alarm_journal"})).await;
        let stored = |id: &str| {
            j["result"]["rows"].as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|r| r["alarm"] == id && r["event"] == "clear")
            })
        };
        if (stored("a_gone") && stored("a_move")) || tokio::time::Instant::now() >= deadline {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rows = j["result"]["rows"].as_array().unwrap();
    let events = |id: &str| -> Vec<(String, Value)> {
        rows.iter()
            .rev()
            .filter(|r| r["alarm"] == id)
            .map(|r| {
                (
                    r["event"].as_str().unwrap().to_string(),
                    r["comment"].clone(),
                )
            })
            .collect()
    };
    let keep_events: Vec<String> = events("a_keep").into_iter().map(|e| e.0).collect();
    assert_eq!(keep_events, ["raise", "ack", "shelve", "unshelve"], "{j}");
    assert_eq!(
        events("a_gone").last().unwrap(),
        &("clear".to_string(), json!("removed from the configuration")),
        "{j}"
    );
    assert_eq!(events("a_move").last().unwrap().0, "clear", "{j}");

    env.api.alarms().stop().await;
    if let Some(s) = env.server {
        s.shutdown().await;
    }
    engine.shutdown().await;
    sim.stop().await;
}
