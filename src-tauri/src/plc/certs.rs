//! `stator certs`: the OPC UA PKI directory (own/, private/, trusted/, rejected/).
//!
//! async-opcua drops an unknown server certificate into `rejected/`; the engine also notes
//! which PLC presented it (`rejected/<plc id>.plc`), so `stator certs trust <plc id>` can move
//! exactly that certificate to `trusted/` without anyone reading thumbprints.

use std::path::{Path, PathBuf};

use crate::cli::{load_config, CertsCommand, GlobalArgs, EXIT_CONFIG, EXIT_FAILURE};

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

/// A human listing of the PKI directory.
pub fn list(pki: &Path) -> String {
    let mut out = format!("PKI directory: {}\n", pki.display());
    let own = pki.join("own").join("cert.der");
    out.push_str(&format!(
        "client certificate: {}\n",
        if own.exists() {
            own.display().to_string()
        } else {
            "(not created yet: made on the first secure connection)".into()
        }
    ));
    out.push_str("trusted:\n");
    for n in list_dir(&pki.join("trusted"), ".der") {
        out.push_str(&format!("  {n}\n"));
    }
    out.push_str("rejected:\n");
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
    for n in list_dir(&pki.join("rejected"), ".der") {
        let who: Vec<&str> = notes
            .iter()
            .filter(|(_, c)| *c == n)
            .map(|(p, _)| p.as_str())
            .collect();
        if who.is_empty() {
            out.push_str(&format!("  {n}\n"));
        } else {
            out.push_str(&format!(
                "  {n}  (from {}; `stator certs trust {}`)\n",
                who.join(", "),
                who[0]
            ));
        }
    }
    out
}

/// Runs `stator certs …`; returns the exit code.
pub fn run_cli(global: &GlobalArgs, cmd: CertsCommand) -> i32 {
    let cfg = match load_config(global) {
        Ok((c, _)) => c,
        Err(code) => return code,
    };
    let pki = pki_dir(&cfg);
    match cmd {
        CertsCommand::List => {
            print!("{}", list(&pki));
            0
        }
        CertsCommand::Trust { plc } => {
            if cfg.plc(&plc).is_none() {
                eprintln!("error: no PLC with id {plc:?} in the configuration");
                return EXIT_CONFIG;
            }
            match trust(&pki, &plc) {
                Ok(p) => {
                    println!("trusted {} for {plc}", p.display());
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_FAILURE
                }
            }
        }
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
        assert!(list(pki).contains("stator certs trust eco"));
        let to = trust(pki, "eco").unwrap();
        assert_eq!(to, pki.join("trusted/abc.der"));
        assert_eq!(std::fs::read(&to).unwrap(), b"cert");
        assert!(!pki.join("rejected/abc.der").exists());
        assert!(!pki.join("rejected/eco.plc").exists());
        std::fs::write(pki.join("rejected/x.plc"), "../evil").unwrap();
        assert!(trust(pki, "x").unwrap_err().contains("corrupt"));
    }
}
