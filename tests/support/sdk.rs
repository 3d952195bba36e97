//! The providers' official Python SDKs (PyPI `twilio`, `telnyx`, `plivo`, pinned in
//! `scripts/install-deps.sh`, installed in `target/sdk-venv`), run against the fake
//! providers so that a test can hold siprot's request against the one the provider's own
//! SDK sends for the same update ([`assert_same_request`]).
//!
//! A script gets its credentials and the password to set through its environment, never
//! its arguments.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::Engine;

use super::fake::RecordedRequest;

/// The virtual environment's Python; fails the test, naming the install step, when the
/// SDKs are not installed.
pub fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python3");
    assert!(
        python.is_file(),
        "{} is missing: scripts/install-deps.sh (run by scripts/test.sh) installs the \
         providers' SDKs there before the tests start",
        python.display()
    );
    python
}

/// Runs a Python `script` with the SDKs importable and `env` added to its environment;
/// panics with its output when it fails.
pub fn run(script: &str, env: &[(&str, &str)]) -> Output {
    let output = Command::new(python())
        .args(["-c", script])
        .envs(env.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the SDK's Python runs");
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// What two requests for the same update must agree on: method, path (and query),
/// authentication scheme and credentials, content type, and the body's parameter names
/// with the type of each value (the values themselves differ: each side chose its own
/// password).
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub method: String,
    pub path: String,
    pub auth: Auth,
    pub content_type: Option<String>,
    pub parameters: BTreeMap<String, &'static str>,
}

/// The `Authorization` header: its scheme (lowercase) and credentials (HTTP Basic's
/// decoded `user:password`).
#[derive(Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic(String),
    Bearer(String),
    Other(String, String),
}

impl Shape {
    pub fn of(request: &RecordedRequest) -> Self {
        let content_type = request.headers.get("content-type").map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        Shape {
            method: request.method.clone(),
            path: request.path.clone(),
            auth: auth(request.headers.get("authorization").map(String::as_str)),
            parameters: parameters(content_type.as_deref(), &request.body),
            content_type,
        }
    }
}

fn auth(header: Option<&str>) -> Auth {
    let Some(header) = header else {
        return Auth::None;
    };
    let (scheme, credentials) = header.trim().split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .expect("HTTP Basic credentials are base64");
            Auth::Basic(String::from_utf8(decoded).expect("HTTP Basic credentials are UTF-8"))
        }
        "bearer" => Auth::Bearer(credentials.trim().to_owned()),
        other => Auth::Other(other.to_owned(), credentials.trim().to_owned()),
    }
}

/// The body's parameter names and value types: a form's values are strings; a JSON
/// object's are named by their JSON type; an empty body has none.
fn parameters(content_type: Option<&str>, body: &[u8]) -> BTreeMap<String, &'static str> {
    if body.is_empty() {
        return BTreeMap::new();
    }
    match content_type {
        Some("application/x-www-form-urlencoded") => url::form_urlencoded::parse(body)
            .map(|(name, _)| (name.into_owned(), "string"))
            .collect(),
        Some("application/json") => {
            let value: serde_json::Value =
                serde_json::from_slice(body).expect("a JSON body parses");
            let object = value.as_object().expect("a JSON body is an object");
            object
                .iter()
                .map(|(name, value)| (name.clone(), json_type(value)))
                .collect()
        }
        other => panic!("a body of content type {other:?}: compare it by hand"),
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Fails unless siprot's request and the SDK's agree on every part of [`Shape`].
#[track_caller]
pub fn assert_same_request(sdk: &RecordedRequest, siprot: &RecordedRequest) {
    let (sdk, ours) = (Shape::of(sdk), Shape::of(siprot));
    assert_eq!(
        ours, sdk,
        "siprot's request (left) drifted from the one the provider's SDK sends (right)"
    );
}
