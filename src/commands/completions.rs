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
    let roff = render(page)
        .map_err(|e| Error::Unexpected(format!("cannot render the manual page: {e}")))?;
    output::product(&roff)?;
    Ok(exit::SUCCESS)
}

/// The page of `command` (built) in roff: clap_mangen's sections, with the text after the
/// help (examples, exit codes) as a NOTES section whose indented lines (examples, tables)
/// keep their line breaks instead of being filled into paragraphs.
fn render(command: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = page_of(command);
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut roff)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut roff)?;
    }
    if let Some(text) = command
        .get_after_long_help()
        .or_else(|| command.get_after_help())
    {
        roff.extend_from_slice(notes(&text.to_string()).as_bytes());
    }
    if command.get_version().is_some() {
        man.render_version_section(&mut roff)?;
    }
    Ok(roff)
}

/// `text` as a roff NOTES section: plain lines are filled, indented ones printed as they
/// are (no-fill mode), every line escaped so that it is never read as a request.
fn notes(text: &str) -> String {
    let mut roff = String::from(".SH NOTES\n");
    let mut fill = true;
    for line in text.lines() {
        let indented = line.starts_with(' ');
        if indented && fill {
            roff.push_str(".nf\n");
        } else if !indented && !fill {
            roff.push_str(".fi\n");
        }
        fill = !indented;
        if !line.is_empty() {
            roff.push_str("\\&");
        }
        roff.push_str(&line.replace('\\', "\\e").replace('-', "\\-"));
        roff.push('\n');
    }
    if !fill {
        roff.push_str(".fi\n");
    }
    roff
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
    let path = dir.join(page_of(command).get_filename());
    render(command)
        .and_then(|roff| std::fs::write(&path, roff))
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    output::line(&path.display().to_string())?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_all(sub, dir)?;
    }
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::provider_lists;
    use crate::providers::{self, names_where};
    use clap::ValueEnum;

    /// Every page `man --dir` writes, as text (roff's escapes undone), with its name.
    fn pages(command: &clap::Command, out: &mut Vec<(String, String)>) {
        let roff = render(command).unwrap();
        let text = String::from_utf8(roff)
            .unwrap()
            .replace("\\-", "-")
            .replace("\\&", "")
            .replace("\\e", "\\");
        out.push((page_of(command).get_filename(), text));
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub, out);
        }
    }

    #[test]
    fn man_pages_name_the_registered_providers_from_the_registry() {
        let mut command = cli::command().disable_help_subcommand(true);
        command.build();
        let mut all = Vec::new();
        pages(&command, &mut all);
        assert!(all.len() > 10, "{}", all.len());
        for (name, text) in &all {
            provider_lists::assert_from_registry(name, text);
        }
        let flat = all[0].1.split_whitespace().collect::<Vec<_>>().join(" ");
        let about = format!("Rotate SIP passwords at {}", names_where(|_| true));
        assert!(flat.contains(&about), "{about} in {flat}");
        let (_, login) = all
            .iter()
            .find(|(name, _)| name == "siprot-login.1")
            .expect("siprot-login.1");
        for kind in providers::ALL {
            for spec in kind.registration().settings.iter().filter(|s| s.secret) {
                assert!(login.contains(spec.var), "{} in {login}", spec.var);
            }
        }
    }

    #[test]
    fn completions_offer_exactly_the_registered_providers() {
        let names: Vec<&str> = providers::ALL.iter().map(|kind| kind.name()).collect();
        for shell in clap_complete::Shell::value_variants() {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cli::command(), BIN, &mut script);
            let script = String::from_utf8(script).unwrap();
            provider_lists::assert_from_registry(&format!("{shell} completions"), &script);
            for name in &names {
                assert!(script.contains(name), "{name} not in the {shell} script");
            }
            if *shell != clap_complete::Shell::Bash {
                continue;
            }
            // Every word list that offers a provider offers exactly the registered ones.
            let lists: Vec<&str> = script
                .split("compgen -W \"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .filter(|words| words.split(' ').any(|w| names.contains(&w)))
                .collect();
            assert!(!lists.is_empty(), "{script}");
            for words in lists {
                assert_eq!(words, names.join(" "));
            }
        }
    }

    #[test]
    fn notes_keep_indented_lines_and_escape_everything() {
        let roff = notes("Examples:\n  siprot man | man -l -\n.dot \\ 'quote\n\nafter");
        assert_eq!(
            roff,
            ".SH NOTES\n\\&Examples:\n.nf\n\\&  siprot man | man \\-l \\-\n.fi\n\
             \\&.dot \\e \'quote\n\n\\&after\n"
        );
    }
}
