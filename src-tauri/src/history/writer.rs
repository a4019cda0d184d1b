//! The one writer thread: takes batches of samples from a bounded queue, appends them to each
//! tag's open block in memory and commits every `flush_seconds` in one transaction; runs the
//! retention in small steps once a minute.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::codec::{NumEncoder, TextEncoder, Val, BLOCK_SAMPLES};
use super::{db, Kind, Rec, Stats};

/// A block is closed (and a new one started) once it spans this long, so that a slow tag's
/// block does not stay open (and rewritten) for hours.
const BLOCK_SPAN_MS: i64 = 10 * 60 * 1000;
/// How often the retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

pub(super) enum Msg {
    Samples(Vec<Rec>),
    /// Commit everything now and answer.
    Sync(Sender<()>),
    /// Commit, run the retention as of this time (Unix ms), answer with the blocks deleted.
    Retention(i64, Sender<u64>),
    /// New settings (a configuration changed while running): they apply from the next commit.
    Settings(Settings),
}

/// The writer's settings that can change while it runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Settings {
    pub flush: Duration,
    pub retention_ms: i64,
    pub budget: u64,
}

impl Settings {
    pub fn of(cfg: &crate::config::HistoryConfig) -> Settings {
        Settings {
            flush: Duration::from_secs_f64(cfg.flush_seconds.clamp(0.01, 60.0)),
            retention_ms: (cfg.retention_days * 86_400_000.0) as i64,
            budget: (cfg.max_disk_mb * 1024.0 * 1024.0) as u64,
        }
    }
}

enum Enc {
    Num(NumEncoder),
    Text(TextEncoder),
}

impl Enc {
    fn new(kind: Kind, r: &Rec) -> Enc {
        match kind {
            Kind::Text => Enc::Text(TextEncoder::new(r.t, &text(&r.v), r.q)),
            _ => Enc::Num(NumEncoder::new(r.t, num(&r.v), r.q)),
        }
    }
    fn push(&mut self, r: &Rec) {
        match self {
            Enc::Num(e) => {
                let t = r.t.max(e.last_t());
                e.push(t, num(&r.v), r.q)
            }
            Enc::Text(e) => {
                let t = r.t.max(e.last_t());
                e.push(t, &text(&r.v), r.q)
            }
        }
    }
    fn span(&self) -> (i64, i64, u32) {
        match self {
            Enc::Num(e) => (e.first_t(), e.last_t(), e.samples()),
            Enc::Text(e) => (e.first_t(), e.last_t(), e.samples()),
        }
    }
    fn bytes(&self) -> Vec<u8> {
        match self {
            Enc::Num(e) => e.bytes(),
            Enc::Text(e) => e.bytes(),
        }
    }
}

fn num(v: &Val) -> f64 {
    match v {
        Val::Num(x) => *x,
        Val::Text(s) => s.parse().unwrap_or(f64::NAN),
    }
}

fn text(v: &Val) -> String {
    match v {
        Val::Num(x) if x.is_nan() => String::new(),
        Val::Num(x) => x.to_string(),
        Val::Text(s) => s.clone(),
    }
}

struct Open {
    enc: Enc,
    rowid: Option<i64>,
    dirty: bool,
}

pub(super) struct Writer {
    pub conn: Connection,
    pub stats: Arc<Stats>,
    pub settings: Settings,
}

impl Writer {
    /// Runs until every sender is gone; commits what it holds before returning.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut ids: HashMap<Arc<str>, (i64, Kind)> = HashMap::new();
        let mut open: HashMap<i64, Open> = HashMap::new();
        let mut pending: Vec<Rec> = Vec::new();
        let mut next_flush = Instant::now() + self.settings.flush;
        let mut next_retention = Instant::now();
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Samples(v)) => {
                    self.stats.queued.fetch_sub(v.len(), Ordering::Relaxed);
                    pending.extend(v);
                    continue;
                }
                Ok(Msg::Sync(ack)) => {
                    self.commit(&mut ids, &mut open, &mut pending);
                    let _ = ack.send(());
                }
                Ok(Msg::Settings(s)) => {
                    next_flush = next_flush.min(Instant::now() + s.flush);
                    self.settings = s;
                    continue;
                }
                Ok(Msg::Retention(now, ack)) => {
                    self.commit(&mut ids, &mut open, &mut pending);
                    let _ = ack.send(self.retention(now));
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.commit(&mut ids, &mut open, &mut pending);
                    next_flush = Instant::now() + self.settings.flush;
                    if Instant::now() >= next_retention {
                        self.retention(chrono::Utc::now().timestamp_millis());
                        next_retention = Instant::now() + RETENTION_EVERY;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit(&mut ids, &mut open, &mut pending);
                    return;
                }
            }
        }
    }

    fn retention(&self, now: i64) -> u64 {
        match db::retention(
            &self.conn,
            now.saturating_sub(self.settings.retention_ms),
            self.settings.budget,
        ) {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(blocks = n, "history retention deleted old blocks");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "history retention failed");
                0
            }
        }
    }

    /// Appends `pending` to the open blocks and writes every changed block in one transaction.
    fn commit(
        &self,
        ids: &mut HashMap<Arc<str>, (i64, Kind)>,
        open: &mut HashMap<i64, Open>,
        pending: &mut Vec<Rec>,
    ) {
        if pending.is_empty() && open.values().all(|o| !o.dirty) {
            return;
        }
        let n = pending.len() as u64;
        let res = (|| -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for r in pending.drain(..) {
                let (id, kind) = match ids.get(&r.series) {
                    Some(v) => *v,
                    None => {
                        if ids.len() >= super::MAX_SERIES {
                            continue;
                        }
                        let v = db::series_id(&tx, &r.series, r.kind)?;
                        ids.insert(r.series.clone(), v);
                        v
                    }
                };
                match open.get_mut(&id) {
                    Some(o) => {
                        let (t0, _, len) = o.enc.span();
                        if len >= BLOCK_SAMPLES || r.t.saturating_sub(t0) > BLOCK_SPAN_MS {
                            if o.dirty {
                                let (t0, t1, len) = o.enc.span();
                                db::put_block(&tx, o.rowid, id, t0, t1, len, &o.enc.bytes())?;
                            }
                            *o = Open {
                                enc: Enc::new(kind, &r),
                                rowid: None,
                                dirty: true,
                            };
                        } else {
                            o.enc.push(&r);
                            o.dirty = true;
                        }
                    }
                    None => {
                        open.insert(
                            id,
                            Open {
                                enc: Enc::new(kind, &r),
                                rowid: None,
                                dirty: true,
                            },
                        );
                    }
                }
            }
            let now = chrono::Utc::now().timestamp_millis();
            let mut closed = Vec::new();
            for (id, o) in open.iter_mut() {
                let (t0, t1, len) = o.enc.span();
                if o.dirty {
                    o.rowid = Some(db::put_block(
                        &tx,
                        o.rowid,
                        *id,
                        t0,
                        t1,
                        len,
                        &o.enc.bytes(),
                    )?);
                    o.dirty = false;
                }
                if now.saturating_sub(t0) > BLOCK_SPAN_MS {
                    closed.push(*id);
                }
            }
            for id in closed {
                open.remove(&id);
            }
            tx.commit()
        })();
        match res {
            Ok(()) => {
                self.stats.stored.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                // What could not be written is lost and counted; the next blocks start fresh.
                tracing::error!(error = %e, "history write failed");
                self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                open.clear();
                ids.clear();
            }
        }
    }
}
