//! The fake Exotel: `PUT {base}/accounts/{sid}/users/{uuid}/devices/{device}/password`
//! with HTTP Basic credentials; the client sets the password, the server enforces
//! Exotel's policy and answers an envelope without it.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::put;
use rand::RngExt as _;
use serde::Serialize;
use serde_json::Value;

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, MAX_BODY, Outcome, Store, basic_credentials,
    conn_of, json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Exotel API on the fake.
#[allow(dead_code)]
pub const EXOTEL_PREFIX: &str = "/exotel/v2";

/// What Exotel's password policy says, word for word in the 400 description.
const POLICY: &str = "The SIP password must contain at least 8 characters and at least 3 of the \
     following: lower case letters (a-z), upper case letters (A-Z), numbers (0-9), \
     special characters (ex. !@#$%^&*)";

/// User uuid -> device id -> password.
pub(super) type Users = HashMap<String, HashMap<String, String>>;

/// Every device's `(SIP username, password)` for the shared SIP user table: Exotel's API
/// returns no SIP username, so the fake names a device `{uuid}-{device}` at its registrar
/// (an inventory entry gives it as `sip_username`).
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let users: &Users = store.state();
    users
        .iter()
        .flat_map(|(uuid, devices)| {
            devices
                .iter()
                .map(move |(device, password)| (format!("{uuid}-{device}"), password.clone()))
        })
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr`.
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_EXOTEL_BASE_URL", FakeProviders::exotel_base(addr)),
        ("EXOTEL_API_KEY", config.exotel_api_key.clone()),
        ("EXOTEL_API_TOKEN", config.exotel_api_token.clone()),
        ("EXOTEL_ACCOUNT_SID", config.exotel_account_sid.clone()),
    ]
}

/// The Exotel endpoint.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!("{EXOTEL_PREFIX}/accounts/{{sid}}/users/{{uuid}}/devices/{{device}}/password"),
        put(set).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Exotel: FakeProvider = FakeProvider(&Fake {
        name: "exotel",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/exotel/v2`: the Exotel base URL for a fake bound to `addr`.
    pub fn exotel_base(addr: SocketAddr) -> String {
        format!("http://{addr}{EXOTEL_PREFIX}")
    }

    /// Adds (or replaces) a device of an Exotel user (in the configured account).
    pub fn add_exotel_device(&self, uuid: &str, device: &str, password: &str) {
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store
            .state::<Users>()
            .entry(uuid.to_owned())
            .or_default()
            .insert(device.to_owned(), password.to_owned());
        write_sip_users(&mut store);
    }

    /// The live SIP password of an Exotel user's device.
    pub fn exotel_password(&self, uuid: &str, device: &str) -> Option<String> {
        self.store()
            .state::<Users>()
            .get(uuid)
            .and_then(|devices| devices.get(device))
            .cloned()
    }

    fn exotel_set_now(
        &self,
        headers: &HeaderMap,
        sid: &str,
        uuid: &str,
        device: &str,
        body: &[u8],
    ) -> Outcome {
        let ctx = ErrCtx {
            method: "PUT".to_owned(),
            uuid: uuid.to_owned(),
            device: device.to_owned(),
        };
        let config = &self.inner.config;
        let expected = (
            config.exotel_api_key.as_str(),
            config.exotel_api_token.as_str(),
        );
        match basic_credentials(headers) {
            Some((user, pass)) if (user.as_str(), pass.as_str()) == expected => {}
            _ => return Outcome::failed(ctx.error(StatusCode::UNAUTHORIZED, None)),
        }
        if sid != config.exotel_account_sid {
            return Outcome::failed(ctx.envelope(
                StatusCode::FORBIDDEN,
                1011,
                "Forbidden",
                &format!("account {sid} does not belong to these credentials"),
            ));
        }
        let mut store = self.store();
        let Some(devices) = store.state::<Users>().get_mut(uuid) else {
            return Outcome::failed(ctx.envelope(
                StatusCode::NOT_FOUND,
                10731,
                "Not Found",
                &format!("user {uuid} not found"),
            ));
        };
        let Some(stored) = devices.get_mut(device) else {
            return Outcome::failed(ctx.error(StatusCode::NOT_FOUND, None));
        };
        let password = match parse_body(body) {
            Ok(password) => password,
            Err(description) => {
                return Outcome::failed(ctx.envelope(
                    StatusCode::BAD_REQUEST,
                    1001,
                    "Bad Request",
                    &description,
                ));
            }
        };
        if !policy_ok(&password) {
            return Outcome::failed(ctx.envelope(
                StatusCode::BAD_REQUEST,
                1002,
                "Invalid Password",
                POLICY,
            ));
        }
        stored.clone_from(&password);
        remember(&mut store.secrets, &password);
        write_sip_users(&mut store);
        Outcome::committed(envelope("PUT", StatusCode::OK, None))
    }
}

async fn set(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((sid, uuid, device))) = path else {
        return bad_path();
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let ctx = ErrCtx {
        method: parts.method.to_string(),
        uuid: uuid.clone(),
        device: device.clone(),
    };
    fake.endpoint(
        FakeProvider::Exotel,
        move |status, message| ctx.error(status, message),
        conn,
        |fake| fake.exotel_set_now(&parts.headers, &sid, &uuid, &device, &body),
    )
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>, method: Method) -> Response {
    fake.latency().await;
    let ctx = ErrCtx {
        method: method.to_string(),
        uuid: String::new(),
        device: String::new(),
    };
    with_allow(ctx.error(StatusCode::METHOD_NOT_ALLOWED, None), "PUT")
}

/// A path segment that does not percent-decode to UTF-8: no such device can exist.
fn bad_path() -> Response {
    envelope(
        "PUT",
        StatusCode::BAD_REQUEST,
        Some(ErrorData {
            code: 1001,
            description: super::BAD_PATH.to_owned(),
            message: "Bad Request".to_owned(),
        }),
    )
}

/// What an Exotel error body needs to know about the request.
struct ErrCtx {
    method: String,
    uuid: String,
    device: String,
}

impl ErrCtx {
    /// Exotel's error response for `status` (401 and 404 are the real ones), with
    /// `message` as the description instead of the usual one if given.
    fn error(&self, status: StatusCode, message: Option<&str>) -> Response {
        let reason = status.canonical_reason().unwrap_or("Error");
        let (uuid, device) = (&self.uuid, &self.device);
        let (code, description) = match status.as_u16() {
            401 => (1010, "Authentication failed".to_owned()),
            404 => (10732, format!("device {device} not found for user {uuid}")),
            405 => (1005, "Method not allowed on this resource".to_owned()),
            429 => (1029, "Too many requests, please retry later".to_owned()),
            400 => (1001, "Bad request".to_owned()),
            403 => (1011, "Forbidden".to_owned()),
            _ => (1000, "Something went wrong on our end".to_owned()),
        };
        self.envelope(status, code, reason, message.unwrap_or(&description))
    }

    /// An Exotel error envelope.
    fn envelope(
        &self,
        status: StatusCode,
        code: u32,
        message: &str,
        description: &str,
    ) -> Response {
        let mut response = envelope(
            &self.method,
            status,
            Some(ErrorData {
                code,
                description: description.to_owned(),
                message: message.to_owned(),
            }),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Exotel\""),
            );
        }
        response
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    request_id: String,
    method: &'a str,
    http_code: u16,
    response: EnvelopeResponse,
}

#[derive(Serialize)]
struct EnvelopeResponse {
    code: u16,
    error_data: Option<ErrorData>,
    status: &'static str,
    data: Option<Value>,
}

#[derive(Serialize)]
struct ErrorData {
    code: u32,
    description: String,
    message: String,
}

fn envelope(method: &str, status: StatusCode, error_data: Option<ErrorData>) -> Response {
    let body = Envelope {
        request_id: format!("{:032x}", rand::rng().random::<u128>()),
        method,
        http_code: status.as_u16(),
        response: EnvelopeResponse {
            code: status.as_u16(),
            status: if error_data.is_none() {
                "success"
            } else {
                "failure"
            },
            error_data,
            data: None,
        },
    };
    json_response(status, &body)
}

/// Exotel's body: `{"password": "<string>"}`, nothing else. The errors never quote values.
fn parse_body(body: &[u8]) -> Result<String, String> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("request body must be a JSON object: {\"password\": \"...\"}".to_owned());
    };
    if let Some(unknown) = fields.keys().find(|k| k.as_str() != "password") {
        return Err(format!("unknown field `{unknown}`"));
    }
    match fields.remove("password") {
        Some(Value::String(password)) => Ok(password),
        Some(_) => Err("field `password` must be a string".to_owned()),
        None => Err("field `password` is mandatory".to_owned()),
    }
}

/// At least 8 characters and at least 3 of: lower case, upper case, digit, special (any
/// other character that is not a control character).
fn policy_ok(password: &str) -> bool {
    let lower = password.chars().any(|c| c.is_ascii_lowercase());
    let upper = password.chars().any(|c| c.is_ascii_uppercase());
    let digit = password.chars().any(|c| c.is_ascii_digit());
    let special = password
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !c.is_control());
    let classes = [lower, upper, digit, special]
        .into_iter()
        .filter(|&b| b)
        .count();
    password.chars().count() >= 8 && classes >= 3
}
