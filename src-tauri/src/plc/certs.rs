//! `stator certs`: the OPC UA PKI directory.

use crate::cli::{CertsCommand, GlobalArgs};

pub fn run_cli(_global: &GlobalArgs, _cmd: CertsCommand) -> i32 {
    eprintln!("error: stator certs is not implemented yet");
    1
}
