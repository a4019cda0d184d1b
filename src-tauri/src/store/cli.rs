//! `stator user …` and `stator audit …`.

use crate::cli::{AuditCommand, GlobalArgs, UserCommand};

pub fn run_user(_global: &GlobalArgs, _cmd: UserCommand) -> i32 {
    eprintln!("error: stator user is not implemented yet");
    1
}

pub fn run_audit(_global: &GlobalArgs, _cmd: AuditCommand) -> i32 {
    eprintln!("error: stator audit is not implemented yet");
    1
}
