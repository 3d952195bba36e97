//! `siprot rotate --inventory`: rotates a fleet and reports it as a progress bar and a
//! summary that counts and names the credentials rotated, skipped and failed (or JSON
//! Lines: one object per credential, then a summary object). With
//! `--verify`, each entry that names a registrar is verified after its rotation and the
//! summary counts verified, rejected, unreachable and unverified credentials.
//! A hook that failed after its credential's rotation is counted apart (`hook_failed`,
//! exit 11 unless something worse happened, [`ExitCode::worse`]).
//! A credential rotated whatever its age because its outcome is unknown
//! ([`fleet::OutcomeUnknown`]) gets a note in the summary and `outcome_unknown` in its
//! JSON line.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::cli::RotateArgs;
use crate::commands::block_on;
use crate::commands::exec::{self, HookSource};
use crate::commands::rotate_verify;
use crate::commands::verify::{self as verify_command, VerificationJson};
use crate::config::ConnectOptions;
use crate::error::{Error, ExitCode, Result, exit};
use crate::fleet::{self, FleetOptions, FleetResult, FleetVerification, Outcome};
use crate::input;
use crate::interrupt;
use crate::inventory::{Inventory, InventoryEntry};
use crate::output;
use crate::providers::PasswordOrigin;
use crate::rollback::Plan;
use crate::settings::{Accounts, Settings};
use crate::state::StateDir;
use crate::store::EntryName;
use crate::verification::Verdict;

pub fn run(args: RotateArgs, path: &Path) -> Result<ExitCode> {
    let inventory = Inventory::load(path)?;
    let selected = inventory.select_some(args.provider, &args.tag, args.allow_empty)?;
    let state = StateDir::locate()?;
    let verify = rotate_verify::check_fleet(&args)?;
    let accounts = Accounts::load(None)?;
    let mut options = fleet_options(&args, &inventory)?;
    if verify {
        let service = args.store.service(Some(&inventory))?;
        options.verify = Some(plans(&args, &selected, &accounts, &state, &service)?);
    }
    let connect_options = ConnectOptions {
        http: args.net.http.config(),
    };
    let connect = |settings: &Settings| settings.provider().connect(settings, &connect_options);
    if !args.dry_run {
        confirm(&args, &inventory, &accounts, &selected, &state, path)?;
    }
    let progress = progress_bar(selected.len(), args.json);
    let started = Instant::now();
    let mut tally = Tally::default();
    if verify && !args.dry_run {
        tally.summary.verification = Some(VerifyCounts::default());
    }
    if !args.dry_run {
        interrupt::catch()?;
    }
    block_on(async {
        let store = args.store.open(Some(&inventory)).await?;
        fleet::rotate(
            &selected,
            &accounts,
            &connect,
            store.as_ref(),
            &state,
            &options,
            |result| {
                tally.record(&result, args.json, &progress, &args, path);
            },
        )
        .await;
        Ok(())
    })?;
    progress.finish_and_clear();
    tally.report(started, path, &args)
}

/// On a terminal (unless `--yes`), asks once before a fleet that would rotate at least
/// one credential whose new password its provider generates (the old one stops working at
/// once), with their count: the selected ones that their age does not skip.
fn confirm(
    args: &RotateArgs,
    inventory: &Inventory,
    accounts: &Accounts,
    selected: &[&InventoryEntry],
    state: &StateDir,
    path: &Path,
) -> Result<()> {
    if args.yes || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    let histories = state.histories(&args.store.service(Some(inventory))?);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for entry in selected {
        let Ok(name) =
            accounts.entry_name(entry.provider, &entry.credential, entry.profile.as_ref())
        else {
            continue;
        };
        if entry.provider.origin() == PasswordOrigin::ServerGenerated
            && !matches!(
                fleet::age_check(entry, &name, args.if_older_than, &histories),
                fleet::AgeCheck::Recent { .. }
            )
        {
            *counts.entry(entry.provider.name()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    let providers: Vec<&str> = counts.keys().copied().collect();
    let counts: Vec<String> = counts
        .iter()
        .map(|(provider, n)| format!("{n} {provider}"))
        .collect();
    let verb = if providers.len() == 1 {
        "generates"
    } else {
        "generate"
    };
    input::confirm(
        &format!(
            "rotate {} credential(s) among the {} selected in {}",
            counts.join(" and "),
            selected.len(),
            crate::redact::escape_controls(&path.display().to_string()),
        ),
        &format!(
            "{} {verb} each new password and the old one stops working at once",
            providers.join(" and ")
        ),
        false,
    )
}

/// The fleet options `args` (and the inventory's hooks) ask for.
fn fleet_options(args: &RotateArgs, inventory: &Inventory) -> Result<FleetOptions> {
    let exec = exec::command_line_hook(&args.hook)?.map(|spec| spec.command);
    if exec.is_none()
        && (inventory.exec.is_some() || inventory.entries.iter().any(|e| e.exec.is_some()))
    {
        crate::hook::check_supported()?;
    }
    Ok(FleetOptions {
        concurrency: args
            .concurrency
            .map_or(fleet::DEFAULT_CONCURRENCY, usize::from),
        if_older_than: args.if_older_than,
        dry_run: args.dry_run,
        verify: None,
        exec,
        default_exec: inventory.exec.clone(),
        exec_timeout: args.hook.exec_timeout,
    })
}

/// The command that reruns the hook of `result`, if it has one.
fn rerun(result: &FleetResult<'_>, args: &RotateArgs, path: &Path) -> Option<String> {
    let hooked = result.hook.as_ref()?;
    let Outcome::Done(report) = &result.outcome else {
        return None;
    };
    let source = if args.hook.exec.is_some() {
        HookSource::CommandLine
    } else {
        HookSource::Inventory(path.to_owned())
    };
    Some(exec::rerun_command(
        report.provider,
        &report.credential,
        report.store,
        &hooked.spec,
        &source,
    ))
}

/// The verify step of every selected entry that names a registrar, by line, checked
/// before anything is sent. The SIP username the audit log knows is read once for all.
fn plans(
    args: &RotateArgs,
    selected: &[&InventoryEntry],
    accounts: &Accounts,
    state: &StateDir,
    service: &str,
) -> Result<HashMap<usize, Plan>> {
    let histories = state.histories(service);
    let mut plans = HashMap::new();
    for entry in selected {
        let at_line = |e: Error| {
            Error::Config(format!(
                "{}:{}: {e}",
                args.inventory.as_deref().unwrap_or(Path::new("")).display(),
                entry.line
            ))
        };
        if entry.registrar.is_none() {
            continue;
        }
        let name = accounts
            .entry_name(entry.provider, &entry.credential, entry.profile.as_ref())
            .map_err(at_line)?;
        let mut entry = (*entry).clone();
        if entry.sip_username.is_none() {
            entry.sip_username = histories
                .get(name.current())
                .and_then(|h| h.username.clone());
        }
        let plan =
            rotate_verify::fleet_plan(args, &entry, &name, state, service).map_err(at_line)?;
        if let Some(plan) = plan {
            plans.insert(entry.line, plan);
        }
    }
    Ok(plans)
}

/// What the run gathers from each credential's result, for the summary.
#[derive(Default)]
struct Tally {
    summary: Summary,
    /// Failures, by inventory line (human output only).
    problems: Vec<(usize, String)>,
    /// Clock skew notes, by inventory line (human output only).
    notes: Vec<(usize, String)>,
    /// The credentials rotated (planned on a dry run), skipped and not attempted, by
    /// inventory line (human output only).
    names: Names,
    /// The first failure to write a JSON line.
    output_error: Option<Error>,
}

impl Tally {
    /// Counts one credential's result and reports it: a JSON line, or a progress step
    /// (and a note or a problem kept for the summary).
    fn record(
        &mut self,
        result: &FleetResult<'_>,
        json: bool,
        progress: &ProgressBar,
        args: &RotateArgs,
        path: &Path,
    ) {
        self.summary.count(result);
        progress.inc(1);
        if let FleetVerification::Done(verified) = &result.verification {
            for warning in &verified.warnings {
                output::warning(warning);
            }
        }
        if !json && let Some(problem) = verification_problem(result) {
            self.problems.push((result.entry.line, problem));
        }
        if !json && let Some(note) = clock_skew_note(result) {
            self.notes.push((result.entry.line, note));
        }
        if !json && let Some(note) = outcome_unknown_note(result, args.dry_run) {
            self.notes.push((result.entry.line, note));
        }
        if !json {
            self.names.add(result);
        }
        let rerun = rerun(result, args, path).filter(|_| result.hook_failed());
        if json {
            let mut line = CredentialJson::new(result);
            line.hook_rerun = rerun.as_deref();
            if let Err(e) = output::json(&line) {
                self.output_error.get_or_insert(e);
            }
        } else if let (Some(hooked), Some(rerun)) = (&result.hook, &rerun) {
            self.problems.push((
                result.entry.line,
                format!(
                    "{} {} (line {}): exit 11: stored, but the hook failed ({}): run it again \
                     with `{rerun}`",
                    result.entry.provider,
                    result.entry.credential.display(),
                    result.entry.line,
                    hooked.run.describe(hooked.spec.timeout)
                ),
            ));
            progress.set_message(format!("{} hook(s) failed", self.summary.hook_failed));
        } else if let Outcome::Failed { message, exit_code } = &result.outcome {
            self.problems.push((
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
                self.summary.failed + self.summary.needs_recovery
            ));
        }
    }

    /// The summary (JSON or human) once every credential is done, and the exit code.
    fn report(mut self, started: Instant, path: &Path, args: &RotateArgs) -> Result<ExitCode> {
        if let Some(error) = self.output_error {
            return Err(error);
        }
        self.summary.elapsed = started.elapsed();
        // A rotation's failure (9 first) says more than a missing verification.
        if self.summary.exit_code == exit::SUCCESS
            && self
                .summary
                .verification
                .as_ref()
                .is_some_and(|v| v.unverified() > 0)
        {
            self.summary.exit_code = exit::NOT_VERIFIED;
        }
        self.summary.exit_code = interrupt::final_code(self.summary.exit_code);
        if args.json {
            output::json(&SummaryJson::new(&self.summary))?;
        } else {
            self.problems.sort();
            self.notes.sort();
            self.names.sort();
            print_summary(
                &self.summary,
                &self.problems,
                &self.notes,
                &self.names,
                path,
                args.dry_run,
            )?;
        }
        Ok(self.summary.exit_code)
    }
}

/// What a credential's verification found, in words (and the registrar), or `None` when
/// it was verified or not asked for.
fn verification_verdict(result: &FleetResult<'_>) -> Option<(&'static str, String)> {
    match &result.verification {
        FleetVerification::NotAsked => None,
        FleetVerification::NoRegistrar => Some((
            "no-registrar",
            "not verified: its entry names no registrar".to_owned(),
        )),
        FleetVerification::NotRun(why) => Some(("not-run", format!("not verified: {why}"))),
        FleetVerification::Done(verified) => {
            let registrar = verified
                .target
                .as_ref()
                .map(|t| t.registrar().to_string())
                .unwrap_or_default();
            match &verified.checks {
                Ok(checks) if checks.verified() => Some(("verified", String::new())),
                Ok(checks) => Some((
                    verdict_name(checks.verdict()),
                    format!(
                        "not verified at {registrar}: {}{}",
                        checks.failure_reason(),
                        tries(checks.tries)
                    ),
                )),
                Err(problem) => Some(("not-verified", format!("not verified: {problem}"))),
            }
        }
    }
}

/// The verdict's name, as in the audit log.
fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Verified => "verified",
        Verdict::Rejected => "rejected",
        Verdict::Unreachable => "unreachable",
        Verdict::NotVerified => "not-verified",
        Verdict::Failed => "failed",
    }
}

/// ` (after N tries)` when the registrar was asked more than once.
fn tries(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} tries)")
    } else {
        String::new()
    }
}

/// The summary's line for a credential that was rotated but not verified.
fn verification_problem(result: &FleetResult<'_>) -> Option<String> {
    let (kind, why) = verification_verdict(result)?;
    (kind != "verified").then(|| {
        format!(
            "{} {} (line {}): rotated and stored, {why}",
            result.entry.provider,
            result.entry.credential.display(),
            result.entry.line
        )
    })
}

/// The note for a credential whose last rotation is dated in the future.
fn clock_skew_note(result: &FleetResult<'_>) -> Option<String> {
    let skew = result.clock_skew.as_ref()?;
    Some(format!(
        "{} {} (line {}): its last rotation is dated {}, {} in the future \
         (clock skew): its age is unknown, so it was not skipped",
        result.entry.provider,
        result.entry.credential.display(),
        result.entry.line,
        skew.last_rotated,
        human_duration(skew.ahead)
    ))
}

/// The note for a credential whose outcome was unknown: why it was rotated (or, on a dry
/// run, is due) whatever its age.
fn outcome_unknown_note(result: &FleetResult<'_>, dry_run: bool) -> Option<String> {
    let unknown = result.outcome_unknown.as_ref()?;
    let now = if dry_run {
        "it is due now"
    } else {
        "it was rotated now"
    };
    Some(format!(
        "{} {} (line {}): outcome unknown: its last rotation (recorded {}) {}, so {} may hold \
         a password no store has: {now}, whatever its age",
        result.entry.provider,
        result.entry.credential.display(),
        result.entry.line,
        unknown.since,
        unknown.cause,
        result.entry.provider,
    ))
}

/// `400d`, `5h`, `12m`, `40s`: the largest whole unit.
fn human_duration(duration: jiff::SignedDuration) -> String {
    match duration.as_secs() {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
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
    /// Rotated and stored (counted in `rotated` too), but the hook failed.
    hook_failed: usize,
    /// Not started (or stopped before the request) because of SIGINT, SIGTERM or SIGHUP.
    not_attempted: usize,
    /// With `--verify` (not on a dry run): what the rotated credentials' verifications found.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    verification: Option<VerifyCounts>,
    exit_code: ExitCode,
    #[serde(skip)]
    elapsed: Duration,
}

/// The verifications of a fleet's rotated credentials, each counted once.
#[derive(Default, Serialize)]
struct VerifyCounts {
    /// The registrar accepted the new password.
    verified: usize,
    /// The registrar refused it (after `--verify-wait`, if given).
    rejected: usize,
    /// No answer, or the registrar said it is unavailable.
    unreachable: usize,
    /// Anything else: not asked for a password, the previous password still registers,
    /// another answer, a check that could not start, or a signal came first.
    not_verified: usize,
    /// Rotated, but the entry names no registrar.
    no_registrar: usize,
}

impl VerifyCounts {
    fn count(&mut self, verification: &FleetVerification) {
        match verification {
            FleetVerification::NotAsked => {}
            FleetVerification::NoRegistrar => self.no_registrar += 1,
            FleetVerification::NotRun(_) => self.not_verified += 1,
            FleetVerification::Done(verified) => match &verified.checks {
                Ok(checks) => match checks.verdict() {
                    Verdict::Verified => self.verified += 1,
                    Verdict::Rejected => self.rejected += 1,
                    Verdict::Unreachable => self.unreachable += 1,
                    Verdict::NotVerified | Verdict::Failed => self.not_verified += 1,
                },
                Err(_) => self.not_verified += 1,
            },
        }
    }

    /// Rotated credentials that were not verified, for whatever reason.
    fn unverified(&self) -> usize {
        self.rejected + self.unreachable + self.not_verified + self.no_registrar
    }
}

impl Summary {
    fn count(&mut self, result: &FleetResult<'_>) {
        self.total += 1;
        if let Some(counts) = &mut self.verification {
            counts.count(&result.verification);
        }
        match &result.outcome {
            Outcome::Done(_) => {
                self.rotated += 1;
                if result.hook_failed() {
                    self.hook_failed += 1;
                }
            }
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Failed { exit_code, .. } if *exit_code == exit::UNCONFIRMED => {
                self.needs_recovery += 1;
            }
            Outcome::Failed { .. } => self.failed += 1,
            // The exit code is the signal's (or 9), set once the run is over.
            Outcome::NotAttempted { .. } => {
                self.not_attempted += 1;
                return;
            }
        }
        self.exit_code = self.exit_code.worse(result.exit_code());
    }
}

/// The most credentials the human summary names per group; the rest are counted.
const NAMES_LISTED: usize = 20;

/// The credentials of each group of the human summary, by inventory line.
#[derive(Default)]
struct Names {
    rotated: Vec<(usize, String)>,
    skipped: Vec<(usize, String)>,
    not_attempted: Vec<(usize, String)>,
}

impl Names {
    fn add(&mut self, result: &FleetResult<'_>) {
        let group = match &result.outcome {
            Outcome::Done(_) => &mut self.rotated,
            Outcome::Skipped { .. } => &mut self.skipped,
            Outcome::NotAttempted { .. } => &mut self.not_attempted,
            // Listed with their error among the problems.
            Outcome::Failed { .. } => return,
        };
        let entry = result.entry;
        group.push((
            entry.line,
            format!(
                "{} {} (line {})",
                entry.provider,
                entry.credential.display(),
                entry.line
            ),
        ));
    }

    fn sort(&mut self) {
        self.rotated.sort();
        self.skipped.sort();
        self.not_attempted.sort();
    }

    /// `label (N):` and the first [`NAMES_LISTED`] names, one a line, then how many more;
    /// nothing for an empty group.
    fn print(label: &str, names: &[(usize, String)]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        output::line(&format!("{label} ({}):", names.len()))?;
        for (_, name) in names.iter().take(NAMES_LISTED) {
            output::line(&format!("  {name}"))?;
        }
        if names.len() > NAMES_LISTED {
            output::line(&format!("  ... and {} more", names.len() - NAMES_LISTED))?;
        }
        Ok(())
    }
}

fn print_summary(
    summary: &Summary,
    problems: &[(usize, String)],
    notes: &[(usize, String)],
    names: &Names,
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
        ("hook failed (exit 11)", summary.hook_failed),
        ("not attempted (interrupted)", summary.not_attempted),
    ] {
        output::line(&format!("  {label:<28} {count:>6}"))?;
    }
    if let Some(v) = &summary.verification {
        for (label, count) in [
            ("verified", v.verified),
            ("rejected by the registrar", v.rejected),
            ("registrar unreachable", v.unreachable),
            ("not verified (other)", v.not_verified),
            ("no registrar (not verified)", v.no_registrar),
        ] {
            output::line(&format!("  {label:<28} {count:>6}"))?;
        }
    }
    let rotated = if dry_run {
        "would be rotated"
    } else {
        "rotated"
    };
    Names::print(rotated, &names.rotated)?;
    Names::print("skipped (rotated recently)", &names.skipped)?;
    Names::print("not attempted (interrupted)", &names.not_attempted)?;
    if !problems.is_empty() || !notes.is_empty() {
        output::line("problems and notes:")?;
    }
    for (_, problem) in problems {
        output::line(&format!("  - {problem}"))?;
    }
    for (_, note) in notes {
        output::line(&format!("  - note: {note}"))?;
    }
    if let (Some(signal), n @ 1..) = (interrupt::received(), summary.not_attempted) {
        output::line(&format!(
            "interrupted by {signal}: {n} credential(s) not attempted (nothing was sent for \
             them); run the same command again to rotate them"
        ))?;
    }
    if summary.needs_recovery > 0 {
        output::line("run `siprot recover` to finish the rotations that need recovery")?;
    }
    let not_rotated = summary.failed + summary.needs_recovery + summary.not_attempted;
    if summary.exit_code != exit::SUCCESS && not_rotated > 0 {
        output::error_line(&format!(
            "{} of {} credential(s) were not rotated (exit {}): see the summary on standard output",
            not_rotated, summary.total, summary.exit_code
        ));
    } else if summary.hook_failed > 0 {
        output::error_line(&format!(
            "{} of {} credential(s) were rotated and stored, but their hook failed (exit {}): \
             see the summary on standard output for the `siprot exec` commands that rerun them",
            summary.hook_failed, summary.total, summary.exit_code
        ));
    } else if summary.exit_code == exit::NOT_VERIFIED
        && let Some(v) = &summary.verification
    {
        output::error_line(&format!(
            "{} of {} rotated credential(s) were not verified (exit 10): the new passwords \
             are stored; see the summary on standard output",
            v.unverified(),
            summary.rotated
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
    keyring_entry: Option<&'a EntryName>,
    status: &'static str,
    exit_code: ExitCode,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    keyring_writes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotated_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_rotated: Option<String>,
    /// Rotated although a maximum age applied: the last rotation is dated this many
    /// seconds in the future (`last_rotated` gives the date).
    #[serde(skip_serializing_if = "Option::is_none")]
    clock_skew_seconds: Option<i64>,
    /// Rotated (or due, on a dry run) whatever its age: the audit log leaves its
    /// password unknown (`last_attempt` gives the time of the record that did: a rotation
    /// cut off with its request in flight, or a Telepath one left unconfirmed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    outcome_unknown: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// With `--verify`, for a rotated credential: `verified`, `rejected`,
    /// `unreachable`, `not-verified`, `failed`, `no-registrar` or `not-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_result: Option<&'static str>,
    /// Where and as whom, and what the registrar said (as `rotate --verify --json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<VerificationJson<'a>>,
    /// Why it is not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification_problem: Option<String>,
    /// What the hook did, when one ran after the rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    hook: Option<&'a crate::hook::HookRun>,
    /// When the hook failed: the `siprot exec` command that runs it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_rerun: Option<&'a str>,
}

impl<'a> CredentialJson<'a> {
    fn new(result: &'a FleetResult<'a>) -> Self {
        let mut json = Self {
            kind: "credential",
            line: result.entry.line,
            provider: result.entry.provider.name(),
            credential: result.entry.credential.id(),
            device: result.entry.credential.device(),
            keyring_entry: result.keyring_entry.as_ref(),
            status: "failed",
            exit_code: result.exit_code(),
            attempts: result.attempts,
            keyring_writes: None,
            rotated_at: None,
            last_rotated: None,
            clock_skew_seconds: None,
            outcome_unknown: false,
            last_attempt: None,
            error: None,
            verification_result: None,
            verification: None,
            verification_problem: None,
            hook: result.hook.as_ref().map(|hooked| &hooked.run),
            hook_rerun: None,
        };
        if let Some((result_name, problem)) = verification_verdict(result) {
            json.verification_result = Some(result_name);
            json.verification_problem = Some(problem).filter(|p| !p.is_empty());
        }
        if let FleetVerification::Done(verified) = &result.verification
            && let (Some(target), Ok(checks)) = (&verified.target, &verified.checks)
        {
            json.verification = Some(verify_command::json(checks, target));
        }
        if let Some(unknown) = &result.outcome_unknown {
            json.outcome_unknown = true;
            json.last_attempt = Some(unknown.since.to_string());
        }
        if let Some(skew) = &result.clock_skew {
            json.last_rotated = Some(skew.last_rotated.to_string());
            json.clock_skew_seconds = Some(skew.ahead.as_secs());
        }
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
            Outcome::NotAttempted { .. } => json.status = "not-attempted",
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
