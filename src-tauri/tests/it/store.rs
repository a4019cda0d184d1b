//! The SQLite store: migrations from empty and from every earlier version, and the audit chain.

use chrono::Utc;
use rusqlite::Connection;
use stator::store::{self, audit, AuditEntry, AuditKey, Store, StoreError, MIGRATIONS};

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
    let s = chain_at(dir.path(), rows);
    (dir, s)
}

/// Runs `sql` as someone with direct access to the file would (dropping the guard triggers).
fn tamper(s: &Store, sql: &str) {
    s.write_blocking(|tx| Ok(tx.execute_batch(sql)?)).unwrap();
}

/// The first row the unkeyed verify rejects, and why.
fn first_bad(s: &Store) -> (i64, String) {
    s.read_blocking(|c| audit::verify(c, None, None))
        .unwrap()
        .first_bad
        .unwrap()
}

#[test]
fn audit_chain_verifies_and_triggers_forbid_changes() {
    let (_d, s) = chain(5);
    let r = s.read_blocking(|c| audit::verify(c, None, None)).unwrap();
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
    tamper(
        &s,
        "DROP TRIGGER audit_no_update; UPDATE audit SET new_value = '9999' WHERE id = 3;",
    );
    let r = s.read_blocking(|c| audit::verify(c, None, None)).unwrap();
    let (id, why) = r.first_bad.unwrap();
    assert_eq!(id, 3);
    assert!(why.contains("modified"), "{why}");
}

#[test]
fn audit_chain_detects_a_deleted_row() {
    let (_d, s) = chain(5);
    tamper(
        &s,
        "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 3;",
    );
    let (id, why) = first_bad(&s);
    assert_eq!(id, 4);
    assert!(why.contains("missing"), "{why}");

    // Renumbering the following rows to hide the gap breaks the chain too.
    tamper(
        &s,
        "DROP TRIGGER audit_no_update; UPDATE audit SET id = id - 1 WHERE id > 3;",
    );
    let (id, _) = first_bad(&s);
    assert_eq!(id, 3);
}

#[test]
fn audit_chain_detects_a_deleted_last_row() {
    let (_d, s) = chain(4);
    tamper(
        &s,
        "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id = 4;",
    );
    let (id, why) = first_bad(&s);
    assert_eq!(id, 4);
    assert!(why.contains("missing at the end"), "{why}");
}

#[test]
fn audit_time_follows_id_order_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stator.db");
    // Two handles = two writer connections, like the server and the CLI side by side; each
    // thread reads the clock before waiting for the write lock.
    let stores = [Store::open(&path).unwrap(), Store::open(&path).unwrap()];
    std::thread::scope(|sc| {
        for t in 0..6 {
            let s = stores[t % 2].clone();
            sc.spawn(move || {
                for i in 0..40 {
                    let now = Utc::now();
                    s.write_blocking(|tx| audit::append(tx, &entry(t * 100 + i), now))
                        .unwrap();
                }
            });
        }
    });
    // A writer whose clock read is older than the newest row still gets a time not before it.
    let old = Utc::now() - chrono::Duration::hours(1);
    stores[0]
        .write_blocking(|tx| audit::append(tx, &entry(999), old))
        .unwrap();
    let rows = stores[0]
        .read_blocking(|c| audit::query(c, &Default::default(), false))
        .unwrap();
    assert_eq!(rows.len(), 241);
    for w in rows.windows(2) {
        assert!(w[0].id < w[1].id && w[0].ts <= w[1].ts, "{w:?}");
    }
    let r = stores[0]
        .read_blocking(|c| audit::verify(c, None, None))
        .unwrap();
    assert_eq!((r.rows, r.first_bad), (241, None));
}

fn keyed(dir: &std::path::Path, key: &AuditKey, rows: usize) -> Store {
    let s = Store::open_keyed(&dir.join("stator.db"), key).unwrap();
    for i in 0..rows {
        s.write_blocking(|tx| audit::append(tx, &entry(i), Utc::now()))
            .unwrap();
    }
    s
}

#[test]
fn keyed_chain_continues_an_unkeyed_one_and_needs_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate();
    drop(chain_at(dir.path(), 3));
    let s = keyed(dir.path(), &key, 4);
    assert_eq!(
        s.read_blocking(audit::keyed_from).unwrap(),
        Some(4),
        "rows 1..3 stay plain SHA-256"
    );
    let r = s.verify_audit(Some(&key)).unwrap();
    assert_eq!((r.rows, r.first_bad.clone()), (7, None), "{r:?}");
    // The wrong key or none: the keyed part does not verify.
    let r = s.verify_audit(Some(&AuditKey::generate())).unwrap();
    assert_eq!(r.first_bad.unwrap().0, 4);
    let r = s.verify_audit(None).unwrap();
    assert!(r.first_bad.unwrap().1.contains("audit key"));
    drop(s);
    // Appending without the key fails closed.
    let plain = Store::open(&dir.path().join("stator.db")).unwrap();
    let e = plain
        .write_blocking(|tx| audit::append(tx, &entry(9), Utc::now()))
        .unwrap_err();
    assert!(e.to_string().contains("keyed"), "{e}");
}

fn chain_at(dir: &std::path::Path, rows: usize) -> Store {
    let s = Store::open(&dir.join("stator.db")).unwrap();
    for i in 0..rows {
        s.write_blocking(|tx| audit::append(tx, &entry(i), Utc::now()))
            .unwrap();
    }
    s
}

#[test]
fn anchors_are_written_every_n_rows_and_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate();
    let n = audit::ANCHOR_EVERY_ROWS as usize;
    let s = keyed(dir.path(), &key, n + 5);
    let path = audit::anchor_path(&dir.path().join("stator.db"));
    let a = audit::read_anchors(&path).unwrap().unwrap();
    assert_eq!(a.len(), 2);
    // A new database anchors its first row at once, then every n rows.
    assert_eq!((a[0].head_id, a[0].count, a[0].keyed_from), (1, 1, Some(1)));
    assert_eq!(
        (a[1].head_id, a[1].count, a[1].keyed_from),
        (n as i64 + 1, n as i64 + 1, Some(1))
    );
    drop(s);
    let a = audit::read_anchors(&path).unwrap().unwrap();
    assert_eq!(a.len(), 3, "closing the store anchors the rest");
    assert_eq!(a[2].head_id, n as i64 + 5);
    let s = Store::open(&dir.path().join("stator.db")).unwrap();
    let r = s.verify_audit(Some(&key)).unwrap();
    assert_eq!((r.first_bad, r.anchors), (None, 3));
}

/// A young database (a few rows, minutes old, still open) verifies as intact: its first row was
/// anchored at once. Deleting the anchor file of a trail with rows is still reported.
#[test]
fn a_young_database_verifies_and_a_deleted_anchor_file_is_still_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate();
    let s = keyed(dir.path(), &key, 3);
    let r = s.verify_audit(Some(&key)).unwrap();
    assert_eq!((r.first_bad, r.anchors), (None, 1));
    drop(s);
    std::fs::remove_file(audit::anchor_path(&dir.path().join("stator.db"))).unwrap();
    let s = Store::open_keyed(&dir.path().join("stator.db"), &key).unwrap();
    s.write_blocking(|tx| audit::append(tx, &entry(9), Utc::now()))
        .unwrap();
    let r = s.verify_audit(Some(&key)).unwrap();
    assert!(
        r.first_bad.is_some(),
        "a trail with rows and no anchor file"
    );
}

#[test]
fn a_key_holder_rewriting_history_below_an_anchor_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::generate();
    drop(keyed(dir.path(), &key, 12)); // anchored at row 12 on close
    let c = Connection::open(dir.path().join("stator.db")).unwrap();
    c.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    // With the key: change row 5 and recompute every later hash correctly.
    c.execute("UPDATE audit SET new_value = 'forged' WHERE id = 5", [])
        .unwrap();
    rehash(&c, Some(&key));
    let s = Store::open(&dir.path().join("stator.db")).unwrap();
    let (id, why) = s.verify_audit(Some(&key)).unwrap().first_bad.unwrap();
    assert_eq!(id, 12, "{why}");
    assert!(why.contains("anchor") && why.contains("rewritten"), "{why}");
    // Also cut the tail below the anchor and fix sqlite_sequence.
    c.execute("DELETE FROM audit WHERE id > 8", []).unwrap();
    c.execute(
        "UPDATE sqlite_sequence SET seq = 8 WHERE name = 'audit'",
        [],
    )
    .unwrap();
    rehash(&c, Some(&key));
    let (id, why) = s.verify_audit(Some(&key)).unwrap().first_bad.unwrap();
    assert_eq!(id, 9, "{why}");
    assert!(why.contains("anchor") && why.contains("deleted"), "{why}");
}

/// Recomputes every hash of the chain as an attacker would: plain SHA-256 without the key, or
/// with it.
fn rehash(c: &Connection, key: Option<&AuditKey>) {
    let rows = audit::query(c, &Default::default(), false).unwrap();
    let mut prev = audit::GENESIS.to_string();
    for r in rows {
        let h = match key {
            Some(k) => audit::row_mac(k, &prev, r.id, &r.ts, &r.entry()),
            None => audit::row_hash(&prev, r.id, &r.ts, &r.entry()),
        };
        c.execute(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE id = ?1",
            rusqlite::params![r.id, prev, h],
        )
        .unwrap();
        prev = h;
    }
}

#[test]
fn pruning_drops_old_ended_sessions_and_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("stator.db")).unwrap();
    let now = Utc::now();
    let d = chrono::Duration::days;
    s.write_blocking(|tx| {
        let u = store::users::insert(tx, "anna", "h", "viewer", now - d(100))?;
        // (token, created, expires, revoked)
        let old_expired = store::sessions::insert(tx, "a", u, "panel", now - d(60), now - d(59))?;
        let old_revoked = store::sessions::insert(tx, "b", u, "panel", now - d(60), now + d(9))?;
        store::sessions::revoke(tx, old_revoked, "logout", now - d(40))?;
        store::sessions::insert(tx, "c", u, "panel", now - d(3), now - d(2))?; // recent
        store::sessions::insert(tx, "d", u, "panel", now, now + d(1))?; // live
        let _ = old_expired;
        store::sessions::record_change(tx, u, now - d(3))?;
        store::sessions::record_change(tx, u, now)?;
        audit::append(tx, &entry(1), now - d(400))?;
        Ok(())
    })
    .unwrap();
    let p = s.prune_blocking(now).unwrap();
    assert_eq!((p.sessions, p.user_changes), (2, 1));
    let left: Vec<String> = s
        .read_blocking(|c| {
            let mut st = c.prepare("SELECT token_sha256 FROM sessions ORDER BY id")?;
            let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(left, ["c", "d"]);
    let last = s.read_blocking(store::sessions::last_change).unwrap();
    assert_eq!(
        s.read_blocking(|c| store::sessions::changes_since(c, 0))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(last, 2, "ids keep growing after pruning");
    assert_eq!(
        s.read_blocking(|c| audit::verify(c, None, None))
            .unwrap()
            .rows,
        1
    );
    assert_eq!(s.prune_blocking(now).unwrap(), Default::default());
}
