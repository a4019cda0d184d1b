//! Compact, time-ordered blocks of one tag's samples (Gorilla-style, as time-series stores do).
//!
//! A naive row per sample costs ~30–40 bytes; here a block of up to [`BLOCK_SAMPLES`] samples
//! stores timestamps as delta-of-deltas (a steady 1 s cadence costs 1 bit), values as the XOR
//! with the previous value's bits (an unchanged value costs 1 bit, a float that moved a little
//! only its meaningful bits) and the quality as one bit unless it changed. Text (strings,
//! DateTimes) is stored as delta timestamps plus the bytes. Decoding never panics on a damaged
//! blob: it stops at the first inconsistency.

/// Samples at which a block is closed (the open block is rewritten at every flush, so this also
/// bounds the bytes rewritten per tag and flush).
pub const BLOCK_SAMPLES: u32 = 256;
/// Longest text stored per sample (longer strings are cut at a character boundary).
pub const MAX_TEXT_BYTES: usize = 1024;

const NUM_VERSION: u8 = 1;
const TEXT_VERSION: u8 = 2;
const NUM_HEADER: usize = 1 + 4 + 8 + 8 + 1;

/// Quality as stored: 0 good, 1 uncertain, 2 bad.
pub type Q = u8;

/// One decoded sample value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Numbers and booleans (0/1); NaN when the PLC reported no value.
    Num(f64),
    Text(String),
}

struct Bits {
    buf: Vec<u8>,
    /// Bits used in the last byte (0 = the last byte is full or there is none).
    used: u8,
}

impl Bits {
    fn push(&mut self, value: u64, n: u8) {
        for i in (0..n).rev() {
            if self.used == 0 {
                self.buf.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            let last = self.buf.len() - 1;
            self.buf[last] |= bit << (7 - self.used);
            self.used = (self.used + 1) % 8;
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bit(&mut self) -> Option<u64> {
        let byte = *self.buf.get(self.pos / 8)?;
        let b = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Some(u64::from(b))
    }
    fn bits(&mut self, n: u8) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }
}

/// Sign-extends the low `n` bits of `v`.
fn signed(v: u64, n: u8) -> i64 {
    let shift = 64 - u32::from(n);
    ((v << shift) as i64) >> shift
}

/// Appends numeric samples (f64 bits, delta-of-delta times, quality bits) to one open block.
pub struct NumEncoder {
    n: u32,
    t0: i64,
    v0: u64,
    q0: Q,
    prev_t: i64,
    prev_delta: i64,
    prev_v: u64,
    prev_q: Q,
    lead: u8,
    trail: u8,
    bits: Bits,
}

impl NumEncoder {
    /// A block starting with this sample.
    pub fn new(t: i64, v: f64, q: Q) -> Self {
        Self {
            n: 1,
            t0: t,
            v0: v.to_bits(),
            q0: q,
            prev_t: t,
            prev_delta: 0,
            prev_v: v.to_bits(),
            prev_q: q,
            lead: u8::MAX,
            trail: 0,
            bits: Bits {
                buf: Vec::new(),
                used: 0,
            },
        }
    }

    /// Samples in the block (never 0: a block starts with its first sample).
    pub fn samples(&self) -> u32 {
        self.n
    }
    /// Time of the first sample.
    pub fn first_t(&self) -> i64 {
        self.t0
    }
    /// Time of the last sample.
    pub fn last_t(&self) -> i64 {
        self.prev_t
    }

    /// Appends a sample; `t` must not be before the last one (callers clamp).
    pub fn push(&mut self, t: i64, v: f64, q: Q) {
        let delta = t.saturating_sub(self.prev_t);
        let dod = delta.saturating_sub(self.prev_delta);
        let b = &mut self.bits;
        match dod {
            0 => b.push(0, 1),
            -63..=64 => {
                b.push(0b10, 2);
                b.push(dod as u64, 7);
            }
            -255..=256 => {
                b.push(0b110, 3);
                b.push(dod as u64, 9);
            }
            -2047..=2048 => {
                b.push(0b1110, 4);
                b.push(dod as u64, 12);
            }
            d if i32::try_from(d).is_ok() => {
                b.push(0b11110, 5);
                b.push(d as u64, 32);
            }
            d => {
                b.push(0b11111, 5);
                b.push(d as u64, 64);
            }
        }
        let bits = v.to_bits();
        let x = bits ^ self.prev_v;
        if x == 0 {
            b.push(0, 1);
        } else {
            let lead = (x.leading_zeros() as u8).min(31);
            let trail = x.trailing_zeros() as u8;
            if self.lead != u8::MAX && lead >= self.lead && trail >= self.trail {
                b.push(0b10, 2);
                let len = 64 - self.lead - self.trail;
                b.push(x >> self.trail, len);
            } else {
                let len = 64 - lead - trail;
                b.push(0b11, 2);
                b.push(u64::from(lead), 5);
                b.push(u64::from(len - 1), 6);
                b.push(x >> trail, len);
                self.lead = lead;
                self.trail = trail;
            }
        }
        if q == self.prev_q {
            b.push(0, 1);
        } else {
            b.push(1, 1);
            b.push(u64::from(q), 2);
        }
        self.n += 1;
        self.prev_t = t;
        self.prev_delta = delta;
        self.prev_v = bits;
        self.prev_q = q;
    }

    /// The block as stored.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(NUM_HEADER + self.bits.buf.len());
        out.push(NUM_VERSION);
        out.extend_from_slice(&self.n.to_le_bytes());
        out.extend_from_slice(&self.t0.to_le_bytes());
        out.extend_from_slice(&self.v0.to_le_bytes());
        out.push(self.q0);
        out.extend_from_slice(&self.bits.buf);
        out
    }
}

/// Appends text samples to one open block.
pub struct TextEncoder {
    n: u32,
    t0: i64,
    prev_t: i64,
    buf: Vec<u8>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

impl TextEncoder {
    pub fn new(t: i64, v: &str, q: Q) -> Self {
        let mut e = Self {
            n: 0,
            t0: t,
            prev_t: t,
            buf: Vec::new(),
        };
        e.push(t, v, q);
        e
    }
    /// Samples in the block.
    pub fn samples(&self) -> u32 {
        self.n
    }
    pub fn first_t(&self) -> i64 {
        self.t0
    }
    pub fn last_t(&self) -> i64 {
        self.prev_t
    }
    pub fn push(&mut self, t: i64, v: &str, q: Q) {
        varint(&mut self.buf, t.saturating_sub(self.prev_t).max(0) as u64);
        self.buf.push(q);
        let mut cut = v.len().min(MAX_TEXT_BYTES);
        while !v.is_char_boundary(cut) {
            cut -= 1;
        }
        varint(&mut self.buf, cut as u64);
        self.buf.extend_from_slice(&v.as_bytes()[..cut]);
        self.prev_t = t;
        self.n += 1;
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + self.buf.len());
        out.push(TEXT_VERSION);
        out.extend_from_slice(&self.n.to_le_bytes());
        out.extend_from_slice(&self.t0.to_le_bytes());
        out.extend_from_slice(&self.buf);
        out
    }
}

/// Calls `f(t, value, quality)` for every sample of a stored block, in time order; stops early
/// when `f` returns false or the blob is damaged.
pub fn decode(blob: &[u8], mut f: impl FnMut(i64, Val, Q) -> bool) {
    match blob.first() {
        Some(&NUM_VERSION) => decode_num(blob, |t, v, q| f(t, Val::Num(v), q)),
        Some(&TEXT_VERSION) => decode_text(blob, f),
        _ => {}
    }
}

/// Numeric blocks only, without allocating per sample (the query's hot path).
pub fn decode_num(blob: &[u8], mut f: impl FnMut(i64, f64, Q) -> bool) {
    if blob.len() < NUM_HEADER || blob[0] != NUM_VERSION {
        return;
    }
    let le8 = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&blob[i..i + 8]);
        a
    };
    let n = u32::from_le_bytes([blob[1], blob[2], blob[3], blob[4]]);
    let mut t = i64::from_le_bytes(le8(5));
    let mut v = u64::from_le_bytes(le8(13));
    let mut q = blob[21] & 3;
    if !f(t, f64::from_bits(v), q) {
        return;
    }
    let mut r = Reader {
        buf: &blob[NUM_HEADER..],
        pos: 0,
    };
    let (mut delta, mut lead, mut trail) = (0i64, 0u8, 0u8);
    for _ in 1..n {
        let Some(dod) = (|| {
            if r.bit()? == 0 {
                return Some(0);
            }
            if r.bit()? == 0 {
                return Some(signed(r.bits(7)?, 7));
            }
            if r.bit()? == 0 {
                return Some(signed(r.bits(9)?, 9));
            }
            if r.bit()? == 0 {
                return Some(signed(r.bits(12)?, 12));
            }
            if r.bit()? == 0 {
                return Some(signed(r.bits(32)?, 32));
            }
            Some(r.bits(64)? as i64)
        })() else {
            return;
        };
        delta = delta.saturating_add(dod);
        t = t.saturating_add(delta);
        let Some(()) = (|| {
            if r.bit()? == 1 {
                if r.bit()? == 1 {
                    lead = r.bits(5)? as u8;
                    let len = r.bits(6)? as u8 + 1;
                    if u32::from(lead) + u32::from(len) > 64 {
                        return None;
                    }
                    trail = 64 - lead - len;
                }
                let len = 64u8.checked_sub(lead + trail).filter(|l| *l > 0)?;
                v ^= r.bits(len)? << trail;
            }
            if r.bit()? == 1 {
                q = r.bits(2)? as u8;
            }
            Some(())
        })() else {
            return;
        };
        if !f(t, f64::from_bits(v), q) {
            return;
        }
    }
}

fn decode_text(blob: &[u8], mut f: impl FnMut(i64, Val, Q) -> bool) {
    if blob.len() < 13 {
        return;
    }
    let n = u32::from_le_bytes([blob[1], blob[2], blob[3], blob[4]]);
    let mut a = [0u8; 8];
    a.copy_from_slice(&blob[5..13]);
    let mut t = i64::from_le_bytes(a);
    let mut pos = 13;
    for _ in 0..n {
        let Some(d) = read_varint(blob, &mut pos) else {
            return;
        };
        t = t.saturating_add(d as i64);
        let Some(&q) = blob.get(pos) else { return };
        pos += 1;
        let Some(len) = read_varint(blob, &mut pos) else {
            return;
        };
        let Some(bytes) = blob.get(pos..pos.saturating_add(len as usize)) else {
            return;
        };
        pos += len as usize;
        if !f(
            t,
            Val::Text(String::from_utf8_lossy(bytes).into_owned()),
            q & 3,
        ) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(samples: &[(i64, f64, Q)]) -> (Vec<(i64, f64, Q)>, usize) {
        let mut e = NumEncoder::new(samples[0].0, samples[0].1, samples[0].2);
        for &(t, v, q) in &samples[1..] {
            e.push(t, v, q);
        }
        let b = e.bytes();
        let mut out = Vec::new();
        decode_num(&b, |t, v, q| {
            out.push((t, v, q));
            true
        });
        (out, b.len())
    }

    #[test]
    fn numbers_round_trip_bit_exact_including_nan_and_extremes() {
        let mut s = vec![(1_700_000_000_000, 1.5, 0)];
        let vals = [
            1.5,
            2.25,
            -0.0,
            f64::NAN,
            f64::MAX,
            f64::MIN_POSITIVE,
            42.0,
            42.0,
            1e-300,
        ];
        let mut t = s[0].0;
        for (i, v) in vals.iter().enumerate() {
            t += [1000, 1000, 3, 70_000, 5_000_000_000, 1][i % 6];
            s.push((t, *v, (i % 3) as u8));
        }
        let (out, _) = roundtrip(&s);
        assert_eq!(out.len(), s.len());
        for (a, b) in out.iter().zip(&s) {
            assert_eq!((a.0, a.1.to_bits(), a.2), (b.0, b.1.to_bits(), b.2));
        }
    }

    #[test]
    fn a_steady_float_signal_costs_few_bytes_per_sample() {
        let s: Vec<(i64, f64, Q)> = (0..256)
            .map(|i| {
                let v = (50.0 + (i as f32 * 0.01).sin() * 0.02) as f64;
                (1_700_000_000_000 + i * 1000, v, 0)
            })
            .collect();
        let (out, len) = roundtrip(&s);
        assert_eq!(out.len(), 256);
        assert!(len <= 4 * 256, "{len} bytes for 256 samples");
    }

    #[test]
    fn text_round_trips_and_damage_stops_decoding() {
        let mut e = TextEncoder::new(10, "RUN", 0);
        e.push(20, "STOP", 2);
        let b = e.bytes();
        let mut out = Vec::new();
        decode(&b, |t, v, q| {
            out.push((t, v, q));
            true
        });
        assert_eq!(
            out,
            vec![
                (10, Val::Text("RUN".into()), 0),
                (20, Val::Text("STOP".into()), 2)
            ]
        );
        let mut n = 0;
        decode(&b[..b.len() - 2], |_, _, _| {
            n += 1;
            true
        });
        assert_eq!(n, 1);
        decode(&[1, 255, 255, 255, 255], |_, _, _| panic!("no sample"));
    }
}
