//! `siprot rotate`: checks the options against the provider, then runs the rotation
//! protocol, with `--exec` the hook ([`crate::hook`]) after it, with `--verify` the verify
//! step of [`crate::rollback`] after that (store, hook, verify; a failed hook skips the
//! verify step), and renders the report. With `--inventory` it hands over to [`fleet`].
//! On a terminal, a rotation whose new password the provider generates (it cannot be
//! undone: the old password stops working at once) is confirmed first
//! ([`input::confirm`]), unless `--yes` or `--dry-run`.

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::cli::RotateArgs;
use crate::commands::exec::{self, HookSource};
use crate::commands::rotate_verify::{self, VerifiedJson};
use crate::commands::{block_on, fail, fleet};
use crate::error::{Error, ExitCode, Result, exit};
use crate::hook::{self, HookRun, HookSpec, Hooked};
use crate::http::Attempts;
use crate::input;
use crate::interrupt;
use crate::output;
use crate::providers::{CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::rollback::{self, Verified};
use crate::rotation::{self, PasswordSource, RotationInput, RotationReport, RotationStatus};
use crate::state::StateDir;
use crate::store::{EntryName, Slot, StoreKind};

pub fn run(args: RotateArgs) -> Result<ExitCode> {
    if let Some(path) = args.inventory.clone() {
        return fleet::run(args, &path);
    }
    let (kind, credential) = one_credential(&args)?;
    // The keyring connects on its own thread while the HTTP client is built here.
    args.store.open_ahead(None);
    let (entry, provider) = args.net.connect_to(kind, &credential, &args.store)?;
    let service = args.store.service(None)?;
    let state = StateDir::locate()?;
    let plan = rotate_verify::plan(&args, kind, &state, &service, entry.current())?;
    let hook = exec::command_line_hook(&args.hook)?;
    let source = password_source(&args, kind)?;
    if kind.origin() == PasswordOrigin::ServerGenerated && !args.dry_run {
        input::confirm(
            &format!("rotate {kind} credential {}", credential.display()),
            &format!("{kind} generates the new password and the old one stops working at once"),
            args.yes,
        )?;
    }
    let verify_asked = plan.is_some();
    let attempts = Attempts::new();
    let input = RotationInput {
        source,
        description: args.description.clone(),
        dry_run: args.dry_run,
        attempts: attempts.clone(),
    };
    if !args.dry_run {
        interrupt::catch()?;
    }
    let rotation = Rotation {
        args: &args,
        provider: provider.as_ref(),
        credential: &credential,
        name: &entry,
        state: &state,
    };
    let result = block_on(rotation.run(input, plan, hook.as_ref()));
    let plan_skipped = verify_asked && interrupt::received().is_some();
    match result {
        Ok((report, hooked, verified)) => {
            let after = After {
                hooked: hooked.as_ref(),
                hook_skipped: hook.is_some()
                    && hooked.is_none()
                    && report.status != RotationStatus::DryRun,
                verify_skipped: verify_asked && hooked.as_ref().is_some_and(|h| !h.run.ok()),
            };
            render(&args, &report, &after, verified.as_ref(), plan_skipped)
        }
        Err(error) => {
            let error = interrupt::wrap(error);
            Ok(fail(&error, args.json, Some(attempts.count())))
        }
    }
}

/// The provider and credential of a single rotation, once the options fit them.
fn one_credential(args: &RotateArgs) -> Result<(ProviderKind, CredentialRef)> {
    if !args.tag.is_empty()
        || args.if_older_than.is_some()
        || args.concurrency.is_some()
        || args.allow_empty
    {
        return Err(Error::Usage(
            "--tag, --if-older-than, --concurrency and --allow-empty select and pace a fleet: \
             they need --inventory"
                .into(),
        ));
    }
    let (Some(kind), Some(id)) = (args.provider, args.id.as_deref()) else {
        return Err(Error::Usage(
            "rotate needs --provider and an ID, or --inventory".into(),
        ));
    };
    let credential = CredentialRef::new(kind, id, &args.part.pairs())?;
    if kind.origin() == PasswordOrigin::ServerGenerated {
        if args.password_stdin {
            return Err(Error::Usage(format!(
                "{kind} generates passwords on its server: --password-stdin is not possible"
            )));
        }
        if args.length.is_some() {
            return Err(Error::Usage(format!(
                "{kind} generates passwords on its server: --length is not possible"
            )));
        }
    }
    if args.description.is_some() && !kind.registration().takes_description {
        return Err(Error::Usage(format!(
            "{kind} keeps no description: drop --description"
        )));
    }
    Ok((kind, credential))
}

/// The password from standard input, checked against the policy first, or one to generate.
fn password_source(args: &RotateArgs, kind: ProviderKind) -> Result<PasswordSource> {
    if !args.password_stdin {
        return Ok(PasswordSource::Generate {
            length: args.length,
        });
    }
    let password = input::read_password("New SIP password: ")?;
    let report = kind.policy().check(&password);
    if !report.ok {
        let failed: Vec<_> = report
            .rules
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.message.as_str())
            .collect();
        return Err(Error::Policy(format!(
            "the password fails the {kind} policy: {}",
            failed.join("; ")
        )));
    }
    Ok(PasswordSource::Given(password))
}

/// One rotation's world, settled before anything is sent.
struct Rotation<'a> {
    args: &'a RotateArgs,
    provider: &'a dyn Provider,
    credential: &'a CredentialRef,
    name: &'a EntryName,
    state: &'a StateDir,
}

impl Rotation<'_> {
    /// Rotates, then, with `--exec`, runs the hook, then, with `--verify`, verifies (and
    /// maybe rolls back), unless this is a dry run, a signal came or the hook failed.
    async fn run(
        &self,
        input: RotationInput,
        plan: Option<rollback::Plan>,
        hook: Option<&HookSpec>,
    ) -> Result<(RotationReport, Option<Hooked>, Option<Verified>)> {
        let store = self.args.store.open(None).await?;
        let store = store.as_ref();
        let mut report = rotation::rotate(
            self.provider,
            self.credential,
            self.name,
            store,
            self.state,
            input,
        )
        .await?;
        let hooked = match hook {
            Some(spec) => hook::after_rotation(spec.clone(), &mut report, self.state).await,
            None => None,
        };
        if hooked.as_ref().is_some_and(|h| !h.run.ok()) {
            // Store, hook, verify: the device did not get the password, so a
            // verification would only prove what the hook's failure already says.
            return Ok((report, hooked, None));
        }
        let verified = match plan {
            Some(plan) if report.status == RotationStatus::DryRun => {
                report.plan.push(plan.describe());
                None
            }
            // A signal came: the rotation is at its safe point; start nothing new.
            Some(_) if interrupt::received().is_some() => None,
            Some(plan) => {
                let context = rollback::Context {
                    provider: self.provider,
                    credential: self.credential,
                    name: self.name,
                    store,
                    state: self.state,
                };
                Some(rollback::after_rotation(plan, &report, &context).await)
            }
            None => None,
        };
        Ok((report, hooked, verified))
    }
}

/// What happened after the rotation besides verification.
struct After<'a> {
    hooked: Option<&'a Hooked>,
    /// `--exec` was given but the hook was not started (a signal came).
    hook_skipped: bool,
    /// `--verify` was given but not run because the hook failed.
    verify_skipped: bool,
}

/// Prints the report, the verify step's result and the error line, and returns the exit
/// code.
fn render(
    args: &RotateArgs,
    report: &RotationReport,
    after: &After<'_>,
    verified: Option<&Verified>,
    plan_skipped: bool,
) -> Result<ExitCode> {
    for warning in &report.warnings {
        output::warning(warning);
    }
    for warning in verified.iter().flat_map(|v| &v.warnings) {
        output::warning(warning);
    }
    let hook_failed = after.hooked.filter(|h| !h.run.ok());
    let code = interrupt::final_code(match hook_failed {
        Some(_) => exit::HOOK_FAILED,
        None => verified.map_or(exit::SUCCESS, Verified::exit_code),
    });
    if args.json {
        let mut json = RotateJson::new(report, args.show_password);
        json.hook = after.hooked.map(|h| &h.run);
        if after.verify_skipped {
            json.verify_skipped = Some("the hook failed");
        }
        json.verify = verified.map(rotate_verify::json);
        json.exit_code = code;
        json.interrupted_by = interrupt::received().map(|s| s.name());
        output::json(&json)?;
    } else {
        print_human(report, args.show_password)?;
        if let Some(hooked) = after.hooked {
            for line in hooked.run.human_lines(hooked.spec.timeout) {
                output::line(&line)?;
            }
        }
        if after.verify_skipped {
            output::line("--verify was not run: the hook failed (store, hook, verify)")?;
        }
        for line in verified
            .iter()
            .flat_map(|v| rotate_verify::human_lines(v, report))
        {
            output::line(&line)?;
        }
    }
    error_lines(
        args,
        report,
        after,
        verified.filter(|_| code != exit::SUCCESS),
        plan_skipped,
    );
    Ok(code)
}

/// The error lines on standard error: a signal, a failed hook, or a failed verification.
fn error_lines(
    args: &RotateArgs,
    report: &RotationReport,
    after: &After<'_>,
    not_verified: Option<&Verified>,
    plan_skipped: bool,
) {
    if let Some(signal) = interrupt::received() {
        output::error_line(&format!(
            "interrupted by {signal}: the rotation in flight was finished first and the new \
             password is stored in {}{}",
            report.current_in,
            if plan_skipped {
                "; --verify was not run"
            } else {
                ""
            }
        ));
        if let (true, Some(command)) = (after.hook_skipped, &args.hook.exec) {
            let spec = HookSpec {
                command: command.clone(),
                timeout: args.hook.exec_timeout,
            };
            output::error_line(&format!(
                "the hook was not run: run it with `{}`",
                exec::rerun_command(
                    report.provider,
                    &report.credential,
                    report.store,
                    &spec,
                    &HookSource::CommandLine,
                )
            ));
        }
    } else if let Some(hooked) = after.hooked.filter(|h| !h.run.ok()) {
        output::error_line(&exec::stored_but_failed(
            &hooked.run,
            hooked.spec.timeout,
            report.provider,
            &report.credential,
            report.store,
            &hooked.spec,
            &HookSource::CommandLine,
        ));
    } else if let Some(verified) = not_verified {
        output::error_line(&rotate_verify::summary_error(verified, report));
    }
}

/// The JSON contract of `rotate --json`.
#[derive(Serialize)]
struct RotateJson<'a> {
    provider: &'a str,
    credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    username: Option<&'a str>,
    rotated_at: Option<&'a str>,
    /// `keyring` or `vault`.
    store: &'static str,
    keyring_service: &'a str,
    keyring_entry: &'a EntryName,
    status: &'a str,
    request_id: Option<&'a str>,
    keyring_writes: u32,
    attempts: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    plan: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    /// With `--exec`: what the hook did (`exit_code`, `timed_out`, `output_tail`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    hook: Option<&'a HookRun>,
    /// With `--verify` when the hook failed: why verification was not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    verify_skipped: Option<&'static str>,
    /// With `--verify`: `verified`, `verification`, `problem`, `rollback`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    verify: Option<VerifiedJson<'a>>,
    /// `SIGINT`, `SIGTERM` or `SIGHUP` when one came during the rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted_by: Option<&'static str>,
    exit_code: ExitCode,
}

impl<'a> RotateJson<'a> {
    fn new(report: &'a RotationReport, show_password: bool) -> Self {
        Self {
            provider: report.provider.name(),
            credential: report.credential.id(),
            device: report.credential.device(),
            username: report.username.as_deref(),
            rotated_at: report.rotated_at.as_deref(),
            store: report.store.name(),
            keyring_service: &report.service,
            keyring_entry: &report.entry,
            status: report.status.as_str(),
            request_id: report.request_id.as_deref(),
            keyring_writes: report.keyring_writes,
            attempts: report.attempts,
            plan: &report.plan,
            password: report
                .password
                .as_ref()
                .filter(|_| show_password)
                .map(|p| p.expose_secret()),
            hook: None,
            verify_skipped: None,
            verify: None,
            interrupted_by: None,
            exit_code: exit::SUCCESS,
        }
    }
}

fn print_human(report: &RotationReport, show_password: bool) -> Result<()> {
    let who = format!(
        "{} credential {}",
        report.provider,
        report.credential.display()
    );
    if report.status == RotationStatus::DryRun {
        output::line(&format!(
            "dry run for {who}: configuration and keyring access OK, nothing was sent"
        ))?;
        output::line("would:")?;
        for (i, step) in report.plan.iter().enumerate() {
            output::line(&format!("  {}. {step}", i + 1))?;
        }
        return Ok(());
    }
    let verb = match report.status {
        RotationStatus::Resumed => "finished the earlier rotation of",
        _ => "rotated",
    };
    let username = report
        .username
        .as_deref()
        .map(|u| format!(" (SIP username {u})"))
        .unwrap_or_default();
    output::line(&format!("{verb} {who}{username}"))?;
    let keyring = report.store == StoreKind::Keyring;
    let previous = match (report.previous_kept, keyring) {
        (false, _) => String::new(),
        (true, true) => format!(
            "; the one before is in '{}'",
            report.entry.slot(Slot::Previous)
        ),
        (true, false) => format!("; the one before is in {}", report.previous_in),
    };
    if keyring {
        output::line(&format!(
            "new password stored in keyring service '{}', entry '{}'{previous}",
            report.service, report.entry
        ))?;
    } else {
        output::line(&format!(
            "new password stored in {}{previous}",
            report.current_in
        ))?;
    }
    if let Some(at) = &report.rotated_at {
        output::line(&format!("rotated at {at}"))?;
    }
    if show_password {
        if let Some(password) = &report.password {
            output::requested(&format!("password: {}", password.expose_secret()))?;
        }
    } else {
        output::line(&format!(
            "print it with: siprot secret get{} --provider {} {}{}",
            if keyring { "" } else { " --store vault" },
            report.provider,
            report.credential.id(),
            report
                .credential
                .part_args()
                .map(|(flag, value)| format!(" {flag} {value}"))
                .unwrap_or_default()
        ))?;
    }
    Ok(())
}
