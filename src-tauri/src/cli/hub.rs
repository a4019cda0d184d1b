//! `stator hub --mqtt URL [--group G]`: the Sparkplug B central view, headless, until
//! Ctrl-C/SIGTERM. Same configuration, store and remote server as `serve`; the live cache is fed
//! by the edge nodes on the broker instead of the PLC engine.

use super::{CliError, CliResult, GlobalArgs, HubArgs};
use crate::app::Feed;

/// Entry point of `stator hub`.
pub(super) fn run(global: &GlobalArgs, args: HubArgs) -> CliResult {
    let cfg = super::load_config(global)?;
    let broker = crate::config::parse_broker_url(&args.mqtt)
        .map_err(|e| CliError::usage(format!("--mqtt: {e}")))?;
    let group = match (args.group, &cfg.mqtt) {
        (Some(g), _) => g,
        (None, Some(m)) => m.group_id.clone(),
        (None, None) => {
            return Err(CliError::usage(
                "--group is required (the configuration has no mqtt.group_id)",
            ))
        }
    };
    crate::config::sparkplug_id(&group).map_err(|e| CliError::usage(format!("--group: {e}")))?;
    let tls_ca = cfg.hub.as_ref().and_then(|h| h.tls.as_ref());
    if tls_ca.is_some() && !broker.tls {
        return Err(CliError::usage(
            "hub.tls only applies to an mqtts:// broker (--mqtt)",
        ));
    }
    super::serve::run_fed(
        global,
        cfg,
        args.listen.as_deref(),
        Feed::Hub { broker, group },
    )
}
