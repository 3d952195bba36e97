//! Verification, shared by `verify` and `rotate --verify`: who to register as and where
//! ([`SipTarget`], from plain [`SipOptions`]), trying a password and, once it is accepted,
//! the one before it ([`SipTarget::check`]), asking again while a registrar that has not
//! learnt the new password yet rejects it ([`SipTarget::check_waiting`], `--verify-wait`),
//! what the answers mean ([`Checks`], [`Verdict`]) and the audit line that remembers them
//! ([`record`]). The SIP exchange itself is [`crate::sip`]; rendering is the commands'.

use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::audit::{AuditAction, AuditOutcome};
use crate::error::{Error, ExitCode, Result, exit};
use crate::interrupt;
use crate::providers::ProviderKind;
use crate::sip::{self, Credentials, Outcome, Registrar, Verification};
use crate::state::{AuditRecord, StateDir};

/// The first pause before asking a registrar that rejected the password again; each
/// pause doubles up to [`MAX_PAUSE`] (and never runs past the wait).
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Where to verify and, as far as given, as whom.
#[derive(Debug, Clone)]
pub struct SipOptions {
    pub registrar: Registrar,
    /// The SIP username; without one, verification is refused.
    pub username: Option<String>,
    /// The SIP domain of the From and To URIs; the registrar's host by default.
    pub domain: Option<String>,
    /// The time allowed for each password's verification.
    pub timeout: Duration,
}

/// The SIP username to use without asking the provider: `given` (`--username`), or the
/// one the provider returned at the last rotation (kept in the audit log).
pub fn known_username(
    given: Option<&str>,
    state: &StateDir,
    service: &str,
    entry: &str,
) -> Option<String> {
    given.map(str::to_owned).or_else(|| {
        state
            .histories(service)
            .remove(entry)
            .and_then(|history| history.username)
    })
}

/// The error for a verification without a known SIP username.
pub fn no_username(kind: ProviderKind, entry: &str) -> Error {
    Error::Usage(format!(
        "no SIP username known for '{entry}': pass --username ({kind} returns none, or siprot \
         has not rotated this credential yet)"
    ))
}

/// A username or domain goes into SIP URIs and header values as is: refuse anything that
/// would change the message's structure.
pub fn validate_sip_token(what: &str, value: &str) -> Result<()> {
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

/// Where and as whom to verify, checked.
#[derive(Debug, Clone)]
pub struct SipTarget {
    registrar: Registrar,
    username: String,
    domain: String,
    timeout: Duration,
}

impl SipTarget {
    /// Checks the username (required) and the domain (the registrar's host by default)
    /// before anything is sent; `kind` and `entry` name the credential in the error.
    pub fn new(options: SipOptions, kind: ProviderKind, entry: &str) -> Result<Self> {
        let SipOptions {
            registrar,
            username,
            domain,
            timeout,
        } = options;
        let username = username.ok_or_else(|| no_username(kind, entry))?;
        validate_sip_token("username", &username)?;
        let domain = domain.unwrap_or_else(|| registrar.host().to_owned());
        validate_sip_token("domain", &domain)?;
        Ok(Self {
            registrar,
            username,
            domain,
            timeout,
        })
    }

    /// Verifies `current`, then, once it is accepted, `previous` (which should not be).
    pub async fn check(&self, current: &SecretString, previous: Option<&SecretString>) -> Checks {
        let current = self.verify(current).await;
        let previous = match (previous, &current.outcome) {
            (Some(previous), Outcome::Accepted { .. }) => Some(self.verify(previous).await),
            _ => None,
        };
        Checks {
            current,
            previous,
            tries: 1,
        }
    }

    /// [`SipTarget::check`], asked again (after a pause that doubles from 0.5 s up to
    /// 5 s) while the registrar rejects the current password and `wait` has not passed
    /// since the first try; the last try is at the end of `wait`. Any other answer ends
    /// it at once: an unreachable registrar is never asked again, so no try runs past
    /// its own timeout. A signal ends the wait too. `wait` zero: one try.
    pub async fn check_waiting(
        &self,
        current: &SecretString,
        previous: Option<&SecretString>,
        wait: Duration,
    ) -> Checks {
        let started = Instant::now();
        let mut pause = FIRST_PAUSE;
        let mut tries = 1;
        loop {
            let mut checks = self.check(current, previous).await;
            checks.tries = tries;
            let left = wait.saturating_sub(started.elapsed());
            if checks.current.outcome != Outcome::Rejected
                || left.is_zero()
                || interrupt::received().is_some()
            {
                return checks;
            }
            tokio::select! {
                () = tokio::time::sleep(pause.min(left)) => {}
                () = interrupt::signalled() => return checks,
            }
            pause = (pause * 2).min(MAX_PAUSE);
            tries += 1;
        }
    }

    async fn verify(&self, password: &SecretString) -> Verification {
        let credentials = Credentials {
            username: &self.username,
            domain: &self.domain,
            password,
        };
        sip::verify(&self.registrar, &credentials, self.timeout).await
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// The outcome of verifying a password and, maybe, the one before it.
#[derive(Debug, Clone)]
pub struct Checks {
    pub current: Verification,
    /// Tried only when asked for and the current password was accepted.
    pub previous: Option<Verification>,
    /// How many times the registrar was asked (more than one with `--verify-wait`).
    pub tries: u32,
}

/// What [`Checks`] amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The current password was accepted (and the previous one, if tried, rejected).
    Verified,
    /// The registrar refused the current password.
    Rejected,
    /// No answer, or the registrar said it is unavailable.
    Unreachable,
    /// The registrar never asked for a password, or still accepts the previous one.
    NotVerified,
    /// Anything else (an unexpected answer, a challenge siprot cannot answer).
    Failed,
}

impl Verdict {
    /// The outcome of its audit line.
    pub fn audit_outcome(self) -> AuditOutcome {
        match self {
            Verdict::Verified => AuditOutcome::Verified,
            Verdict::Rejected => AuditOutcome::Rejected,
            Verdict::Unreachable => AuditOutcome::Unreachable,
            Verdict::NotVerified => AuditOutcome::NotVerified,
            Verdict::Failed => AuditOutcome::Failed,
        }
    }

    /// 0 verified, 5 rejected, 7 unreachable, 10 not verified, 1 failed.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Verdict::Verified => exit::SUCCESS,
            Verdict::Rejected => exit::AUTH,
            Verdict::Unreachable => exit::TRANSIENT,
            Verdict::NotVerified => exit::NOT_VERIFIED,
            Verdict::Failed => exit::UNEXPECTED,
        }
    }
}

impl Checks {
    /// The current password decides, unless it was accepted; then the previous one does.
    pub fn verdict(&self) -> Verdict {
        match self.current.outcome {
            Outcome::Accepted { .. } => {}
            Outcome::Rejected => return Verdict::Rejected,
            Outcome::Unreachable(_) => return Verdict::Unreachable,
            Outcome::NotChallenged => return Verdict::NotVerified,
            _ => return Verdict::Failed,
        }
        match self.previous.as_ref().map(|p| &p.outcome) {
            None | Some(Outcome::Rejected) => Verdict::Verified,
            Some(Outcome::Accepted { .. }) => Verdict::NotVerified,
            Some(Outcome::Unreachable(_)) => Verdict::Unreachable,
            Some(_) => Verdict::Failed,
        }
    }

    pub fn verified(&self) -> bool {
        self.verdict() == Verdict::Verified
    }

    /// The [`Verdict`]'s exit code.
    pub fn exit_code(&self) -> ExitCode {
        self.verdict().exit_code()
    }

    /// What failed: `rejected`, `unreachable`, ..., or that the previous password still
    /// registers.
    pub fn failure_reason(&self) -> String {
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

/// What one verification of a credential amounts to, for its audit line.
#[derive(Debug, Clone)]
pub struct Recorded<'a> {
    pub service: &'a str,
    pub kind: ProviderKind,
    /// The credential's store entry (its current password's name).
    pub entry: &'a str,
    pub outcome: AuditOutcome,
    pub exit_code: ExitCode,
    pub registrar: Option<&'a Registrar>,
}

/// Appends a `verify` line to the audit log, so that `status` can show the last
/// verification and whether the current password was verified since its rotation.
pub fn record(state: &StateDir, recorded: Recorded<'_>) -> Result<()> {
    let registrar = recorded.registrar.map(ToString::to_string);
    state.audit(&AuditRecord {
        time: jiff::Timestamp::now().to_string(),
        service: Some(recorded.service),
        provider: recorded.kind.name(),
        entry: recorded.entry,
        action: AuditAction::Verify,
        outcome: recorded.outcome,
        request_id: None,
        attempts: None,
        exit_code: recorded.exit_code,
        username: None,
        registrar: registrar.as_deref(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A verification with this outcome and nothing else known (also for rollback's tests).
    pub(crate) fn verification(outcome: Outcome) -> Verification {
        Verification {
            outcome,
            status: None,
            reason: None,
            algorithm: None,
            realm: None,
            elapsed: Duration::ZERO,
        }
    }

    fn checks(current: Outcome, previous: Option<Outcome>) -> Checks {
        Checks {
            current: verification(current),
            previous: previous.map(verification),
            tries: 1,
        }
    }

    #[test]
    fn the_verdict_and_its_exit_code_follow_both_outcomes() {
        let ok = || Outcome::Accepted { bindings: 0 };
        let gone = || Outcome::Unreachable("x".into());
        let table = [
            (ok(), None, Verdict::Verified, 0),
            (ok(), Some(Outcome::Rejected), Verdict::Verified, 0),
            (ok(), Some(ok()), Verdict::NotVerified, 10),
            (ok(), Some(gone()), Verdict::Unreachable, 7),
            (ok(), Some(Outcome::Failed("x".into())), Verdict::Failed, 1),
            (Outcome::Rejected, None, Verdict::Rejected, 5),
            (gone(), None, Verdict::Unreachable, 7),
            (Outcome::NotChallenged, None, Verdict::NotVerified, 10),
            (Outcome::Failed("x".into()), None, Verdict::Failed, 1),
        ];
        for (current, previous, verdict, code) in table {
            let checks = checks(current, previous);
            assert_eq!(checks.verdict(), verdict, "{checks:?}");
            assert_eq!(checks.exit_code().code(), code, "{checks:?}");
            assert_eq!(checks.verified(), code == 0, "{checks:?}");
        }
    }

    #[test]
    fn the_failure_reason_names_a_previous_password_that_still_registers() {
        let ok = || Outcome::Accepted { bindings: 1 };
        assert_eq!(
            checks(ok(), Some(ok())).failure_reason(),
            "the previous password still registers"
        );
        assert_eq!(checks(Outcome::Rejected, None).failure_reason(), "rejected");
    }

    #[test]
    fn a_target_needs_a_username_and_clean_tokens() {
        let registrar: Registrar = "sip:sip.example.net".parse().unwrap();
        let options = |username: Option<&str>, domain: Option<&str>| SipOptions {
            registrar: registrar.clone(),
            username: username.map(str::to_owned),
            domain: domain.map(str::to_owned),
            timeout: Duration::from_secs(1),
        };
        let kind = ProviderKind::from_name("exotel").unwrap();
        let target = SipTarget::new(options(Some("alice"), None), kind, "e").unwrap();
        assert_eq!(target.domain(), "sip.example.net");
        let error = SipTarget::new(options(None, None), kind, "e").unwrap_err();
        assert!(error.to_string().contains("no SIP username known for 'e'"));
        for (username, domain) in [("a b", None), ("a@b", None), ("alice", Some("x;y"))] {
            let error = SipTarget::new(options(Some(username), domain), kind, "e");
            assert!(
                matches!(error, Err(Error::Usage(_))),
                "{username} {domain:?}"
            );
        }
    }
}
