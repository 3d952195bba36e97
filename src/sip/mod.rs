//! Proving a password works: a SIP REGISTER to the registrar, answered with digest
//! credentials, that authenticates without touching the registration.
//!
//! The REGISTER has no `Contact` header, so it only queries the address-of-record's
//! bindings (RFC 3261 section 10.2.3); it never sends `Contact: *` or `Expires: 0`. The
//! phone that uses the credential stays registered whatever the outcome.
//!
//! SIP crates were considered: `rsip` 0.4 parses one `qop` value only (`qop="auth,auth-int"`
//! fails), formats the nonce count in decimal, offers SHA-512 where RFC 8760 has
//! SHA-512/256, computes `-sess` without the session key, and copies the password into
//! plain strings. The two messages needed here are small, so they are built and parsed
//! in [`message`], and the hashes come from the RustCrypto `md-5` and `sha2` crates.

pub mod digest;
pub mod message;
pub mod registrar;
pub mod transport;

use std::time::Duration;

use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::SecretString;
use tokio::time::Instant;

pub use registrar::{Registrar, Transport};

use digest::Challenge;
use message::{Register, Response};
use transport::{Connection, NoAnswer};

/// What the registrar made of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A 2xx to the authenticated REGISTER; `bindings` is how many the registrar listed.
    Accepted { bindings: usize },
    /// A second 401/407, or a 403 or 404.
    Rejected,
    /// A 2xx without ever asking for credentials: the password was not checked.
    NotChallenged,
    /// No answer (timeout, refused, unresolvable), or 408/480/503.
    Unreachable(String),
    /// Anything else: an unexpected status, a challenge siprot cannot answer.
    Failed(String),
}

impl Outcome {
    /// `ok`, `rejected`, `not-challenged`, `unreachable` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "ok",
            Outcome::Rejected => "rejected",
            Outcome::NotChallenged => "not-challenged",
            Outcome::Unreachable(_) => "unreachable",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The result of one verification, with what the registrar said.
#[derive(Debug, Clone)]
pub struct Verification {
    pub outcome: Outcome,
    /// The last status received, if any.
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// The digest algorithm of the challenge answered (`MD5`, `SHA-256`, ...).
    pub algorithm: Option<String>,
    pub realm: Option<String>,
    pub elapsed: Duration,
}

/// Who to authenticate as, where.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    pub username: &'a str,
    /// The host part of the From/To URIs (the SIP domain); the registrar host by default.
    pub domain: &'a str,
    pub password: &'a SecretString,
}

/// Registers `credentials` with `registrar` (a binding query) and reports the outcome,
/// all within `timeout`.
pub async fn verify(
    registrar: &Registrar,
    credentials: &Credentials<'_>,
    timeout: Duration,
) -> Verification {
    let started = Instant::now();
    let mut verification = Verification {
        outcome: Outcome::Failed(String::new()),
        status: None,
        reason: None,
        algorithm: None,
        realm: None,
        elapsed: Duration::ZERO,
    };
    verification.outcome = match run(registrar, credentials, timeout, &mut verification).await {
        Ok(outcome) => outcome,
        Err(NoAnswer::Garbled(problem)) => {
            Outcome::Failed(format!("the registrar's answer is garbled: {problem}"))
        }
        Err(no_answer) => Outcome::Unreachable(format!("{registrar}: {no_answer}")),
    };
    verification.elapsed = started.elapsed();
    verification
}

/// The REGISTER dialog: registers without credentials, answers the registrar's challenge
/// (once more for a stale nonce), and turns the final answer into an [`Outcome`].
async fn run(
    registrar: &Registrar,
    credentials: &Credentials<'_>,
    budget: Duration,
    verification: &mut Verification,
) -> Result<Outcome, NoAnswer> {
    let deadline = Instant::now() + budget;
    let mut connection = connect(registrar, deadline, budget).await?;
    let dialog = Dialog::new(registrar, credentials, &connection)?;
    let mut cseq = 1;
    let mut authorization: Option<(&str, String)> = None;
    let mut stale_retried = false;
    loop {
        let authorization_ref = authorization.as_ref().map(|(n, v)| (*n, v.as_str()));
        let response = dialog
            .register(&mut connection, cseq, authorization_ref, deadline, budget)
            .await?;
        verification.status = Some(response.status);
        verification.reason = Some(response.reason.clone());
        let authenticated = authorization.is_some();
        let (challenge, answer_header) =
            match next_step(registrar, &response, authenticated, &mut stale_retried) {
                Next::Done(outcome) => return Ok(outcome),
                Next::Answer(challenge, answer_header) => (challenge, answer_header),
            };
        verification.algorithm = Some(challenge.algorithm_name());
        verification.realm = Some(challenge.realm.clone());
        let value = dialog.answer(&challenge)?;
        authorization = Some((answer_header, value));
        cseq += 1;
    }
}

/// Resolves the registrar and opens a connection to it (a socket, for UDP).
async fn connect(
    registrar: &Registrar,
    deadline: Instant,
    budget: Duration,
) -> Result<Connection, NoAnswer> {
    let address = registrar.socket_address();
    let peer = tokio::time::timeout_at(deadline, tokio::net::lookup_host(&address))
        .await
        .map_err(|_| NoAnswer::Timeout(budget))?
        .map_err(|e| NoAnswer::Network(format!("cannot resolve {address}: {e}")))?
        .next()
        .ok_or_else(|| NoAnswer::Network(format!("{address} resolves to no address")))?;
    Connection::open(registrar.transport(), peer, deadline, budget).await
}

/// What stays the same across one verification's REGISTERs.
struct Dialog<'a> {
    registrar: &'a Registrar,
    credentials: &'a Credentials<'a>,
    local: String,
    call_id: String,
    from_tag: String,
    request_uri: String,
}

impl<'a> Dialog<'a> {
    fn new(
        registrar: &'a Registrar,
        credentials: &'a Credentials<'a>,
        connection: &Connection,
    ) -> Result<Self, NoAnswer> {
        let local = connection.local_address();
        let call_id = format!("{}@siprot", random(16)?);
        let from_tag = random(8)?;
        Ok(Self {
            registrar,
            credentials,
            local,
            call_id,
            from_tag,
            request_uri: registrar.request_uri(),
        })
    }

    /// Sends REGISTER number `cseq`, with `authorization` if given, and returns the
    /// registrar's final answer to it.
    async fn register(
        &self,
        connection: &mut Connection,
        cseq: u32,
        authorization: Option<(&str, &str)>,
        deadline: Instant,
        budget: Duration,
    ) -> Result<Response, NoAnswer> {
        let branch = format!("z9hG4bK{}", random(12)?);
        let request = Register {
            request_uri: &self.request_uri,
            transport: self.registrar.transport().via_name(),
            local: &self.local,
            username: self.credentials.username,
            domain: self.credentials.domain,
            call_id: &self.call_id,
            from_tag: &self.from_tag,
            branch: &branch,
            cseq,
            authorization,
        };
        log::debug!(
            "sip: REGISTER {} over {} as '{}' (CSeq {cseq}, {})",
            self.request_uri,
            self.registrar.transport().name(),
            self.credentials.username,
            if authorization.is_some() {
                "with credentials"
            } else {
                "without credentials"
            }
        );
        let response = connection
            .exchange(
                &request.to_bytes(),
                &request.transaction(),
                deadline,
                budget,
            )
            .await?;
        log::debug!("sip: answer {} {}", response.status, response.reason);
        Ok(response)
    }

    /// The digest answer to `challenge`, for the next REGISTER's authorization header.
    fn answer(&self, challenge: &Challenge) -> Result<String, NoAnswer> {
        let cnonce = random(16)?;
        Ok(challenge.answer(
            self.credentials.username,
            self.credentials.password,
            "REGISTER",
            &self.request_uri,
            &cnonce,
        ))
    }
}

/// What a final answer leads to.
enum Next {
    /// The verification is over.
    Done(Outcome),
    /// Answer this challenge in the named header (`Authorization` or `Proxy-Authorization`).
    Answer(Challenge, &'static str),
}

/// Reads the registrar's final answer; `authenticated` when the REGISTER carried
/// credentials. A stale nonce after credentials is answered once (`stale_retried`).
fn next_step(
    registrar: &Registrar,
    response: &Response,
    authenticated: bool,
    stale_retried: &mut bool,
) -> Next {
    match response.status {
        200..=299 if authenticated => Next::Done(Outcome::Accepted {
            bindings: response.contact_count(),
        }),
        200..=299 => Next::Done(Outcome::NotChallenged),
        401 | 407 => {
            let (challenge_header, answer_header) = if response.status == 401 {
                ("www-authenticate", "Authorization")
            } else {
                ("proxy-authenticate", "Proxy-Authorization")
            };
            let challenge = match strongest_challenge(response, challenge_header) {
                Ok(challenge) => challenge,
                Err(problem) => return Next::Done(Outcome::Failed(problem)),
            };
            if authenticated {
                // A stale nonce is not a wrong password: answer the fresh one, once.
                if !challenge.stale || *stale_retried {
                    return Next::Done(Outcome::Rejected);
                }
                *stale_retried = true;
            }
            Next::Answer(challenge, answer_header)
        }
        403 | 404 => Next::Done(Outcome::Rejected),
        408 | 480 | 503 => Next::Done(Outcome::Unreachable(format!(
            "{registrar} answered {} {}",
            response.status, response.reason
        ))),
        status => Next::Done(Outcome::Failed(format!(
            "{registrar} answered {status} {}",
            response.reason
        ))),
    }
}

/// The challenge to answer among those offered: the strongest algorithm siprot supports
/// (RFC 8760 section 2.4: a registrar may offer SHA-256 and MD5 side by side).
fn strongest_challenge(response: &Response, header: &str) -> Result<Challenge, String> {
    let mut best: Option<Challenge> = None;
    let mut problem = None;
    for value in response.header_values(header) {
        match Challenge::parse(value) {
            Ok(challenge) => {
                if best
                    .as_ref()
                    .is_none_or(|b| strength(challenge.algorithm) > strength(b.algorithm))
                {
                    best = Some(challenge);
                }
            }
            Err(e) => problem = Some(e),
        }
    }
    best.ok_or_else(|| match problem {
        Some(e) => format!("cannot answer the registrar's challenge: {e}"),
        None => format!(
            "the registrar answered {} {} without a challenge",
            response.status, response.reason
        ),
    })
}

fn strength(algorithm: digest::Algorithm) -> u8 {
    match algorithm {
        digest::Algorithm::Md5 => 0,
        digest::Algorithm::Sha256 => 1,
        digest::Algorithm::Sha512_256 => 2,
    }
}

/// `bytes` random bytes from the OS, in hex; without randomness there is no dialog.
fn random(bytes: usize) -> Result<String, NoAnswer> {
    random_hex(bytes).map_err(NoAnswer::Network)
}

/// `bytes` random bytes from the OS, in hex.
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes.div_ceil(8) {
        let value = SysRng
            .try_next_u64()
            .map_err(|e| format!("no randomness from the operating system: {e}"))?;
        out.push_str(&format!("{value:016x}"));
    }
    out.truncate(bytes * 2);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Which identifiers an answer echoes: the request's own, or a forged one.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Ids {
        Genuine,
        OtherCallId,
        OtherBranch,
        NoVia,
    }

    /// The answer `status` (a status line plus extra headers) to `request`, echoing its
    /// Via, Call-ID and CSeq as a registrar does, except where `ids` forges one.
    fn answer(request: &str, status: &str, ids: Ids) -> String {
        let header = |name: &str| {
            request
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let (mut via, mut call_id, cseq) = (header("Via: "), header("Call-ID: "), header("CSeq: "));
        match ids {
            Ids::Genuine => {}
            Ids::OtherCallId => call_id = "forged@elsewhere".to_owned(),
            Ids::OtherBranch => {
                let (sent_by, _) = via.split_once(";branch=").unwrap();
                via = format!("{sent_by};branch=z9hG4bKforged;rport");
            }
            Ids::NoVia => via.clear(),
        }
        let via = if via.is_empty() {
            String::new()
        } else {
            format!("Via: {via};received=127.0.0.1\r\n")
        };
        format!("{status}\r\n{via}Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n")
    }

    type Steps = Vec<Vec<(Ids, &'static str)>>;

    /// A scripted "registrar" on `transport`: answers the n-th request with the answers of
    /// `steps[n]`, in order, and records every request.
    async fn scripted_on(
        transport: Transport,
        steps: Steps,
    ) -> (Registrar, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let port = match transport {
            Transport::Udp => {
                let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let port = socket.local_addr().unwrap().port();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 65536];
                    for step in steps {
                        let (n, from) = socket.recv_from(&mut buffer).await.unwrap();
                        let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
                        for (ids, status) in step {
                            let response = answer(&request, status, ids);
                            socket.send_to(response.as_bytes(), from).await.unwrap();
                        }
                        record.lock().unwrap().push(request);
                    }
                    // Keep the port open (retransmissions are dropped) until the test ends.
                    while socket.recv_from(&mut buffer).await.is_ok() {}
                });
                port
            }
            Transport::Tcp => {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                tokio::spawn(async move {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    let mut buffer = Vec::new();
                    for step in steps {
                        // Requests have no body: each ends at its blank line.
                        let end = loop {
                            if let Some(end) = message::find_head_end(&buffer) {
                                break end + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            let n = stream.read(&mut chunk).await.unwrap();
                            assert!(n > 0, "siprot closed the connection");
                            buffer.extend_from_slice(&chunk[..n]);
                        };
                        let request: Vec<u8> = buffer.drain(..end).collect();
                        let request = String::from_utf8_lossy(&request).into_owned();
                        for (ids, status) in step {
                            let response = answer(&request, status, ids);
                            stream.write_all(response.as_bytes()).await.unwrap();
                        }
                        record.lock().unwrap().push(request);
                    }
                    // Keep the connection open until siprot is done with it.
                    let _ = stream.read(&mut [0u8; 1]).await;
                });
                port
            }
        };
        let uri = format!("sip:127.0.0.1:{port};transport={}", transport.name());
        (uri.parse().unwrap(), seen)
    }

    async fn verify_against(
        transport: Transport,
        steps: Steps,
        timeout: Duration,
    ) -> (Verification, Vec<String>) {
        let (registrar, seen) = scripted_on(transport, steps).await;
        let password = SecretString::from("pw-unit-1");
        let credentials = Credentials {
            username: "alice",
            domain: "example.org",
            password: &password,
        };
        let verification = verify(&registrar, &credentials, timeout).await;
        let requests = seen.lock().unwrap().clone();
        (verification, requests)
    }

    /// Answers the n-th request over UDP with `script[n]`, echoing its identifiers.
    async fn run_script(script: Vec<&'static str>) -> (Verification, Vec<String>) {
        let steps = script
            .into_iter()
            .map(|a| vec![(Ids::Genuine, a)])
            .collect();
        verify_against(Transport::Udp, steps, Duration::from_secs(5)).await
    }

    const MD5: &str =
        "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n1\"";

    #[test]
    fn a_challenge_after_credentials_is_a_rejection_unless_the_nonce_was_stale_once() {
        let registrar: Registrar = "sip:127.0.0.1".parse().unwrap();
        let parse = |head: &str| Response::parse(format!("{head}\r\n\r\n").as_bytes()).unwrap();
        let stale = parse(&format!("{MD5}, stale=true"));
        let mut retried = false;
        let step = next_step(&registrar, &parse(MD5), false, &mut retried);
        assert!(matches!(step, Next::Answer(_, "Authorization")));
        let step = next_step(&registrar, &parse(MD5), true, &mut retried);
        assert!(matches!(step, Next::Done(Outcome::Rejected)));
        let step = next_step(&registrar, &stale, true, &mut retried);
        assert!(matches!(step, Next::Answer(..)) && retried);
        let step = next_step(&registrar, &stale, true, &mut retried);
        assert!(matches!(step, Next::Done(Outcome::Rejected)));
        let ok = parse("SIP/2.0 200 OK\r\nContact: <sip:a@1.2.3.4>");
        let step = next_step(&registrar, &ok, true, &mut retried);
        assert!(matches!(
            step,
            Next::Done(Outcome::Accepted { bindings: 1 })
        ));
    }

    #[tokio::test]
    async fn a_proxy_challenge_is_answered_with_proxy_authorization() {
        let (v, requests) = run_script(vec![
            "SIP/2.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"",
            "SIP/2.0 200 OK\r\nContact: <sip:a@1.2.3.4>",
        ])
        .await;
        assert_eq!(v.outcome, Outcome::Accepted { bindings: 1 });
        assert!(requests[1].contains("\r\nProxy-Authorization: Digest username=\"alice\""));
        assert!(requests[1].contains("CSeq: 2 REGISTER"));
        assert!(!requests.iter().any(|r| r.contains("pw-unit-1")));
    }

    #[tokio::test]
    async fn a_stale_nonce_is_retried_once_then_it_is_a_rejection() {
        let stale = "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", stale=true";
        let (v, requests) = run_script(vec![MD5, stale, "SIP/2.0 200 OK"]).await;
        assert_eq!(v.outcome, Outcome::Accepted { bindings: 0 });
        assert!(requests[2].contains("nonce=\"n2\""));
        let (v, requests) = run_script(vec![MD5, stale, stale]).await;
        assert_eq!(v.outcome, Outcome::Rejected);
        assert_eq!(requests.len(), 3);
    }

    #[tokio::test]
    async fn the_strongest_offered_algorithm_is_used() {
        let (v, requests) = run_script(vec![
            "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=MD5\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
            "SIP/2.0 200 OK",
        ])
        .await;
        assert_eq!(v.algorithm.as_deref(), Some("SHA-256"));
        assert!(requests[1].contains("algorithm=SHA-256"));
    }

    #[tokio::test]
    async fn other_answers_map_to_their_outcomes() {
        let (v, _) = run_script(vec!["SIP/2.0 200 OK"]).await;
        assert_eq!(v.outcome, Outcome::NotChallenged);
        let (v, _) = run_script(vec![MD5, "SIP/2.0 403 Forbidden"]).await;
        assert_eq!(v.outcome, Outcome::Rejected);
        let (v, _) = run_script(vec![MD5, "SIP/2.0 503 Service Unavailable"]).await;
        assert!(matches!(v.outcome, Outcome::Unreachable(_)), "{v:?}");
        let (v, _) = run_script(vec!["SIP/2.0 500 Server Internal Error"]).await;
        assert!(
            matches!(&v.outcome, Outcome::Failed(p) if p.contains("500")),
            "{v:?}"
        );
        let (v, _) = run_script(vec![
            "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1",
        ])
        .await;
        assert!(
            matches!(&v.outcome, Outcome::Failed(p) if p.contains("SHA-1")),
            "{v:?}"
        );
        assert_eq!(v.status, Some(401));
    }

    /// Each step answers first with forged final answers that carry the right CSeq (a
    /// success where a challenge is due, then a rejection where a success is due), then
    /// with the registrar's own.
    async fn forged_then_genuine(transport: Transport, forged: Ids) {
        let steps = vec![
            vec![(forged, "SIP/2.0 200 OK"), (Ids::Genuine, MD5)],
            vec![
                (forged, "SIP/2.0 403 Forbidden"),
                (
                    Ids::Genuine,
                    "SIP/2.0 200 OK\r\nContact: <sip:alice@10.0.0.1>",
                ),
            ],
        ];
        let (v, requests) = verify_against(transport, steps, Duration::from_secs(5)).await;
        assert_eq!(
            v.outcome,
            Outcome::Accepted { bindings: 1 },
            "{transport:?} {forged:?}: {v:?}"
        );
        assert_eq!(requests.len(), 2, "{transport:?} {forged:?}");
        assert!(requests[1].contains("\r\nAuthorization: Digest "));
    }

    #[tokio::test]
    async fn an_answer_with_another_call_id_is_ignored_and_the_real_one_taken() {
        for transport in [Transport::Udp, Transport::Tcp] {
            forged_then_genuine(transport, Ids::OtherCallId).await;
        }
    }

    #[tokio::test]
    async fn an_answer_with_another_via_branch_is_ignored_and_the_real_one_taken() {
        for transport in [Transport::Udp, Transport::Tcp] {
            forged_then_genuine(transport, Ids::OtherBranch).await;
            forged_then_genuine(transport, Ids::NoVia).await;
        }
    }

    #[tokio::test]
    async fn forged_answers_alone_end_in_the_timeout_not_in_an_outcome() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let forged = vec![
                (Ids::OtherCallId, "SIP/2.0 200 OK"),
                (Ids::OtherBranch, "SIP/2.0 403 Forbidden"),
                (Ids::NoVia, "SIP/2.0 200 OK"),
            ];
            let started = std::time::Instant::now();
            let (v, _) = verify_against(transport, vec![forged], Duration::from_millis(800)).await;
            assert!(
                matches!(&v.outcome, Outcome::Unreachable(p) if p.contains("no answer")),
                "{transport:?}: {v:?}"
            );
            assert!(started.elapsed() >= Duration::from_millis(800));
        }
    }
}
