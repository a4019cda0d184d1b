//! WebSocket `/ws`: authentication, snapshot, updates, replies, policing of the session.
//!
//! Close codes (docs/protocol.md): 4001 unauthenticated / session ended, 4008 too slow,
//! 1009 inbound message too large, 1001 server shutting down.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::fanout::{ParkKey, Registration};
use super::server::{AppState, ConnGuard, LimitHit};
use super::wsock::{
    offered_protocols, CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
};
use crate::api::wire::Reply;
use crate::api::{dispatch, ApiError, Ctx, Empty, Request};
use crate::auth::{Principal, Source};
use crate::code::Code;

/// Close code: missing, bad, expired or revoked session.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code: the client stayed behind the live stream.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code: message larger than the inbound limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: authenticated, but every client slot is taken (`max_clients`).
pub const CLOSE_TRY_LATER: u16 = 1013;
/// Close code: server shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

#[derive(serde::Deserialize)]
pub(super) struct WsQuery {
    token: Option<String>,
}

/// The token of `Sec-WebSocket-Protocol: bearer, <token>`: the offered item after `bearer`.
fn protocol_token(headers: &HeaderMap) -> Option<String> {
    let items = offered_protocols(headers);
    let i = items
        .iter()
        .position(|s| s.eq_ignore_ascii_case("bearer"))?;
    items.get(i + 1).cloned()
}

/// `GET /ws`: checks Host/Origin and connection limits, then upgrades.
pub(super) async fn upgrade(
    State(st): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Query(q): Query<WsQuery>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if let Err(r) = super::origin::check_ws(&headers, &uri, &st.hosts, &st.cfg.allowed_origins) {
        return (r.status, r.message).into_response();
    }
    let ip = addr.ip().to_canonical();
    let token = protocol_token(&headers).or(q.token);
    let (guard, known) = match admit(&st, ip, token.as_deref()).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let max = st.cfg.max_inbound_bytes;
    // Small per-connection buffers: inbound messages are small requests, and outbound frames are
    // written through in fragments (remote/wsock.rs), so no client keeps a copy of an update.
    // The compact update encoding is preferred when the client offers it.
    ws.protocols([super::compact::PROTOCOL, "bearer"])
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let mut c = Client {
                st,
                socket,
                source: Source::Remote(ip.to_string()),
                ip,
                _guard: guard,
                delivered: 0,
            };
            c.run(token, known).await;
        })
}

/// Takes a connection slot before the upgrade. A valid token (protocol header or query) is
/// checked now and takes an authenticated slot (`max_clients`); anything else takes one of the
/// few not-yet-authenticated slots (`max_unauthenticated`), so that sockets which never log in
/// cannot crowd out the users who do.
async fn admit(
    st: &AppState,
    ip: IpAddr,
    token: Option<&str>,
) -> Result<(ConnGuard, Option<(String, Principal)>), Response> {
    // The same `auth` request as a first message, through the one dispatcher.
    let known = match token {
        Some(t) => prove(&st.api, t, Source::Remote(ip.to_string()))
            .await
            .ok()
            .map(|(p, _)| (t.to_string(), p)),
        None => None,
    };
    let got = if known.is_some() {
        st.limits
            .acquire(ip, st.cfg.max_clients, st.cfg.max_connections_per_address)
    } else {
        st.pending.acquire(
            ip,
            st.cfg.max_unauthenticated,
            st.cfg.max_unauthenticated_per_address,
        )
    };
    match got {
        Ok(g) => Ok((g, known)),
        Err(LimitHit::Total) => {
            Err((StatusCode::SERVICE_UNAVAILABLE, "too many clients").into_response())
        }
        Err(LimitHit::PerAddress) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from this address",
        )
            .into_response()),
    }
}

/// Proves `token` with the dispatcher's `auth` request: its reply, and the principal the live
/// stream follows. The error is the reason to close with.
async fn prove(
    api: &crate::api::Api,
    token: &str,
    source: Source,
) -> Result<(Principal, Value), String> {
    let ctx = Ctx::new(Some(token.to_string()), source);
    let reply = dispatch(api, &ctx, Request::Auth(Empty {}))
        .await
        .map_err(|e| e.message)?;
    let p = api.auth().peek(token).await.map_err(|e| e.to_string())?;
    Ok((p, reply))
}

/// How a connection ended.
enum End {
    Close(u16, String),
    Drop,
}

struct Client {
    st: AppState,
    socket: WebSocket,
    source: Source,
    ip: IpAddr,
    /// Its slot: not-yet-authenticated until `promote` swaps it for an authenticated one.
    _guard: ConnGuard,
    /// Highest cache sequence this client has (snapshot or update).
    delivered: u64,
}

fn reply_ok(id: &Value, result: Value) -> String {
    encode(&Reply::ok(id, &result))
}

fn reply_err(id: &Value, e: &ApiError) -> String {
    encode(&Reply::err(id, e))
}

fn encode<T: serde::Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).unwrap_or_default()
}

fn key_of(api: &crate::api::Api, p: &Principal) -> ParkKey {
    let mut v = api.live_parks(p);
    v.sort();
    Arc::new(v)
}

impl Client {
    /// Whether the client negotiated compact updates (subprotocol `stator.v1.compact`).
    fn compact(&self) -> bool {
        self.socket
            .protocol()
            .is_some_and(|p| p.as_bytes() == super::compact::PROTOCOL.as_bytes())
    }

    /// Sends one text frame; a send blocked longer than the slow-client timeout ends the
    /// connection as too slow (4008), any other failure drops it.
    async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let n = text.len();
        match tokio::time::timeout(
            self.st.cfg.slow_client_timeout,
            self.socket.send(Message::Text(text)),
        )
        .await
        {
            Ok(Ok(())) => {
                self.st.api.metrics().sent(n);
                Ok(())
            }
            Ok(Err(_)) => Err(End::Drop),
            Err(_) => Err(too_slow()),
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }

    async fn run(&mut self, token: Option<String>, known: Option<(String, Principal)>) {
        let auth = match (known, token) {
            (Some((t, p)), _) => Ok((t, p, Value::Null)),
            (None, token) => {
                let r = match token {
                    Some(t) => self.auth_token(t).await,
                    None => self.auth_first_message().await,
                };
                r.and_then(|v| self.promote().map(|()| v))
            }
        };
        let (token, principal) = match auth {
            Ok((token, principal, _)) => (token, principal),
            Err(End::Close(code, reason)) => return self.close(code, &reason).await,
            Err(End::Drop) => return,
        };
        let metrics = self.st.api.metrics().clone();
        metrics.client_delta(1);
        let mut key = key_of(&self.st.api, &principal);
        let reg = self.st.hub.register(key.clone(), self.compact());
        let id = reg.id;
        let end = self.live(reg, &token, principal, &mut key).await;
        self.st.hub.unregister(id);
        metrics.client_delta(-1);
        if let End::Close(code, reason) = end {
            if code == CLOSE_TOO_SLOW {
                metrics.slow_closed();
            }
            self.close(code, &reason).await;
        }
    }

    /// Swaps the not-yet-authenticated slot for an authenticated one (`max_clients`); when those
    /// are all taken the socket closes with 1013 (try again later).
    fn promote(&mut self) -> Result<(), End> {
        match self.st.limits.acquire(
            self.ip,
            self.st.cfg.max_clients,
            self.st.cfg.max_connections_per_address,
        ) {
            Ok(g) => {
                self._guard = g;
                Ok(())
            }
            Err(LimitHit::Total) => Err(End::Close(CLOSE_TRY_LATER, "too many clients".into())),
            Err(LimitHit::PerAddress) => Err(End::Close(
                CLOSE_TRY_LATER,
                "too many connections from this address".into(),
            )),
        }
    }

    /// Proves `token` through the dispatcher (the `auth` request): its reply and the principal
    /// the live stream follows.
    async fn auth_token(&mut self, token: String) -> Result<(String, Principal, Value), End> {
        let (p, reply) = prove(&self.st.api, &token, self.source.clone())
            .await
            .map_err(|m| End::Close(CLOSE_UNAUTHORIZED, m))?;
        Ok((token, p, reply))
    }

    /// Waits for `{"op":"login",…}` or `{"op":"auth","token"}` within the auth timeout.
    async fn auth_first_message(&mut self) -> Result<(String, Principal, Value), End> {
        let deadline = Instant::now() + self.st.cfg.auth_timeout;
        let unauth = |m: &str| End::Close(CLOSE_UNAUTHORIZED, m.to_string());
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.socket.recv()).await {
                Err(_) => return Err(unauth("no authentication within the time limit")),
                Ok(None) | Ok(Some(Err(_))) => return Err(End::Drop),
                Ok(Some(Ok(m))) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(_) => return Err(End::Drop),
                Message::Binary(_) => return Err(unauth("authenticate first")),
            };
            let v: Value = serde_json::from_str(text.as_str())
                .map_err(|_| unauth("authenticate first (malformed JSON)"))?;
            let id = v.get("id").cloned().unwrap_or(Value::Null);
            match v.get("op").and_then(Value::as_str) {
                Some("auth") => {
                    let Some(t) = v.get("token").and_then(Value::as_str) else {
                        return Err(unauth("auth needs a token"));
                    };
                    let r = self.auth_token(t.to_string()).await;
                    if let Ok((_, _, reply)) = &r {
                        let _ = self.send_text(reply_ok(&id, reply.clone()).into()).await;
                    }
                    return r;
                }
                Some("login") => {
                    let req = Request::from_json(v.clone());
                    let ctx = Ctx::new(None, self.source.clone());
                    let r = match req {
                        Ok(req @ Request::Login(_)) => dispatch(&self.st.api, &ctx, req).await,
                        Ok(_) | Err(_) => {
                            Err(ApiError::invalid("login needs username and password"))
                        }
                    };
                    match r {
                        Ok(result) => {
                            let token = result["token"].as_str().unwrap_or_default().to_string();
                            let _ = self.send_text(reply_ok(&id, result).into()).await;
                            return self.auth_token(token).await;
                        }
                        Err(e) => {
                            let _ = self.send_text(reply_err(&id, &e).into()).await;
                            return Err(End::Close(CLOSE_UNAUTHORIZED, e.message));
                        }
                    }
                }
                _ => return Err(unauth("authenticate first: send login or auth")),
            }
        }
    }

    async fn send_snapshot(&mut self, p: &Principal) -> Result<(), End> {
        let snap = self.st.api.snapshot_msg(p);
        self.delivered = snap.seq;
        self.send_text(encode(&snap).into()).await
    }

    /// Sends everything after `delivered` as one coalesced update (for a client that lagged);
    /// the encoding is shared with every other client that lagged at the same point.
    async fn catch_up(&mut self, key: &ParkKey) -> Result<(), End> {
        let (seq, text) = self
            .st
            .hub
            .catch_up(&self.st.api, key, self.delivered, self.compact());
        self.delivered = self.delivered.max(seq);
        match text {
            Some(text) => self.send_text(text).await,
            None => Ok(()),
        }
    }

    async fn live(
        &mut self,
        mut reg: Registration,
        token: &str,
        mut principal: Principal,
        key: &mut ParkKey,
    ) -> End {
        // Subscribed before the snapshot, so no push after the snapshot can be missed.
        let mut pushes = self.st.api.pushes().subscribe();
        if let Err(e) = self.send_snapshot(&principal).await {
            return e;
        }
        // Listed by `presence` while this socket lives (the guard leaves on every way out).
        let _online = self.st.api.online(&principal);
        let cfg = self.st.cfg.clone();
        let mut changes = self.st.api.auth().changes();
        // A configuration change (parks added/removed, tag metadata): a fresh snapshot.
        let mut reconfigured = self.st.api.running_config().subscribe();
        reconfigured.mark_unchanged();
        let mut shutdown = self.st.shutdown.clone();
        let mut ping =
            tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
        let mut last_seen = Instant::now();
        let ctx = Ctx::new(Some(token.to_string()), self.source.clone());
        loop {
            let expiry = expiry_of(&principal);
            let mut repeek = false;
            let mut resnapshot = false;
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    return End::Close(CLOSE_GOING_AWAY, "server shutting down".into());
                }
                _ = reg.kick.notified() => return too_slow(),
                ch = changes.recv() => match ch {
                    Ok(uid) => repeek = uid == principal.user_id,
                    Err(RecvError::Lagged(_)) => repeek = true,
                    Err(RecvError::Closed) => {}
                },
                _ = tokio::time::sleep_until(expiry) => repeek = true,
                r = reconfigured.changed(), if !reconfigured.is_closed() => {
                    repeek = r.is_ok();
                    resnapshot = r.is_ok();
                }
                msg = self.socket.recv() => {
                    last_seen = Instant::now();
                    match msg {
                        None => return End::Drop,
                        Some(Err(e)) => {
                            let text = e.to_string();
                            if text.contains("too long") || text.contains("too big") || text.contains("Space limit") {
                                return End::Close(CLOSE_TOO_BIG, format!("message larger than {} bytes", cfg.max_inbound_bytes));
                            }
                            return End::Drop;
                        }
                        Some(Ok(Message::Close(_))) => return End::Drop,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Binary(_))) => {
                            let e = ApiError::invalid("binary frames are not supported; send JSON text");
                            if let Err(end) = self.send_text(reply_err(&Value::Null, &e).into()).await {
                                return end;
                            }
                        }
                        Some(Ok(Message::Text(t))) => {
                            let (out, after) = handle_text(&self.st.api, &ctx, t.as_str()).await;
                            if let Err(end) = self.send_text(out.into()).await {
                                return end;
                            }
                            repeek |= after;
                        }
                    }
                }
                f = reg.rx.recv() => {
                    let Some(mut f) = f else { return End::Drop };
                    // Frames that queued up while this client was writing are stale: replace
                    // them by one coalesced catch-up with the latest values.
                    let mut skipped = false;
                    while let Ok(next) = reg.rx.try_recv() {
                        f = next;
                        skipped = true;
                    }
                    if reg.lagging.swap(false, Ordering::AcqRel) || skipped {
                        if let Err(e) = self.catch_up(key).await {
                            return e;
                        }
                    }
                    if f.seq > self.delivered {
                        self.delivered = f.seq;
                        if let Err(end) = self.send_text(f.text).await {
                            return end;
                        }
                    }
                }
                p = pushes.recv() => match p {
                    Ok(p) => {
                        if p.admits(&principal) {
                            if let Err(end) = self.send_text(p.text.clone().into()).await {
                                return end;
                            }
                        }
                    }
                    // Missed pushes: the snapshot carries what a client must not miss.
                    Err(RecvError::Lagged(_)) => {
                        if let Err(e) = self.send_snapshot(&principal).await {
                            return e;
                        }
                    }
                    Err(RecvError::Closed) => {}
                },
                _ = ping.tick() => {
                    if last_seen.elapsed() > cfg.ping_interval * 2 {
                        return End::Drop;
                    }
                    match tokio::time::timeout(cfg.slow_client_timeout, self.socket.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return End::Drop,
                        Err(_) => return too_slow(),
                    }
                }
            }
            if repeek {
                match self.st.api.auth().peek(token).await {
                    Err(e) => return End::Close(CLOSE_UNAUTHORIZED, e.to_string()),
                    Ok(p) => {
                        let new_key = key_of(&self.st.api, &p);
                        let changed = resnapshot || new_key != *key || p.role != principal.role;
                        principal = p;
                        if changed {
                            *key = new_key.clone();
                            self.st.hub.set_key(reg.id, new_key);
                            if let Err(e) = self.send_snapshot(&principal).await {
                                return e;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs one client request; returns the reply text and whether to re-check the session.
async fn handle_text(api: &crate::api::Api, ctx: &Ctx, text: &str) -> (String, bool) {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                reply_err(
                    &Value::Null,
                    &ApiError::invalid(format!("malformed JSON: {e}")),
                ),
                false,
            )
        }
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    if v.get("op").and_then(Value::as_str) == Some("auth") {
        return (
            reply_err(&id, &ApiError::invalid("already authenticated")),
            false,
        );
    }
    let req = match Request::from_json(v) {
        Ok(r) => r,
        Err(e) => return (reply_err(&id, &e), false),
    };
    let after = matches!(req, Request::Logout(_)) || req.op().starts_with("user_");
    match dispatch(api, ctx, req).await {
        Ok(r) => (reply_ok(&id, r), after),
        Err(e) => (reply_err(&id, &e), after || e.code == Code::Unauthorized),
    }
}

fn too_slow() -> End {
    End::Close(
        CLOSE_TOO_SLOW,
        "too slow: the client stayed behind the live stream".into(),
    )
}

/// When to re-check the session by itself: its absolute or idle expiry, whichever is first.
fn expiry_of(p: &Principal) -> Instant {
    let at = p.expires_at.min(p.idle_expires_at);
    let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    // A little after the expiry, so that `peek` sees it expired.
    Instant::now() + left.min(Duration::from_secs(24 * 3600)) + Duration::from_millis(5)
}
