//! `stator sim`: runs the simulator until Ctrl-C / SIGTERM.
//!
//! Prints one endpoint URL per park on stdout (one per line, so scripts can read them), a
//! summary on stderr, and exits 2 with one line on a bad `--listen` or option.

use std::io::Write;

use super::{CliResult, SimArgs};
use crate::sim::{SimOptions, PASSWORD_ENV};

/// The simulator options for these arguments. The password of `--secure-user` comes from
/// [`PASSWORD_ENV`] (empty when unset, which [`crate::sim::start`] refuses); the PKI dir from
/// `--pki`, else [`crate::sim::default_pki_dir`] with `--secure-user`, else a temporary dir.
fn options(a: &SimArgs) -> SimOptions {
    SimOptions {
        listen: a.listen.clone(),
        plcs: a.plcs,
        tags: a.tags,
        period_ms: a.period_ms,
        array_elements: !a.no_array_elements,
        secure_user: a
            .secure_user
            .as_ref()
            .map(|u| (u.clone(), std::env::var(PASSWORD_ENV).unwrap_or_default())),
        pki_dir: a.pki.clone().or_else(|| {
            a.secure_user.as_ref()?;
            crate::sim::default_pki_dir()
        }),
    }
}

/// Entry point of `stator sim`.
pub(super) fn run(args: SimArgs) -> CliResult {
    let opts = options(&args);
    super::runtime()?.block_on(async move {
        // Nothing logs before the options are checked, so a bad --listen stays one line.
        crate::logging::init("warn,stator=info");
        // Listen for signals before printing the endpoints: whoever reads them may stop us.
        let shutdown = super::shutdown_signal();
        let handle = crate::sim::start(opts.clone()).await?;
        {
            let mut out = std::io::stdout().lock();
            for e in handle.endpoints() {
                let _ = writeln!(out, "{e}");
            }
            let _ = out.flush();
        }
        eprintln!(
            "stator sim: {} park(s), root ns=4;i=2, {} tags each, values every {} ms{}; Ctrl-C to stop",
            handle.endpoints().len(),
            handle.tags().len(),
            opts.period_ms,
            if opts.array_elements {
                ""
            } else {
                ", arrays without element children"
            },
        );
        if let Some((user, _)) = &opts.secure_user {
            eprintln!(
                "stator sim: Basic256Sha256 Sign/SignAndEncrypt endpoints for user {user:?} \
                 (anonymous only on the None endpoint); server certificate {}; \
                 client certificates are trusted automatically (simulator only)",
                handle.pki_dir().join("own").join("cert.der").display()
            );
        }
        let scenario = async {
            let Some(super::SimScenario::Alarms) = args.scenario else {
                return std::future::pending().await;
            };
            eprintln!(
                "stator sim: scenario alarms, a step every {} s",
                args.scenario_seconds
            );
            let mut tick =
                tokio::time::interval(std::time::Duration::from_secs(args.scenario_seconds));
            tick.tick().await;
            let mut on = false;
            loop {
                tick.tick().await;
                on = !on;
                crate::sim::alarm_scenario(&handle, on);
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = scenario => {}
        }
        handle.stop().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn sim_args(args: &[&str]) -> SimArgs {
        let mut argv = vec!["stator", "sim"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").command {
            Some(Command::Sim(a)) => a,
            other => panic!("not sim: {other:?}"),
        }
    }

    #[test]
    fn the_alarm_scenario_is_an_option() {
        let a = sim_args(&["--scenario", "alarms", "--scenario-seconds", "5"]);
        assert_eq!(a.scenario, Some(crate::cli::SimScenario::Alarms));
        assert_eq!(a.scenario_seconds, 5);
        assert_eq!(sim_args(&[]).scenario, None);
        let mut argv = vec!["stator", "sim", "--scenario-seconds", "0"];
        assert!(Cli::try_parse_from(&argv).is_err());
        argv[3] = "x";
        argv[2] = "--scenario";
        assert!(Cli::try_parse_from(&argv).is_err());
    }

    #[test]
    fn options_follow_the_command_line() {
        let o = options(&sim_args(&[]));
        assert_eq!(o, SimOptions::default());
        let o = options(&sim_args(&[
            "--listen",
            "0.0.0.0:4850",
            "--plcs",
            "3",
            "--tags",
            "10000",
            "--period-ms",
            "100",
            "--no-array-elements",
            "--pki",
            "/tmp/x",
        ]));
        assert_eq!(o.listen, "0.0.0.0:4850");
        assert_eq!((o.plcs, o.tags, o.period_ms), (3, 10_000, 100));
        assert!(!o.array_elements);
        assert_eq!(o.pki_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.secure_user, None);
    }
}
