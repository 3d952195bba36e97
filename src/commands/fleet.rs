//! `siprot rotate --inventory`: rotates a fleet and reports it as a progress bar and a
//! summary (or JSON Lines: one object per credential, then a summary object).

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::RotateArgs;
use crate::commands::block_on;
use crate::config::{self, ConnectOptions};
use crate::error::{Error, Result, exit};
use crate::fleet::{self, FleetOptions, FleetResult, Outcome};
use crate::inventory::Inventory;
use crate::output;
use crate::providers::ProviderKind;
use crate::state::StateDir;
use crate::store::Keyring;

pub fn run(args: RotateArgs, path: &Path) -> Result<u8> {
    let inventory = Inventory::load(path)?;
    let selected = inventory.select(args.provider, &args.tag);
    let service = config::keyring_service()?;
    let state = StateDir::locate()?;
    let options = FleetOptions {
        concurrency: args
            .concurrency
            .map_or(fleet::DEFAULT_CONCURRENCY, usize::from),
        if_older_than: args.if_older_than,
        dry_run: args.dry_run,
    };
    let connect_options = ConnectOptions {
        base_url: None,
        http: args.net.http.config(),
    };
    let connect = |kind: ProviderKind| kind.connect(&connect_options);
    let progress = progress_bar(selected.len(), args.json);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut problems: Vec<(usize, String)> = Vec::new();
    let mut output_error: Option<Error> = None;
    block_on(async {
        let keyring = Keyring::open(&service, args.keyring_timeout)
            .await
            .map_err(Error::keyring_unavailable)?;
        fleet::rotate(&selected, &connect, &keyring, &state, &options, |result| {
            summary.count(&result);
            progress.inc(1);
            if args.json {
                if let Err(e) = output::json(&CredentialJson::new(&result)) {
                    output_error.get_or_insert(e);
                }
            } else if let Outcome::Failed { message, exit_code } = &result.outcome {
                problems.push((
                    result.entry.line,
                    format!(
                        "{} {} (line {}): exit {exit_code}: {message}",
                        result.entry.provider,
                        result.entry.credential.display(),
                        result.entry.line
                    ),
                ));
                progress.set_message(format!(
                    "{} failed",
                    summary.failed + summary.needs_recovery
                ));
            }
        })
        .await;
        Ok(())
    })?;
    progress.finish_and_clear();
    if let Some(error) = output_error {
        return Err(error);
    }
    summary.elapsed = started.elapsed();
    if args.json {
        output::json(&SummaryJson::new(&summary))?;
    } else {
        problems.sort();
        print_summary(&summary, &problems, path, args.dry_run)?;
    }
    Ok(summary.exit_code)
}

fn progress_bar(len: usize, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rotated {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[derive(Default, Serialize)]
struct Summary {
    total: usize,
    rotated: usize,
    skipped: usize,
    failed: usize,
    needs_recovery: usize,
    exit_code: u8,
    #[serde(skip)]
    elapsed: Duration,
}

impl Summary {
    fn count(&mut self, result: &FleetResult<'_>) {
        self.total += 1;
        match &result.outcome {
            Outcome::Done(_) => self.rotated += 1,
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Failed { exit_code, .. } if *exit_code == exit::UNCONFIRMED => {
                self.needs_recovery += 1;
            }
            Outcome::Failed { .. } => self.failed += 1,
        }
        self.exit_code = self.exit_code.max(result.exit_code());
    }
}

fn print_summary(
    summary: &Summary,
    problems: &[(usize, String)],
    path: &Path,
    dry_run: bool,
) -> Result<()> {
    let done = if dry_run {
        "planned (dry run)"
    } else {
        "rotated"
    };
    output::line(&format!(
        "{} credential(s) from {} in {:.1}s",
        summary.total,
        path.display(),
        summary.elapsed.as_secs_f64()
    ))?;
    for (label, count) in [
        (done, summary.rotated),
        ("skipped (rotated recently)", summary.skipped),
        ("failed (nothing changed)", summary.failed),
        ("needs recovery (exit 9)", summary.needs_recovery),
    ] {
        output::line(&format!("  {label:<28} {count:>6}"))?;
    }
    for (_, problem) in problems {
        output::line(&format!("  - {problem}"))?;
    }
    if summary.needs_recovery > 0 {
        output::line("run `siprot recover` to finish the rotations that need recovery")?;
    }
    if summary.exit_code != exit::SUCCESS {
        output::error_line(&format!(
            "{} of {} credential(s) were not rotated (exit {}): see the summary on standard output",
            summary.failed + summary.needs_recovery,
            summary.total,
            summary.exit_code
        ));
    }
    Ok(())
}

/// One line of `rotate --inventory --json` per credential.
#[derive(Serialize)]
struct CredentialJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    line: usize,
    provider: &'static str,
    credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    keyring_entry: Option<&'a str>,
    status: &'static str,
    exit_code: u8,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyring_writes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_rotated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a> CredentialJson<'a> {
    fn new(result: &'a FleetResult<'a>) -> Self {
        let mut json = Self {
            kind: "credential",
            line: result.entry.line,
            provider: result.entry.provider.name(),
            credential: result.entry.credential.id(),
            device: result.entry.credential.device(),
            keyring_entry: result.keyring_entry.as_deref(),
            status: "failed",
            exit_code: result.exit_code(),
            attempts: result.attempts,
            keyring_writes: None,
            rotated_at: None,
            last_rotated: None,
            error: None,
        };
        match &result.outcome {
            Outcome::Done(report) => {
                json.status = report.status.as_str();
                json.keyring_writes = Some(report.keyring_writes);
                json.rotated_at = report.rotated_at.as_deref();
            }
            Outcome::Skipped { last_rotated, .. } => {
                json.status = "skipped";
                json.last_rotated = Some(last_rotated.to_string());
            }
            Outcome::Failed { message, .. } => json.error = Some(message),
        }
        json
    }
}

/// The last line of `rotate --inventory --json`.
#[derive(Serialize)]
struct SummaryJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    summary: &'a Summary,
    elapsed_ms: u128,
}

impl<'a> SummaryJson<'a> {
    fn new(summary: &'a Summary) -> Self {
        Self {
            kind: "summary",
            summary,
            elapsed_ms: summary.elapsed.as_millis(),
        }
    }
}
