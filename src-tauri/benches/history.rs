//! Historian figures (docs/performance.md, "History"): ingest rate, bytes per sample, trend
//! queries, PNG drawing. A plain binary (`harness = false`) that prints one line per figure.
//!
//! `cargo bench --no-default-features --bench history` (release). Data is shaped like the
//! simulator's: Float process values that wander a little each second, counters, booleans.

use std::sync::Arc;
use std::time::Instant;

use stator::config::HistoryConfig;
use stator::history::{chart, Historian, Kind, Rec, Val};

fn cfg() -> HistoryConfig {
    HistoryConfig {
        retention_days: 60.0,
        max_disk_mb: 100_000.0,
        flush_seconds: 1.0,
        ..HistoryConfig::default()
    }
}

/// A simulator-like value of tag `i` at second `s`.
fn value(i: usize, s: i64) -> (Kind, f64) {
    match i % 10 {
        // Booleans that flip now and then.
        0 => (
            Kind::Bool,
            f64::from(u8::from((s / 97 + i as i64) % 2 == 0)),
        ),
        // Integer counters.
        1 | 2 => (Kind::Number, (s / 5 + i as i64) as f64),
        // Float process values: a slow wave plus small noise, as f32 like an S7 REAL.
        _ => {
            let x = (s as f64 / 600.0 + i as f64).sin() * 50.0 + 500.0;
            let noise = ((s as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 10_000.0;
            (Kind::Number, f64::from((x + noise) as f32))
        }
    }
}

/// Feeds `tags` tags at 1 Hz for `seconds`, ending now; returns samples pushed and the time.
fn feed(h: &Historian, names: &[Arc<str>], seconds: i64, start: i64) -> (u64, f64) {
    let t0 = Instant::now();
    let mut n = 0u64;
    let mut batch: Vec<Rec> = Vec::with_capacity(4096);
    for s in 0..seconds {
        for (i, name) in names.iter().enumerate() {
            let (kind, v) = value(i, s);
            batch.push(Rec {
                series: name.clone(),
                kind,
                t: start + s * 1000 + (s * 7 % 3),
                v: Val::Num(v),
                q: 0,
            });
        }
        if batch.len() >= 2000 || s + 1 == seconds {
            n += batch.len() as u64;
            while h.stats().queued > 200_000 {
                std::thread::yield_now();
            }
            assert!(h.push(std::mem::take(&mut batch)), "queue full");
        }
    }
    h.flush_blocking().unwrap();
    (n, t0.elapsed().as_secs_f64())
}

fn names(prefix: &str, n: usize) -> Vec<Arc<str>> {
    (0..n)
        .map(|i| Arc::from(format!("{prefix}/Tag_{i}")))
        .collect()
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let scale: i64 = std::env::var("HISTORY_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);

    // Ingest + storage: 2,000 tags at 1 Hz for 10 minutes (1.2 M samples).
    let h = Historian::open(&dir.path().join("ingest.db"), &cfg()).unwrap();
    let tags = names("park", 2000);
    let secs = 600 / scale;
    let (n, t) = feed(&h, &tags, secs, now - secs * 1000);
    println!(
        "ingest: {n} samples in {t:.2} s = {:.0} samples/s",
        n as f64 / t
    );
    let (stored, block_bytes, used) = h.storage_blocking().unwrap();
    let per = used as f64 / stored as f64;
    println!(
        "storage: {stored} samples, {:.2} B/sample in blocks, {per:.2} B/sample on disk; \
         one day of 2,000 tags at 1 Hz ≈ {:.0} MB",
        block_bytes as f64 / stored as f64,
        per * 2000.0 * 86_400.0 / 1e6
    );

    // Queries: one tag at 1 s for 24 h and for 30 days; 4 pens x 24 h.
    let q = Historian::open(&dir.path().join("query.db"), &cfg()).unwrap();
    let day = 86_400 / scale;
    let pens = names("q", 4);
    feed(&q, &pens, day, now - day * 1000);
    let long = names("month", 1);
    let month = 30 * 86_400 / scale;
    feed(&q, &long, month, now - month * 1000);
    let time = |tags: &[Arc<str>], span: i64| {
        let names: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
        let t = Instant::now();
        let r = q
            .query_blocking(&names, now - span * 1000, now, 1280)
            .unwrap();
        let d = t.elapsed();
        assert!(matches!(r[0].points, stator::history::Points::Buckets(_)));
        (d, r)
    };
    let (d, _) = time(&pens[..1], day);
    println!(
        "query: 24 h of one tag at 1 s ({day} samples) -> 1,280 buckets in {:.1} ms",
        ms(d)
    );
    let (d, _) = time(&long, month);
    println!(
        "query: 30 d of one tag at 1 s ({month} samples) -> 1,280 buckets in {:.1} ms",
        ms(d)
    );
    let (d, four) = time(&pens, day);
    println!(
        "query: 4 pens x 24 h -> 1,280 buckets each in {:.1} ms",
        ms(d)
    );

    // PNG 1280 x 400 with 4 pens.
    let drawn: Vec<chart::Pen<'_>> = four
        .iter()
        .map(|s| chart::Pen {
            series: s,
            label: format!("{} [kW]", s.tag),
            // A range and two alarm limits per pen, as a configured trend screen draws them.
            limits: vec![
                chart::Limit {
                    value: 0.0,
                    label: String::new(),
                    priority: None,
                },
                chart::Limit {
                    value: 950.0,
                    label: "HH 950".into(),
                    priority: Some(stator::config::Priority::Urgent),
                },
                chart::Limit {
                    value: 900.0,
                    label: "H 900".into(),
                    priority: Some(stator::config::Priority::Medium),
                },
            ],
        })
        .collect();
    let _ = chart::png(&drawn, now - day * 1000, now, "kW", (1280, 400)).unwrap();
    let t = Instant::now();
    let png = chart::png(&drawn, now - day * 1000, now, "kW", (1280, 400)).unwrap();
    println!(
        "png: 1280 x 400, 4 pens x 1,280 buckets in {:.1} ms ({} bytes)",
        ms(t.elapsed()),
        png.len()
    );
}
