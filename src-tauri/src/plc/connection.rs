//! Opening one OPC UA session to a PLC, and explaining why it failed.
//!
//! The engine owns reconnecting (with its own backoff and a fresh discovery each time), so the
//! async-opcua session is built never to reconnect by itself: that also sidesteps the client's
//! reconnect stall (field notes) and makes every failure visible to the state machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opcua::client::{Client, ClientBuilder, IdentityToken, Session};
use opcua::crypto::{CertificateStore, SecurityPolicy as UaPolicy, X509};
use opcua::types::{MessageSecurityMode, StatusCode};
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use crate::config::{SecurityMode, SecurityPolicy};
use crate::plc::values::status_name;

/// How long one connection attempt (endpoints, channel, session) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of ordinary service calls (browse, read, create items).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The PLC id, used in messages (`stator certs trust <id>`) and the PKI notes; `None` for
    /// `stator discover`.
    pub plc_id: Option<String>,
    pub url: String,
    pub policy: SecurityPolicy,
    pub mode: SecurityMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The OPC UA PKI directory (own/, private/, trusted/, rejected/).
    pub pki_dir: PathBuf,
}

/// A live session and the task driving it. The task ends when the connection is lost.
pub struct Connected {
    pub session: Arc<Session>,
    pub event_loop: JoinHandle<StatusCode>,
    /// The server's application name from its endpoint description.
    pub server_name: Option<String>,
    /// The server certificate the endpoint carried: `(subject, not_after)`, or why there is
    /// none (diagnostics show its expiry).
    pub server_cert: Result<(String, chrono::DateTime<chrono::Utc>), String>,
}

/// Why a connection attempt failed. `Final` errors will not go away by retrying (credentials,
/// certificates); the engine still retries with backoff, but says so clearly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Final(String),
    #[error("{0}")]
    Transient(String),
}

impl ConnectError {
    /// The message for the operator.
    pub fn message(&self) -> &str {
        match self {
            ConnectError::Final(m) | ConnectError::Transient(m) => m,
        }
    }
}

/// Turns a failure status into a clear message and whether it is final.
pub fn explain(status: StatusCode, plc_id: Option<&str>) -> ConnectError {
    let name = status_name(status);
    let trust_hint = match plc_id {
        Some(id) => format!("if this is the right PLC, trust it with `stator certs trust {id}`"),
        None => "trust it by moving it from the PKI rejected/ to the trusted/ folder".to_string(),
    };
    match status.sub_code() {
        s if s == StatusCode::BadCertificateUntrusted.sub_code() => ConnectError::Final(format!(
            "the PLC's certificate is not trusted ({name}); {trust_hint}"
        )),
        s if s == StatusCode::BadSecurityChecksFailed.sub_code() => ConnectError::Final(format!(
            "security checks failed ({name}): the PLC may not trust Stator's client certificate \
             (trust it on the PLC), or the PLC's certificate is not trusted here ({trust_hint})"
        )),
        s if s == StatusCode::BadIdentityTokenRejected.sub_code()
            || s == StatusCode::BadIdentityTokenInvalid.sub_code()
            || s == StatusCode::BadUserAccessDenied.sub_code() =>
        {
            ConnectError::Final(format!(
                "the PLC rejected the user name or password ({name}); check `username` in the \
                 config and the password in the keyring (`stator secret set plc/<id>`)"
            ))
        }
        s if s == StatusCode::BadSecurityPolicyRejected.sub_code()
            || s == StatusCode::BadSecurityModeRejected.sub_code() =>
        {
            ConnectError::Final(format!(
                "the PLC does not offer the configured security policy/mode ({name})"
            ))
        }
        s if s == StatusCode::BadCertificateInvalid.sub_code()
            || s == StatusCode::BadCertificateTimeInvalid.sub_code()
            || s == StatusCode::BadCertificateHostNameInvalid.sub_code()
            || s == StatusCode::BadCertificateUriInvalid.sub_code() =>
        {
            ConnectError::Final(format!(
                "the PLC's certificate is missing, invalid or does not match its address ({name})"
            ))
        }
        _ => ConnectError::Transient(format!("cannot connect ({name})")),
    }
}

fn ua_policy(p: SecurityPolicy) -> UaPolicy {
    match p {
        SecurityPolicy::None => UaPolicy::None,
        SecurityPolicy::Basic256Sha256 => UaPolicy::Basic256Sha256,
    }
}

fn ua_mode(m: SecurityMode) -> MessageSecurityMode {
    match m {
        SecurityMode::None => MessageSecurityMode::None,
        SecurityMode::Sign => MessageSecurityMode::Sign,
        SecurityMode::SignAndEncrypt => MessageSecurityMode::SignAndEncrypt,
    }
}

/// Serialises the one-time creation of the client key pair across PLC tasks.
static KEYPAIR_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds the client. Secure connections create the client certificate in `<pki>/own` on first
/// use (RSA key generation is slow, so this runs on the blocking pool).
async fn build_client(target: &Target) -> Result<Client, ConnectError> {
    // Taken here, on the caller's thread, so the blocking thread logs where the caller does.
    let hush = hushed(target.policy == SecurityPolicy::None);
    let target = target.clone();
    let built = tokio::task::spawn_blocking(move || {
        let _guard = KEYPAIR_LOCK.lock();
        tracing::dispatcher::with_default(&hush, || client_builder(&target).client())
    })
    .await
    .map_err(|e| ConnectError::Transient(format!("internal error: {e}")))?;
    built.map_err(|e| ConnectError::Final(format!("client configuration: {}", e.join("; "))))
}

/// The client settings (secure connections create the client key pair on first use).
fn client_builder(target: &Target) -> ClientBuilder {
    let secure = target.policy != SecurityPolicy::None;
    ClientBuilder::new()
        .application_name("Stator")
        .application_uri("urn:stator:client")
        .product_uri("urn:stator")
        .pki_dir(target.pki_dir.clone())
        .create_sample_keypair(secure)
        .trust_server_certs(false)
        .verify_server_certs(true)
        .session_retry_limit(0)
        .request_timeout(REQUEST_TIMEOUT)
        .keep_alive_interval(Duration::from_secs(2))
        .max_failed_keep_alive_count(3)
        .max_array_length(1_000_000)
        .max_string_length(16 * 1024 * 1024)
        .max_byte_string_length(16 * 1024 * 1024)
        .max_message_size(256 * 1024 * 1024)
        .max_chunk_count(8192)
        .min_publish_interval(Duration::from_millis(10))
        .session_name("Stator")
}

/// async-opcua log events that say nothing about the connection Stator makes: (target, text in
/// the message, noise only with security None). An operator must be able to trust ERROR, so
/// these are dropped while a client is built, a session connects and its event loop runs;
/// everything else the library logs, and the key pair lines on a secure connection (where they
/// matter), pass.
const NOISE: &[(&str, &str, bool)] = &[
    // Stator connects by URL and never fills the library's endpoint table.
    (
        "opcua_client::config",
        "Endpoint config contains no endpoints",
        false,
    ),
    // With security None no key pair is needed (none is created), yet the library reads it when
    // the client is built…
    (
        "opcua_crypto::certificate_store",
        "Failed to get cert ",
        true,
    ),
    (
        "opcua_client::session::client",
        "Client is missing its application instance certificate",
        true,
    ),
    // …and again for every secure channel it opens (the endpoint query and the session).
    (
        "opcua_core::comms::secure_channel",
        "Failed to read own ",
        true,
    ),
    // A session closed politely (shutdown, or the PLC closing it) is no warning; a lost one
    // ends with a bad status, and the engine reports the loss itself.
    (
        "opcua_client::session::event_loop",
        "Transport disconnected: Good",
        false,
    ),
];

/// The current dispatcher minus [`NOISE`] (`none`: the connection uses security None). Used
/// with `dispatcher::with_default` for the synchronous client build and with
/// `WithSubscriber::with_subscriber` for the connect future and the session's event loop, so it
/// covers exactly the code that complains.
fn hushed(none: bool) -> tracing::Dispatch {
    let inner = tracing::dispatcher::get_default(|d| d.clone());
    tracing::Dispatch::new(Hush {
        inner,
        none,
        max: tracing::level_filters::LevelFilter::current(),
    })
}

/// A subscriber forwarding everything to `inner` except the [`NOISE`] events.
struct Hush {
    inner: tracing::Dispatch,
    none: bool,
    /// The most verbose level enabled when it was made: it must not lower the global filter's
    /// fast path (no hint would mean TRACE for as long as a session lives).
    max: tracing::level_filters::LevelFilter,
}

impl Hush {
    fn is_noise(&self, event: &tracing::Event<'_>) -> bool {
        let target = event.metadata().target();
        let mut texts = NOISE
            .iter()
            .filter(|(t, _, only_none)| *t == target && (self.none || !only_none))
            .map(|(_, text, _)| *text)
            .peekable();
        if texts.peek().is_none() {
            return false;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        texts.any(|t| message.0.contains(t))
    }
}

/// The formatted `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Hush {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.inner.new_span(span)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.inner.record(span, values)
    }
    fn record_follows_from(&self, span: &tracing::span::Id, follows: &tracing::span::Id) {
        self.inner.record_follows_from(span, follows)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        if !self.is_noise(event) {
            self.inner.event(event)
        }
    }
    fn enter(&self, span: &tracing::span::Id) {
        self.inner.enter(span)
    }
    fn exit(&self, span: &tracing::span::Id) {
        self.inner.exit(span)
    }
    fn clone_span(&self, id: &tracing::span::Id) -> tracing::span::Id {
        self.inner.clone_span(id)
    }
    fn try_close(&self, id: tracing::span::Id) -> bool {
        self.inner.try_close(id)
    }
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The inner subscriber's answer: filtering happens in `event`, which sees every event
        // dispatched while this one is the default, whatever the callsite's cached interest.
        self.inner.register_callsite(metadata)
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.max)
    }
}

/// Connects (endpoints, secure channel, session) within [`CONNECT_TIMEOUT`] (creating the
/// client key pair on first use is not counted).
pub async fn connect(target: &Target) -> Result<Connected, ConnectError> {
    let client = build_client(target).await?;
    let hush = hushed(target.policy == SecurityPolicy::None);
    let attempt = connect_inner(client, target).with_subscriber(hush);
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Transient(format!(
            "no answer from {} within {} s",
            target.url,
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

async fn connect_inner(client: Client, target: &Target) -> Result<Connected, ConnectError> {
    let endpoints = client
        .get_server_endpoints_from_url(target.url.as_str())
        .await
        .map_err(|e| {
            ConnectError::Transient(format!(
                "cannot reach {} ({})",
                target.url,
                status_name(e.status())
            ))
        })?;
    let policy = ua_policy(target.policy);
    let mode = ua_mode(target.mode);
    let endpoint = Client::find_matching_endpoint(&endpoints, &target.url, policy, mode)
        .ok_or_else(|| {
            let offered: Vec<String> = endpoints
                .iter()
                .map(|e| {
                    format!(
                        "{}/{:?}",
                        UaPolicy::from_uri(e.security_policy_uri.as_ref()).to_str(),
                        e.security_mode
                    )
                })
                .collect();
            ConnectError::Final(format!(
                "the PLC offers no endpoint with security {}/{:?} (it offers: {})",
                policy.to_str(),
                mode,
                offered.join(", ")
            ))
        })?;
    let server_name =
        Some(endpoint.server.application_name.text.to_string()).filter(|s| !s.is_empty());
    let identity = match (&target.username, &target.password) {
        (Some(u), Some(p)) => IdentityToken::new_user_name(u.clone(), p.clone()),
        (Some(u), None) => {
            return Err(ConnectError::Final(format!(
                "no password stored for user {u:?}: run `stator secret set plc/{}`",
                target.plc_id.as_deref().unwrap_or("<id>")
            )))
        }
        _ => IdentityToken::Anonymous,
    };
    let server_cert = endpoint.server_certificate.clone();
    let (session, event_loop) = client
        .session_builder()
        .with_endpoints(endpoints)
        .connect_to_matching_endpoint(endpoint)
        .map_err(|e| explain(e.status(), target.plc_id.as_deref()))?
        .user_identity_token(identity)
        .build(client.certificate_store().clone())
        .map_err(|e| explain(e.status(), target.plc_id.as_deref()))?;
    // The engine reconnects itself: a lost transport ends the event loop.
    session.disable_reconnects();
    // Aborted if this future is dropped (shutdown or timeout) before the session is handed out.
    let hush = hushed(target.policy == SecurityPolicy::None);
    let mut guard = AbortOnDrop(Some(tokio::spawn(event_loop.run().with_subscriber(hush))));
    let Some(event_loop) = guard.0.as_mut() else {
        return Err(ConnectError::Transient("internal error".into()));
    };
    tokio::select! {
        _ = session.wait_for_connection() => {}
        r = event_loop => {
            let status = r.unwrap_or(StatusCode::BadInternalError);
            let status = if status.is_good() { StatusCode::BadConnectionClosed } else { status };
            let mut err = explain(status, target.plc_id.as_deref());
            // The PLC's certificate sits in rejected/: whatever the status (the first attempt
            // says Untrusted, later ones SecurityChecksFailed), say how to trust it.
            if let Some(id) = &target.plc_id {
                if note_rejected(&target.pki_dir, id, &server_cert) {
                    err = explain(StatusCode::BadCertificateUntrusted, Some(id));
                }
            }
            return Err(err);
        }
    }
    let Some(event_loop) = guard.0.take() else {
        return Err(ConnectError::Transient("internal error".into()));
    };
    Ok(Connected {
        session,
        event_loop,
        server_name,
        server_cert: cert_facts(&server_cert),
    })
}

struct AbortOnDrop(Option<JoinHandle<StatusCode>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// When the PLC's certificate lies in `<pki>/rejected/`, remembers that it belongs to this PLC
/// (for `stator certs trust <id>`) in `<pki>/rejected/<plc id>.plc`, and returns true.
fn note_rejected(pki_dir: &Path, plc_id: &str, cert: &opcua::types::ByteString) -> bool {
    if cert.is_null_or_empty() {
        return false;
    }
    let Ok(x509) = X509::from_byte_string(cert) else {
        return false;
    };
    let name = CertificateStore::cert_file_name(&x509);
    let dir = pki_dir.join("rejected");
    if !dir.join(&name).exists() {
        return false;
    }
    if let Err(e) = std::fs::write(dir.join(format!("{plc_id}.plc")), name) {
        tracing::warn!(plc = plc_id, "cannot note the rejected certificate: {e}");
    }
    true
}

/// Subject and expiry of the certificate an endpoint carried, or why there are none.
fn cert_facts(
    cert: &opcua::types::ByteString,
) -> Result<(String, chrono::DateTime<chrono::Utc>), String> {
    if cert.is_null_or_empty() {
        return Err("the server sent no certificate".into());
    }
    let x509 = X509::from_byte_string(cert)
        .map_err(|e| format!("the server's certificate cannot be read ({e})"))?;
    let not_after = x509
        .not_after()
        .map_err(|_| "the server's certificate has no readable expiry date".to_string())?;
    Ok((x509.subject_name(), not_after))
}

/// Closes the session politely, never taking longer than `limit`; the event loop is aborted.
pub async fn close(c: Connected, limit: Duration) {
    let Connected {
        session,
        event_loop,
        ..
    } = c;
    let _ = tokio::time::timeout(limit, session.disconnect()).await;
    event_loop.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_errors_say_what_to_do() {
        let e = explain(StatusCode::BadCertificateUntrusted, Some("eco_solar"));
        assert!(matches!(e, ConnectError::Final(_)));
        assert!(e.message().contains("stator certs trust eco_solar"), "{e}");
        let e = explain(StatusCode::BadIdentityTokenRejected, Some("x"));
        assert!(matches!(e, ConnectError::Final(_)));
        assert!(e.message().contains("user name or password"), "{e}");
        assert!(matches!(
            explain(StatusCode::BadSecurityChecksFailed, None),
            ConnectError::Final(_)
        ));
        let e = explain(StatusCode::BadConnectionClosed, None);
        assert!(matches!(e, ConnectError::Transient(_)));
        assert!(e.message().contains("BadConnectionClosed"));
    }

    /// Counts events of at least WARN level that reach it.
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for Count {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            if *e.metadata().level() <= tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn security_none_builds_the_client_without_errors_or_warnings() {
        use std::sync::atomic::Ordering::SeqCst;
        let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pki = tempfile::tempdir().unwrap();
        let target = Target {
            plc_id: Some("p".into()),
            url: "opc.tcp://127.0.0.1:1".into(),
            policy: SecurityPolicy::None,
            mode: SecurityMode::None,
            username: None,
            password: None,
            pki_dir: pki.path().to_path_buf(),
        };
        // Scoped to this thread (tests run in parallel): the same builder `build_client` uses.
        let d = tracing::Dispatch::new(Count(n.clone()));
        let unquiet =
            tracing::dispatcher::with_default(&d, || client_builder(&target).client().is_ok());
        assert!(unquiet);
        assert!(
            n.load(SeqCst) >= 3,
            "the library logs about the missing key pair and the endpoint table (what this \
             guards against): {}",
            n.load(SeqCst)
        );
        n.store(0, SeqCst);
        let built = tracing::dispatcher::with_default(&d, || {
            let hush = hushed(true);
            tracing::dispatcher::with_default(&hush, || client_builder(&target).client()).is_ok()
        });
        assert!(built);
        assert_eq!(n.load(SeqCst), 0);
        // Only the listed lines are dropped: other events of the same targets, and the key pair
        // lines of a secure connection (where they matter), still get through.
        tracing::dispatcher::with_default(&d, || {
            let hush = hushed(true);
            tracing::dispatcher::with_default(&hush, || {
                tracing::warn!("kept");
                tracing::error!(target: "opcua_core::comms::secure_channel", "Cannot decrypt");
            });
            let secure = hushed(false);
            tracing::dispatcher::with_default(&secure, || {
                tracing::error!(
                    target: "opcua_core::comms::secure_channel",
                    "Failed to read own certificate: x"
                );
                tracing::warn!(
                    target: "opcua_client::config",
                    "Endpoint config contains no endpoints"
                );
            });
        });
        assert_eq!(n.load(SeqCst), 3);
    }
}
