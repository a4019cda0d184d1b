//! Changing `config.json` while running: the JSON diff that is audited, which changes need a
//! restart, the file's version (a hash), and the atomic write that keeps numbered backups.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::Config;

/// Backups `config.json.bak.<n>` kept next to the file.
pub const BACKUPS: usize = 10;
/// Differences listed at most (the rest is counted).
const MAX_DIFFS: usize = 200;

/// One changed value, by JSON pointer (`/tags/alpha~1P/range`).
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// Every leaf that differs between `old` and `new` (objects key by key; arrays element by
/// element when their lengths match, else as a whole), in document order; bounded.
pub fn diff(old: &Value, new: &Value) -> Vec<Diff> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn walk(at: &str, old: &Value, new: &Value, out: &mut Vec<Diff>) {
    if out.len() >= MAX_DIFFS || old == new {
        return;
    }
    let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                walk(&key(k), v, b.get(k).unwrap_or(&Value::Null), out);
            }
            for (k, v) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                walk(&key(k), &Value::Null, v, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{at}/{i}"), x, y, out);
            }
        }
        _ => out.push(Diff {
            path: if at.is_empty() { "/".into() } else { at.into() },
            old: old.clone(),
            new: new.clone(),
        }),
    }
}

/// The audit form of a diff: `[{"path","old","new"},…]`.
pub fn diff_json(d: &[Diff]) -> Value {
    Value::Array(
        d.iter()
            .map(|d| json!({"path": d.path, "old": d.old, "new": d.new}))
            .collect(),
    )
}

/// Changes that take effect only after a restart (JSON pointers; `/remote` minus
/// `allow_remote_writes`, which every write reads afresh).
const RESTART: &[&str] = &[
    "/remote",
    "/database",
    "/logging",
    "/pki_dir",
    "/auth/source_failures_per_minute",
    "/auth/write_rate_per_second",
    "/broadcast_interval_seconds",
    "/history/enabled",
    "/history/database",
    "/hub/username",
    "/hub/client_id",
    "/hub/tls",
    "/hub/max_tags_per_park",
];

/// The configuration keys (dotted, e.g. `remote.listen`) whose change between `old` and `new`
/// needs a restart; everything else is applied at once.
pub fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return vec!["$".into()];
    };
    let mut keys: Vec<String> = diff(&a, &b)
        .into_iter()
        .filter(|d| d.path != "/remote/allow_remote_writes")
        .filter_map(|d| {
            let hit = RESTART
                .iter()
                .find(|r| d.path == **r || d.path.starts_with(&format!("{r}/")))?;
            // `remote.tls.cert` → `remote.tls`: name the setting, not every leaf.
            let depth = if *hit == "/remote" {
                2
            } else {
                hit.matches('/').count()
            };
            let parts: Vec<&str> = d
                .path
                .trim_start_matches('/')
                .split('/')
                .take(depth)
                .collect();
            Some(parts.join("."))
        })
        .collect();
    keys.dedup();
    keys.sort();
    keys.dedup();
    keys
}

/// The version of a configuration file: SHA-256 of its bytes, hex.
pub fn version_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Replaces `path` with `text` atomically: the current file is copied to
/// `<name>.bak.<n>` (n one above the highest kept; only the last [`BACKUPS`] are kept), the new
/// text goes to a temporary file in the same directory, is flushed to disk, then renamed over
/// the original (and the directory synced), so a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.json".into());
    if path.exists() {
        let mut kept = backups(&dir, &name)?;
        let next = kept.last().map_or(1, |(n, _)| n + 1);
        std::fs::copy(path, dir.join(format!("{name}.bak.{next}")))?;
        kept.push((next, dir.join(format!("{name}.bak.{next}"))));
        while kept.len() > BACKUPS {
            let (_, old) = kept.remove(0);
            let _ = std::fs::remove_file(old);
        }
    }
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The backups of `name` in `dir`, oldest first: `(n, path)`.
pub fn backups(dir: &Path, name: &str) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let prefix = format!("{name}.bak.");
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_changed_leaves() {
        let a = json!({"tags": {"a/P": {"range": [0, 10]}}, "x": [1, 2], "gone": 1});
        let b = json!({"tags": {"a/P": {"range": [0, 20]}}, "x": [1], "new": true});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/tags/a~1P/range/1", "/x", "/gone", "/new"]);
        assert_eq!(d[0].new, json!(20));
    }

    #[test]
    fn atomic_write_keeps_the_last_ten_backups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, "0").unwrap();
        for i in 1..=12 {
            write_atomic(&p, &i.to_string()).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "12");
        let b = backups(dir.path(), "config.json").unwrap();
        assert_eq!(b.len(), BACKUPS);
        assert_eq!(b.first().unwrap().0, 3);
        assert_eq!(std::fs::read_to_string(&b.last().unwrap().1).unwrap(), "11");
    }
}
