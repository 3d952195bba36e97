//! `siprot exec`: runs the post-rotation hook ([`crate::hook`]) again, alone, with the
//! stored current password; and the pieces `rotate` shares with it: which hook, how to
//! render its result, the exact `siprot exec` command that reruns it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::cli::{ExecArgs, HookArgs};
use crate::commands::{block_on, stored_secret};
use crate::error::{Error, ExitCode, Result, exit};
use crate::hook::{self, HookContext, HookRun, HookSpec};
use crate::inventory::Inventory;
use crate::output;
use crate::profiles::ProfileName;
use crate::providers::{CredentialRef, ProviderKind};
use crate::settings::Accounts;
use crate::state::StateDir;
use crate::store::{EntryName, Slot, StoreKind};

/// Where a hook's command came from, to name it in the command that reruns it.
#[derive(Debug, Clone)]
pub(crate) enum HookSource {
    /// `--exec CMD`.
    CommandLine,
    /// An inventory's `exec` (the entry's or the file's).
    Inventory(PathBuf),
}

/// `--exec`, checked: not blank, no NUL, and a platform that runs hooks.
pub(crate) fn command_line_hook(args: &HookArgs) -> Result<Option<HookSpec>> {
    let Some(command) = &args.exec else {
        return Ok(None);
    };
    if command.trim().is_empty() || command.contains('\0') {
        return Err(Error::Usage(
            "--exec needs a command (run through sh -c)".into(),
        ));
    }
    hook::check_supported()?;
    Ok(Some(HookSpec {
        command: command.clone(),
        timeout: args.exec_timeout,
    }))
}

/// `siprot exec --provider P ID [--device D] [--store vault] --exec CMD` (or
/// `--inventory PATH`): the exact command that runs `credential`'s hook again.
pub(crate) fn rerun_command(
    kind: ProviderKind,
    credential: &CredentialRef,
    store: StoreKind,
    spec: &HookSpec,
    source: &HookSource,
) -> String {
    let mut words = vec![
        "siprot exec --provider".to_owned(),
        kind.name().to_owned(),
        hook::shell_quote(credential.id()),
    ];
    if let Some((flag, value)) = credential.part_args() {
        words.extend([flag.to_owned(), hook::shell_quote(value)]);
    }
    if store != StoreKind::Keyring {
        words.extend(["--store".to_owned(), store.name().to_owned()]);
    }
    match source {
        HookSource::CommandLine => {
            // The account (and so the entry name) of the profile the rotation used; with
            // --inventory the entry names its own.
            if let Ok(profile) = ProfileName::chosen(None)
                && profile.is_chosen()
            {
                words.extend(["--profile".to_owned(), profile.as_str().to_owned()]);
            }
            words.extend(["--exec".to_owned(), hook::shell_quote(&spec.command)]);
        }
        HookSource::Inventory(path) => {
            words.extend([
                "--inventory".to_owned(),
                hook::shell_quote(&path.display().to_string()),
            ]);
        }
    }
    if spec.timeout != hook::DEFAULT_TIMEOUT {
        words.extend([
            "--exec-timeout".to_owned(),
            format!("{}", spec.timeout.as_secs_f64()),
        ]);
    }
    words.join(" ")
}

/// The error line of a failed hook after a rotation stored its password.
pub(crate) fn stored_but_failed(
    run: &HookRun,
    timeout: Duration,
    kind: ProviderKind,
    credential: &CredentialRef,
    store: StoreKind,
    spec: &HookSpec,
    source: &HookSource,
) -> String {
    format!(
        "stored, but the hook failed ({}): run it again with `{}`",
        run.describe(timeout),
        rerun_command(kind, credential, store, spec, source)
    )
}

pub fn run(args: ExecArgs) -> Result<ExitCode> {
    let (kind, credential) = args.credential.resolve()?;
    let inventory = args.inventory.as_deref().map(Inventory::load).transpose()?;
    let (spec, source) = match (command_line_hook(&args.hook)?, &inventory) {
        (Some(spec), _) => (spec, HookSource::CommandLine),
        (None, Some(inventory)) => {
            let path = args.inventory.clone().unwrap_or_default();
            (
                inventory_hook(inventory, kind, &credential, &path, &args.hook)?,
                HookSource::Inventory(path),
            )
        }
        (None, None) => {
            return Err(Error::Usage(
                "siprot exec needs the hook: --exec CMD, or --inventory PATH whose entry (or \
                 file) has an `exec`"
                    .into(),
            ));
        }
    };
    let state = StateDir::locate()?;
    // An inventory entry's own profile names its account, as in the fleet's rotation.
    let profile = inventory
        .as_ref()
        .and_then(|inventory| inventory.find(kind, credential.id(), credential.device()))
        .and_then(|entry| entry.profile.clone());
    let entry = Accounts::load(None)?.entry_name(kind, &credential, profile.as_ref())?;
    let (run, store) = block_on(async {
        let store = args.store.open(inventory.as_ref()).await?;
        let password = stored_secret(store.as_ref(), kind, &entry, Slot::Current).await?;
        let username = state
            .histories(store.service())
            .remove(entry.current())
            .and_then(|h| h.username);
        let context = HookContext {
            provider: kind.name(),
            credential: credential.id(),
            device: credential.device(),
            username: username.as_deref(),
            entry: entry.current(),
            store: store.kind(),
        };
        let run = hook::run(&spec, &context, &password).await;
        run.audit(&state, store.service(), &context);
        Ok((run, store.kind()))
    })?;
    render(
        &args,
        kind,
        &credential,
        &entry,
        store,
        &spec,
        &source,
        &run,
    )
}

/// The entry's (else the file's) `exec` of `inventory`.
fn inventory_hook(
    inventory: &Inventory,
    kind: ProviderKind,
    credential: &CredentialRef,
    path: &Path,
    args: &HookArgs,
) -> Result<HookSpec> {
    let own = inventory
        .find(kind, credential.id(), credential.device())
        .and_then(|entry| entry.exec.as_deref());
    let Some(command) = own.or(inventory.exec.as_deref()) else {
        return Err(Error::Usage(format!(
            "{} has no `exec` for {} {} (nor one for the whole file): give --exec CMD",
            path.display(),
            kind,
            credential.display()
        )));
    };
    hook::check_supported()?;
    Ok(HookSpec {
        command: command.to_owned(),
        timeout: args.exec_timeout,
    })
}

#[derive(Serialize)]
struct ExecJson<'a> {
    provider: &'static str,
    credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    store: &'static str,
    keyring_entry: &'a EntryName,
    hook: &'a HookRun,
    exit_code: ExitCode,
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &ExecArgs,
    kind: ProviderKind,
    credential: &CredentialRef,
    entry: &EntryName,
    store: StoreKind,
    spec: &HookSpec,
    source: &HookSource,
    run: &HookRun,
) -> Result<ExitCode> {
    let code = run.exit_code();
    if args.json {
        output::json(&ExecJson {
            provider: kind.name(),
            credential: credential.id(),
            device: credential.device(),
            store: store.name(),
            keyring_entry: entry,
            hook: run,
            exit_code: code,
        })?;
    } else {
        output::line(&format!(
            "ran the hook of {} credential {} with the stored current password",
            kind,
            credential.display()
        ))?;
        for line in run.human_lines(spec.timeout) {
            output::line(&line)?;
        }
    }
    if code != exit::SUCCESS {
        output::error_line(&format!(
            "the hook failed ({}): run it again with `{}`",
            run.describe(spec.timeout),
            rerun_command(kind, credential, store, spec, source)
        ));
    }
    Ok(code)
}
