//! The SQLite store: migrations from empty and from every earlier version, and the audit chain.

use chrono::Utc;
use rusqlite::Connection;
use stator::store::{self, audit, AuditEntry, Store, StoreError, MIGRATIONS};

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        actor: Some(format!("user{i}")),
        role: Some("operator".into()),
        source: "10.0.0.1".into(),
        action: "write".into(),
        target: Some("eco_solar/Setpoint".into()),
        old_value: Some(format!("{i}")),
        new_value: Some(format!("{}", i + 1)),
        result: "ok".into(),
    }
}

#[test]
fn migrations_from_empty_and_every_earlier_version() {
    let n = MIGRATIONS.len();
    for start in 0..=n {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stator.db");
        {
            let mut c = Connection::open(&path).unwrap();
            assert_eq!(store::migrate(&mut c, Some(start)).unwrap(), start as i64);
            if start >= 1 {
                c.execute(
                    "INSERT INTO users (username, password_hash, role, created_at) VALUES ('old', 'h', 'viewer', '2026-01-01T00:00:00.000000Z')",
                    [],
                )
                .unwrap();
            }
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.schema_version().unwrap(),
            n as i64,
            "from version {start}"
        );
        // Every table of the newest schema works, and old data survived.
        s.write_blocking(|tx| {
            audit::append(tx, &entry(0), Utc::now())?;
            let id = store::users::insert(tx, "new", "h", "admin", Utc::now())?;
            store::sessions::insert(tx, "ab", id, "panel", Utc::now(), Utc::now())?;
            Ok(())
        })
        .unwrap();
        let users = s.read_blocking(store::users::list).unwrap();
        assert_eq!(
            users.len(),
            if start >= 1 { 2 } else { 1 },
            "from version {start}"
        );
        // Re-opening is a no-op.
        drop(s);
        assert_eq!(
            Store::open(&path).unwrap().schema_version().unwrap(),
            n as i64
        );
    }
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stator.db");
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("upgrade stator"));
}

#[test]
fn wal_and_foreign_keys_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("x.db")).unwrap();
    let (mode, fk): (String, i64) = s
        .write_blocking(|tx| {
            Ok((
                tx.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                tx.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(fk, 1);
    let err = s
        .write_blocking(|tx| {
            store::sessions::insert(tx, "cd", 4242, "panel", Utc::now(), Utc::now())?;
            Ok(())
        })
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

fn chain(rows: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("stator.db")).unwrap();
    for i in 0..rows {
        s.write_blocking(|tx| audit::append(tx, &entry(i), Utc::now()))
            .unwrap();
    }
    (dir, s)
}

#[test]
fn audit_chain_verifies_and_triggers_forbid_changes() {
    let (_d, s) = chain(5);
    let r = s.read_blocking(audit::verify).unwrap();
    assert_eq!((r.rows, r.first_bad), (5, None));
    let e = s
        .write_blocking(|tx| Ok(tx.execute("UPDATE audit SET result = 'x' WHERE id = 2", [])?))
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    let e = s
        .write_blocking(|tx| Ok(tx.execute("DELETE FROM audit WHERE id = 2", [])?))
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
}

#[test]
fn audit_chain_detects_a_modified_row() {
    let (_d, s) = chain(5);
    s.write_blocking(|tx| {
        tx.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET new_value = '9999' WHERE id = 3;",
        )?;
        Ok(())
    })
    .unwrap();
    let r = s.read_blocking(audit::verify).unwrap();
    let (id, why) = r.first_bad.unwrap();
    assert_eq!(id, 3);
    assert!(why.contains("modified"), "{why}");
}

#[test]
fn audit_chain_detects_a_deleted_row() {
    let (_d, s) = chain(5);
    s.write_blocking(|tx| {
        tx.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 3;")?;
        Ok(())
    })
    .unwrap();
    let (id, why) = s.read_blocking(audit::verify).unwrap().first_bad.unwrap();
    assert_eq!(id, 4);
    assert!(why.contains("missing"), "{why}");

    // Renumbering the following rows to hide the gap breaks the chain too.
    s.write_blocking(|tx| {
        tx.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET id = id - 1 WHERE id > 3;",
        )?;
        Ok(())
    })
    .unwrap();
    let (id, _) = s.read_blocking(audit::verify).unwrap().first_bad.unwrap();
    assert_eq!(id, 3);
}

#[test]
fn audit_chain_detects_a_deleted_last_row() {
    let (_d, s) = chain(4);
    s.write_blocking(|tx| {
        tx.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 4;")?;
        Ok(())
    })
    .unwrap();
    let (id, why) = s.read_blocking(audit::verify).unwrap().first_bad.unwrap();
    assert_eq!(id, 4);
    assert!(why.contains("missing at the end"), "{why}");
}
