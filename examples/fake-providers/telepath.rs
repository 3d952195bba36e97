//! The fake Telepath: `POST {base}/trunks/{id}/rotate-password` with a bearer key; the
//! server generates the new password, returns it once and kills the old one.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use rand::RngExt as _;
use serde::Serialize;
use serde_json::json;

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, Outcome, Store, bearer_token, conn_of,
    json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Telepath API on the fake (the part after `http://ADDR`).
#[allow(dead_code)]
pub const TELEPATH_PREFIX: &str = "/telepath/v1";

/// Characters of the passwords the fake Telepath generates.
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
const SPECIALS: &[u8] = b"@!#%^*";
/// Length of the passwords the fake Telepath generates.
const PASSWORD_LEN: usize = 20;

/// A Telepath trunk as the fake stores it.
pub(super) struct Trunk {
    pub(super) sip_username: String,
    pub(super) password: String,
}

/// Trunks by id.
pub(super) type Trunks = HashMap<String, Trunk>;

/// The trunks' `(sip_username, password)` pairs, for the shared SIP user table.
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let trunks: &Trunks = store.state();
    trunks
        .values()
        .map(|t| (t.sip_username.clone(), t.password.clone()))
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr`.
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        (
            "SIPROT_TELEPATH_BASE_URL",
            FakeProviders::telepath_base(addr),
        ),
        ("TELEPATH_API_KEY", config.telepath_api_key.clone()),
    ]
}

/// The Telepath endpoint.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!("{TELEPATH_PREFIX}/trunks/{{id}}/rotate-password"),
        post(rotate).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Telepath: FakeProvider = FakeProvider(&Fake {
        name: "telepath",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/telepath/v1`: the Telepath base URL for a fake bound to `addr`.
    pub fn telepath_base(addr: SocketAddr) -> String {
        format!("http://{addr}{TELEPATH_PREFIX}")
    }

    /// Adds (or replaces) a Telepath trunk.
    pub fn add_telepath_trunk(&self, id: &str, sip_username: &str, password: &str) {
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.state::<Trunks>().insert(
            id.to_owned(),
            Trunk {
                sip_username: sip_username.to_owned(),
                password: password.to_owned(),
            },
        );
        write_sip_users(&mut store);
    }

    /// The live password of a Telepath trunk.
    pub fn telepath_password(&self, id: &str) -> Option<String> {
        self.store()
            .state::<Trunks>()
            .get(id)
            .map(|t| t.password.clone())
    }

    fn telepath_rotate_now(&self, headers: &HeaderMap, id: &str) -> Outcome {
        let key = &self.inner.config.telepath_api_key;
        if bearer_token(headers) != Some(key.as_str()) {
            return Outcome::failed(error(id, StatusCode::UNAUTHORIZED, None));
        }
        let mut store = self.store();
        let Some(trunk) = store.state::<Trunks>().get_mut(id) else {
            return Outcome::failed(error(id, StatusCode::NOT_FOUND, None));
        };
        let password = generate_password();
        trunk.password = password.clone();
        let body = Rotated {
            id: id.to_owned(),
            sip_username: trunk.sip_username.clone(),
            sip_password: password.clone(),
            rotated_at: format!("{:.0}", jiff::Timestamp::now()),
        };
        remember(&mut store.secrets, &password);
        write_sip_users(&mut store);
        Outcome::committed(json_response(StatusCode::OK, &body))
    }
}

async fn rotate(
    State(fake): State<FakeProviders>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path(id)) = path else {
        return bad_path();
    };
    let conn = conn_of(&request);
    let headers = request.headers().clone();
    let ctx = id.clone();
    fake.endpoint(
        FakeProvider::Telepath,
        move |status, message| error(&ctx, status, message),
        conn,
        |fake| fake.telepath_rotate_now(&headers, &id),
    )
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(error("", StatusCode::METHOD_NOT_ALLOWED, None), "POST")
}

/// A path segment that does not percent-decode to UTF-8: no such trunk can exist.
fn bad_path() -> Response {
    error_body(StatusCode::BAD_REQUEST, "bad_request", super::BAD_PATH)
}

#[derive(Serialize)]
struct Rotated {
    id: String,
    sip_username: String,
    sip_password: String,
    rotated_at: String,
}

/// Telepath's error response for `status` about trunk `id` (401 and 404 are the real
/// ones), with `message` instead of the usual one if given.
fn error(id: &str, status: StatusCode, message: Option<&str>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let (code, usual) = match status.as_u16() {
        401 => ("unauthorized", "Invalid API key".to_owned()),
        404 => ("not_found", format!("Trunk '{id}' not found")),
        400 => ("bad_request", "Bad request".to_owned()),
        403 => ("forbidden", "Forbidden".to_owned()),
        405 => ("method_not_allowed", "Method not allowed".to_owned()),
        409 => ("conflict", "Conflict".to_owned()),
        429 => ("rate_limited", "Too many requests".to_owned()),
        502 => ("bad_gateway", "Bad gateway".to_owned()),
        503 => ("service_unavailable", "Service unavailable".to_owned()),
        504 => ("gateway_timeout", "Gateway timeout".to_owned()),
        _ => ("internal_error", reason.to_owned()),
    };
    error_body(status, code, message.unwrap_or(&usual))
}

fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "status": status.as_u16()}});
    json_response(status, &body)
}

/// A Telepath-style password: 20 characters of letters, digits and `@!#%^*`, with at
/// least one of each class.
fn generate_password() -> String {
    let all: Vec<u8> = [LOWER, UPPER, DIGITS, SPECIALS].concat();
    let mut rng = rand::rng();
    loop {
        let password: String = (0..PASSWORD_LEN)
            .map(|_| char::from(all[rng.random_range(0..all.len())]))
            .collect();
        let has = |set: &[u8]| password.bytes().any(|b| set.contains(&b));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(SPECIALS) {
            return password;
        }
    }
}
