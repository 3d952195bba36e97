//! Rendering for people and for scripts: human lines, one JSON object per command, and
//! the one-line error and warning format on standard error.
//!
//! An output that cannot be written never panics and never changes the exit code: the
//! exit code says what the command did (a rotation is done, or needs recovery, whether
//! or not its report could be printed). A failed write to standard output is remembered,
//! later lines are not attempted, and [`finish`] reports it once on standard error, except
//! a closed pipe (`siprot ... | head -1`), whose reader chose to stop reading. A failed
//! write to standard error is ignored: there is nowhere left to report it. The exception
//! is `secret get` and `generate`, whose output is their only product: see [`product`]
//! (and [`json_product`] for their `--json`).
//!
//! With `--quiet` ([`set_quiet`], once at start), human lines ([`line`]) are not printed;
//! JSON objects, products and what the user asked for by name ([`requested`]) still are.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::{Error, ExitCode, Result};

/// The context of the error a command whose product is standard output (`secret get`,
/// `generate`) fails with when it cannot write it.
pub const STDOUT: &str = "cannot write to standard output";

/// The first write to standard output that failed, if any.
static STDOUT_FAILURE: OnceLock<std::io::Error> = OnceLock::new();

/// Whether human lines are suppressed (`--quiet`).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Suppresses (or not) the human lines of [`line`] for the rest of the process
/// (`--quiet`, set once before the command runs).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Writes one human line to standard output, unless `--quiet`. A failed write is not an
/// error of the command: it is remembered for [`finish`], and this returns `Ok` (see the
/// module docs).
pub fn line(text: &str) -> Result<()> {
    if QUIET.load(Ordering::Relaxed) {
        return Ok(());
    }
    requested(text)
}

/// Writes one line to standard output even with `--quiet`: what the user asked for by
/// name (`--show-password`). A failed write is handled as [`line`]'s.
pub fn requested(text: &str) -> Result<()> {
    if STDOUT_FAILURE.get().is_some() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let _ = STDOUT_FAILURE.set(e);
    }
    Ok(())
}

/// Writes one JSON object on one line to standard output (as [`line`] does, `--quiet`
/// or not).
pub fn json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Unexpected(format!("cannot encode JSON output: {e}")))?;
    requested(&text)
}

/// Writes `bytes` to standard output for a command whose only product they are
/// (`secret get`, `generate`): failing to write them is that command's failure (exit 1).
pub fn product(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(STDOUT, e))
}

/// Writes one JSON object and a newline to standard output for a command whose only
/// product it is because it carries a secret (`secret get --json`, `generate --json`):
/// encoded into a buffer sized beforehand (`capacity`: at least the encoded length, so
/// that no copy is left behind by a reallocation) and wiped after the write, which fails
/// the command as [`product`]'s does.
pub fn json_product(value: &impl Serialize, capacity: usize) -> Result<()> {
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(&mut *bytes, value)
        .map_err(|e| Error::Unexpected(format!("cannot encode JSON output: {e}")))?;
    bytes.push(b'\n');
    product(&bytes)
}

/// Reports a failed write to standard output once, on standard error, at the end of a
/// command (silent for a closed pipe); the exit code stays the command's own.
pub fn finish(code: ExitCode) {
    if let Some(e) = STDOUT_FAILURE
        .get()
        .filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe)
    {
        warning(&format!(
            "{STDOUT}: {e}; the output is incomplete, exit code {code} is the command's own"
        ));
    }
}

/// `siprot: warning: ...` on standard error.
pub fn warning(message: &str) {
    to_stderr(&format!("siprot: warning: {message}\n"));
}

/// `siprot: error: ...` on standard error, one line. Nothing for a closed pipe on
/// standard output (see the module docs).
pub fn error(error: &Error) {
    if let Error::Io { context, source } = error
        && context == STDOUT
        && source.kind() == std::io::ErrorKind::BrokenPipe
    {
        return;
    }
    error_line(&error.to_string());
}

/// `siprot: error: ...` on standard error for a failure that is not one [`Error`].
pub fn error_line(message: &str) {
    let text = message.replace(['\n', '\r'], " ");
    to_stderr(&format!("siprot: error: {text}\n"));
}

/// Writes to standard error in one call, ignoring a failure (see the module docs).
pub fn to_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The JSON object a `--json` command prints when it fails.
#[derive(Debug, Serialize)]
pub struct JsonError {
    pub status: &'static str,
    pub exit_code: ExitCode,
    pub error: String,
    /// HTTP requests sent before the failure, for commands that talk to a provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl JsonError {
    pub fn new(error: &Error) -> Self {
        Self {
            status: "error",
            exit_code: error.exit_code(),
            error: error.to_string().replace(['\n', '\r'], " "),
            attempts: None,
        }
    }

    pub fn with_attempts(self, attempts: u32) -> Self {
        Self {
            attempts: Some(attempts),
            ..self
        }
    }
}
