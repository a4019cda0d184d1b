//! `stator discover`: the commissioning tool.

use crate::cli::DiscoverArgs;

pub fn run(_args: DiscoverArgs) -> i32 {
    eprintln!("error: stator discover is not implemented yet");
    1
}
