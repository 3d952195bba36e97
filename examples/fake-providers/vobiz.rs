//! The fake Vobiz: `PUT {base}/account/{auth_id}/credentials/{credential_id}` with
//! `X-Auth-ID`/`X-Auth-Token`; the client sets the password and may enable, disable or
//! describe the credential; the answer is the credential object without its password.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::put;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, MAX_BODY, Outcome, Store, conn_of, header_str,
    json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Vobiz API on the fake.
#[allow(dead_code)]
pub const VOBIZ_PREFIX: &str = "/vobiz/api/v1";

/// A Vobiz SIP credential as the fake stores it.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VobizCredential {
    pub id: String,
    pub username: String,
    /// The live password (the API itself never returns it).
    pub password: String,
    pub enabled: bool,
    pub description: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; bumped by every successful update.
    pub updated_at: String,
}

/// Credentials by id.
pub(super) type Credentials = HashMap<String, VobizCredential>;

/// The enabled credentials' `(username, password)` pairs, for the shared SIP user table.
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let credentials: &Credentials = store.state();
    credentials
        .values()
        .filter(|c| c.enabled)
        .map(|c| (c.username.clone(), c.password.clone()))
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr`.
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_VOBIZ_BASE_URL", FakeProviders::vobiz_base(addr)),
        ("VOBIZ_AUTH_ID", config.vobiz_auth_id.clone()),
        ("VOBIZ_AUTH_TOKEN", config.vobiz_auth_token.clone()),
    ]
}

/// The Vobiz endpoint.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!("{VOBIZ_PREFIX}/account/{{auth_id}}/credentials/{{credential_id}}"),
        put(update).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Vobiz: FakeProvider = FakeProvider(&Fake {
        name: "vobiz",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/vobiz/api/v1`: the Vobiz base URL for a fake bound to `addr`.
    pub fn vobiz_base(addr: SocketAddr) -> String {
        format!("http://{addr}{VOBIZ_PREFIX}")
    }

    /// Adds (or replaces) an enabled Vobiz credential without a description.
    pub fn add_vobiz_credential(&self, id: &str, username: &str, password: &str) {
        let now = now();
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.state::<Credentials>().insert(
            id.to_owned(),
            VobizCredential {
                id: id.to_owned(),
                username: username.to_owned(),
                password: password.to_owned(),
                enabled: true,
                description: None,
                created_at: now.clone(),
                updated_at: now,
            },
        );
        write_sip_users(&mut store);
    }

    /// A Vobiz credential as stored, live password included.
    pub fn vobiz_credential(&self, id: &str) -> Option<VobizCredential> {
        self.store().state::<Credentials>().get(id).cloned()
    }

    fn vobiz_update_now(
        &self,
        headers: &HeaderMap,
        auth_id: &str,
        credential_id: &str,
        body: &[u8],
    ) -> Outcome {
        let config = &self.inner.config;
        let header_id = header_str(headers, "x-auth-id");
        let header_token = header_str(headers, "x-auth-token");
        if header_id != Some(config.vobiz_auth_id.as_str())
            || header_token != Some(config.vobiz_auth_token.as_str())
            || auth_id != config.vobiz_auth_id
        {
            return Outcome::failed(error(credential_id, StatusCode::UNAUTHORIZED, None));
        }
        let mut store = self.store();
        let Some(credential) = store.state::<Credentials>().get_mut(credential_id) else {
            return Outcome::failed(error(credential_id, StatusCode::NOT_FOUND, None));
        };
        let update = match parse_body(body) {
            Ok(update) => update,
            Err(message) => {
                return Outcome::failed(error_body(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &message,
                ));
            }
        };
        if let Some(password) = &update.password {
            credential.password.clone_from(password);
        }
        if let Some(enabled) = update.enabled {
            credential.enabled = enabled;
        }
        if let Some(description) = update.description {
            credential.description = Some(description);
        }
        credential.updated_at = now();
        let body = CredentialBody {
            id: credential.id.clone(),
            account_id: config.vobiz_auth_id.clone(),
            username: credential.username.clone(),
            password: "<redacted>",
            realm: format!("{}.sip.vobiz.ai", config.vobiz_auth_id),
            enabled: credential.enabled,
            description: credential.description.clone(),
            created_at: credential.created_at.clone(),
            updated_at: credential.updated_at.clone(),
        };
        if let Some(password) = &update.password {
            remember(&mut store.secrets, password);
        }
        write_sip_users(&mut store);
        Outcome::committed(json_response(StatusCode::OK, &body))
    }
}

async fn update(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((auth_id, credential_id))) = path else {
        return bad_path();
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let ctx = credential_id.clone();
    fake.endpoint(
        FakeProvider::Vobiz,
        move |status, message| error(&ctx, status, message),
        conn,
        |fake| fake.vobiz_update_now(&parts.headers, &auth_id, &credential_id, &body),
    )
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(error("", StatusCode::METHOD_NOT_ALLOWED, None), "PUT")
}

/// A path segment that does not percent-decode to UTF-8: no such credential can exist.
fn bad_path() -> Response {
    error_body(StatusCode::BAD_REQUEST, "invalid_request", super::BAD_PATH)
}

#[derive(Serialize)]
struct CredentialBody {
    id: String,
    account_id: String,
    username: String,
    password: &'static str,
    realm: String,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Vobiz's error response for `status` about credential `id` (401 and 404 are the real
/// ones), with `message` instead of the usual one if given.
fn error(id: &str, status: StatusCode, message: Option<&str>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let (code, usual) = match status.as_u16() {
        401 => ("unauthorized", "invalid auth id or token".to_owned()),
        404 => ("not_found", format!("credential {id} not found")),
        400 => ("invalid_request", "invalid request".to_owned()),
        403 => ("forbidden", "forbidden".to_owned()),
        405 => ("method_not_allowed", "method not allowed".to_owned()),
        429 => ("rate_limited", "too many requests".to_owned()),
        _ => ("internal_error", reason.to_lowercase()),
    };
    error_body(status, code, message.unwrap_or(&usual))
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"error": code, "message": message}))
}

struct Update {
    password: Option<String>,
    enabled: Option<bool>,
    description: Option<String>,
}

/// Vobiz's body: a JSON object with optional `password` (string, 8+ characters),
/// `enabled` (boolean) and `description` (string). The errors never quote values.
fn parse_body(body: &[u8]) -> Result<Update, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("request body must be a JSON object".to_owned());
    };
    let mut update = Update {
        password: None,
        enabled: None,
        description: None,
    };
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("password", Value::String(password)) => {
                if password.chars().count() < 8 {
                    return Err("password must be at least 8 characters".to_owned());
                }
                update.password = Some(password);
            }
            ("enabled", Value::Bool(enabled)) => update.enabled = Some(enabled),
            ("description", Value::String(description)) => update.description = Some(description),
            ("password" | "description", _) => return Err(format!("{name} must be a string")),
            ("enabled", _) => return Err("enabled must be a boolean".to_owned()),
            ("username", _) => {
                return Err("username cannot be changed after credential creation".to_owned());
            }
            (other, _) => return Err(format!("unknown field {other}")),
        }
    }
    Ok(update)
}

/// Now, RFC 3339 with microseconds, as Vobiz writes it (`2026-05-12T05:11:51.635107Z`).
fn now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}
