//! Rotating many credentials at once: the same per-credential protocol as one
//! `rotate`, run concurrently with a bound per provider account (provider and profile).
//!
//! Each provider account (a provider in one profile, [`crate::settings`]) gets its own
//! queue, client and `concurrency` workers that take credentials from it one at a time,
//! so the number of live futures is bounded by accounts × concurrency whatever the size
//! of the fleet, and one slow or rate-limiting provider never holds up another (each
//! account's HTTP client also pauses all its requests when the provider answers 429 or
//! 503). A credential's failure is recorded and the workers go on: it never
//! stops or touches another credential.
//!
//! After SIGINT, SIGTERM or SIGHUP ([`crate::interrupt`]) no worker starts another
//! credential: the rotations in flight finish (or stop before their request), and every
//! credential not started is reported as [`Outcome::NotAttempted`].
//!
//! With `--verify`, a credential whose entry names a registrar is verified after its
//! rotation ([`crate::rollback::after_rotation`], no rollback) by a separate pool of
//! verifiers, so that a slow or waiting registrar (`--verify-wait`) never holds a
//! provider's worker: the provider's concurrency bounds its requests, and the next
//! rotation starts while the last one is being verified. Its result is reported once
//! verified. A signal stops verifiers from starting another verification.
//!
//! With a hook (`--exec`, or the inventory's `exec`: [`FleetOptions::hook_of`]) each
//! credential's hook runs right after its rotation stored the new password, inside that
//! credential's task, so the per-provider bound holds for hooks too; a failed hook marks
//! its credential ([`FleetResult::exit_code`] 11) and touches nothing else.
//!
//! A last rotation dated in the future beyond [`crate::state::FUTURE_TOLERANCE`] (a clock
//! that ran ahead, or a forged audit line) gives no age to compare with a maximum age:
//! the credential is rotated as overdue and its result says why ([`ClockSkew`]).
//!
//! A credential whose outcome is unknown by its audit log
//! ([`crate::state::History::outcome_unknown`]: a rotation cut off by SIGKILL or a power
//! loss with its request in flight, or a Telepath rotation left unconfirmed by a 5xx or a
//! timeout after sending) is due now whatever its age: the provider may hold a password
//! no store has (Telepath's lost answer), so skipping it as "rotated recently" would
//! leave a dead password in place behind a green run. Its result says why
//! ([`OutcomeUnknown`]).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::error::{Error, ExitCode, Result, exit};
use crate::hook::{self, HookSpec, Hooked};
use crate::http::Attempts;
use crate::interrupt::{self, Signal};
use crate::inventory::InventoryEntry;
use crate::profiles::ProfileName;
use crate::providers::{Provider, ProviderKind};
use crate::recovery::Connect;
use crate::rollback::{self, Plan, Verified};
use crate::rotation::{self, PasswordSource, RotationInput, RotationReport, RotationStatus};
use crate::settings::{Accounts, Settings};
use crate::state::{History, RecordAge, StateDir};
use crate::store::{EntryName, SecretStore};

/// Default number of concurrent rotations per provider account.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How to run the fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Concurrent rotations per provider account.
    pub concurrency: usize,
    /// Skip credentials rotated more recently than this (beats each entry's `max_age`).
    pub if_older_than: Option<jiff::SignedDuration>,
    pub dry_run: bool,
    /// With `--verify`: the verify step of each entry that names a registrar, by the
    /// entry's line; `None` without `--verify`.
    pub verify: Option<HashMap<usize, Plan>>,
    /// `--exec`: the hook of every credential (beats the inventory's).
    pub exec: Option<String>,
    /// The inventory's file-wide `exec`, for entries without their own.
    pub default_exec: Option<String>,
    /// `--exec-timeout`.
    pub exec_timeout: std::time::Duration,
}

impl FleetOptions {
    /// The hook of `entry`: `--exec`, else the entry's `exec`, else the file's.
    pub fn hook_of(&self, entry: &InventoryEntry) -> Option<HookSpec> {
        let command = self
            .exec
            .as_ref()
            .or(entry.exec.as_ref())
            .or(self.default_exec.as_ref())?;
        Some(HookSpec {
            command: command.clone(),
            timeout: self.exec_timeout,
        })
    }
}

/// What came of `--verify` for one credential.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetVerification {
    /// No `--verify`, or the credential was not rotated (skipped, failed, not attempted).
    NotAsked,
    /// Rotated, but its entry names no registrar: not verified.
    NoRegistrar,
    /// Verified, or tried to be.
    Done(Box<Verified>),
    /// Not run: a dry run, or a signal came first.
    NotRun(&'static str),
}

/// What happened to one credential.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Rotated (or resumed, or planned on a dry run).
    Done(Box<RotationReport>),
    /// Rotated recently enough: left alone.
    Skipped {
        last_rotated: jiff::Timestamp,
        max_age: jiff::SignedDuration,
    },
    /// Failed; `exit_code` says how (9: the password may be live and needs recovery).
    Failed {
        message: String,
        exit_code: ExitCode,
    },
    /// Not started, or stopped before its request was sent, because of this signal:
    /// nothing was sent and nothing changed.
    NotAttempted { signal: Signal },
}

/// A last rotation dated in the future: why a credential with a maximum age was rotated.
#[derive(Debug, Clone, Copy)]
pub struct ClockSkew {
    pub last_rotated: jiff::Timestamp,
    /// How far in the future it is dated.
    pub ahead: jiff::SignedDuration,
}

/// The audit log leaves the provider's password unknown: why a credential was rotated
/// whatever its age.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeUnknown {
    /// When the record that made it unknown was written (an `in-progress` one: just
    /// before its request).
    pub since: jiff::Timestamp,
    /// What that record says ([`crate::state::Attempt::unknown_cause`]), after "its last
    /// rotation".
    pub cause: &'static str,
}

/// One credential's result.
#[derive(Debug)]
pub struct FleetResult<'a> {
    pub entry: &'a InventoryEntry,
    /// The keyring entry of its current password, when it could be named.
    pub keyring_entry: Option<EntryName>,
    pub attempts: u32,
    pub outcome: Outcome,
    /// Set when the audit log's last rotation is dated in the future.
    pub clock_skew: Option<ClockSkew>,
    /// Set when the audit log's last rotation attempt was cut off (outcome unknown).
    pub outcome_unknown: Option<OutcomeUnknown>,
    pub verification: FleetVerification,
    /// The hook, when one ran after the rotation.
    pub hook: Option<Hooked>,
}

impl FleetResult<'_> {
    /// 0 for done and skipped, 11 for done with a failed hook, the signal's code when
    /// not attempted, else the failure's exit code.
    pub fn exit_code(&self) -> ExitCode {
        match &self.outcome {
            Outcome::Failed { exit_code, .. } => *exit_code,
            Outcome::NotAttempted { signal } => signal.exit_code(),
            _ => self
                .hook
                .as_ref()
                .map_or(exit::SUCCESS, |hooked| hooked.run.exit_code()),
        }
    }

    /// Whether its hook ran and failed.
    pub fn hook_failed(&self) -> bool {
        self.hook.as_ref().is_some_and(|hooked| !hooked.run.ok())
    }
}

/// Which account an entry is rotated in: its provider and its profile (`None`: the
/// command's). Each account has its own queue, client and `--concurrency` workers.
type AccountKey = (&'static str, Option<ProfileName>);

fn account_of(entry: &InventoryEntry) -> AccountKey {
    (entry.provider.name(), entry.profile.clone())
}

/// One account's queue: its settings (for entry names) and its entries.
struct Account<'a> {
    kind: ProviderKind,
    settings: Result<Settings>,
    queue: VecDeque<&'a InventoryEntry>,
}

/// Rotates `entries`, calling `report` with each result as soon as it is known.
pub async fn rotate<'a>(
    entries: &[&'a InventoryEntry],
    accounts: &Accounts,
    connect: &Connect<'_>,
    store: &dyn SecretStore,
    state: &StateDir,
    options: &FleetOptions,
    report: impl FnMut(FleetResult<'a>),
) {
    let report = RefCell::new(report);
    let histories = state.histories(store.service());
    let mut queues: BTreeMap<AccountKey, Account<'a>> = BTreeMap::new();
    for entry in entries {
        queues
            .entry(account_of(entry))
            .or_insert_with(|| Account {
                kind: entry.provider,
                settings: Err(Error::Usage("not resolved".into())),
                queue: VecDeque::new(),
            })
            .queue
            .push_back(entry);
    }
    for (key, account) in &mut queues {
        account.settings = accounts
            .with_secrets(account.kind, key.1.as_ref(), store)
            .await;
    }
    // One check of the store for the whole fleet where the store can (see
    // `SecretStore::prepare`); each rotation still checks what this could not.
    let names: Vec<EntryName> = queues
        .values()
        .filter_map(|account| {
            let settings = account.settings.as_ref().ok()?;
            Some(account.queue.iter().filter_map(move |entry| {
                entry.provider.entry_name(&entry.credential, settings).ok()
            }))
        })
        .flatten()
        .collect();
    store.prepare(&names).await;
    let mut clients: HashMap<AccountKey, Box<dyn Provider>> = HashMap::new();
    let mut ready: Vec<(AccountKey, Settings, RefCell<VecDeque<&'a InventoryEntry>>)> = Vec::new();
    for (key, account) in queues {
        let connected = account
            .settings
            .and_then(|settings| connect(&settings).map(|client| (settings, client)));
        match connected {
            Ok((settings, client)) => {
                clients.insert(key.clone(), client);
                ready.push((key, settings, RefCell::new(account.queue)));
            }
            Err(error) => {
                for entry in account.queue {
                    report.borrow_mut()(failed(entry, None, 0, &error));
                }
            }
        }
    }
    let queues = ready;
    // Rotated credentials waiting for their verification.
    let to_verify: RefCell<VecDeque<(FleetResult<'a>, Plan)>> = RefCell::default();
    let rotations_done = Cell::new(false);
    let mut workers = FuturesUnordered::new();
    for (key, settings, queue) in &queues {
        let Some(client) = clients.get(key) else {
            continue;
        };
        let workers_here = options.concurrency.max(1).min(queue.borrow().len());
        for _ in 0..workers_here {
            workers.push(async {
                loop {
                    if interrupt::received().is_some() {
                        break;
                    }
                    let next = queue.borrow_mut().pop_front();
                    let Some(entry) = next else { break };
                    let mut result = rotate_one(
                        entry,
                        settings,
                        client.as_ref(),
                        store,
                        state,
                        options,
                        &histories,
                    )
                    .await;
                    match verify_step(&mut result, options) {
                        Some(plan) => to_verify.borrow_mut().push_back((result, plan)),
                        None => report.borrow_mut()(result),
                    }
                }
            });
        }
    }
    let rotating = async {
        while workers.next().await.is_some() {}
        rotations_done.set(true);
    };
    // As many verifiers as rotation workers, and at least the default concurrency.
    let verifiers_wanted = match &options.verify {
        Some(plans) if !plans.is_empty() => (options.concurrency.max(1) * clients.len().max(1))
            .max(DEFAULT_CONCURRENCY)
            .min(plans.len()),
        _ => 0,
    };
    let mut verifiers = FuturesUnordered::new();
    for _ in 0..verifiers_wanted {
        verifiers.push(async {
            loop {
                let next = to_verify.borrow_mut().pop_front();
                let Some((mut result, plan)) = next else {
                    if rotations_done.get() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                result.verification =
                    match (&result.outcome, clients.get(&account_of(result.entry))) {
                        _ if interrupt::received().is_some() => {
                            FleetVerification::NotRun("interrupted")
                        }
                        (Outcome::Done(done), Some(client)) => {
                            let Some(name) = result.keyring_entry.clone() else {
                                report.borrow_mut()(result);
                                continue;
                            };
                            let context = rollback::Context {
                                provider: client.as_ref(),
                                credential: &result.entry.credential,
                                name: &name,
                                store,
                                state,
                            };
                            let verified = rollback::after_rotation(plan, done, &context).await;
                            FleetVerification::Done(Box::new(verified))
                        }
                        _ => FleetVerification::NotAsked,
                    };
                report.borrow_mut()(result);
            }
        });
    }
    let verifying = async { while verifiers.next().await.is_some() {} };
    futures_util::future::join(rotating, verifying).await;
    if let Some(signal) = interrupt::received() {
        for (_, settings, queue) in &queues {
            for entry in queue.borrow_mut().drain(..) {
                report.borrow_mut()(FleetResult {
                    entry,
                    keyring_entry: entry.provider.entry_name(&entry.credential, settings).ok(),
                    attempts: 0,
                    outcome: Outcome::NotAttempted { signal },
                    clock_skew: None,
                    outcome_unknown: None,
                    verification: FleetVerification::NotAsked,
                    hook: None,
                });
            }
        }
    }
}

/// Whether a credential is due for rotation by its age ([`age_check`]).
#[derive(Debug)]
pub enum AgeCheck {
    /// Rotated less than `max_age` ago: skipped.
    Recent {
        last_rotated: jiff::Timestamp,
        max_age: jiff::SignedDuration,
    },
    /// Due: no maximum age, no rotation on record, or one at least that old.
    Due,
    /// Due: its last rotation is dated in the future, so it has no age to compare.
    Skewed(ClockSkew),
    /// Due now, whatever its age: by the audit log the provider's password is unknown (a
    /// rotation cut off with its request in flight, a Telepath one left unconfirmed), so
    /// the password the store holds may be dead.
    Unknown(OutcomeUnknown),
}

/// Whether `entry` (named `name`) is skipped by its age now: rotated less than
/// `if_older_than` ago (`--if-older-than`), or else its `max_age`, by its history in
/// the audit log ([`StateDir::histories`]); never when the outcome is unknown
/// ([`History::outcome_unknown`]). The fleet's own test, also used to count what a fleet would rotate before it
/// starts.
pub fn age_check(
    entry: &InventoryEntry,
    name: &EntryName,
    if_older_than: Option<jiff::SignedDuration>,
    histories: &HashMap<String, History>,
) -> AgeCheck {
    let history = histories.get(name.current());
    if let Some(attempt) = history.and_then(|h| h.outcome_unknown(entry.provider.origin())) {
        return AgeCheck::Unknown(OutcomeUnknown {
            since: attempt.time,
            cause: attempt.unknown_cause(),
        });
    }
    let Some(max_age) = if_older_than.or(entry.max_age) else {
        return AgeCheck::Due;
    };
    let Some(last) = history.and_then(|h| h.last_rotated.as_ref()) else {
        return AgeCheck::Due;
    };
    match RecordAge::of(*last, jiff::Timestamp::now()) {
        RecordAge::Known(age) if age < max_age => AgeCheck::Recent {
            last_rotated: *last,
            max_age,
        },
        RecordAge::Known(_) => AgeCheck::Due,
        RecordAge::Future(ahead) => AgeCheck::Skewed(ClockSkew {
            last_rotated: *last,
            ahead,
        }),
    }
}

async fn rotate_one<'a>(
    entry: &'a InventoryEntry,
    settings: &Settings,
    provider: &dyn Provider,
    store: &dyn SecretStore,
    state: &StateDir,
    options: &FleetOptions,
    histories: &HashMap<String, History>,
) -> FleetResult<'a> {
    let keyring_entry = match entry.provider.entry_name(&entry.credential, settings) {
        Ok(name) => name,
        Err(error) => return failed(entry, None, 0, &error),
    };
    let (mut clock_skew, mut outcome_unknown) = (None, None);
    match age_check(entry, &keyring_entry, options.if_older_than, histories) {
        AgeCheck::Recent {
            last_rotated,
            max_age,
        } => {
            return FleetResult {
                entry,
                keyring_entry: Some(keyring_entry),
                attempts: 0,
                outcome: Outcome::Skipped {
                    last_rotated,
                    max_age,
                },
                clock_skew: None,
                outcome_unknown: None,
                verification: FleetVerification::NotAsked,
                hook: None,
            };
        }
        AgeCheck::Due => {}
        AgeCheck::Skewed(skew) => clock_skew = Some(skew),
        AgeCheck::Unknown(unknown) => outcome_unknown = Some(unknown),
    }
    let attempts = Attempts::new();
    let input = RotationInput {
        source: PasswordSource::Generate { length: None },
        description: entry.description_now(),
        dry_run: options.dry_run,
        attempts: attempts.clone(),
    };
    let result = rotation::rotate(
        provider,
        &entry.credential,
        &keyring_entry,
        store,
        state,
        input,
    )
    .await;
    let mut hooked = None;
    let outcome = match result {
        Ok(mut report) => {
            if let Some(spec) = options.hook_of(entry) {
                hooked = hook::after_rotation(spec, &mut report, state).await;
            }
            Outcome::Done(Box::new(report))
        }
        Err(Error::Interrupted { signal, .. }) => Outcome::NotAttempted { signal },
        Err(error) => failed(entry, None, 0, &error).outcome,
    };
    FleetResult {
        entry,
        keyring_entry: Some(keyring_entry),
        attempts: attempts.count(),
        outcome,
        clock_skew,
        outcome_unknown,
        verification: FleetVerification::NotAsked,
        hook: hooked,
    }
}

/// Settles `--verify` for a result: the plan to run when it was rotated and its entry
/// names a registrar (and no signal came); otherwise its verification as it stands.
fn verify_step(result: &mut FleetResult<'_>, options: &FleetOptions) -> Option<Plan> {
    let plans = options.verify.as_ref()?;
    let Outcome::Done(report) = &mut result.outcome else {
        return None;
    };
    let Some(plan) = plans.get(&result.entry.line) else {
        result.verification = FleetVerification::NoRegistrar;
        return None;
    };
    if report.status == RotationStatus::DryRun {
        report.plan.push(plan.describe());
        result.verification = FleetVerification::NotRun("dry run");
        return None;
    }
    if interrupt::received().is_some() {
        result.verification = FleetVerification::NotRun("interrupted");
        return None;
    }
    // Store, hook, verify: a device the hook did not update would only fail.
    if result.hook_failed() {
        result.verification = FleetVerification::NotRun("the hook failed");
        return None;
    }
    Some(plan.clone())
}

fn failed<'a>(
    entry: &'a InventoryEntry,
    keyring_entry: Option<EntryName>,
    attempts: u32,
    error: &Error,
) -> FleetResult<'a> {
    FleetResult {
        entry,
        keyring_entry,
        attempts,
        outcome: Outcome::Failed {
            message: error.to_string(),
            exit_code: error.exit_code(),
        },
        clock_skew: None,
        outcome_unknown: None,
        verification: FleetVerification::NotAsked,
        hook: None,
    }
}
