//! The one error type of siprot and its mapping to the documented exit codes.
//!
//! Every failure that reaches the top of the program is an [`Error`]; [`Error::exit_code`]
//! is the one map from an error to its exit code. Commands that report outcomes which are
//! not errors (a `verify` result, a fleet's or `recover`'s summary) pick their exit code
//! from the same [`exit`] constants.
//!
//! Messages are lowercase, one line, without a trailing period, and never contain a
//! password or an API key: the variants carry only names, ids, statuses and provider
//! messages. A provider is named by its registered name (`"telepath"` ...), so this module
//! depends on no provider.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::store::{Duplicates, StoreError, StoreKind};

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One of the documented exit codes (the [`exit`] constants; see the README's exit-code
/// table). Codes travel as this type (reports, recovery items, fleet outcomes, a command's
/// result) and become a number only at the process boundary ([`ExitCode::code`], in
/// `main`) and in JSON output and the audit log, where they serialize as the plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExitCode(u8);

impl ExitCode {
    /// The worse of two outcomes, for a summary of many: any failure (1 to 9) and a
    /// signal's code beat [`exit::HOOK_FAILED`] (11), which beats
    /// [`exit::NOT_VERIFIED`] (10), which beats success; among the others the higher
    /// number wins (as before 10 and 11 existed).
    pub fn worse(self, other: ExitCode) -> ExitCode {
        let rank = |code: ExitCode| match code.0 {
            0 => 0,
            10 => 1,
            11 => 2,
            n => 3 + u16::from(n),
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// The number the process exits with.
    pub const fn code(self) -> u8 {
        self.0
    }
}

/// Success (0).
impl Default for ExitCode {
    fn default() -> Self {
        exit::SUCCESS
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The documented exit codes (see the README's exit-code table).
pub mod exit {
    use super::ExitCode;

    pub const SUCCESS: ExitCode = ExitCode(0);
    pub const UNEXPECTED: ExitCode = ExitCode(1);
    /// A usage error, or the question before a step that cannot be undone answered no
    /// (nothing was sent either way).
    pub const USAGE: ExitCode = ExitCode(2);
    pub const POLICY: ExitCode = ExitCode(3);
    pub const CONFIG: ExitCode = ExitCode(4);
    pub const AUTH: ExitCode = ExitCode(5);
    pub const NOT_FOUND: ExitCode = ExitCode(6);
    pub const TRANSIENT: ExitCode = ExitCode(7);
    pub const KEYRING: ExitCode = ExitCode(8);
    pub const UNCONFIRMED: ExitCode = ExitCode(9);
    /// `verify`: the registrar never asked for the password, or still accepts the
    /// previous one; `rotate --verify`: rotated and stored, but not verified.
    pub const NOT_VERIFIED: ExitCode = ExitCode(10);
    /// The new password is stored, but the post-rotation hook failed (non-zero, killed,
    /// timed out or not started): run it again with `siprot exec`.
    pub const HOOK_FAILED: ExitCode = ExitCode(11);
    /// Stopped by SIGHUP, SIGINT or SIGTERM (128 + the signal's number) with nothing left
    /// to recover; see [`crate::interrupt`].
    pub const SIGHUP: ExitCode = ExitCode(129);
    pub const SIGINT: ExitCode = ExitCode(130);
    pub const SIGTERM: ExitCode = ExitCode(143);
}

/// What one documented exit code means: the table `siprot exit-codes` prints (and `siprot
/// help exit-codes` shows), whose summaries are the list of the top-level `--help`.
#[derive(Debug, Serialize)]
pub struct ExitCodeDoc {
    pub code: ExitCode,
    /// A few words for the list of `--help`.
    pub summary: &'static str,
    pub meaning: &'static str,
    /// What to do about it (empty for success).
    pub what_to_do: &'static str,
}

/// Every [`exit`] code, in order, with what it means and what to do (a unit test of
/// `cli` checks that no constant of [`exit`] is missing).
pub const EXIT_CODES: &[ExitCodeDoc] = &[
    ExitCodeDoc {
        code: exit::SUCCESS,
        summary: "ok",
        meaning: "success",
        what_to_do: "",
    },
    ExitCodeDoc {
        code: exit::UNEXPECTED,
        summary: "unexpected error or request refused (4xx)",
        meaning: "an unexpected error, or the provider refused the request with a 4xx other \
                  than 401/403/404/408/429",
        what_to_do: "read the message",
    },
    ExitCodeDoc {
        code: exit::USAGE,
        summary: "usage, or a question on the terminal not answered yes (nothing sent)",
        meaning: "a usage error (bad option, bad id, an operation the provider does not \
                  support), or the question a terminal gets before a rotate (of a password the \
                  provider generates: see rotate --help's --yes) or a disable was not \
                  answered yes; nothing was sent",
        what_to_do: "fix the command; answer y, or give --yes",
    },
    ExitCodeDoc {
        code: exit::POLICY,
        summary: "password fails policy",
        meaning: "the password fails the provider's policy",
        what_to_do: "choose another",
    },
    ExitCodeDoc {
        code: exit::CONFIG,
        summary: "configuration",
        meaning: "configuration missing or invalid (the message names it), an inventory with \
                  mistakes or a selection of none of its credentials, more than one keyring \
                  item for an entry, or the vault store refused the token; nothing was sent",
        what_to_do: "fix what the message names; siprot doctor checks the set-up",
    },
    ExitCodeDoc {
        code: exit::AUTH,
        summary: "API credentials rejected",
        meaning: "the provider rejected the API credentials (401/403)",
        what_to_do: "check the key or token",
    },
    ExitCodeDoc {
        code: exit::NOT_FOUND,
        summary: "not found",
        meaning: "not found: 404 at the provider, or no stored secret",
        what_to_do: "check the id",
    },
    ExitCodeDoc {
        code: exit::TRANSIENT,
        summary: "transient or another siprot busy with the credential (nothing changed, safe \
                  to retry)",
        meaning: "a transient failure (429, 503, connection refused, retries or deadline used \
                  up), or another siprot is rotating the same credential; nothing changed",
        what_to_do: "run it again later",
    },
    ExitCodeDoc {
        code: exit::KEYRING,
        summary: "keyring unusable (nothing sent)",
        meaning: "the keyring or vault store is unusable (no D-Bus session bus, no Secret \
                  Service, locked, unreachable, sealed); nothing was sent. doctor: a store \
                  check failed",
        what_to_do: "run siprot doctor: it says which and how to fix it",
    },
    ExitCodeDoc {
        code: exit::UNCONFIRMED,
        summary: "new password not confirmed in the keyring: run `siprot recover`",
        meaning: "the provider may have changed the password, but the keyring does not \
                  confirm it as current (#pending or a recovery file holds it, or the answer \
                  was lost). recover: something is left to recover",
        what_to_do: "follow the error line; usually siprot recover",
    },
    ExitCodeDoc {
        code: exit::NOT_VERIFIED,
        summary: "not verified",
        meaning: "rotate --verify: rotated and stored, but the registrar did not accept the \
                  new password (or still accepts the old one). verify: the registrar never \
                  asked for a password, or still accepts the previous one",
        what_to_do: "check the registrar and the provider; siprot status shows which",
    },
    ExitCodeDoc {
        code: exit::HOOK_FAILED,
        summary: "stored, but the hook failed: run it again with `siprot exec`",
        meaning: "the new password is stored, but the post-rotation hook exited non-zero, was \
                  killed, timed out or could not start",
        what_to_do: "run it again with siprot exec (the error line has the command)",
    },
    ExitCodeDoc {
        code: exit::SIGHUP,
        summary: "rotate stopped by SIGHUP",
        meaning: "rotate stopped by SIGHUP once the rotation in flight was safe: nothing is \
                  left to recover",
        what_to_do: "run the same command again if it was not finished",
    },
    ExitCodeDoc {
        code: exit::SIGINT,
        summary: "rotate stopped by SIGINT",
        meaning: "rotate stopped by SIGINT (Ctrl-C) once the rotation in flight was safe: \
                  nothing is left to recover",
        what_to_do: "run the same command again if it was not finished",
    },
    ExitCodeDoc {
        code: exit::SIGTERM,
        summary: "rotate stopped by SIGTERM",
        meaning: "rotate stopped by SIGTERM once the rotation in flight was safe: nothing is \
                  left to recover",
        what_to_do: "run the same command again if it was not finished",
    },
];

/// A signal siprot catches (see [`crate::interrupt`], which catches them); carried by
/// [`Error::Interrupted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signal {
    Hangup,
    Interrupt,
    Terminate,
}

impl Signal {
    /// `SIGHUP`, `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hangup => "SIGHUP",
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The conventional exit code of a process ended by this signal (128 + its number).
    pub fn exit_code(self) -> ExitCode {
        match self {
            Signal::Hangup => exit::SIGHUP,
            Signal::Interrupt => exit::SIGINT,
            Signal::Terminate => exit::SIGTERM,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong, grouped by what the operator has to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line or an id given on it is unusable.
    #[error("{0}")]
    Usage(String),

    /// The operator answered no (or nothing) to the question asked on a terminal before
    /// a step that cannot be undone ([`crate::input::confirm`]): nothing was sent.
    #[error("{0}: not confirmed, nothing was sent (--yes skips the question)")]
    Declined(String),

    /// The provider has no such operation (e.g. enable/disable at Telepath).
    #[error("{provider} does not support {operation}")]
    Unsupported {
        provider: &'static str,
        operation: &'static str,
    },

    /// A password (from standard input or a --length request) fails the provider's policy.
    #[error("{0}")]
    Policy(String),

    /// A required environment variable is not set.
    #[error("missing configuration: {var} is not set ({hint})")]
    MissingSetting { var: &'static str, hint: String },

    /// A setting is present but unusable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The provider refused our API credentials (401/403).
    #[error("{provider} rejected the API credentials (HTTP {status}): {message}")]
    Auth {
        provider: &'static str,
        status: u16,
        message: String,
    },

    /// The provider does not know this credential (404).
    #[error("{provider}: {message}")]
    NotFound {
        provider: &'static str,
        message: String,
    },

    /// The provider refused the request itself (4xx other than auth/404/429): nothing changed.
    #[error("{provider} refused the request (HTTP {status}): {message}")]
    Rejected {
        provider: &'static str,
        status: u16,
        message: String,
    },

    /// Nothing changed and the same command may simply be run again later.
    #[error("{0}; nothing was changed, safe to retry")]
    Transient(String),

    /// Another siprot process is working on the same credential: nothing was done.
    #[error("{0}; nothing was changed, try again when it has finished")]
    Busy(String),

    /// The keyring cannot be used; raised before anything was sent to a provider.
    #[error("keyring unavailable: {0}; nothing was sent to the provider")]
    KeyringUnavailable(String),

    /// A store other than the keyring cannot be reached or used now (unreachable, sealed,
    /// no leader); raised before anything was sent to a provider.
    #[error("{store} store unavailable: {message}; nothing was sent to the provider")]
    StoreUnavailable { store: StoreKind, message: String },

    /// The store refused siprot's token or settings (a missing capability, an invalid
    /// token, a missing mount); raised before anything was sent to a provider.
    #[error("{message}; nothing was sent to the provider")]
    StoreDenied { store: StoreKind, message: String },

    /// More than one keyring item matches one entry (another program added one); raised
    /// before anything was sent. The message lists the items and how to remove the extra.
    #[error("{0}; nothing was sent to the provider")]
    DuplicateItems(Duplicates),

    /// The provider may hold a new password that the keyring does not confirm as current.
    #[error("{message}")]
    Unconfirmed {
        message: String,
        recovery_file: Option<PathBuf>,
    },

    /// The request may have reached the provider, but no usable answer came back: the
    /// provider may or may not have changed the password.
    #[error("{provider}: outcome unknown: {message}")]
    OutcomeUnknown {
        provider: &'static str,
        message: String,
    },

    /// A response from the provider that siprot cannot use.
    #[error("{provider} sent an unusable response: {message}")]
    BadResponse {
        provider: &'static str,
        message: String,
    },

    /// Local I/O failed (state directory, audit log, standard streams).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// SIGINT, SIGTERM or SIGHUP stopped the command with nothing left to recover (the
    /// request was not sent, or its rotation finished or failed for sure).
    #[error("{message}")]
    Interrupted { signal: Signal, message: String },

    /// A bug or an unforeseen condition.
    #[error("unexpected error: {0}")]
    Unexpected(String),
}

impl Error {
    /// A store failure that happened before anything was sent to a provider: the keyring
    /// or another store unavailable (exit 8), duplicate items for one entry
    /// ([`Error::DuplicateItems`], exit 4), the store refusing the token or a path
    /// ([`Error::StoreDenied`], exit 4), a slot created or changed by another rotator
    /// ([`Error::Busy`], exit 7). Failures after sending are [`Error::Unconfirmed`]
    /// instead, never this.
    pub fn keyring_unavailable(error: StoreError) -> Self {
        match error {
            StoreError::Ambiguous(duplicates) => Error::DuplicateItems(duplicates),
            StoreError::Unavailable { store, message } => {
                Error::StoreUnavailable { store, message }
            }
            StoreError::Denied { store, message } => Error::StoreDenied { store, message },
            StoreError::Conflict { message, .. } => Error::Busy(message),
            other => Error::KeyringUnavailable(other.to_string()),
        }
    }

    /// An error of an enable/disable request: an unreadable answer to it says nothing
    /// about passwords, so it is a bad response ([`exit::UNEXPECTED`]), never an unknown
    /// rotation outcome ([`exit::UNCONFIRMED`]).
    pub fn of_toggle(self) -> Self {
        match self {
            Error::OutcomeUnknown { provider, message } => Error::BadResponse { provider, message },
            other => other,
        }
    }

    /// The exit code for this error: the one map from errors to exit codes.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) | Error::Declined(_) | Error::Unsupported { .. } => exit::USAGE,
            Error::Policy(_) => exit::POLICY,
            Error::MissingSetting { .. }
            | Error::Config(_)
            | Error::DuplicateItems(_)
            | Error::StoreDenied { .. } => exit::CONFIG,
            Error::Auth { .. } => exit::AUTH,
            Error::NotFound { .. } => exit::NOT_FOUND,
            Error::Transient(_) | Error::Busy(_) => exit::TRANSIENT,
            Error::KeyringUnavailable(_) | Error::StoreUnavailable { .. } => exit::KEYRING,
            Error::Unconfirmed { .. } | Error::OutcomeUnknown { .. } => exit::UNCONFIRMED,
            Error::Interrupted { signal, .. } => signal.exit_code(),
            Error::Rejected { .. }
            | Error::BadResponse { .. }
            | Error::Io { .. }
            | Error::Unexpected(_) => exit::UNEXPECTED,
        }
    }

    /// Wraps an I/O error with what siprot was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_family_has_its_documented_code() {
        let cases: Vec<(Error, u8)> = vec![
            (Error::Usage("x".into()), 2),
            (Error::Declined("x".into()), 2),
            (
                Error::Unsupported {
                    provider: "telepath",
                    operation: "enable",
                },
                2,
            ),
            (Error::Policy("x".into()), 3),
            (
                Error::MissingSetting {
                    var: "TELEPATH_API_KEY",
                    hint: "h".into(),
                },
                4,
            ),
            (
                Error::Auth {
                    provider: "vobiz",
                    status: 401,
                    message: "m".into(),
                },
                5,
            ),
            (
                Error::NotFound {
                    provider: "exotel",
                    message: "m".into(),
                },
                6,
            ),
            (Error::Transient("x".into()), 7),
            (Error::Busy("x".into()), 7),
            (Error::KeyringUnavailable("x".into()), 8),
            (
                Error::keyring_unavailable(StoreError::Ambiguous(Duplicates {
                    service: "siprot".into(),
                    entry: "telepath/conn_1".into(),
                    items: Vec::new(),
                    secrets_differ: false,
                })),
                4,
            ),
            (Error::keyring_unavailable(StoreError::Store("x".into())), 8),
            (
                Error::keyring_unavailable(StoreError::Unavailable {
                    store: StoreKind::Vault,
                    message: "x".into(),
                }),
                8,
            ),
            (
                Error::keyring_unavailable(StoreError::Denied {
                    store: StoreKind::Vault,
                    message: "x".into(),
                }),
                4,
            ),
            (
                Error::keyring_unavailable(StoreError::Conflict {
                    store: StoreKind::Vault,
                    message: "x".into(),
                }),
                7,
            ),
            (
                Error::Unconfirmed {
                    message: "x".into(),
                    recovery_file: None,
                },
                9,
            ),
            (Error::Unexpected("x".into()), 1),
            (
                Error::Interrupted {
                    signal: Signal::Terminate,
                    message: "x".into(),
                },
                143,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code().code(), code, "{error}");
        }
    }

    #[test]
    fn a_hook_failure_is_worse_than_success_and_better_than_any_failure() {
        use exit::*;
        assert_eq!(SUCCESS.worse(HOOK_FAILED), HOOK_FAILED);
        assert_eq!(HOOK_FAILED.worse(NOT_VERIFIED), HOOK_FAILED);
        assert_eq!(HOOK_FAILED.worse(UNCONFIRMED), UNCONFIRMED);
        assert_eq!(UNEXPECTED.worse(HOOK_FAILED), UNEXPECTED);
        assert_eq!(TRANSIENT.worse(UNCONFIRMED), UNCONFIRMED);
        assert_eq!(SIGINT.worse(UNCONFIRMED), SIGINT);
    }

    #[test]
    fn store_failures_name_their_store() {
        let vault = Error::keyring_unavailable(StoreError::Unavailable {
            store: StoreKind::Vault,
            message: "vault at http://127.0.0.1:8200 is sealed".into(),
        });
        assert!(
            vault.to_string().starts_with("vault store unavailable: "),
            "{vault}"
        );
        let keyring = Error::keyring_unavailable(StoreError::Timeout(Duration::from_secs(1)));
        assert!(
            keyring.to_string().starts_with("keyring unavailable: "),
            "{keyring}"
        );
        let busy = Error::keyring_unavailable(StoreError::Conflict {
            store: StoreKind::Vault,
            message: "vault secret 'secret/siprot/.pending/telepath/x' exists already".into(),
        });
        assert!(busy.to_string().contains(".pending/telepath/x"), "{busy}");
    }

    #[test]
    fn messages_name_the_variable_and_stay_on_one_line() {
        let e = Error::MissingSetting {
            var: "EXOTEL_API_TOKEN",
            hint: "the API token from the Exotel dashboard".into(),
        };
        let text = e.to_string();
        assert!(text.contains("EXOTEL_API_TOKEN"));
        assert!(!text.contains('\n'));
        assert!(!text.ends_with('.'));
    }
}
