//! `stator certs list|trust`: the OPC UA PKI directory ([`crate::plc::certs`]).

use std::path::Path;

use super::{CertsCommand, CliError, CliResult, GlobalArgs};
use crate::plc::certs::{inventory, pki_dir, trust};

/// Entry point of `stator certs …`.
pub(super) fn run(global: &GlobalArgs, cmd: CertsCommand) -> CliResult {
    let cfg = super::load_config(global)?;
    let pki = pki_dir(&cfg);
    match cmd {
        CertsCommand::List => print!("{}", listing(&pki)),
        CertsCommand::Trust { plc } => {
            if cfg.plc(&plc).is_none() {
                return Err(CliError::usage(format!(
                    "no PLC with id {plc:?} in the configuration"
                )));
            }
            let p = trust(&pki, &plc).map_err(CliError::failure)?;
            println!("trusted {} for {plc}", p.display());
        }
    }
    Ok(())
}

/// A human listing of the PKI directory, with the command that trusts each noted certificate.
fn listing(pki: &Path) -> String {
    let inv = inventory(pki);
    let mut out = format!("PKI directory: {}\n", pki.display());
    out.push_str(&format!(
        "client certificate: {}\n",
        match &inv.own_cert {
            Some(p) => p.display().to_string(),
            None => "(not created yet: made on the first secure connection)".into(),
        }
    ));
    out.push_str("trusted:\n");
    for n in &inv.trusted {
        out.push_str(&format!("  {n}\n"));
    }
    out.push_str("rejected:\n");
    for r in &inv.rejected {
        if r.plcs.is_empty() {
            out.push_str(&format!("  {}\n", r.file));
        } else {
            out.push_str(&format!(
                "  {}  (from {}; `stator certs trust {}`)\n",
                r.file,
                r.plcs.join(", "),
                r.plcs[0]
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_names_the_command_that_trusts_a_noted_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path();
        std::fs::create_dir_all(pki.join("rejected")).unwrap();
        std::fs::create_dir_all(pki.join("trusted")).unwrap();
        std::fs::write(pki.join("rejected/abc.der"), b"cert").unwrap();
        std::fs::write(pki.join("rejected/stray.der"), b"cert").unwrap();
        std::fs::write(pki.join("rejected/eco.plc"), "abc.der\n").unwrap();
        std::fs::write(pki.join("trusted/t.der"), b"cert").unwrap();
        let l = listing(pki);
        assert!(
            l.contains("  abc.der  (from eco; `stator certs trust eco`)\n"),
            "{l}"
        );
        assert!(l.contains("  stray.der\n"), "{l}");
        assert!(l.contains("trusted:\n  t.der\n"), "{l}");
        assert!(l.contains("(not created yet"), "{l}");
    }
}
