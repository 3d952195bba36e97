use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    ExitCode::from(siprot::run(siprot::cli::Cli::parse()))
}
