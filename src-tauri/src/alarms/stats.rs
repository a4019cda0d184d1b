//! EEMUA 191 alarm-system performance figures from the journal's raise events: annunciated
//! alarms per 10 minutes (mean, max), the share of 10-minute periods in flood (more than 10),
//! standing alarms (active longer than 24 h), the ten most frequent alarms and chattering ones
//! (3 or more activations within 60 s).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

/// Most raise events one figure set reads (a year of a healthy plant is far below).
pub const MAX_RAISES: u32 = 1_000_000;
/// More than this many alarms in ten minutes is a flood.
pub const FLOOD_PER_10_MIN: usize = 10;

/// The figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub raised: usize,
    pub per_10_min_mean: f64,
    pub per_10_min_max: usize,
    pub flood_percent: f64,
    /// `(alarm, active since)` of alarms active for more than 24 h.
    pub standing: Vec<(String, DateTime<Utc>)>,
    /// `(alarm, raises)`, most frequent first, at most 10.
    pub top: Vec<(String, usize)>,
    /// Alarms with 3 or more raises within 60 s.
    pub chattering: Vec<String>,
    /// True when more than [`MAX_RAISES`] events were in the range (figures cover the first).
    pub truncated: bool,
}

/// Computes the figures from `raises` (oldest first) and the currently active alarms.
pub fn compute(
    raises: &[(String, DateTime<Utc>)],
    active: &[(String, DateTime<Utc>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Stats {
    let period = Duration::minutes(10);
    let periods = ((to - from).num_seconds().max(1) as f64 / 600.0)
        .ceil()
        .max(1.0) as usize;
    let mut buckets: HashMap<i64, usize> = HashMap::new();
    let mut per_alarm: HashMap<&str, Vec<DateTime<Utc>>> = HashMap::new();
    for (a, t) in raises {
        *buckets
            .entry((*t - from).num_seconds() / period.num_seconds())
            .or_default() += 1;
        per_alarm.entry(a.as_str()).or_default().push(*t);
    }
    let max = buckets.values().copied().max().unwrap_or(0);
    let flooded = buckets.values().filter(|&&n| n > FLOOD_PER_10_MIN).count();
    let mut top: Vec<(String, usize)> = per_alarm
        .iter()
        .map(|(a, ts)| (a.to_string(), ts.len()))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(10);
    let mut chattering: Vec<String> = per_alarm
        .iter()
        .filter(|(_, ts)| ts.windows(3).any(|w| w[2] - w[0] <= Duration::seconds(60)))
        .map(|(a, _)| a.to_string())
        .collect();
    chattering.sort();
    let mut standing: Vec<(String, DateTime<Utc>)> = active
        .iter()
        .filter(|(_, since)| now - *since > Duration::hours(24))
        .cloned()
        .collect();
    standing.sort_by_key(|a| a.1);
    Stats {
        from,
        to,
        raised: raises.len(),
        per_10_min_mean: raises.len() as f64 / periods as f64,
        per_10_min_max: max,
        flood_percent: 100.0 * flooded as f64 / periods as f64,
        standing,
        top,
        chattering,
        truncated: raises.len() >= MAX_RAISES as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floods_chattering_and_standing() {
        let from = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let to = from + Duration::hours(1);
        let mut raises: Vec<(String, DateTime<Utc>)> = (0..12)
            .map(|i| ("flood".to_string(), from + Duration::seconds(i * 30)))
            .collect();
        raises.push(("once".into(), from + Duration::minutes(30)));
        let active = vec![
            ("old".to_string(), from - Duration::hours(30)),
            ("new".to_string(), from),
        ];
        let s = compute(&raises, &active, from, to, to);
        assert_eq!(s.raised, 13);
        assert_eq!(s.per_10_min_max, 12);
        assert!((s.flood_percent - 100.0 / 6.0).abs() < 1e-9);
        assert!((s.per_10_min_mean - 13.0 / 6.0).abs() < 1e-9);
        assert_eq!(s.top[0], ("flood".to_string(), 12));
        assert_eq!(s.chattering, ["flood"]);
        assert_eq!(s.standing.len(), 1);
        assert_eq!(s.standing[0].0, "old");
    }
}
