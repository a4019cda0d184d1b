//! Unknown usernames, and locked accounts, cost the same time as known ones. In its own test
//! binary so that no sibling test competes for the two cores while it measures.

use std::time::Instant;

use stator::auth::{Auth, AuthError, Principal, Role, Source};
use stator::store::Store;

#[allow(dead_code)]
#[path = "it/support/config.rs"]
mod config;

/// The tests of this binary measure one at a time (none competes for the cores with another).
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_and_known_users_cost_the_same() {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::parks(1).build();
    let auth = Auth::new(Store::open(&dir.path().join("t.db")).unwrap(), &cfg);
    let root = Principal::system("os:test", Source::Cli);
    let pw = "correct horse battery";
    auth.add_user(&root, "anna", pw, Role::Operator, &[])
        .await
        .unwrap();
    // Warm up (dummy hash, connections, caches).
    let _ = auth.login("nobody", "wrong password", Source::Panel).await;
    let _ = auth.login("anna", pw, Source::Panel).await;
    let (mut known, mut unknown, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..9 {
        // Keep "anna" below the lockout threshold.
        if i % 2 == 0 {
            auth.login("anna", pw, Source::Panel).await.unwrap();
        }
        // Alternate the order so that drifting load does not favour one side.
        let mut pair = [0.0; 2];
        for side in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            let name = if side == 0 {
                "anna".to_string()
            } else {
                format!("nobody{i}")
            };
            let t = Instant::now();
            let r = auth.login(&name, "wrong password", Source::Panel).await;
            pair[side] = t.elapsed().as_secs_f64();
            assert_eq!(r.unwrap_err(), AuthError::InvalidCredentials);
        }
        known.push(pair[0]);
        unknown.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    let (k, u, r) = (median(known), median(unknown), median(ratios));
    eprintln!("login failure: known {k:.4}s, unknown {u:.4}s, median ratio {r:.3}");
    assert!(k > 0.010, "a verify must cost real time, got {k}s");
    assert!(
        (r - 1.0).abs() < 0.35,
        "known {k:.4}s vs unknown {u:.4}s (median ratio {r:.3})"
    );
}

#[tokio::test]
async fn a_locked_account_answers_like_a_wrong_password_in_the_same_time() {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config::parks(1).build();
    let auth = Auth::new(Store::open(&dir.path().join("t.db")).unwrap(), &cfg);
    let root = Principal::system("os:test", Source::Cli);
    let pw = "correct horse battery";
    auth.add_user(&root, "anna", pw, Role::Operator, &[])
        .await
        .unwrap();
    let _ = auth.login("nobody", "wrong password", Source::Panel).await;
    // Lock "anna" for remote logins (3 failures from different addresses).
    for i in 0..3 {
        let src = Source::Remote(format!("10.0.1.{i}"));
        let r = auth.login("anna", "wrong password", src).await;
        assert_eq!(r.unwrap_err(), AuthError::InvalidCredentials);
    }
    let (mut locked, mut unknown, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..9 {
        let mut pair = [0.0; 2];
        for side in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            // Fresh addresses, so the per-address limit stays out of the picture.
            let src = Source::Remote(format!("10.0.2.{}", i * 2 + side));
            let name = if side == 0 {
                "anna".to_string()
            } else {
                format!("nobody{i}")
            };
            let t = Instant::now();
            // The right password: a locked account must not tell.
            let r = auth.login(&name, pw, src).await;
            pair[side] = t.elapsed().as_secs_f64();
            assert_eq!(r.unwrap_err(), AuthError::InvalidCredentials);
        }
        locked.push(pair[0]);
        unknown.push(pair[1]);
        ratios.push(pair[1] / pair[0]);
    }
    let (k, u, r) = (median(locked), median(unknown), median(ratios));
    eprintln!("remote refusal: locked {k:.4}s, unknown {u:.4}s, median ratio {r:.3}");
    assert!(k > 0.010, "a locked answer must cost a verify, got {k}s");
    assert!(
        (r - 1.0).abs() < 0.35,
        "locked {k:.4}s vs unknown {u:.4}s (median ratio {r:.3})"
    );
}
