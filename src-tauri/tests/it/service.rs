//! Service mode, two-point calibration and diagnostics: against the built-in simulator over
//! OPC UA (writes, calibration, ServerStatus reads) and a real SQLite file (persistence, audit).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use opcua::types::Variant;
use serde_json::{json, Value};
use stator::api::{dispatch, Api, ApiError, Ctx, Request, SharedEngine};
use stator::auth::{Auth, Role, Source};
use stator::live::{Cache, PlcStatus, Quality, TagValue, ValueUpdate};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{SimHandle, SimOptions};

const LONG: Duration = Duration::from_secs(15);

fn calibration(id: &str, park: &str, n: u8, unit: &str, hi: f64, tol: f64) -> Value {
    json!({"id": id, "tag": format!("{park}/Pressure_P{n}_{unit}"),
        "raw_tag": format!("{park}/Pressure_P{n}_raw"), "gain_tag": format!("{park}/P{n}_Cal_Gain"),
        "offset_tag": format!("{park}/P{n}_Cal_Offset"), "unit": unit, "range": [0, hi],
        "tolerance": tol, "interval_days": 365})
}

fn extra() -> Value {
    json!({
        "service": {"operator_writable": ["alpha/SP_Note"], "capture_seconds": 0.3},
        "calibration": [calibration("alpha_p1", "alpha", 1, "bar", 10.0, 0.05)],
        "auth": {"idle_timeout_minutes": {"serviceman": 0.05}}
    })
}

struct SimEnv {
    env: Env,
    sim: SimHandle,
    engine: SharedEngine,
}

async fn start(extra: Value) -> SimEnv {
    let sim = stator::sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Arc::new(config(dir.path(), extra));
    // Keyed like production: the audit chain is HMAC-chained (diagnostics verify it).
    let key = stator::store::AuditKey::generate();
    let store = stator::store::Store::open_keyed(&dir.path().join("stator.db"), &key).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let mut opts = EngineOptions::new(dir.path().join("pki"));
    let urls: HashMap<String, String> = ["alpha", "beta"]
        .iter()
        .map(|s| s.to_string())
        .zip(sim.endpoints())
        .collect();
    opts.url_override = Some(urls);
    let engine = SharedEngine::new(Engine::start(cfg.clone(), cache.clone(), opts));
    let api = Api::with_writer(auth.clone(), cache.clone(), cfg.clone(), engine.clone());
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    for plc in ["alpha", "beta"] {
        let c = env.cache.clone();
        wait_until(LONG, "connected", move || {
            c.status(plc) == Some(PlcStatus::Connected) && c.value(plc, "P1_Cal_Gain").is_some()
        })
        .await;
    }
    SimEnv { env, sim, engine }
}

async fn panel_login(env: &Env, name: &str, role: Role, parks: &[&str]) -> Ctx {
    env.user(name, role, parks).await;
    let t = env
        .auth
        .login(name, PASSWORD, Source::Panel)
        .await
        .unwrap()
        .token;
    Ctx::new(Some(t), Source::Panel)
}

async fn op(api: &Api, ctx: &Ctx, body: Value) -> Result<Value, ApiError> {
    dispatch(api, ctx, Request::from_json(body)?).await
}

async fn write(
    api: &Api,
    ctx: &Ctx,
    plc: &str,
    node: &str,
    value: Value,
) -> Result<Value, ApiError> {
    op(
        api,
        ctx,
        json!({"op": "write", "plc": plc, "node": node, "value": value}),
    )
    .await
}

#[tokio::test]
async fn service_mode_blocks_operator_writes_and_ends_with_the_serviceman_s_session() {
    let s = start(json!({"service": {"operator_writable": ["alpha/SP_Note"]}})).await;
    let api = &s.env.api;
    let olga = panel_login(&s.env, "olga", Role::Operator, &["alpha", "beta"]).await;
    let sam = panel_login(&s.env, "sam", Role::Serviceman, &["alpha"]).await;
    write(api, &olga, "alpha", "SP_Mode", json!(2))
        .await
        .unwrap();
    // Operators cannot start service mode.
    assert_refused(
        op(
            api,
            &olga,
            json!({"op": "service_start", "park": "alpha", "reason": "x"}),
        )
        .await,
        "forbidden",
    );
    let b = op(
        api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "pump swap"}),
    )
    .await
    .unwrap();
    assert_eq!(
        (b["active"].clone(), b["by"].clone(), b["reason"].clone()),
        (json!(true), json!("sam"), json!("pump swap"))
    );
    assert_refused(
        op(
            api,
            &sam,
            json!({"op": "service_start", "park": "alpha", "reason": "again"}),
        )
        .await,
        "in_service",
    );
    let e = write(api, &olga, "alpha", "SP_Mode", json!(1))
        .await
        .unwrap_err();
    assert_eq!(e.code, "in_service", "{e}");
    assert_eq!(e.code.http_status(), 409);
    // The configured exception, the other park and the serviceman still write.
    write(api, &olga, "alpha", "SP_Note", json!("ok"))
        .await
        .unwrap();
    write(api, &olga, "beta", "SP_Mode", json!(1))
        .await
        .unwrap();
    write(api, &sam, "alpha", "SP_Mode", json!(1))
        .await
        .unwrap();
    // Every client of the park sees the banner in its snapshot.
    let snap = op(api, &olga, json!({"op": "snapshot"})).await.unwrap();
    assert_eq!(snap["service"][0]["park"], "alpha", "{}", snap["service"]);
    assert_eq!(snap["service"][0]["by"], "sam");
    let refused = rows_of(&s.env, "write").await;
    assert!(
        refused.iter().any(|r| r.result.starts_with("in_service")),
        "{refused:?}"
    );
    // Logout ends it.
    op(api, &sam, json!({"op": "logout"})).await.unwrap();
    let modes = api.service_modes().clone();
    wait_until(Duration::from_secs(5), "service mode to end", move || {
        !modes.in_service("alpha")
    })
    .await;
    write(api, &olga, "alpha", "SP_Mode", json!(1))
        .await
        .unwrap();
    let starts = rows_of(&s.env, "service_start").await;
    let ends = rows_of(&s.env, "service_end").await;
    assert_eq!(starts.len(), 1);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0].new_value.as_deref(), Some("session_ended"));
    let snap = op(api, &olga, json!({"op": "snapshot"})).await.unwrap();
    assert!(snap.get("service").is_none(), "{snap}");
    s.engine.shutdown().await;
    s.sim.stop().await;
}

#[tokio::test]
async fn service_mode_ends_on_idle_timeout_and_on_service_end() {
    let env = Env::offline(json!({"auth": {"idle_timeout_minutes": {"serviceman": 0.02}}}));
    let sam = panel_login(&env, "sam", Role::Serviceman, &["alpha", "beta"]).await;
    op(
        &env.api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "r"}),
    )
    .await
    .unwrap();
    assert!(env.api.service_modes().in_service("alpha"));
    let modes = env.api.service_modes().clone();
    wait_until(Duration::from_secs(6), "idle end", move || {
        !modes.in_service("alpha")
    })
    .await;
    // A fresh session: service_end ends it at once; ending twice is refused.
    let sam2 = Ctx::new(
        Some(
            env.auth
                .login("sam", PASSWORD, Source::Panel)
                .await
                .unwrap()
                .token,
        ),
        Source::Panel,
    );
    op(
        &env.api,
        &sam2,
        json!({"op": "service_start", "park": "beta", "reason": "r"}),
    )
    .await
    .unwrap();
    let b = op(
        &env.api,
        &sam2,
        json!({"op": "service_end", "park": "beta"}),
    )
    .await
    .unwrap();
    assert_eq!(b["active"], false);
    assert!(!env.api.service_modes().in_service("beta"));
    assert_refused(
        op(
            &env.api,
            &sam2,
            json!({"op": "service_end", "park": "beta"}),
        )
        .await,
        "invalid",
    );
}

#[tokio::test]
async fn service_mode_survives_a_restart() {
    let env = Env::offline(json!({}));
    let sam = panel_login(&env, "sam", Role::Serviceman, &["alpha"]).await;
    op(
        &env.api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "valve"}),
    )
    .await
    .unwrap();
    let db = env._dir.path().join("stator.db");
    let store = stator::store::Store::open(&db).unwrap();
    let auth = Auth::new(store, &env.cfg);
    let api = Api::new(auth.clone(), env.cache.clone(), env.cfg.clone());
    let p = api.service_modes().get("alpha").expect("still in service");
    assert_eq!((p.username.as_str(), p.reason.as_str()), ("sam", "valve"));
    let olga = auth
        .add_user(
            &system(),
            "olga",
            PASSWORD,
            Role::Operator,
            &["alpha".into()],
        )
        .await;
    assert!(olga.is_ok());
    let t = auth.login("olga", PASSWORD, Source::Panel).await.unwrap();
    let snap = api.snapshot_msg(&t.principal);
    assert_eq!(snap.service.len(), 1);
    assert_eq!(snap.service[0].by.as_deref(), Some("sam"));
}

async fn wait_raw(s: &SimEnv, near: f64) {
    let c = s.env.cache.clone();
    wait_until(LONG, "the raw value to follow the reference", move || {
        c.value("alpha", "Pressure_P1_raw")
            .and_then(|v| v.value.as_f64())
            .is_some_and(|r| (r - near).abs() <= 3.0)
    })
    .await;
}

fn raw_for(bar: f64) -> f64 {
    ((bar * 1.02 + 0.1) / 10.0 * 27648.0).round()
}

#[tokio::test]
async fn a_two_point_calibration_writes_gain_and_offset_and_the_value_then_matches() {
    let s = start(extra()).await;
    let api = &s.env.api;
    api.start_alarms().await.unwrap();
    let sam = panel_login(&s.env, "sam", Role::Serviceman, &["alpha"]).await;
    let cal = |o: &str| json!({"op": o, "calibration": "alpha_p1"});
    // Never calibrated: due (overdue), a low alarm.
    let due = alarm_listed(api, &sam, "alpha_p1.cal_due", "unack").await;
    assert_eq!(
        (
            &due["priority"],
            &due["condition"],
            &due["park"],
            &due["tag"]
        ),
        (
            &json!("low"),
            &json!("cal_due"),
            &json!("alpha"),
            &json!("alpha/Pressure_P1_bar")
        ),
        "{due}"
    );
    // Not in service yet.
    assert_refused(op(api, &sam, cal("calibration_start")).await, "forbidden");
    op(
        api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "calibration"}),
    )
    .await
    .unwrap();
    // The configured calibrations of sam's parks: never calibrated = overdue.
    let list = op(api, &sam, json!({"op": "calibrations"})).await.unwrap();
    let c = &list["calibrations"][0];
    assert_eq!(c["id"], "alpha_p1", "{list}");
    assert_eq!(c["park"], "alpha");
    assert_eq!(c["due"], "overdue");
    assert_eq!(c["open_run"], false);
    assert!(
        c.get("last").is_none() && c.get("next_due").is_none(),
        "{c}"
    );
    let run = op(api, &sam, cal("calibration_start")).await.unwrap();
    assert_eq!(run["id"], "alpha_p1");
    assert_eq!(run["points"], json!([]));
    let list = op(api, &sam, json!({"op": "calibrations"})).await.unwrap();
    assert_eq!(list["calibrations"][0]["open_run"], true);
    assert!(run.get("gain").is_none());
    // Apply without two points.
    assert_refused(op(api, &sam, cal("calibration_apply")).await, "invalid");
    s.sim
        .set_value(0, "P1_Applied_bar", Variant::Float(2.0))
        .unwrap();
    wait_raw(&s, raw_for(2.0)).await;
    // Out of range.
    assert_refused(
        op(
            api,
            &sam,
            json!({"op": "calibration_point", "calibration": "alpha_p1", "reference": 11.0}),
        )
        .await,
        "invalid",
    );
    let run = op(
        api,
        &sam,
        json!({"op": "calibration_point", "calibration": "alpha_p1", "reference": 2.0}),
    )
    .await
    .unwrap();
    assert_eq!(run["points"].as_array().unwrap().len(), 1);
    assert!(
        (run["points"][0]["raw"].as_f64().unwrap() - raw_for(2.0)).abs() <= 2.0,
        "{run}"
    );
    assert!(run["points"][0]["spread"].as_f64().unwrap() <= 2.0);
    // The same point again is refused (the fit would divide by zero).
    assert_refused(
        op(
            api,
            &sam,
            json!({"op": "calibration_point", "calibration": "alpha_p1", "reference": 2.0}),
        )
        .await,
        "invalid",
    );
    s.sim
        .set_value(0, "P1_Applied_bar", Variant::Float(8.0))
        .unwrap();
    wait_raw(&s, raw_for(8.0)).await;
    let run = op(
        api,
        &sam,
        json!({"op": "calibration_point", "calibration": "alpha_p1", "reference": 8.0}),
    )
    .await
    .unwrap();
    let found = run["as_found_error"].as_f64().unwrap();
    assert!((found - 0.26).abs() < 0.02, "as found {found}");
    let gain = run["gain"].as_f64().unwrap();
    assert!((gain - 10.0 / 27648.0 / 1.02).abs() < 1e-5, "{gain}");
    let run = op(api, &sam, cal("calibration_apply")).await.unwrap();
    assert_eq!(run["pass"], true, "{run}");
    // A passing calibration (next due in 365 days) clears the due alarm.
    alarm_listed(api, &sam, "alpha_p1.cal_due", "rtn_unack").await;
    assert!(
        run["as_left_error"].as_f64().unwrap().abs() <= 0.05,
        "{run}"
    );
    // The PLC holds the new gain; its value follows the reference.
    let Some(Variant::Float(g)) = s.sim.value(0, "P1_Cal_Gain") else {
        panic!()
    };
    assert!((f64::from(g) - gain).abs() < 1e-6);
    let v = s
        .env
        .cache
        .value("alpha", "Pressure_P1_bar")
        .unwrap()
        .value
        .as_f64()
        .unwrap();
    assert!((v - 8.0).abs() <= 0.05, "{v}");
    // One record, readable by op; the writes went through the audited write path.
    let recs = op(
        api,
        &sam,
        json!({"op": "calibration_records", "calibration": "alpha_p1"}),
    )
    .await
    .unwrap();
    let recs = recs["records"].as_array().unwrap().clone();
    assert_eq!(recs.len(), 1);
    // Now calibrated: due in `interval_days`, the last record named.
    let list = op(api, &sam, json!({"op": "calibrations"})).await.unwrap();
    let c = &list["calibrations"][0];
    assert_eq!(c["due"], "ok", "{c}");
    assert_eq!(c["last"]["n"], recs[0]["n"]);
    assert_eq!(c["last"]["by"], "sam");
    assert_eq!(c["next_due"], recs[0]["next_due"]);
    assert_eq!(c["open_run"], false);
    let olga = panel_login(&s.env, "olga", Role::Operator, &["alpha"]).await;
    assert_refused(
        op(api, &olga, json!({"op": "calibrations"})).await,
        "forbidden",
    );
    assert_eq!(recs[0]["by"], "sam");
    assert_eq!(recs[0]["pass"], true);
    assert_eq!(recs[0]["points"].as_array().unwrap().len(), 2);
    let writes = rows_of(&s.env, "write").await;
    assert!(
        writes
            .iter()
            .any(|r| r.target.as_deref() == Some("alpha/P1_Cal_Gain") && r.result == "ok"),
        "{writes:?}"
    );
    let applies = rows_of(&s.env, "calibration_apply").await;
    assert_eq!(applies.len(), 2, "the refused early apply and the real one");
    assert!(
        applies[0].result.starts_with("invalid") && applies[1].result == "ok",
        "{applies:?}"
    );
    // A second run cancelled writes nothing.
    op(api, &sam, cal("calibration_start")).await.unwrap();
    let c = op(api, &sam, cal("calibration_cancel")).await.unwrap();
    assert_eq!(c["state"], "cancelled");
    assert_refused(op(api, &sam, cal("calibration_apply")).await, "invalid");
    // The CLI lists the record from the database.
    let cfg_path = s.env._dir.path().join("config.json");
    std::fs::write(&cfg_path, serde_json::to_string(&*s.env.cfg).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["calibration", "list", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("alpha_p1") && text.contains("pass") && text.contains(" ok"),
        "{text}"
    );
    // `stator diag --json` connects on its own to the same simulator.
    let mut direct: Value = serde_json::to_value(&*s.env.cfg).unwrap();
    for (i, url) in s.sim.endpoints().iter().enumerate() {
        direct["plc_config"][i]["url"] = json!(url);
    }
    direct["database"] = json!(s.env._dir.path().join("diag.db"));
    direct["pki_dir"] = json!(s.env._dir.path().join("pki-diag"));
    let diag_cfg = s.env._dir.path().join("diag.json");
    std::fs::write(&diag_cfg, direct.to_string()).unwrap();
    // Off the test's runtime thread: the simulator must keep answering meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_stator"))
            .args(["diag", "--json", "--wait", "15", "--config"])
            .arg(&diag_cfg)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diag: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(diag["parks"][0]["state"], "CONNECTED", "{diag}");
    assert_eq!(diag["parks"][0]["server_status"]["state"], "Running");
    assert!(
        diag["parks"][0]["server_certificate"]["days_left"]
            .as_i64()
            .unwrap()
            > 0,
        "{diag}"
    );
    assert_eq!(diag["panel"]["audit_chain"]["state"], "ok", "{diag}");
    // Diagnostics: plausible figures for the park.
    let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
    let park = &d["parks"][0];
    assert_eq!(park["park"], "alpha");
    assert_eq!(park["state"], "CONNECTED");
    assert_eq!(park["server_status"]["state"], "Running", "{park}");
    assert!(
        park["server_status"]["clock_drift_ms"]
            .as_i64()
            .unwrap()
            .abs()
            < 5_000
    );
    assert!(park["engine"]["values_received"].as_u64().unwrap() > 0);
    assert!(park["tags"].as_u64().unwrap() > 20);
    assert_eq!(park["service"]["by"], "sam");
    assert!(d["panel"]["database_bytes"].as_u64().unwrap() > 0);
    assert!(d["panel"]["disk_free_bytes"].as_u64().unwrap() > 0, "{d}");
    assert!(d["panel"]["clients"]["panel"].is_u64() && d["panel"]["clients"]["browser"].is_u64());
    // sam's session (olga's too: both made requests in this test).
    assert!(d["panel"]["sessions"].as_u64().unwrap() >= 1, "{d}");
    // Connected since a moment in this test's past.
    let since: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(park["engine"]["state_since"].clone()).unwrap();
    assert!(
        since <= chrono::Utc::now() && chrono::Utc::now() - since < chrono::Duration::minutes(5)
    );
    let ping = op(
        api,
        &sam,
        json!({"op": "diagnostics_ping", "park": "alpha"}),
    )
    .await
    .unwrap();
    assert!(ping["rtt_ms"].as_f64().unwrap() > 0.0);
    assert_refused(
        op(api, &sam, json!({"op": "diagnostics_ping", "park": "beta"})).await,
        "forbidden",
    );
    api.alarms().stop().await;
    s.engine.shutdown().await;
    s.sim.stop().await;
}

fn raw(cache: &Cache, tag: &str, v: Value, quality: Quality) {
    cache.update(
        "alpha",
        [ValueUpdate {
            tag: tag.into(),
            value: TagValue {
                value: v,
                quality,
                reason: None,
                ts: Some(chrono::Utc::now()),
            },
        }],
    );
}

#[tokio::test]
async fn bad_calibration_input_is_refused_and_audited() {
    let mut ex = extra();
    ex["calibration"] = json!([calibration("alpha_p1", "alpha", 1, "bar", 10.0, 0.05)]);
    let env = Env::offline(ex);
    env.cache.set_tags(
        "alpha",
        vec![
            meta("Pressure_P1_bar", "Float", false),
            meta("Pressure_P1_raw", "Int16", false),
            meta("P1_Cal_Gain", "Float", false),
            meta("P1_Cal_Offset", "Float", true),
        ],
    );
    raw(
        &env.cache,
        "P1_Cal_Gain",
        json!(10.0 / 27648.0),
        Quality::Good,
    );
    raw(&env.cache, "P1_Cal_Offset", json!(0.0), Quality::Good);
    raw(&env.cache, "Pressure_P1_raw", json!(5000), Quality::Bad);
    let api = &env.api;
    let sam = panel_login(&env, "sam", Role::Serviceman, &["alpha"]).await;
    let olga = panel_login(&env, "olga", Role::Operator, &["alpha"]).await;
    let cal = |o: &str| json!({"op": o, "calibration": "alpha_p1"});
    let pt = |r: f64| json!({"op": "calibration_point", "calibration": "alpha_p1", "reference": r});
    assert_refused(op(api, &olga, cal("calibration_start")).await, "forbidden");
    assert_refused(
        op(
            api,
            &sam,
            json!({"op": "calibration_start", "calibration": "nope"}),
        )
        .await,
        "not_found",
    );
    op(
        api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "cal"}),
    )
    .await
    .unwrap();
    op(api, &sam, cal("calibration_start")).await.unwrap();
    // Bad quality.
    let e = op(api, &sam, pt(2.0)).await.unwrap_err();
    assert_eq!(e.code, "invalid");
    assert!(e.message.contains("bad quality"), "{e}");
    // Too much spread: the raw value jumps during the capture window.
    raw(&env.cache, "Pressure_P1_raw", json!(5000), Quality::Good);
    let c = env.cache.clone();
    let jitter = tokio::spawn(async move {
        for i in 0..40 {
            raw(
                &c,
                "Pressure_P1_raw",
                json!(if i % 2 == 0 { 5000 } else { 9000 }),
                Quality::Good,
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let e = op(api, &sam, pt(2.0)).await.unwrap_err();
    jitter.await.unwrap();
    assert_eq!(e.code, "invalid");
    assert!(e.message.contains("spreads"), "{e}");
    raw(&env.cache, "Pressure_P1_raw", json!(5000), Quality::Good);
    op(api, &sam, pt(2.0)).await.unwrap();
    raw(&env.cache, "Pressure_P1_raw", json!(20000), Quality::Good);
    op(api, &sam, pt(8.0)).await.unwrap();
    // The PLC refuses the gain (not writable): nothing written, no record.
    let e = op(api, &sam, cal("calibration_apply")).await.unwrap_err();
    assert_eq!(e.code, "forbidden", "{e}");
    let recs = op(api, &sam, json!({"op": "calibration_records"}))
        .await
        .unwrap();
    assert_eq!(recs["records"], json!([]));
    assert_refused(
        op(
            api,
            &sam,
            json!({"op": "calibration_records", "from": "yesterday"}),
        )
        .await,
        "invalid",
    );
    let applies = rows_of(&env, "calibration_apply").await;
    assert_eq!(applies.len(), 1);
    assert!(
        applies[0].result.starts_with("forbidden"),
        "{:?}",
        applies[0]
    );
    let starts = rows_of(&env, "calibration_start").await;
    assert!(
        starts
            .iter()
            .any(|r| r.actor.as_deref() == Some("olga") && r.result.starts_with("forbidden")),
        "{starts:?}"
    );
    let points = rows_of(&env, "calibration_point").await;
    assert_eq!(
        points
            .iter()
            .filter(|r| r.result.starts_with("invalid"))
            .count(),
        2,
        "{points:?}"
    );
    assert!(rows_of(&env, "write")
        .await
        .iter()
        .all(|r| r.result != "ok"));
}

/// Polls `alarms` as `ctx` until `id` is listed in `state`.
async fn alarm_listed(api: &Api, ctx: &Ctx, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + LONG;
    loop {
        let list = op(api, ctx, json!({"op": "alarms"})).await.unwrap();
        let a = list["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned();
        if let Some(a) = a.filter(|a| a["state"] == state) {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alarm {id} never {state}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_handover_lists_the_open_alarms_and_the_service_state() {
    let s = start(json!({"alarms": [
        {"id": "a_high", "tag": "alpha/SP_Power_Limit_kW", "condition": "high", "limit": 1100,
         "priority": "high", "message": "Power limit high"}
    ]}))
    .await;
    let api = &s.env.api;
    api.start_alarms().await.unwrap();
    let olga = panel_login(&s.env, "olga", Role::Operator, &["alpha", "beta"]).await;
    let sam = panel_login(&s.env, "sam", Role::Serviceman, &["alpha"]).await;
    s.sim
        .set_value(0, "SP_Power_Limit_kW", Variant::Float(1200.0))
        .unwrap();
    alarm_listed(api, &olga, "a_high", "unack").await;
    op(
        api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "pump swap"}),
    )
    .await
    .unwrap();

    let handover = |park: &str| json!({"op": "logbook_add", "park": park, "category": "handover", "text": "Shift ends"});
    let e = op(api, &olga, handover("alpha")).await.unwrap()["entry"].clone();
    let snap = &e["snapshot"];
    let alarms = snap["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{snap}");
    assert_eq!(
        (
            &alarms[0]["id"],
            &alarms[0]["state"],
            &alarms[0]["priority"]
        ),
        (&json!("a_high"), &json!("unack"), &json!("high")),
        "{snap}"
    );
    assert_eq!(
        (
            &snap["service"]["active"],
            &snap["service"]["by"],
            &snap["service"]["reason"]
        ),
        (&json!(true), &json!("sam"), &json!("pump swap")),
        "{snap}"
    );
    // The same snapshot comes back when the log is read.
    let log = op(api, &olga, json!({"op": "logbook", "park": "alpha"}))
        .await
        .unwrap();
    assert_eq!(log["entries"][0]["snapshot"], *snap);

    // Beta has no open alarm and is not in service.
    let e = op(api, &olga, handover("beta")).await.unwrap()["entry"].clone();
    assert_eq!(
        e["snapshot"],
        json!({"alarms": [], "service": {"park": "beta", "active": false}})
    );
    api.alarms().stop().await;
    s.engine.shutdown().await;
    s.sim.stop().await;
}

#[tokio::test]
async fn alarms_raised_in_service_are_marked_in_the_journal_and_incidents() {
    let s = start(json!({"alarms": [
        {"id": "a_high", "tag": "alpha/SP_Power_Limit_kW", "condition": "high", "limit": 1100,
         "priority": "high", "message": "Power limit high"}
    ]}))
    .await;
    let api = &s.env.api;
    api.start_alarms().await.unwrap();
    let olga = panel_login(&s.env, "olga", Role::Operator, &["alpha"]).await;
    let sam = panel_login(&s.env, "sam", Role::Serviceman, &["alpha"]).await;
    let limit = |kw: f32| {
        s.sim
            .set_value(0, "SP_Power_Limit_kW", Variant::Float(kw))
            .unwrap()
    };
    // Raised and cleared before service, then raised in service and cleared after it.
    limit(1200.0);
    alarm_listed(api, &olga, "a_high", "unack").await;
    limit(1000.0);
    alarm_listed(api, &olga, "a_high", "rtn_unack").await;
    op(
        api,
        &sam,
        json!({"op": "service_start", "park": "alpha", "reason": "pump swap"}),
    )
    .await
    .unwrap();
    limit(1200.0);
    alarm_listed(api, &olga, "a_high", "unack").await;
    op(api, &sam, json!({"op": "service_end", "park": "alpha"}))
        .await
        .unwrap();
    limit(1000.0);
    alarm_listed(api, &olga, "a_high", "rtn_unack").await;

    let j = op(
        api,
        &olga,
        json!({"op": "alarm_journal", "alarm": "a_high"}),
    )
    .await
    .unwrap();
    let rows: Vec<(String, bool)> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["during_service"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, bool)> = [
        ("raise", false),
        ("clear", false),
        ("raise", true),
        ("clear", false),
    ]
    .iter()
    .map(|(e, m)| (e.to_string(), *m))
    .collect();
    assert_eq!(rows, want, "{j}");
    let inc = op(api, &olga, json!({"op": "incidents"})).await.unwrap();
    let marks: Vec<bool> = inc["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["during_service"].as_bool().unwrap())
        .collect();
    assert_eq!(marks, [true, false], "newest first: {inc}");
    api.alarms().stop().await;
    s.engine.shutdown().await;
    s.sim.stop().await;
}

#[tokio::test]
async fn diagnostics_report_the_server_certificate_and_the_audit_chain() {
    use chrono::{DateTime, Utc};
    let s = start(extra()).await;
    let api = &s.env.api;
    let sam = panel_login(&s.env, "sam", Role::Serviceman, &["alpha"]).await;
    let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
    // The simulator's certificate, from the endpoint the engine connected to (security None).
    let cert = &d["parks"][0]["server_certificate"];
    assert!(cert.is_object(), "{d}");
    assert!(d["parks"][0]["server_certificate_error"].is_null());
    let not_after: DateTime<Utc> = serde_json::from_value(cert["not_after"].clone()).unwrap();
    let days = cert["days_left"].as_i64().unwrap();
    assert!(not_after > Utc::now(), "{cert}");
    assert!(days > 0, "{cert}");
    assert!(
        ((not_after - Utc::now()).num_days() - days).abs() <= 1,
        "{cert}"
    );
    assert_eq!(cert["expires_soon"], days < 30, "{cert}");
    assert!(cert["subject"].as_str().unwrap().contains("CN="), "{cert}");
    // The simulator's BuildInfo (never the "[null]" of an absent string).
    let status = &d["parks"][0]["server_status"];
    assert_eq!(
        status["product_name"], "Stator S7-1200 simulator",
        "{status}"
    );
    assert_eq!(
        status["software_version"],
        env!("CARGO_PKG_VERSION"),
        "{status}"
    );
    assert!(status["build_date"].is_string(), "{status}");
    // CPU over an interval of at least 1 s (since the api started, then between replies).
    let deadline = tokio::time::Instant::now() + LONG;
    let cpu = loop {
        let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
        if !d["panel"]["cpu_percent"].is_null() || tokio::time::Instant::now() > deadline {
            break d["panel"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pct = cpu["cpu_percent"].as_f64().unwrap();
    assert!((0.0..=100.0 * 64.0).contains(&pct), "{cpu}");
    assert!(cpu["cpu_interval_s"].as_f64().unwrap() >= 1.0, "{cpu}");

    // The first `diagnostics` started a check; a re-run replies its fresh result.
    assert!(
        ["ok", "unknown"].contains(&d["panel"]["audit_chain"]["state"].as_str().unwrap()),
        "{d}"
    );
    let v = op(api, &sam, json!({"op": "diagnostics_audit_verify"}))
        .await
        .unwrap();
    assert_eq!(v["state"], "ok", "{v}");
    assert!(v["rows"].as_u64().unwrap() >= 2, "{v}");
    assert!(v.get("error").is_none(), "{v}");
    let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
    assert_eq!(d["panel"]["audit_chain"]["checked_at"], v["checked_at"]);
    assert_eq!(d["panel"]["audit_chain"]["state"], "ok");
    let rows = rows_of(&s.env, "audit_verify").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].result, "ok");
    assert_eq!(rows[0].actor.as_deref(), Some("sam"));

    // Someone with the file rewrites a row: the cache still says ok until a re-run says broken.
    let db = s.env._dir.path().join("stator.db");
    tokio::task::spawn_blocking(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE id = 2;",
        )
        .unwrap();
    })
    .await
    .unwrap();
    let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
    assert_eq!(d["panel"]["audit_chain"]["state"], "ok", "cached");
    // Concurrent re-runs are coalesced: five requests, at most two walks of the table.
    let runs = (0..5).map(|_| op(api, &sam, json!({"op": "diagnostics_audit_verify"})));
    let replies: Vec<Value> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let mut walks: Vec<String> = replies
        .iter()
        .map(|r| r["checked_at"].as_str().unwrap().to_string())
        .collect();
    walks.dedup();
    assert!(walks.len() <= 2, "{replies:?}");
    for r in &replies {
        assert_eq!(r["state"], "broken", "{r}");
        assert!(r["error"].as_str().unwrap().contains("row 2"), "{r}");
    }
    let d = op(api, &sam, json!({"op": "diagnostics"})).await.unwrap();
    assert_eq!(d["panel"]["audit_chain"]["state"], "broken", "{d}");
    let rows = rows_of(&s.env, "audit_verify").await;
    assert_eq!(rows.len(), 6, "one audit row per request");
    assert!(rows.iter().filter(|r| r.result == "broken").count() == 5);
    // An operator may not run it (diagnostics permission).
    let olga = panel_login(&s.env, "olga", Role::Operator, &["alpha"]).await;
    assert_refused(
        op(api, &olga, json!({"op": "diagnostics_audit_verify"})).await,
        "forbidden",
    );
    api.alarms().stop().await;
    s.engine.shutdown().await;
    s.sim.stop().await;
}
