//! `stator sim`: runs the simulator until Ctrl-C / SIGTERM.
//!
//! Prints one endpoint URL per park on stdout (one per line, so scripts can read them), a
//! summary on stderr, and exits 2 with one line on a bad `--listen` or option.

use std::io::Write;

use super::{start, SimError, SimOptions};
use crate::cli::{SimArgs, EXIT_CONFIG, EXIT_FAILURE};

/// Entry point of `stator sim`; returns the process exit code.
pub fn run(args: SimArgs) -> i32 {
    let opts = SimOptions::from(&args);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    rt.block_on(async move {
        // Nothing logs before the options are checked, so a bad --listen stays one line.
        crate::logging::init("warn,stator=info");
        // Listen for signals before printing the endpoints: whoever reads them may stop us.
        let shutdown = wait_for_shutdown();
        let handle = match start(opts.clone()).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return exit_code(&e);
            }
        };
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
        shutdown.await;
        handle.stop().await;
        0
    })
}

/// Exit code for a start failure: usage errors are 2, runtime failures 1.
fn exit_code(e: &SimError) -> i32 {
    match e {
        SimError::BadListen(_) | SimError::Options(_) => EXIT_CONFIG,
        _ => EXIT_FAILURE,
    }
}

/// Installs the Ctrl-C and (on Unix) SIGTERM handlers now; the future resolves on either.
fn wait_for_shutdown() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::spawn(tokio::signal::ctrl_c());
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
