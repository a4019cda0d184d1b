//! The `stator` binary: parses the command line and hands over to [`stator::cli::run`].

fn main() {
    std::process::exit(stator::cli::run());
}
