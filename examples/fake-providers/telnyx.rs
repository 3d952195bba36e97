//! The fake Telnyx: `PATCH {base}/credential_connections/{id}` with `Authorization:
//! Bearer`; the client sets the connection's `password` (8 to 128 characters) or its
//! `active` flag; the answer is `{"data": <the connection>}`, whose `password` echoes the
//! new password when the update changed it (`********` otherwise, as for accounts created
//! since September 2026); errors are `{"errors": [{code, title, detail, meta}]}`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::patch;
use serde_json::{Value, json};

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, MAX_BODY, Outcome, Store, bearer_token, conn_of,
    header_str, json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Telnyx API on the fake.
#[allow(dead_code)]
pub const TELNYX_PREFIX: &str = "/telnyx/v2";

/// What the API shows instead of a password the update did not change.
const MASKED: &str = "********";

/// A Telnyx credential connection as the fake stores it.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelnyxConnection {
    pub id: String,
    /// The SIP username (`user_name`).
    pub user_name: String,
    /// The live password.
    pub password: String,
    pub active: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601; bumped by every successful update.
    pub updated_at: String,
}

/// Connections by id.
pub(super) type Connections = HashMap<String, TelnyxConnection>;

/// The active connections' `(user_name, password)` pairs, for the shared SIP user table
/// (an inactive connection cannot be used).
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let connections: &Connections = store.state();
    connections
        .values()
        .filter(|c| c.active)
        .map(|c| (c.user_name.clone(), c.password.clone()))
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr`.
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_TELNYX_BASE_URL", FakeProviders::telnyx_base(addr)),
        ("TELNYX_API_KEY", config.telnyx_api_key.clone()),
    ]
}

/// The Telnyx endpoint.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!("{TELNYX_PREFIX}/credential_connections/{{id}}"),
        patch(update).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Telnyx: FakeProvider = FakeProvider(&Fake {
        name: "telnyx",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/telnyx/v2`: the Telnyx base URL for a fake bound to `addr`.
    pub fn telnyx_base(addr: SocketAddr) -> String {
        format!("http://{addr}{TELNYX_PREFIX}")
    }

    /// Adds (or replaces) an active credential connection.
    pub fn add_telnyx_connection(&self, id: &str, user_name: &str, password: &str) {
        let now = now();
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.state::<Connections>().insert(
            id.to_owned(),
            TelnyxConnection {
                id: id.to_owned(),
                user_name: user_name.to_owned(),
                password: password.to_owned(),
                active: true,
                created_at: now.clone(),
                updated_at: now,
            },
        );
        write_sip_users(&mut store);
    }

    /// A Telnyx credential connection as stored, live password included.
    pub fn telnyx_connection(&self, id: &str) -> Option<TelnyxConnection> {
        self.store().state::<Connections>().get(id).cloned()
    }

    fn telnyx_update_now(&self, headers: &HeaderMap, id: &str, body: &[u8]) -> Outcome {
        if bearer_token(headers) != Some(self.inner.config.telnyx_api_key.as_str()) {
            return Outcome::failed(error(StatusCode::UNAUTHORIZED, None));
        }
        let mut store = self.store();
        let Some(connection) = store.state::<Connections>().get_mut(id) else {
            return Outcome::failed(error(StatusCode::NOT_FOUND, None));
        };
        let json = header_str(headers, "content-type")
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Outcome::failed(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None));
        }
        let update = match parse_body(body) {
            Ok(update) => update,
            Err((status, message, pointer)) => {
                return Outcome::failed(error_at(status, &message, pointer));
            }
        };
        if let Some(password) = &update.password {
            connection.password.clone_from(password);
        }
        if let Some(active) = update.active {
            connection.active = active;
        }
        connection.updated_at = now();
        let shown = update.password.as_deref().unwrap_or(MASKED);
        let body = json!({"data": connection_json(connection, shown)});
        if let Some(password) = &update.password {
            remember(&mut store.secrets, password);
        }
        write_sip_users(&mut store);
        Outcome::committed(json_response(StatusCode::OK, &body))
    }
}

/// A credential connection as the API shows it (the fields siprot and the SDK may read),
/// with `password` as given.
fn connection_json(connection: &TelnyxConnection, password: &str) -> Value {
    json!({
        "id": connection.id,
        "record_type": "credential_connection",
        "active": connection.active,
        "user_name": connection.user_name,
        "password": password,
        "connection_name": format!("connection {}", connection.id),
        "sip_uri_calling_preference": "disabled",
        "created_at": connection.created_at,
        "updated_at": connection.updated_at,
    })
}

async fn update(
    State(fake): State<FakeProviders>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path(id)) = path else {
        return error_at(StatusCode::BAD_REQUEST, super::BAD_PATH, None);
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    fake.endpoint(FakeProvider::Telnyx, error, conn, |fake| {
        fake.telnyx_update_now(&parts.headers, &id, &body)
    })
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(
        error(StatusCode::METHOD_NOT_ALLOWED, Some("method not allowed")),
        "PATCH",
    )
}

/// Telnyx's error response for `status` (401 and 404 are the documented ones), with
/// `message` as its detail instead of the usual one if given.
fn error(status: StatusCode, message: Option<&str>) -> Response {
    let (code, title, detail) = catalogue(status);
    error_body(status, code, title, message.unwrap_or(detail), None)
}

/// Telnyx's error response for `status` with this detail and, for a parameter, its
/// JSON pointer (`/password`).
fn error_at(status: StatusCode, detail: &str, pointer: Option<&str>) -> Response {
    let (code, title, _) = catalogue(status);
    error_body(status, code, title, detail, pointer)
}

/// The code, title and detail of Telnyx's error catalogue for a status.
fn catalogue(status: StatusCode) -> (&'static str, &'static str, &'static str) {
    match status.as_u16() {
        400 | 405 | 422 => (
            "10015",
            "Bad Request",
            "The request failed because it was not well-formed.",
        ),
        401 => (
            "10009",
            "Authentication failed",
            "The required authentication headers were either invalid or not included in the request.",
        ),
        403 => (
            "10010",
            "Authorization failed",
            "You do not have permission to perform the requested action on the specified resource or resources.",
        ),
        404 => (
            "10005",
            "Resource not found",
            "The requested resource or URL could not be found.",
        ),
        408 => ("10008", "Request timeout", "The request timed out."),
        409 => ("10012", "Duplicate resource", "Resource is a duplicate."),
        415 => (
            "10014",
            "Unsupported Media Type",
            "The request failed because the server does not support the media type.",
        ),
        429 => (
            "10011",
            "Too many requests",
            "You have exceeded the maximum number of allowed requests.",
        ),
        _ => ("10007", "Unexpected error", "An unexpected error occured."),
    }
}

fn error_body(
    status: StatusCode,
    code: &str,
    title: &str,
    detail: &str,
    pointer: Option<&str>,
) -> Response {
    let mut error = json!({
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {"url": format!("https://developers.telnyx.com/docs/overview/errors/{code}")},
    });
    if let Some(pointer) = pointer {
        error["source"] = json!({ "pointer": pointer });
    }
    json_response(status, &json!({ "errors": [error] }))
}

struct Update {
    password: Option<String>,
    active: Option<bool>,
}

/// A rejected body: status, detail (never quoting a value) and the parameter's pointer.
type Rejection = (StatusCode, String, Option<&'static str>);

/// The update parameters this fake models: `password` (a string of 8 to 128 characters)
/// and `active` (a boolean). Another parameter of the reference is answered 422 as not
/// modelled, so that a drift of siprot's body cannot pass unnoticed.
fn parse_body(body: &[u8]) -> Result<Update, Rejection> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "The request body must be a JSON object.".to_owned(),
            None,
        ));
    };
    let mut update = Update {
        password: None,
        active: None,
    };
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("password", Value::String(password)) => {
                if !(8..=128).contains(&password.chars().count()) {
                    return Err(invalid("must be 8 to 128 characters long", "/password"));
                }
                update.password = Some(password);
            }
            ("password", _) => return Err(invalid("must be a string", "/password")),
            ("active", Value::Bool(active)) => update.active = Some(active),
            ("active", _) => return Err(invalid("must be a boolean", "/active")),
            (other, _) => {
                return Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{other} is not a parameter this fake models"),
                    None,
                ));
            }
        }
    }
    Ok(update)
}

fn invalid(what: &str, pointer: &'static str) -> Rejection {
    let name = pointer.trim_start_matches('/');
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("The {name} {what}."),
        Some(pointer),
    )
}

/// Now, ISO 8601 with milliseconds, as Telnyx writes it (`2018-02-02T22:25:27.521Z`).
fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}
