//! The Tauri window (feature `desktop`): the panel.
//!
//! Everything the window can do goes through ONE command, `api`, which hands the same JSON
//! requests the WebSocket takes to [`crate::api::dispatch`] with `source = panel`. No permission
//! logic lives here, so the panel and remote browsers can never disagree. Live values reach the
//! window as Tauri events carrying the WebSocket's `snapshot`/`update` shapes:
//! `live-snapshot`, `live-update`, `push` (the WebSocket's server-initiated messages, e.g.
//! `{"type":"alarm",…}`, for the panel's session) and `session-ended` (`{code: 4001, reason}`)
//! when the panel's session expires or is revoked.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};
use tauri::Emitter;

use crate::api::wire::{ErrorBody, SessionEnded};
use crate::api::{self, ApiError, Ctx, Request};
use crate::app::Core;
use crate::auth::Source;

/// The panel's state shared by the command and the live loop.
struct Panel {
    api: api::Api,
    /// The session the window currently shows; the live loop follows it.
    token: Mutex<Option<String>>,
    /// Wakes the live loop when the session changes (login, logout).
    session_changed: tokio::sync::Notify,
    kiosk: bool,
}

fn error_json(e: ApiError) -> Value {
    serde_json::to_value(ErrorBody::from(&e))
        .unwrap_or_else(|_| json!({"code": "internal", "message": "error"}))
}

/// The single command the window may call (see capabilities/default.json). It only translates:
/// `health` and `exit_kiosk` are requests like any other; the window follows the session a
/// login/logout reply names, and closes after a successful `exit_kiosk`.
#[tauri::command]
async fn api(
    app: tauri::AppHandle,
    panel: tauri::State<'_, Arc<Panel>>,
    request: Value,
    token: Option<String>,
) -> Result<Value, Value> {
    let req = Request::from_json(request).map_err(error_json)?;
    let op = req.op();
    let ctx = Ctx::new(token.clone(), Source::Panel).with_kiosk(panel.kiosk);
    let result = api::dispatch(&panel.api, &ctx, req)
        .await
        .map_err(error_json)?;
    match op {
        "health" => {}
        "exit_kiosk" => app.exit(0),
        "login" | "login_pin" | "login_badge" | "first_superuser" => {
            let t = result
                .get("token")
                .and_then(Value::as_str)
                .map(str::to_string);
            *panel.token.lock() = t;
            panel.session_changed.notify_one();
        }
        "logout" => {
            *panel.token.lock() = None;
            panel.session_changed.notify_one();
        }
        _ => {
            if token.is_some() && *panel.token.lock() != token {
                *panel.token.lock() = token;
                panel.session_changed.notify_one();
            }
        }
    }
    Ok(result)
}

/// Pushes the panel session's live picture to the window: a snapshot on every session change,
/// then deltas as the remote fan-out sends them (at once, on average at most once per broadcast
/// interval, every value a tag took in between); `session-ended` when the session dies (checked
/// on every wake-up and at least once a second).
async fn live_loop(app: tauri::AppHandle, panel: Arc<Panel>) {
    let interval = Duration::from_secs_f64(panel.api.config().broadcast_interval_seconds.max(0.05));
    let mut throttle = crate::live::Throttle::new(panel.api.cache(), interval);
    let mut changes = panel.api.auth().changes();
    let mut seq = 0u64;
    let mut shown: Option<String> = None;
    // The panel's session is listed by `presence` while the window shows it.
    let mut online: Option<api::OnlineGuard> = None;
    loop {
        tokio::select! {
            woke = throttle.wait() => if !woke { break },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = panel.session_changed.notified() => {}
            r = changes.recv() => {
                // Grants or role may have changed: force a fresh snapshot.
                if r.is_ok() { shown = None; }
            }
        }
        let token = panel.token.lock().clone();
        let Some(token) = token else {
            shown = None;
            drop(online.take());
            continue;
        };
        let principal = match panel.api.auth().peek(&token).await {
            Ok(p) => p,
            Err(e) => {
                *panel.token.lock() = None;
                shown = None;
                drop(online.take());
                let _ = app.emit(
                    "session-ended",
                    SessionEnded {
                        code: 4001,
                        reason: e.to_string(),
                    },
                );
                continue;
            }
        };
        if shown.as_deref() != Some(token.as_str()) {
            let snap = panel.api.snapshot_msg(&principal);
            seq = snap.seq;
            let _ = app.emit("live-snapshot", snap);
            drop(online.replace(panel.api.online(&principal)));
            shown = Some(token);
            continue;
        }
        let delta =
            panel
                .api
                .cache()
                .changes_since_every(seq, crate::live::distinct_gap(interval), |p| {
                    principal.parks.contains(p)
                });
        seq = delta.seq;
        if !delta.is_empty() {
            let _ = app.emit("live-update", api::UpdateMsg::new(delta.seq, &delta.plcs));
        }
    }
}

/// Forwards server-initiated pushes the panel's current session may see as `push` events; after
/// falling behind, a fresh `live-snapshot` (which carries what must not be missed).
async fn push_loop(app: tauri::AppHandle, panel: Arc<Panel>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut rx = panel.api.pushes().subscribe();
    loop {
        let got = match rx.recv().await {
            Ok(p) => Some(p),
            Err(RecvError::Lagged(_)) => None,
            Err(RecvError::Closed) => break,
        };
        let token = panel.token.lock().clone();
        let Some(token) = token else { continue };
        let Ok(principal) = panel.api.auth().peek(&token).await else {
            continue;
        };
        match got {
            Some(p) if p.admits(&principal) => {
                let _ = app.emit("push", &p.body);
            }
            Some(_) => {}
            None => {
                let _ = app.emit("live-snapshot", panel.api.snapshot_msg(&principal));
            }
        }
    }
}

/// GTK cannot open a window without a display server; say so instead of panicking in tao.
/// The command line asks this before it starts anything.
pub fn display_available() -> Result<(), String> {
    if cfg!(target_os = "linux") {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err(
                "no display to open the panel window on (neither DISPLAY nor \
                 WAYLAND_DISPLAY is set): run it in the panel's desktop session, under \
                 `xvfb-run -a`, or headless with `stator serve` (add --demo for the simulator)"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Kiosk panels often run a bare X session without a window manager, which ignores the
/// fullscreen request; so the kiosk window also places itself over its whole monitor.
fn cover_monitor(window: &tauri::WebviewWindow) {
    let monitor = match window.current_monitor() {
        Ok(Some(m)) => Some(m),
        _ => window.primary_monitor().ok().flatten(),
    };
    let Some(m) = monitor else {
        tracing::warn!("kiosk: no monitor found; relying on the fullscreen request");
        return;
    };
    let _ = window.set_position(tauri::Position::Physical(*m.position()));
    let _ = window.set_size(tauri::Size::Physical(*m.size()));
}

/// Opens the panel window over a started [`Core`] and runs it until it closes, kiosk mode is
/// left, or `shutdown` resolves (Ctrl-C / SIGTERM). Returns the window's exit code; the caller
/// (`cli/desktop.rs`) owns the runtime, the core and the process exit code.
pub fn run(
    rt: &tokio::runtime::Runtime,
    core: &Core,
    kiosk: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<i32, tauri::Error> {
    tauri::async_runtime::set(rt.handle().clone());
    let panel = Arc::new(Panel {
        api: core.api.clone(),
        token: Mutex::new(None),
        session_changed: tokio::sync::Notify::new(),
        kiosk,
    });
    let loop_panel = panel.clone();
    let built = tauri::Builder::default()
        .manage(panel)
        .invoke_handler(tauri::generate_handler![api])
        .setup(move |app| {
            let mut w = tauri::WebviewWindowBuilder::new(
                app,
                "main",
                tauri::WebviewUrl::App("index.html".into()),
            )
            .title("Stator")
            .inner_size(1280.0, 400.0)
            .min_inner_size(400.0, 300.0);
            if kiosk {
                w = w.fullscreen(true).decorations(false).always_on_top(true);
            }
            let window = w.build()?;
            if kiosk {
                cover_monitor(&window);
            }
            tauri::async_runtime::spawn(push_loop(app.handle().clone(), loop_panel.clone()));
            tauri::async_runtime::spawn(live_loop(app.handle().clone(), loop_panel));
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                shutdown.await;
                tracing::info!("shutting down");
                handle.exit(0);
            });
            Ok(())
        })
        .on_window_event(move |window, event| {
            // In kiosk mode the window cannot be closed; leaving takes an admin login.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if kiosk {
                    api.prevent_close();
                    let _ = window.emit("kiosk-exit-requested", ());
                }
            }
        })
        .build(tauri::generate_context!());
    Ok(built?.run_return(|_, _| {}))
}
