//! Secrets (PLC passwords) in the OS keyring, service `stator`, entry e.g. `plc/<id>`.
//!
//! Backend order (see docs/security.md):
//! 1. the Secret Service over D-Bus (GNOME Keyring, KWallet, KeePassXC) when a session offers it;
//! 2. otherwise an encrypted secret file (`secret_file.rs`: AES-256-GCM) under the data
//!    directory, which persists across reboots on a headless panel. Its key comes from a systemd
//!    credential (`$CREDENTIALS_DIRECTORY/stator-secrets-key`, which can be sealed by the TPM), or
//!    `STATOR_SECRETS_KEY_FILE`, or a random key file created once (mode 0600) in the
//!    *configuration* directory — not next to the store, so a backup of the data folder does not
//!    carry the key that opens it.
//!
//! There is never a plaintext fallback: when neither works, the error says what to install or
//! configure. `STATOR_SECRET_BACKEND=secret-service|file` forces one; `STATOR_SECRETS_DB` moves
//! the file store. All functions block (D-Bus / file I/O): call them from `spawn_blocking`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyring_core::api::CredentialStore;
use parking_lot::Mutex;

use super::secret_file::{self, SecretFile};

/// The keyring service name of every Stator secret.
pub const SERVICE: &str = "stator";

/// Why a secret operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No backend could be opened; the text says what to install or configure.
    #[error("no usable keyring backend: {0}")]
    NoBackend(String),
    /// The backend refused or failed the operation.
    #[error("keyring ({backend}): {message}")]
    Backend { backend: String, message: String },
    /// A malformed key.
    #[error("invalid secret key {0:?}: use e.g. plc/<id> (1-128 printable characters)")]
    InvalidKey(String),
}

/// An opened secret store.
#[derive(Clone)]
pub struct Secrets {
    backend: Backend,
    name: String,
}

#[derive(Clone)]
enum Backend {
    Keyring(Arc<CredentialStore>),
    File(Arc<SecretFile>),
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("backend", &self.name)
            .finish()
    }
}

/// Name of the systemd credential holding the file store's key.
pub const SYSTEMD_CREDENTIAL: &str = "stator-secrets-key";
const CIPHER: &str = "aes-256-gcm";

impl Secrets {
    /// Picks the backend (Secret Service, else the encrypted file store), honouring
    /// `STATOR_SECRET_BACKEND`.
    pub fn detect() -> Result<Secrets, SecretError> {
        let forced = std::env::var("STATOR_SECRET_BACKEND").unwrap_or_default();
        match forced.as_str() {
            "secret-service" => return Self::secret_service(),
            "file" => return Self::file_default(),
            "" => {}
            other => {
                return Err(SecretError::NoBackend(format!(
                    "STATOR_SECRET_BACKEND={other:?} is not one of secret-service, file"
                )))
            }
        }
        let ss_err = match Self::secret_service() {
            Ok(s) => return Ok(s),
            Err(e) => e,
        };
        tracing::debug!(error = %ss_err, "Secret Service unavailable; using the encrypted file store");
        Self::file_default().map_err(|file_err| {
            SecretError::NoBackend(format!(
                "the Secret Service is not available ({ss_err}; on a desktop start GNOME Keyring or \
                 KeePassXC with its Secret Service integration) and the encrypted file store failed \
                 ({file_err}; make the data directory writable or set STATOR_SECRETS_DB to a writable \
                 path)"
            ))
        })
    }

    /// The Secret Service over the D-Bus session bus, if one answers.
    pub fn secret_service() -> Result<Secrets, SecretError> {
        #[cfg(target_os = "linux")]
        {
            let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| {
                SecretError::NoBackend(format!(
                    "Secret Service over D-Bus: {e} (needs a D-Bus session bus and a Secret Service \
                     provider such as gnome-keyring-daemon or KeePassXC)"
                ))
            })?;
            let s = Secrets {
                backend: Backend::Keyring(store),
                name: "secret-service".into(),
            };
            // Probe: a lookup must work (NoEntry is fine); a locked or absent collection fails.
            s.get("stator-probe").map_err(|e| {
                SecretError::NoBackend(format!("Secret Service did not answer a lookup: {e}"))
            })?;
            Ok(s)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(SecretError::NoBackend(
                "the Secret Service backend is only built on Linux".into(),
            ))
        }
    }

    /// The encrypted file store at its default place (`STATOR_SECRETS_DB`, else
    /// `<data dir>/secrets.enc`) with its key from the systemd credential, `STATOR_SECRETS_KEY_FILE`,
    /// or `<config dir>/secrets.key` (a different folder than the store's).
    pub fn file_default() -> Result<Secrets, SecretError> {
        let dirs = directories::ProjectDirs::from("", "", "stator");
        let db = std::env::var_os("STATOR_SECRETS_DB")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                dirs.as_ref()
                    .map(|d| d.data_dir().join("secrets.enc"))
                    .unwrap_or_else(|| PathBuf::from("secrets.enc"))
            });
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join(SYSTEMD_CREDENTIAL);
            if p.exists() {
                return Self::file(&db, &p, false);
            }
        }
        if let Some(k) = std::env::var_os("STATOR_SECRETS_KEY_FILE") {
            return Self::file(&db, Path::new(&k), false);
        }
        // With an explicit store path the key sits beside it (tests, portable installs);
        // otherwise in the configuration directory.
        let key = match (std::env::var_os("STATOR_SECRETS_DB"), dirs) {
            (None, Some(d)) => d.config_dir().join("secrets.key"),
            _ => db.with_extension("key"),
        };
        Self::file(&db, &key, true)
    }

    /// The encrypted file store at `db` with the hex key in `key_file`. With `create_key`, a
    /// missing key file is created (random 256-bit key, mode 0600) if the store does not exist
    /// yet; an existing store never gets a new key silently.
    pub fn file(db: &Path, key_file: &Path, create_key: bool) -> Result<Secrets, SecretError> {
        let err = |m: String| {
            SecretError::NoBackend(format!("encrypted file store {}: {m}", db.display()))
        };
        for dir in [db.parent(), key_file.parent()]
            .into_iter()
            .flatten()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        }
        if !key_file.exists() {
            if !create_key {
                return Err(err(format!(
                    "key file {} does not exist",
                    key_file.display()
                )));
            }
            if db.exists() {
                return Err(err(format!(
                    "the store exists but its key file {} is missing; restore the key file (a new key cannot read the old store)",
                    key_file.display()
                )));
            }
            create_key_file(key_file).map_err(|e| {
                err(format!(
                    "cannot create key file {}: {e}",
                    key_file.display()
                ))
            })?;
        }
        let hex = std::fs::read_to_string(key_file)
            .map_err(|e| err(format!("cannot read key file {}: {e}", key_file.display())))?;
        let key = secret_file::parse_key(&hex)
            .map_err(|e| err(format!("bad key in {}: {e}", key_file.display())))?;
        let file = SecretFile::open(db, &key).map_err(err)?;
        Ok(Secrets {
            backend: Backend::File(Arc::new(file)),
            name: format!("encrypted-file ({}, {CIPHER})", db.display()),
        })
    }

    /// Which backend this is, for diagnostics.
    pub fn backend_name(&self) -> String {
        self.name.clone()
    }

    fn entry(
        &self,
        store: &CredentialStore,
        key: &str,
    ) -> Result<keyring_core::Entry, SecretError> {
        store
            .build(SERVICE, key, None::<&HashMap<&str, &str>>)
            .map_err(|e| self.fail(e.to_string()))
    }

    fn fail(&self, message: String) -> SecretError {
        SecretError::Backend {
            backend: self.name.clone(),
            message,
        }
    }

    /// The secret under `key`, `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<String>, SecretError> {
        check_key(key)?;
        match &self.backend {
            Backend::File(f) => f.get(key).map_err(|e| self.fail(e)),
            Backend::Keyring(store) => match self.entry(store.as_ref(), key)?.get_password() {
                Ok(s) => Ok(Some(s)),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(self.fail(e.to_string())),
            },
        }
    }

    /// Stores (or replaces) the secret under `key`.
    pub fn set(&self, key: &str, value: &str) -> Result<(), SecretError> {
        check_key(key)?;
        match &self.backend {
            Backend::File(f) => f.set(key, value).map_err(|e| self.fail(e)),
            Backend::Keyring(store) => self
                .entry(store.as_ref(), key)?
                .set_password(value)
                .map_err(|e| self.fail(e.to_string())),
        }
    }

    /// Deletes the secret under `key`; returns false when there was none.
    pub fn delete(&self, key: &str) -> Result<bool, SecretError> {
        check_key(key)?;
        match &self.backend {
            Backend::File(f) => f.delete(key).map_err(|e| self.fail(e)),
            Backend::Keyring(store) => match self.entry(store.as_ref(), key)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(self.fail(e.to_string())),
            },
        }
    }
}

fn check_key(key: &str) -> Result<(), SecretError> {
    if key.is_empty() || key.len() > 128 || key.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(SecretError::InvalidKey(key.to_string()));
    }
    Ok(())
}

fn create_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut raw = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(hex::encode(raw).as_bytes())?;
    f.sync_all()
}

static GLOBAL: Mutex<Option<Secrets>> = Mutex::new(None);

/// The process-wide backend, detected once (what `stator secret` and the engine use).
pub fn global() -> Result<Secrets, SecretError> {
    let mut g = GLOBAL.lock();
    if let Some(s) = g.as_ref() {
        return Ok(s.clone());
    }
    let s = Secrets::detect()?;
    tracing::info!(backend = %s.backend_name(), "keyring backend");
    *g = Some(s.clone());
    Ok(s)
}

/// The secret under `key` (e.g. `plc/eco_solar`) from the process-wide backend.
pub fn get(key: &str) -> Result<Option<String>, SecretError> {
    global()?.get(key)
}

/// Stores a secret in the process-wide backend.
pub fn set(key: &str, value: &str) -> Result<(), SecretError> {
    global()?.set(key, value)
}

/// Deletes a secret from the process-wide backend; returns false when there was none.
pub fn delete(key: &str) -> Result<bool, SecretError> {
    global()?.delete(key)
}

/// The process-wide backend's name, or the reason there is none (for diagnostics).
pub fn backend_name() -> String {
    match global() {
        Ok(s) => s.backend_name(),
        Err(e) => format!("none: {e}"),
    }
}
