//! A fake of the three SIP providers siprot talks to, on one local HTTP listener.
//!
//! | provider | base URL (see [`FakeProviders::telepath_base`] and friends) | endpoint |
//! |----------|-------------------------------------------------------------|----------|
//! | Telepath | `http://ADDR/telepath/v1`   | `POST {base}/trunks/{id}/rotate-password` |
//! | Exotel   | `http://ADDR/exotel/v2`     | `PUT {base}/accounts/{sid}/users/{uuid}/devices/{device}/password` |
//! | Vobiz    | `http://ADDR/vobiz/api/v1`  | `PUT {base}/account/{auth_id}/credentials/{credential_id}` |
//!
//! The fake imitates each provider's authentication, response shapes and error bodies as
//! documented, keeps the credentials in memory, records every request exactly as it
//! arrived and can be told to misbehave ([`Fault`]).
//!
//! Used in two ways: by the integration tests (`tests/support/mod.rs` includes this file
//! with `#[path]`), and by hand through `cargo run --example fake-providers`.
//!
//! Two properties the tests can rely on:
//! * Once a request has arrived, it is handled to the end (latency, faults, commit) even
//!   if the client hangs up meanwhile, as a real server would: the handling runs in a task
//!   of its own.
//! * [`Fault::CommitThenDrop`] really drops the connection: the listener wraps every
//!   accepted socket so that a handler can kill its own connection; the socket is then
//!   closed with `SO_LINGER` 0 (a TCP reset) without a single response byte.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::serve::IncomingStream;
use base64::Engine as _;
use rand::RngExt as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Path prefix of the Telepath API on the fake (the part after `http://ADDR`).
#[allow(dead_code)]
pub const TELEPATH_PREFIX: &str = "/telepath/v1";
/// Path prefix of the Exotel API on the fake.
#[allow(dead_code)]
pub const EXOTEL_PREFIX: &str = "/exotel/v2";
/// Path prefix of the Vobiz API on the fake.
#[allow(dead_code)]
pub const VOBIZ_PREFIX: &str = "/vobiz/api/v1";

/// Request bodies larger than this are answered with 413.
const MAX_BODY: usize = 1024 * 1024;
/// Characters of the passwords the fake Telepath generates.
const TELEPATH_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const TELEPATH_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const TELEPATH_DIGITS: &[u8] = b"0123456789";
const TELEPATH_SPECIALS: &[u8] = b"@!#%^*";
/// Length of the passwords the fake Telepath generates.
const TELEPATH_PASSWORD_LEN: usize = 20;
/// What Exotel's password policy says, word for word in the 400 description.
const EXOTEL_POLICY: &str = "The SIP password must contain at least 8 characters and at least 3 of the \
     following: lower case letters (a-z), upper case letters (A-Z), numbers (0-9), \
     special characters (ex. !@#$%^&*)";

/// Credentials the fake accepts. The defaults are fixed and obviously fake.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeConfig {
    /// Telepath: the only accepted `Authorization: Bearer <key>`.
    pub telepath_api_key: String,
    /// Exotel: the HTTP Basic user name.
    pub exotel_api_key: String,
    /// Exotel: the HTTP Basic password.
    pub exotel_api_token: String,
    /// Exotel: the only account sid these credentials may use (others get 403).
    pub exotel_account_sid: String,
    /// Vobiz: the `X-Auth-ID` header and the `{auth_id}` path segment (not a secret).
    pub vobiz_auth_id: String,
    /// Vobiz: the `X-Auth-Token` header.
    pub vobiz_auth_token: String,
    /// Artificial delay before every request is handled.
    pub latency: Duration,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            telepath_api_key: "tp_test_key_0123456789".to_owned(),
            exotel_api_key: "ex_test_key_0123456789".to_owned(),
            exotel_api_token: "ex_test_token_0123456789".to_owned(),
            exotel_account_sid: "exotel_test_sid".to_owned(),
            vobiz_auth_id: "MA_TESTAUTH01".to_owned(),
            vobiz_auth_token: "vz_test_token_0123456789".to_owned(),
            latency: Duration::ZERO,
        }
    }
}

/// One of the three imitated providers.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FakeProvider {
    Telepath,
    Exotel,
    Vobiz,
}

/// A misbehaviour for the next request to a provider's endpoint ([`FakeProviders::push_fault`]).
///
/// The "commit" variants only commit when the request would have succeeded; a request
/// that fails normally (bad auth, unknown id, bad body) gets its normal error response
/// and the fault is used up all the same.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a body in that provider's error format, WITHOUT
    /// applying the change. (401 and 404 get exactly the provider's real bodies.)
    Status(u16),
    /// Apply the change (commit), then answer with this status and the provider's error body.
    CommitThenStatus(u16),
    /// 429 in the provider's error format with an optional `Retry-After` header value;
    /// the change is not applied.
    RateLimited(Option<String>),
    /// Apply the change, then answer 200 (`Content-Type: application/json`) with this raw
    /// body (e.g. not JSON, or JSON missing `sip_password`).
    CommitThenBody(String),
    /// Wait this long, then handle the request normally (the commit happens after the
    /// wait, even if the client has given up by then).
    Delay(Duration),
    /// Apply the change, then reset the connection (TCP RST) without any response byte.
    CommitThenDrop,
    /// Apply the change, then wait this long before answering normally (a client with a
    /// shorter timeout gives up after its request has taken effect).
    CommitThenDelay(Duration),
    /// Answer this 3xx status with `Location` set to this URL, without applying the change.
    Redirect(u16, String),
    /// Apply the change, then answer 200 with a JSON-looking body of this many bytes.
    CommitThenHugeBody(usize),
    /// Apply the change, then answer 200 and send the body one byte per interval,
    /// for up to ten minutes.
    CommitThenSlowDrip(Duration),
    /// Apply the change, then answer 200 with these raw bytes (e.g. invalid UTF-8).
    CommitThenRawBody(Vec<u8>),
    /// Answer with this status and these raw bytes as the body; nothing is applied.
    StatusWithRawBody(u16, Vec<u8>),
}

/// A request as the fake received it, recorded before routing.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `"POST"`, `"PUT"`, ...
    pub method: String,
    /// The request target exactly as received: path and query, percent-encoding intact
    /// (`/telepath/v1/trunks/a%2Fb/rotate-password`).
    pub path: String,
    /// Headers by lowercase name; repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

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

/// The fake providers: configuration plus in-memory state. Cloning is cheap and every
/// clone shares the same state, so a test keeps one clone while the server uses others.
#[derive(Clone)]
pub struct FakeProviders {
    inner: Arc<Inner>,
}

struct Inner {
    config: FakeConfig,
    log_requests: AtomicBool,
    store: Mutex<Store>,
}

#[derive(Default)]
struct Store {
    telepath: HashMap<String, Trunk>,
    /// user uuid -> device id -> password
    exotel: HashMap<String, HashMap<String, String>>,
    vobiz: HashMap<String, VobizCredential>,
    secrets: BTreeSet<String>,
    requests: Vec<RecordedRequest>,
    faults: HashMap<FakeProvider, VecDeque<Fault>>,
    sip_users: Option<SipUsers>,
}

/// The SIP user table the fake shares with a registrar ([`FakeProviders::share_sip_users`]).
struct SipUsers {
    path: std::path::PathBuf,
    last_mtime: std::time::SystemTime,
}

struct Trunk {
    sip_username: String,
    password: String,
}

// Each includer (the example, the tests) uses a different part of the API.
#[allow(dead_code)]
impl FakeProviders {
    /// A fake with no credentials yet (seed them with the `add_*` methods).
    pub fn new(config: FakeConfig) -> Self {
        let mut store = Store::default();
        for secret in [
            &config.telepath_api_key,
            &config.exotel_api_key,
            &config.exotel_api_token,
            &config.vobiz_auth_token,
        ] {
            remember(&mut store.secrets, secret);
        }
        Self {
            inner: Arc::new(Inner {
                config,
                log_requests: AtomicBool::new(false),
                store: Mutex::new(store),
            }),
        }
    }

    /// The configuration the fake was created with.
    pub fn config(&self) -> &FakeConfig {
        &self.inner.config
    }

    /// Binds `127.0.0.1:port` (0 = a free port), spawns the server on the current tokio
    /// runtime (so call it inside one) and returns the bound address. The server runs
    /// until the runtime shuts down.
    pub async fn start(&self, port: u16) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let app = self
            .router()
            .into_make_service_with_connect_info::<ConnHandle>();
        tokio::spawn(async move {
            // Only returns on an unrecoverable listener error.
            let _ = axum::serve(KillableListener(listener), app).await;
        });
        Ok(addr)
    }

    /// `http://{addr}/telepath/v1`: the Telepath base URL for a fake bound to `addr`.
    pub fn telepath_base(addr: SocketAddr) -> String {
        format!("http://{addr}{TELEPATH_PREFIX}")
    }

    /// `http://{addr}/exotel/v2`: the Exotel base URL for a fake bound to `addr`.
    pub fn exotel_base(addr: SocketAddr) -> String {
        format!("http://{addr}{EXOTEL_PREFIX}")
    }

    /// `http://{addr}/vobiz/api/v1`: the Vobiz base URL for a fake bound to `addr`.
    pub fn vobiz_base(addr: SocketAddr) -> String {
        format!("http://{addr}{VOBIZ_PREFIX}")
    }

    /// Prints one line per request (`METHOD target -> status`, never headers or bodies)
    /// to standard error. Off by default; the example turns it on.
    pub fn set_log_requests(&self, on: bool) {
        self.inner.log_requests.store(on, Ordering::Relaxed);
    }

    /// Adds (or replaces) a Telepath trunk.
    pub fn add_telepath_trunk(&self, id: &str, sip_username: &str, password: &str) {
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.telepath.insert(
            id.to_owned(),
            Trunk {
                sip_username: sip_username.to_owned(),
                password: password.to_owned(),
            },
        );
        write_sip_users(&mut store);
    }

    /// Keeps a Kamailio db_text `subscriber` table at `path` in step with the live
    /// passwords, as a provider's own registrar would be: every Telepath trunk (by its
    /// `sip_username`) and every enabled Vobiz credential (by its `username`). Exotel
    /// returns no SIP username, so its devices are not in it. Written now and after every
    /// change, each time with a later modification time (db_text rereads a table when
    /// its mtime, in whole seconds, changes).
    pub fn share_sip_users(&self, path: &std::path::Path) {
        let mut store = self.store();
        store.sip_users = Some(SipUsers {
            path: path.to_owned(),
            last_mtime: std::time::UNIX_EPOCH,
        });
        write_sip_users(&mut store);
    }

    /// The live password of a Telepath trunk.
    pub fn telepath_password(&self, id: &str) -> Option<String> {
        self.store().telepath.get(id).map(|t| t.password.clone())
    }

    /// Adds (or replaces) a device of an Exotel user (in the configured account).
    pub fn add_exotel_device(&self, uuid: &str, device: &str, password: &str) {
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store
            .exotel
            .entry(uuid.to_owned())
            .or_default()
            .insert(device.to_owned(), password.to_owned());
    }

    /// The live SIP password of an Exotel user's device.
    pub fn exotel_password(&self, uuid: &str, device: &str) -> Option<String> {
        self.store()
            .exotel
            .get(uuid)
            .and_then(|devices| devices.get(device))
            .cloned()
    }

    /// Adds (or replaces) an enabled Vobiz credential without a description.
    pub fn add_vobiz_credential(&self, id: &str, username: &str, password: &str) {
        let now = vobiz_now();
        let mut store = self.store();
        remember(&mut store.secrets, password);
        store.vobiz.insert(
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
        self.store().vobiz.get(id).cloned()
    }

    /// Every secret the fake has known, sorted: the configured API keys and tokens (not
    /// the Exotel account sid nor the Vobiz auth id, which are identifiers), every
    /// password seeded, generated or set, and every secret a client sent, accepted or not
    /// (bearer tokens, both halves of Basic credentials and the encoded form, `X-Auth-Token`,
    /// `password` fields of JSON bodies). The tests grep all output for these.
    pub fn secrets_seen(&self) -> Vec<String> {
        self.store().secrets.iter().cloned().collect()
    }

    /// Every request received so far, in arrival order, including ones that matched no route.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.store().requests.clone()
    }

    /// Fault injection: the next request to `provider`'s endpoint gets `fault` instead of
    /// normal handling. Each provider has a FIFO queue; requests that match no endpoint
    /// route (404/405) do not use faults up.
    pub fn push_fault(&self, provider: FakeProvider, fault: Fault) {
        self.store()
            .faults
            .entry(provider)
            .or_default()
            .push_back(fault);
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A test that panicked while holding the lock must not take the others down.
        self.inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn router(&self) -> Router {
        let telepath = format!("{TELEPATH_PREFIX}/trunks/{{id}}/rotate-password");
        let exotel =
            format!("{EXOTEL_PREFIX}/accounts/{{sid}}/users/{{uuid}}/devices/{{device}}/password");
        let vobiz = format!("{VOBIZ_PREFIX}/account/{{auth_id}}/credentials/{{credential_id}}");
        Router::new()
            .route(
                &telepath,
                post(telepath_rotate).fallback(telepath_method_not_allowed),
            )
            .route(&exotel, put(exotel_set).fallback(exotel_method_not_allowed))
            .route(&vobiz, put(vobiz_update).fallback(vobiz_method_not_allowed))
            .fallback(no_route)
            .layer(middleware::from_fn_with_state(self.clone(), record))
            .with_state(self.clone())
    }

    /// Adds a request, exactly as received, to [`FakeProviders::requests`], and the secrets
    /// it carries to [`FakeProviders::secrets_seen`].
    fn record(&self, parts: &axum::http::request::Parts, body: &Bytes) {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| parts.uri.to_string());
        let mut store = self.store();
        harvest_secrets(&mut store.secrets, &parts.headers, body);
        store.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path,
            headers,
            body: body.to_vec(),
        });
    }

    fn pop_fault(&self, provider: FakeProvider) -> Option<Fault> {
        self.store().faults.get_mut(&provider)?.pop_front()
    }

    /// Runs one endpoint request: latency, then the provider's next fault (if any)
    /// around `work`, which does the real handling under the lock.
    async fn endpoint(
        &self,
        provider: FakeProvider,
        ctx: ErrCtx,
        conn: Option<ConnHandle>,
        work: impl FnOnce(&FakeProviders) -> Outcome,
    ) -> Response {
        let fault = self.pop_fault(provider);
        self.latency().await;
        let Some(fault) = fault else {
            return work(self).response;
        };
        match fault {
            Fault::Status(status) => ctx.error(status_code(status)),
            Fault::RateLimited(retry_after) => {
                let mut response = ctx.error(StatusCode::TOO_MANY_REQUESTS);
                if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Fault::Delay(delay) => {
                tokio::time::sleep(delay).await;
                work(self).response
            }
            Fault::CommitThenStatus(status) => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                ctx.error(status_code(status))
            }
            Fault::CommitThenBody(body) => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            Fault::CommitThenDelay(delay) => {
                let outcome = work(self);
                tokio::time::sleep(delay).await;
                outcome.response
            }
            Fault::Redirect(status, location) => {
                (status_code(status), [(header::LOCATION, location)], "").into_response()
            }
            Fault::CommitThenHugeBody(size) => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                let mut body = b"{\"padding\":\"".to_vec();
                body.resize(size.saturating_sub(2), b'x');
                body.extend_from_slice(b"\"}");
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            Fault::CommitThenSlowDrip(interval) => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                let started = tokio::time::Instant::now();
                let drip = futures_util::stream::unfold((), move |()| async move {
                    if started.elapsed() > Duration::from_secs(600) {
                        return None;
                    }
                    tokio::time::sleep(interval).await;
                    Some((Ok::<_, io::Error>(Bytes::from_static(b" ")), ()))
                });
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::from_stream(drip),
                )
                    .into_response()
            }
            Fault::CommitThenRawBody(bytes) => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    bytes,
                )
                    .into_response()
            }
            Fault::StatusWithRawBody(status, bytes) => (
                status_code(status),
                [(header::CONTENT_TYPE, "application/json")],
                bytes,
            )
                .into_response(),
            Fault::CommitThenDrop => {
                let outcome = work(self);
                if !outcome.committed {
                    return outcome.response;
                }
                match conn {
                    // The connection fails as soon as hyper tries to write this response.
                    Some(conn) => {
                        conn.kill();
                        StatusCode::INTERNAL_SERVER_ERROR.into_response()
                    }
                    // Not served through `start`: the best we can do is never answer.
                    None => std::future::pending().await,
                }
            }
        }
    }

    async fn latency(&self) {
        let latency = self.inner.config.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    // ---- Telepath -------------------------------------------------------------------

    fn telepath_rotate_now(&self, headers: &HeaderMap, id: &str) -> Outcome {
        let ctx = ErrCtx::Telepath { id: id.to_owned() };
        let key = &self.inner.config.telepath_api_key;
        if bearer_token(headers) != Some(key.as_str()) {
            return Outcome::failed(ctx.error(StatusCode::UNAUTHORIZED));
        }
        let mut store = self.store();
        let Some(trunk) = store.telepath.get_mut(id) else {
            return Outcome::failed(ctx.error(StatusCode::NOT_FOUND));
        };
        let password = telepath_password();
        trunk.password = password.clone();
        let body = TelepathRotated {
            id: id.to_owned(),
            sip_username: trunk.sip_username.clone(),
            sip_password: password.clone(),
            rotated_at: format!("{:.0}", jiff::Timestamp::now()),
        };
        remember(&mut store.secrets, &password);
        write_sip_users(&mut store);
        Outcome::committed(json_response(StatusCode::OK, &body))
    }

    // ---- Exotel ---------------------------------------------------------------------

    fn exotel_set_now(
        &self,
        headers: &HeaderMap,
        sid: &str,
        uuid: &str,
        device: &str,
        body: &[u8],
    ) -> Outcome {
        let ctx = ErrCtx::Exotel {
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
            _ => return Outcome::failed(ctx.error(StatusCode::UNAUTHORIZED)),
        }
        if sid != config.exotel_account_sid {
            return Outcome::failed(ctx.exotel(
                StatusCode::FORBIDDEN,
                1011,
                "Forbidden",
                &format!("account {sid} does not belong to these credentials"),
            ));
        }
        let mut store = self.store();
        let Some(devices) = store.exotel.get_mut(uuid) else {
            return Outcome::failed(ctx.exotel(
                StatusCode::NOT_FOUND,
                10731,
                "Not Found",
                &format!("user {uuid} not found"),
            ));
        };
        let Some(stored) = devices.get_mut(device) else {
            return Outcome::failed(ctx.error(StatusCode::NOT_FOUND));
        };
        let password = match exotel_body(body) {
            Ok(password) => password,
            Err(description) => {
                return Outcome::failed(ctx.exotel(
                    StatusCode::BAD_REQUEST,
                    1001,
                    "Bad Request",
                    &description,
                ));
            }
        };
        if !exotel_policy_ok(&password) {
            return Outcome::failed(ctx.exotel(
                StatusCode::BAD_REQUEST,
                1002,
                "Invalid Password",
                EXOTEL_POLICY,
            ));
        }
        stored.clone_from(&password);
        remember(&mut store.secrets, &password);
        Outcome::committed(exotel_envelope("PUT", StatusCode::OK, None))
    }

    // ---- Vobiz ----------------------------------------------------------------------

    fn vobiz_update_now(
        &self,
        headers: &HeaderMap,
        auth_id: &str,
        credential_id: &str,
        body: &[u8],
    ) -> Outcome {
        let ctx = ErrCtx::Vobiz {
            id: credential_id.to_owned(),
        };
        let config = &self.inner.config;
        let header_id = header_str(headers, "x-auth-id");
        let header_token = header_str(headers, "x-auth-token");
        if header_id != Some(config.vobiz_auth_id.as_str())
            || header_token != Some(config.vobiz_auth_token.as_str())
            || auth_id != config.vobiz_auth_id
        {
            return Outcome::failed(ctx.error(StatusCode::UNAUTHORIZED));
        }
        let mut store = self.store();
        let Some(credential) = store.vobiz.get_mut(credential_id) else {
            return Outcome::failed(ctx.error(StatusCode::NOT_FOUND));
        };
        let update = match vobiz_body(body) {
            Ok(update) => update,
            Err(message) => {
                return Outcome::failed(vobiz_error(
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
        credential.updated_at = vobiz_now();
        let body = VobizCredentialBody {
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

// ---- handlers -----------------------------------------------------------------------

/// Middleware around everything, routed or not: records the request as received, then
/// runs the rest in a task of its own so that a client hanging up cannot cancel a commit
/// half-way.
async fn record(State(fake): State<FakeProviders>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                axum::Json(json!({"error": "request body too large"})),
            )
                .into_response();
        }
    };
    fake.record(&parts, &body);
    let log = fake
        .inner
        .log_requests
        .load(Ordering::Relaxed)
        .then(|| format!("{} {}", parts.method, parts.uri));
    let request = Request::from_parts(parts, Body::from(body));
    let response = match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if let Some(line) = log {
        eprintln!("{line} -> {}", response.status().as_u16());
    }
    response
}

async fn telepath_rotate(
    State(fake): State<FakeProviders>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path(id)) = path else {
        return bad_path(FakeProvider::Telepath);
    };
    let conn = conn_of(&request);
    let headers = request.headers().clone();
    let ctx = ErrCtx::Telepath { id: id.clone() };
    fake.endpoint(FakeProvider::Telepath, ctx, conn, |fake| {
        fake.telepath_rotate_now(&headers, &id)
    })
    .await
}

async fn exotel_set(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((sid, uuid, device))) = path else {
        return bad_path(FakeProvider::Exotel);
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let ctx = ErrCtx::Exotel {
        method: parts.method.to_string(),
        uuid: uuid.clone(),
        device: device.clone(),
    };
    fake.endpoint(FakeProvider::Exotel, ctx, conn, |fake| {
        fake.exotel_set_now(&parts.headers, &sid, &uuid, &device, &body)
    })
    .await
}

async fn vobiz_update(
    State(fake): State<FakeProviders>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let Ok(Path((auth_id, credential_id))) = path else {
        return bad_path(FakeProvider::Vobiz);
    };
    let conn = conn_of(&request);
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let ctx = ErrCtx::Vobiz {
        id: credential_id.clone(),
    };
    fake.endpoint(FakeProvider::Vobiz, ctx, conn, |fake| {
        fake.vobiz_update_now(&parts.headers, &auth_id, &credential_id, &body)
    })
    .await
}

async fn telepath_method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(
        ErrCtx::Telepath { id: String::new() }.error(StatusCode::METHOD_NOT_ALLOWED),
        "POST",
    )
}

async fn exotel_method_not_allowed(State(fake): State<FakeProviders>, method: Method) -> Response {
    fake.latency().await;
    let ctx = ErrCtx::Exotel {
        method: method.to_string(),
        uuid: String::new(),
        device: String::new(),
    };
    with_allow(ctx.error(StatusCode::METHOD_NOT_ALLOWED), "PUT")
}

async fn vobiz_method_not_allowed(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    with_allow(
        ErrCtx::Vobiz { id: String::new() }.error(StatusCode::METHOD_NOT_ALLOWED),
        "PUT",
    )
}

async fn no_route(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no such route"})),
    )
        .into_response()
}

/// A path segment that does not percent-decode to UTF-8: no such object can exist.
fn bad_path(provider: FakeProvider) -> Response {
    let message = "a path segment is not valid percent-encoded UTF-8";
    match provider {
        FakeProvider::Telepath => telepath_error(StatusCode::BAD_REQUEST, "bad_request", message),
        FakeProvider::Exotel => exotel_envelope(
            "PUT",
            StatusCode::BAD_REQUEST,
            Some(ErrorData {
                code: 1001,
                description: message.to_owned(),
                message: "Bad Request".to_owned(),
            }),
        ),
        FakeProvider::Vobiz => vobiz_error(StatusCode::BAD_REQUEST, "invalid_request", message),
    }
}

fn with_allow(mut response: Response, allow: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn conn_of(request: &Request) -> Option<ConnHandle> {
    request
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|info| info.0.clone())
}

// ---- responses ----------------------------------------------------------------------

/// What the real handling did: its response, and whether it changed state.
struct Outcome {
    response: Response,
    committed: bool,
}

impl Outcome {
    fn committed(response: Response) -> Self {
        Self {
            response,
            committed: true,
        }
    }

    fn failed(response: Response) -> Self {
        Self {
            response,
            committed: false,
        }
    }
}

/// What an error body of each provider needs to know about the request.
enum ErrCtx {
    Telepath {
        id: String,
    },
    Exotel {
        method: String,
        uuid: String,
        device: String,
    },
    Vobiz {
        id: String,
    },
}

impl ErrCtx {
    /// The provider's error response for `status`; 401 and 404 are the real ones.
    fn error(&self, status: StatusCode) -> Response {
        let reason = status.canonical_reason().unwrap_or("Error");
        match self {
            ErrCtx::Telepath { id } => {
                let (code, message) = match status.as_u16() {
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
                telepath_error(status, code, &message)
            }
            ErrCtx::Exotel { uuid, device, .. } => {
                let (code, description) = match status.as_u16() {
                    401 => (1010, "Authentication failed".to_owned()),
                    404 => (10732, format!("device {device} not found for user {uuid}")),
                    405 => (1005, "Method not allowed on this resource".to_owned()),
                    429 => (1029, "Too many requests, please retry later".to_owned()),
                    400 => (1001, "Bad request".to_owned()),
                    403 => (1011, "Forbidden".to_owned()),
                    _ => (1000, "Something went wrong on our end".to_owned()),
                };
                self.exotel(status, code, reason, &description)
            }
            ErrCtx::Vobiz { id } => {
                let (code, message) = match status.as_u16() {
                    401 => ("unauthorized", "invalid auth id or token".to_owned()),
                    404 => ("not_found", format!("credential {id} not found")),
                    400 => ("invalid_request", "invalid request".to_owned()),
                    403 => ("forbidden", "forbidden".to_owned()),
                    405 => ("method_not_allowed", "method not allowed".to_owned()),
                    429 => ("rate_limited", "too many requests".to_owned()),
                    _ => ("internal_error", reason.to_lowercase()),
                };
                vobiz_error(status, code, &message)
            }
        }
    }

    /// An Exotel error envelope (for Exotel contexts only).
    fn exotel(&self, status: StatusCode, code: u32, message: &str, description: &str) -> Response {
        let method = match self {
            ErrCtx::Exotel { method, .. } => method.as_str(),
            _ => "PUT",
        };
        let mut response = exotel_envelope(
            method,
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
struct TelepathRotated {
    id: String,
    sip_username: String,
    sip_password: String,
    rotated_at: String,
}

fn telepath_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "status": status.as_u16()}});
    json_response(status, &body)
}

#[derive(Serialize)]
struct ExotelEnvelope<'a> {
    request_id: String,
    method: &'a str,
    http_code: u16,
    response: ExotelResponse,
}

#[derive(Serialize)]
struct ExotelResponse {
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

fn exotel_envelope(method: &str, status: StatusCode, error_data: Option<ErrorData>) -> Response {
    let body = ExotelEnvelope {
        request_id: format!("{:032x}", rand::rng().random::<u128>()),
        method,
        http_code: status.as_u16(),
        response: ExotelResponse {
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

#[derive(Serialize)]
struct VobizCredentialBody {
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

fn vobiz_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"error": code, "message": message}))
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Any u16 a test may push; nonsense (< 100 or > 999) becomes 500.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

// ---- request parsing ----------------------------------------------------------------

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// The base64 part of `Authorization: Basic <base64>`.
fn basic_blob(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?;
    let (scheme, blob) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then_some(blob.trim())
}

/// `(user, password)` of HTTP Basic credentials.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic_blob(headers)?)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn remember(secrets: &mut BTreeSet<String>, secret: &str) {
    if !secret.is_empty() {
        secrets.insert(secret.to_owned());
    }
}

/// Adds whatever secrets a request carries to the set, valid or not.
fn harvest_secrets(secrets: &mut BTreeSet<String>, headers: &HeaderMap, body: &[u8]) {
    if let Some(token) = bearer_token(headers) {
        remember(secrets, token);
    }
    if let Some(blob) = basic_blob(headers) {
        remember(secrets, blob);
    }
    if let Some((user, password)) = basic_credentials(headers) {
        remember(secrets, &user);
        remember(secrets, &password);
    }
    if let Some(token) = header_str(headers, "x-auth-token") {
        remember(secrets, token);
    }
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body)
        && let Some(Value::String(password)) = fields.get("password")
    {
        remember(secrets, password);
    }
}

/// Exotel's body: `{"password": "<string>"}`, nothing else. The errors never quote values.
fn exotel_body(body: &[u8]) -> Result<String, String> {
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
fn exotel_policy_ok(password: &str) -> bool {
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

struct VobizUpdate {
    password: Option<String>,
    enabled: Option<bool>,
    description: Option<String>,
}

/// Vobiz's body: a JSON object with optional `password` (string, 8+ characters),
/// `enabled` (boolean) and `description` (string). The errors never quote values.
fn vobiz_body(body: &[u8]) -> Result<VobizUpdate, String> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err("request body must be a JSON object".to_owned());
    };
    let mut update = VobizUpdate {
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

// ---- values -------------------------------------------------------------------------

/// The first line of a Kamailio db_text `subscriber` table: its columns.
pub const SUBSCRIBER_TABLE_HEADER: &str = "id(int,auto) username(string) domain(string,null) \
     password(string) ha1(string,null) ha1b(string,null)\n";

/// Rewrites the shared SIP user table, if there is one (see `share_sip_users`).
fn write_sip_users(store: &mut Store) {
    let Store {
        telepath,
        vobiz,
        sip_users,
        ..
    } = store;
    let Some(shared) = sip_users.as_mut() else {
        return;
    };
    // db_text escapes ':' (its separator), backslashes and line breaks inside strings.
    let escape = |value: &str| {
        value
            .replace('\\', "\\\\")
            .replace(':', "\\:")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    };
    let mut users: Vec<(&str, &str)> = telepath
        .values()
        .map(|t| (t.sip_username.as_str(), t.password.as_str()))
        .chain(
            vobiz
                .values()
                .filter(|c| c.enabled)
                .map(|c| (c.username.as_str(), c.password.as_str())),
        )
        .collect();
    users.sort();
    let mut table = String::from(SUBSCRIBER_TABLE_HEADER);
    for (i, (username, password)) in users.iter().enumerate() {
        table.push_str(&format!(
            "{}:{}::{}:::\n",
            i + 1,
            escape(username),
            escape(password)
        ));
    }
    let mtime = std::time::SystemTime::now().max(shared.last_mtime + Duration::from_secs(1));
    shared.last_mtime = mtime;
    let temporary = shared.path.with_extension("siprot-fake-tmp");
    let written = std::fs::write(&temporary, table)
        .and_then(|()| std::fs::File::options().write(true).open(&temporary))
        .and_then(|file| file.set_modified(mtime))
        .and_then(|()| std::fs::rename(&temporary, &shared.path));
    if let Err(e) = written {
        eprintln!(
            "fake-providers: cannot write the SIP user table {}: {e}",
            shared.path.display()
        );
    }
}

/// A Telepath-style password: 20 characters of letters, digits and `@!#%^*`, with at
/// least one of each class.
fn telepath_password() -> String {
    let all: Vec<u8> = [
        TELEPATH_LOWER,
        TELEPATH_UPPER,
        TELEPATH_DIGITS,
        TELEPATH_SPECIALS,
    ]
    .concat();
    let mut rng = rand::rng();
    loop {
        let password: String = (0..TELEPATH_PASSWORD_LEN)
            .map(|_| char::from(all[rng.random_range(0..all.len())]))
            .collect();
        let has = |set: &[u8]| password.bytes().any(|b| set.contains(&b));
        if has(TELEPATH_LOWER)
            && has(TELEPATH_UPPER)
            && has(TELEPATH_DIGITS)
            && has(TELEPATH_SPECIALS)
        {
            return password;
        }
    }
}

/// Now, RFC 3339 with microseconds, as Vobiz writes it (`2026-05-12T05:11:51.635107Z`).
fn vobiz_now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

// ---- connections that a handler can kill --------------------------------------------

/// Lets a handler kill the connection its request came on ([`Fault::CommitThenDrop`]).
#[derive(Clone)]
struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnHandle {
            killed: stream.io().killed.clone(),
        }
    }
}

/// A TCP listener whose connections fail every read and write once killed.
struct KillableListener(TcpListener);

impl axum::serve::Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop retries on errors.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        let stream = KillableStream {
            inner: stream,
            killed: Arc::new(AtomicBool::new(false)),
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    /// Once killed: the error hyper gets, after arranging for the close to be a reset.
    fn check(&self) -> io::Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection dropped by fault injection",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
