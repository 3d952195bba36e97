//! Reading a password from standard input, so that it never has to be an argument.
//!
//! From a terminal the password is prompted for without echo. From a pipe, all input is
//! read (at most [`MAX_INPUT`] bytes) and exactly one trailing line ending (`\n` or
//! `\r\n`) is removed; anything else is kept as it is, so a NUL or a second newline makes
//! the password fail the policy's control-character rule instead of being silently changed.
//! Empty input is an empty password (which fails every policy).

use std::io::{IsTerminal, Read};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The most bytes read from standard input for one password.
pub const MAX_INPUT: usize = 4096;

/// Reads one password from standard input (prompting on a terminal).
pub fn read_password(prompt: &str) -> Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let typed = Zeroizing::new(
            rpassword::prompt_password(prompt)
                .map_err(|e| Error::io("cannot read the password from the terminal", e))?,
        );
        return Ok(SecretString::from(typed.as_str()));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(256));
    std::io::stdin()
        .lock()
        .take(MAX_INPUT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read standard input", e))?;
    parse(&bytes)
}

/// Applies the rules of the module docs to raw input.
pub fn parse(bytes: &[u8]) -> Result<SecretString> {
    if bytes.len() > MAX_INPUT {
        return Err(Error::Usage(format!(
            "the password on standard input is longer than {MAX_INPUT} bytes"
        )));
    }
    let trimmed = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    let text = std::str::from_utf8(trimmed)
        .map_err(|_| Error::Usage("the password on standard input is not valid UTF-8".into()))?;
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parsed(input: &[u8]) -> String {
        parse(input).unwrap().expose_secret().to_owned()
    }

    #[test]
    fn exactly_one_line_ending_is_removed() {
        assert_eq!(parsed(b"Abc-123\n"), "Abc-123");
        assert_eq!(parsed(b"Abc-123\r\n"), "Abc-123");
        assert_eq!(parsed(b"Abc-123"), "Abc-123");
        assert_eq!(parsed(b"Abc-123\n\n"), "Abc-123\n");
        assert_eq!(parsed(b" Abc 123 "), " Abc 123 ");
    }

    #[test]
    fn nul_and_empty_are_kept_for_the_policy_to_judge() {
        assert_eq!(parsed(b"ab\0cd\n"), "ab\0cd");
        assert_eq!(parsed(b""), "");
        assert_eq!(parsed(b"\n"), "");
    }

    #[test]
    fn invalid_utf8_and_oversized_input_are_usage_errors() {
        assert_eq!(parse(b"\xff\xfe").unwrap_err().exit_code().code(), 2);
        assert_eq!(
            parse(&vec![b'a'; MAX_INPUT + 1])
                .unwrap_err()
                .exit_code()
                .code(),
            2
        );
    }
}
