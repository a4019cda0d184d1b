//! The built-in simulator, tested over real OPC UA/TCP with the async-opcua client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opcua::client::{ClientBuilder, DataChangeCallback, IdentityToken, Session};
use opcua::crypto::SecurityPolicy;
use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResultMask, DataTypeId, DataValue,
    MessageSecurityMode, MonitoredItemCreateRequest, NodeId, NumericRange, ReadValueId,
    ReferenceTypeId, StatusCode, TimestampsToReturn, VariableId, Variant, WriteValue,
};
use stator::sim::{self, SimHandle, SimOptions, SimType, NAMESPACE_URI, NS};
use tokio::task::JoinHandle;

use crate::support::eventually;

/// Bound for every wait in this file.
const WAIT: Duration = Duration::from_secs(10);

struct Conn {
    session: Arc<Session>,
    event_loop: JoinHandle<StatusCode>,
    _pki: tempfile::TempDir,
}

impl Conn {
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.session.disconnect()).await;
        self.event_loop.abort();
    }
}

/// Connects with the given security and identity; Err(status) when the session never comes up.
async fn connect_with(
    url: &str,
    policy: SecurityPolicy,
    mode: MessageSecurityMode,
    identity: IdentityToken,
) -> Result<Conn, String> {
    let pki = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut client = ClientBuilder::new()
        .application_name("stator sim test")
        .application_uri("urn:stator:sim-test")
        .pki_dir(pki.path())
        .create_sample_keypair(policy != SecurityPolicy::None)
        .trust_server_certs(true)
        .session_retry_limit(0)
        .max_array_length(1_000_000)
        .max_message_size(64 * 1024 * 1024)
        .max_chunk_count(4096)
        .request_timeout(Duration::from_secs(5))
        .client()
        .map_err(|e| e.join("; "))?;
    let (session, event_loop) = tokio::time::timeout(
        WAIT,
        client.connect_to_matching_endpoint((url, policy.to_str(), mode), identity),
    )
    .await
    .map_err(|_| "timeout getting endpoints".to_string())?
    .map_err(|e| e.to_string())?;
    let mut event_loop = event_loop.spawn();
    tokio::select! {
        _ = session.wait_for_connection() => Ok(Conn { session, event_loop, _pki: pki }),
        status = &mut event_loop => Err(format!("{status:?}")),
        _ = tokio::time::sleep(WAIT) => {
            event_loop.abort();
            Err("timeout connecting".into())
        }
    }
}

async fn connect(url: &str) -> Conn {
    connect_with(
        url,
        SecurityPolicy::None,
        MessageSecurityMode::None,
        IdentityToken::Anonymous,
    )
    .await
    .expect("anonymous connection")
}

async fn start(opts: SimOptions) -> SimHandle {
    tokio::time::timeout(WAIT, sim::start(opts))
        .await
        .expect("start in time")
        .expect("simulator starts")
}

fn id(n: u32) -> NodeId {
    NodeId::new(NS, n)
}

fn tag_id(h: &SimHandle, name: &str) -> NodeId {
    h.tags()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tag {name}"))
        .node_id()
}

/// Browses forward hierarchical references of `node`, following continuation points.
async fn browse(s: &Session, node: &NodeId) -> Vec<(String, NodeId)> {
    let desc = BrowseDescription {
        node_id: node.clone(),
        browse_direction: BrowseDirection::Forward,
        reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
        include_subtypes: true,
        node_class_mask: 0,
        result_mask: BrowseResultMask::All as u32,
    };
    let mut out = Vec::new();
    let mut results = s.browse(&[desc], 0, None).await.expect("browse");
    loop {
        let r = results.remove(0);
        assert!(r.status_code.is_good(), "browse status {}", r.status_code);
        for rd in r.references.unwrap_or_default() {
            out.push((rd.browse_name.name.to_string(), rd.node_id.node_id));
        }
        match &r.continuation_point.value {
            Some(cp) if !cp.is_empty() => {
                results = s
                    .browse_next(false, std::slice::from_ref(&r.continuation_point))
                    .await
                    .expect("browse_next");
            }
            _ => break,
        }
    }
    out
}

async fn read(s: &Session, node: &NodeId, attr: AttributeId) -> DataValue {
    let rv = ReadValueId {
        node_id: node.clone(),
        attribute_id: attr as u32,
        ..Default::default()
    };
    s.read(&[rv], TimestampsToReturn::Both, 0.0)
        .await
        .expect("read")
        .remove(0)
}

async fn read_value(s: &Session, node: &NodeId) -> Variant {
    let dv = read(s, node, AttributeId::Value).await;
    assert!(dv.status().is_good(), "read {node}: {}", dv.status());
    dv.value.expect("value")
}

async fn write(
    s: &Session,
    node: &NodeId,
    range: NumericRange,
    v: impl Into<Variant>,
) -> StatusCode {
    let wv = WriteValue {
        node_id: node.clone(),
        attribute_id: AttributeId::Value as u32,
        index_range: range,
        value: DataValue::value_only(v.into()),
    };
    s.write(&[wv]).await.expect("write call").remove(0)
}

fn bools(v: &Variant) -> Vec<bool> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|b| matches!(b, Variant::Boolean(true)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_four_and_root_browse() {
    let h = start(SimOptions::ephemeral()).await;
    let url = &h.endpoints()[0];
    assert!(url.starts_with("opc.tcp://127.0.0.1:"), "{url}");
    let c = connect(url).await;

    let ns = read_value(&c.session, &VariableId::Server_NamespaceArray.into()).await;
    let ns: Vec<String> = ns
        .as_array()
        .expect("namespace array")
        .iter()
        .map(|v| match v {
            Variant::String(s) => s.to_string(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(ns.get(4).map(String::as_str), Some(NAMESPACE_URI), "{ns:?}");

    // The root hangs below Objects.
    let objects = browse(&c.session, &opcua::types::ObjectId::ObjectsFolder.into()).await;
    assert!(
        objects
            .iter()
            .any(|(n, i)| n == "Stator_PLC" && *i == id(2)),
        "{objects:?}"
    );

    let root = browse(&c.session, &id(2)).await;
    let names: Vec<&str> = root.iter().map(|(n, _)| n.as_str()).collect();
    for t in h.tags() {
        let top = t.name.split('/').next().unwrap_or_default().to_string();
        assert!(names.contains(&top.as_str()), "{top} missing in {names:?}");
    }
    assert!(!names.contains(&"Load"), "no Load folder without --tags");
    let meteo = root
        .iter()
        .find(|(n, _)| n == "Meteo")
        .expect("Meteo")
        .1
        .clone();
    let mut meteo_names: Vec<String> = browse(&c.session, &meteo)
        .await
        .into_iter()
        .map(|x| x.0)
        .collect();
    meteo_names.sort();
    assert_eq!(
        meteo_names,
        [
            "Ambient_Temp_C",
            "Irradiance_W_m2",
            "Module_Temp_C",
            "Wind_Speed_m_s"
        ]
    );
    let cutoff = browse(&c.session, &tag_id(&h, "CMD_Instant_Cutoff")).await;
    // Browse order is not declaration order: sort by element index.
    let mut elems: Vec<(String, NodeId)> = cutoff;
    elems.sort_by_key(|(n, _)| n.trim_matches(['[', ']']).parse::<usize>().unwrap_or(99));
    let names: Vec<&str> = elems.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names,
        ["[0]", "[1]", "[2]", "[3]", "[4]", "[5]", "[6]", "[7]"]
    );
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tag_has_its_type_and_access_level() {
    let h = start(SimOptions::ephemeral()).await;
    let c = connect(&h.endpoints()[0]).await;
    let types = [
        (SimType::Boolean, DataTypeId::Boolean),
        (SimType::Byte, DataTypeId::Byte),
        (SimType::Int16, DataTypeId::Int16),
        (SimType::UInt16, DataTypeId::UInt16),
        (SimType::Int32, DataTypeId::Int32),
        (SimType::UInt32, DataTypeId::UInt32),
        (SimType::Int64, DataTypeId::Int64),
        (SimType::UInt64, DataTypeId::UInt64),
        (SimType::Float, DataTypeId::Float),
        (SimType::Double, DataTypeId::Double),
        (SimType::String, DataTypeId::String),
        (SimType::DateTime, DataTypeId::DateTime),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for t in h.tags() {
        let node = t.node_id();
        let data_type = read(&c.session, &node, AttributeId::DataType).await.value;
        let expected: NodeId = types.iter().find(|x| x.0 == t.sim_type).unwrap().1.into();
        assert_eq!(
            data_type,
            Some(Variant::NodeId(Box::new(expected))),
            "{}",
            t.name
        );
        let value = read_value(&c.session, &node).await;
        assert_eq!(
            value.scalar_type_id(),
            t.sim_type.zero().scalar_type_id(),
            "{} holds {value:?}",
            t.name
        );
        assert_eq!(value.is_array(), t.array_len.is_some(), "{}", t.name);
        let want: u8 = if t.writable { 3 } else { 1 };
        for attr in [AttributeId::AccessLevel, AttributeId::UserAccessLevel] {
            let al = read(&c.session, &node, attr).await.value;
            assert_eq!(al, Some(Variant::Byte(want)), "{} {attr:?}", t.name);
        }
        let rank = read(&c.session, &node, AttributeId::ValueRank).await.value;
        let want_rank = if t.array_len.is_some() { 1 } else { -1 };
        assert_eq!(rank, Some(Variant::Int32(want_rank)), "{}", t.name);
        seen.insert(t.sim_type.name());
    }
    // Every common S7 type is present.
    for n in [
        "Boolean", "Int16", "Int32", "UInt16", "Float", "Double", "String",
    ] {
        assert!(seen.contains(n), "{n}");
    }
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setpoints_write_and_read_back_with_s7_type_rules() {
    let h = start(SimOptions::ephemeral()).await;
    let c = connect(&h.endpoints()[0]).await;
    let s = &c.session;
    let cases: Vec<(&str, Variant)> = vec![
        ("SP_Power_Limit_kW", Variant::Float(123.5)),
        ("SP_Power_Factor", Variant::Double(0.95)),
        ("SP_Mode", Variant::Int16(-2)),
        ("SP_Enable", Variant::Boolean(false)),
        (
            "SP_Note",
            Variant::String("grid operator call 14:02".into()),
        ),
        ("SP_Ramp_Rate_kW_s", Variant::Int32(70_000)),
        ("SP_Alarm_Mask", Variant::UInt16(0xBEEF)),
        ("SP_Priority", Variant::Byte(7)),
        (
            "SP_Energy_Offset_Wh",
            Variant::Int64(-9_007_199_254_740_993),
        ),
    ];
    for (name, v) in &cases {
        let node = tag_id(&h, name);
        assert_eq!(
            write(s, &node, NumericRange::None, v.clone()).await,
            StatusCode::Good,
            "{name}"
        );
        assert_eq!(&read_value(s, &node).await, v, "{name} over OPC UA");
        assert_eq!(
            h.value(0, name).as_ref(),
            Some(v),
            "{name} in the simulator"
        );
    }
    // Like an S7: exact types, read-only refused, String[254].
    let mode = tag_id(&h, "SP_Mode");
    assert_eq!(
        write(s, &mode, NumericRange::None, 5i32).await,
        StatusCode::BadTypeMismatch
    );
    assert_eq!(h.value(0, "SP_Mode"), Some(Variant::Int16(-2)));
    let power = tag_id(&h, "Active_Power_kW");
    assert_eq!(
        write(s, &power, NumericRange::None, 1.0f32).await,
        StatusCode::BadUserAccessDenied
    );
    let note = tag_id(&h, "SP_Note");
    assert_eq!(
        write(s, &note, NumericRange::None, "x".repeat(255)).await,
        StatusCode::BadOutOfRange
    );
    assert_eq!(
        write(s, &note, NumericRange::None, "y".repeat(254)).await,
        StatusCode::Good
    );
    assert_eq!(
        write(
            s,
            &tag_id(&h, "SP_Enable"),
            NumericRange::None,
            vec![true, false]
        )
        .await,
        StatusCode::BadTypeMismatch
    );
    // The process reacts: disabled → power 0 and STOPPED.
    assert!(
        eventually(WAIT, || async {
            h.value(0, "Plant_State") == Some(Variant::String("STOPPED".into()))
                && h.value(0, "Active_Power_kW") == Some(Variant::Float(0.0))
        })
        .await
    );
    // set_value (the PLC program's side) is visible to clients.
    h.set_value(0, "SP_Mode", Variant::Int16(3))
        .expect("set_value");
    assert_eq!(read_value(s, &mode).await, Variant::Int16(3));
    assert!(h.set_value(0, "SP_Mode", Variant::Int32(3)).is_err());
    assert!(h.set_value(0, "No_Such_Tag", Variant::Int16(3)).is_err());
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_and_element_children_stay_in_sync() {
    let h = start(SimOptions::ephemeral()).await;
    let c = connect(&h.endpoints()[0]).await;
    let s = &c.session;
    let t = h
        .tags()
        .into_iter()
        .find(|t| t.name == "CMD_Instant_Cutoff")
        .expect("cutoff");
    let array = t.node_id();
    let elem = |i: usize| id(t.element_id(i));

    // Element → array.
    assert_eq!(
        write(s, &elem(3), NumericRange::None, true).await,
        StatusCode::Good
    );
    assert_eq!(
        bools(&read_value(s, &array).await),
        [false, false, false, true, false, false, false, false]
    );
    assert_eq!(
        h.value(0, "CMD_Instant_Cutoff[3]"),
        Some(Variant::Boolean(true))
    );
    // Whole array → elements.
    let all = vec![true, false, true, false, false, false, false, true];
    assert_eq!(
        write(s, &array, NumericRange::None, all.clone()).await,
        StatusCode::Good
    );
    for (i, b) in all.iter().enumerate() {
        assert_eq!(read_value(s, &elem(i)).await, Variant::Boolean(*b), "[{i}]");
    }
    // IndexRange on the array → element.
    assert_eq!(
        write(s, &array, NumericRange::Index(5), vec![true]).await,
        StatusCode::Good
    );
    assert_eq!(read_value(s, &elem(5)).await, Variant::Boolean(true));
    assert_eq!(read_value(s, &elem(0)).await, Variant::Boolean(true));
    // Wrong length and out-of-range index are refused, nothing changes.
    assert_eq!(
        write(s, &array, NumericRange::None, vec![true; 7]).await,
        StatusCode::BadTypeMismatch
    );
    assert_ne!(
        write(s, &array, NumericRange::Index(8), vec![true]).await,
        StatusCode::Good
    );
    assert_eq!(
        bools(&read_value(s, &array).await),
        [true, false, true, false, false, true, false, true]
    );
    // The trip shows in the process values.
    assert!(
        eventually(WAIT, || async {
            h.value(0, "Breaker_Closed") == Some(Variant::Boolean(false))
        })
        .await
    );
    // set_value on an element from the PLC side.
    h.set_value(0, "CMD_Instant_Cutoff[0]", Variant::Boolean(false))
        .expect("set element");
    assert_eq!(
        bools(&read_value(s, &array).await),
        [false, false, true, false, false, true, false, true]
    );
    // Read-only array elements (Inverter_Power_kW) mirror the process.
    let inv = h
        .tags()
        .into_iter()
        .find(|t| t.name == "Inverter_Power_kW")
        .expect("inverters");
    assert_eq!(
        write(s, &id(inv.element_id(0)), NumericRange::None, 1.0f32).await,
        StatusCode::BadUserAccessDenied
    );
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_without_element_children() {
    let h = start(SimOptions {
        array_elements: false,
        ..SimOptions::ephemeral()
    })
    .await;
    let c = connect(&h.endpoints()[0]).await;
    let s = &c.session;
    let array = tag_id(&h, "CMD_Instant_Cutoff");
    assert!(browse(s, &array).await.is_empty(), "no element children");
    assert_eq!(
        write(s, &array, NumericRange::Index(2), vec![true]).await,
        StatusCode::Good
    );
    assert_eq!(
        bools(&read_value(s, &array).await),
        [false, false, true, false, false, false, false, false]
    );
    assert_eq!(
        h.value(0, "CMD_Instant_Cutoff[2]"),
        Some(Variant::Boolean(true))
    );
    h.set_value(0, "CMD_Instant_Cutoff[6]", Variant::Boolean(true))
        .expect("set element");
    assert_eq!(
        bools(&read_value(s, &array).await),
        [false, false, true, false, false, false, true, false]
    );
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_change_and_subscriptions_deliver() {
    let h = start(SimOptions {
        tags: 3,
        period_ms: 50,
        ..SimOptions::ephemeral()
    })
    .await;
    let c = connect(&h.endpoints()[0]).await;
    let s = &c.session;
    let root = browse(s, &id(2)).await;
    let load = root
        .iter()
        .find(|(n, _)| n == "Load")
        .expect("Load folder")
        .1
        .clone();
    let mut load_names: Vec<String> = browse(s, &load).await.into_iter().map(|x| x.0).collect();
    load_names.sort();
    assert_eq!(load_names, ["T00000", "T00001", "T00002"]);

    // Polling: the heartbeat moves.
    let hb = tag_id(&h, "Heartbeat_ms");
    let first = read_value(s, &hb).await;
    assert!(eventually(WAIT, || async { read_value(s, &hb).await != first }).await);

    // Subscription: the load tag and the heartbeat deliver several changes.
    let got: Arc<Mutex<Vec<(NodeId, Variant)>>> = Arc::default();
    let sink = got.clone();
    let sub = s
        .create_subscription(
            Duration::from_millis(50),
            30,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |dv, item| {
                if let Some(v) = dv.value {
                    sink.lock()
                        .expect("lock")
                        .push((item.item_to_monitor().node_id.clone(), v));
                }
            }),
        )
        .await
        .expect("subscription");
    let t0 = tag_id(&h, "Load/T00000");
    let items: Vec<MonitoredItemCreateRequest> = vec![t0.clone().into(), hb.clone().into()];
    let created = s
        .create_monitored_items(sub, TimestampsToReturn::Both, items)
        .await
        .expect("monitored items");
    assert!(created.iter().all(|r| r.result.status_code.is_good()));
    let enough = |node: &NodeId| {
        got.lock()
            .expect("lock")
            .iter()
            .filter(|(n, _)| n == node)
            .count()
            >= 4
    };
    assert!(
        eventually(WAIT, || async { enough(&t0) && enough(&hb) }).await,
        "{:?}",
        got.lock().map(|g| g.len())
    );
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_endpoint_needs_the_right_password() {
    let h = start(SimOptions {
        secure_user: Some(("operator".into(), "s3cret-pw".into())),
        ..SimOptions::ephemeral()
    })
    .await;
    let url = h.endpoints()[0].clone();
    assert!(h.server_certificate_der().is_some_and(|c| !c.is_empty()));
    for mode in [
        MessageSecurityMode::Sign,
        MessageSecurityMode::SignAndEncrypt,
    ] {
        let c = connect_with(
            &url,
            SecurityPolicy::Basic256Sha256,
            mode,
            IdentityToken::UserName("operator".into(), "s3cret-pw".into()),
        )
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let v = read_value(&c.session, &tag_id(&h, "Grid_Frequency_Hz")).await;
        assert!(
            matches!(v, Variant::Double(f) if (49.0..51.0).contains(&f)),
            "{v:?}"
        );
        assert_eq!(
            write(&c.session, &tag_id(&h, "SP_Mode"), NumericRange::None, 2i16).await,
            StatusCode::Good
        );
        c.close().await;
    }
    let wrong = connect_with(
        &url,
        SecurityPolicy::Basic256Sha256,
        MessageSecurityMode::SignAndEncrypt,
        IdentityToken::UserName("operator".into(), "wrong".into()),
    )
    .await;
    let err = wrong.err().expect("wrong password must fail");
    assert!(
        err.contains("BadUserAccessDenied") || err.contains("BadIdentityTokenRejected"),
        "{err}"
    );
    let anonymous_secure = connect_with(
        &url,
        SecurityPolicy::Basic256Sha256,
        MessageSecurityMode::SignAndEncrypt,
        IdentityToken::Anonymous,
    )
    .await;
    assert!(
        anonymous_secure.is_err(),
        "anonymous is only offered on None"
    );
    // The None endpoint still serves anonymous clients.
    let c = connect(&url).await;
    assert_eq!(h.value(0, "SP_Mode"), Some(Variant::Int16(2)));
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_frees_the_port_and_restart_works() {
    let h = start(SimOptions::ephemeral()).await;
    let addr = h.addrs()[0];
    let c = connect(&h.endpoints()[0]).await;
    let t = tokio::time::Instant::now();
    h.stop().await;
    assert!(t.elapsed() < Duration::from_secs(3), "stop is bounded");
    // The old session notices the server is gone.
    let gone = eventually(WAIT, || async {
        c.session
            .read(&[ReadValueId::from(id(2))], TimestampsToReturn::Both, 0.0)
            .await
            .is_err()
    })
    .await;
    assert!(gone);
    c.close().await;

    let h = start(SimOptions {
        listen: addr.to_string(),
        ..SimOptions::ephemeral()
    })
    .await;
    assert_eq!(h.addrs()[0], addr);
    let c = connect(&h.endpoints()[0]).await;
    assert!(matches!(
        read_value(&c.session, &tag_id(&h, "Inverter_Count")).await,
        Variant::Int16(4)
    ));
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_parks_on_consecutive_ports() {
    // Find a base port whose two successors are free; retry on a collision.
    let mut started = None;
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        if port > 65000 {
            continue;
        }
        match sim::start(SimOptions {
            listen: format!("127.0.0.1:{port}"),
            plcs: 3,
            ..SimOptions::ephemeral()
        })
        .await
        {
            Ok(h) => {
                started = Some((h, port));
                break;
            }
            Err(sim::SimError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let (h, port) = started.expect("three free consecutive ports");
    let eps = h.endpoints();
    assert_eq!(
        eps,
        (0..3)
            .map(|i| format!("opc.tcp://127.0.0.1:{}", port + i))
            .collect::<Vec<_>>()
    );
    // Parks are independent: a write to park 1 does not touch park 0 or 2.
    let c = connect(&eps[1]).await;
    assert_eq!(
        write(&c.session, &tag_id(&h, "SP_Mode"), NumericRange::None, 0i16).await,
        StatusCode::Good
    );
    assert_eq!(h.value(1, "SP_Mode"), Some(Variant::Int16(0)));
    assert_eq!(h.value(0, "SP_Mode"), Some(Variant::Int16(1)));
    assert_eq!(h.value(2, "SP_Mode"), Some(Variant::Int16(1)));
    c.close().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tags_subscribe_in_one_call() {
    let n = 3000;
    let h = start(SimOptions {
        tags: n,
        period_ms: 100,
        ..SimOptions::ephemeral()
    })
    .await;
    let c = connect(&h.endpoints()[0]).await;
    let s = &c.session;
    let load = browse(s, &id(2))
        .await
        .into_iter()
        .find(|(n, _)| n == "Load")
        .expect("Load")
        .1;
    let nodes = browse(s, &load).await;
    assert_eq!(nodes.len(), n);
    let got: Arc<Mutex<std::collections::HashSet<NodeId>>> = Arc::default();
    let sink = got.clone();
    let sub = s
        .create_subscription(
            Duration::from_millis(100),
            30,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(move |_, item| {
                sink.lock()
                    .expect("lock")
                    .insert(item.item_to_monitor().node_id.clone());
            }),
        )
        .await
        .expect("subscription");
    // More than async-opcua's default 1000 per call and per subscription.
    let items: Vec<MonitoredItemCreateRequest> =
        nodes.iter().map(|(_, id)| id.clone().into()).collect();
    let created = s
        .create_monitored_items(sub, TimestampsToReturn::Both, items)
        .await
        .expect("monitored items");
    assert_eq!(created.len(), n);
    assert!(created.iter().all(|r| r.result.status_code.is_good()));
    assert!(eventually(WAIT, || async { got.lock().expect("lock").len() == n }).await);
    c.close().await;
    h.stop().await;
}

#[tokio::test]
async fn bad_options_are_refused() {
    for listen in ["nonsense", "127.0.0.1", "127.0.0.1:99999", ":4840"] {
        let e = sim::start(SimOptions {
            listen: listen.into(),
            ..SimOptions::ephemeral()
        })
        .await
        .expect_err(listen);
        assert!(matches!(e, sim::SimError::BadListen(_)), "{listen}: {e}");
    }
    // A host name resolves (to IPv4 first).
    let h = sim::start(SimOptions {
        listen: "localhost:0".into(),
        ..SimOptions::ephemeral()
    })
    .await
    .expect("localhost resolves");
    assert!(
        h.endpoints()[0].starts_with("opc.tcp://127.0.0.1:"),
        "{:?}",
        h.endpoints()
    );
    h.stop().await;
    let e = sim::start(SimOptions {
        secure_user: Some(("op".into(), String::new())),
        ..SimOptions::ephemeral()
    })
    .await
    .expect_err("empty password");
    assert!(e.to_string().contains("STATOR_SIM_PASSWORD"), "{e}");
}

#[test]
fn cli_bad_listen_exits_2_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["sim", "--listen", "not-an-address"])
        .output()
        .expect("run stator");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn cli_prints_endpoints_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["sim", "--listen", "127.0.0.1:0", "--plcs", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn stator sim");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut urls = Vec::new();
    while urls.len() < 2 {
        match rx.recv_timeout(WAIT) {
            Ok(l) => urls.push(l),
            Err(_) => break,
        }
    }
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert!(
        urls.iter().all(|u| u.starts_with("opc.tcp://127.0.0.1:")),
        "{urls:?}"
    );
    // SIGTERM → clean exit 0.
    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_can_be_refused_for_polling_fallbacks() {
    let h = tokio::time::timeout(
        WAIT,
        sim::start_with(
            SimOptions::ephemeral(),
            sim::SimExtras {
                refuse_subscriptions: true,
            },
        ),
    )
    .await
    .expect("in time")
    .expect("starts");
    let c = connect(&h.endpoints()[0]).await;
    let r = c
        .session
        .create_subscription(
            Duration::from_millis(100),
            30,
            10,
            0,
            0,
            true,
            DataChangeCallback::new(|_, _| {}),
        )
        .await;
    let err = r.expect_err("subscriptions refused");
    assert!(
        format!("{err}").contains("BadTooManySubscriptions"),
        "{err}"
    );
    // Reads still work.
    assert!(matches!(
        read_value(&c.session, &tag_id(&h, "Inverter_Count")).await,
        Variant::Int16(4)
    ));
    c.close().await;
    h.stop().await;
}
