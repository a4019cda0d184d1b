//! HTTPS and WSS with `remote.tls` (rustls): a client pinned to the test certificate.

use std::sync::Arc;

use crate::support::*;
use serde_json::json;
use stator::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::DigitallySignedStruct;

const CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/remote_tls_cert.pem"
);
const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/remote_tls_key.pem"
);

/// Accepts exactly the fixture certificate (pinning), with real signature checks.
#[derive(Debug)]
struct Pinned(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("unexpected certificate".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.1.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

fn cert_der() -> Vec<u8> {
    use base64::Engine;
    let pem = std::fs::read_to_string(CERT).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

async fn tls(env: &Env) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(cert_der(), provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn https_and_wss_with_the_configured_certificate() {
    let env = Env::start(json!({"remote": {"tls": {"cert": CERT, "key": KEY}}})).await;
    let t = env.login("ann", Role::Viewer, &["alpha"]).await;

    let mut s = tls(&env).await;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"status\":\"ok\""));

    let s = tls(&env).await;
    let url = format!("wss://localhost:{}/ws?token={t}", env.addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, s).await.unwrap();
    let m = loop {
        use futures::StreamExt;
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => break t,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(v["type"], "snapshot");

    // Plain HTTP on the TLS port does not get an answer.
    let (st, _, _) = http(env.addr, "GET", "/health", &[], None).await;
    assert_ne!(st, 200);
}
