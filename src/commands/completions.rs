//! `siprot completions SHELL` and `siprot man`: shell completion scripts (clap_complete)
//! and manual pages (clap_mangen), both generated from [`cli::command`], the same command
//! tree that `--help` prints, so that they never disagree with it.

use std::path::Path;

use crate::cli::{self, CompletionsArgs, ManArgs};
use crate::error::{Error, ExitCode, Result, exit};
use crate::output;

/// The name the scripts complete and the pages are titled by.
const BIN: &str = "siprot";

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, BIN, &mut script);
    output::product(&script)?;
    Ok(exit::SUCCESS)
}

/// Prints one manual page, or writes them all into `--dir`.
pub fn man(args: ManArgs) -> Result<ExitCode> {
    let mut command = cli::command().disable_help_subcommand(true);
    command.build();
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        return write_all(&command, dir);
    }
    let mut page = &command;
    for name in &args.path {
        page = page.find_subcommand(name).ok_or_else(|| {
            Error::Usage(format!(
                "no subcommand '{}' of '{}' (see siprot --help)",
                name.escape_debug(),
                page.get_display_name().unwrap_or(BIN)
            ))
        })?;
    }
    let mut roff = Vec::new();
    page_of(page)
        .render(&mut roff)
        .map_err(|e| Error::Unexpected(format!("cannot render the manual page: {e}")))?;
    output::product(&roff)?;
    Ok(exit::SUCCESS)
}

/// The page of `command` (built), titled by its display name (`siprot-secret-get`), its
/// source siprot and its version.
fn page_of(command: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(command.clone())
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("siprot manual")
}

/// Writes the page of `command` and of each of its subcommands (recursively) into `dir`,
/// printing each file's path.
fn write_all(command: &clap::Command, dir: &Path) -> Result<ExitCode> {
    let path = page_of(command)
        .generate_to(dir)
        .map_err(|e| Error::io(format!("cannot write {}", dir.display()), e))?;
    output::line(&path.display().to_string())?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_all(sub, dir)?;
    }
    Ok(exit::SUCCESS)
}
