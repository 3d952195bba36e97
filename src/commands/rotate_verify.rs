//! The `--verify` step of `rotate`, as the command sees it: the `--verify` options turned
//! into a [`crate::rollback::Plan`] (checked before anything is sent), and what
//! [`crate::rollback::after_rotation`] found, rendered as lines and as the fields of
//! `rotate --json`; for a fleet, the `--verify` options checked (`check_fleet`) and
//! each entry's plan from its inventory keys (`fleet_plan`). Verifying and rolling back
//! are [`crate::rollback`]'s.

use serde::Serialize;

use crate::cli::RotateArgs;
use crate::commands::verify::{self, VerificationJson};
use crate::error::{Error, Result, exit};
use crate::inventory::InventoryEntry;
use crate::providers::ProviderKind;
use crate::rollback::{Plan, Rollback, Verified, VerifyOptions};
use crate::rotation::RotationReport;
use crate::state::StateDir;
use crate::store::{EntryName, Slot};
use crate::verification::SipOptions;

/// Checks the `--verify` options against the provider; `None` without `--verify`.
pub(crate) fn plan(
    args: &RotateArgs,
    kind: ProviderKind,
    state: &StateDir,
    service: &str,
    entry: &str,
) -> Result<Option<Plan>> {
    let Some(registrar) = args.verify.clone() else {
        refuse_options_without_verify(args)?;
        return Ok(None);
    };
    let Some(registrar) = registrar else {
        return Err(Error::Usage(
            "--verify needs the registrar's URI for one credential: --verify \
             sip:HOST[:PORT][;transport=udp|tcp] (--verify alone is for --inventory, whose \
             entries name their registrar)"
                .into(),
        ));
    };
    let options = VerifyOptions {
        sip: SipOptions {
            registrar,
            username: args.sip.username.clone(),
            domain: args.sip.domain.clone(),
            timeout: args.verify_timeout,
        },
        expect_rejected_previous: args.expect_rejected_previous,
        rollback: args.rollback_on_verify_failure,
        wait: args.verify_wait,
    };
    Plan::new(options, kind, state, service, entry).map(Some)
}

/// The `--verify` options are refused without `--verify`.
fn refuse_options_without_verify(args: &RotateArgs) -> Result<()> {
    if args.sip.username.is_some()
        || args.sip.domain.is_some()
        || args.expect_rejected_previous
        || args.rollback_on_verify_failure
        || !args.verify_wait.is_zero()
    {
        return Err(Error::Usage(
            "--username, --domain, --expect-rejected-previous, --verify-wait and \
             --rollback-on-verify-failure go with --verify"
                .into(),
        ));
    }
    Ok(())
}

/// Checks the `--verify` options of a fleet (`rotate --inventory`) before anything is
/// sent: `--verify` takes no URI there (each entry names its registrar), and the username,
/// domain and rollback are not fleet options. Whether the fleet verifies.
pub(crate) fn check_fleet(args: &RotateArgs) -> Result<bool> {
    match &args.verify {
        None => refuse_options_without_verify(args).map(|()| false),
        Some(Some(_)) => Err(Error::Usage(
            "with --inventory, --verify takes no URI: each entry names its registrar \
             (`registrar = \"sip:...\"` in the entry, or before the first table for all)"
                .into(),
        )),
        Some(None)
            if args.sip.username.is_some()
                || args.sip.domain.is_some()
                || args.rollback_on_verify_failure =>
        {
            Err(Error::Usage(
                "with --inventory, give `sip_username` and `domain` in the inventory; \
                 --rollback-on-verify-failure is for one credential"
                    .into(),
            ))
        }
        Some(None) => Ok(true),
    }
}

/// The verify step of one fleet entry that names a registrar; `None` when it names none.
pub(crate) fn fleet_plan(
    args: &RotateArgs,
    entry: &InventoryEntry,
    name: &EntryName,
    state: &StateDir,
    service: &str,
) -> Result<Option<Plan>> {
    let Some(registrar) = entry.registrar.clone() else {
        return Ok(None);
    };
    let options = VerifyOptions {
        sip: SipOptions {
            registrar,
            username: entry.sip_username.clone(),
            domain: entry.domain.clone(),
            timeout: args.verify_timeout,
        },
        expect_rejected_previous: args.expect_rejected_previous,
        rollback: false,
        wait: args.verify_wait,
    };
    Plan::new(options, entry.provider, state, service, name.current()).map(Some)
}

/// The `--verify` part of `rotate --json`.
pub(crate) fn json(verified: &Verified) -> VerifiedJson<'_> {
    let verification = match (&verified.target, &verified.checks) {
        (Some(target), Ok(checks)) => Some(verify::json(checks, target)),
        _ => None,
    };
    VerifiedJson {
        verified: verified.exit_code() == exit::SUCCESS,
        verification,
        problem: verified.checks.as_ref().err().map(String::as_str),
        rollback: verified.rollback.as_ref().map(|rollback| match rollback {
            Rollback::Done { report, checks } => RollbackJson {
                status: "rolled-back",
                message: None,
                attempts: Some(report.attempts),
                verification: verified.target.as_ref().map(|t| verify::json(checks, t)),
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
pub(crate) fn human_lines(verified: &Verified, report: &RotationReport) -> Vec<String> {
    let previous_entry = report.entry.slot(Slot::Previous);
    let credential = report.credential.display();
    let mut lines = match (&verified.target, &verified.checks) {
        (Some(target), Ok(checks)) => {
            verify::human_lines(checks, target, &credential, report.provider)
        }
        (_, Err(problem)) => vec![format!("not verified: {problem}")],
        (None, Ok(_)) => Vec::new(),
    };
    if verified.exit_code() == exit::SUCCESS {
        return lines;
    }
    match &verified.rollback {
        None | Some(Rollback::Skipped(_)) => {
            if let Some(Rollback::Skipped(why)) = &verified.rollback {
                lines.push(why.clone());
            }
            lines.push(format!(
                "NOT VERIFIED: the new password stays in the {} as current (entry '{}'); \
                 the one before is in '{previous_entry}'",
                report.store.noun(),
                report.entry
            ));
        }
        Some(Rollback::Done {
            report: rollback,
            checks,
        }) => {
            lines.extend(rollback.warnings.iter().map(|w| format!("warning: {w}")));
            lines.push(format!(
                "rolled back: {} has the previous password again and the {} holds it \
                 as current; the unverified one is now in '{previous_entry}'",
                report.provider,
                report.store.noun()
            ));
            if let Some(target) = &verified.target {
                lines.extend(
                    verify::human_lines(checks, target, &credential, report.provider)
                        .into_iter()
                        .map(|line| format!("after the rollback, {line}")),
                );
            }
        }
        Some(Rollback::Failed(error)) => {
            lines.push(format!("rollback failed: {error}"));
            lines.push(format!(
                "the new, unverified password stays in the {} as current (entry '{}')",
                report.store.noun(),
                report.entry
            ));
        }
    }
    lines
}

/// The one error line on standard error when not verified.
pub(crate) fn summary_error(verified: &Verified, report: &RotationReport) -> String {
    let registrar = verified
        .target
        .as_ref()
        .map(|t| t.registrar().to_string())
        .unwrap_or_default();
    let what = match &verified.checks {
        Ok(checks) => checks.failure_reason(),
        Err(problem) => problem.clone(),
    };
    let rollback = match &verified.rollback {
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
