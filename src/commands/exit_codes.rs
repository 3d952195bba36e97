//! `siprot exit-codes`: the table of exit codes ([`crate::error::EXIT_CODES`]), what each
//! means and what to do, as `siprot help exit-codes` shows it, or as JSON.

use serde::Serialize;

use crate::cli::{self, ExitCodesArgs};
use crate::error::{self, ExitCode, ExitCodeDoc, Result, exit};
use crate::output;

pub fn run(args: ExitCodesArgs) -> Result<ExitCode> {
    if args.json {
        output::json(&ExitCodesJson {
            exit_codes: error::EXIT_CODES,
        })?;
    } else {
        for line in cli::exit_code_table().lines() {
            output::requested(line)?;
        }
    }
    Ok(exit::SUCCESS)
}

/// The JSON contract: `{"exit_codes": [{"code", "summary", "meaning", "what_to_do"}]}`.
#[derive(Serialize)]
struct ExitCodesJson {
    exit_codes: &'static [ExitCodeDoc],
}
