//! Server-rendered trend charts (SVG and PNG) with `plotters`: one line per pen, broken where
//! the quality was bad (a gap, never a straight line across a disconnect), min/max envelopes of
//! decimated ranges, time axis in UTC, the value axis labelled with the pens' units, a legend.
//!
//! Text goes through `ab_glyph` with an embedded DejaVu Sans (no fontconfig/freetype on a panel
//! or a gateway); without a registered font plotters would panic when drawing text.

use std::sync::Once;

use chrono::{TimeZone, Utc};
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::{Points, Series, Val};
use crate::config::Priority;

/// Smallest and largest image a client may ask for.
pub const MIN_SIZE: (u32, u32) = (200, 120);
pub const MAX_SIZE: (u32, u32) = (4096, 2160);

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn font() {
    REGISTER.call_once(|| {
        if register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::error!("the embedded chart font could not be loaded");
        }
    });
}

/// One pen: its series, the label (`tag [unit]`) and its limit lines.
pub struct Pen<'a> {
    pub series: &'a Series,
    pub label: String,
    pub limits: Vec<Limit>,
}

/// A horizontal line of a pen at a configured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    pub value: f64,
    /// Drawn next to the line (`HH 95`); empty for none.
    pub label: String,
    /// `None`: an engineering range bound (dashed); `Some`: an alarm limit of that priority.
    pub priority: Option<Priority>,
}

/// ISA-101 priority colours (the panel's `.prio` classes) and letters.
pub fn priority_mark(p: Priority) -> (RGBColor, &'static str) {
    match p {
        Priority::Urgent => (RGBColor(192, 57, 43), "U"),
        Priority::High => (RGBColor(211, 84, 0), "H"),
        Priority::Medium => (RGBColor(212, 154, 0), "M"),
        Priority::Low => (RGBColor(33, 102, 168), "L"),
    }
}

/// Muted, distinguishable pen colours (ISA-101: no alarm colours for normal data).
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 90, 160),
    RGBColor(40, 40, 40),
    RGBColor(120, 80, 160),
    RGBColor(20, 130, 120),
];

/// Connected lines and min/max envelopes `(t, min, max)` of one series.
type Drawn = (Vec<Vec<(i64, f64)>>, Vec<(i64, f64, f64)>);

/// Line segments of one series, split at gaps (bad quality, no value).
fn segments(s: &Series) -> Drawn {
    let mut out = vec![Vec::new()];
    let mut envelopes = Vec::new();
    let mut point = |p: Option<(i64, f64)>| match p {
        Some(p) => out.last_mut().map(|l| l.push(p)).unwrap_or(()),
        None => {
            if out.last().is_some_and(|l| !l.is_empty()) {
                out.push(Vec::new());
            }
        }
    };
    match &s.points {
        Points::Raw(v) => {
            for (t, val, q) in v {
                let x = match val {
                    Val::Num(x) if *q != 2 && x.is_finite() => Some((*t, *x)),
                    _ => None,
                };
                point(x);
            }
        }
        Points::Buckets(b) => {
            for k in b {
                match (k.min, k.max, k.first, k.last) {
                    (Some(lo), Some(hi), Some(f), Some(l)) => {
                        point(Some((k.t, f)));
                        point(Some((k.t, l)));
                        envelopes.push((k.t, lo, hi));
                    }
                    _ => point(None),
                }
            }
        }
    }
    out.retain(|l| !l.is_empty());
    (out, envelopes)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    pens: &[Pen<'_>],
    from: i64,
    to: i64,
    unit: &str,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let drawn: Vec<_> = pens.iter().map(|p| segments(p.series)).collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (segs, env) in &drawn {
        for &(_, v) in segs.iter().flatten() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        for &(_, a, b) in env {
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    for l in pens.iter().flat_map(|p| &p.limits) {
        if l.value.is_finite() {
            lo = lo.min(l.value);
            hi = hi.max(l.value);
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-9 {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.05;
    let span_ms = (to - from).max(1);
    let fmt = if span_ms > 2 * 86_400_000 {
        "%m-%d %H:%M"
    } else {
        "%H:%M:%S"
    };
    let mut chart = ChartBuilder::on(&root)
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(64)
        .build_cartesian_2d(from..to.max(from + 1), (lo - pad)..(hi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|t| {
            Utc.timestamp_millis_opt(*t)
                .single()
                .map(|d| d.format(fmt).to_string())
                .unwrap_or_default()
        })
        .x_desc("UTC")
        .y_desc(unit)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(e)?;
    for (i, (pen, (segs, env))) in pens.iter().zip(&drawn).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let light = colour.mix(0.35);
        chart
            .draw_series(
                env.iter().map(|&(t, a, b)| {
                    PathElement::new(vec![(t, a), (t, b)], light.stroke_width(1))
                }),
            )
            .map_err(e)?;
        let mut first = true;
        for seg in segs {
            let s = chart
                .draw_series(LineSeries::new(seg.iter().copied(), colour.stroke_width(2)))
                .map_err(e)?;
            if first {
                s.label(pen.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
                first = false;
            }
        }
    }
    for (i, pen) in pens.iter().enumerate() {
        limits(&mut chart, pen, COLOURS[i % COLOURS.len()]).map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .label_font(("sans-serif", 12))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// A pen's limit lines across the plot, at the right end of an alarm limit its priority marker
/// (a square in the priority colour with the letter) and its label.
fn limits<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordi64, RangedCoordf64>>,
    pen: &Pen<'_>,
    colour: RGBColor,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (from, to) = (chart.x_range().start, chart.x_range().end);
    for l in pen.limits.iter().filter(|l| l.value.is_finite()) {
        let ends = [(from, l.value), (to, l.value)];
        let Some(p) = l.priority else {
            chart.draw_series(std::iter::once(DashedPathElement::new(
                ends,
                6,
                4,
                colour.mix(0.7).stroke_width(1),
            )))?;
            continue;
        };
        let (mark, letter) = priority_mark(p);
        let text = if p == Priority::Medium { BLACK } else { WHITE };
        chart.draw_series(std::iter::once(PathElement::new(
            ends,
            colour.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((to, l.value))
                + Rectangle::new([(-16, -7), (-2, 7)], mark.filled())
                + Text::new(
                    letter,
                    (-13, -6),
                    ("sans-serif", 12).into_font().color(&text),
                )
                + Text::new(
                    l.label.clone(),
                    (-20 - 7 * l.label.len() as i32, -16),
                    ("sans-serif", 12).into_font().color(&colour),
                ),
        ))?;
    }
    Ok(())
}

/// The value axis description: the pens' distinct units.
pub fn unit_label(units: &[Option<String>]) -> String {
    let mut u: Vec<&str> = units.iter().flatten().map(|s| s.as_str()).collect();
    u.dedup();
    u.join(" / ")
}

/// An SVG document of the trend.
pub fn svg(
    pens: &[Pen<'_>],
    from: i64,
    to: i64,
    unit: &str,
    size: (u32, u32),
) -> Result<String, String> {
    font();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(root, pens, from, to, unit)?;
    }
    Ok(s)
}

/// A PNG image of the trend.
pub fn png(
    pens: &[Pen<'_>],
    from: i64,
    to: i64,
    unit: &str,
    size: (u32, u32),
) -> Result<Vec<u8>, String> {
    font();
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        draw(root, pens, from, to, unit)?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size.0, size.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
