//! `siprot recover`: finishes interrupted rotations and reports each item found. An item
//! only a new rotation settles names that `rotate` command, with the store options
//! recover was given. Human lines are printed with control characters escaped: entry
//! names come from the store's listing.

use serde::Serialize;

use crate::cli::{RecoverArgs, StoreArgs};
use crate::commands::block_on;
use crate::config::ConnectOptions;
use crate::error::{ExitCode, Result};
use crate::output;
use crate::recovery::{self, Item, ItemOutcome};
use crate::settings::{Accounts, Settings};
use crate::state::StateDir;
use crate::store::{EntryName, Slot};

pub fn run(args: RecoverArgs) -> Result<ExitCode> {
    let service = args.store.service(None)?;
    let state = StateDir::locate()?;
    let accounts = Accounts::load(None)?;
    let options = ConnectOptions {
        http: args.http.config(),
    };
    let connect = |settings: &Settings| settings.provider().connect(settings, &options);
    let mut items = block_on(async {
        let store = args.store.open(None).await?;
        recovery::recover(store.as_ref(), &state, &accounts, &connect, args.dry_run).await
    })?;
    let flags = store_flags(&args.store);
    for item in &mut items {
        if let Some(step) = &mut item.next_step {
            step.push_str(&flags);
        }
    }
    let code = recovery::exit_code(&items);
    let remaining = items.iter().filter(|i| i.outcome.remains()).count();
    if remaining > 0 && !args.dry_run {
        let steps: Vec<String> = items
            .iter()
            .filter_map(|i| i.next_step.as_ref().map(|step| format!("`{step}`")))
            .collect();
        let rotate = if steps.is_empty() {
            String::new()
        } else {
            format!("; to restore service run {}", steps.join(", "))
        };
        output::error_line(&format!(
            "{remaining} item(s) could not be recovered (exit {code}): see the report on \
             standard output{rotate}"
        ));
    }
    if args.json {
        output::json(&RecoverJson {
            status: if remaining == 0 { "ok" } else { "incomplete" },
            dry_run: args.dry_run,
            remaining,
            exit_code: code,
            items: items.iter().map(ItemJson::new).collect(),
        })?;
    } else {
        print_human(&items, &service, remaining, args.dry_run)?;
    }
    Ok(code)
}

#[derive(Serialize)]
struct RecoverJson<'a> {
    status: &'static str,
    dry_run: bool,
    remaining: usize,
    exit_code: ExitCode,
    items: Vec<ItemJson<'a>>,
}

/// One item of `recover --json`.
#[derive(Serialize)]
struct ItemJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    keyring_service: &'a str,
    keyring_entry: &'a EntryName,
    provider: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    outcome: &'static str,
    message: &'a str,
    exit_code: ExitCode,
    attempts: u32,
    /// The command that settles what recover could not (`outcome_unknown` items).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_step: Option<&'a str>,
}

impl<'a> ItemJson<'a> {
    fn new(item: &'a Item) -> Self {
        Self {
            kind: item.kind.as_str(),
            keyring_service: &item.service,
            keyring_entry: &item.entry,
            provider: item.provider.map(|p| p.name()),
            file: item.file.as_ref().map(|p| p.display().to_string()),
            outcome: item.outcome.as_str(),
            message: &item.message,
            exit_code: item.exit_code,
            attempts: item.attempts,
            next_step: item.next_step.as_deref(),
        }
    }
}

fn print_human(items: &[Item], service: &str, remaining: usize, dry_run: bool) -> Result<()> {
    if items.is_empty() {
        return output::line(&format!(
            "nothing to recover in {} or the recovery directory",
            describe_service(service)
        ));
    }
    for item in items {
        let what = match &item.file {
            Some(file) => format!("recovery file {}", file.display()),
            None => format!("'{}'", item.entry.slot(slot(item))),
        };
        let mark = match item.outcome {
            ItemOutcome::Failed
            | ItemOutcome::Conflict
            | ItemOutcome::Refused
            | ItemOutcome::RotateAgain => "NOT RECOVERED",
            ItemOutcome::WouldRecover => "to recover",
            _ => "done",
        };
        let step = match &item.next_step {
            Some(step) => format!(": run `{step}`"),
            None => String::new(),
        };
        // Entry names come from the store's listing (a server's answer): escaped.
        output::line(&crate::redact::escape_controls(&format!(
            "{mark}: {what}: {}{step}",
            item.message
        )))?;
    }
    let rotate = items.iter().filter(|i| i.next_step.is_some()).count();
    let rotate = match rotate {
        0 => String::new(),
        n => format!(" ({n} of them only by the `siprot rotate` named above)"),
    };
    let summary = match (remaining, dry_run) {
        (0, _) => "everything is recovered".to_owned(),
        (n, true) => {
            format!("{n} item(s) to recover{rotate}; run without --dry-run to recover them")
        }
        (n, false) => format!("{n} item(s) still need attention{rotate} (see above)"),
    };
    output::line(&summary)
}

/// The store options recover was given on its command line, for the `rotate` it names
/// (` --store vault --secret-prefix 'team/'`); what the environment chose it chooses
/// again.
fn store_flags(store: &StoreArgs) -> String {
    let mut flags = String::new();
    if let Some(kind) = store.store {
        flags.push_str(&format!(" --store {kind}"));
    }
    for (flag, value) in [
        ("--vault-mount", &store.vault_mount),
        ("--secret-prefix", &store.secret_prefix),
    ] {
        if let Some(value) = value {
            flags.push_str(&format!(" {flag} {}", crate::hook::shell_quote(value)));
        }
    }
    flags
}

/// The store's service as prose: `keyring service 'siprot'` or `vault:secret/siprot/`.
fn describe_service(service: &str) -> String {
    if service.starts_with("vault:") {
        format!("the vault store ({service})")
    } else {
        format!("keyring service '{service}'")
    }
}

/// The keyring slot an item is about.
fn slot(item: &Item) -> Slot {
    match item.kind {
        recovery::ItemKind::Pending => Slot::Pending,
        recovery::ItemKind::Probe => Slot::Probe,
        _ => Slot::Current,
    }
}
