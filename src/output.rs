//! Rendering for people and for scripts: human lines, one JSON object per command, and
//! the one-line error and warning format on standard error.

use std::io::Write;

use serde::Serialize;

use crate::error::{Error, Result};

/// Writes one line to standard output.
pub fn line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to standard output", e))
}

/// Writes one JSON object on one line to standard output.
pub fn json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::Unexpected(format!("cannot encode JSON output: {e}")))?;
    line(&text)
}

/// `siprot: warning: ...` on standard error.
pub fn warning(message: &str) {
    eprintln!("siprot: warning: {message}");
}

/// `siprot: error: ...` on standard error, one line.
pub fn error(error: &Error) {
    error_line(&error.to_string());
}

/// `siprot: error: ...` on standard error for a failure that is not one [`Error`].
pub fn error_line(message: &str) {
    let text = message.replace(['\n', '\r'], " ");
    eprintln!("siprot: error: {text}");
}

/// The JSON object a `--json` command prints when it fails.
#[derive(Debug, Serialize)]
pub struct JsonError {
    pub status: &'static str,
    pub exit_code: u8,
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
