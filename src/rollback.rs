//! After a rotation (`rotate --verify`): prove the stored password with a SIP REGISTER
//! ([`crate::verification`]); when the registrar rejects it and a rollback was asked for
//! (client-set providers only), set the `#previous` password back through
//! [`rotation::rotate`], the same protocol, which alone orders the keyring writes and the
//! provider's request, then verify it. Nothing is ever rolled back silently, and an
//! unverified password stays stored: the keyring always holds what the provider has.
//! Each verification's outcome is appended to the audit log ([`verification::record`]).

use std::time::Duration;

use secrecy::SecretString;

use crate::audit::AuditOutcome;
use crate::error::{Error, ExitCode, Result, exit};
use crate::http::Attempts;
use crate::providers::{self, CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::rotation::{self, PasswordSource, RotationInput, RotationReport};
use crate::sip::Outcome;
use crate::state::StateDir;
use crate::store::{EntryName, SecretStore, Slot};
use crate::verification::{self, Checks, Recorded, SipOptions, SipTarget};

/// What to verify after the rotation, as asked.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The username here is the one given, if any.
    pub sip: SipOptions,
    /// Also try `#previous`, which the registrar must reject.
    pub expect_rejected_previous: bool,
    /// Set `#previous` back when the registrar rejects the new password.
    pub rollback: bool,
    /// `--verify-wait`: how long a registrar that rejects the new password is asked again.
    pub wait: Duration,
}

/// The verify step, settled before anything is sent.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The username given, or the one the audit log knows; else the rotation's answer.
    sip: SipOptions,
    expect_rejected_previous: bool,
    rollback: bool,
    wait: Duration,
}

impl Plan {
    /// Checks `options` against the provider `kind` and the credential's `entry` now, so
    /// that nothing changes when verification could not run.
    pub fn new(
        options: VerifyOptions,
        kind: ProviderKind,
        state: &StateDir,
        service: &str,
        entry: &str,
    ) -> Result<Self> {
        let VerifyOptions {
            mut sip,
            expect_rejected_previous,
            rollback,
            wait,
        } = options;
        if rollback && kind.origin() == PasswordOrigin::ServerGenerated {
            return Err(Error::Usage(format!(
                "{kind} generates passwords on its server and cannot be given the previous one \
                 back: --rollback-on-verify-failure is for {}",
                providers::names_where(|r| r.origin == PasswordOrigin::ClientSupplied)
            )));
        }
        sip.username = verification::known_username(sip.username.as_deref(), state, service, entry);
        if sip.username.is_none() && !kind.registration().returns_sip_username {
            return Err(verification::no_username(kind, entry));
        }
        // The checks the target makes later, now, before anything changes.
        if let Some(username) = &sip.username {
            verification::validate_sip_token("username", username)?;
        }
        if let Some(domain) = &sip.domain {
            verification::validate_sip_token("domain", domain)?;
        }
        Ok(Self {
            sip,
            expect_rejected_previous,
            rollback,
            wait,
        })
    }

    /// The step a dry run would take.
    pub fn describe(&self) -> String {
        format!(
            "verify the new password with a SIP REGISTER to {}{}",
            self.sip.registrar,
            if self.rollback {
                "; if it is rejected, set the previous password back"
            } else {
                ""
            }
        )
    }
}

/// What happened after the rotation.
#[derive(Debug)]
pub struct Verified {
    pub target: Option<SipTarget>,
    /// `Err`: verification could not even start (e.g. no username in the answer).
    pub checks: std::result::Result<Checks, String>,
    pub rollback: Option<Rollback>,
    /// Problems that changed nothing (the audit log could not be written).
    pub warnings: Vec<String>,
}

/// What came of a rollback that was asked for.
#[derive(Debug)]
pub enum Rollback {
    /// The previous password is current again, at the provider and in the keyring.
    Done {
        report: Box<RotationReport>,
        /// The previous password's verification once it was set back.
        checks: Box<Checks>,
    },
    Failed(Error),
    /// Asked for, but the verdict gave no reason to (the registrar did not reject).
    Skipped(String),
}

impl Verified {
    fn not_started(target: Option<SipTarget>, problem: String) -> Self {
        Self {
            target,
            checks: Err(problem),
            rollback: None,
            warnings: Vec::new(),
        }
    }

    pub fn verified(&self) -> bool {
        matches!(&self.checks, Ok(checks) if checks.verified())
    }

    /// 0 when verified; 9 when a rollback was interrupted and needs `siprot recover`;
    /// otherwise 10 (rotated and stored, not verified).
    pub fn exit_code(&self) -> ExitCode {
        match &self.rollback {
            _ if self.verified() => exit::SUCCESS,
            Some(Rollback::Failed(error)) if error.exit_code() == exit::UNCONFIRMED => {
                exit::UNCONFIRMED
            }
            _ => exit::NOT_VERIFIED,
        }
    }
}

/// Everything the verify step needs from the rotation around it.
pub struct Context<'a> {
    pub provider: &'a dyn Provider,
    pub credential: &'a CredentialRef,
    /// The credential's entries in `store`.
    pub name: &'a EntryName,
    pub store: &'a dyn SecretStore,
    pub state: &'a StateDir,
}

/// Verifies the password `report` stored, and rolls back if asked and rejected; the
/// outcome (and the rolled-back password's) is appended to the audit log.
pub async fn after_rotation(
    plan: Plan,
    report: &RotationReport,
    context: &Context<'_>,
) -> Verified {
    let mut verified = verify_and_roll_back(plan, report, context).await;
    let record = |checks: Option<&Checks>| Recorded {
        service: context.store.service(),
        kind: report.provider,
        entry: report.entry.current(),
        outcome: checks.map_or(AuditOutcome::NotVerified, |c| c.verdict().audit_outcome()),
        exit_code: checks.map_or(exit::NOT_VERIFIED, Checks::exit_code),
        registrar: verified.target.as_ref().map(SipTarget::registrar),
    };
    let mut records = vec![record(verified.checks.as_ref().ok())];
    if let Some(Rollback::Done { checks, .. }) = &verified.rollback {
        records.push(record(Some(checks)));
    }
    let warnings: Vec<String> = records
        .into_iter()
        .filter_map(|r| verification::record(context.state, r).err())
        .map(|e| format!("the verification is not in the audit log: {e}"))
        .collect();
    verified.warnings.extend(warnings);
    verified
}

async fn verify_and_roll_back(
    plan: Plan,
    report: &RotationReport,
    context: &Context<'_>,
) -> Verified {
    let mut sip = plan.sip;
    sip.username = sip.username.or_else(|| report.username.clone());
    let target = match SipTarget::new(sip, report.provider, report.entry.current()) {
        Ok(target) => target,
        Err(error) => return Verified::not_started(None, error.to_string()),
    };
    let Some(password) = &report.password else {
        let problem = "the rotation returned no password to verify".to_owned();
        return Verified::not_started(Some(target), problem);
    };
    let previous = if plan.expect_rejected_previous || plan.rollback {
        context
            .store
            .read(&report.entry, Slot::Previous)
            .await
            .map(|stored| stored.and_then(|s| s.secret))
    } else {
        Ok(None)
    };
    let previous = match previous {
        Ok(previous) => previous,
        Err(error) => {
            let problem = format!(
                "cannot read {}: {error}",
                context.store.locate(&report.entry, Slot::Previous)
            );
            return Verified::not_started(Some(target), problem);
        }
    };
    let expected_rejected = previous.as_ref().filter(|_| plan.expect_rejected_previous);
    let checks = target
        .check_waiting(password, expected_rejected, plan.wait)
        .await;
    let rollback = if checks.verified() || !plan.rollback {
        None
    } else {
        let previous_entry = context.store.locate(&report.entry, Slot::Previous);
        Some(roll_back_if_rejected(&checks, previous, &previous_entry, &target, context).await)
    };
    Verified {
        target: Some(target),
        checks: Ok(checks),
        rollback,
        warnings: Vec::new(),
    }
}

/// Sets `previous` back, if the registrar rejected the new password and there is one.
async fn roll_back_if_rejected(
    checks: &Checks,
    previous: Option<SecretString>,
    previous_entry: &str,
    target: &SipTarget,
    context: &Context<'_>,
) -> Rollback {
    if checks.current.outcome != Outcome::Rejected {
        return Rollback::Skipped(format!(
            "not rolled back: the registrar did not reject the new password ({})",
            checks.current.outcome.name()
        ));
    }
    match previous {
        None => Rollback::Failed(Error::NotFound {
            provider: context.provider.kind().name(),
            message: format!("no previous password in {previous_entry} to set back"),
        }),
        Some(previous) => roll_back(previous, target, context).await,
    }
}

/// Rotates to `previous` through the protocol, then verifies it.
async fn roll_back(previous: SecretString, target: &SipTarget, context: &Context<'_>) -> Rollback {
    let kind = context.provider.kind();
    let description = kind.registration().takes_description.then(|| {
        format!(
            "Rolled back by siprot on {}",
            jiff::Timestamp::now().strftime("%Y-%m-%d")
        )
    });
    let input = RotationInput {
        source: PasswordSource::Given(previous.clone()),
        description,
        dry_run: false,
        attempts: Attempts::new(),
    };
    let rotated = rotation::rotate(
        context.provider,
        context.credential,
        context.name,
        context.store,
        context.state,
        input,
    )
    .await;
    match rotated {
        Ok(report) => Rollback::Done {
            report: Box::new(report),
            checks: Box::new(target.check(&previous, None).await),
        },
        Err(error) => Rollback::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(username: Option<&str>, rollback: bool) -> VerifyOptions {
        VerifyOptions {
            sip: SipOptions {
                registrar: "sip:sip.example.net".parse().unwrap(),
                username: username.map(str::to_owned),
                domain: None,
                timeout: Duration::from_secs(1),
            },
            expect_rejected_previous: false,
            rollback,
            wait: Duration::ZERO,
        }
    }

    fn plan(provider: &str, options: VerifyOptions) -> Result<Plan> {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        let kind = ProviderKind::from_name(provider).unwrap();
        Plan::new(options, kind, &state, "siprot-test", "entry")
    }

    #[test]
    fn a_plan_is_refused_before_the_rotation_when_it_could_not_run() {
        let error = plan("telepath", options(Some("alice"), true)).unwrap_err();
        assert!(error.to_string().contains("--rollback-on-verify-failure"));
        // Exotel returns no username: one must be given.
        let error = plan("exotel", options(None, false)).unwrap_err();
        assert!(error.to_string().contains("no SIP username known"));
        let error = plan("exotel", options(Some("al ice"), false)).unwrap_err();
        assert!(matches!(error, Error::Usage(_)));
        // Vobiz returns one in its answer.
        let plan = plan("vobiz", options(None, true)).unwrap();
        assert!(plan.describe().ends_with("set the previous password back"));
    }

    fn checks(outcome: Outcome) -> Checks {
        Checks {
            current: crate::verification::tests::verification(outcome),
            previous: None,
            tries: 1,
        }
    }

    #[test]
    fn only_a_verified_password_is_exit_0_and_a_skipped_rollback_is_exit_10() {
        let verified = |checks, rollback| Verified {
            target: None,
            checks,
            rollback,
            warnings: Vec::new(),
        };
        let accepted = Ok(checks(Outcome::Accepted { bindings: 0 }));
        assert_eq!(verified(accepted, None).exit_code(), exit::SUCCESS);
        let rejected = || Ok(checks(Outcome::Rejected));
        assert_eq!(verified(rejected(), None).exit_code(), exit::NOT_VERIFIED);
        let skipped = Some(Rollback::Skipped("why".into()));
        assert_eq!(
            verified(rejected(), skipped).exit_code(),
            exit::NOT_VERIFIED
        );
        let failed = Some(Rollback::Failed(Error::Usage("x".into())));
        assert_eq!(verified(rejected(), failed).exit_code(), exit::NOT_VERIFIED);
        let not_started = verified(Err("no password".into()), None);
        assert_eq!(not_started.exit_code(), exit::NOT_VERIFIED);
    }
}
