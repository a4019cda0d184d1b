//! Secrets for real: the persistent encrypted file store that headless panels and CI use, and
//! the automatic backend choice of the built binary in this environment.

use std::process::{Command, Stdio};

use stator::auth::secrets::{SecretError, Secrets};

#[test]
fn file_store_set_get_delete_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state").join("secrets.db");
    let key = dir.path().join("state").join("secrets.key");
    let s = Secrets::file(&db, &key, true).unwrap();
    assert!(
        s.backend_name().starts_with("encrypted-file"),
        "{}",
        s.backend_name()
    );
    assert_eq!(s.get("plc/eco_solar").unwrap(), None);
    s.set("plc/eco_solar", "pa55-w0rd").unwrap();
    s.set("plc/isiada", "other").unwrap();
    assert_eq!(
        s.get("plc/eco_solar").unwrap().as_deref(),
        Some("pa55-w0rd")
    );
    s.set("plc/eco_solar", "changed-pw").unwrap();
    drop(s);

    // A new instance (as after a reboot) reads what was stored.
    let s = Secrets::file(&db, &key, false).unwrap();
    assert_eq!(
        s.get("plc/eco_solar").unwrap().as_deref(),
        Some("changed-pw")
    );
    assert!(s.delete("plc/eco_solar").unwrap());
    assert!(!s.delete("plc/eco_solar").unwrap());
    assert_eq!(s.get("plc/eco_solar").unwrap(), None);
    assert_eq!(s.get("plc/isiada").unwrap().as_deref(), Some("other"));
    assert!(matches!(s.get("").unwrap_err(), SecretError::InvalidKey(_)));
    drop(s);

    // The key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // Nothing in clear on disk.
    for f in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"other"));
    }

    // A lost key file is an error, never a new empty (or plaintext) store.
    let moved = dir.path().join("moved.key");
    std::fs::rename(&key, &moved).unwrap();
    let err = Secrets::file(&db, &key, true).unwrap_err().to_string();
    assert!(err.contains("key file") && err.contains("missing"), "{err}");

    // A wrong key cannot read the store.
    let wrong = dir.path().join("wrong.key");
    std::fs::write(&wrong, "11".repeat(32)).unwrap();
    let r = Secrets::file(&db, &wrong, false).and_then(|s| s.get("plc/isiada"));
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn the_binary_picks_a_working_backend_here() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["secret", "backend"])
        .env("STATOR_SECRETS_DB", dir.path().join("secrets.db"))
        .env_remove("STATOR_SECRET_BACKEND")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("secret-service") || text.starts_with("encrypted-file"),
        "{text}"
    );
    // A forced unknown backend is a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_stator"))
        .args(["secret", "backend"])
        .env("STATOR_SECRET_BACKEND", "plaintext")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not one of secret-service, file"));
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The desktop path for real: a private D-Bus session with gnome-keyring-daemon. Runs where those
/// are installed (`apt-get install dbus gnome-keyring`); elsewhere it says so and passes.
#[test]
fn secret_service_via_gnome_keyring_when_installed() {
    if !(have("dbus-run-session") && have("gnome-keyring-daemon") && have("timeout")) {
        eprintln!("skipped: dbus-run-session / gnome-keyring-daemon not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let script = r#"
        eval "$(printf '\n' | gnome-keyring-daemon --unlock --components=secrets 2>/dev/null)"
        i=0; until "$STATOR" secret backend 2>/dev/null | grep -q secret-service; do
            i=$((i+1)); [ $i -gt 50 ] && { echo "no secret service"; exit 3; }; sleep 0.1; done
        echo "backend=$("$STATOR" secret backend)"
        printf 'pw-in-ss\n' | "$STATOR" secret set plc/eco_solar || exit 4
        "$STATOR" secret delete plc/eco_solar || exit 5
        "$STATOR" secret delete plc/eco_solar && exit 6
        exit 0
    "#;
    let out = Command::new("timeout")
        .args(["60", "dbus-run-session", "--", "sh", "-c", script])
        .env("STATOR", env!("CARGO_BIN_EXE_stator"))
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env(
            "STATOR_SECRETS_DB",
            home.path().join("file").join("secrets.db"),
        )
        .env_remove("STATOR_SECRET_BACKEND")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("backend=secret-service"), "{text}");
    // It went to the Secret Service, not to the file store.
    assert!(!home.path().join("file").exists(), "{text}");
}
