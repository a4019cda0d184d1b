//! Auth figures for docs/performance.md ("Auth"):
//! `cargo bench --no-default-features --bench auth`
//!
//! - argon2id hash and verify time with the chosen parameters (the login cost);
//! - a full `login` (verify + session insert + audit row) against a real SQLite file;
//! - `check` from the session cache (goal < 10 µs) and `peek`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stator::auth::{password, Auth, Permission, Principal, Role, Source};
use stator::store::Store;

mod support;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let n = v.len();
    let p = |q: f64| v[((n as f64 - 1.0) * q).round() as usize];
    let fmt = |d: Duration| {
        if d < Duration::from_micros(100) {
            format!("{:.2} µs", d.as_secs_f64() * 1e6)
        } else {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        }
    };
    println!(
        "{name:<40} n={n:<7} p50={:<10} p90={:<10} max={}",
        fmt(p(0.5)),
        fmt(p(0.9)),
        fmt(v[n - 1])
    );
}

fn main() {
    println!(
        "argon2id m={} KiB t={} p={}",
        password::M_COST_KIB,
        password::T_COST,
        password::P_COST
    );
    let mut hashes = Vec::new();
    let mut h = String::new();
    for _ in 0..5 {
        let t = Instant::now();
        h = password::hash_secret("correct horse battery").unwrap();
        hashes.push(t.elapsed());
    }
    stats("argon2 hash", hashes);
    let mut verifies = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        assert!(password::verify_secret(&h, "correct horse battery"));
        verifies.push(t.elapsed());
    }
    stats("argon2 verify", verifies);
    // Reference: argon2 0.6 defaults (m=19 MiB, t=2), measured in the same run, so the figures
    // above can be read against the machine's load at the time.
    let reference = argon2::Argon2::default();
    let rh: argon2::PasswordHash =
        argon2::PasswordHasher::hash_password(&reference, b"correct horse battery").unwrap();
    let rh = rh.to_string();
    let mut refs = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        assert!(argon2::PasswordVerifier::verify_password(
            &reference,
            b"correct horse battery",
            rh.as_str()
        )
        .is_ok());
        refs.push(t.elapsed());
    }
    stats("argon2 verify, crate defaults (reference)", refs);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = support::config::parks(2).build();
        let auth = Auth::new(Store::open(&dir.path().join("bench.db")).unwrap(), &cfg);
        let root = Principal::system("bench", Source::Cli);
        auth.add_user(
            &root,
            "anna",
            "correct horse battery",
            Role::Operator,
            &["eco_solar".into()],
        )
        .await
        .unwrap();
        let mut logins = Vec::new();
        let mut token = String::new();
        for _ in 0..10 {
            let t = Instant::now();
            token = auth
                .login("anna", "correct horse battery", Source::Panel)
                .await
                .unwrap()
                .token;
            logins.push(t.elapsed());
        }
        stats("login (verify + session + audit)", logins);
        let mut fails = Vec::new();
        for i in 0..6 {
            let t = Instant::now();
            let _ = auth
                .login(&format!("ghost{i}"), "wrong password", Source::Panel)
                .await;
            fails.push(t.elapsed());
        }
        stats("login, unknown user (dummy verify)", fails);

        let auth = Arc::new(auth);
        // Warm the cache.
        auth.check(&token, Permission::WriteTags, Some("eco_solar"))
            .await
            .unwrap();
        let mut checks = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let t = Instant::now();
            let p = auth
                .check(&token, Permission::WriteTags, Some("eco_solar"))
                .await;
            checks.push(t.elapsed());
            assert!(p.is_ok());
        }
        stats("check (cached session)", checks);
        let mut peeks = Vec::with_capacity(100_000);
        for _ in 0..100_000 {
            let t = Instant::now();
            let p = auth.peek(&token).await;
            peeks.push(t.elapsed());
            assert!(p.is_ok());
        }
        stats("peek (cached session)", peeks);
        let mut bad = Vec::with_capacity(10_000);
        for _ in 0..10_000 {
            let t = Instant::now();
            let p = auth
                .peek("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
                .await;
            bad.push(t.elapsed());
            assert!(p.is_err());
        }
        stats("peek (unknown token, database lookup)", bad);
    });
}
