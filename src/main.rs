use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(siprot::run(siprot::cli::parse()).code())
}
