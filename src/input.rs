//! Reading a password from standard input, so that it never has to be an argument.
//!
//! From a terminal the password is prompted for without echo. From a pipe, all input is
//! read (at most [`MAX_INPUT`] bytes) and exactly one trailing line ending (`\n` or
//! `\r\n`) is removed; anything else is kept as it is, so a NUL or a second newline makes
//! the password fail the policy's control-character rule instead of being silently changed.
//! Empty input is an empty password (which fails every policy).
//!
//! [`confirm`] asks a yes/no question before a step that cannot be undone, only when
//! standard input is a terminal (scripts, cron and CI are never asked): the question is
//! one line on standard error, the answer one line from the terminal, and anything but
//! `y` or `yes` (an empty line, end of input) is no ([`Error::Declined`]).

use std::io::{BufRead, IsTerminal, Read, Write};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The most bytes read from standard input for one password.
pub const MAX_INPUT: usize = 4096;

/// Reads one password from standard input (prompting on a terminal).
pub fn read_password(prompt: &str) -> Result<SecretString> {
    if std::io::stdin().is_terminal() {
        return prompt_secret(prompt);
    }
    parse(&read_stdin(MAX_INPUT)?)
}

/// Asks for a secret on the terminal, without echo.
pub fn prompt_secret(prompt: &str) -> Result<SecretString> {
    let typed = Zeroizing::new(
        rpassword::prompt_password(prompt)
            .map_err(|e| Error::io("cannot read from the terminal", e))?,
    );
    Ok(SecretString::from(typed.trim_end_matches(['\r', '\n'])))
}

/// All of standard input, up to `max` bytes and one more (so that the caller can tell
/// that there was more), in memory that is wiped when dropped.
pub fn read_stdin(max: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(256));
    std::io::stdin()
        .lock()
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("cannot read standard input", e))?;
    Ok(bytes)
}

/// The most bytes of an answer to [`confirm`] that are read (the rest of a longer line
/// is left unread: it is no anyway).
const MAX_ANSWER: u64 = 64;

/// Asks `siprot: <action>? <consequence> [y/N]` on standard error and reads the answer
/// from standard input, when standard input is a terminal and `yes` (`--yes`) was not
/// given; otherwise asks nothing. A no (or end of input) is [`Error::Declined`] (exit 2):
/// the caller has sent nothing and changes nothing.
pub fn confirm(action: &str, consequence: &str, yes: bool) -> Result<()> {
    if yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    let confirmed = ask(
        action,
        consequence,
        &mut std::io::stdin().lock(),
        &mut std::io::stderr().lock(),
        std::io::stderr().is_terminal(),
    )
    .map_err(|e| Error::io("cannot read the answer from the terminal", e))?;
    if confirmed {
        Ok(())
    } else {
        Err(Error::Declined(action.to_owned()))
    }
}

/// The question and its answer: whether the answer is yes. The question's line is ended
/// after the answer where the terminal's echo of the answer's newline did not end it: at
/// end of input (Ctrl-D), or when `question` is not the terminal (`2>log`).
fn ask(
    action: &str,
    consequence: &str,
    input: &mut impl BufRead,
    question: &mut impl Write,
    question_on_terminal: bool,
) -> std::io::Result<bool> {
    write!(question, "siprot: {action}? {consequence} [y/N] ")?;
    question.flush()?;
    let mut answer = Vec::new();
    input.take(MAX_ANSWER).read_until(b'\n', &mut answer)?;
    if !answer.ends_with(b"\n") || !question_on_terminal {
        let _ = writeln!(question);
    }
    let answer = String::from_utf8_lossy(&answer);
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
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
    fn only_y_or_yes_confirms_and_the_question_is_one_line() {
        let answer = |typed: &[u8]| {
            let mut question = Vec::new();
            let yes = ask(
                "rotate telepath credential c1",
                "the old one stops working",
                &mut &typed[..],
                &mut question,
                true,
            )
            .unwrap();
            let question = String::from_utf8(question).unwrap();
            // Ended by the echo of the answer's newline, or else by siprot.
            assert_eq!(question.ends_with('\n'), !typed.ends_with(b"\n"));
            assert!(
                question.starts_with(
                    "siprot: rotate telepath credential c1? the old one stops working [y/N] "
                ),
                "{question:?}"
            );
            assert_eq!(question.lines().count(), 1, "{question:?}");
            yes
        };
        for typed in [&b"y\n"[..], b"Y\n", b"yes\n", b" YES \r\n", b"y"] {
            assert!(answer(typed), "{typed:?}");
        }
        for typed in [
            &b"\n"[..],
            b"",
            b"n\n",
            b"no\n",
            b"yep\n",
            b"y es\n",
            b"\xff\n",
            &[b'y'; 100],
        ] {
            assert!(!answer(typed), "{typed:?}");
        }
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
