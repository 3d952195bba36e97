//! A fake of the SIP providers siprot talks to, on one local HTTP listener.
//!
//! | provider | base URL (see [`FakeProviders::telepath_base`] and friends) | endpoint |
//! |----------|-------------------------------------------------------------|----------|
//! | Telepath | `http://ADDR/telepath/v1`   | `POST {base}/trunks/{id}/rotate-password` |
//! | Exotel   | `http://ADDR/exotel/v2`     | `PUT {base}/accounts/{sid}/users/{uuid}/devices/{device}/password` |
//! | Vobiz    | `http://ADDR/vobiz/api/v1`  | `PUT {base}/account/{auth_id}/credentials/{credential_id}` |
//! | Telnyx   | `http://ADDR/telnyx/v2`     | `PATCH {base}/credential_connections/{id}` |
//! | Plivo    | `http://ADDR/plivo/v1`      | `POST` (and `GET`) `{base}/Account/{auth_id}/Endpoint/{endpoint_id}/` |
//! | Twilio   | `http://ADDR/twilio`        | `POST {base}/2010-04-01/Accounts/{sid}/SIP/CredentialLists/{CL}/Credentials/{CR}.json` |
//!
//! The fake imitates each provider's authentication, response shapes and error bodies as
//! documented, keeps the credentials in memory, records every request exactly as it
//! arrived and can be told to misbehave ([`Fault`]).
//!
//! This file is what the providers share: the registry of fakes ([`FakeProvider`]),
//! router assembly, fault injection, request recording, the secrets seen and the
//! connections a handler can kill. Each provider's endpoint, state, seeding methods and
//! error bodies live in a file of its own beside this one (`telepath.rs`, `exotel.rs`,
//! `vobiz.rs`), declared below with `#[path]` so that both includers find them.
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

use std::any::{Any, TypeId};
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
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

#[path = "exotel.rs"]
mod exotel;
#[path = "plivo.rs"]
mod plivo;
#[path = "telepath.rs"]
mod telepath;
#[path = "telnyx.rs"]
mod telnyx;
#[path = "twilio.rs"]
mod twilio;
#[path = "vobiz.rs"]
mod vobiz;

#[allow(unused_imports)]
pub use exotel::EXOTEL_PREFIX;
#[allow(unused_imports)]
pub use plivo::{PLIVO_PREFIX, PlivoEndpoint};
#[allow(unused_imports)]
pub use telepath::TELEPATH_PREFIX;
#[allow(unused_imports)]
pub use telnyx::{TELNYX_PREFIX, TelnyxConnection};
#[allow(unused_imports)]
pub use twilio::{TWILIO_PREFIX, TwilioCredential};
#[allow(unused_imports)]
pub use vobiz::{VOBIZ_PREFIX, VobizCredential};

/// Request bodies larger than this are answered with 413.
const MAX_BODY: usize = 1024 * 1024;
/// The message of a 400 for a path segment that does not percent-decode to UTF-8.
const BAD_PATH: &str = "a path segment is not valid percent-encoded UTF-8";

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
    /// Telnyx: the only accepted `Authorization: Bearer <key>`.
    pub telnyx_api_key: String,
    /// Plivo: the HTTP Basic user name and the `{auth_id}` path segment (not a secret).
    pub plivo_auth_id: String,
    /// Plivo: the HTTP Basic password.
    pub plivo_auth_token: String,
    /// Twilio: the `{AccountSid}` path segment and the HTTP Basic user with the Auth Token
    /// (an identifier, not a secret).
    pub twilio_account_sid: String,
    /// Twilio: the HTTP Basic password with the Account SID.
    pub twilio_auth_token: String,
    /// Twilio: an API key SID of the account, the HTTP Basic user with its secret (an
    /// identifier, not a secret).
    pub twilio_api_key: String,
    /// Twilio: the API key's secret, the HTTP Basic password with the API key SID.
    pub twilio_api_secret: String,
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
            telnyx_api_key: "KEYtx_test_key_0123456789".to_owned(),
            // The shape the Plivo SDK insists on: MA (or SA) and 18 more, 20 in all.
            plivo_auth_id: "MAPLIVOFAKE000000001".to_owned(),
            plivo_auth_token: "pl_test_token_0123456789".to_owned(),
            twilio_account_sid: "AC0000000000000000000000000000fa4e".to_owned(),
            twilio_auth_token: "tw_test_token_0123456789".to_owned(),
            twilio_api_key: "SK0000000000000000000000000000fa4e".to_owned(),
            twilio_api_secret: "tw_test_api_secret_0123456789".to_owned(),
            latency: Duration::ZERO,
        }
    }
}

impl FakeConfig {
    /// The identifiers a request carries where secrets usually are (Twilio's Account SID
    /// and API key SID as the HTTP Basic user): never counted as secrets.
    fn identifiers(&self) -> [&str; 2] {
        [&self.twilio_account_sid, &self.twilio_api_key]
    }
}

/// One of the imitated providers. Each provider's file defines its own constant
/// (`FakeProvider::Vobiz` in `vobiz.rs`) from a [`Fake`]; [`FakeProvider::ALL`] lists them.
#[derive(Clone, Copy)]
pub struct FakeProvider(&'static Fake);

/// What this file needs of a provider's fake. Its state is the provider's own type in
/// the [`Store`] ([`Store::state`]), so adding a fake adds no field anywhere here.
struct Fake {
    /// The name siprot registers the imitated provider under (`--provider NAME`).
    name: &'static str,
    /// The provider's endpoints.
    routes: fn() -> Router<FakeProviders>,
    /// The environment pointing siprot at this fake bound to the address.
    environment: fn(&FakeConfig, SocketAddr) -> Vec<(&'static str, String)>,
    /// The `(username, password)` pairs a registrar of this provider would accept.
    sip_users: fn(&mut Store) -> Vec<(String, String)>,
}

#[allow(dead_code)]
impl FakeProvider {
    /// Every fake, in siprot's registry order: the registry of fakes.
    pub const ALL: &[FakeProvider] = &[
        FakeProvider::Telepath,
        FakeProvider::Exotel,
        FakeProvider::Vobiz,
        FakeProvider::Telnyx,
        FakeProvider::Plivo,
        FakeProvider::Twilio,
    ];

    /// The name siprot registers the imitated provider under (`--provider NAME`).
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The fake of the provider siprot registers as `name`, if there is one.
    pub fn from_name(name: &str) -> Option<FakeProvider> {
        Self::ALL.iter().copied().find(|fake| fake.name() == name)
    }
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq for FakeProvider {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for FakeProvider {}

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
    /// Answer with this status and the provider's error body carrying this message where
    /// the provider puts its human message; nothing is applied. Every `{secrets}` in it is
    /// replaced by the secrets the request carried (see [`FakeProviders::secrets_seen`]),
    /// separated by spaces: a provider echoing what it was sent.
    StatusWithMessage(u16, String),
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
    /// Each fake's state, by its type ([`Store::state`]).
    states: HashMap<TypeId, Box<dyn Any + Send>>,
    secrets: BTreeSet<String>,
    requests: Vec<RecordedRequest>,
    /// By the fake's name.
    faults: HashMap<&'static str, VecDeque<Fault>>,
    sip_users: Option<SipUsers>,
}

impl Store {
    /// A fake's state: the one value of type `T`, created empty on first use. Each fake
    /// keeps its state in a type of its own (`vobiz::Credentials`).
    fn state<T: Default + Send + 'static>(&mut self) -> &mut T {
        let slot = self
            .states
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match slot.downcast_mut::<T>() {
            Some(state) => state,
            None => unreachable!("the state is stored under its own type id"),
        }
    }
}

/// The SIP user table the fake shares with a registrar ([`FakeProviders::share_sip_users`]).
struct SipUsers {
    path: std::path::PathBuf,
    last_mtime: std::time::SystemTime,
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
            &config.telnyx_api_key,
            &config.plivo_auth_token,
            &config.twilio_auth_token,
            &config.twilio_api_secret,
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

    /// The environment that points siprot at this fake bound to `addr`: every provider's
    /// base URL and credentials.
    pub fn environment(&self, addr: SocketAddr) -> Vec<(&'static str, String)> {
        let config = self.config();
        FakeProvider::ALL
            .iter()
            .flat_map(|fake| (fake.0.environment)(config, addr))
            .collect()
    }

    /// Prints one line per request (`METHOD target -> status`, never headers or bodies)
    /// to standard error. Off by default; the example turns it on.
    pub fn set_log_requests(&self, on: bool) {
        self.inner.log_requests.store(on, Ordering::Relaxed);
    }

    /// Keeps a Kamailio db_text `subscriber` table at `path` in step with the live
    /// passwords, as a provider's own registrar would be: every Telepath trunk (by its
    /// `sip_username`), every enabled Vobiz credential (by its `username`) and every Exotel
    /// device (as `{uuid}-{device}`: Exotel returns no SIP username). Written now and after every
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

    /// Every secret the fake has known, sorted: the configured API keys and tokens (not
    /// the Exotel account sid nor the Vobiz or Plivo auth id, which are identifiers), every
    /// password seeded, generated or set, and every secret a client sent, accepted or not
    /// (bearer tokens, both halves of Basic credentials and the encoded form, `X-Auth-Token`,
    /// `password` fields of JSON bodies). The tests grep all output for these.
    pub fn secrets_seen(&self) -> Vec<String> {
        // Plivo's auth id is the user half of its Basic credentials, and an identifier
        // (it is in the URL and in keyring entry names).
        let identifiers = [&self.inner.config.plivo_auth_id];
        self.store()
            .secrets
            .iter()
            .filter(|secret| !identifiers.contains(secret))
            .cloned()
            .collect()
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
            .entry(provider.name())
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
        FakeProvider::ALL
            .iter()
            .fold(Router::new(), |router, fake| {
                router.merge((fake.0.routes)())
            })
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
        let identifiers = self.config().identifiers();
        let mut store = self.store();
        harvest_secrets(&mut store.secrets, &parts.headers, body);
        store
            .secrets
            .retain(|secret| !identifiers.contains(&secret.as_str()));
        store.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path,
            headers,
            body: body.to_vec(),
        });
    }

    fn pop_fault(&self, provider: FakeProvider) -> Option<Fault> {
        self.store().faults.get_mut(provider.name())?.pop_front()
    }

    /// Runs one endpoint request: latency, then the provider's next fault (if any)
    /// around `work`, which does the real handling under the lock. `error` is the
    /// provider's error response for a status, with its usual message or the one given.
    async fn endpoint(
        &self,
        provider: FakeProvider,
        error: impl Fn(StatusCode, Option<&str>) -> Response,
        conn: Conn,
        work: impl FnOnce(&FakeProviders) -> Outcome,
    ) -> Response {
        let fault = self.pop_fault(provider);
        self.latency().await;
        let Some(fault) = fault else {
            return work(self).response;
        };
        match fault {
            Fault::Status(status) => error(status_code(status), None),
            Fault::RateLimited(retry_after) => {
                let mut response = error(StatusCode::TOO_MANY_REQUESTS, None);
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
                error(status_code(status), None)
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
            Fault::StatusWithMessage(status, message) => {
                let message = message.replace("{secrets}", &conn.secrets.join(" "));
                error(status_code(status), Some(&message))
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
                match conn.handle {
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
}

// ---- handlers -----------------------------------------------------------------------

/// Middleware around everything, routed or not: records the request as received, then
/// runs the rest in a task of its own so that a client hanging up cannot cancel a commit
/// half-way.
async fn record(State(fake): State<FakeProviders>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
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
    let mut secrets = BTreeSet::new();
    harvest_secrets(&mut secrets, &parts.headers, &body);
    let identifiers = fake.config().identifiers();
    secrets.retain(|secret| !identifiers.contains(&secret.as_str()));
    parts
        .extensions
        .insert(SentSecrets(secrets.into_iter().collect()));
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

async fn no_route(State(fake): State<FakeProviders>) -> Response {
    fake.latency().await;
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "no such route"})),
    )
        .into_response()
}

fn with_allow(mut response: Response, allow: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The secrets a request carried, put in its extensions by the `record` middleware.
#[derive(Clone)]
struct SentSecrets(Vec<String>);

/// What an endpoint knows of the request's arrival: the connection it came on (to kill
/// it) and the secrets it carried (to echo them).
struct Conn {
    handle: Option<ConnHandle>,
    secrets: Vec<String>,
}

fn conn_of(request: &Request) -> Conn {
    let extensions = request.extensions();
    Conn {
        handle: extensions
            .get::<ConnectInfo<ConnHandle>>()
            .map(|info| info.0.clone()),
        secrets: extensions
            .get::<SentSecrets>()
            .map(|sent| sent.0.clone())
            .unwrap_or_default(),
    }
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
    // A form's `Password` (Twilio's parameter).
    for (name, value) in url::form_urlencoded::parse(body) {
        if name == "Password" {
            remember(secrets, &value);
        }
    }
}
// ---- values -------------------------------------------------------------------------

/// The first line of a Kamailio db_text `subscriber` table: its columns.
pub const SUBSCRIBER_TABLE_HEADER: &str = "id(int,auto) username(string) domain(string,null) \
     password(string) ha1(string,null) ha1b(string,null)\n";

/// Rewrites the shared SIP user table, if there is one (see `share_sip_users`).
fn write_sip_users(store: &mut Store) {
    if store.sip_users.is_none() {
        return;
    }
    let mut users: Vec<(String, String)> = FakeProvider::ALL
        .iter()
        .flat_map(|fake| (fake.0.sip_users)(store))
        .collect();
    users.sort();
    let Some(shared) = store.sip_users.as_mut() else {
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
