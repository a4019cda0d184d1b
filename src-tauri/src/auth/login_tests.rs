//! The login path against a real SQLite file in a temporary directory, with an injected clock.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

use super::super::{Auth, AuthError, Clock, Principal, Role, Source};
use crate::code::ErrorCode;
use crate::config::Config;
use crate::store::{self, login_failures, AuditFilter, Store};

const PW: &str = "correct horse battery";

struct Env {
    _dir: tempfile::TempDir,
    auth: Auth,
    clock: Arc<Mutex<DateTime<Utc>>>,
    root: Principal,
}

impl Env {
    async fn new() -> Env {
        let cfg = Config::parse(
            Path::new("config.json"),
            r#"{
              "plc_config": [ { "id": "p1", "url": "opc.tcp://127.0.0.1:4840", "name": "P1" } ],
              "common_root_node_id": "ns=4;i=2",
              "broadcast_interval_seconds": 2.0,
              "plc_reconnect_delay_minutes": 10,
              "auth": { "source_failures_per_minute": 4, "lockout_attempts": 3, "lockout_minutes": 5 }
            }"#,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("stator.db")).unwrap();
        let clock = Arc::new(Mutex::new(Utc::now()));
        let c = clock.clone();
        let f: Clock = Arc::new(move || *c.lock());
        let env = Env {
            auth: Auth::with_clock(store, &cfg, f),
            _dir: dir,
            clock,
            root: Principal::system("os:test", Source::Cli),
        };
        env.auth
            .add_user(&env.root, "anna", PW, Role::Operator, &[])
            .await
            .unwrap();
        env
    }

    fn advance(&self, d: Duration) {
        *self.clock.lock() += d;
    }

    async fn login(&self, user: &str, pw: &str, source: Source) -> Result<(), AuthError> {
        self.auth.login(user, pw, source).await.map(|_| ())
    }

    /// Audit rows of `action` with this result, oldest first.
    async fn audited(&self, action: &str, result: &str) -> usize {
        let rows = self
            .auth
            .audit_page(
                &self.root,
                AuditFilter {
                    action: Some(action.into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        rows.iter().filter(|r| r.result == result).count()
    }

    async fn failures(&self, scope: &'static str) -> Option<login_failures::Failures> {
        self.auth
            .store()
            .read(move |c| {
                let id = store::users::require(c, "anna")?.id;
                login_failures::get(c, id, scope)
            })
            .await
            .unwrap()
    }
}

fn remote(a: &str) -> Source {
    Source::Remote(a.into())
}

#[tokio::test]
async fn success_opens_a_session_and_clears_the_count() {
    let e = Env::new().await;
    let wrong = e.login("anna", "wrong password", Source::Panel).await;
    assert_eq!(wrong, Err(AuthError::InvalidCredentials));
    assert_eq!(e.failures("local").await.map(|f| f.attempts), Some(1));
    let ok = e.auth.login(" Anna ", PW, Source::Panel).await.unwrap();
    assert_eq!(ok.principal.username, "anna");
    assert_eq!(e.failures("local").await, None);
    assert_eq!(e.audited("login", "ok").await, 1);
    assert_eq!(e.audited("login", "invalid_credentials").await, 1);
}

#[tokio::test]
async fn unknown_users_and_disabled_accounts_answer_like_a_wrong_password() {
    let e = Env::new().await;
    for name in ["nobody", "not a valid name!"] {
        assert_eq!(
            e.login(name, PW, remote("10.0.0.1")).await,
            Err(AuthError::InvalidCredentials)
        );
    }
    e.auth.set_active(&e.root, "anna", false).await.unwrap();
    assert_eq!(
        e.login("anna", PW, remote("10.0.0.1")).await,
        Err(AuthError::InvalidCredentials)
    );
    assert_eq!(e.audited("login", "disabled").await, 1);
}

#[tokio::test]
async fn a_locked_account_tells_the_panel_but_not_the_network() {
    let e = Env::new().await;
    for _ in 0..3 {
        let r = e.login("anna", "wrong password", Source::Panel).await;
        assert_eq!(r, Err(AuthError::InvalidCredentials));
    }
    assert_eq!(
        e.login("anna", PW, Source::Panel).await,
        Err(AuthError::Locked { retry_after_s: 300 })
    );
    // The remote counter is separate: the panel's lock does not lock remote logins…
    e.login("anna", PW, remote("10.0.0.1")).await.unwrap();
    // …and remote failures do not lock the panel.
    e.advance(Duration::seconds(301));
    for _ in 0..3 {
        let r = e.login("anna", "wrong password", remote("10.0.0.2")).await;
        assert_eq!(r, Err(AuthError::InvalidCredentials));
    }
    // Locked for the network, answered exactly like a wrong password even when right.
    assert_eq!(
        e.login("anna", PW, remote("10.0.0.3")).await,
        Err(AuthError::InvalidCredentials)
    );
    assert!(e.failures("remote").await.unwrap().locked_until.is_some());
    e.login("anna", PW, Source::Panel).await.unwrap();
    assert_eq!(e.audited("lockout", "ok").await, 2);
}

#[tokio::test]
async fn failure_counts_decay_after_the_window() {
    let e = Env::new().await;
    for _ in 0..2 {
        let _ = e.login("anna", "wrong password", Source::Panel).await;
    }
    e.advance(Duration::minutes(5));
    for _ in 0..2 {
        let _ = e.login("anna", "wrong password", Source::Panel).await;
    }
    assert_eq!(e.failures("local").await.map(|f| f.attempts), Some(2));
    e.login("anna", PW, Source::Panel).await.unwrap();
}

#[tokio::test]
async fn a_source_over_its_limit_is_rate_limited_before_any_check() {
    let e = Env::new().await;
    for i in 0..4 {
        let r = e.login(&format!("ghost{i}"), "x", remote("10.0.0.9")).await;
        assert_eq!(r, Err(AuthError::InvalidCredentials));
    }
    match e.login("anna", PW, remote("10.0.0.9")).await {
        Err(AuthError::RateLimited { retry_after_s }) => assert!((1..=60).contains(&retry_after_s)),
        other => panic!("{other:?}"),
    }
    // Successes give their reservation back: another address logs in repeatedly.
    for _ in 0..6 {
        e.login("anna", PW, remote("10.0.0.8")).await.unwrap();
    }
}

#[tokio::test]
async fn a_lock_set_meanwhile_wins_over_a_success() {
    let e = Env::new().await;
    let user = e
        .auth
        .store()
        .read(|c| store::users::require(c, "anna"))
        .await
        .unwrap();
    // The password was verified; before the session opens, a concurrent failure locks.
    let now = *e.clock.lock();
    let lock = login_failures::Failures {
        attempts: 0,
        window_start: now,
        locked_until: Some(now + Duration::minutes(5)),
    };
    let id = user.id;
    e.auth
        .store()
        .write(move |tx| login_failures::put(tx, id, "remote", &lock))
        .await
        .unwrap();
    let r = e
        .auth
        .open_session(user, remote("10.0.0.1"), "password", now)
        .await;
    assert_eq!(r.unwrap_err(), AuthError::InvalidCredentials);
    let stays = e.failures("remote").await.unwrap();
    assert_eq!(
        stays.locked_until.map(|t| t.timestamp_micros()),
        lock.locked_until.map(|t| t.timestamp_micros()),
        "the lock stays"
    );
}

#[tokio::test]
async fn pin_and_badge_logins() {
    let e = Env::new().await;
    e.auth.set_pin(&e.root, "anna", "4711").await.unwrap();
    e.auth.add_badge(&e.root, "anna", "0042").await.unwrap();
    e.auth
        .login_pin("anna", "4711", Source::Panel)
        .await
        .unwrap();
    assert_eq!(
        e.auth
            .login_pin("anna", "4712", Source::Panel)
            .await
            .unwrap_err(),
        AuthError::InvalidCredentials
    );
    assert_eq!(
        e.auth
            .login_pin("anna", "4711", remote("10.0.0.1"))
            .await
            .unwrap_err()
            .code(),
        "forbidden"
    );
    e.auth.login_badge("0042\n", Source::Panel).await.unwrap();
    assert_eq!(
        e.auth.login_badge("0043", Source::Panel).await.unwrap_err(),
        AuthError::InvalidCredentials
    );
    // PIN failures count towards the panel lock, which also holds for badges.
    for _ in 0..3 {
        let _ = e.auth.login_pin("anna", "0000", Source::Panel).await;
    }
    assert!(matches!(
        e.auth.login_badge("0042", Source::Panel).await,
        Err(AuthError::Locked { .. })
    ));
}

#[tokio::test]
async fn own_password_change_needs_the_current_password() {
    let e = Env::new().await;
    let me = e
        .auth
        .login("anna", PW, remote("10.0.0.1"))
        .await
        .unwrap()
        .principal;
    let new = "another good password";
    let err = e.auth.set_password(&me, "anna", new).await.unwrap_err();
    assert_eq!(err.code(), "invalid", "{err}");
    let err = e
        .auth
        .change_password(&me, "anna", new, Some("wrong password"))
        .await
        .unwrap_err();
    assert_eq!(err, AuthError::InvalidCredentials);
    assert_eq!(
        e.failures("remote").await.map(|f| f.attempts),
        Some(1),
        "counted like a login"
    );
    e.auth
        .change_password(&me, "anna", new, Some(PW))
        .await
        .unwrap();
    e.login("anna", new, Source::Panel).await.unwrap();
    // An administrator's reset of someone else needs no current password.
    e.auth.set_password(&e.root, "anna", PW).await.unwrap();
    e.login("anna", PW, Source::Panel).await.unwrap();
}
