//! `siprot status`: what the audit log, the keyring and the recovery directory say
//! about each credential of the inventory: its rotations, its last verification
//! (`verify`, `rotate --verify`) and whether its current password was verified since
//! its last rotation. Reads only; never reads a secret.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::audit::AuditOutcome;
use crate::cli::StatusArgs;
use crate::commands::block_on;
use crate::error::{Error, ExitCode, Result, exit};
use crate::inventory::{Inventory, InventoryEntry};
use crate::output;
use crate::providers::PasswordOrigin;
use crate::settings::Accounts;
use crate::state::{Attempt, History, RecordAge, StateDir};
use crate::store::{EntryName, Slot};

pub fn run(args: StatusArgs) -> Result<ExitCode> {
    let inventory = Inventory::load(&args.inventory)?;
    let selected = inventory.select_some(args.provider, &args.tag, args.allow_empty)?;
    let service = args.store.service(Some(&inventory))?;
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
        let store = args.store.open(Some(&inventory)).await?;
        store.list().await.map_err(Error::keyring_unavailable)
    });
    let names: Option<BTreeSet<String>> = match names {
        Ok(names) => Some(names.iter().map(|(name, slot)| name.slot(*slot)).collect()),
        Err(error) => {
            output::warning(&format!("{error}; pending entries are not shown"));
            None
        }
    };
    let accounts = Accounts::load(None)?;
    let now = jiff::Timestamp::now();
    let rows: Vec<Row> = selected
        .iter()
        .map(|entry| {
            Row::new(
                (
                    entry,
                    accounts.entry_name(entry.provider, &entry.credential, entry.profile.as_ref()),
                ),
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
    let unverified = rows.iter().filter(|r| r.unverified).count();
    if args.json {
        output::json(&StatusJson {
            inventory: args.inventory.display().to_string(),
            keyring_service: &service,
            total: rows.len(),
            overdue,
            needs_recovery,
            unverified,
            credentials: &rows,
        })?;
    } else {
        print_table(&rows, overdue, needs_recovery, unverified)?;
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
    keyring_entry: Option<EntryName>,
    last_rotated: Option<String>,
    /// `None` when never rotated, or when the last rotation is dated in the future.
    age_seconds: Option<i64>,
    /// How far in the future the last rotation is dated, beyond the tolerance (a clock
    /// that ran ahead, or a forged line): its age is unknown and it counts as overdue.
    clock_skew_seconds: Option<i64>,
    max_age_seconds: Option<i64>,
    overdue: bool,
    last_outcome: Option<AuditOutcome>,
    last_exit_code: Option<ExitCode>,
    /// The audit log leaves the provider's password unknown
    /// ([`History::outcome_unknown`]): a rotation cut off (SIGKILL, power loss) may have
    /// changed it, or a Telepath one left unconfirmed (5xx, timeout after sending) did.
    outcome_unknown: bool,
    /// Why, for the human table ([`Attempt::unknown_cause`]).
    #[serde(skip)]
    unknown_cause: Option<&'static str>,
    /// `None` when the keyring could not be listed.
    pending: Option<bool>,
    recovery_file: bool,
    /// The time of the last verification (`verify`, `rotate --verify`), if any.
    last_verified: Option<String>,
    /// Its outcome: `verified`, `rejected`, `unreachable`, `not-verified` or `failed`.
    last_verification: Option<AuditOutcome>,
    /// The registrar it registered with.
    last_verification_registrar: Option<String>,
    /// Rotated, and no verification accepted the current password since its last
    /// rotation (never verified, or only rejected, unreachable, ...).
    unverified: bool,
    /// The command that settles what needs attention, if anything does.
    next_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Row {
    /// The row of `entry`, whose entries are named `name` (or could not be).
    fn new(
        (entry, name): (&InventoryEntry, Result<EntryName>),
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
            clock_skew_seconds: None,
            max_age_seconds: max_age.map(|a| a.as_secs()),
            overdue: false,
            last_outcome: None,
            last_exit_code: None,
            outcome_unknown: false,
            unknown_cause: None,
            pending: None,
            recovery_file: false,
            last_verified: None,
            last_verification: None,
            last_verification_registrar: None,
            unverified: false,
            next_step: None,
            error: None,
        };
        let name = match name {
            Ok(name) => name,
            Err(error) => {
                row.error = Some(error.to_string());
                return row;
            }
        };
        let history = histories.get(name.current()).cloned().unwrap_or_default();
        let age = history.last_rotated.map(|at| RecordAge::of(at, now));
        row.last_rotated = history.last_rotated.map(|t| t.to_string());
        if let Some(verification) = &history.last_verification {
            row.last_verified = Some(verification.time.to_string());
            row.last_verification = Some(verification.outcome.clone());
            row.last_verification_registrar = verification.registrar.clone();
        }
        row.unverified = history.last_rotated.is_some() && !history.verified_since_rotation;
        match age {
            Some(RecordAge::Known(age)) => row.age_seconds = Some(age.as_secs()),
            Some(RecordAge::Future(ahead)) => row.clock_skew_seconds = Some(ahead.as_secs()),
            None => {}
        }
        // Never rotated, or an age that is unknown because of a skewed clock: overdue.
        row.overdue = match (max_age, age) {
            (Some(max), Some(RecordAge::Known(age))) => age >= max,
            (Some(_), _) => true,
            (None, _) => false,
        };
        row.pending = names.map(|n| n.contains(&name.slot(Slot::Pending)));
        row.recovery_file =
            recovery_files.contains(&(service.to_owned(), name.current().to_owned()));
        // A client-set rotation keeps its password in `#pending` until it is settled:
        // with no `#pending` left, the cut-off rotation changed nothing or finished.
        let origin = entry.provider.origin();
        row.unknown_cause = history
            .outcome_unknown(origin)
            .filter(|_| origin == PasswordOrigin::ServerGenerated || row.pending != Some(false))
            .map(Attempt::unknown_cause);
        row.outcome_unknown = row.unknown_cause.is_some();
        if let Some(attempt) = history.last_attempt {
            row.last_outcome = Some(attempt.outcome);
            row.last_exit_code = Some(attempt.exit_code);
        }
        row.next_step = if row.pending == Some(true) || row.recovery_file {
            Some("siprot recover".to_owned())
        } else if row.outcome_unknown {
            Some(match entry.provider.origin() {
                PasswordOrigin::ServerGenerated => format!(
                    "siprot rotate --provider {} {}",
                    entry.provider,
                    entry.credential.id()
                ),
                PasswordOrigin::ClientSupplied => "siprot recover".to_owned(),
            })
        } else {
            None
        };
        row.keyring_entry = Some(name);
        row
    }

    fn needs_recovery(&self) -> bool {
        self.pending == Some(true) || self.recovery_file || self.outcome_unknown
    }

    fn state(&self) -> String {
        if let Some(error) = &self.error {
            return format!("error: {error}");
        }
        let mut notes: Vec<String> = Vec::new();
        if let Some(cause) = self.unknown_cause {
            notes.push(format!(
                "outcome unknown: its last rotation {cause} (or one is still running): run {}",
                self.next_step.as_deref().unwrap_or("siprot recover")
            ));
        }
        if self.pending == Some(true) {
            notes.push("pending: run siprot recover".into());
        }
        if self.recovery_file {
            notes.push("recovery file: run siprot recover".into());
        }
        if let Some(ahead) = self.clock_skew_seconds {
            notes.push(format!(
                "last rotation dated {} in the future (clock skew): age unknown",
                human_age(ahead)
            ));
        }
        if self.overdue {
            notes.push("overdue".into());
        }
        if self.unverified {
            notes.push("not verified since its rotation".into());
        }
        if self
            .last_outcome
            .as_ref()
            .is_some_and(AuditOutcome::is_failure)
        {
            notes.push("last attempt failed".into());
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
    /// Credentials whose current password was not verified since its last rotation.
    unverified: usize,
    credentials: &'a [Row],
}

fn print_table(
    rows: &[Row],
    overdue: usize,
    needs_recovery: usize,
    unverified: usize,
) -> Result<()> {
    let width = rows
        .iter()
        .map(|r| display(r).chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    output::line(&format!(
        "{:<9} {:<width$} {:<21} {:>7} {:>7}  {:<30}  STATE",
        "PROVIDER", "CREDENTIAL", "LAST ROTATED", "AGE", "MAX AGE", "LAST VERIFIED"
    ))?;
    for row in rows {
        let last = row
            .last_rotated
            .as_deref()
            .map(|t| t.chars().take(19).collect::<String>() + "Z")
            .unwrap_or_else(|| "never".to_owned());
        let verified = match (&row.last_verification, &row.last_verified) {
            (Some(outcome), Some(time)) => {
                let time: String = time.chars().take(16).collect();
                format!("{outcome} {time}Z")
            }
            _ => "never".to_owned(),
        };
        output::line(&format!(
            "{:<9} {:<width$} {:<21} {:>7} {:>7}  {verified:<30}  {}",
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
        "{} credential(s): {overdue} overdue, {needs_recovery} need recovery, {unverified} not \
         verified since their last rotation",
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
