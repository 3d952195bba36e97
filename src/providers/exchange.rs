//! The one exchange every provider call makes: send, check the status, turn a failure into
//! the error family that tells the operator what to do, decode the answer. Every message
//! quoted from an answer is one line with the request's secrets masked.
//!
//! A provider module builds the request (method, URL, auth, body) and says whether it may
//! be resent; it reads only the decoded answer of a success.

use base64::Engine as _;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use super::ProviderKind;
use crate::error::{Error, Result};
use crate::http::{Attempts, HttpClient, RequestBuilder, Response, SendError};
use crate::redact::{json_problem, masked, one_line};

/// Where any provider's error body may carry a human message, tried after the provider's
/// own [`super::Registration::error_paths`].
const GENERIC_ERROR_PATHS: &[&[&str]] = &[&["message"], &["error"], &["description"]];

/// One request to a provider and how to treat it; what may be resent is the provider's
/// [`super::Registration::resend`].
pub struct Exchange<'a> {
    pub kind: ProviderKind,
    pub http: &'a HttpClient,
    /// Every secret the request carries, masked in any message quoted from the answer.
    pub secrets: &'a [&'a SecretString],
    pub attempts: &'a Attempts,
}

impl Exchange<'_> {
    /// Sends `request` (resending what the registration allows) and decodes a successful answer as
    /// `T`. A failed answer is the error its status means, with the provider's message; an
    /// undecodable success is an unknown outcome (the change may have happened), described
    /// as `HTTP <status> <unreadable> (<why>)`.
    pub async fn run<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        unreadable: &str,
    ) -> Result<(Response, T)> {
        let provider = self.kind.name();
        let response = self
            .http
            .send(request, self.kind.registration().resend, self.attempts)
            .await
            .map_err(|e| send_error(provider, e))?;
        if !response.status.is_success() {
            let message = self.error_message(&response);
            return Err(status_error(provider, &response, message));
        }
        let parsed = serde_json::from_slice(&response.body).map_err(|e| Error::OutcomeUnknown {
            provider,
            message: format!(
                "HTTP {} {unreadable} ({})",
                response.status,
                json_problem(&e)
            ),
        })?;
        Ok((response, parsed))
    }

    /// The provider's message in `response`, one line, secrets masked.
    pub fn error_message(&self, response: &Response) -> String {
        error_message(response, self.kind.registration().error_paths, self.secrets)
    }
}

/// The most useful human message in an error body: the first string found at one of
/// `paths`, then at `message`, `error` or `description`. Falls back to the status text.
/// Secrets are masked.
fn error_message(response: &Response, paths: &[&[&str]], secrets: &[&SecretString]) -> String {
    let found = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|value| {
            paths.iter().chain(GENERIC_ERROR_PATHS).find_map(|path| {
                path.iter()
                    .try_fold(&value, |v, key| step(v, key))
                    .and_then(|v| v.as_str())
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_owned)
            })
        });
    match found {
        Some(message) => masked(&message, secrets),
        None => response
            .status
            .canonical_reason()
            .unwrap_or("no message")
            .to_lowercase(),
    }
}

/// One step down an error path: a key of an object, or a position (a number) in an array
/// (Telnyx's `{"errors": [{...}]}`).
fn step<'v>(value: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        other => other.get(key),
    }
}

/// Maps a non-success status to the error family that tells the operator what to do.
///
/// 429 and 503 mean the provider did not act (exit 7); other 5xx may come after the change
/// was applied, so their outcome is unknown; 3xx is a configuration error (redirects are
/// never followed, so an API key never reaches a second host).
fn status_error(provider: &'static str, response: &Response, message: String) -> Error {
    let status = response.status.as_u16();
    match status {
        300..=399 => Error::Config(format!(
            "{provider} answered HTTP {status}, a redirect, and siprot never follows one \
             (the API key would go to another address): redirect refused, check the base URL"
        )),
        401 | 403 => Error::Auth {
            provider,
            status,
            message,
        },
        404 => Error::NotFound {
            provider,
            message: format!("not found (HTTP 404): {message}"),
        },
        408 | 429 | 503 => {
            let wait = response
                .retry_after
                .as_deref()
                .map(|v| format!(", retry after {}", one_line(v)))
                .unwrap_or_default();
            Error::Transient(format!(
                "{provider} answered HTTP {status}{wait}: {message}{}",
                response.retry_note
            ))
        }
        500..=599 => Error::OutcomeUnknown {
            provider,
            message: format!("HTTP {status}: {message}{}", response.retry_note),
        },
        _ => Error::Rejected {
            provider,
            status,
            message,
        },
    }
}

/// Maps a transport failure to an error: never sent is transient, otherwise unknown.
fn send_error(provider: &'static str, error: SendError) -> Error {
    match error {
        SendError::NotSent(message) => Error::Transient(format!("{provider}: {message}")),
        SendError::Unknown(message) => Error::OutcomeUnknown { provider, message },
    }
}

/// HTTP Basic credentials as they are sent, the base64 of `user:password`: kept secret
/// (and handed to the exchange with the password, so that an answer quoting them is
/// masked), with the plain pair wiped once encoded.
pub fn basic_credentials(user: &str, password: &str) -> SecretString {
    let pair = zeroize::Zeroizing::new(format!("{user}:{password}"));
    SecretString::from(base64::engine::general_purpose::STANDARD.encode(&*pair))
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use zeroize::Zeroizing;

    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            request_id: None,
            consistency_index: None,
            body: Zeroizing::new(body.as_bytes().to_vec()),
            tries: 1,
            retry_note: String::new(),
        }
    }

    fn message(provider: &str, status: u16, body: &str) -> String {
        let kind = ProviderKind::from_name(provider).unwrap();
        error_message(
            &response(status, body),
            kind.registration().error_paths,
            &[],
        )
    }

    #[test]
    fn error_messages_come_from_each_providers_format() {
        let exotel = r#"{"request_id":"r","http_code":404,"response":{"code":404,"status":"failure","error_data":{"code":1002,"description":"device not found","message":"Not Found"}}}"#;
        assert_eq!(message("exotel", 404, exotel), "device not found");
        let telepath =
            r#"{"error":{"code":"not_found","message":"Trunk 'x' not found","status":404}}"#;
        assert_eq!(message("telepath", 404, telepath), "Trunk 'x' not found");
        let vobiz = r#"{"error":"unauthorized","message":"invalid auth id or token"}"#;
        assert_eq!(message("vobiz", 401, vobiz), "invalid auth id or token");
        let telnyx = r#"{"errors":[{"code":"10009","title":"Authentication failed","detail":"The required authentication headers were either invalid or not included in the request."}]}"#;
        assert_eq!(
            message("telnyx", 401, telnyx),
            "The required authentication headers were either invalid or not included in the request."
        );
        let untitled = r#"{"errors":[{"code":"10005","title":"Resource not found"}]}"#;
        assert_eq!(message("telnyx", 404, untitled), "Resource not found");
        for provider in ["exotel", "telepath", "vobiz", "telnyx"] {
            assert_eq!(message(provider, 502, "<html>"), "bad gateway");
            // The fake's answer to an unknown route, the same for every provider.
            assert_eq!(
                message(provider, 404, r#"{"error":"no such route"}"#),
                "no such route"
            );
        }
    }

    #[test]
    fn quoted_messages_mask_the_requests_secrets() {
        let secret = SecretString::from("Hunter2-secret");
        let body = r#"{"message":"password Hunter2-secret\nis weak"}"#;
        assert_eq!(
            error_message(&response(400, body), &[], &[&secret]),
            "password <redacted> is weak"
        );
    }
}
