//! The historian against the built-in simulator over real OPC UA/TCP: recording on change with
//! qualities, gaps for a disconnect, deadband and minimum interval, retention, min/max
//! decimation, park filtering of every op and HTTP route, the server-drawn PNG, configured
//! limits and alarm limits on the series (visible parks only, live after `config_set`) and on
//! the server-drawn SVG/PNG.
//!
//! Every wait polls with a bound; nothing sleeps to synchronise.

use std::sync::Arc;
use std::time::Duration;

use opcua::types::Variant;
use serde_json::{json, Value};
use stator::api::{dispatch, Api, Ctx, Request};
use stator::auth::{Auth, Role, Source};
use stator::config::Config;
use stator::history::Historian;
use stator::live::{Cache, PlcStatus};
use stator::plc::{Engine, EngineOptions};
use stator::sim::{self, SimHandle, SimOptions};

use crate::support::{eventually, http_as, wait_until, ConfigBuilder, Env};

const WAIT: Duration = Duration::from_secs(10);
const TAG: &str = "SP_Power_Limit_kW";

struct Rig {
    env: Env,
    sim: Option<SimHandle>,
    engine: Engine,
    hist: Historian,
    _pki: tempfile::TempDir,
}

/// Two parks on the simulator (`alpha`, `beta`), the historian recording them with `history`
/// settings and `tags` (per-tag config), the api and the remote server over them.
async fn rig(history: Value, tags: Value) -> Rig {
    rig_with(history, tags, json!([])).await
}

/// `rig` with alarm definitions (`alarms`, only their configuration is read here).
async fn rig_with(history: Value, tags: Value, alarms: Value) -> Rig {
    let sim = sim::start(SimOptions {
        plcs: 2,
        ..SimOptions::ephemeral()
    })
    .await
    .expect("simulator starts");
    let eps = sim.endpoints();
    let dir = tempfile::tempdir().unwrap();
    let mut h = json!({
        "database": dir.path().join("history.db"),
        "min_interval_seconds": 0,
        "flush_seconds": 0.1,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut h, history) {
        a.extend(b);
    }
    let builder = ConfigBuilder::new()
        .plc("alpha", &eps[0], "Alpha")
        .plc("beta", &eps[1], "Beta")
        .set("plc_reconnect_delay_minutes", 0.05)
        .set(
            "database",
            dir.path().join("stator.db").to_string_lossy().as_ref(),
        )
        .set("history", h)
        .set("tags", tags)
        .set("alarms", alarms);
    // The CLI test reads the same configuration from disk.
    std::fs::write(dir.path().join("config.json"), builder.text()).unwrap();
    let cfg: Arc<Config> = Arc::new(builder.build());
    let store = stator::store::Store::open(&dir.path().join("stator.db")).unwrap();
    let auth = Auth::new(store, &cfg);
    let cache = Cache::from_config(&cfg);
    let hist = Historian::open(&dir.path().join("history.db"), &cfg.history).unwrap();
    hist.record(cache.clone(), cfg.clone());
    let pki = tempfile::tempdir().unwrap();
    let engine = Engine::start(cfg.clone(), cache.clone(), EngineOptions::new(pki.path()));
    let api = Api::new(auth.clone(), cache.clone(), cfg.clone());
    api.attach_history(hist.clone());
    let env = Env::serve(dir, cfg, auth, cache, api, |_| {}).await;
    for p in ["alpha", "beta"] {
        wait_until(WAIT, &format!("{p} CONNECTED"), || {
            env.cache.status(p) == Some(PlcStatus::Connected)
        })
        .await;
    }
    Rig {
        env,
        sim: Some(sim),
        engine,
        hist,
        _pki: pki,
    }
}

impl Rig {
    /// Sets a Float tag on park `i` as the PLC program would and waits until the cache has it.
    async fn set_f32(&self, park: usize, tag: &str, v: f32) {
        self.sim
            .as_ref()
            .unwrap()
            .set_value(park, tag, Variant::Float(v))
            .unwrap();
        self.seen(park, tag, json!(v)).await;
    }

    async fn seen(&self, park: usize, tag: &str, v: Value) {
        let plc = ["alpha", "beta"][park];
        wait_until(WAIT, &format!("{plc}/{tag} = {v}"), || {
            self.env.cache.value(plc, tag).map(|x| x.value) == Some(v.clone())
        })
        .await;
    }

    async fn flush(&self) {
        let h = self.hist.clone();
        tokio::task::spawn_blocking(move || h.flush_blocking())
            .await
            .unwrap()
            .unwrap();
    }

    async fn call(&self, token: &str, v: Value) -> Result<Value, stator::api::ApiError> {
        let req = Request::from_json(v)?;
        let ctx = Ctx::new(Some(token.into()), Source::Remote("127.0.0.1".into()));
        dispatch(&self.env.api, &ctx, req).await
    }

    /// `config_get`, `edit`, then `config_set` with the version read (as the configuration
    /// screen does); the reply of `config_set`.
    async fn reconfigure(&self, token: &str, edit: impl FnOnce(&mut Value)) -> Value {
        let got = self.call(token, json!({"op": "config_get"})).await.unwrap();
        let mut cfg = got["config"].clone();
        edit(&mut cfg);
        self.call(
            token,
            json!({"op": "config_set", "config": cfg, "version": got["version"], "password": crate::support::PASSWORD}),
        )
        .await
        .unwrap()
    }

    /// The raw points of one tag over the last hour.
    async fn raw(&self, token: &str, tag: &str) -> Vec<Value> {
        let r = self
            .call(
                token,
                json!({"op": "history", "tags": [tag], "from": "-1h", "to": "now"}),
            )
            .await
            .unwrap();
        assert_eq!(r["series"][0]["tag"], tag);
        assert_eq!(r["series"][0]["kind"], "raw", "{r}");
        r["series"][0]["points"].as_array().unwrap().clone()
    }

    async fn stop(mut self) {
        self.engine.shutdown().await;
        self.hist.shutdown().await;
        if let Some(s) = self.sim.take() {
            s.stop().await;
        }
    }
}

fn values(points: &[Value]) -> Vec<Value> {
    points.iter().map(|p| p[1].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_come_back_in_order_with_quality_and_a_disconnect_is_a_gap() {
    let r = rig(
        json!({}),
        json!({"alpha/SP_Power_Limit_kW": {"unit": "kW"}}),
    )
    .await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    for v in [11.5f32, 12.5, 13.5] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let pts = r.raw(&token, &format!("alpha/{TAG}")).await;
    let vals = values(&pts);
    let i = vals
        .iter()
        .position(|v| *v == json!(11.5))
        .expect("11.5 stored");
    assert_eq!(vals[i..i + 3], [json!(11.5), json!(12.5), json!(13.5)]);
    assert!(
        pts.windows(2).all(|w| w[0][0].as_i64() <= w[1][0].as_i64()),
        "time order"
    );
    assert!(pts[i..].iter().all(|p| p[2] == "good"));

    // The PLC goes away: the last point is the same value marked bad (a gap), after the others.
    let last_good = pts.last().unwrap()[0].as_i64().unwrap();
    let sim = {
        let mut r = r;
        let s = r.sim.take().unwrap();
        s.stop().await;
        r
    };
    wait_until(WAIT, "alpha leaves CONNECTED", || {
        sim.env.cache.status("alpha") != Some(PlcStatus::Connected)
    })
    .await;
    let token2 = token.clone();
    let ok = eventually(WAIT, || async {
        sim.flush().await;
        let pts = sim.raw(&token2, &format!("alpha/{TAG}")).await;
        pts.last().is_some_and(|p| p[2] == "bad")
    })
    .await;
    assert!(ok, "a bad-quality point marks the disconnect");
    let pts = sim.raw(&token, &format!("alpha/{TAG}")).await;
    let gap = pts.last().unwrap();
    assert!(gap[0].as_i64().unwrap() >= last_good);
    assert_eq!(gap[1], json!(13.5), "the last value, marked bad");

    // The PNG of that range breaks the line at the gap and still decodes.
    let tags = sim
        .call(&token, json!({"op": "history_tags"}))
        .await
        .unwrap();
    let listed = tags["tags"].as_array().unwrap();
    let t = listed
        .iter()
        .find(|t| t["tag"] == format!("alpha/{TAG}"))
        .expect("listed");
    assert_eq!(t["type"], "number");
    assert_eq!(t["unit"], "kW");
    assert!(t["first"].as_i64() <= t["last"].as_i64());
    assert!(listed
        .iter()
        .all(|t| t["tag"].as_str().unwrap().starts_with("alpha/")));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadband_and_min_interval_are_honoured() {
    let r = rig(
        json!({}),
        json!({
            "alpha/SP_Power_Limit_kW": {"history": {"deadband": 5.0}},
            "alpha/Meteo/Ambient_Temp_C": {"history": {"min_interval_seconds": 1.0}},
        }),
    )
    .await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    for v in [100.0f32, 102.0, 104.0, 106.0, 107.0, 120.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let vals = values(&r.raw(&token, &format!("alpha/{TAG}")).await);
    let from = vals
        .iter()
        .position(|v| *v == json!(100.0))
        .expect("first stored");
    assert_eq!(
        vals[from..],
        [json!(100.0), json!(106.0), json!(120.0)],
        "changes under 5.0 from the last stored value are not stored"
    );

    // Ambient temperature changes every 100 ms in the simulator; stored at most once a second.
    let tag = "alpha/Meteo/Ambient_Temp_C";
    let enough = eventually(WAIT, || async {
        r.flush().await;
        r.raw(&token, tag).await.len() >= 4
    })
    .await;
    assert!(enough, "ambient temperature recorded");
    let pts = r.raw(&token, tag).await;
    for w in pts.windows(2) {
        let dt = w[1][0].as_i64().unwrap() - w[0][0].as_i64().unwrap();
        assert!(dt >= 1000, "samples {dt} ms apart: {w:?}");
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimation_keeps_a_one_sample_spike_and_retention_deletes_old_data() {
    let r = rig(json!({"retention_days": 30}), json!({})).await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    for v in [1.0f32, 2.0, 3.0, 4.0, 9999.0, 5.0, 6.0, 7.0, 8.0, 9.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let tag = format!("alpha/{TAG}");
    let reply = r
        .call(
            &token,
            json!({"op": "history", "tags": [tag], "from": "-1h", "to": "now", "max_points": 3}),
        )
        .await
        .unwrap();
    let s = &reply["series"][0];
    assert_eq!(s["kind"], "buckets", "{reply}");
    let b = s["points"].as_array().unwrap();
    assert!(b.len() <= 3);
    let max = b
        .iter()
        .filter_map(|p| p[2].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(max, 9999.0, "the spike survives as a bucket maximum: {b:?}");
    for p in b {
        let (lo, hi) = (p[1].as_f64().unwrap(), p[2].as_f64().unwrap());
        assert!(lo <= p[3].as_f64().unwrap() && p[4].as_f64().unwrap() <= hi);
    }

    // 31 days later everything recorded now is past the retention.
    let h = r.hist.clone();
    let deleted = tokio::task::spawn_blocking(move || {
        h.retention_blocking(chrono::Utc::now() + chrono::Duration::days(31))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(deleted > 0);
    let left = r.call(&token, json!({"op": "history_tags"})).await.unwrap();
    assert!(
        left["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["last"].as_i64().unwrap() > chrono::Utc::now().timestamp_millis() - 60_000),
        "only blocks opened after the retention run remain: {left}"
    );
    let pts = r
        .call(
            &token,
            json!({"op": "history", "tags": [tag], "from": "-1h", "to": "now"}),
        )
        .await
        .unwrap();
    assert!(
        !values(pts["series"][0]["points"].as_array().unwrap()).contains(&json!(9999.0)),
        "the spike was deleted"
    );
    r.stop().await;
}

fn code(e: Result<Value, stator::api::ApiError>) -> String {
    e.err()
        .map(|e| e.code.as_str().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parks_filter_every_op_and_route_and_bad_input_has_clear_codes() {
    let r = rig(json!({"retention_days": 7}), json!({})).await;
    r.set_f32(0, TAG, 31.0).await;
    r.set_f32(1, TAG, 32.0).await;
    r.flush().await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    let mine = format!("alpha/{TAG}");
    let theirs = format!("beta/{TAG}");
    let q = |tags: &str, more: Value| {
        let mut v = json!({"op": "history", "tags": [tags], "from": "-1h", "to": "now"});
        if let (Value::Object(a), Value::Object(b)) = (&mut v, more) {
            a.extend(b);
        }
        v
    };
    assert_eq!(
        code(r.call(&token, q(&theirs, json!({}))).await),
        "forbidden"
    );
    assert_eq!(
        code(
            r.call(&token, json!({"op": "history", "tags": [mine, theirs]}))
                .await
        ),
        "forbidden"
    );
    assert_eq!(
        code(
            r.call(&token, json!({"op": "history_tags", "park": "beta"}))
                .await
        ),
        "forbidden"
    );
    let listed = r.call(&token, json!({"op": "history_tags"})).await.unwrap();
    assert!(!listed["tags"].as_array().unwrap().is_empty());
    assert!(listed["tags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["tag"].as_str().unwrap().starts_with("alpha/")));
    assert_eq!(
        code(r.call(&token, q("alpha/No_Such_Tag", json!({}))).await),
        "not_found"
    );
    assert_eq!(
        code(r.call(&token, q("gamma/X", json!({}))).await),
        "not_found"
    );
    assert_eq!(
        code(
            r.call(&token, q(&mine, json!({"from": "now", "to": "-1h"})))
                .await
        ),
        "invalid"
    );
    assert_eq!(
        code(r.call(&token, q(&mine, json!({"from": "-30d"}))).await),
        "invalid"
    );
    assert_eq!(
        code(r.call(&token, q(&mine, json!({"max_points": 0}))).await),
        "invalid"
    );
    assert_eq!(
        code(r.call(&token, q(&mine, json!({"max_points": 10001}))).await),
        "invalid"
    );
    assert_eq!(
        code(r.call(&token, q(&mine, json!({"from": "yesterday"}))).await),
        "invalid"
    );
    assert!(r
        .call(&token, q(&mine, json!({"max_points": 10000})))
        .await
        .is_ok());

    // Every HTTP route: the foreign park is 403, the own one answers in its format.
    let enc = |s: &str| s.replace('/', "%2F");
    for route in [
        "/api/history",
        "/api/history.csv",
        "/api/trend.svg",
        "/api/trend.png",
    ] {
        let (st, _, _) = http_as(
            &r.env,
            "GET",
            &format!("{route}?tags={}&from=-1h&to=now", enc(&theirs)),
            &token,
            None,
        )
        .await;
        assert_eq!(st, 403, "{route}");
        let (st, _, _) = http_as(
            &r.env,
            "GET",
            &format!("{route}?tags={}&from=-1h&to=now", enc(&mine)),
            "nope",
            None,
        )
        .await;
        assert_eq!(st, 401, "{route}");
        let (st, h, body) = http_as(
            &r.env,
            "GET",
            &format!("{route}?tags={}&from=-1h&to=now", enc(&mine)),
            &token,
            None,
        )
        .await;
        assert_eq!(st, 200, "{route}: {body}");
        let ty = crate::support::header(&h, "content-type")
            .unwrap_or_default()
            .to_string();
        match route {
            "/api/history" => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert!(values(v["series"][0]["points"].as_array().unwrap()).contains(&json!(31.0)));
            }
            "/api/history.csv" => {
                assert!(ty.starts_with("text/csv"));
                let mut lines = body.split("\r\n");
                assert_eq!(lines.next(), Some(format!("time,{mine}").as_str()));
                assert!(
                    body.lines()
                        .any(|l| l.ends_with(",31.0") && l.contains('T') && l.contains("Z,")),
                    "{body}"
                );
            }
            "/api/trend.svg" => {
                assert_eq!(ty, "image/svg+xml");
                assert!(
                    body.contains("<svg") && body.contains(&mine),
                    "legend names the tag"
                );
            }
            _ => assert_eq!(ty, "image/png"),
        }
    }
    let (st, _, body) = http_as(
        &r.env,
        "GET",
        &format!("/api/history?tags={}&max_points=0", enc(&mine)),
        &token,
        None,
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("\"error\":\"invalid\""));
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trend_png_decodes_with_the_right_size_and_drawn_pixels() {
    let r = rig(
        json!({}),
        json!({"alpha/SP_Power_Limit_kW": {"unit": "kW"}}),
    )
    .await;
    for v in [10.0f32, 50.0, 20.0, 70.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    let path = format!(
        "/api/trend.png?tags=alpha%2F{TAG},alpha%2FMeteo%2FAmbient_Temp_C&from=-5m&to=now&width=640&height=300"
    );
    let bytes = raw_get(r.env.addr, &path, &token).await;
    let dec = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = dec.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (640, 300));
    // The first pen's colour appears inside the plot area (right of the axis labels).
    let px = |x: usize, y: usize| {
        let i = (y * info.width as usize + x) * 3;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    let mut pen = 0;
    for y in 10..280 {
        for x in 80..630 {
            if px(x, y) == (31, 90, 160) {
                pen += 1;
            }
        }
    }
    assert!(pen > 50, "{pen} pen pixels");
    r.stop().await;
}

/// GET with a bearer token; the body bytes (binary-safe).
async fn raw_get(addr: std::net::SocketAddr, path: &str, token: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = crate::support::request(
        addr,
        "GET",
        path,
        &[("Authorization", &crate::support::bearer(token))],
        None,
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("chunked"), "content-length body expected");
    buf[at..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exports_csv_and_draws_a_trend_from_the_same_file() {
    let r = rig(json!({}), json!({})).await;
    for v in [41.0f32, 42.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let dir = r.env._dir.path().to_path_buf();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_stator"))
            .arg("--config")
            .arg(dir.join("config.json"))
            .args(args)
            .output()
            .unwrap()
    };
    let csv = dir.join("out.csv");
    let tag = format!("alpha/{TAG}");
    let out = run(&[
        "history",
        "export",
        "--tags",
        &tag,
        "--from",
        "-1h",
        "--to",
        "now",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with(&format!("time,{tag}\r\n")), "{text}");
    assert!(
        text.contains(",41.0\r\n") && text.contains(",42.0\r\n"),
        "{text}"
    );
    let png = dir.join("trend.png");
    let out = run(&[
        "trend",
        "--tags",
        &tag,
        "--from",
        "-10m",
        "--to",
        "now",
        "--out",
        png.to_str().unwrap(),
        "--width",
        "800",
        "--height",
        "300",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(&png).unwrap()));
    let info = dec.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (800, 300));
    // Bad input is a usage error (exit 2) with one line.
    let out = run(&[
        "history", "export", "--tags", &tag, "--from", "now", "--to", "-1h",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("from is after to"));
    let out = run(&["history", "export", "--tags", "alpha/Nope", "--from", "-1h"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    r.stop().await;
}

#[test]
fn bad_history_config_names_file_and_path() {
    let base = || ConfigBuilder::new().plc("alpha", "opc.tcp://127.0.0.1:4840", "Alpha");
    let cases = [
        (
            json!({"history": {"retention_days": 0}}),
            "$.history.retention_days",
        ),
        (
            json!({"history": {"flush_seconds": -1}}),
            "$.history.flush_seconds",
        ),
        (json!({"history": {"nope": 1}}), "$.history"),
        (
            json!({"tags": {"alpha/P": {"history": {"deadband": -1}}}}),
            "$.tags[\"alpha/P\"].history.deadband",
        ),
        (
            json!({"tags": {"alpha/P": {"history": "yes"}}}),
            "$.tags.alpha/P.history",
        ),
    ];
    for (extra, path) in cases {
        let text = base().merge(extra.clone()).text();
        let e = Config::parse(std::path::Path::new("cfg.json"), &text).expect_err("refused");
        let line = e.to_string();
        assert!(line.starts_with("cfg.json: "), "{line}");
        assert!(line.contains(path), "{extra}: {line}");
        assert!(!line.contains('\n'));
    }
    let ok = base()
        .merge(json!({"history": {"enabled": true, "database": "h.db", "retention_days": 90, "max_disk_mb": 2048, "min_interval_seconds": 1, "flush_seconds": 1},
                      "tags": {"alpha/P": {"history": {"deadband": 0.5, "min_interval_seconds": 0.1}}, "alpha/Q": {"history": false}, "alpha/S": {"history": true}}}))
        .build();
    assert_eq!(ok.history.retention_days, 90.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_settings_change_live_through_config_set() {
    let r = rig(
        json!({}),
        json!({"alpha/SP_Power_Limit_kW": {"history": {"deadband": 5.0}}}),
    )
    .await;
    r.env
        .api
        .set_config_file(r.env._dir.path().join("config.json"));
    let sue = r.env.login("sue", Role::Superuser, &[]).await;
    let tag = format!("alpha/{TAG}");
    for v in [100.0f32, 102.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let vals = values(&r.raw(&sue, &tag).await);
    assert_eq!(
        vals.last(),
        Some(&json!(100.0)),
        "2.0 is inside the deadband"
    );

    // Without the deadband every change is stored, at once (no restart).
    let set = r
        .reconfigure(&sue, |cfg| {
            cfg["tags"]["alpha/SP_Power_Limit_kW"] = json!({"history": true});
            cfg["history"]["retention_days"] = json!(30);
        })
        .await;
    assert_eq!(set["restart_required"], json!([]), "{set}");
    for v in [103.0f32, 104.0, 105.0] {
        r.set_f32(0, TAG, v).await;
    }
    let stored = eventually(WAIT, || async {
        r.flush().await;
        values(&r.raw(&sue, &tag).await).last() == Some(&json!(105.0))
    })
    .await;
    assert!(stored, "105 stored");
    let vals = values(&r.raw(&sue, &tag).await);
    let from = vals
        .iter()
        .position(|v| *v == json!(103.0))
        .expect("103 stored");
    assert_eq!(vals[from..], [json!(103.0), json!(104.0), json!(105.0)]);

    // A tag switched off is no longer recorded; switching the historian off needs a restart.
    let set = r
        .reconfigure(&sue, |cfg| {
            cfg["tags"]["alpha/SP_Power_Limit_kW"] = json!({"history": false});
            cfg["history"]["enabled"] = json!(false);
        })
        .await;
    assert_eq!(set["restart_required"], json!(["history.enabled"]), "{set}");
    r.set_f32(0, TAG, 150.0).await;
    // Beta's tag is still recorded: once its later value is stored, alpha's was looked at.
    r.set_f32(1, TAG, 777.0).await;
    let later = eventually(WAIT, || async {
        r.flush().await;
        values(&r.raw(&sue, &format!("beta/{TAG}")).await).last() == Some(&json!(777.0))
    })
    .await;
    assert!(later, "beta's value stored");
    let vals = values(&r.raw(&sue, &tag).await);
    assert_eq!(vals.last(), Some(&json!(105.0)), "{vals:?}");
    r.stop().await;
}

/// A limit alarm definition on `<tag>`.
fn limit_alarm(id: &str, tag: &str, condition: &str, limit: f64, priority: &str) -> Value {
    json!({"id": id, "tag": tag, "condition": condition, "limit": limit,
           "priority": priority, "message": id})
}

/// The `alarm_limits` of a series or tag entry as `(alarm, condition, limit, priority)`.
fn limits_of(v: &Value) -> Vec<(String, String, f64, String)> {
    v["alarm_limits"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    (
                        l["alarm"].as_str().unwrap().to_string(),
                        l["condition"].as_str().unwrap().to_string(),
                        l["limit"].as_f64().unwrap(),
                        l["priority"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_reach_the_client_for_visible_parks_only_and_follow_config_set() {
    let mine = format!("alpha/{TAG}");
    let theirs = format!("beta/{TAG}");
    let r = rig_with(
        json!({}),
        json!({ &mine: {"unit": "kW", "range": [0.0, 200.0]}, &theirs: {"range": [0.0, 300.0]} }),
        json!([
            limit_alarm("a_low", &mine, "low", 5.0, "low"),
            limit_alarm("a_hh", &mine, "high_high", 150.0, "urgent"),
            {"id": "a_eq", "tag": mine, "condition": "equals", "value": 42.0,
             "priority": "high", "message": "eq"},
            limit_alarm("b_secret_high", &theirs, "high", 120.0, "high"),
        ]),
    )
    .await;
    r.env
        .api
        .set_config_file(r.env._dir.path().join("config.json"));
    r.set_f32(0, TAG, 31.0).await;
    r.set_f32(1, TAG, 32.0).await;
    r.flush().await;
    let op = r.env.login("op", Role::Operator, &["alpha"]).await;
    let q = |tag: &str| json!({"op": "history", "tags": [tag], "from": "-1h", "to": "now"});
    let expected = vec![
        ("a_hh".into(), "high_high".into(), 150.0, "urgent".into()),
        ("a_low".into(), "low".into(), 5.0, "low".into()),
    ];

    // The visible park: limit alarms highest first (not the `equals` one), and the range.
    let got = r.call(&op, q(&mine)).await.unwrap();
    assert_eq!(limits_of(&got["series"][0]), expected, "{got}");
    assert_eq!(got["series"][0]["range"], json!([0.0, 200.0]));
    let listed = r.call(&op, json!({"op": "history_tags"})).await.unwrap();
    let entry = listed["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tag"] == json!(mine))
        .expect("alpha's tag listed")
        .clone();
    assert_eq!(limits_of(&entry), expected, "{entry}");
    assert_eq!(entry["range"], json!([0.0, 200.0]));

    // The hidden park: refused, and its alarm never appears in what the operator gets.
    assert_eq!(code(r.call(&op, q(&theirs)).await), "forbidden");
    assert!(!listed.to_string().contains("b_secret_high"), "{listed}");
    let (st, _, body) = http_as(
        &r.env,
        "GET",
        &format!("/api/history?tags={}", theirs.replace('/', "%2F")),
        &op,
        None,
    )
    .await;
    assert_eq!(st, 403);
    assert!(!body.contains("b_secret_high"), "{body}");
    // … which a superuser (every park) does get.
    let sue = r.env.login("sue", Role::Superuser, &[]).await;
    let got = r.call(&sue, q(&theirs)).await.unwrap();
    assert_eq!(
        limits_of(&got["series"][0]),
        vec![("b_secret_high".into(), "high".into(), 120.0, "high".into())]
    );

    // The server-drawn SVG labels the alarm limit lines.
    let (st, _, svg) = http_as(
        &r.env,
        "GET",
        &format!(
            "/api/trend.svg?tags={}&from=-5m&to=now",
            mine.replace('/', "%2F")
        ),
        &op,
        None,
    )
    .await;
    assert_eq!(st, 200, "{svg}");
    let texts: Vec<&str> = svg
        .split("<text")
        .skip(1)
        .filter_map(|t| t.split_once('>')?.1.split("</text>").next())
        .map(str::trim)
        .collect();
    assert!(
        texts.contains(&"HH 150") && texts.contains(&"L 5") && texts.contains(&"U"),
        "{texts:?}"
    );

    // A limit moved by config_set reaches the next query (no restart).
    let set = r
        .reconfigure(&sue, |cfg| {
            cfg["alarms"][1]["limit"] = json!(160.0);
        })
        .await;
    assert_eq!(set["restart_required"], json!([]), "{set}");
    let got = r.call(&op, q(&mine)).await.unwrap();
    assert_eq!(
        limits_of(&got["series"][0])[0],
        ("a_hh".into(), "high_high".into(), 160.0, "urgent".into())
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trend_png_draws_alarm_limit_lines_at_their_value_with_the_priority_colour() {
    let tag = format!("alpha/{TAG}");
    let r = rig_with(
        json!({}),
        json!({}),
        json!([
            limit_alarm("a_hh", &tag, "high_high", 90.0, "urgent"),
            limit_alarm("a_l", &tag, "low", 5.0, "low"),
        ]),
    )
    .await;
    for v in [10.0f32, 50.0, 20.0, 70.0] {
        r.set_f32(0, TAG, v).await;
    }
    r.flush().await;
    let token = r.env.login("op", Role::Operator, &["alpha"]).await;
    // The drawn value range: the data (as the same query returns it) and the limits, padded 5 %.
    let data: Vec<f64> = values(&r.raw(&token, &tag).await)
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let lo = data.iter().copied().fold(5.0, f64::min);
    let hi = data.iter().copied().fold(90.0, f64::max);
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let (w, h) = (640usize, 300usize);
    let path = format!("/api/trend.png?tags=alpha%2F{TAG}&from=-1h&to=now&width={w}&height={h}");
    let bytes = raw_get(r.env.addr, &path, &token).await;
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    reader.next_frame(&mut buf).unwrap();
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    // The plot area: 8 px margin, 28 px of time labels below (chart.rs).
    let (top, bottom) = (8.0, (h - 8 - 28) as f64);
    let row = |v: f64| (top + (hi - v) / (hi - lo) * (bottom - top)).round() as usize;
    // The pen's colour across most of the plot's width, within 2 px of the limit's row.
    let line_at = |v: f64| {
        let y0 = row(v);
        (y0 - 2..=y0 + 2).any(|y| (80..w - 10).filter(|&x| px(x, y) == (31, 90, 160)).count() > 400)
    };
    // The priority marker's colour near the right end of that row.
    let mark_at = |v: f64, c: (u8, u8, u8)| {
        let y0 = row(v);
        (y0 - 3..=y0 + 3).any(|y| (w - 60..w).any(|x| px(x, y) == c))
    };
    assert!(line_at(90.0), "the high-high line at row {}", row(90.0));
    assert!(line_at(5.0), "the low line at row {}", row(5.0));
    assert!(mark_at(90.0, (192, 57, 43)), "urgent red marker");
    assert!(mark_at(5.0, (33, 102, 168)), "low blue marker");
    assert!(!line_at(30.0), "no line where no limit is");
    r.stop().await;
}
