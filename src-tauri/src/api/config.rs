//! Configuration over the API: `config_get`, `config_set`, and the SIGHUP reload, which goes the
//! same way (same validator, same audit row, same live apply).
//!
//! The version of a configuration is the SHA-256 of the file's bytes (of the running
//! configuration's JSON when Stator runs without a file): `config_set` names the version it was
//! based on and is refused with `conflict` when the file changed since, so two editors cannot
//! overwrite each other unseen.

use serde_json::Value;

use super::request::ConfigSetReq;
use super::wire::{ConfigReply, ConfigSetReply};
use super::{Api, ApiError};
use crate::auth::{Principal, Source};
use crate::config::change::{self, diff, diff_json};
use crate::config::Config;
use crate::store::AuditEntry;

/// The longest audited diff (bytes of JSON); longer ones are cut and say so.
const MAX_AUDIT_DIFF: usize = 16 * 1024;
/// The largest configuration accepted (bytes of JSON).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The running configuration as JSON and its version.
fn current(api: &Api) -> Result<(Value, String), ApiError> {
    let cfg = api.config();
    let json = serde_json::to_value(&*cfg)
        .map_err(|e| ApiError::internal(format!("encoding the configuration: {e}")))?;
    Ok((json, version(api, &cfg)?))
}

/// The version the caller must name: the file's hash (the running JSON's without a file).
fn version(api: &Api, cfg: &Config) -> Result<String, ApiError> {
    match api.config_file() {
        Some(p) => std::fs::read(p)
            .map(|b| change::version_of(&b))
            .map_err(|e| ApiError::unavailable(format!("cannot read {}: {e}", p.display()))),
        None => serde_json::to_vec(cfg)
            .map(|b| change::version_of(&b))
            .map_err(|e| ApiError::internal(e.to_string())),
    }
}

/// `config_get`.
pub(super) fn get(api: &Api) -> Result<ConfigReply, ApiError> {
    let (config, version) = current(api)?;
    Ok(ConfigReply { config, version })
}

/// `config_set {config,version,password}`: superuser (the access check), password re-entered,
/// validated like at start, refused on a stale version, audited with the diff, written
/// atomically with a backup, applied.
pub(super) async fn set(
    api: &Api,
    p: &Principal,
    r: ConfigSetReq,
) -> Result<ConfigSetReply, ApiError> {
    let _one = api.inner.config_lock.lock().await;
    let Some(path) = api.config_file().map(|p| p.to_path_buf()) else {
        return Err(ApiError::unavailable(
            "this Stator runs without a configuration file; nothing to write",
        ));
    };
    let target = path.display().to_string();
    let refuse = |e: ApiError| async {
        let entry = AuditEntry {
            new_value: Some(e.message.clone()),
            ..p.audit_entry("config_set", Some(&target), e.code.as_str())
        };
        if let Err(w) = api.auth().audit(entry).await {
            tracing::warn!(error = %w, "could not audit a refused config_set");
        }
        e
    };
    api.auth().reauthenticate(p, &r.password).await?;
    let text = match serde_json::to_string_pretty(&r.config) {
        Ok(t) if t.len() <= MAX_CONFIG_BYTES => t,
        Ok(_) => {
            let e = ApiError::invalid(format!(
                "the configuration exceeds {MAX_CONFIG_BYTES} bytes"
            ));
            return Err(refuse(e).await);
        }
        Err(e) => return Err(refuse(ApiError::invalid(e.to_string())).await),
    };
    let new = match Config::parse(&path, &text) {
        Ok(c) => c,
        Err(e) => return Err(refuse(ApiError::invalid(e.to_string())).await),
    };
    let (old_json, now_version) = current(api)?;
    if now_version != r.version {
        let e = ApiError::new(
            crate::code::Code::Conflict,
            "the configuration changed since it was read; load it again",
        );
        return Err(refuse(e).await);
    }
    let new_json = serde_json::to_value(&new).map_err(|e| ApiError::internal(e.to_string()))?;
    let changes = diff(&old_json, &new_json);
    let entry = AuditEntry {
        new_value: Some(audit_diff(&changes)),
        ..p.audit_entry("config_set", Some(&path.display().to_string()), "ok")
    };
    // The row first: a change that cannot be audited does not happen.
    api.auth()
        .audit(entry)
        .await
        .map_err(|e| ApiError::unavailable(format!("the audit trail cannot be written: {e}")))?;
    let write = {
        let (path, text) = (path.clone(), text.clone());
        tokio::task::spawn_blocking(move || change::write_atomic(&path, &text)).await
    };
    if let Err(e) = write
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        let e = ApiError::unavailable(format!("cannot write {}: {e}", path.display()));
        return Err(refuse(e).await);
    }
    let restart_required = api.apply_config(new).await;
    Ok(ConfigSetReply {
        version: change::version_of(text.as_bytes()),
        changed: changes.into_iter().map(|d| d.path).collect(),
        restart_required,
    })
}

/// The audit row's `new_value`: the JSON diff, cut at [`MAX_AUDIT_DIFF`].
fn audit_diff(changes: &[change::Diff]) -> String {
    let mut s = diff_json(changes).to_string();
    if s.len() > MAX_AUDIT_DIFF {
        let mut cut = MAX_AUDIT_DIFF;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("…(cut)");
    }
    s
}

impl Api {
    /// Re-reads the configuration file (SIGHUP) and applies it like `config_set` (audited as
    /// `config_reload` by the system); an invalid file changes nothing and the one-line error
    /// is returned (and logged by the caller). Returns what needs a restart.
    pub async fn reload_config_file(&self) -> Result<Vec<String>, String> {
        let _one = self.inner.config_lock.lock().await;
        let path = self
            .config_file()
            .ok_or("running without a configuration file")?
            .to_path_buf();
        let new = Config::load(&path).map_err(|e| e.to_string())?;
        let old = serde_json::to_value(&*self.config()).map_err(|e| e.to_string())?;
        let new_json = serde_json::to_value(&new).map_err(|e| e.to_string())?;
        let changes = diff(&old, &new_json);
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let entry = AuditEntry {
            new_value: Some(audit_diff(&changes)),
            ..Principal::system("sighup", Source::Cli).audit_entry(
                "config_reload",
                Some(&path.display().to_string()),
                "ok",
            )
        };
        self.auth()
            .audit(entry)
            .await
            .map_err(|e| format!("not applied: the audit trail cannot be written: {e}"))?;
        Ok(self.apply_config(new).await)
    }
}
