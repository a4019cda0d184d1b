//! Store and forward: DDATA kept on disk while the primary host application is offline (or the
//! broker is gone), replayed in order when it returns.
//!
//! Segment files `<n>.seg` of records `u32 LE length | u16 LE park length | park | payload`;
//! at most [`MAX_BYTES`] in all — beyond it the oldest segment is deleted and its records are
//! counted as dropped. Synchronous file I/O: callers run it on the blocking pool.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Most bytes kept on disk.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// A segment is closed once it holds this much.
const SEGMENT_BYTES: u64 = 1024 * 1024;

struct Segment {
    id: u64,
    records: u64,
    bytes: u64,
}

pub struct Spool {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    /// Records dropped because the store was full.
    pub dropped: u64,
}

impl Spool {
    /// Opens (creating) the directory and takes over segments a previous run left behind.
    pub fn open(dir: PathBuf) -> std::io::Result<Spool> {
        std::fs::create_dir_all(&dir)?;
        let mut ids: Vec<u64> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
            .collect();
        ids.sort_unstable();
        let mut s = Spool {
            dir,
            segments: VecDeque::new(),
            dropped: 0,
        };
        for id in ids {
            let recs = s.read(id).unwrap_or_default();
            let bytes = std::fs::metadata(s.path(id)).map(|m| m.len()).unwrap_or(0);
            s.segments.push_back(Segment {
                id,
                records: recs.len() as u64,
                bytes,
            });
        }
        Ok(s)
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:010}.seg"))
    }

    /// Records waiting.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Appends one DDATA payload of `park`.
    pub fn push(&mut self, park: &str, payload: &[u8]) -> std::io::Result<()> {
        let need_new = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if need_new {
            let id = self.segments.back().map_or(0, |s| s.id + 1);
            self.segments.push_back(Segment {
                id,
                records: 0,
                bytes: 0,
            });
        }
        let id = self.segments.back().map(|s| s.id).unwrap_or(0);
        let mut rec = Vec::with_capacity(6 + park.len() + payload.len());
        let body = 2 + park.len() + payload.len();
        rec.extend_from_slice(&(body as u32).to_le_bytes());
        rec.extend_from_slice(&(park.len() as u16).to_le_bytes());
        rec.extend_from_slice(park.as_bytes());
        rec.extend_from_slice(payload);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(id))?
            .write_all(&rec)?;
        if let Some(s) = self.segments.back_mut() {
            s.records += 1;
            s.bytes += rec.len() as u64;
        }
        while self.segments.iter().map(|s| s.bytes).sum::<u64>() > MAX_BYTES
            && self.segments.len() > 1
        {
            if let Some(old) = self.segments.pop_front() {
                let _ = std::fs::remove_file(self.path(old.id));
                self.dropped += old.records;
            }
        }
        Ok(())
    }

    /// Takes the oldest segment's records (park, payload), in order, deleting it.
    pub fn pop(&mut self) -> Vec<(String, Vec<u8>)> {
        let Some(seg) = self.segments.pop_front() else {
            return Vec::new();
        };
        let recs = self.read(seg.id).unwrap_or_default();
        let _ = std::fs::remove_file(self.path(seg.id));
        recs
    }

    fn read(&self, id: u64) -> std::io::Result<Vec<(String, Vec<u8>)>> {
        let mut buf = Vec::new();
        std::fs::File::open(self.path(id))?.read_to_end(&mut buf)?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while at + 6 <= buf.len() {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().unwrap_or_default()) as usize;
            let body = &buf[at + 4..];
            if len < 2 || body.len() < len {
                break; // a torn last record
            }
            let plen = u16::from_le_bytes([body[0], body[1]]) as usize;
            if 2 + plen > len {
                break;
            }
            let park = String::from_utf8_lossy(&body[2..2 + plen]).into_owned();
            out.push((park, body[2 + plen..len].to_vec()));
            at += 4 + len;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_survives_reopen_and_drops_oldest_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path().join("spool")).unwrap();
        for i in 0..3u8 {
            s.push("alpha", &[i; 10]).unwrap();
        }
        let mut s = Spool::open(dir.path().join("spool")).unwrap();
        assert_eq!(s.records(), 3);
        let got = s.pop();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], ("alpha".to_string(), vec![2u8; 10]));
        assert_eq!(s.records(), 0);
        let big = vec![7u8; 512 * 1024];
        for _ in 0..(2 * MAX_BYTES / big.len() as u64) {
            s.push("beta", &big).unwrap();
        }
        assert!(s.dropped > 0);
        assert!(s.segments.iter().map(|x| x.bytes).sum::<u64>() <= MAX_BYTES);
    }
}
