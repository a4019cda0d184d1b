//! Trend queries: raw samples when the range holds few enough, else min/max buckets so that a
//! one-sample spike survives any zoom level. Memory is bounded by `max_points` per series
//! (samples are decoded block by block, never collected beyond that).

use rusqlite::Connection;

use super::codec::{self, Val, Q};
use super::db;
use super::Kind;

/// Most points per series a client may ask for.
pub const MAX_POINTS: usize = 10_000;
/// Most series in one query.
pub const MAX_TAGS: usize = 16;

/// One bucket of `[t, t + width)`: min/max/first/last of its good samples; all `None` when the
/// bucket held only bad-quality samples (a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub t: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
}

/// The points of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum Points {
    /// Every sample: time, value (NaN / empty when the PLC gave none), quality.
    Raw(Vec<(i64, Val, Q)>),
    Buckets(Vec<Bucket>),
}

/// One series of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub tag: String,
    pub kind: Kind,
    pub points: Points,
}

#[derive(Clone, Copy)]
struct Acc {
    any: bool,
    good: bool,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
}

const EMPTY: Acc = Acc {
    any: false,
    good: false,
    min: f64::INFINITY,
    max: f64::NEG_INFINITY,
    first: f64::NAN,
    last: f64::NAN,
};

struct Grid {
    from: i64,
    span: i128,
    n: usize,
}

impl Grid {
    fn index(&self, t: i64) -> usize {
        (((t - self.from) as i128 * self.n as i128) / self.span).clamp(0, self.n as i128 - 1)
            as usize
    }
    fn start(&self, i: usize) -> i64 {
        self.from + ((i as i128 * self.span) / self.n as i128) as i64
    }
}

fn add(acc: &mut Acc, v: f64, q: Q) {
    acc.any = true;
    if q == 2 || v.is_nan() {
        return;
    }
    if !acc.good {
        acc.good = true;
        acc.first = v;
    }
    acc.min = acc.min.min(v);
    acc.max = acc.max.max(v);
    acc.last = v;
}

/// Reads one series in `[from, to]` (Unix ms, inclusive) with at most `max_points` points.
pub(super) fn series(
    c: &Connection,
    name: &str,
    id: i64,
    kind: Kind,
    from: i64,
    to: i64,
    max_points: usize,
) -> rusqlite::Result<Series> {
    let grid = Grid {
        from,
        span: (to - from) as i128 + 1,
        n: max_points,
    };
    let points = if kind == Kind::Text {
        // Text cannot be aggregated: the first sample of each bucket is kept, as raw points.
        let mut raw: Vec<(i64, Val, Q)> = Vec::new();
        let mut last_bucket = None;
        db::blocks(c, id, from, to, |blob| {
            let mut more = true;
            codec::decode(blob, |t, v, q| {
                if t < from {
                    return true;
                }
                if t > to {
                    more = false;
                    return false;
                }
                let b = grid.index(t);
                if last_bucket != Some(b) {
                    last_bucket = Some(b);
                    raw.push((t, v, q));
                }
                true
            });
            more
        })?;
        Points::Raw(raw)
    } else {
        let mut raw: Vec<(i64, f64, Q)> = Vec::new();
        let mut buckets: Option<Vec<Acc>> = None;
        db::blocks(c, id, from, to, |blob| {
            let mut more = true;
            codec::decode_num(blob, |t, v, q| {
                if t < from {
                    return true;
                }
                if t > to {
                    more = false;
                    return false;
                }
                match &mut buckets {
                    Some(b) => add(&mut b[grid.index(t)], v, q),
                    None => {
                        raw.push((t, v, q));
                        if raw.len() > max_points {
                            let mut b = vec![EMPTY; max_points];
                            for (t, v, q) in raw.drain(..) {
                                add(&mut b[grid.index(t)], v, q);
                            }
                            buckets = Some(b);
                        }
                    }
                }
                true
            });
            more
        })?;
        match buckets {
            None => Points::Raw(
                raw.into_iter()
                    .map(|(t, v, q)| (t, Val::Num(v), q))
                    .collect(),
            ),
            Some(b) => Points::Buckets(
                b.iter()
                    .enumerate()
                    .filter(|(_, a)| a.any)
                    .map(|(i, a)| {
                        let g = |x: f64| a.good.then_some(x);
                        Bucket {
                            t: grid.start(i),
                            min: g(a.min),
                            max: g(a.max),
                            first: g(a.first),
                            last: g(a.last),
                        }
                    })
                    .collect(),
            ),
        }
    };
    Ok(Series {
        tag: name.to_string(),
        kind,
        points,
    })
}
