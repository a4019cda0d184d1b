//! Argon2id hashing of passwords and PINs, the dummy hash for unknown users, and the policy.
//!
//! Parameters were measured on the 2-core development machine so that one verify takes about
//! 100 ms (see docs/performance.md, "Auth"): slow enough to make guessing expensive, fast enough
//! for a login. The PHC string stores the parameters, so raising them later keeps old hashes valid.

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use sha2::{Digest, Sha256};

/// Memory cost in KiB (argon2 0.6 default: 19 MiB).
pub const M_COST_KIB: u32 = 65_536;
/// Iterations (argon2 0.6 default: 2).
pub const T_COST: u32 = 3;
/// Lanes.
pub const P_COST: u32 = 1;
/// Upper bound on a password's length in bytes (beyond this is abuse, not a password).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn hasher() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password or PIN with a fresh random salt into a PHC string.
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let h: Result<PasswordHash, _> = hasher().hash_password(secret.as_bytes());
    h.map(|h| h.to_string())
        .map_err(|e| format!("cannot hash: {e}"))
}

/// Verifies a secret against a PHC string; a malformed stored hash simply does not verify.
pub fn verify_secret(phc: &str, secret: &str) -> bool {
    if secret.len() > MAX_PASSWORD_BYTES {
        // Still spend the time, so that length does not tell anything.
        let _ = verify_inner(dummy_hash(), "x");
        return false;
    }
    verify_inner(phc, secret)
}

fn verify_inner(phc: &str, secret: &str) -> bool {
    hasher().verify_password(secret.as_bytes(), phc).is_ok()
}

/// A hash of a random secret with the current parameters, verified against for unknown users
/// so that they cost the same time as known ones. Computed once per process.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        hash_secret(&hex::encode(raw)).unwrap_or_default()
    })
}

/// The password policy: minimum length (in characters), not the username (case-insensitive),
/// bounded size.
pub fn check_policy(username: &str, password: &str, min_len: usize) -> Result<(), String> {
    if password.chars().count() < min_len {
        return Err(format!("password must be at least {min_len} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if password.trim().to_lowercase() == username.trim().to_lowercase() {
        return Err("password must not be the username".into());
    }
    Ok(())
}

/// A panel PIN: 4 to 8 ASCII digits.
pub fn check_pin(pin: &str) -> Result<(), String> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("PIN must be 4 to 8 digits".into())
    }
}

/// Badge IDs are identifiers (typed by a reader), not secrets of their own: stored as the
/// SHA-256 (hex) of the trimmed ID so the database does not hold them in clear.
pub fn badge_hash(badge: &str) -> String {
    hex::encode(Sha256::digest(badge.trim().as_bytes()))
}

/// A valid username: 1-64 characters of ASCII letters, digits, `.`, `_`, `-`, `@`, starting with
/// a letter or digit (ASCII keeps case-insensitive uniqueness exact).
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid username {name:?}: use 1-64 characters a-z, 0-9, '.', '_', '-', '@', starting with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_and_rejects() {
        let h = hash_secret("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=65536,t=3,p=1$"), "{h}");
        assert!(verify_secret(&h, "correct horse"));
        assert!(!verify_secret(&h, "correct horsE"));
        assert!(!verify_secret("garbage", "x"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("anna", "short", 8).is_err());
        assert!(check_policy("annabelle", "AnnaBelle", 8).is_err());
        assert!(check_policy("anna", "long enough", 8).is_ok());
        assert!(check_pin("1234").is_ok());
        assert!(check_pin("123").is_err());
        assert!(check_pin("123456789").is_err());
        assert!(check_pin("12a4").is_err());
        assert!(check_username("anna.b").is_ok());
        assert!(check_username("änna").is_err());
        assert!(check_username("").is_err());
        assert_eq!(badge_hash(" 0042 "), badge_hash("0042"));
    }
}
