//! Rendering for people and for scripts: human lines, one JSON object per command, and
//! the one-line error and warning format on standard error.
//!
//! An output that cannot be written never panics and never changes the exit code: the
//! exit code says what the command did (a rotation is done, or needs recovery, whether
//! or not its report could be printed). A failed write to standard output is remembered,
//! later lines are not attempted, and [`finish`] reports it once on standard error, except
//! a closed pipe (`siprot ... | head -1`), whose reader chose to stop reading. A failed
//! write to standard error is ignored: there is nowhere left to report it. The exception
//! is `secret get` and `generate`, whose output is their only product: see [`product`].

use std::io::Write;
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Error, ExitCode, Result};

/// The context of the error a command whose product is standard output (`secret get`,
/// `generate`) fails with when it cannot write it.
pub const STDOUT: &str = "cannot write to standard output";

/// The first write to standard output that failed, if any.
static STDOUT_FAILURE: OnceLock<std::io::Error> = OnceLock::new();

/// Writes one line to standard output. A failed write is not an error of the command:
/// it is remembered for [`finish`], and this returns `Ok` (see the module docs).
pub fn line(text: &str) -> Result<()> {
    if STDOUT_FAILURE.get().is_some() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        let _ = STDOUT_FAILURE.set(e);
    }
    Ok(())
}

/// Writes one JSON object on one line to standard output (as [`line`] does).
pub fn json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Unexpected(format!("cannot encode JSON output: {e}")))?;
    line(&text)
}

/// Writes `bytes` to standard output for a command whose only product they are
/// (`secret get`, `generate`): failing to write them is that command's failure (exit 1).
pub fn product(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(STDOUT, e))
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
