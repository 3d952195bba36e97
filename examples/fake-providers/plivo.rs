//! The fake Plivo: `POST {base}/Account/{auth_id}/Endpoint/{endpoint_id}/` (update an
//! endpoint: JSON `password`, `alias`, `app_id`) and `GET` of the same URL (retrieve it),
//! with HTTP Basic credentials (Auth ID and Auth Token). The update answers 202
//! `{"message": "changed", "api_id": …}`; the endpoint object carries its SIP `username`
//! and an MD5 hash of its password, never the password; errors are `{"api_id", "error"}`.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use md5::{Digest as _, Md5};
use rand::RngExt as _;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, MAX_BODY, Outcome, Store, basic_credentials,
    conn_of, json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Plivo API on the fake.
#[allow(dead_code)]
pub const PLIVO_PREFIX: &str = "/plivo/v1";

/// The reference's only rule for an endpoint's password.
const MIN_PASSWORD: usize = 5;

/// A Plivo endpoint (a SIP user) as the fake stores it.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlivoEndpoint {
    pub id: String,
    /// The SIP username (Plivo appends 12 digits to the one asked for at creation).
    pub username: String,
    /// The live password (the API only ever returns its MD5 hash).
    pub password: String,
    pub alias: String,
    pub app_id: Option<String>,
}

/// Endpoints by id.
pub(super) type Endpoints = HashMap<String, PlivoEndpoint>;

/// Every endpoint's `(username, password)`, for the shared SIP user table.
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let endpoints: &Endpoints = store.state();
    endpoints
        .values()
        .map(|e| (e.username.clone(), e.password.clone()))
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr`.
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_PLIVO_BASE_URL", FakeProviders::plivo_base(addr)),
        ("PLIVO_AUTH_ID", config.plivo_auth_id.clone()),
        ("PLIVO_AUTH_TOKEN", config.plivo_auth_token.clone()),
    ]
}

/// The endpoint's URL: update (`POST`) and retrieve (`GET`); Plivo's URLs end with `/`.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!("{PLIVO_PREFIX}/Account/{{auth_id}}/Endpoint/{{endpoint_id}}/"),
        get(retrieve).post(update).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Plivo: FakeProvider = FakeProvider(&Fake {
        name: "plivo",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/plivo/v1`: the Plivo base URL for a fake bound to `addr`.
    pub fn plivo_base(addr: SocketAddr) -> String {
        format!("http://{addr}{PLIVO_PREFIX}")
    }

    /// Adds (or replaces) a Plivo endpoint of the configured account.
    pub fn add_plivo_endpoint(&self, id: &str, username: &str, password: &str) {
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.state::<Endpoints>().insert(
            id.to_owned(),
            PlivoEndpoint {
                id: id.to_owned(),
                username: username.to_owned(),
                password: password.to_owned(),
                alias: username.to_owned(),
                app_id: None,
            },
        );
        write_sip_users(&mut store);
    }

    /// A Plivo endpoint as stored, live password included.
    pub fn plivo_endpoint(&self, id: &str) -> Option<PlivoEndpoint> {
        self.store().state::<Endpoints>().get(id).cloned()
    }

    /// Whether the request carries the account's HTTP Basic credentials for the account
    /// its path names.
    fn plivo_authorized(&self, headers: &HeaderMap, auth_id: &str) -> bool {
        let config = &self.inner.config;
        let expected = (
            config.plivo_auth_id.as_str(),
            config.plivo_auth_token.as_str(),
        );
        matches!(basic_credentials(headers), Some((user, pass))
            if (user.as_str(), pass.as_str()) == expected && auth_id == expected.0)
    }

    fn plivo_update_now(
        &self,
        headers: &HeaderMap,
        auth_id: &str,
        endpoint_id: &str,
        body: &[u8],
    ) -> Outcome {
        if !self.plivo_authorized(headers, auth_id) {
            return Outcome::failed(error(StatusCode::UNAUTHORIZED, None));
        }
        let mut store = self.store();
        let Some(endpoint) = store.state::<Endpoints>().get_mut(endpoint_id) else {
            return Outcome::failed(error(StatusCode::NOT_FOUND, None));
        };
        let update = match parse_body(body) {
            Ok(update) => update,
            Err(message) => return Outcome::failed(error(StatusCode::BAD_REQUEST, Some(&message))),
        };
        if let Some(password) = &update.password {
            endpoint.password.clone_from(password);
        }
        if let Some(alias) = update.alias {
            endpoint.alias = alias;
        }
        if let Some(app_id) = update.app_id {
            endpoint.app_id = Some(app_id);
        }
        if let Some(password) = &update.password {
            remember(&mut store.secrets, password);
        }
        write_sip_users(&mut store);
        Outcome::committed(json_response(
            StatusCode::ACCEPTED,
            &json!({"message": "changed", "api_id": api_id()}),
        ))
    }

    fn plivo_retrieve_now(&self, headers: &HeaderMap, auth_id: &str, endpoint_id: &str) -> Outcome {
        if !self.plivo_authorized(headers, auth_id) {
            return Outcome::failed(error(StatusCode::UNAUTHORIZED, None));
        }
        let mut store = self.store();
        let Some(endpoint) = store.state::<Endpoints>().get(endpoint_id) else {
            return Outcome::failed(error(StatusCode::NOT_FOUND, None));
        };
        let body = EndpointBody::of(endpoint, auth_id);
        // Nothing to apply: a "commit" fault on a read answers as it would after a change.
        Outcome::committed(json_response(StatusCode::OK, &body))
    }
}

async fn update(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((auth_id, endpoint_id))) = path else {
        return bad_path();
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    fake.endpoint(FakeProvider::Plivo, error, conn, |fake| {
        fake.plivo_update_now(&parts.headers, &auth_id, &endpoint_id, &body)
    })
    .await
}

async fn retrieve(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((auth_id, endpoint_id))) = path else {
        return bad_path();
    };
    let conn = conn_of(&request);
    let headers = request.headers().clone();
    fake.endpoint(FakeProvider::Plivo, error, conn, |fake| {
        fake.plivo_retrieve_now(&headers, &auth_id, &endpoint_id)
    })
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(error(StatusCode::METHOD_NOT_ALLOWED, None), "GET, POST")
}

/// A path segment that does not percent-decode to UTF-8: no such endpoint can exist.
fn bad_path() -> Response {
    error(StatusCode::BAD_REQUEST, Some(super::BAD_PATH))
}

/// The endpoint object as Plivo's "Retrieve an endpoint" returns it (not registered on a
/// SIP client): the password only as an MD5 hash.
#[derive(Serialize)]
struct EndpointBody {
    alias: String,
    api_id: String,
    application: Option<String>,
    endpoint_id: String,
    password: String,
    resource_uri: String,
    sip_registered: &'static str,
    sip_uri: String,
    sub_account: Option<String>,
    username: String,
}

impl EndpointBody {
    fn of(endpoint: &PlivoEndpoint, auth_id: &str) -> Self {
        Self {
            alias: endpoint.alias.clone(),
            api_id: api_id(),
            application: endpoint
                .app_id
                .as_ref()
                .map(|app| format!("/v1/Account/{auth_id}/Application/{app}/")),
            endpoint_id: endpoint.id.clone(),
            password: format!("{:x}", Md5::digest(endpoint.password.as_bytes())),
            resource_uri: format!("/v1/Account/{auth_id}/Endpoint/{}/", endpoint.id),
            sip_registered: "false",
            sip_uri: format!("sip:{}@phone.plivo.com", endpoint.username),
            sub_account: None,
            username: endpoint.username.clone(),
        }
    }
}

/// Plivo's error response for `status`, `{"api_id", "error"}`: the reference's example
/// (`"not found"`) for 404, its status table's words otherwise, or `message` if given.
fn error(status: StatusCode, message: Option<&str>) -> Response {
    let usual = match status.as_u16() {
        400 => "A parameter is missing or is invalid",
        401 => "Authentication failed",
        404 => "not found",
        405 => "HTTP method not allowed",
        429 => "Too many requests, rate limited",
        _ => "Server error",
    };
    json_response(
        status,
        &json!({"api_id": api_id(), "error": message.unwrap_or(usual)}),
    )
}

/// A fresh request id, a UUID as Plivo's are.
fn api_id() -> String {
    let n = rand::rng().random::<u128>();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

struct Update {
    password: Option<String>,
    alias: Option<String>,
    app_id: Option<String>,
}

/// The update's body: a JSON object with the reference's arguments, each an optional
/// string (`password` of five characters or more). The errors never quote values.
fn parse_body(body: &[u8]) -> Result<Update, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("the request body must be a JSON object".to_owned());
    };
    let mut update = Update {
        password: None,
        alias: None,
        app_id: None,
    };
    for (name, value) in fields {
        let Value::String(value) = value else {
            return Err(format!("{name} must be a string"));
        };
        match name.as_str() {
            "password" if value.chars().count() < MIN_PASSWORD => {
                return Err("password should be at least five characters long".to_owned());
            }
            "password" => update.password = Some(value),
            "alias" => update.alias = Some(value),
            "app_id" => update.app_id = Some(value),
            other => return Err(format!("unknown parameter {other}")),
        }
    }
    Ok(update)
}
