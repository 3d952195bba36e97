//! `siprot verify`: registers the stored password with a SIP registrar (a binding query)
//! and reports whether it was accepted; with `--expect-rejected-previous`, also that the
//! `#previous` password no longer is. `rotate --verify` uses the same pieces.

use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;

use crate::cli::{SipUserArgs, VerifyArgs};
use crate::commands::{block_on, stored_secret};
use crate::config;
use crate::error::{Error, Result, exit};
use crate::output;
use crate::providers::{CredentialRef, ProviderKind};
use crate::sip::{self, Credentials, Outcome, Registrar, Verification};
use crate::state::StateDir;
use crate::store::{EntryName, Keyring, Slot};

pub fn run(args: VerifyArgs) -> Result<u8> {
    let kind = args.provider.provider;
    let credential = CredentialRef::new(kind, &args.id, args.device.as_deref())?;
    let name = EntryName::new(kind.entry_name(&credential)?);
    let service = config::keyring_service()?;
    let state = StateDir::locate()?;
    let username = known_username(&args.sip, &state, &service, name.current());
    let target = SipTarget::new(
        args.registrar,
        username,
        &args.sip,
        kind,
        name.current(),
        args.timeout,
    )?;

    let checks = block_on(async {
        let keyring = Keyring::open(&service, args.keyring_timeout)
            .await
            .map_err(Error::keyring_unavailable)?;
        let current = stored_secret(&keyring, kind, &name.slot(Slot::Current)).await?;
        let previous = if args.expect_rejected_previous {
            Some(stored_secret(&keyring, kind, &name.slot(Slot::Previous)).await?)
        } else {
            None
        };
        Ok(target.check(&current, previous.as_ref()).await)
    })?;
    let code = checks.exit_code();
    if args.json {
        output::json(&VerifyJson {
            provider: kind.name(),
            credential: credential.display(),
            keyring_entry: name.current(),
            verification: checks.json(&target),
            exit_code: code,
        })?;
    } else {
        for line in checks.human_lines(&target, &credential.display(), kind) {
            output::line(&line)?;
        }
    }
    if code != exit::SUCCESS {
        output::error_line(&checks.summary_error(&target, name.current()));
    }
    Ok(code)
}

/// The SIP username to use without asking the provider: `--username`, or the one the
/// provider returned at the last rotation (kept in the audit log).
pub(crate) fn known_username(
    sip: &SipUserArgs,
    state: &StateDir,
    service: &str,
    entry: &str,
) -> Option<String> {
    sip.username.clone().or_else(|| {
        state
            .histories(service)
            .remove(entry)
            .and_then(|history| history.username)
    })
}

pub(crate) fn no_username(kind: ProviderKind, entry: &str) -> Error {
    Error::Usage(format!(
        "no SIP username known for '{entry}': pass --username ({kind} returns none, or siprot \
         has not rotated this credential yet)"
    ))
}

/// Where and as whom to verify.
#[derive(Debug, Clone)]
pub(crate) struct SipTarget {
    registrar: Registrar,
    username: String,
    domain: String,
    timeout: Duration,
}

impl SipTarget {
    /// Checks the username (required) and the domain (`--domain`, or the registrar's
    /// host) before anything is sent.
    pub(crate) fn new(
        registrar: Registrar,
        username: Option<String>,
        sip: &SipUserArgs,
        kind: ProviderKind,
        entry: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let username = username.ok_or_else(|| no_username(kind, entry))?;
        validate_sip_token("username", &username)?;
        let domain = sip
            .domain
            .clone()
            .unwrap_or_else(|| registrar.host().to_owned());
        validate_sip_token("domain", &domain)?;
        Ok(Self {
            registrar,
            username,
            domain,
            timeout,
        })
    }

    /// Verifies `current`, then, once it is accepted, `previous` (which should not be).
    pub(crate) async fn check(
        &self,
        current: &SecretString,
        previous: Option<&SecretString>,
    ) -> Checks {
        let current = self.verify(current).await;
        let previous = match (previous, &current.outcome) {
            (Some(previous), Outcome::Accepted { .. }) => Some(self.verify(previous).await),
            _ => None,
        };
        Checks { current, previous }
    }

    async fn verify(&self, password: &SecretString) -> Verification {
        let credentials = Credentials {
            username: &self.username,
            domain: &self.domain,
            password,
        };
        sip::verify(&self.registrar, &credentials, self.timeout).await
    }

    pub(crate) fn registrar(&self) -> &Registrar {
        &self.registrar
    }
}

/// A username or domain goes into SIP URIs and header values as is: refuse anything that
/// would change the message's structure.
pub(crate) fn validate_sip_token(what: &str, value: &str) -> Result<()> {
    let bad = value.is_empty()
        || value.len() > 256
        || value
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>\"@;,?\\".contains(c));
    if bad {
        return Err(Error::Usage(format!(
            "the SIP {what} must be 1 to 256 characters without spaces, control characters or \
             any of < > \" @ ; , ? \\"
        )));
    }
    Ok(())
}

/// The outcome of verifying a password and, maybe, the one before it.
#[derive(Debug, Clone)]
pub(crate) struct Checks {
    pub current: Verification,
    /// Tried only when asked for and the current password was accepted.
    pub previous: Option<Verification>,
}

impl Checks {
    pub(crate) fn verified(&self) -> bool {
        self.exit_code() == exit::SUCCESS
    }

    /// 0 ok, 5 rejected, 7 unreachable, 10 not verified (never challenged, or the
    /// previous password still accepted), 1 anything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self.current.outcome {
            Outcome::Accepted { .. } => {}
            Outcome::Rejected => return exit::AUTH,
            Outcome::Unreachable(_) => return exit::TRANSIENT,
            Outcome::NotChallenged => return exit::NOT_VERIFIED,
            _ => return exit::UNEXPECTED,
        }
        match self.previous.as_ref().map(|p| &p.outcome) {
            None | Some(Outcome::Rejected) => exit::SUCCESS,
            Some(Outcome::Accepted { .. }) => exit::NOT_VERIFIED,
            Some(Outcome::Unreachable(_)) => exit::TRANSIENT,
            Some(_) => exit::UNEXPECTED,
        }
    }

    pub(crate) fn json<'a>(&'a self, target: &'a SipTarget) -> VerificationJson<'a> {
        VerificationJson {
            registrar: target.registrar.to_string(),
            transport: target.registrar.transport().name(),
            username: &target.username,
            domain: &target.domain,
            current: Checked::from(&self.current),
            previous: self.previous.as_ref().map(Checked::from),
        }
    }

    /// One line for the current password and one for the previous, if it was tried.
    pub(crate) fn human_lines(
        &self,
        target: &SipTarget,
        credential: &str,
        kind: ProviderKind,
    ) -> Vec<String> {
        let registrar = &target.registrar;
        let who = format!("{credential} ({kind}, SIP user {})", target.username);
        let c = &self.current;
        let mut lines = vec![match &c.outcome {
            Outcome::Accepted { bindings } => format!(
                "ok: {registrar} accepted the current password of {who}: {}, {}, {bindings} \
                 binding(s) left as they were",
                answer(c),
                c.algorithm.as_deref().unwrap_or("digest"),
            ),
            Outcome::Rejected => format!(
                "rejected: {registrar} refused the current password of {who}: {}",
                answer(c)
            ),
            Outcome::NotChallenged => format!(
                "not verified: {registrar} accepted {who} without asking for a password ({})",
                answer(c)
            ),
            Outcome::Unreachable(problem) | Outcome::Failed(problem) => {
                format!("{}: {problem}", c.outcome.name())
            }
        }];
        if let Some(p) = &self.previous {
            lines.push(match &p.outcome {
                Outcome::Rejected => {
                    format!("ok: the previous password is rejected ({})", answer(p))
                }
                Outcome::Accepted { .. } => format!(
                    "not verified: the previous password is still accepted ({})",
                    answer(p)
                ),
                Outcome::Unreachable(problem) | Outcome::Failed(problem) => {
                    format!("previous password {}: {problem}", p.outcome.name())
                }
                Outcome::NotChallenged => format!(
                    "not verified: the previous password was not asked for ({})",
                    answer(p)
                ),
            });
        }
        lines
    }

    /// What failed, for the one error line on standard error.
    pub(crate) fn summary_error(&self, target: &SipTarget, entry: &str) -> String {
        format!(
            "verification of {entry} at {} failed: {}",
            target.registrar,
            self.summary_error_reason()
        )
    }

    /// `rejected`, `unreachable`, ..., or that the previous password still registers.
    pub(crate) fn summary_error_reason(&self) -> String {
        let previous_still_works = self
            .previous
            .as_ref()
            .is_some_and(|p| matches!(p.outcome, Outcome::Accepted { .. }));
        if previous_still_works {
            "the previous password still registers".into()
        } else {
            self.current.outcome.name().into()
        }
    }
}

fn answer(v: &Verification) -> String {
    match (&v.status, &v.reason) {
        (Some(status), Some(reason)) => format!("{status} {reason}"),
        _ => "no answer".to_owned(),
    }
}

/// The JSON contract of `verify --json`.
#[derive(Debug, Serialize)]
struct VerifyJson<'a> {
    provider: &'static str,
    credential: String,
    keyring_entry: &'a str,
    #[serde(flatten)]
    verification: VerificationJson<'a>,
    exit_code: u8,
}

/// Where and as whom, and what the registrar said (`verify --json`, and the
/// `verification` object of `rotate --verify --json`).
#[derive(Debug, Serialize)]
pub(crate) struct VerificationJson<'a> {
    registrar: String,
    transport: &'static str,
    username: &'a str,
    domain: &'a str,
    #[serde(flatten)]
    current: Checked,
    /// With `--expect-rejected-previous`, once the current password was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<Checked>,
}

/// One password's verification, as printed.
#[derive(Debug, Serialize)]
struct Checked {
    result: &'static str,
    status: Option<u16>,
    reason: Option<String>,
    algorithm: Option<String>,
    realm: Option<String>,
    /// Bindings the registrar listed in its 2xx (untouched by the query).
    #[serde(skip_serializing_if = "Option::is_none")]
    bindings: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    elapsed_ms: u128,
}

impl From<&Verification> for Checked {
    fn from(v: &Verification) -> Self {
        Self {
            result: v.outcome.name(),
            status: v.status,
            reason: v.reason.clone(),
            algorithm: v.algorithm.clone(),
            realm: v.realm.clone(),
            bindings: match v.outcome {
                Outcome::Accepted { bindings } => Some(bindings),
                _ => None,
            },
            problem: match &v.outcome {
                Outcome::Unreachable(p) | Outcome::Failed(p) => Some(p.clone()),
                _ => None,
            },
            elapsed_ms: v.elapsed.as_millis(),
        }
    }
}
