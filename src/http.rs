//! The one HTTP client every provider uses: timeouts, no redirects, a cap on response
//! size, and a classification of failures by whether the request may have reached the
//! provider.
//!
//! Proxies are siprot's own decision ([`crate::proxy`]): reqwest's reading of the proxy
//! variables is off, a plain `http://` request never goes through a proxy, and `-v` names
//! the proxy an `https://` request goes through.
//!
//! That classification is what makes rotation safe: a request that provably never left
//! (connection refused, DNS or TLS failure, connect timeout) changed nothing; one that
//! timed out or lost its connection afterwards may have changed the password.
//!
//! After a caught signal ([`crate::interrupt`]) a provider's client starts no try, first
//! or retry; a store's client (the vault store's, [`OnSignal::Finish`]) goes on as if none
//! had come.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use url::Url;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::proxy::{HttpsProxy, IGNORED_PROXY_VARS};
use crate::redact::one_line;
use crate::retry::{self, Resend, RetryConfig};

/// Default cap on a response body: nothing a provider sends us legitimately comes close.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// Timeouts and limits of the client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to establish the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, body included.
    pub timeout: Duration,
    /// Largest response body read, in bytes.
    pub max_body: usize,
    /// How often and how long to retry.
    pub retry: RetryConfig,
    /// Extra trust roots and a client certificate (the vault store's `VAULT_CACERT`,
    /// `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`); none for the providers.
    pub tls: TlsOptions,
    /// What a caught SIGINT, SIGTERM or SIGHUP ([`crate::interrupt`]) does to this
    /// client's requests.
    pub on_signal: OnSignal,
}

/// What a caught signal does to a client's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnSignal {
    /// A provider's client: no try (first or retry) starts after the signal, and a wait
    /// before a retry is cut short. A request that may change a password is never sent
    /// once siprot was asked to stop.
    #[default]
    StopSending,
    /// A store's client: its requests go out (and are retried) as if no signal had come,
    /// within their own bounds, because they are what makes a password the provider
    /// accepted safe (promoting it, removing `#pending`, releasing a claim).
    Finish,
}

/// Extra TLS settings of a client: certificates trusted beside the system's roots, and
/// a client certificate with its key. Debug shows only how many there are.
#[derive(Clone, Default)]
pub struct TlsOptions {
    pub extra_roots: Vec<reqwest::Certificate>,
    pub identity: Option<reqwest::Identity>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("identity", &self.identity.is_some())
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_BODY,
            retry: RetryConfig::default(),
            tls: TlsOptions::default(),
            on_signal: OnSignal::default(),
        }
    }
}

/// A response read in full (within the size cap). The body may hold a password, so it is
/// wiped when dropped.
pub struct Response {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    /// The provider's request id header (`x-request-id`), when it sends one.
    pub request_id: Option<String>,
    /// `X-Vault-Index`: the storage index a Vault or OpenBao server answered at (an opaque
    /// token the vault store sends back for read-after-write consistency).
    pub consistency_index: Option<String>,
    pub body: Zeroizing<Vec<u8>>,
    /// How many tries this answer took (1 when it came first time).
    pub tries: u32,
    /// Why there was no further try, for a failed answer (empty otherwise).
    pub retry_note: String,
}

/// Counts the HTTP requests of one provider call, retries included, for `attempts` in
/// the JSON output and the audit log. A try that could not connect counts too.
#[derive(Debug, Clone, Default)]
pub struct Attempts(Arc<AtomicU32>);

impl Attempts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    fn record(&self) -> u32 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Why an exchange failed before a usable response was read.
#[derive(Debug)]
pub enum SendError {
    /// The request provably never reached the provider.
    NotSent(String),
    /// The request may have reached the provider; its effect is unknown.
    Unknown(String),
}

/// The configured client: no redirects, timeouts, a body size cap.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: HttpConfig,
    pause: Arc<Pause>,
    /// The proxy `https://` requests may go through (see [`crate::proxy`]).
    proxy: Option<Arc<HttpsProxy>>,
}

/// Shared by every request of one client (one provider): when the provider answers 429
/// or 503, no request to it starts before the wait it asked for (or the backoff) is
/// over, so that a fleet backs off as a whole instead of one request at a time.
#[derive(Debug, Default)]
struct Pause(std::sync::Mutex<Option<Instant>>);

impl Pause {
    fn until(&self, until: Instant) {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(slot.map_or(until, |current| current.max(until)));
    }

    fn current(&self) -> Option<Instant> {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.filter(|until| *until > Instant::now())
    }
}

impl HttpClient {
    /// The client, with the proxy the environment sets for `https://` requests (an
    /// unusable proxy variable is a configuration error naming it).
    pub fn new(config: &HttpConfig) -> Result<Self> {
        Self::with_proxy(config, HttpsProxy::from_env()?)
    }

    /// The client with `proxy` for `https://` requests; reqwest's own proxy settings
    /// (environment, system) are never used.
    fn with_proxy(config: &HttpConfig, proxy: Option<HttpsProxy>) -> Result<Self> {
        let proxy = proxy.map(Arc::new);
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("siprot/", env!("CARGO_PKG_VERSION")))
            .tls_certs_merge(config.tls.extra_roots.iter().cloned());
        if let Some(identity) = &config.tls.identity {
            builder = builder.identity(identity.clone());
        }
        if let Some(proxy) = &proxy {
            log::debug!("{}", proxy.describe());
            builder = builder.proxy(proxy.to_reqwest());
        }
        for var in IGNORED_PROXY_VARS {
            if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                log::debug!("{var} is ignored: plain http:// requests never use a proxy");
            }
        }
        let inner = builder.build().map_err(|e| {
            Error::Unexpected(format!("cannot build the HTTP client: {}", describe(&e)))
        })?;
        Ok(Self {
            inner,
            config: config.clone(),
            pause: Arc::default(),
            proxy,
        })
    }

    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends the request, retrying what `resend` allows within the retry budget, and
    /// returns the first success or the last failure.
    ///
    /// A failure that follows a try which may have reached the provider is reported as
    /// [`SendError::Unknown`], whatever the last answer was: the earlier try may have
    /// changed the password.
    pub async fn send(
        &self,
        request: RequestBuilder,
        resend: Resend,
        attempts: &Attempts,
    ) -> Result<Response, SendError> {
        let budget = &self.config.retry;
        let deadline = Instant::now() + budget.deadline;
        let mut maybe_landed: Option<String> = None;
        let mut tries = 0;
        // The proxy this request goes through, if any: named in the log and in errors.
        let proxy = self.proxy_route(&request);
        loop {
            self.wait_out_pause(deadline).await?;
            // SIGINT, SIGTERM or SIGHUP (caught by `rotate`): a provider's client sends
            // nothing new.
            if let Some(signal) = self.stopped_by_signal() {
                return Err(interrupted_before_try(signal, tries, maybe_landed));
            }
            let this = self.copy_for_try(&request, deadline)?;
            tries += 1;
            let total = attempts.record();
            log_try(total, &this, proxy.as_deref());
            let started = Instant::now();
            let outcome = through_proxy(self.send_once(this).await, proxy.as_deref());
            let Some(failure) = judge(&outcome, resend) else {
                if let Ok(response) = &outcome {
                    log::debug!(
                        "try {total}: HTTP {} in {:?}",
                        response.status,
                        started.elapsed()
                    );
                }
                return outcome.map(|r| Response { tries, ..r });
            };
            if failure.may_have_landed {
                maybe_landed = Some(failure.what.clone());
            }
            log::debug!(
                "try {total}: {} after {:?}",
                failure.what,
                started.elapsed()
            );
            let wait = failure.asked_wait.unwrap_or_else(|| budget.backoff(tries));
            if matches!(&outcome, Ok(r) if matches!(r.status.as_u16(), 429 | 503)) {
                self.pause.until(Instant::now() + wait);
            }
            if !failure.retryable || tries > budget.max_retries {
                return finish(outcome, tries, maybe_landed.as_deref(), None);
            }
            if let Some(why) = self.wait_before_next(wait, deadline).await {
                return finish(outcome, tries, maybe_landed.as_deref(), Some(&why));
            }
        }
    }

    /// The signal that stops this client's tries, if one came and the client stops on one.
    fn stopped_by_signal(&self) -> Option<crate::error::Signal> {
        match self.config.on_signal {
            OnSignal::StopSending => crate::interrupt::received(),
            OnSignal::Finish => None,
        }
    }

    /// Returns once a signal that stops this client came (never for [`OnSignal::Finish`]).
    async fn signalled(&self) {
        match self.config.on_signal {
            OnSignal::StopSending => crate::interrupt::signalled().await,
            OnSignal::Finish => std::future::pending().await,
        }
    }

    /// The proxy `request` goes through, if any, as named in the log and in errors.
    fn proxy_route(&self, request: &RequestBuilder) -> Option<String> {
        self.proxy.as_deref().and_then(|proxy| {
            let built = request.try_clone()?.build().ok()?;
            proxy
                .for_url(built.url())
                .map(|shown| format!("the proxy {shown} (from {})", proxy.var()))
        })
    }

    /// Waits while the provider asked this client to slow down (or until a signal);
    /// not sent when that wait would pass the deadline.
    async fn wait_out_pause(&self, deadline: Instant) -> Result<(), SendError> {
        let Some(until) = self.pause.current() else {
            return Ok(());
        };
        if until >= deadline {
            return Err(SendError::NotSent(format!(
                "the provider asked to slow down for longer than the --deadline of {}s",
                self.config.retry.deadline.as_secs()
            )));
        }
        log::debug!(
            "provider asked to slow down: waiting {:?}",
            until - Instant::now()
        );
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => {}
            () = self.signalled() => {}
        }
        Ok(())
    }

    /// A copy of `request` for one try, its timeout cut to what is left of the deadline.
    fn copy_for_try(
        &self,
        request: &RequestBuilder,
        deadline: Instant,
    ) -> Result<RequestBuilder, SendError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        Ok(request
            .try_clone()
            .ok_or_else(|| SendError::NotSent("the request cannot be copied".into()))?
            .timeout(self.config.timeout.min(remaining)))
    }

    /// The wait before the next try, or why there is none: it would pass the deadline,
    /// or a signal came during it.
    async fn wait_before_next(&self, wait: Duration, deadline: Instant) -> Option<String> {
        if Instant::now() + wait >= deadline {
            return Some(format!(
                "the next try (in {}s) would pass the --deadline of {}s",
                wait.as_secs_f64().ceil(),
                self.config.retry.deadline.as_secs()
            ));
        }
        log::debug!("retrying in {wait:?}");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.signalled() => {}
        }
        self.stopped_by_signal()
            .map(|signal| format!("siprot was interrupted by {signal}"))
    }

    /// Sends the request once and reads the whole body, at most `max_body` bytes.
    async fn send_once(&self, request: RequestBuilder) -> Result<Response, SendError> {
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| one_line(v).chars().take(100).collect());
        let consistency_index = response
            .headers()
            .get("x-vault-index")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 1024)
            .map(str::to_owned);
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            SendError::Unknown(format!(
                "HTTP {status} but the body could not be read: {}",
                describe(&e)
            ))
        })? {
            if body.len() + chunk.len() > self.config.max_body {
                return Err(SendError::Unknown(format!(
                    "HTTP {status} with a body larger than {} bytes",
                    self.config.max_body
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            retry_after,
            request_id,
            consistency_index,
            body,
            tries: 1,
            retry_note: String::new(),
        })
    }
}

/// Why no try is sent after a signal, given the tries so far and whether one may have
/// reached the provider.
fn interrupted_before_try(
    signal: crate::error::Signal,
    tries: u32,
    maybe_landed: Option<String>,
) -> SendError {
    match (tries, maybe_landed) {
        (_, Some(landed)) => SendError::Unknown(format!(
            "an earlier try may have reached the provider ({landed}) and siprot was \
             interrupted by {signal} before the next"
        )),
        (0, None) => SendError::NotSent(format!("not sent: siprot was interrupted by {signal}")),
        (n, None) => SendError::NotSent(format!(
            "not retried after {n} tries: siprot was interrupted by {signal}"
        )),
    }
}

/// Logs one try's method, URL and proxy (at debug level only).
fn log_try(total: u32, this: &RequestBuilder, proxy: Option<&str>) {
    if log::log_enabled!(log::Level::Debug)
        && let Some(built) = this.try_clone().and_then(|b| b.build().ok())
    {
        let route = proxy
            .map(|proxy| format!(" via {proxy}"))
            .unwrap_or_default();
        log::debug!("try {total}: {} {}{route}", built.method(), built.url());
    }
}

/// A failed try's error, naming the proxy it went through.
fn through_proxy(
    outcome: Result<Response, SendError>,
    proxy: Option<&str>,
) -> Result<Response, SendError> {
    match (outcome, proxy) {
        (Err(SendError::NotSent(message)), Some(proxy)) => {
            Err(SendError::NotSent(format!("{message} (through {proxy})")))
        }
        (Err(SendError::Unknown(message)), Some(proxy)) => {
            Err(SendError::Unknown(format!("{message} (through {proxy})")))
        }
        (outcome, _) => outcome,
    }
}

/// What a try that did not succeed means for the next.
struct Failure {
    /// Whether another try is allowed.
    retryable: bool,
    /// The wait the provider asked for (`Retry-After`), if any.
    asked_wait: Option<Duration>,
    /// The failure, as logged.
    what: String,
    /// Whether the try may have reached the provider.
    may_have_landed: bool,
}

/// `None` for a success; otherwise whether and when to try again.
fn judge(outcome: &Result<Response, SendError>, resend: Resend) -> Option<Failure> {
    Some(match outcome {
        Ok(response) if response.status.is_success() => return None,
        Ok(response) => Failure {
            retryable: resend == Resend::Idempotent
                && retry::retryable_status(response.status.as_u16()),
            asked_wait: response
                .retry_after
                .as_deref()
                .and_then(|v| retry::parse_retry_after(v, jiff::Timestamp::now())),
            what: format!("HTTP {}", response.status),
            may_have_landed: false,
        },
        Err(SendError::NotSent(message)) => Failure {
            retryable: true,
            asked_wait: None,
            what: message.clone(),
            may_have_landed: false,
        },
        Err(SendError::Unknown(message)) => Failure {
            retryable: resend == Resend::Idempotent,
            asked_wait: None,
            what: message.clone(),
            may_have_landed: true,
        },
    })
}

/// The outcome of the last try, told as the whole call's: how many tries it took, and
/// unknown if an earlier try may have landed.
fn finish(
    outcome: Result<Response, SendError>,
    tries: u32,
    maybe_landed: Option<&str>,
    stopped: Option<&str>,
) -> Result<Response, SendError> {
    let after = match (tries, stopped) {
        (1, None) => String::new(),
        (1, Some(why)) => format!(" (not retried: {why})"),
        (n, None) => format!(" (after {n} tries)"),
        (n, Some(why)) => format!(" (after {n} tries; {why})"),
    };
    match (outcome, maybe_landed) {
        (Ok(response), None) => Ok(Response {
            tries,
            retry_note: after,
            ..response
        }),
        (Ok(response), Some(landed)) => Err(SendError::Unknown(format!(
            "an earlier try may have reached the provider ({landed}) and the last answer was HTTP {}{after}",
            response.status
        ))),
        (Err(SendError::NotSent(message)), Some(landed)) => Err(SendError::Unknown(format!(
            "an earlier try may have reached the provider ({landed}) and the last one failed: {message}{after}"
        ))),
        (Err(SendError::NotSent(message)), None) => {
            Err(SendError::NotSent(format!("{message}{after}")))
        }
        (Err(SendError::Unknown(message)), _) => {
            Err(SendError::Unknown(format!("{message}{after}")))
        }
    }
}

fn classify(error: reqwest::Error) -> SendError {
    let text = describe(&error);
    if error.is_builder() || error.is_connect() {
        SendError::NotSent(format!("could not connect: {text}"))
    } else if error.is_timeout() {
        SendError::Unknown(format!("no answer before the timeout: {text}"))
    } else {
        SendError::Unknown(text)
    }
}

/// One line describing a reqwest error and its causes, without the URL (ids in it are
/// not secret, but the caller already names what it was doing).
fn describe(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    let mut line = parts.join(": ");
    if let Some(url) = error.url() {
        line = line
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "<url>");
    }
    one_line(&line)
}

/// Appends each segment to `base` as exactly one percent-encoded path segment.
///
/// `url`'s segment pusher silently drops `.` and `..`, so they are refused here even
/// though the providers' id validation refuses them earlier.
pub fn endpoint(base: &Url, segments: &[&str]) -> Result<Url> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| Error::Config("base URL cannot take a path".into()))?;
        path.pop_if_empty();
        for segment in segments {
            if segment.is_empty() || *segment == "." || *segment == ".." {
                return Err(Error::Usage(format!(
                    "refusing path segment '{segment}' in a provider URL"
                )));
            }
            path.push(segment);
        }
    }
    Ok(url)
}

/// The HTTP types providers use, re-exported so provider modules need not name reqwest.
pub use reqwest::{Certificate, Identity, Method as HttpMethod, RequestBuilder, header};

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://api.example.com/v1").unwrap()
    }

    #[test]
    fn each_id_stays_one_segment() {
        let url = endpoint(&base(), &["trunks", "a/b", "rotate-password"]).unwrap();
        assert_eq!(url.path(), "/v1/trunks/a%2Fb/rotate-password");
        let url = endpoint(&base(), &["x?y#z", "%2F", "ü"]).unwrap();
        assert_eq!(url.path(), "/v1/x%3Fy%23z/%252F/%C3%BC");
        assert_eq!(url.query(), None);
        let url = endpoint(&Url::parse("https://h/v1/").unwrap(), &["a"]).unwrap();
        assert_eq!(url.path(), "/v1/a");
    }

    #[test]
    fn dot_segments_are_refused_not_dropped() {
        for seg in [".", "..", ""] {
            assert_eq!(
                endpoint(&base(), &["a", seg])
                    .unwrap_err()
                    .exit_code()
                    .code(),
                2
            );
        }
    }
}
