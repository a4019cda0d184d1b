//! The WebSocket upgrade and socket used by `/ws`, in place of axum's `WebSocketUpgrade`.
//!
//! Why not axum's: tungstenite (0.29) copies every outgoing frame into a per-connection output
//! `Vec` that keeps its capacity for the life of the connection, even with a write buffer size
//! of 0. A 190 kB update therefore left ~190 kB resident per client (190 MB at 1,000 clients).
//! axum's `Message` has no raw-frame variant, so it cannot send a message in fragments. Here the
//! same tungstenite stream (the one axum bundles, no second copy in the tree) is driven directly
//! and large text messages go out as a fragmented message of [`FRAGMENT`]-byte frames sliced
//! from the shared, reference-counted payload: no connection ever buffers more than one
//! fragment. Fragmentation is part of RFC 6455; every client reassembles it before delivering
//! the message, so what an application reads is byte-identical.
//!
//! The handshake follows axum 0.8's for HTTP/1.1 (HTTP/2 extended CONNECT is not enabled on the
//! listener, so browsers never use it).

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self as ts};
use tokio_tungstenite::WebSocketStream;

pub use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Largest frame payload sent: larger text messages are fragmented. Also the most a connection
/// keeps in its output buffer. 16 KiB keeps 1,000 clients under 20 MB of buffers while a
/// 190 kB update still takes only 12 writes.
pub const FRAGMENT: usize = 16 * 1024;

/// Error of a socket operation.
pub type Error = ts::Error;

/// A WebSocket message, as axum's (the protocol never sends raw frames).
#[derive(Debug, Clone)]
pub enum Message {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseFrame>),
}

/// Close code and reason.
#[derive(Debug, Clone)]
pub struct CloseFrame {
    pub code: u16,
    pub reason: Utf8Bytes,
}

/// Extractor for a WebSocket upgrade request (`GET` with `Upgrade: websocket`).
pub struct WebSocketUpgrade {
    config: WebSocketConfig,
    key: HeaderValue,
    offered: Vec<String>,
    protocol: Option<HeaderValue>,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let reject = |code: StatusCode, msg: &'static str| (code, msg).into_response();
        if parts.version > Version::HTTP_11 {
            return Err(reject(
                StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                "WebSocket needs HTTP/1.1",
            ));
        }
        if parts.method != Method::GET {
            return Err(reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ));
        }
        if !header_has(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ));
        }
        if !header_has(&parts.headers, header::UPGRADE, "websocket") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ));
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(reject(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        let offered = offered_protocols(&parts.headers);
        Ok(Self {
            config: WebSocketConfig::default(),
            key,
            offered,
            protocol: None,
            on_upgrade,
        })
    }
}

impl WebSocketUpgrade {
    /// Selects the first of `protocols` (in the server's order of preference) that the client
    /// offered in `Sec-WebSocket-Protocol`.
    pub fn protocols<const N: usize>(mut self, protocols: [&'static str; N]) -> Self {
        self.protocol = protocols
            .iter()
            .find(|p| self.offered.iter().any(|o| o.eq_ignore_ascii_case(p)))
            .map(|p| HeaderValue::from_static(p));
        self
    }

    /// Initial capacity of the read buffer.
    pub fn read_buffer_size(mut self, n: usize) -> Self {
        self.config.read_buffer_size = n;
        self
    }

    /// Bytes buffered before writing (0: write through).
    pub fn write_buffer_size(mut self, n: usize) -> Self {
        self.config.write_buffer_size = n;
        self
    }

    /// Largest inbound message.
    pub fn max_message_size(mut self, n: usize) -> Self {
        self.config.max_message_size = Some(n);
        self
    }

    /// Largest inbound frame.
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.config.max_frame_size = Some(n);
        self
    }

    /// Answers 101 and runs `callback` with the socket once the connection is upgraded.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let protocol = self.protocol.clone();
        let config = self.config;
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let inner = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            callback(WebSocket { inner, protocol }).await;
        });
        let mut res = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, HeaderValue::from_static("upgrade"))
            .header(header::UPGRADE, HeaderValue::from_static("websocket"))
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                ts::handshake::derive_accept_key(self.key.as_bytes()),
            )
            .body(Body::empty())
            .unwrap_or_default();
        if let Some(p) = self.protocol {
            res.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        res
    }
}

/// An upgraded connection.
pub struct WebSocket {
    inner: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
    protocol: Option<HeaderValue>,
}

impl WebSocket {
    /// The subprotocol selected in the handshake.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        self.protocol.as_ref()
    }

    /// The next message (`None` once the stream ended). Raw frames are not surfaced.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        loop {
            let m = match self.inner.next().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            return Some(Ok(match m {
                ts::Message::Text(t) => Message::Text(t),
                ts::Message::Binary(b) => Message::Binary(b),
                ts::Message::Ping(b) => Message::Ping(b),
                ts::Message::Pong(b) => Message::Pong(b),
                ts::Message::Close(c) => Message::Close(c.map(|c| CloseFrame {
                    code: c.code.into(),
                    reason: c.reason,
                })),
                ts::Message::Frame(_) => continue,
            }));
        }
    }

    /// Sends a message; text larger than [`FRAGMENT`] goes out as a fragmented message.
    pub async fn send(&mut self, msg: Message) -> Result<(), Error> {
        let m = match msg {
            Message::Text(t) if t.len() > FRAGMENT => {
                for f in fragments(t) {
                    self.inner.feed(ts::Message::Frame(f)).await?;
                }
                return self.inner.flush().await;
            }
            Message::Text(t) => ts::Message::Text(t),
            Message::Binary(b) => ts::Message::Binary(b),
            Message::Ping(b) => ts::Message::Ping(b),
            Message::Pong(b) => ts::Message::Pong(b),
            Message::Close(c) => ts::Message::Close(c.map(|c| ts::protocol::CloseFrame {
                code: CloseCode::from(c.code),
                reason: c.reason,
            })),
        };
        self.inner.send(m).await
    }
}

/// The frames of one text message: slices of the shared payload (no copy), each at most
/// [`FRAGMENT`] bytes, split on UTF-8 character boundaries.
fn fragments(text: Utf8Bytes) -> Vec<Frame> {
    let s = text.as_str();
    let mut cuts = Vec::new();
    let mut at = 0;
    while s.len() - at > FRAGMENT {
        let mut end = at + FRAGMENT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        cuts.push((at, end));
        at = end;
    }
    cuts.push((at, s.len()));
    let bytes = Bytes::from(text);
    let last = cuts.len() - 1;
    cuts.into_iter()
        .enumerate()
        .map(|(i, (a, b))| {
            let op = if i == 0 {
                OpCode::Data(Data::Text)
            } else {
                OpCode::Data(Data::Continue)
            };
            Frame::message(bytes.slice(a..b), op, i == last)
        })
        .collect()
}

/// The subprotocols a client offers in `Sec-WebSocket-Protocol`, in its order (the token of
/// `bearer, <token>` is the item after `bearer`).
pub(super) fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_reassemble_to_the_message_on_char_boundaries() {
        // Multi-byte characters straddle the fragment size.
        let text: String = "€a".repeat(FRAGMENT);
        let frames = fragments(Utf8Bytes::from(text.clone()));
        assert!(frames.len() > 2);
        let mut joined = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            assert!(f.payload().len() <= FRAGMENT);
            assert_eq!(f.header().is_final, i == frames.len() - 1);
            assert!(std::str::from_utf8(f.payload()).is_ok());
            joined.extend_from_slice(f.payload());
        }
        assert_eq!(joined, text.as_bytes());
        assert_eq!(frames[0].header().opcode, OpCode::Data(Data::Text));
        assert_eq!(frames[1].header().opcode, OpCode::Data(Data::Continue));
    }
}
