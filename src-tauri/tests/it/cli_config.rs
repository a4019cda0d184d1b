//! The binary's contract for configuration errors: exactly one line on stderr naming the file,
//! the JSON path and the problem, exit code 2, before anything is started or logged.

use std::path::PathBuf;
use std::process::Command;

fn stator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stator"))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_demo_config_in_the_repository_is_valid() {
    let path = repo_root().join("config.json");
    let cfg = stator::config::Config::load(&path).expect("config.json must be valid");
    assert_eq!(cfg.plc_config.len(), 2);
}

#[test]
fn bad_config_gives_one_line_and_exit_2_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let text = std::fs::read_to_string(repo_root().join("config.json"))
        .unwrap()
        .replace("opc.tcp://127.0.0.1:4841", "http://127.0.0.1:4841");
    std::fs::write(&bad, text).unwrap();
    let db = dir.path().join("s.db");
    let cases: Vec<Vec<&str>> = vec![
        vec!["serve", "--config", bad.to_str().unwrap()],
        // Global options are accepted after the subcommand too.
        vec!["--config", bad.to_str().unwrap(), "serve", "--demo"],
        vec![
            "user",
            "list",
            "--config",
            bad.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
    ];
    for args in cases {
        let out = stator().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: exactly one line, got {stderr:?}"
        );
        assert!(
            stderr.contains("bad.json: $.plc_config[1].url:"),
            "{args:?}: names file and path: {stderr}"
        );
        assert!(!db.exists(), "nothing may be created on a bad config");
    }
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = stator()
        .args(["serve", "--config", "/nonexistent/stator.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/stator.json: $: cannot read file"),
        "{stderr}"
    );
}

#[test]
fn unknown_flags_exit_2() {
    let out = stator().args(["serve", "--frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn numbers_too_large_for_a_duration_give_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("config.json")).unwrap())
            .unwrap();
    let cases: [(&str, serde_json::Value, &str); 2] = [
        (
            "broadcast_interval_seconds",
            serde_json::json!(1e300),
            "$.broadcast_interval_seconds:",
        ),
        (
            "auth",
            serde_json::json!({"session_lifetime_hours": 1e300}),
            "$.auth.session_lifetime_hours:",
        ),
    ];
    for (key, value, path) in cases {
        let mut cfg = good.clone();
        cfg[key] = value;
        let file = dir.path().join("huge.json");
        std::fs::write(&file, cfg.to_string()).unwrap();
        let db = dir.path().join("s.db");
        let out = stator()
            .args(["serve", "--config", file.to_str().unwrap(), "--db"])
            .arg(&db)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{key}: {stderr:?}");
        assert!(
            stderr.contains(&format!(
                "huge.json: {path} must be a positive number of at most"
            )),
            "{stderr}"
        );
        assert!(!db.exists(), "nothing may be created on a bad config");
    }
}
