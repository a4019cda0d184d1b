//! The one-time setup code that `POST /api/setup` asks for while no user exists.
//!
//! Why: creating the first superuser from a browser is allowed only on the panel machine
//! (loopback), but a web page open in that browser runs on the panel machine too. The code is
//! printed to the server's log/console at start, which a person at the panel can read and a web
//! page cannot. The local panel window does not go through HTTP and does not need it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::Rng;

/// Crockford base32 without look-alikes (no I, L, O, U).
const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 12 symbols = 60 bits: out of reach at the allowed guessing rate.
const LEN: usize = 12;
/// Wrong codes accepted per window before `rate_limited`.
const MAX_WRONG: usize = 5;
const WINDOW: Duration = Duration::from_secs(60);

/// Why a code was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CodeError {
    /// Missing or wrong code, or setup already done.
    Wrong,
    /// Too many wrong codes lately; retry after this many seconds.
    RateLimited(u64),
}

/// The code (None once used) and the times of recent wrong guesses.
pub(super) struct SetupCode {
    code: Mutex<Option<String>>,
    wrong: Mutex<VecDeque<Instant>>,
}

impl SetupCode {
    /// A fresh random code.
    pub(super) fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let code: String = (0..LEN)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect();
        Self {
            code: Mutex::new(Some(code)),
            wrong: Mutex::new(VecDeque::new()),
        }
    }

    /// The code as shown to people: `XXXX-XXXX-XXXX` (None once used).
    pub(super) fn display(&self) -> Option<String> {
        let c = self.code.lock().clone()?;
        Some(
            c.as_bytes()
                .chunks(4)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join("-"),
        )
    }

    /// Checks a code as typed (case, spaces and dashes ignored); wrong guesses are counted and
    /// at most [`MAX_WRONG`] per minute are even compared.
    pub(super) fn check(&self, given: Option<&str>) -> Result<(), CodeError> {
        let now = Instant::now();
        let mut wrong = self.wrong.lock();
        while wrong
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            wrong.pop_front();
        }
        if wrong.len() >= MAX_WRONG {
            let oldest = *wrong.front().expect("non-empty");
            let left = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(CodeError::RateLimited(left.as_secs().max(1)));
        }
        let typed: String = given
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let ok = match self.code.lock().as_deref() {
            Some(code) => constant_time_eq(code.as_bytes(), typed.as_bytes()),
            None => false,
        };
        if ok {
            Ok(())
        } else {
            wrong.push_back(now);
            Err(CodeError::Wrong)
        }
    }

    /// The first superuser exists: the code is spent.
    pub(super) fn consume(&self) {
        *self.code.lock() = None;
    }
}

/// Compares without an early exit, so that timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_code_in_any_spelling_wrong_ones_limited_and_spent_after_use() {
        let s = SetupCode::generate();
        let shown = s.display().unwrap();
        assert_eq!(shown.len(), LEN + 2);
        assert_eq!(s.check(None), Err(CodeError::Wrong));
        assert_eq!(s.check(Some(&shown.to_lowercase())), Ok(()));
        for _ in 1..MAX_WRONG {
            assert_eq!(s.check(Some("AAAA-AAAA-AAAA")), Err(CodeError::Wrong));
        }
        // The limit holds even for the right code: guessing stops, not only failing guesses.
        assert!(matches!(
            s.check(Some(&shown)),
            Err(CodeError::RateLimited(_))
        ));
        s.consume();
        assert_eq!(s.display(), None);
    }

    #[test]
    fn codes_differ() {
        assert_ne!(
            SetupCode::generate().display(),
            SetupCode::generate().display()
        );
    }
}
