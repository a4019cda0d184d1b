//! The OPC UA PKI directory (own/, private/, trusted/, rejected/), as `stator certs` manages it.
//!
//! async-opcua drops an unknown server certificate into `rejected/`; the engine also notes
//! which PLC presented it (`rejected/<plc id>.plc`), so `stator certs trust <plc id>` can move
//! exactly that certificate to `trusted/` without anyone reading thumbprints.

use std::path::{Path, PathBuf};

/// The PKI directory of a configuration (`pki_dir`, default `certs`).
pub fn pki_dir(cfg: &crate::config::Config) -> PathBuf {
    cfg.pki_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("certs"))
}

/// Moves the certificate `plc_id` presented (and that was rejected) to `trusted/`.
/// Returns the trusted file's path.
pub fn trust(pki: &Path, plc_id: &str) -> Result<PathBuf, String> {
    let rejected = pki.join("rejected");
    let note = rejected.join(format!("{plc_id}.plc"));
    let name = std::fs::read_to_string(&note).map_err(|_| {
        format!(
            "no rejected certificate recorded for {plc_id} in {}: let Stator connect to it first \
             (e.g. `stator serve`), so the PLC presents its certificate",
            rejected.display()
        )
    })?;
    let name = name.trim();
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(format!("{} is corrupt", note.display()));
    }
    let from = rejected.join(name);
    let trusted = pki.join("trusted");
    std::fs::create_dir_all(&trusted)
        .map_err(|e| format!("cannot create {}: {e}", trusted.display()))?;
    let to = trusted.join(name);
    if from.exists() {
        std::fs::rename(&from, &to)
            .or_else(|_| std::fs::copy(&from, &to).and_then(|_| std::fs::remove_file(&from)))
            .map_err(|e| format!("cannot move {} to {}: {e}", from.display(), to.display()))?;
    } else if !to.exists() {
        return Err(format!(
            "{} is gone; let Stator connect again so the PLC presents its certificate",
            from.display()
        ));
    }
    let _ = std::fs::remove_file(&note);
    Ok(to)
}

fn list_dir(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// What the PKI directory holds, for `stator certs list`.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The client certificate, when it exists (made on the first secure connection).
    pub own_cert: Option<PathBuf>,
    /// File names of the trusted server certificates, sorted.
    pub trusted: Vec<String>,
    /// Rejected server certificates, sorted by file name.
    pub rejected: Vec<Rejected>,
}

/// One rejected server certificate and the PLCs noted as having presented it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// File name under `rejected/`.
    pub file: String,
    /// Ids of the PLCs that presented it (from `rejected/<plc id>.plc`), sorted.
    pub plcs: Vec<String>,
}

/// Reads the PKI directory; missing folders are empty.
pub fn inventory(pki: &Path) -> Inventory {
    let own = pki.join("own").join("cert.der");
    let notes: Vec<(String, String)> = list_dir(&pki.join("rejected"), ".plc")
        .into_iter()
        .filter_map(|n| {
            let cert = std::fs::read_to_string(pki.join("rejected").join(&n)).ok()?;
            Some((
                n.trim_end_matches(".plc").to_string(),
                cert.trim().to_string(),
            ))
        })
        .collect();
    Inventory {
        own_cert: own.exists().then_some(own),
        trusted: list_dir(&pki.join("trusted"), ".der"),
        rejected: list_dir(&pki.join("rejected"), ".der")
            .into_iter()
            .map(|file| Rejected {
                plcs: notes
                    .iter()
                    .filter(|(_, c)| *c == file)
                    .map(|(p, _)| p.clone())
                    .collect(),
                file,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_moves_the_noted_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path();
        std::fs::create_dir_all(pki.join("rejected")).unwrap();
        assert!(trust(pki, "eco")
            .unwrap_err()
            .contains("no rejected certificate"));
        std::fs::write(pki.join("rejected/abc.der"), b"cert").unwrap();
        std::fs::write(pki.join("rejected/eco.plc"), "abc.der\n").unwrap();
        assert_eq!(
            inventory(pki).rejected,
            vec![Rejected {
                file: "abc.der".into(),
                plcs: vec!["eco".into()]
            }]
        );
        let to = trust(pki, "eco").unwrap();
        assert_eq!(to, pki.join("trusted/abc.der"));
        assert_eq!(std::fs::read(&to).unwrap(), b"cert");
        assert!(!pki.join("rejected/abc.der").exists());
        assert!(!pki.join("rejected/eco.plc").exists());
        std::fs::write(pki.join("rejected/x.plc"), "../evil").unwrap();
        assert!(trust(pki, "x").unwrap_err().contains("corrupt"));
    }
}
