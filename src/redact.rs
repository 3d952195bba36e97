//! Text from outside made safe to print: a provider's message as one short line with every
//! secret masked, and a JSON parse error described without quoting the body it read.

use secrecy::{ExposeSecret, SecretString};

/// Turns a provider's message into one short line with every given secret masked.
pub fn masked(raw: &str, secrets: &[&SecretString]) -> String {
    let mut text = one_line(raw);
    for secret in secrets {
        let secret = secret.expose_secret();
        if !secret.is_empty() {
            text = text.replace(secret, "<redacted>");
        }
    }
    const MAX: usize = 300;
    if text.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// The text on one line: control characters (newlines included) become single spaces.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control())
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text with every control character escaped (`\n`, `\u{1b}`), so that whatever it
/// holds prints on one line and cannot drive a terminal.
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Describes why a body did not parse without quoting any of it: serde_json's data
/// errors can contain values from the body, and a body may hold a password.
pub fn json_problem(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match error.classify() {
        serde_json::error::Category::Data if text.starts_with("missing field") => text
            .split(" at line")
            .next()
            .unwrap_or("missing field")
            .to_owned(),
        serde_json::error::Category::Data => "a field has an unexpected type".to_owned(),
        serde_json::error::Category::Eof => "the body ends too early".to_owned(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
            "the body is not valid JSON".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_problems_never_quote_the_body() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        for body in [
            r#"{"a":"s3cr3t-value"}"#,
            r#"{"b":1}"#,
            "s3cr3t-value",
            r#"{"a":"#,
        ] {
            let err = serde_json::from_str::<T>(body).unwrap_err();
            let text = json_problem(&err);
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        let err = serde_json::from_str::<T>(r#"{"b":1}"#).unwrap_err();
        assert_eq!(json_problem(&err), "missing field `a`");
    }

    #[test]
    fn provider_messages_are_one_line_and_masked() {
        let secret = SecretString::from("Hunter2-secret");
        let text = masked("bad\npassword Hunter2-secret\r\n here", &[&secret]);
        assert_eq!(text, "bad password <redacted> here");
        assert!(masked(&"x".repeat(1000), &[]).len() < 310);
    }
}
