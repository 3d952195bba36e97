//! siprot rotates SIP passwords at telecom providers and keeps every new secret in the
//! operating system's keyring, so that a password is never lost, printed by accident or
//! left in a shell history.
//!
//! The map of the crate, from the command line inwards:
//! - [`cli`]: clap definitions only;
//! - [`commands`]: one module per subcommand, wiring and output;
//! - [`rotation`]: the protocol, the only place that orders keyring writes and requests;
//! - [`fleet`]: many rotations at once, bounded per provider, verified apart with `--verify`;
//! - [`hook`]: the post-rotation hook (`--exec`, `siprot exec`) run after the store;
//! - [`inventory`]: the fleet's TOML inventory, validated with line numbers;
//! - [`recovery`]: finishing what interrupted rotations left (`#pending`, recovery files);
//! - [`rollback`]: `rotate --verify` after the rotation: verify, and set the previous
//!   password back through [`rotation`] when asked and rejected;
//! - [`verification`]: what `verify` and `rotate --verify` check (target, previous
//!   password, asking again with `--verify-wait`), what the answers mean, and their audit
//!   line;
//! - [`sip`]: proving a password works with a SIP REGISTER to the registrar;
//! - [`providers`]: the [`providers::Provider`] trait and one module per provider;
//! - [`policy`]: password rules per provider and generation;
//! - [`store`]: keyring entries (current, `#pending`, `#previous`);
//! - [`state`]: audit log and recovery files under `$XDG_STATE_HOME/siprot`;
//! - [`audit`]: the audit log's actions and outcomes;
//! - [`lock`]: one rotation per credential at a time;
//! - [`http`]: the one configured HTTP client;
//! - [`redact`]: provider messages on one line with secrets masked, JSON errors unquoted;
//! - [`proxy`]: which proxy, if any, a request goes through (never one for `http://`);
//! - [`retry`]: retry budget, backoff and `Retry-After`;
//! - [`settings`]: a provider account's settings and their sources (flag, environment,
//!   profile, `siprot login`'s store entries); [`profiles`]: the config file's profiles;
//! - [`config`]: settings from the environment;
//! - [`trust`]: files read as settings: regular, small and (inventory, config file) not
//!   writable by anyone else;
//! - [`input`]: reading passwords from standard input;
//! - [`interrupt`]: SIGINT, SIGTERM and SIGHUP during a rotation;
//! - [`error`]: the error enum and its exit codes;
//! - [`output`]: human and JSON rendering;
//! - [`logging`]: `-v`/`-vv`/`RUST_LOG` diagnostics on standard error;
//! - [`checkpoint`]: points where tests stop the process (debug builds only).

// Standard output and error are written only through `output`, which never panics on a
// failed write (`println!` and `eprintln!` do).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod audit;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fleet;
pub mod hook;
pub mod http;
pub mod input;
pub mod interrupt;
pub mod inventory;
pub mod lock;
pub mod logging;
pub mod output;
pub mod policy;
pub mod profiles;
#[cfg(test)]
mod protocol_tests;
pub mod providers;
pub mod proxy;
pub mod recovery;
pub mod redact;
pub mod retry;
pub mod rollback;
pub mod rotation;
pub mod settings;
pub mod sip;
pub mod state;
pub mod store;
pub mod trust;
pub mod verification;

pub use error::{Error, Result};

/// Runs siprot with already parsed arguments and returns the process exit code.
pub fn run(cli: cli::Cli) -> error::ExitCode {
    logging::init(cli.verbose);
    output::set_quiet(cli.quiet);
    profiles::choose(cli.profile.clone());
    commands::run(cli)
}
