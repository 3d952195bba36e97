//! The fake Twilio: `POST {base}/2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CL}/Credentials/{CR}.json`
//! with HTTP Basic credentials (the Account SID and Auth Token, or an API key SID and
//! secret); a form-encoded `Password` sets the credential's password (12+ characters, a
//! digit, mixed case), the answer is the credential without it. As Twilio does, a body
//! that is not form-encoded, or has no `Password`, changes nothing and is answered 200.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use serde::Serialize;
use serde_json::json;

use super::{
    Fake, FakeConfig, FakeProvider, FakeProviders, MAX_BODY, Outcome, Store, basic_credentials,
    conn_of, header_str, json_response, remember, with_allow, write_sip_users,
};

/// Path prefix of the Twilio API on the fake (its base URL is `http://ADDR/twilio`).
#[allow(dead_code)]
pub const TWILIO_PREFIX: &str = "/twilio";

/// A SIP credential as the fake stores it.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioCredential {
    pub username: String,
    /// The live password (the API never returns it).
    pub password: String,
    /// RFC 2822, as Twilio writes its dates.
    pub date_created: String,
    pub date_updated: String,
}

/// Credentials by `(credential list SID, credential SID)`.
pub(super) type Credentials = HashMap<(String, String), TwilioCredential>;

/// Every credential's `(username, password)`, for the shared SIP user table.
fn sip_users(store: &mut Store) -> Vec<(String, String)> {
    let credentials: &Credentials = store.state();
    credentials
        .values()
        .map(|c| (c.username.clone(), c.password.clone()))
        .collect()
}

/// The environment pointing siprot at this fake bound to `addr` (the Auth Token; a test
/// adds `TWILIO_API_KEY` and `TWILIO_API_SECRET` for the API key).
pub(super) fn environment(config: &FakeConfig, addr: SocketAddr) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_TWILIO_BASE_URL", FakeProviders::twilio_base(addr)),
        ("TWILIO_ACCOUNT_SID", config.twilio_account_sid.clone()),
        ("TWILIO_AUTH_TOKEN", config.twilio_auth_token.clone()),
    ]
}

/// The Twilio endpoint.
pub(super) fn routes() -> Router<FakeProviders> {
    Router::new().route(
        &format!(
            "{TWILIO_PREFIX}/2010-04-01/Accounts/{{account}}/SIP/CredentialLists/{{list}}/\
             Credentials/{{resource}}"
        ),
        post(update).fallback(method_not_allowed),
    )
}

/// This fake, for the registry of fakes (`FakeProvider::ALL` in `server.rs`).
#[allow(non_upper_case_globals)]
impl FakeProvider {
    pub const Twilio: FakeProvider = FakeProvider(&Fake {
        name: "twilio",
        routes,
        environment,
        sip_users,
    });
}

#[allow(dead_code)]
impl FakeProviders {
    /// `http://{addr}/twilio`: the Twilio base URL for a fake bound to `addr`.
    pub fn twilio_base(addr: SocketAddr) -> String {
        format!("http://{addr}{TWILIO_PREFIX}")
    }

    /// Adds (or replaces) the credential `sid` in the credential list `list`.
    pub fn add_twilio_credential(&self, list: &str, sid: &str, username: &str, password: &str) {
        let now = now();
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.state::<Credentials>().insert(
            (list.to_owned(), sid.to_owned()),
            TwilioCredential {
                username: username.to_owned(),
                password: password.to_owned(),
                date_created: now.clone(),
                date_updated: now,
            },
        );
        write_sip_users(&mut store);
    }

    /// A Twilio credential as stored, live password included.
    pub fn twilio_credential(&self, list: &str, sid: &str) -> Option<TwilioCredential> {
        self.store()
            .state::<Credentials>()
            .get(&(list.to_owned(), sid.to_owned()))
            .cloned()
    }

    /// Whether HTTP Basic `user:password` is the account's Auth Token or its API key.
    fn twilio_authenticated(&self, headers: &HeaderMap, account: &str) -> bool {
        let config = &self.inner.config;
        let Some((user, password)) = basic_credentials(headers) else {
            return false;
        };
        let token = user == config.twilio_account_sid && password == config.twilio_auth_token;
        let key = user == config.twilio_api_key && password == config.twilio_api_secret;
        account == config.twilio_account_sid && (token || key)
    }

    fn twilio_update_now(
        &self,
        headers: &HeaderMap,
        (account, list, resource): (&str, &str, &str),
        body: &[u8],
    ) -> Outcome {
        let uri = format!(
            "/2010-04-01/Accounts/{account}/SIP/CredentialLists/{list}/Credentials/{resource}"
        );
        let password = form_password(headers, body);
        let mut store = self.store();
        if let Some(password) = &password {
            // Sent, accepted or not: a secret the tests look for everywhere.
            remember(&mut store.secrets, password);
        }
        if !self.twilio_authenticated(headers, account) {
            return Outcome::failed(error(StatusCode::UNAUTHORIZED, None));
        }
        let Some(sid) = resource.strip_suffix(".json") else {
            return Outcome::failed(not_found(&uri));
        };
        let key = (list.to_owned(), sid.to_owned());
        let Some(credential) = store.state::<Credentials>().get_mut(&key) else {
            return Outcome::failed(not_found(&uri));
        };
        let changed = match password {
            Some(password) => {
                if let Err(message) = check_policy(&password) {
                    return Outcome::failed(error(StatusCode::BAD_REQUEST, Some(message)));
                }
                credential.password = password;
                credential.date_updated = now();
                true
            }
            None => false,
        };
        let body = CredentialBody {
            account_sid: account.to_owned(),
            credential_list_sid: list.to_owned(),
            date_created: credential.date_created.clone(),
            date_updated: credential.date_updated.clone(),
            sid: sid.to_owned(),
            uri,
            username: credential.username.clone(),
        };
        if changed {
            write_sip_users(&mut store);
        }
        Outcome::committed(json_response(StatusCode::OK, &body))
    }
}

async fn update(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((account, list, resource))) = path else {
        return error(StatusCode::BAD_REQUEST, Some(super::BAD_PATH));
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    fake.endpoint(FakeProvider::Twilio, error, conn, |fake| {
        fake.twilio_update_now(&parts.headers, (&account, &list, &resource), &body)
    })
    .await
}

async fn method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(error(StatusCode::METHOD_NOT_ALLOWED, None), "POST")
}

/// The `Password` parameter of a form-encoded body; `None` when the body is not
/// form-encoded or has no such parameter (Twilio then changes nothing).
fn form_password(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let form = header_str(headers, "content-type")
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "Password")
        .map(|(_, value)| value.into_owned())
}

/// The reference's rule for the `Password` parameter, in its words.
fn check_policy(password: &str) -> Result<(), &'static str> {
    let ok = password.chars().count() >= 12
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_uppercase());
    if ok {
        Ok(())
    } else {
        Err(
            "The password must be a minimum of 12 characters, contain at least 1 digit, and \
             have mixed case.",
        )
    }
}

#[derive(Serialize)]
struct CredentialBody {
    account_sid: String,
    credential_list_sid: String,
    date_created: String,
    date_updated: String,
    sid: String,
    uri: String,
    username: String,
}

/// Twilio's 404 for a resource: the documented code 20404 and its message.
fn not_found(uri: &str) -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {uri} was not found"),
    )
}

/// Twilio's error response for `status` (401 is the documented `20003 Authenticate`,
/// with its `WWW-Authenticate` challenge), with `message` instead of the usual one.
fn error(status: StatusCode, message: Option<&str>) -> Response {
    let (code, usual) = match status.as_u16() {
        401 => (20003, "Authenticate"),
        404 => (20404, "The requested resource was not found"),
        405 => (20004, "Method not allowed"),
        429 => (20429, "Too Many Requests"),
        _ => (
            u32::from(status.as_u16()),
            status.canonical_reason().unwrap_or("Error"),
        ),
    };
    let mut response = error_body(status, code, message.unwrap_or(usual));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
    }
    response
}

fn error_body(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    )
}

/// Now, in RFC 2822 as Twilio writes its dates (`Thu, 30 Jul 2015 20:00:00 +0000`).
fn now() -> String {
    jiff::fmt::rfc2822::to_string(&jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC))
        .unwrap_or_default()
}
