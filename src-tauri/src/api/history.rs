//! The historian behind the dispatcher: `history` and `history_tags`, validated and filtered to
//! the caller's parks; plus the derived formats the HTTP routes and the CLI share (CSV, SVG,
//! PNG), so that every client of history sees the same checks and the same data.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use super::request::{HistoryReq, HistoryTagsReq};
use super::wire::{AlarmLimitView, HistoryReply, HistoryTagView, HistoryTags, SeriesView};
use super::{Api, ApiError};
use crate::auth::Principal;
use crate::config::{Config, Priority};
use crate::history::{chart, Bucket, Historian, Kind, Points, Series, Val, MAX_POINTS, MAX_TAGS};
use crate::live::Cache;
use crate::store::audit::csv_field;
use crate::store::bound::parse_time;

/// Points per series when the request does not say.
pub const DEFAULT_POINTS: u64 = 1_000;

/// A validated history request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub tags: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub max_points: usize,
}

/// The park of `<plc>/<tag>` and the tag without an element index.
fn split(tag: &str) -> Option<(&str, &str)> {
    let (plc, name) = tag.split_once('/')?;
    let base = name.split_once('[').map_or(name, |(b, _)| b);
    (!plc.is_empty() && !base.is_empty()).then_some((plc, base))
}

/// Checks a request: tags known and visible (`visible(plc)`), bounds in order, the range within
/// the retention, `max_points` 1–10,000. `cache` (absent in the CLI) also makes a live tag
/// without samples yet a known one. Blocking (reads the series list).
pub fn plan(
    h: &Historian,
    cfg: &Config,
    cache: Option<&Cache>,
    r: HistoryReq,
    now: DateTime<Utc>,
    visible: impl Fn(&str) -> bool,
) -> Result<Plan, ApiError> {
    if r.tags.is_empty() || r.tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(format!(
            "tags: give 1 to {MAX_TAGS} tags as <plc>/<tag>"
        )));
    }
    let max_points = r.max_points.unwrap_or(DEFAULT_POINTS);
    if max_points == 0 || max_points > MAX_POINTS as u64 {
        return Err(ApiError::invalid(format!(
            "max_points must be between 1 and {MAX_POINTS}"
        )));
    }
    let from =
        parse_time(r.from.as_deref().unwrap_or("-1h"), false, now).map_err(ApiError::invalid)?;
    let to = parse_time(r.to.as_deref().unwrap_or("now"), true, now).map_err(ApiError::invalid)?;
    if from > to {
        return Err(ApiError::invalid("from is after to"));
    }
    let retention =
        chrono::Duration::milliseconds((cfg.history.retention_days * 86_400_000.0) as i64);
    if to - from > retention {
        return Err(ApiError::invalid(format!(
            "the range is longer than the retention ({} days)",
            cfg.history.retention_days
        )));
    }
    for t in &r.tags {
        let Some((plc, base)) = split(t) else {
            return Err(ApiError::invalid(format!("{t:?} is not <plc>/<tag>")));
        };
        if cfg.plc(plc).is_none() {
            return Err(ApiError::not_found(format!("no PLC {plc:?}")));
        }
        if !visible(plc) {
            return Err(ApiError::forbidden(format!("park {plc:?} is not granted")));
        }
        let live = cache.is_some_and(|c| c.tag_meta(plc, base).is_some());
        let stored = h.kind_blocking(t).map_err(internal)?.is_some();
        if !live && !stored {
            return Err(ApiError::not_found(format!("no tag {t:?} with history")));
        }
    }
    Ok(Plan {
        tags: r.tags,
        from,
        to,
        max_points: max_points as usize,
    })
}

fn internal(e: crate::history::HistoryError) -> ApiError {
    tracing::error!(error = %e, "history query failed");
    ApiError::internal("history query failed")
}

fn quality(q: u8) -> &'static str {
    match q {
        0 => "good",
        1 => "uncertain",
        _ => "bad",
    }
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// The configured limit alarms by tag (`<plc>/<tag>`, exactly as the alarm names it), highest
/// limit first: what a trend draws as alarm limit lines. Read from the configuration snapshot
/// of the request, so a `config_set` reaches the next query; the caller only asks for tags of
/// parks it may see, so the lines are filtered like the data.
fn alarm_limits(cfg: &Config) -> HashMap<&str, Vec<AlarmLimitView>> {
    let mut out: HashMap<&str, Vec<AlarmLimitView>> = HashMap::new();
    for a in cfg.alarms.iter().filter(|a| a.condition.is_limit()) {
        let Some(limit) = a.limit.filter(|l| l.is_finite()) else {
            continue;
        };
        out.entry(a.tag.as_str()).or_default().push(AlarmLimitView {
            alarm: a.id.clone(),
            condition: a.condition.as_str().into(),
            limit,
            priority: a.priority.as_str().into(),
        });
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| b.limit.total_cmp(&a.limit).then(a.alarm.cmp(&b.alarm)));
    }
    out
}

/// A tag's configured unit and engineering range.
fn meta(cfg: &Config, tag: &str) -> (Option<String>, Option<[f64; 2]>) {
    split(tag)
        .and_then(|(p, b)| cfg.tag(p, b))
        .map_or((None, None), |t| (t.unit.clone(), t.range))
}

/// The wire view of one series.
fn view(s: Series, cfg: &Config, limits: &HashMap<&str, Vec<AlarmLimitView>>) -> SeriesView {
    let (unit, range) = meta(cfg, &s.tag);
    let alarm_limits = limits.get(s.tag.as_str()).cloned().unwrap_or_default();
    let (kind, points) = match s.points {
        Points::Raw(v) => (
            "raw",
            v.into_iter()
                .map(|(t, val, q)| {
                    let value = match (s.kind, val) {
                        (Kind::Bool, Val::Num(x)) if x.is_finite() => json!(x != 0.0),
                        (_, Val::Num(x)) => num(x),
                        (_, Val::Text(text)) => json!(text),
                    };
                    json!([t, value, quality(q)])
                })
                .collect(),
        ),
        Points::Buckets(b) => (
            "buckets",
            b.into_iter()
                .map(|k| {
                    let o = |x: Option<f64>| x.map_or(Value::Null, num);
                    json!([k.t, o(k.min), o(k.max), o(k.first), o(k.last)])
                })
                .collect(),
        ),
    };
    SeriesView {
        tag: s.tag,
        kind: kind.into(),
        points,
        unit,
        range,
        alarm_limits,
    }
}

/// Runs a validated plan. Blocking.
pub fn run_blocking(h: &Historian, cfg: &Config, p: &Plan) -> Result<HistoryReply, ApiError> {
    let series = h
        .query_blocking(
            &p.tags,
            p.from.timestamp_millis(),
            p.to.timestamp_millis(),
            p.max_points,
        )
        .map_err(internal)?;
    let limits = alarm_limits(cfg);
    Ok(HistoryReply {
        series: series.into_iter().map(|s| view(s, cfg, &limits)).collect(),
    })
}

fn historian(api: &Api) -> Result<Historian, ApiError> {
    api.history()
        .cloned()
        .ok_or_else(|| ApiError::unavailable("history is off (history.enabled)"))
}

/// `history {tags, from, to, max_points}` for `p` (only its parks).
pub(super) async fn history(
    api: &Api,
    p: &Principal,
    r: HistoryReq,
) -> Result<HistoryReply, ApiError> {
    let h = historian(api)?;
    let cfg = api.config().clone();
    let cache = api.cache().clone();
    let parks = p.parks.clone();
    tokio::task::spawn_blocking(move || {
        let plan = plan(&h, &cfg, Some(&cache), r, Utc::now(), |plc| {
            parks.contains(plc)
        })?;
        run_blocking(&h, &cfg, &plan)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// `history_tags {park?}`: recorded tags of the caller's parks (or of the one asked).
pub(super) async fn tags(
    api: &Api,
    p: &Principal,
    r: HistoryTagsReq,
) -> Result<HistoryTags, ApiError> {
    let h = historian(api)?;
    let cfg = api.config().clone();
    let parks = p.parks.clone();
    let spans = tokio::task::spawn_blocking(move || h.tags_blocking())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(internal)?;
    let limits = alarm_limits(&cfg);
    let tags = spans
        .into_iter()
        .filter(|s| parks.contains(&s.plc) && cfg.plc(&s.plc).is_some())
        .filter(|s| r.park.as_deref().is_none_or(|k| k == s.plc))
        .map(|s| {
            let (unit, range) = meta(&cfg, &s.name);
            HistoryTagView {
                alarm_limits: limits.get(s.name.as_str()).cloned().unwrap_or_default(),
                unit,
                range,
                tag: s.name,
                value_type: s.kind,
                first: s.first,
                last: s.last,
                samples: s.samples,
            }
        })
        .collect();
    Ok(HistoryTags { tags })
}

fn iso(t: i64) -> String {
    Utc.timestamp_millis_opt(t)
        .single()
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A cell value of one point: the raw value, or a bucket's `last`; empty for a gap.
fn cell(kind: &str, p: &Value) -> Option<(i64, String)> {
    let a = p.as_array()?;
    let t = a.first()?.as_i64()?;
    let v = if kind == "buckets" {
        a.get(4)?
    } else {
        a.get(1)?
    };
    let bad = kind == "raw" && a.get(2).and_then(Value::as_str) == Some("bad");
    let s = match v {
        _ if bad => String::new(),
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some((t, s))
}

/// RFC 4180 CSV: `time` (ISO 8601 UTC) and one column per tag; a row per distinct time, an
/// empty cell where a tag has no sample at that time (or a bad one). Buckets give their `last`.
pub fn csv(r: &HistoryReply) -> String {
    let mut rows: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    let n = r.series.len();
    for (i, s) in r.series.iter().enumerate() {
        for p in &s.points {
            if let Some((t, v)) = cell(&s.kind, p) {
                rows.entry(t).or_insert_with(|| vec![String::new(); n])[i] = v;
            }
        }
    }
    let mut out = String::from("time");
    for s in &r.series {
        out.push(',');
        out.push_str(&csv_field(&s.tag));
    }
    out.push_str("\r\n");
    for (t, cells) in rows {
        out.push_str(&iso(t));
        for c in cells {
            out.push(',');
            out.push_str(&csv_field(&c));
        }
        out.push_str("\r\n");
    }
    out
}

/// Back from the wire view to the chart's input.
fn to_series(v: &SeriesView) -> Series {
    let f = |x: Option<&Value>| x.and_then(Value::as_f64);
    let points = if v.kind == "buckets" {
        Points::Buckets(
            v.points
                .iter()
                .filter_map(|p| {
                    let a = p.as_array()?;
                    Some(Bucket {
                        t: a.first()?.as_i64()?,
                        min: f(a.get(1)),
                        max: f(a.get(2)),
                        first: f(a.get(3)),
                        last: f(a.get(4)),
                    })
                })
                .collect(),
        )
    } else {
        Points::Raw(
            v.points
                .iter()
                .filter_map(|p| {
                    let a = p.as_array()?;
                    let x = match a.get(1)? {
                        Value::Bool(b) => f64::from(u8::from(*b)),
                        other => other.as_f64().unwrap_or(f64::NAN),
                    };
                    let q = match a.get(2).and_then(Value::as_str) {
                        Some("good") => 0,
                        Some("uncertain") => 1,
                        _ => 2,
                    };
                    Some((a.first()?.as_i64()?, Val::Num(x), q))
                })
                .collect(),
        )
    };
    Series {
        tag: v.tag.clone(),
        kind: Kind::Number,
        points,
    }
}

/// The short name of a limit condition on a chart (`HH 95`).
fn condition_short(c: &str) -> &str {
    match c {
        "high_high" => "HH",
        "high" => "H",
        "low" => "L",
        "low_low" => "LL",
        other => other,
    }
}

/// A series' configured limits as chart lines: the range bounds, then its limit alarms.
fn limit_lines(v: &SeriesView) -> Vec<chart::Limit> {
    let range = v.range.iter().flatten().map(|&value| chart::Limit {
        value,
        label: String::new(),
        priority: None,
    });
    let alarms = v.alarm_limits.iter().map(|a| chart::Limit {
        value: a.limit,
        label: format!("{} {}", condition_short(&a.condition), a.limit),
        priority: Some(Priority::parse(&a.priority).unwrap_or(Priority::Low)),
    });
    range.chain(alarms).collect()
}

/// The chart format a route or the CLI asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Svg,
    Png,
}

/// Draws a reply as SVG or PNG of `size` (validated against the chart's bounds).
pub fn chart(
    r: &HistoryReply,
    p: &Plan,
    size: (u32, u32),
    format: ChartFormat,
) -> Result<Vec<u8>, ApiError> {
    let (lo, hi) = (chart::MIN_SIZE, chart::MAX_SIZE);
    if !(lo.0..=hi.0).contains(&size.0) || !(lo.1..=hi.1).contains(&size.1) {
        return Err(ApiError::invalid(format!(
            "width must be {}–{} and height {}–{}",
            lo.0, hi.0, lo.1, hi.1
        )));
    }
    let series: Vec<Series> = r.series.iter().map(to_series).collect();
    let pens: Vec<chart::Pen<'_>> = series
        .iter()
        .zip(&r.series)
        .map(|(s, v)| chart::Pen {
            series: s,
            label: match &v.unit {
                Some(u) => format!("{} [{u}]", v.tag),
                None => v.tag.clone(),
            },
            limits: limit_lines(v),
        })
        .collect();
    let units: Vec<Option<String>> = r.series.iter().map(|s| s.unit.clone()).collect();
    let unit = chart::unit_label(&units);
    let (from, to) = (p.from.timestamp_millis(), p.to.timestamp_millis());
    match format {
        ChartFormat::Svg => chart::svg(&pens, from, to, &unit, size).map(String::into_bytes),
        ChartFormat::Png => chart::png(&pens, from, to, &unit, size),
    }
    .map_err(|e| {
        tracing::error!(error = %e, "chart drawing failed");
        ApiError::internal("chart drawing failed")
    })
}
