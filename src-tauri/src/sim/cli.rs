//! `stator sim`.

use crate::cli::SimArgs;

pub fn run(_args: SimArgs) -> i32 {
    eprintln!("error: stator sim is not implemented yet");
    1
}
