//! The `--verify` step of `rotate`: after the new password is stored, prove it with a SIP
//! REGISTER; when the registrar rejects it and `--rollback-on-verify-failure` was given
//! (client-set providers), set the `#previous` password back through the same rotation
//! protocol. Nothing is ever rolled back silently, and an unverified password stays
//! stored: the keyring always holds what the provider has.

use secrecy::SecretString;
use serde::Serialize;

use crate::cli::RotateArgs;
use crate::commands::verify::{self, Checks, SipTarget, VerificationJson};
use crate::error::{Error, Result, exit};
use crate::http::Attempts;
use crate::providers::{self, CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::rotation::{self, PasswordSource, RotationInput, RotationReport};
use crate::sip::{Outcome, Registrar};
use crate::state::StateDir;
use crate::store::{Keyring, Slot};

/// What `--verify` needs, settled before anything is sent.
#[derive(Debug)]
pub(crate) struct Plan {
    registrar: Registrar,
    /// `--username`, or the one the audit log knows; else the rotation's answer.
    username: Option<String>,
    rollback: bool,
    expect_rejected_previous: bool,
}

impl Plan {
    /// Checks the `--verify` options against the provider; `None` without `--verify`.
    pub(crate) fn new(
        args: &RotateArgs,
        kind: ProviderKind,
        state: &StateDir,
        service: &str,
        entry: &str,
    ) -> Result<Option<Self>> {
        let Some(registrar) = args.verify.clone() else {
            if args.sip.username.is_some()
                || args.sip.domain.is_some()
                || args.expect_rejected_previous
                || args.rollback_on_verify_failure
            {
                return Err(Error::Usage(
                    "--username, --domain, --expect-rejected-previous and \
                     --rollback-on-verify-failure go with --verify"
                        .into(),
                ));
            }
            return Ok(None);
        };
        if args.rollback_on_verify_failure && kind.origin() == PasswordOrigin::ServerGenerated {
            return Err(Error::Usage(format!(
                "{kind} generates passwords on its server and cannot be given the previous one \
                 back: --rollback-on-verify-failure is for {}",
                providers::names_where(|r| r.origin == PasswordOrigin::ClientSupplied)
            )));
        }
        let username = verify::known_username(&args.sip, state, service, entry);
        if username.is_none() && !kind.registration().returns_sip_username {
            return Err(verify::no_username(kind, entry));
        }
        // The checks the target makes later, now, before anything changes.
        if let Some(username) = &username {
            verify::validate_sip_token("username", username)?;
        }
        if let Some(domain) = &args.sip.domain {
            verify::validate_sip_token("domain", domain)?;
        }
        Ok(Some(Self {
            registrar,
            username,
            rollback: args.rollback_on_verify_failure,
            expect_rejected_previous: args.expect_rejected_previous,
        }))
    }

    /// The step a dry run would take.
    pub(crate) fn describe(&self) -> String {
        format!(
            "verify the new password with a SIP REGISTER to {}{}",
            self.registrar,
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
pub(crate) struct Verified {
    target: Option<SipTarget>,
    /// `Err`: verification could not even start (e.g. no username in the answer).
    checks: std::result::Result<Checks, String>,
    rollback: Option<Rollback>,
}

#[derive(Debug)]
enum Rollback {
    /// The previous password is current again, at the provider and in the keyring.
    Done {
        report: Box<RotationReport>,
        checks: Box<Checks>,
    },
    Failed(Error),
    /// Asked for, but the verdict gave no reason to (the registrar did not reject).
    Skipped(String),
}

/// Everything the verify step needs from the rotation around it.
pub(crate) struct Context<'a> {
    pub args: &'a RotateArgs,
    pub provider: &'a dyn Provider,
    pub credential: &'a CredentialRef,
    pub keyring: &'a Keyring,
    pub state: &'a StateDir,
}

/// Verifies the password `report` stored, and rolls back if asked and rejected.
pub(crate) async fn after_rotation(
    plan: Plan,
    report: &RotationReport,
    context: &Context<'_>,
) -> Verified {
    let kind = report.provider;
    let target = SipTarget::new(
        plan.registrar,
        plan.username.or_else(|| report.username.clone()),
        &context.args.sip,
        kind,
        &report.entry,
        context.args.verify_timeout,
    );
    let target = match target {
        Ok(target) => target,
        Err(error) => {
            return Verified {
                target: None,
                checks: Err(error.to_string()),
                rollback: None,
            };
        }
    };
    let Some(password) = &report.password else {
        return Verified {
            target: Some(target),
            checks: Err("the rotation returned no password to verify".into()),
            rollback: None,
        };
    };
    let previous_entry = format!("{}{}", report.entry, Slot::Previous.suffix());
    let needs_previous = plan.expect_rejected_previous || plan.rollback;
    let previous = if needs_previous {
        context.keyring.get(&previous_entry).await
    } else {
        Ok(None)
    };
    let previous = match previous {
        Ok(previous) => previous,
        Err(error) => {
            return Verified {
                target: Some(target),
                checks: Err(format!("cannot read '{previous_entry}': {error}")),
                rollback: None,
            };
        }
    };
    let expected_rejected = previous.as_ref().filter(|_| plan.expect_rejected_previous);
    let checks = target.check(password, expected_rejected).await;
    let rollback = if checks.verified() || !plan.rollback {
        None
    } else if checks.current.outcome != Outcome::Rejected {
        Some(Rollback::Skipped(format!(
            "not rolled back: the registrar did not reject the new password ({})",
            checks.current.outcome.name()
        )))
    } else {
        Some(match previous {
            None => Rollback::Failed(Error::NotFound {
                provider: kind.name(),
                message: format!("no previous password in '{previous_entry}' to set back"),
            }),
            Some(previous) => roll_back(previous, &target, context).await,
        })
    };
    Verified {
        target: Some(target),
        checks: Ok(checks),
        rollback,
    }
}

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
        context.keyring,
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

impl Verified {
    /// 0 when verified; 9 when a rollback was interrupted and needs `siprot recover`;
    /// otherwise 10 (rotated and stored, not verified).
    pub(crate) fn exit_code(&self) -> u8 {
        match (&self.checks, &self.rollback) {
            (Ok(checks), _) if checks.verified() => exit::SUCCESS,
            (_, Some(Rollback::Failed(error))) if error.exit_code() == exit::UNCONFIRMED => {
                exit::UNCONFIRMED
            }
            _ => exit::NOT_VERIFIED,
        }
    }

    pub(crate) fn json(&self) -> VerifiedJson<'_> {
        let verification = match (&self.target, &self.checks) {
            (Some(target), Ok(checks)) => Some(checks.json(target)),
            _ => None,
        };
        VerifiedJson {
            verified: self.exit_code() == exit::SUCCESS,
            verification,
            problem: self.checks.as_ref().err().map(String::as_str),
            rollback: self.rollback.as_ref().map(|rollback| match rollback {
                Rollback::Done { report, checks } => RollbackJson {
                    status: "rolled-back",
                    message: None,
                    attempts: Some(report.attempts),
                    verification: self.target.as_ref().map(|t| checks.json(t)),
                },
                Rollback::Failed(error) => RollbackJson {
                    status: "failed",
                    message: Some(error.to_string()),
                    attempts: None,
                    verification: None,
                },
                Rollback::Skipped(why) => RollbackJson {
                    status: "not-rolled-back",
                    message: Some(why.clone()),
                    attempts: None,
                    verification: None,
                },
            }),
        }
    }

    /// The lines after the rotation's own.
    pub(crate) fn human_lines(&self, report: &RotationReport) -> Vec<String> {
        let previous_entry = format!("{}{}", report.entry, Slot::Previous.suffix());
        let credential = report.credential.display();
        let mut lines = match (&self.target, &self.checks) {
            (Some(target), Ok(checks)) => checks.human_lines(target, &credential, report.provider),
            (_, Err(problem)) => vec![format!("not verified: {problem}")],
            (None, Ok(_)) => Vec::new(),
        };
        if self.exit_code() == exit::SUCCESS {
            return lines;
        }
        match &self.rollback {
            None | Some(Rollback::Skipped(_)) => {
                if let Some(Rollback::Skipped(why)) = &self.rollback {
                    lines.push(why.clone());
                }
                lines.push(format!(
                    "NOT VERIFIED: the new password stays in the keyring as current (entry '{}'); \
                     the one before is in '{previous_entry}'",
                    report.entry
                ));
            }
            Some(Rollback::Done {
                report: rollback,
                checks,
            }) => {
                lines.extend(rollback.warnings.iter().map(|w| format!("warning: {w}")));
                lines.push(format!(
                    "rolled back: {} has the previous password again and the keyring holds it \
                     as current; the unverified one is now in '{previous_entry}'",
                    report.provider
                ));
                if let Some(target) = &self.target {
                    lines.extend(
                        checks
                            .human_lines(target, &credential, report.provider)
                            .into_iter()
                            .map(|line| format!("after the rollback, {line}")),
                    );
                }
            }
            Some(Rollback::Failed(error)) => {
                lines.push(format!("rollback failed: {error}"));
                lines.push(format!(
                    "the new, unverified password stays in the keyring as current (entry '{}')",
                    report.entry
                ));
            }
        }
        lines
    }

    /// The one error line on standard error when not verified.
    pub(crate) fn summary_error(&self, report: &RotationReport) -> String {
        let registrar = self
            .target
            .as_ref()
            .map(|t| t.registrar().to_string())
            .unwrap_or_default();
        let what = match &self.checks {
            Ok(checks) => checks.summary_error_reason(),
            Err(problem) => problem.clone(),
        };
        let rollback = match &self.rollback {
            Some(Rollback::Done { .. }) => "; rolled back to the previous password",
            Some(Rollback::Failed(_)) => "; the rollback failed",
            _ => "",
        };
        format!(
            "rotated {} and stored the new password, but it is not verified at {registrar}: \
             {what}{rollback}",
            report.entry
        )
    }
}

/// The `--verify` part of `rotate --json`.
#[derive(Debug, Serialize)]
pub(crate) struct VerifiedJson<'a> {
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback: Option<RollbackJson<'a>>,
}

#[derive(Debug, Serialize)]
struct RollbackJson<'a> {
    /// `rolled-back`, `failed` or `not-rolled-back`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// HTTP requests the rollback sent to the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// The previous password's verification after it was set back.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationJson<'a>>,
}
