//! Server-rendered trend charts (SVG and PNG) with `plotters`: one line per pen, broken where
//! the quality was bad (a gap, never a straight line across a disconnect), min/max envelopes of
//! decimated ranges, time axis in UTC, the value axis labelled with the pens' units, a legend.
//!
//! Text goes through `ab_glyph` with an embedded DejaVu Sans (no fontconfig/freetype on a panel
//! or a gateway); without a registered font plotters would panic when drawing text.

use std::sync::Once;

use chrono::{TimeZone, Utc};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::{Points, Series, Val};

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

/// One pen: its series and the label (`tag [unit]`).
pub struct Pen<'a> {
    pub series: &'a Series,
    pub label: String,
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
