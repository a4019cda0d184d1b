//! The encrypted secret file for headless panels: one small file holding a JSON map of
//! secrets, sealed with AES-256-GCM (`ring`, already in the tree for TLS).
//!
//! Why not a database: the store holds a handful of PLC/MQTT passwords. A single file that is
//! rewritten atomically (temporary file, fsync, rename) is enough, is trivially backed up, and
//! costs no extra crates (the previous `db-keystore` pulled ~250 crates of the `turso` engine).
//!
//! Format: `STATORSECRETS1` (14 bytes) ‖ nonce (12 bytes, fresh for every write) ‖ ciphertext+tag
//! of the JSON object `{ "<key>": "<secret>", … }`; the magic is the AEAD's associated data. A
//! wrong key or a modified file fails to open — never an empty store silently.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

const MAGIC: &[u8] = b"STATORSECRETS1";

/// An opened encrypted secret file.
pub struct SecretFile {
    path: PathBuf,
    key: LessSafeKey,
    /// Serializes read-modify-write cycles within this process.
    lock: Mutex<()>,
}

impl SecretFile {
    /// Opens (or prepares to create) the file at `path` sealed with the 32-byte `key`. An
    /// existing file is opened once to prove the key is right.
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<SecretFile, String> {
        let unbound = UnboundKey::new(&AES_256_GCM, key).map_err(|_| "bad key".to_string())?;
        let f = SecretFile {
            path: path.to_path_buf(),
            key: LessSafeKey::new(unbound),
            lock: Mutex::new(()),
        };
        f.load()?;
        Ok(f)
    }

    fn load(&self) -> Result<BTreeMap<String, String>, String> {
        let mut bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        let not_ours = || {
            format!(
                "{} is not a Stator secret file or was damaged",
                self.path.display()
            )
        };
        if bytes.len() < MAGIC.len() + NONCE_LEN || !bytes.starts_with(MAGIC) {
            return Err(not_ours());
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[MAGIC.len()..MAGIC.len() + NONCE_LEN])
            .map_err(|_| not_ours())?;
        let sealed = &mut bytes[MAGIC.len() + NONCE_LEN..];
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(MAGIC), sealed)
            .map_err(|_| {
                format!(
                    "cannot decrypt {}: wrong key or a modified file",
                    self.path.display()
                )
            })?;
        serde_json::from_slice(plain).map_err(|_| not_ours())
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), String> {
        let mut plain = serde_json::to_vec(map).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no system randomness".to_string())?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(MAGIC),
                &mut plain,
            )
            .map_err(|_| "encryption failed".to_string())?;
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&nonce)?;
            f.write_all(&plain)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// The secret under `key`.
    pub fn get(&self, key: &str) -> Result<Option<String>, String> {
        let _g = self.lock.lock();
        Ok(self.load()?.remove(key))
    }

    /// Stores (or replaces) the secret under `key`.
    pub fn set(&self, key: &str, value: &str) -> Result<(), String> {
        let _g = self.lock.lock();
        let mut map = self.load()?;
        map.insert(key.to_string(), value.to_string());
        self.save(&map)
    }

    /// Deletes the secret under `key`; false when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, String> {
        let _g = self.lock.lock();
        let mut map = self.load()?;
        if map.remove(key).is_none() {
            return Ok(false);
        }
        self.save(&map)?;
        Ok(true)
    }
}

/// Parses a key file's content: 64 hex digits (surrounding whitespace ignored).
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let raw = hex::decode(text.trim()).map_err(|_| "not hexadecimal".to_string())?;
    raw.try_into()
        .map_err(|_| "must be 64 hex digits (256 bits)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_wrong_key_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.enc");
        let f = SecretFile::open(&p, &[7; 32]).unwrap();
        f.set("plc/a", "secret-a").unwrap();
        assert_eq!(f.get("plc/a").unwrap().as_deref(), Some("secret-a"));
        assert!(SecretFile::open(&p, &[8; 32]).is_err());
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert!(SecretFile::open(&p, &[7; 32]).is_err());
        assert!(parse_key("zz").is_err());
        assert_eq!(parse_key(&"01".repeat(32)).unwrap(), [1; 32]);
    }
}
