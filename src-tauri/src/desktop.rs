//! The Tauri window (feature `desktop`): thin commands over the one dispatcher.

use crate::cli::GlobalArgs;

/// The single command the window may call (see capabilities/default.json).
#[tauri::command]
async fn api(request: serde_json::Value) -> Result<serde_json::Value, serde_json::Value> {
    let _ = request;
    Err(serde_json::json!({"code": "internal", "message": "not implemented yet"}))
}

pub fn run(global: &GlobalArgs, _demo: bool, kiosk: bool) -> i32 {
    let (cfg, _path) = match crate::cli::load_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::logging::init(&cfg.logging.level);
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![api])
        .setup(move |app| {
            tauri::WebviewWindowBuilder::new(
                app,
                "main",
                tauri::WebviewUrl::App("index.html".into()),
            )
            .title("Stator")
            .inner_size(1280.0, 400.0)
            .fullscreen(kiosk)
            .decorations(!kiosk)
            .build()?;
            Ok(())
        })
        .run(tauri::generate_context!());
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("desktop window failed: {e}");
            1
        }
    }
}
