//! `siprot verify`: registers the stored password with a SIP registrar (a binding query)
//! and reports whether it was accepted; with `--expect-rejected-previous`, also that the
//! `#previous` password no longer is; with `--wait`, asks again while the registrar
//! rejects the password. The outcome is appended to the audit log (for `status`). The
//! checks are [`crate::verification`]'s; this module reads the passwords and renders the
//! result, and `rotate --verify` renders its checks with the same `human_lines` and `json`.

use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::commands::{block_on, stored_secret};
use crate::error::{Error, ExitCode, Result, exit};
use crate::output;
use crate::providers::ProviderKind;
use crate::settings::Accounts;
use crate::sip::{Outcome, Verification};
use crate::state::StateDir;
use crate::store::Slot;
use crate::verification::{self, Checks, Recorded, SipOptions, SipTarget};

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    let (kind, credential) = args.credential.resolve()?;
    let name = Accounts::load(None)?.entry_name(kind, &credential, None)?;
    let state = StateDir::locate()?;
    let (checks, target) = block_on(async {
        let store = args.store.open(None).await?;
        let store = store.as_ref();
        let stored = store
            .read(&name, Slot::Current)
            .await
            .map_err(Error::keyring_unavailable)?;
        let known = stored.as_ref().and_then(|s| s.facts.username.clone());
        let options = SipOptions {
            registrar: args.registrar,
            username: args.sip.username.clone().or(known).or_else(|| {
                verification::known_username(None, &state, store.service(), name.current())
            }),
            domain: args.sip.domain,
            timeout: args.timeout,
        };
        let target = SipTarget::new(options, kind, name.current())?;
        let current = stored_secret(store, kind, &name, Slot::Current).await?;
        let previous = if args.expect_rejected_previous {
            Some(stored_secret(store, kind, &name, Slot::Previous).await?)
        } else {
            None
        };
        let checks = target
            .check_waiting(&current, previous.as_ref(), args.wait)
            .await;
        let recorded = verification::record(
            &state,
            Recorded {
                service: store.service(),
                kind,
                entry: name.current(),
                outcome: checks.verdict().audit_outcome(),
                exit_code: checks.exit_code(),
                registrar: Some(target.registrar()),
            },
        );
        if let Err(error) = recorded {
            output::warning(&format!(
                "the verification is not in the audit log: {error}"
            ));
        }
        Ok((checks, target))
    })?;
    let code = checks.exit_code();
    if args.json {
        output::json(&VerifyJson {
            provider: kind.name(),
            credential: credential.display(),
            keyring_entry: name.current(),
            verification: json(&checks, &target),
            exit_code: code,
        })?;
    } else {
        for line in human_lines(&checks, &target, &credential.display(), kind) {
            output::line(&line)?;
        }
    }
    if code != exit::SUCCESS {
        output::error_line(&format!(
            "verification of {} at {} failed: {}",
            name.current(),
            target.registrar(),
            checks.failure_reason()
        ));
    }
    Ok(code)
}

/// Where and as whom, and what the registrar said, for JSON.
pub(crate) fn json<'a>(checks: &'a Checks, target: &'a SipTarget) -> VerificationJson<'a> {
    VerificationJson {
        registrar: target.registrar().to_string(),
        transport: target.registrar().transport().name(),
        username: target.username(),
        domain: target.domain(),
        current: Checked::from(&checks.current),
        previous: checks.previous.as_ref().map(Checked::from),
        tries: checks.tries,
    }
}

/// One line for the current password and one for the previous, if it was tried.
pub(crate) fn human_lines(
    checks: &Checks,
    target: &SipTarget,
    credential: &str,
    kind: ProviderKind,
) -> Vec<String> {
    let registrar = target.registrar();
    let who = format!("{credential} ({kind}, SIP user {})", target.username());
    let c = &checks.current;
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
    if checks.tries > 1 {
        lines.push(format!(
            "asked {} times: the registrar rejected the first {} (waiting for it to learn \
             the password)",
            checks.tries,
            checks.tries - 1
        ));
    }
    if let Some(p) = &checks.previous {
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
    exit_code: ExitCode,
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
    /// How many times the registrar was asked (more than one with a wait).
    tries: u32,
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
