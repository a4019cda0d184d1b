//! Build script: with the `desktop` feature, generates Tauri's context and restricts the window's
//! capabilities to Stator's own command (`api`).

fn main() {
    #[cfg(feature = "desktop")]
    {
        let attrs = tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["api"]));
        tauri_build::try_build(attrs).expect("tauri build script failed");
    }
}
