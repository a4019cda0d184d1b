//! Two-point (zero/span) calibration arithmetic. The PLC computes `value = raw × gain + offset`
//! (how S7 programs scale analog inputs); two references and the raw values captured at them give
//! the new gain and offset. Pure functions, so the rules are tested without a PLC.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::CalibrationConfig;

/// One captured point: the reference the serviceman applied and the raw value read meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub reference: f64,
    /// Mean of the raw value over the capture window.
    pub raw: f64,
    /// Max − min of the raw value over the window (raw units).
    pub spread: f64,
}

/// Mean and spread of the samples of one capture window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capture {
    pub mean: f64,
    pub spread: f64,
    pub samples: usize,
}

/// The mean and spread of `samples`; `None` when there are none or one is not finite.
pub fn capture(samples: &[f64]) -> Option<Capture> {
    if samples.is_empty() || samples.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &v in samples {
        lo = lo.min(v);
        hi = hi.max(v);
        sum += v;
    }
    Some(Capture {
        mean: sum / samples.len() as f64,
        spread: hi - lo,
        samples: samples.len(),
    })
}

/// Why a point or a fit is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalError {
    #[error("reference {reference} {unit} is outside the range [{lo}, {hi}] {unit}")]
    OutOfRange {
        reference: String,
        unit: String,
        lo: String,
        hi: String,
    },
    #[error("the second point equals the first ({0}); apply a different reference")]
    SamePoint(String),
    #[error("the raw value spreads by {spread} {unit} over the capture window, more than the tolerance of {tolerance} {unit}; wait until it settles")]
    TooMuchSpread {
        spread: String,
        tolerance: String,
        unit: String,
    },
    #[error("the fit gives no usable gain ({0})")]
    NoFit(String),
}

/// Checks a reference against the configured range.
pub fn check_reference(cfg: &CalibrationConfig, reference: f64) -> Result<(), CalError> {
    let [lo, hi] = cfg.range;
    if !(reference.is_finite() && reference >= lo && reference <= hi) {
        return Err(CalError::OutOfRange {
            reference: reference.to_string(),
            unit: cfg.unit.clone(),
            lo: lo.to_string(),
            hi: hi.to_string(),
        });
    }
    Ok(())
}

/// Checks the spread of a capture in engineering units (raw spread × |current gain|) against
/// the tolerance: a reading noisier than the accuracy asked for cannot calibrate anything.
pub fn check_spread(cfg: &CalibrationConfig, c: &Capture, gain: f64) -> Result<(), CalError> {
    let spread = c.spread * gain.abs();
    if spread > cfg.tolerance {
        return Err(CalError::TooMuchSpread {
            spread: format!("{spread:.4}"),
            tolerance: cfg.tolerance.to_string(),
            unit: cfg.unit.clone(),
        });
    }
    Ok(())
}

/// Refuses a second point that equals the first in reference or raw value (the fit would
/// divide by zero or be meaningless): they must differ by more than the tolerance.
pub fn check_second(
    cfg: &CalibrationConfig,
    first: &Point,
    second: &Point,
    gain: f64,
) -> Result<(), CalError> {
    if (second.reference - first.reference).abs() <= cfg.tolerance {
        return Err(CalError::SamePoint(format!(
            "reference {} {} twice",
            second.reference, cfg.unit
        )));
    }
    let raw_tol = if gain.abs() > f64::EPSILON {
        cfg.tolerance / gain.abs()
    } else {
        0.0
    };
    if (second.raw - first.raw).abs() <= raw_tol.max(f64::EPSILON) {
        return Err(CalError::SamePoint(format!(
            "raw {} at both references",
            second.raw
        )));
    }
    Ok(())
}

/// Gain and offset through both points.
pub fn fit(a: &Point, b: &Point) -> Result<(f64, f64), CalError> {
    let d = b.raw - a.raw;
    if d.abs() <= f64::EPSILON {
        return Err(CalError::SamePoint(format!(
            "raw {} at both references",
            a.raw
        )));
    }
    let gain = (b.reference - a.reference) / d;
    let offset = a.reference - gain * a.raw;
    if !(gain.is_finite() && offset.is_finite()) || gain == 0.0 {
        return Err(CalError::NoFit(format!("gain {gain}, offset {offset}")));
    }
    Ok((gain, offset))
}

/// The signed error with the largest magnitude of `raw × gain + offset − reference` over the
/// points (the as-found error with the old gain/offset; ~0 with the new ones).
pub fn worst_error(points: &[Point], gain: f64, offset: f64) -> f64 {
    points
        .iter()
        .map(|p| p.raw * gain + offset - p.reference)
        .fold(0.0, |w: f64, e| if e.abs() > w.abs() { e } else { w })
}

/// When the next calibration is due after one at `at`: the interval after a pass, at once after
/// a failure.
pub fn next_due(cfg: &CalibrationConfig, at: DateTime<Utc>, pass: bool) -> DateTime<Utc> {
    if pass {
        at + Duration::days(i64::from(cfg.interval_days))
    } else {
        at
    }
}

/// Days within which a calibration counts as due soon.
pub const DUE_SOON_DAYS: i64 = 14;

/// `overdue`, `due_soon` or `ok` for a next-due date (`None`: never calibrated = overdue).
pub fn due(next: Option<DateTime<Utc>>, now: DateTime<Utc>) -> &'static str {
    match next {
        None => "overdue",
        Some(t) if t <= now => "overdue",
        Some(t) if t - now <= Duration::days(DUE_SOON_DAYS) => "due_soon",
        Some(_) => "ok",
    }
}

/// A stored calibration record (append-only; the certificate prints it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub calibration: String,
    pub park: String,
    pub tag: String,
    pub unit: String,
    pub range: [f64; 2],
    pub tolerance: f64,
    /// Who calibrated.
    pub by: String,
    pub at: DateTime<Utc>,
    pub points: Vec<Point>,
    pub old_gain: f64,
    pub old_offset: f64,
    pub new_gain: f64,
    pub new_offset: f64,
    pub as_found_error: f64,
    pub as_left_error: Option<f64>,
    pub pass: bool,
    pub next_due: DateTime<Utc>,
    /// `ok`, or why the run failed after writing (e.g. the live value did not match).
    pub result: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CalibrationConfig {
        CalibrationConfig {
            id: "p1".into(),
            tag: "a/P".into(),
            raw_tag: "a/R".into(),
            gain_tag: "a/G".into(),
            offset_tag: "a/O".into(),
            unit: "bar".into(),
            range: [0.0, 10.0],
            tolerance: 0.05,
            interval_days: 365,
        }
    }

    fn pt(reference: f64, raw: f64) -> Point {
        Point {
            reference,
            raw,
            spread: 0.0,
        }
    }

    #[test]
    fn two_points_give_gain_and_offset() {
        // A sensor reading 2 % high with +0.1 bar: raw counts of 27648 per 10 bar.
        let k = 10.0 / 27648.0;
        let raw = |p: f64| (p * 1.02 + 0.1) / k;
        let (a, b) = (pt(2.0, raw(2.0)), pt(8.0, raw(8.0)));
        let (g, o) = fit(&a, &b).unwrap();
        assert!((a.raw * g + o - 2.0).abs() < 1e-9);
        assert!((b.raw * g + o - 8.0).abs() < 1e-9);
        let found = worst_error(&[a, b], k, 0.0);
        assert!((found - (8.0 * 0.02 + 0.1)).abs() < 1e-9, "{found}");
        assert!(worst_error(&[a, b], g, o).abs() < 1e-9);
    }

    #[test]
    fn bad_points_are_refused() {
        let c = cfg();
        assert!(check_reference(&c, 10.0).is_ok());
        assert!(matches!(
            check_reference(&c, 10.5),
            Err(CalError::OutOfRange { .. })
        ));
        assert!(check_reference(&c, f64::NAN).is_err());
        let k = 10.0 / 27648.0;
        let a = pt(2.0, 5530.0);
        assert!(matches!(
            check_second(&c, &a, &pt(2.0, 22000.0), k),
            Err(CalError::SamePoint(_))
        ));
        assert!(matches!(
            check_second(&c, &a, &pt(8.0, 5530.0), k),
            Err(CalError::SamePoint(_))
        ));
        assert!(check_second(&c, &a, &pt(8.0, 22000.0), k).is_ok());
        assert!(fit(&a, &pt(8.0, 5530.0)).is_err());
        let noisy = capture(&[100.0, 300.0]).unwrap();
        assert_eq!(noisy.spread, 200.0);
        assert_eq!(noisy.mean, 200.0);
        assert!(matches!(
            check_spread(&c, &noisy, k),
            Err(CalError::TooMuchSpread { .. })
        ));
        assert!(check_spread(&c, &capture(&[100.0, 101.0]).unwrap(), k).is_ok());
        assert!(capture(&[]).is_none());
        assert!(capture(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn due_dates() {
        let c = cfg();
        let now = Utc::now();
        assert_eq!(next_due(&c, now, true), now + Duration::days(365));
        assert_eq!(next_due(&c, now, false), now);
        assert_eq!(due(None, now), "overdue");
        assert_eq!(due(Some(now - Duration::days(1)), now), "overdue");
        assert_eq!(due(Some(now + Duration::days(3)), now), "due_soon");
        assert_eq!(due(Some(now + Duration::days(30)), now), "ok");
    }
}
