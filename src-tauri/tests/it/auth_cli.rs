//! `stator user …`, `stator audit …` and `stator secret …` end to end through the built binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::parks;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), parks(2).text()).unwrap();
        Env { dir }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("stator.db")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[])
    }

    fn run_env(&self, args: &[&str], stdin: Option<&str>, envs: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stator"));
        cmd.arg("--config")
            .arg(self.dir.path().join("config.json"))
            .arg("--db")
            .arg(self.db())
            .args(args)
            .env("RUST_LOG", "off")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The audit key lives in the secret store: keep it inside this test's directory.
            .env("STATOR_SECRET_BACKEND", "file")
            .env("STATOR_SECRETS_DB", self.dir.path().join("secrets.enc"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        {
            let mut si = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                si.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn user_add_list_and_audit_verify() {
    let e = Env::new();
    let o = e.run(
        &[
            "user",
            "add",
            "anna",
            "--role",
            "operator",
            "--parks",
            "eco_solar,isiada",
            "--password-stdin",
        ],
        Some("correct horse battery\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("created user anna"), "{}", text(&o));

    let o = e.run(&["user", "list"], None);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().find(|l| l.starts_with("anna")).expect(&out);
    assert!(
        line.contains("operator") && line.contains("eco_solar,isiada"),
        "{line}"
    );

    // Usage errors exit 2, runtime errors 1.
    let o = e.run(
        &[
            "user",
            "add",
            "bob",
            "--role",
            "janitor",
            "--password-stdin",
        ],
        Some("long enough pw"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = e.run(
        &[
            "user",
            "add",
            "ANNA",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("long enough pw"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    let o = e.run(
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("short"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = e.run(&["user", "grant", "anna", "nowhere"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no park \"nowhere\""), "{}", text(&o));
    let o = e.run(&["user", "disable", "ghost"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    for args in [
        &["user", "revoke", "anna", "isiada"][..],
        &["user", "role", "anna", "serviceman"],
        &["user", "disable", "anna"],
        &["user", "enable", "anna"],
        &["user", "badge", "add", "anna", "0042"],
        &["user", "badge", "remove", "anna", "0042"],
    ] {
        let o = e.run(args, None);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    let o = e.run(&["user", "pin", "anna", "--pin-stdin"], Some("4711\n"));
    assert!(o.status.success(), "{}", text(&o));
    let o = e.run(
        &["user", "passwd", "anna", "--password-stdin"],
        Some("another good one\n"),
    );
    assert!(o.status.success(), "{}", text(&o));

    let o = e.run(&["audit", "verify"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok: 9 rows");

    // Every command audited as source cli.
    let o = e.run(&["audit", "export"], None);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["source"] == "cli"), "{rows:?}");
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "user_add",
            "park_revoke",
            "user_role",
            "user_disable",
            "user_enable",
            "badge_add",
            "badge_remove",
            "user_pin",
            "user_password"
        ]
    );

    let o = e.run(
        &[
            "audit",
            "export",
            "--csv",
            "--from",
            "2000-01-01",
            "--to",
            "2999-12-31",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.starts_with("id,ts,actor,role,source,action"), "{csv}");
    assert_eq!(csv.lines().count(), 10);
    let o = e.run(&["audit", "export", "--from", "2999-01-01"], None);
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
    let o = e.run(&["audit", "export", "--from", "yesterday"], None);
    assert_eq!(o.status.code(), Some(2));

    // Tamper with the file: verify names the row and exits 1.
    let c = rusqlite::Connection::open(e.db()).unwrap();
    c.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'mallory' WHERE id = 4;",
    )
    .unwrap();
    drop(c);
    let o = e.run(&["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("row 4"), "{}", text(&o));
}

#[test]
fn bad_config_exits_2_with_one_line() {
    let e = Env::new();
    std::fs::write(e.dir.path().join("config.json"), "{ nope").unwrap();
    let o = e.run(&["user", "list"], None);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).lines().count(),
        1,
        "{}",
        text(&o)
    );
}

#[test]
fn secret_set_backend_delete_with_the_file_store() {
    let e = Env::new();
    let store = e.dir.path().join("secrets").join("secrets.db");
    let envs: &[(&str, &Path)] = &[
        ("STATOR_SECRET_BACKEND", Path::new("file")),
        ("STATOR_SECRETS_DB", &store),
    ];
    let o = e.run_env(&["secret", "backend"], None, envs);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("encrypted-file"),
        "{}",
        text(&o)
    );
    let o = e.run_env(
        &["secret", "set", "plc/eco_solar"],
        Some("s3cr3t-plc-pw\n"),
        envs,
    );
    assert!(o.status.success(), "{}", text(&o));
    // Encrypted at rest: the password is nowhere in the files.
    for f in std::fs::read_dir(store.parent().unwrap()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(!bytes.windows(13).any(|w| w == b"s3cr3t-plc-pw"));
    }
    let o = e.run_env(&["secret", "delete", "plc/eco_solar"], None, envs);
    assert!(o.status.success(), "{}", text(&o));
    let o = e.run_env(&["secret", "delete", "plc/eco_solar"], None, envs);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn sql_attacker_without_the_key_is_caught_by_verify_and_csv_is_formula_safe() {
    let e = Env::new();
    let add = |name: &str| {
        let o = e.run(
            &["user", "add", name, "--role", "viewer", "--password-stdin"],
            Some("correct horse battery\n"),
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    for i in 0..4 {
        add(&format!("u{i}"));
    }
    let o = e.run(&["audit", "verify"], None);
    assert!(o.status.success(), "{}", text(&o));
    // CSV: an actor that looks like a formula is neutralised.
    let c = rusqlite::Connection::open(e.db()).unwrap();
    let o = e.run(&["audit", "export", "--csv"], None);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(",="));
    // The attack: drop the triggers, delete the tail, fix sqlite_sequence, forge a row and
    // recompute plain SHA-256 hashes (no key).
    c.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; \
         DELETE FROM audit WHERE id > 2; UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit'; \
         UPDATE audit SET actor = '=HYPERLINK(\"http://evil\",\"x\")' WHERE id = 2;",
    )
    .unwrap();
    let rows = stator::store::audit::query(&c, &Default::default(), false).unwrap();
    let mut prev = stator::store::audit::GENESIS.to_string();
    for r in rows {
        let h = stator::store::audit::row_hash(&prev, r.id, &r.ts, &r.entry());
        c.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
            rusqlite::params![r.id, prev, h],
        )
        .unwrap();
        prev = h;
    }
    drop(c);
    let o = e.run(&["audit", "verify"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("audit key"), "{}", text(&o));
    let o = e.run(&["audit", "export", "--csv"], None);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil\"\""), "{csv}");
}
