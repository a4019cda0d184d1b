//! The built-in S7-1200-like OPC UA server (`stator sim`, `serve --demo`, the desktop `--demo`,
//! and every test that needs a PLC). Not needed in production.
//!
//! Each park is one async-opcua server on its own port with our nodes in namespace 4 under
//! the root object `ns=4;i=2` (see [`tags`] for the exact list and docs/simulator.md).
//! [`start`] returns a [`SimHandle`] once every endpoint accepts TCP connections; tests read
//! back writes with [`SimHandle::value`] and stop/restart parks on the same port.

mod address_space;
mod process;
pub mod tags;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opcua::crypto::SecurityPolicy;
use opcua::server::{ServerBuilder, ServerEndpoint, ServerHandle, ServerUserToken};
use opcua::types::{MessageSecurityMode, NodeId, NumericRange, Variant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use address_space::{Links, SimNodeManager};
pub use tags::{SimType, TagInfo, NAMESPACE_URI, NS, ROOT_ID};

/// Environment variable holding the password of `--secure-user`.
pub const PASSWORD_ENV: &str = "STATOR_SIM_PASSWORD";
/// Id of the user token of `--secure-user` in the server configuration.
const SECURE_TOKEN_ID: &str = "stator_sim_user";
/// How long [`SimHandle::stop`] waits for a park to close its connections.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// The server's subscription timer (field notes: 100 ms loses updates). async-opcua publishes at
/// the first timer tick at least one publishing interval after the previous publish, measured
/// from tick to tick: with wake-up jitter about half the publishes slipped by a whole tick, so a
/// 20 ms timer published every 100 or 120 ms (mean ~110) instead of every 100. At 5 ms a publish
/// is at most 5 ms late (docs/performance.md, "Live path").
const SUBSCRIPTION_POLL_MS: u64 = 5;

/// How to run the simulator: one value per command-line option of `stator sim`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// `host:port` of the first park; park `i` listens on `port + i` (port 0: each park gets
    /// its own ephemeral port).
    pub listen: String,
    /// Number of parks (independent servers).
    pub plcs: u16,
    /// Extra changing Float tags per park under the `Load` folder.
    pub tags: usize,
    /// How often process values change.
    pub period_ms: u64,
    /// Expose element children `[0]`, `[1]`, … below array variables.
    pub array_elements: bool,
    /// `(user, password)`: also offer Basic256Sha256 Sign and SignAndEncrypt endpoints that
    /// require this user.
    pub secure_user: Option<(String, String)>,
    /// Directory for the server's own certificate and the (auto-)trusted client certificates;
    /// `None`: a temporary directory removed on stop.
    pub pki_dir: Option<PathBuf>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: "127.0.0.1:4840".into(),
            plcs: 1,
            tags: 0,
            period_ms: 500,
            array_elements: true,
            secure_user: None,
            pki_dir: None,
        }
    }
}

impl SimOptions {
    /// Options for tests and in-process use: one park on an ephemeral loopback port.
    pub fn ephemeral() -> SimOptions {
        SimOptions {
            listen: "127.0.0.1:0".into(),
            period_ms: 100,
            ..SimOptions::default()
        }
    }
}

/// `sim-pki` in the platform data dir: a persistent server certificate, so a client trusts
/// the `--secure-user` simulator once.
pub fn default_pki_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "stator").map(|d| d.data_dir().join("sim-pki"))
}

/// Why the simulator could not start or a tag could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `--listen` is not `host:port` or names no usable address.
    #[error("bad --listen {0:?}: expected host:port, e.g. 127.0.0.1:4840")]
    BadListen(String),
    /// An option is out of range or missing.
    #[error("{0}")]
    Options(String),
    /// The port is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that failed.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The PKI directory could not be created.
    #[error("cannot create the PKI directory {path}: {source}")]
    Pki {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// async-opcua refused the configuration.
    #[error("OPC UA server configuration rejected: {0}")]
    Server(String),
    /// No such park or tag.
    #[error("unknown park {park} or tag {tag:?}")]
    UnknownTag {
        /// The park index.
        park: usize,
        /// The tag name.
        tag: String,
    },
    /// The value was refused the way the PLC would refuse a client write.
    #[error("value refused: {0}")]
    Refused(opcua::types::StatusCode),
}

/// Where a tag name points in the address space.
#[derive(Debug, Clone)]
enum Target {
    Node(NodeId),
    Element(NodeId, usize),
}

/// One running park.
struct Park {
    endpoint: String,
    addr: SocketAddr,
    handle: ServerHandle,
    manager: Arc<SimNodeManager>,
    links: Arc<Links>,
    names: Arc<HashMap<String, Target>>,
    server_task: Option<JoinHandle<Result<(), String>>>,
    scan_task: Option<JoinHandle<()>>,
}

/// The running simulator: endpoints, value access for tests, and a bounded [`SimHandle::stop`].
pub struct SimHandle {
    parks: Vec<Park>,
    tags: Arc<Vec<TagInfo>>,
    pki_dir: PathBuf,
    _pki_temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("endpoints", &self.endpoints())
            .finish()
    }
}

/// One step of the `alarms` scenario on every park: `on` trips the breaker (instant cutoff 7)
/// and sets the power limit setpoint to 1200 kW; `!on` restores both (cutoff off, 1000 kW). So a
/// demo configuration with alarms on `Breaker_Closed`, `CMD_Instant_Cutoff[7]` or
/// `SP_Power_Limit_kW` shows alarms coming and going.
pub fn alarm_scenario(handle: &SimHandle, on: bool) {
    let limit = if on { 1200.0 } else { 1000.0 };
    for park in 0..handle.parks.len() {
        for (tag, v) in [
            ("CMD_Instant_Cutoff[7]", Variant::Boolean(on)),
            ("SP_Power_Limit_kW", Variant::Float(limit)),
        ] {
            if let Err(e) = handle.set_value(park, tag, v) {
                tracing::warn!(park, tag, error = %e, "alarm scenario step failed");
            }
        }
    }
}

/// Resolves `host:port` (IP literal or name) to one socket address.
async fn resolve(listen: &str) -> Result<SocketAddr, SimError> {
    if let Ok(a) = listen.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bad = || SimError::BadListen(listen.to_string());
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|_| bad())?
        .collect();
    // `localhost` may resolve to ::1 first; IPv4 is what PLC configs use.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(bad)
}

/// Rarely needed behaviours, kept out of [`SimOptions`] so its field list stays the contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimExtras {
    /// Refuse every CreateSubscription with BadTooManySubscriptions (like a PLC whose
    /// subscription budget is used up), so a client's polling fallback can be tested.
    pub refuse_subscriptions: bool,
}

/// Starts every park; returns once each endpoint accepts TCP connections.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    start_with(opts, SimExtras::default()).await
}

/// [`start`] with [`SimExtras`].
pub async fn start_with(opts: SimOptions, extras: SimExtras) -> Result<SimHandle, SimError> {
    if opts.plcs == 0 {
        return Err(SimError::Options("--plcs must be at least 1".into()));
    }
    if opts.period_ms == 0 {
        return Err(SimError::Options("--period-ms must be at least 1".into()));
    }
    if let Some((user, pass)) = &opts.secure_user {
        if user.is_empty() {
            return Err(SimError::Options("--secure-user needs a user name".into()));
        }
        if pass.is_empty() {
            return Err(SimError::Options(format!(
                "--secure-user needs a password in the environment variable {PASSWORD_ENV}"
            )));
        }
    }
    let base = resolve(&opts.listen).await?;
    if base.port() != 0 && u32::from(base.port()) + u32::from(opts.plcs) - 1 > 65535 {
        return Err(SimError::BadListen(opts.listen.clone()));
    }
    let (pki_dir, pki_temp) = match &opts.pki_dir {
        Some(p) => (p.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("stator-sim-pki-")
                .tempdir()
                .map_err(|source| SimError::Pki {
                    path: std::env::temp_dir(),
                    source,
                })?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    std::fs::create_dir_all(&pki_dir).map_err(|source| SimError::Pki {
        path: pki_dir.clone(),
        source,
    })?;

    let tags = Arc::new(tags::all_tags(opts.tags));
    let mut handle = SimHandle {
        parks: Vec::new(),
        tags: tags.clone(),
        pki_dir: pki_dir.clone(),
        _pki_temp: pki_temp,
    };
    for i in 0..opts.plcs as usize {
        let mut addr = base;
        if base.port() != 0 {
            addr.set_port(base.port() + i as u16);
        }
        match start_park(i, addr, &opts, &extras, &tags, &pki_dir).await {
            Ok(p) => handle.parks.push(p),
            Err(e) => {
                handle.stop_parks().await;
                return Err(e);
            }
        }
    }
    Ok(handle)
}

fn endpoint_host(addr: &SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        opcua::crypto::X509Data::computer_hostnames()
            .into_iter()
            .next()
            .unwrap_or_else(|| "localhost".into())
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    }
}

fn name_map(tags: &[TagInfo], array_elements: bool) -> HashMap<String, Target> {
    let mut m = HashMap::new();
    for t in tags {
        m.insert(t.name.clone(), Target::Node(t.node_id()));
        for i in 0..t.array_len.unwrap_or(0) {
            let target = if array_elements {
                Target::Node(NodeId::new(NS, t.element_id(i)))
            } else {
                Target::Element(t.node_id(), i)
            };
            m.insert(format!("{}[{i}]", t.name), target);
        }
    }
    m
}

async fn start_park(
    index: usize,
    addr: SocketAddr,
    opts: &SimOptions,
    extras: &SimExtras,
    tags: &Arc<Vec<TagInfo>>,
    pki_dir: &std::path::Path,
) -> Result<Park, SimError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| SimError::Bind { addr, source })?;
    let host = endpoint_host(&local);
    let endpoint = format!("opc.tcp://{host}:{}", local.port());

    let links = Arc::new(Links::new(tags, opts.array_elements));
    let anonymous = vec![opcua::server::ANONYMOUS_USER_TOKEN_ID.to_string()];
    let mut builder = ServerBuilder::new()
        .application_name(
            // No comma: the name becomes the certificate CN (an RFC 4514 string).
            format!("Stator S7-1200 simulator park {}", index + 1),
        )
        .application_uri("urn:stator:sim")
        .product_uri("urn:stator:sim")
        // What diagnostics read from ServerStatus/BuildInfo (a real S7 names its firmware).
        .build_info(opcua::types::BuildInfo {
            product_uri: "urn:stator:sim".into(),
            manufacturer_name: "Stator".into(),
            product_name: "Stator S7-1200 simulator".into(),
            software_version: env!("CARGO_PKG_VERSION").into(),
            build_number: "1".into(),
            build_date: opcua::types::DateTime::now(),
        })
        .host(host)
        .port(local.port())
        .discovery_urls(vec![endpoint.clone()])
        .pki_dir(pki_dir)
        .create_sample_keypair(true)
        // A simulator: any client certificate is accepted (never do this on a real server).
        .trust_client_certs(true)
        .subscription_poll_interval_ms(SUBSCRIPTION_POLL_MS)
        .max_sessions(200)
        .max_session_timeout_ms(3_600_000)
        .add_endpoint("none", ServerEndpoint::new_none("/", &anonymous))
        .with_node_manager(address_space::builder(
            tags.clone(),
            links.clone(),
            opts.array_elements,
        ));
    if let Some((user, pass)) = &opts.secure_user {
        let ids: &[&str] = &[SECURE_TOKEN_ID];
        builder = builder
            .add_user_token(
                SECURE_TOKEN_ID,
                ServerUserToken::user_pass(user.as_str(), pass.as_str()),
            )
            .add_endpoint(
                "basic256sha256_sign",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::Sign,
                    ids,
                ),
            )
            .add_endpoint(
                "basic256sha256_sign_encrypt",
                (
                    "/",
                    SecurityPolicy::Basic256Sha256,
                    MessageSecurityMode::SignAndEncrypt,
                    ids,
                ),
            );
    }
    let limits = builder.limits_mut();
    limits.max_array_length = 1_000_000;
    limits.max_message_size = 64 * 1024 * 1024;
    limits.max_chunk_count = 4096;
    limits.subscriptions.max_monitored_items_per_sub = 1_000_000;
    limits.subscriptions.min_sampling_interval_ms = 10.0;
    limits.subscriptions.min_publishing_interval_ms = 20.0;
    limits.subscriptions.max_queued_notifications = 1_000;
    limits.subscriptions.max_subscriptions_per_session =
        if extras.refuse_subscriptions { 0 } else { 100 };
    limits.operational.max_monitored_items_per_call = 100_000;
    limits.operational.max_nodes_per_read = 100_000;
    limits.operational.max_nodes_per_write = 100_000;
    limits.operational.max_nodes_per_browse = 100_000;
    limits.operational.max_nodes_per_register_nodes = 100_000;

    let (server, server_handle) = builder.build().map_err(SimError::Server)?;
    match server_handle.get_namespace_index(NAMESPACE_URI) {
        Some(NS) => {}
        other => {
            return Err(SimError::Server(format!(
                "our namespace landed at index {other:?}, expected {NS}"
            )))
        }
    }
    let manager = server_handle
        .node_managers()
        .get_of_type::<SimNodeManager>()
        .ok_or_else(|| SimError::Server("simulator node manager missing".into()))?;

    let server_task = tokio::spawn(server.run_with(listener));
    let scan = process::ScanLoop {
        park: index,
        period: Duration::from_millis(opts.period_ms),
        manager: manager.clone(),
        subscriptions: server_handle.subscriptions().clone(),
        links: links.clone(),
        tags: tags.clone(),
        load: opts.tags,
        token: server_handle.token().clone(),
    };
    let scan_task = tokio::spawn(scan.run());
    tracing::info!(park = index, %endpoint, "simulator park listening");
    Ok(Park {
        endpoint,
        addr: local,
        handle: server_handle,
        manager,
        links,
        names: Arc::new(name_map(tags, opts.array_elements)),
        server_task: Some(server_task),
        scan_task: Some(scan_task),
    })
}

impl SimHandle {
    /// `opc.tcp://HOST:PORT` of every park, in park order.
    pub fn endpoints(&self) -> Vec<String> {
        self.parks.iter().map(|p| p.endpoint.clone()).collect()
    }

    /// The bound socket address of every park (for restarting on the same port).
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.parks.iter().map(|p| p.addr).collect()
    }

    /// The tags every park exposes (arrays as one tag).
    pub fn tags(&self) -> Vec<TagInfo> {
        self.tags.as_ref().clone()
    }

    /// The directory holding the server certificate (`own/cert.der`, shared by all parks)
    /// and the auto-trusted client certificates.
    pub fn pki_dir(&self) -> &std::path::Path {
        &self.pki_dir
    }

    /// The server's certificate (DER), e.g. for a client test to trust it.
    pub fn server_certificate_der(&self) -> Option<Vec<u8>> {
        std::fs::read(self.pki_dir.join("own").join("cert.der")).ok()
    }

    fn target(&self, park: usize, tag: &str) -> Option<(&Park, Target)> {
        let p = self.parks.get(park)?;
        let t = p.names.get(tag)?.clone();
        Some((p, t))
    }

    /// The current value of `tag` (`Active_Power_kW`, `Meteo/Irradiance_W_m2`,
    /// `CMD_Instant_Cutoff`, `CMD_Instant_Cutoff[3]`, `Load/T00001`) in park `park`.
    pub fn value(&self, park: usize, tag: &str) -> Option<Variant> {
        let (p, target) = self.target(park, tag)?;
        let space = p.manager.address_space().read();
        match target {
            Target::Node(id) => address_space::current(&space, &id),
            Target::Element(id, i) => match address_space::current(&space, &id)? {
                Variant::Array(a) => a.values.get(i).cloned(),
                _ => None,
            },
        }
    }

    /// [`SimHandle::value`] as JSON (numbers, booleans, strings, arrays; 64-bit integers as
    /// numbers, DateTime as RFC 3339).
    pub fn value_json(&self, park: usize, tag: &str) -> Option<serde_json::Value> {
        self.value(park, tag).map(|v| variant_json(&v))
    }

    /// Sets `tag` as the PLC program would (also read-only tags), keeping arrays and element
    /// children in sync and notifying subscribers. The value must have the tag's exact type.
    pub fn set_value(&self, park: usize, tag: &str, value: Variant) -> Result<(), SimError> {
        let unknown = || SimError::UnknownTag {
            park,
            tag: tag.to_string(),
        };
        let (p, target) = self.target(park, tag).ok_or_else(unknown)?;
        let (id, range, value) = match target {
            Target::Node(id) => (id, NumericRange::None, value),
            Target::Element(id, i) => (
                id,
                NumericRange::Index(i as u32),
                Variant::Array(Box::new(
                    opcua::types::Array::new(
                        value
                            .scalar_type_id()
                            .ok_or(SimError::Refused(opcua::types::StatusCode::BadTypeMismatch))?,
                        vec![value],
                    )
                    .map_err(|_| SimError::Refused(opcua::types::StatusCode::BadTypeMismatch))?,
                )),
            ),
        };
        let mut space = p.manager.address_space().write();
        let mut changed = Vec::new();
        address_space::apply(&mut space, &p.links, &id, &range, value, &mut changed)
            .map_err(SimError::Refused)?;
        address_space::notify(&space, p.handle.subscriptions(), &changed);
        Ok(())
    }

    /// Stops every park: closes client connections and frees the ports (bounded by ~2 s per
    /// park), so a new [`start`] on the same ports works at once.
    pub async fn stop(mut self) {
        self.stop_parks().await;
    }

    async fn stop_parks(&mut self) {
        for p in &self.parks {
            p.handle.cancel();
        }
        for p in &mut self.parks {
            if let Some(t) = p.scan_task.take() {
                t.abort();
                let _ = t.await;
            }
            if let Some(mut t) = p.server_task.take() {
                if tokio::time::timeout(STOP_TIMEOUT, &mut t).await.is_err() {
                    tracing::warn!(endpoint = %p.endpoint, "simulator park did not stop in time; aborting");
                    t.abort();
                    let _ = t.await;
                }
            }
        }
        self.parks.clear();
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for p in &self.parks {
            p.handle.cancel();
            if let Some(t) = &p.scan_task {
                t.abort();
            }
        }
    }
}

/// Converts a Variant to JSON for [`SimHandle::value_json`].
pub fn variant_json(v: &Variant) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Variant::Boolean(b) => J::Bool(*b),
        Variant::SByte(x) => (*x).into(),
        Variant::Byte(x) => (*x).into(),
        Variant::Int16(x) => (*x).into(),
        Variant::UInt16(x) => (*x).into(),
        Variant::Int32(x) => (*x).into(),
        Variant::UInt32(x) => (*x).into(),
        Variant::Int64(x) => (*x).into(),
        Variant::UInt64(x) => (*x).into(),
        Variant::Float(x) => serde_json::Number::from_f64(f64::from(*x))
            .map(J::Number)
            .unwrap_or(J::Null),
        Variant::Double(x) => serde_json::Number::from_f64(*x)
            .map(J::Number)
            .unwrap_or(J::Null),
        Variant::String(s) => J::String(s.value().clone().unwrap_or_default()),
        Variant::DateTime(d) => J::String(d.as_chrono().to_rfc3339()),
        Variant::Array(a) => J::Array(a.values.iter().map(variant_json).collect()),
        Variant::Empty => J::Null,
        other => J::String(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names_point_at_children_or_index_ranges() {
        let tags = tags::standard_tags();
        let with = name_map(&tags, true);
        let without = name_map(&tags, false);
        assert!(
            matches!(&with["CMD_Instant_Cutoff[3]"], Target::Node(id) if *id == NodeId::new(NS, 104u32))
        );
        assert!(
            matches!(&without["CMD_Instant_Cutoff[3]"], Target::Element(id, 3) if *id == NodeId::new(NS, 100u32))
        );
        assert!(with.contains_key("Meteo/Irradiance_W_m2"));
    }

    #[test]
    fn json_of_variants() {
        use serde_json::json;
        assert_eq!(
            variant_json(&Variant::UInt64(9_007_199_254_740_993)),
            json!(9_007_199_254_740_993u64)
        );
        assert_eq!(variant_json(&Variant::Float(1.5)), json!(1.5));
        assert_eq!(variant_json(&Variant::Double(f64::NAN)), json!(null));
        assert_eq!(
            variant_json(&tags::vec_variant(
                SimType::Boolean,
                vec![true.into(), false.into()]
            )),
            json!([true, false])
        );
    }
}
