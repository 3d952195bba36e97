//! `siprot status`: what the audit log, the keyring and the recovery directory say
//! about each credential of the inventory. Reads only; never reads a secret.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::block_on;
use crate::config;
use crate::error::{Error, Result, exit};
use crate::inventory::{Inventory, InventoryEntry};
use crate::output;
use crate::state::{History, StateDir};
use crate::store::{Keyring, Slot};

pub fn run(args: StatusArgs) -> Result<u8> {
    let inventory = Inventory::load(&args.inventory)?;
    let selected = inventory.select(args.provider, &args.tag);
    let service = config::keyring_service()?;
    let state = StateDir::locate()?;
    let histories = state.histories(&service);
    let recovery_files: BTreeSet<(String, String)> = state
        .recovery_files()?
        .into_iter()
        .flatten()
        .map(|f| (f.service, f.entry))
        .collect();
    // Entry names only: listing needs no secret. A keyring that cannot be read makes
    // `pending` unknown, not the whole report impossible.
    let names = block_on(async {
        let keyring = Keyring::open(&service, args.keyring_timeout)
            .await
            .map_err(Error::keyring_unavailable)?;
        keyring.list().await.map_err(Error::keyring_unavailable)
    });
    let names: Option<BTreeSet<String>> = match names {
        Ok(names) => Some(names.into_iter().collect()),
        Err(error) => {
            output::warning(&format!("{error}; pending entries are not shown"));
            None
        }
    };
    let now = jiff::Timestamp::now();
    let rows: Vec<Row> = selected
        .iter()
        .map(|entry| {
            Row::new(
                entry,
                &service,
                &histories,
                names.as_ref(),
                &recovery_files,
                args.max_age,
                now,
            )
        })
        .collect();
    let overdue = rows.iter().filter(|r| r.overdue).count();
    let needs_recovery = rows.iter().filter(|r| r.needs_recovery()).count();
    if args.json {
        output::json(&StatusJson {
            inventory: args.inventory.display().to_string(),
            keyring_service: &service,
            total: rows.len(),
            overdue,
            needs_recovery,
            credentials: &rows,
        })?;
    } else {
        print_table(&rows, overdue, needs_recovery)?;
    }
    Ok(exit::SUCCESS)
}

/// One credential in `status --json`.
#[derive(Serialize)]
struct Row {
    line: usize,
    provider: &'static str,
    credential: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    keyring_entry: Option<String>,
    last_rotated: Option<String>,
    age_seconds: Option<i64>,
    max_age_seconds: Option<i64>,
    overdue: bool,
    last_outcome: Option<String>,
    last_exit_code: Option<u8>,
    /// `None` when the keyring could not be listed.
    pending: Option<bool>,
    recovery_file: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Row {
    fn new(
        entry: &InventoryEntry,
        service: &str,
        histories: &std::collections::HashMap<String, History>,
        names: Option<&BTreeSet<String>>,
        recovery_files: &BTreeSet<(String, String)>,
        default_max_age: Option<jiff::SignedDuration>,
        now: jiff::Timestamp,
    ) -> Self {
        let max_age = entry.max_age.or(default_max_age);
        let mut row = Row {
            line: entry.line,
            provider: entry.provider.name(),
            credential: entry.credential.id().to_owned(),
            device: entry.credential.device().map(str::to_owned),
            keyring_entry: None,
            last_rotated: None,
            age_seconds: None,
            max_age_seconds: max_age.map(|a| a.as_secs()),
            overdue: false,
            last_outcome: None,
            last_exit_code: None,
            pending: None,
            recovery_file: false,
            error: None,
        };
        let name = match entry.provider.entry_name(&entry.credential) {
            Ok(name) => name,
            Err(error) => {
                row.error = Some(error.to_string());
                return row;
            }
        };
        let history = histories.get(&name).cloned().unwrap_or_default();
        let age = history.last_rotated.map(|at| now.duration_since(at));
        row.last_rotated = history.last_rotated.map(|t| t.to_string());
        row.age_seconds = age.map(|a| a.as_secs());
        row.overdue = match (max_age, age) {
            (Some(max), Some(age)) => age >= max,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if let Some(attempt) = history.last_attempt {
            row.last_outcome = Some(attempt.outcome);
            row.last_exit_code = Some(attempt.exit_code);
        }
        row.pending = names.map(|n| n.contains(&format!("{name}{}", Slot::Pending.suffix())));
        row.recovery_file = recovery_files.contains(&(service.to_owned(), name.clone()));
        row.keyring_entry = Some(name);
        row
    }

    fn needs_recovery(&self) -> bool {
        self.pending == Some(true) || self.recovery_file
    }

    fn state(&self) -> String {
        if let Some(error) = &self.error {
            return format!("error: {error}");
        }
        let mut notes = Vec::new();
        if self.pending == Some(true) {
            notes.push("pending: run siprot recover");
        }
        if self.recovery_file {
            notes.push("recovery file: run siprot recover");
        }
        if self.overdue {
            notes.push("overdue");
        }
        if self
            .last_outcome
            .as_deref()
            .is_some_and(|o| o == "failed" || o == "unconfirmed")
        {
            notes.push("last attempt failed");
        }
        if notes.is_empty() {
            "ok".to_owned()
        } else {
            notes.join(", ")
        }
    }
}

/// `status --json`.
#[derive(Serialize)]
struct StatusJson<'a> {
    inventory: String,
    keyring_service: &'a str,
    total: usize,
    overdue: usize,
    needs_recovery: usize,
    credentials: &'a [Row],
}

fn print_table(rows: &[Row], overdue: usize, needs_recovery: usize) -> Result<()> {
    let width = rows
        .iter()
        .map(|r| display(r).chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    output::line(&format!(
        "{:<9} {:<width$} {:<21} {:>7} {:>7}  STATE",
        "PROVIDER", "CREDENTIAL", "LAST ROTATED", "AGE", "MAX AGE"
    ))?;
    for row in rows {
        let last = row
            .last_rotated
            .as_deref()
            .map(|t| t.chars().take(19).collect::<String>() + "Z")
            .unwrap_or_else(|| "never".to_owned());
        output::line(&format!(
            "{:<9} {:<width$} {:<21} {:>7} {:>7}  {}",
            row.provider,
            display(row),
            last,
            row.age_seconds.map(human_age).unwrap_or_else(|| "-".into()),
            row.max_age_seconds
                .map(human_age)
                .unwrap_or_else(|| "-".into()),
            row.state()
        ))?;
    }
    output::line(&format!(
        "{} credential(s): {overdue} overdue, {needs_recovery} need recovery",
        rows.len()
    ))
}

fn display(row: &Row) -> String {
    match &row.device {
        Some(device) => format!("{} ({device})", row.credential),
        None => row.credential.clone(),
    }
}

/// `3d`, `5h`, `12m`, `40s`: the largest whole unit.
fn human_age(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{}s", s.max(0)),
    }
}
