//! `siprot verify`: registers the stored password with a SIP registrar (a binding query)
//! and reports whether it was accepted; with `--expect-rejected-previous`, also that the
//! `#previous` password no longer is.

use serde::Serialize;

use crate::cli::VerifyArgs;
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
    let username = match &args.username {
        Some(username) => username.clone(),
        None => state
            .histories(&service)
            .remove(name.current())
            .and_then(|history| history.username)
            .ok_or_else(|| no_username(kind, name.current()))?,
    };
    validate_sip_token("username", &username)?;
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| args.registrar.host().to_owned());
    validate_sip_token("domain", &domain)?;

    let mut report = block_on(async {
        let keyring = Keyring::open(&service, args.keyring_timeout)
            .await
            .map_err(Error::keyring_unavailable)?;
        let current = stored_secret(&keyring, kind, &name.slot(Slot::Current)).await?;
        let previous = if args.expect_rejected_previous {
            Some(stored_secret(&keyring, kind, &name.slot(Slot::Previous)).await?)
        } else {
            None
        };
        let credentials = |password| Credentials {
            username: &username,
            domain: &domain,
            password,
        };
        let current = sip::verify(&args.registrar, &credentials(&current), args.timeout).await;
        // The previous password only means something once the current one works.
        let previous = match (&previous, &current.outcome) {
            (Some(previous), Outcome::Accepted { .. }) => {
                Some(sip::verify(&args.registrar, &credentials(previous), args.timeout).await)
            }
            _ => None,
        };
        Ok::<_, Error>(VerifyReport {
            provider: kind.name(),
            credential: credential.display(),
            keyring_entry: name.current().to_owned(),
            registrar: args.registrar.to_string(),
            transport: args.registrar.transport().name(),
            username: username.clone(),
            domain: domain.clone(),
            current: Checked::from(&current),
            previous: previous.as_ref().map(Checked::from),
            exit_code: exit::SUCCESS,
        })
    })?;
    report.exit_code = report.exit_code();
    if args.json {
        output::json(&report)?;
    } else {
        for line in report.human_lines(&args.registrar) {
            output::line(&line)?;
        }
    }
    if report.exit_code != exit::SUCCESS {
        output::error_line(&report.summary_error());
    }
    Ok(report.exit_code)
}

fn no_username(kind: ProviderKind, entry: &str) -> Error {
    Error::Usage(format!(
        "no SIP username known for '{entry}': pass --username ({kind} returns none, or siprot \
         has not rotated this credential yet)"
    ))
}

/// A username or domain goes into SIP URIs and header values as is: refuse anything that
/// would change the message's structure.
fn validate_sip_token(what: &str, value: &str) -> Result<()> {
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

#[derive(Debug, Serialize)]
struct VerifyReport {
    provider: &'static str,
    credential: String,
    keyring_entry: String,
    registrar: String,
    transport: &'static str,
    username: String,
    domain: String,
    #[serde(flatten)]
    current: Checked,
    /// With `--expect-rejected-previous`, once the current password was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<Checked>,
    exit_code: u8,
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
    #[serde(skip)]
    outcome: Outcome,
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
            outcome: v.outcome.clone(),
        }
    }
}

impl Checked {
    fn answer(&self) -> String {
        match (&self.status, &self.reason) {
            (Some(status), Some(reason)) => format!("{status} {reason}"),
            _ => "no answer".to_owned(),
        }
    }
}

impl VerifyReport {
    fn exit_code(&self) -> u8 {
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

    fn human_lines(&self, registrar: &Registrar) -> Vec<String> {
        let who = format!(
            "{} ({}, SIP user {})",
            self.credential, self.provider, self.username
        );
        let c = &self.current;
        let mut lines = vec![match &c.outcome {
            Outcome::Accepted { bindings } => format!(
                "ok: {registrar} accepted the current password of {who}: {}, {}, {bindings} \
                 binding(s) left as they were",
                c.answer(),
                c.algorithm.as_deref().unwrap_or("digest"),
            ),
            Outcome::Rejected => format!(
                "rejected: {registrar} refused the current password of {who}: {}",
                c.answer()
            ),
            Outcome::NotChallenged => format!(
                "not verified: {registrar} accepted {who} without asking for a password ({})",
                c.answer()
            ),
            Outcome::Unreachable(problem) | Outcome::Failed(problem) => {
                format!("{}: {problem}", c.result)
            }
        }];
        if let Some(p) = &self.previous {
            lines.push(match &p.outcome {
                Outcome::Rejected => {
                    format!("ok: the previous password is rejected ({})", p.answer())
                }
                Outcome::Accepted { .. } => format!(
                    "not verified: the previous password is still accepted ({})",
                    p.answer()
                ),
                Outcome::Unreachable(problem) | Outcome::Failed(problem) => {
                    format!("previous password {}: {problem}", p.result)
                }
                Outcome::NotChallenged => format!(
                    "not verified: the previous password was not asked for ({})",
                    p.answer()
                ),
            });
        }
        lines
    }

    fn summary_error(&self) -> String {
        let previous_still_works = self
            .previous
            .as_ref()
            .is_some_and(|p| matches!(p.outcome, Outcome::Accepted { .. }));
        if previous_still_works {
            format!(
                "the previous password of {} still registers at {}",
                self.keyring_entry, self.registrar
            )
        } else {
            format!(
                "verification of {} at {} failed: {}",
                self.keyring_entry, self.registrar, self.current.result
            )
        }
    }
}
