//! Time bounds of an audit range as people type them (`stator audit export --from/--to` and the
//! `audit_page` request's `from`/`to`): one parser, so both accept exactly the same text.

use chrono::{DateTime, NaiveDate, Utc};

/// Parses RFC 3339, or `YYYY-MM-DD` (UTC midnight; with `end_of_day` the end of that day, so a
/// date range includes both days).
pub fn parse_bound(s: &str, end_of_day: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(format!(
        "{s:?} is not a time such as 2026-11-23 or 2026-11-23T10:00:00Z"
    ))
}

/// [`parse_bound`] plus the relative forms of trend ranges: `now`, `-90s`, `-15m`, `-1h`,
/// `-7d`, `-2w` (before `now`).
pub fn parse_time(s: &str, end_of_day: bool, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(rel) = s.strip_prefix('-') {
        let (num, unit) = rel.split_at(rel.len().saturating_sub(1));
        let secs = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => 0,
        };
        if let (true, Ok(n)) = (secs > 0, num.parse::<u32>()) {
            return Ok(now - chrono::Duration::seconds(i64::from(n) * secs));
        }
        return Err(format!(
            "{s:?} is not a relative time such as -15m, -1h or -7d"
        ));
    }
    parse_bound(s, end_of_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_count_back_from_now() {
        let now = parse_bound("2026-11-23T10:00:00Z", false).unwrap();
        assert_eq!(parse_time("now", false, now).unwrap(), now);
        assert_eq!(
            parse_time("-1h", false, now).unwrap().to_rfc3339(),
            "2026-11-23T09:00:00+00:00"
        );
        assert_eq!(
            parse_time("-7d", false, now).unwrap().to_rfc3339(),
            "2026-11-16T10:00:00+00:00"
        );
        assert!(parse_time("-1y", false, now).is_err());
        assert!(parse_time("-h", false, now).is_err());
        assert_eq!(
            parse_time("2026-11-23", true, now).unwrap().to_rfc3339(),
            "2026-11-24T00:00:00+00:00"
        );
    }

    #[test]
    fn dates_cover_whole_days_and_rfc3339_is_exact() {
        let from = parse_bound("2026-11-23", false).unwrap();
        let to = parse_bound("2026-11-23", true).unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-23T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-11-24T00:00:00+00:00");
        let t = parse_bound("2026-11-23T10:00:00+01:00", true).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T09:00:00+00:00");
        assert!(parse_bound("yesterday", false)
            .unwrap_err()
            .contains("\"yesterday\" is not a time"));
    }
}
