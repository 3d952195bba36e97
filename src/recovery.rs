//! Finishing what interrupted rotations left behind (`siprot recover`).
//!
//! Two things can hold a password that is live at a provider but not current in the
//! keyring:
//! - a `#pending` entry (client-set providers): finished by resending the same password
//!   and promoting it, exactly as a rerun of `rotate` would;
//! - a recovery file (Telepath, when the keyring failed after the provider answered):
//!   its password is written to the keyring entry named in it and read back, and only
//!   then is the file removed.
//!
//! What happens to a recovery file is decided from what the keyring holds, never from
//! the times in the file or in the audit log (a clock stepped back, or a forged line,
//! must not get a live password deleted). A file is removed only when the keyring holds
//! its password: as current (a copy), or in `#previous` while current holds another (a
//! later rotation replaced it and kept it there). One remaining file of an entry is
//! installed when the keyring shows that nothing rotated the entry since it was written:
//! the current password is absent or still the one backed up to `#previous` before that
//! request. `rotate` refuses to start a Telepath rotation while a recovery file of the
//! same entry exists, so that this stays provable; several remaining files of one entry,
//! or an entry changed otherwise, are a conflict left for the operator, never a guess.
//!
//! A file siprot would not have written under the present configuration (another
//! keyring service, an entry that is not a server-generated provider's credential, a
//! provider that does not match its entry, a file name not made from its entry) is
//! refused: nothing from it is stored anywhere.
//!
//! Leftover `#probe` entries (a throw-away secret proving the keyring writable) are
//! removed.
//!
//! A recovery file whose password recover stores (or finds stored as current) finishes
//! the rotation it came from: recover appends a `resumed` record to the audit log, which
//! supersedes the `unconfirmed` one that rotation left (a `#pending` resent goes through
//! the rotation, which records it the same way).
//!
//! A server-generated credential whose outcome the audit log leaves unknown
//! ([`crate::state::History::outcome_unknown`]: a rotation cut off by SIGKILL or a power
//! loss with its request in flight, or one left `unconfirmed` by a 5xx or a timeout after
//! sending, with no successful rotation since) and that no recovery file settles is
//! reported, never passed over: the provider may have replaced the password and its
//! answer is lost, so the store may hold a dead one. Nothing here can get the new one
//! back; the item (exit 9) names the `rotate` that restores service
//! ([`Item::next_step`]).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditAction, AuditOutcome};
use crate::error::{Error, ExitCode, Result, exit};
use crate::http::Attempts;
use crate::lock::CredentialLock;
use crate::providers::{self, CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::rotation::{self, PasswordSource, RotationInput, RotationStatus};
use crate::settings::{Accounts, Settings};
use crate::state::{self, Attempt, AuditRecord, RecoveryFile, StateDir};
use crate::store::{EntryName, Facts, Holder, Precondition, Record, SecretStore, Slot, Stored};

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemKind {
    Pending,
    RecoveryFile,
    Probe,
    /// A shared store's claim of a server-generated rotation (no password).
    Claim,
    /// A server-generated rotation whose outcome is unknown (cut off with its request in
    /// flight, or left unconfirmed): the store may hold a dead password.
    OutcomeUnknown,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Pending => "pending",
            ItemKind::RecoveryFile => "recovery_file",
            ItemKind::Probe => "probe",
            ItemKind::Claim => "claim",
            ItemKind::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// What happened to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemOutcome {
    /// The pending password was resent and is now current.
    Finished,
    /// The recovery file's password is now current; the file is gone.
    Stored,
    /// The keyring already held the recovery file's password; the file is gone.
    AlreadyStored,
    /// A later rotation replaced this password at the provider and the keyring keeps it
    /// in `#previous`; the file is gone.
    Superseded,
    /// Nothing was pending any more (another run finished it).
    Gone,
    /// A probe entry was removed.
    Removed,
    /// A claim this host's run left in a shared store was removed (no recovery file of
    /// its entry remained).
    Cleared,
    /// A claim another host's run holds in a shared store; left alone.
    Held,
    /// `--dry-run`: what would be done.
    WouldRecover,
    /// Could not be recovered now; see the message and exit code.
    Failed,
    /// The keyring changed since the file was written; the operator decides.
    Conflict,
    /// A recovery file siprot would not have written; nothing from it is stored.
    Refused,
    /// The provider may hold a password no store has: only a new rotation
    /// ([`Item::next_step`]) restores service.
    RotateAgain,
}

impl ItemOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Finished => "finished",
            ItemOutcome::Stored => "stored",
            ItemOutcome::AlreadyStored => "already-stored",
            ItemOutcome::Superseded => "superseded",
            ItemOutcome::Gone => "gone",
            ItemOutcome::Removed => "removed",
            ItemOutcome::Cleared => "cleared",
            ItemOutcome::Held => "held",
            ItemOutcome::WouldRecover => "would-recover",
            ItemOutcome::Failed => "failed",
            ItemOutcome::Conflict => "conflict",
            ItemOutcome::Refused => "refused",
            ItemOutcome::RotateAgain => "rotate-again",
        }
    }

    /// Whether the item still needs recovering after this outcome.
    pub fn remains(self) -> bool {
        matches!(
            self,
            ItemOutcome::WouldRecover
                | ItemOutcome::Held
                | ItemOutcome::Failed
                | ItemOutcome::Conflict
                | ItemOutcome::Refused
                | ItemOutcome::RotateAgain
        )
    }
}

/// One thing found and what became of it.
#[derive(Debug)]
pub struct Item {
    pub kind: ItemKind,
    pub service: String,
    /// The keyring entries of the credential it belongs to.
    pub entry: EntryName,
    pub provider: Option<ProviderKind>,
    pub file: Option<PathBuf>,
    pub outcome: ItemOutcome,
    pub message: String,
    /// 0 when done; otherwise the exit code of the failure.
    pub exit_code: ExitCode,
    pub attempts: u32,
    /// The command that settles what recover could not (`siprot rotate --provider ...`),
    /// without the store options, which the command line adds.
    pub next_step: Option<String>,
}

/// Builds a provider client; called at most once per provider.
pub type Connect<'a> = dyn Fn(&Settings) -> Result<Box<dyn Provider>> + 'a;

/// Finds everything there is to recover in `store` and the state directory, and
/// recovers it (or, with `dry_run`, only says what it would do).
pub async fn recover(
    store: &dyn SecretStore,
    state: &StateDir,
    accounts: &Accounts,
    connect: &Connect<'_>,
    dry_run: bool,
) -> Result<Vec<Item>> {
    // An untrusted state directory stops everything before anything is sent or stored.
    state.check()?;
    let slots = store.list().await.map_err(Error::keyring_unavailable)?;
    let mut items = Vec::new();
    let mut claims = Vec::new();
    let mut clients: BTreeMap<&'static str, Result<Box<dyn Provider>>> = BTreeMap::new();
    for (entry, slot) in &slots {
        match slot {
            Slot::Pending => match store.read(entry, Slot::Pending).await {
                Ok(Some(Stored {
                    secret: None,
                    facts,
                    ..
                })) => claims.push((entry, facts)),
                Ok(Some(_)) => {
                    let item = finish_pending(
                        store,
                        state,
                        entry,
                        (accounts, connect),
                        &mut clients,
                        dry_run,
                    )
                    .await;
                    items.push(item);
                }
                Ok(None) => {}
                Err(e) => items.push(failed(
                    item(ItemKind::Pending, store.service(), entry),
                    &Error::keyring_unavailable(e),
                )),
            },
            Slot::Probe => {
                if let Some(item) = remove_probe(store, entry, dry_run).await {
                    items.push(item);
                }
            }
            _ => {}
        }
    }
    items.extend(install_files(store, state, dry_run).await?);
    for (entry, facts) in claims {
        items.push(settle_claim(store, state, entry, facts, dry_run).await);
    }
    let settled: Vec<EntryName> = items
        .iter()
        .filter(|item| matches!(item.kind, ItemKind::RecoveryFile | ItemKind::Pending))
        .map(|item| item.entry.clone())
        .collect();
    items.extend(unknown_outcomes(store.service(), state, &settled, dry_run));
    Ok(items)
}

/// The server-generated credentials of `service` whose outcome the audit log leaves
/// unknown (see the module docs), but for those in `settled` (a recovery file or
/// `#pending` of theirs is an item already). One whose lock a run holds is being rotated
/// now (exit 7), not cut off.
fn unknown_outcomes(
    service: &str,
    state: &StateDir,
    settled: &[EntryName],
    dry_run: bool,
) -> Vec<Item> {
    let mut unknown: Vec<_> = state
        .histories(service)
        .into_iter()
        .filter_map(|(entry, history)| {
            let (kind, credential) = providers::parse_entry(&entry).ok().flatten()?;
            let attempt = history.outcome_unknown(kind.origin())?.clone();
            let entry = EntryName::new(entry);
            (kind.origin() == PasswordOrigin::ServerGenerated && !settled.contains(&entry))
                .then_some((entry, attempt, kind, credential))
        })
        .collect();
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    unknown
        .into_iter()
        .map(|(entry, attempt, kind, credential)| {
            unknown_outcome(
                service,
                state,
                (&entry, &attempt),
                (kind, &credential),
                dry_run,
            )
        })
        .collect()
}

/// The item of one credential whose outcome is unknown (see [`unknown_outcomes`]).
fn unknown_outcome(
    service: &str,
    state: &StateDir,
    (entry, attempt): (&EntryName, &Attempt),
    (kind, credential): (ProviderKind, &CredentialRef),
    dry_run: bool,
) -> Item {
    let mut found = item(ItemKind::OutcomeUnknown, service, entry);
    found.provider = Some(kind);
    if let Err(error) = CredentialLock::unless_dry_run(dry_run, state, service, entry.current()) {
        return failed(found, &error);
    }
    let mut words = vec![
        "siprot rotate --provider".to_owned(),
        kind.name().to_owned(),
        crate::hook::shell_quote(credential.id()),
    ];
    if let Some((flag, value)) = credential.part_args() {
        words.extend([flag.to_owned(), crate::hook::shell_quote(value)]);
    }
    found.outcome = ItemOutcome::RotateAgain;
    found.exit_code = exit::UNCONFIRMED;
    found.next_step = Some(words.join(" "));
    found.message = format!(
        "outcome unknown: the last rotation of '{entry}' ({} record of {}) {}: {kind} may \
         have replaced the password and its answer is lost, so the one stored may be dead; \
         nothing can get it back: rotate it again",
        attempt.outcome,
        attempt.time,
        attempt.unknown_cause()
    );
    found
}

/// A claim (no password) a server-generated rotation left in a shared store. This host's
/// own is removed once no recovery file of its entry remains (the files were settled
/// first) and no run of this host holds the credential's lock (one in flight keeps its
/// claim; exit 7): the rotation stopped before it stored a password, so nothing is lost by
/// removing it, but the provider may have rotated. Another host's is left alone: only
/// that host can tell whether its run is still going or left a recovery file.
async fn settle_claim(
    store: &dyn SecretStore,
    state: &StateDir,
    entry: &EntryName,
    facts: Facts,
    dry_run: bool,
) -> Item {
    let mut found = item(ItemKind::Claim, store.service(), entry);
    found.provider = providers::parse_entry(entry.current())
        .ok()
        .flatten()
        .map(|(kind, _)| kind);
    let place = store.locate(entry, Slot::Pending);
    let here = match Holder::here(state) {
        Ok(here) => here,
        Err(error) => return failed(found, &error),
    };
    if !here.owns(facts.holder.as_ref()) {
        let whose = match &facts.holder {
            Some(holder) => format!("a claim of {holder}: run `siprot recover` there"),
            None => "a claim that names no holder, so it cannot be this host's".to_owned(),
        };
        found.outcome = ItemOutcome::Held;
        found.exit_code = exit::TRANSIENT;
        found.message = format!(
            "{place} is {whose} (only its host knows whether its run is going or left a \
             recovery file); if that host and its state are gone, delete the claim by hand"
        );
        return found;
    }
    // A run of this host in flight holds the credential's lock: its claim is no leftover.
    let _lock =
        match CredentialLock::unless_dry_run(dry_run, state, store.service(), entry.current()) {
            Ok(lock) => lock,
            Err(error) => return failed(found, &error),
        };
    match state.recovery_files_of(store.service(), entry.current()) {
        Ok(files) if !files.is_empty() => {
            found.outcome = ItemOutcome::Failed;
            found.exit_code = exit::UNCONFIRMED;
            found.file = files.into_iter().next();
            found.message =
                format!("{place} stays: a recovery file of '{entry}' remains (see its own item)");
            return found;
        }
        Ok(_) => {}
        Err(error) => return failed(found, &error),
    }
    let stopped = "a rotation from this host stopped before it stored a password; if it \
                   reached the provider, the password it got is lost: rotate again";
    if dry_run {
        found.outcome = ItemOutcome::WouldRecover;
        found.message = format!("would remove the claim in {place} ({stopped})");
        return found;
    }
    match store.delete(entry, Slot::Pending).await {
        Ok(_) => {
            found.outcome = ItemOutcome::Cleared;
            found.message = format!("removed the claim in {place}: {stopped}");
            found
        }
        Err(e) => failed(found, &Error::keyring_unavailable(e)),
    }
}

fn item(kind: ItemKind, service: &str, entry: &EntryName) -> Item {
    Item {
        kind,
        service: service.to_owned(),
        entry: entry.clone(),
        provider: None,
        file: None,
        outcome: ItemOutcome::Failed,
        message: String::new(),
        exit_code: exit::SUCCESS,
        attempts: 0,
        next_step: None,
    }
}

fn failed(mut item: Item, error: &Error) -> Item {
    item.outcome = ItemOutcome::Failed;
    item.message = error.to_string();
    item.exit_code = error.exit_code();
    item
}

async fn finish_pending(
    store: &dyn SecretStore,
    state: &StateDir,
    entry: &EntryName,
    (accounts, connect): (&Accounts, &Connect<'_>),
    clients: &mut BTreeMap<&'static str, Result<Box<dyn Provider>>>,
    dry_run: bool,
) -> Item {
    let mut found = item(ItemKind::Pending, store.service(), entry);
    let pending = store.locate(entry, Slot::Pending);
    let (kind, credential) = match providers::credential_of_entry(entry.current(), accounts) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            let error = Error::Unconfirmed {
                message: format!(
                    "{pending} is not the entry of a provider siprot knows: inspect it by \
                     hand"
                ),
                recovery_file: None,
            };
            return failed(found, &error);
        }
        Err(error) => return failed(found, &error),
    };
    found.provider = Some(kind);
    if kind.origin() != PasswordOrigin::ClientSupplied {
        let error = Error::Unconfirmed {
            message: format!(
                "{kind} never stages a password, so {pending} was not written by siprot's \
                 rotation: inspect it by hand"
            ),
            recovery_file: None,
        };
        return failed(found, &error);
    }
    let connected = match clients.entry(kind.name()) {
        Entry::Occupied(known) => known.into_mut(),
        Entry::Vacant(new) => {
            let connected = match accounts.with_secrets(kind, None, store).await {
                Ok(settings) => connect(&settings),
                Err(error) => Err(error),
            };
            new.insert(connected)
        }
    };
    let provider = match connected {
        Ok(provider) => provider,
        Err(error) => {
            let message = format!("cannot reach {kind}: {error}");
            found.outcome = ItemOutcome::Failed;
            found.message = message;
            found.exit_code = error.exit_code();
            return found;
        }
    };
    let attempts = Attempts::new();
    let input = RotationInput {
        source: PasswordSource::PendingOnly,
        description: None,
        dry_run,
        attempts: attempts.clone(),
    };
    let result = rotation::rotate(provider.as_ref(), &credential, entry, store, state, input).await;
    found.attempts = attempts.count();
    match result {
        Ok(report) => {
            let (outcome, message) = match report.status {
                RotationStatus::NothingPending => {
                    (ItemOutcome::Gone, "nothing is pending any more".to_owned())
                }
                RotationStatus::DryRun => (
                    ItemOutcome::WouldRecover,
                    format!(
                        "would resend the pending password ({}) and make it current",
                        provider.describe_rotation(&credential).unwrap_or_default()
                    ),
                ),
                _ => (
                    ItemOutcome::Finished,
                    "the pending password was confirmed by the provider and is now current"
                        .to_owned(),
                ),
            };
            found.outcome = outcome;
            found.message = message;
            found
        }
        Err(error) => failed(found, &error),
    }
}

async fn remove_probe(store: &dyn SecretStore, entry: &EntryName, dry_run: bool) -> Option<Item> {
    let mut found = item(ItemKind::Probe, store.service(), entry);
    let place = store.locate(entry, Slot::Probe);
    found.provider = providers::parse_entry(entry.current())
        .ok()
        .flatten()
        .map(|(kind, _)| kind);
    if dry_run {
        found.outcome = ItemOutcome::WouldRecover;
        found.message = format!("would remove the leftover probe {place}");
        return Some(found);
    }
    match store.delete(entry, Slot::Probe).await {
        Ok(false) => None,
        Ok(true) => {
            found.outcome = ItemOutcome::Removed;
            found.message = format!("removed the leftover probe {place}");
            Some(found)
        }
        Err(e) => Some(failed(found, &Error::keyring_unavailable(e))),
    }
}

/// Installs the recovery files of each entry of the configured keyring service, after
/// refusing those siprot would not have written (see the module docs).
async fn install_files(
    store: &dyn SecretStore,
    state: &StateDir,
    dry_run: bool,
) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut by_entry: BTreeMap<EntryName, Vec<RecoveryFile>> = BTreeMap::new();
    for file in state.recovery_files()? {
        match file {
            Ok(file) => match refusal(store.service(), &file) {
                None => by_entry
                    .entry(EntryName::new(file.entry.as_str()))
                    .or_default()
                    .push(file),
                Some(reason) => {
                    let mut found = file_item(store.service(), &file);
                    found.service.clone_from(&file.service);
                    found.outcome = ItemOutcome::Refused;
                    found.message = format!(
                        "{}: {reason}; siprot would not have written it under the present \
                         configuration and stores nothing from it: inspect it by hand",
                        file.path.display()
                    );
                    found.exit_code = exit::UNCONFIRMED;
                    items.push(found);
                }
            },
            Err((path, problem)) => {
                let mut found = item(ItemKind::RecoveryFile, "", &EntryName::new(""));
                found.file = Some(path.clone());
                let error = Error::Unconfirmed {
                    message: format!("{}: {problem}; inspect it by hand", path.display()),
                    recovery_file: Some(path),
                };
                items.push(failed(found, &error));
            }
        }
    }
    for (entry, files) in by_entry {
        items.extend(install_entry(store, state, &entry, files, dry_run).await);
    }
    Ok(items)
}

/// Why siprot would not have written `file` under the present configuration, if so: only
/// a server-generated provider's rotation writes one, into the configured keyring
/// service, under a file name made from its entry.
fn refusal(service: &str, file: &RecoveryFile) -> Option<String> {
    // The file's own strings are shown escaped: a planted file must not write control
    // characters to the terminal.
    let shown = |text: &str| text.escape_debug().to_string();
    if file.service != service {
        return Some(format!(
            "it names keyring service '{}', not the configured '{service}' \
             (SIPROT_KEYRING_SERVICE)",
            shown(&file.service)
        ));
    }
    let entry = &file.entry;
    let entry_shown = shown(entry);
    match providers::parse_entry(entry) {
        Ok(Some((kind, _))) if kind.origin() != PasswordOrigin::ServerGenerated => {
            return Some(format!(
                "its entry '{entry_shown}' is a {kind} credential, and siprot chooses {kind} \
                 passwords itself and never writes a recovery file for them"
            ));
        }
        Ok(Some((kind, _))) if kind.name() != file.provider => {
            return Some(format!(
                "it names provider '{}' but its entry '{entry_shown}' is a {kind} credential",
                shown(&file.provider)
            ));
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            return Some(format!(
                "its entry '{entry_shown}' is not the entry of a provider siprot knows"
            ));
        }
        Err(error) => {
            return Some(format!(
                "its entry is not usable: {}",
                shown(&error.to_string())
            ));
        }
    }
    if !state::recovery_file_name_fits(&file.path, entry) {
        return Some(format!(
            "its file name is not the one siprot gives a file of entry '{entry_shown}'"
        ));
    }
    None
}

fn file_item(service: &str, file: &RecoveryFile) -> Item {
    let mut found = item(
        ItemKind::RecoveryFile,
        service,
        &EntryName::new(file.entry.as_str()),
    );
    found.file = Some(file.path.clone());
    found.provider = ProviderKind::from_name(&file.provider);
    found
}

/// Settles the recovery files of one entry under its lock, from what the keyring holds
/// (never from the times in the files or the audit log):
/// - a file whose password the keyring holds as current is a copy and goes;
/// - one whose password is in `#previous` while current holds another was superseded by
///   a later rotation (which kept it there) and goes;
/// - of the rest, a single file is installed when the entry is untouched since it was
///   written; several are a conflict, since nothing in the keyring says which is live.
async fn install_entry(
    store: &dyn SecretStore,
    state: &StateDir,
    entry: &EntryName,
    files: Vec<RecoveryFile>,
    dry_run: bool,
) -> Vec<Item> {
    let service = store.service();
    let all_failed = |error: &Error| {
        files
            .iter()
            .map(|file| failed(file_item(service, file), error))
            .collect::<Vec<_>>()
    };
    let _lock = match CredentialLock::unless_dry_run(dry_run, state, service, entry.current()) {
        Ok(lock) => lock,
        Err(error) => return all_failed(&error),
    };
    let slots = async {
        let current = store.read(entry, Slot::Current).await?;
        let previous = store.read(entry, Slot::Previous).await?;
        Ok::<_, crate::store::StoreError>((current, previous))
    };
    let (current, previous) = match slots.await {
        Ok(slots) => slots,
        Err(error) => return all_failed(&Error::keyring_unavailable(error)),
    };
    let unchanged = Stored::unchanged(current.as_ref());
    let secret = |slot: Option<Stored>| slot.and_then(|s| s.secret);
    let (current, previous) = (secret(current), secret(previous));
    let passwords: Vec<&SecretString> = files.iter().map(|file| &file.password).collect();
    let verdicts = judge(current.as_ref(), previous.as_ref(), &passwords);
    let mut items = Vec::new();
    let mut unresolved = Vec::new();
    for (file, verdict) in files.into_iter().zip(verdicts) {
        let settled = matches!(verdict, Verdict::AlreadyStored | Verdict::Superseded);
        let (outcome, message) = match described(verdict, entry, &file) {
            Some(described) if settled => described,
            _ => {
                unresolved.push((file, verdict));
                continue;
            }
        };
        let path = file.path.display().to_string();
        let mut found = file_item(service, &file);
        if dry_run {
            found.outcome = ItemOutcome::WouldRecover;
            found.message = format!("{}; would remove {path}", message_stem(outcome));
        } else {
            match remove_file(&file.path) {
                Ok(()) => {
                    found.outcome = outcome;
                    found.message = message;
                    if outcome == ItemOutcome::AlreadyStored {
                        audit_finished(state, service, entry, &file, &mut found.message);
                    }
                }
                Err(error) => found = failed(found, &error),
            }
        }
        items.push(found);
    }
    for (file, verdict) in unresolved {
        let mut found = file_item(service, &file);
        let settled = match described(verdict, entry, &file) {
            Some(conflict) => Ok(conflict),
            None => install(store, entry, &file, unchanged, dry_run).await,
        };
        match settled {
            Ok((outcome, message)) => {
                found.outcome = outcome;
                found.message = message;
                if outcome == ItemOutcome::Conflict {
                    found.exit_code = exit::UNCONFIRMED;
                }
                if outcome == ItemOutcome::Stored {
                    audit_finished(state, service, entry, &file, &mut found.message);
                }
            }
            Err(error) => found = failed(found, &error),
        }
        items.push(found);
    }
    items
}

/// Records in the audit log that the rotation `file` came from is finished: its password
/// is the entry's current one (outcome `resumed`, no request sent). That record
/// supersedes the `unconfirmed` (or `in-progress`) one the rotation left, which made its
/// outcome unknown ([`crate::state::History::outcome_unknown`]). A failure to write it is
/// added to `message`, as a rotation adds it to its warnings.
fn audit_finished(
    state: &StateDir,
    service: &str,
    entry: &EntryName,
    file: &RecoveryFile,
    message: &mut String,
) {
    let recorded = state.audit(&AuditRecord {
        time: jiff::Timestamp::now().to_string(),
        service: Some(service),
        provider: &file.provider,
        entry: entry.current(),
        action: AuditAction::Rotate,
        outcome: AuditOutcome::Resumed,
        request_id: None,
        attempts: Some(0),
        exit_code: exit::SUCCESS,
        username: None,
        registrar: None,
    });
    if let Err(error) = recorded {
        message.push_str(&format!("; audit log not written: {error}"));
    }
}

/// The outcome and message of a recovery file of `entry` under `verdict`; `None` for
/// one to install, whose outcome [`install`] tells.
fn described(
    verdict: Verdict,
    entry: &EntryName,
    file: &RecoveryFile,
) -> Option<(ItemOutcome, String)> {
    let path = file.path.display();
    let previous = entry.slot(Slot::Previous);
    let provider = &file.provider;
    Some(match verdict {
        Verdict::AlreadyStored => (
            ItemOutcome::AlreadyStored,
            format!("the keyring already held the password; removed {path}"),
        ),
        Verdict::Superseded => (
            ItemOutcome::Superseded,
            format!(
                "a later rotation moved this password to '{previous}' and stored another as \
                 current: it is dead at {provider} and the keyring keeps it; removed {path}"
            ),
        ),
        Verdict::Several(n) => (
            ItemOutcome::Conflict,
            format!(
                "{n} recovery files hold different passwords for '{entry}' and the keyring \
                 shows none of them superseded: check which one {provider} accepts, store it, \
                 then delete the files"
            ),
        ),
        Verdict::Changed => (
            ItemOutcome::Conflict,
            format!(
                "keyring entry '{}' changed after {path} was written (its current password is \
                 not the one kept in '#previous'): check which password {provider} accepts, \
                 store it, then delete the file",
                file.entry
            ),
        ),
        Verdict::Install => return None,
    })
}

/// What becomes of one of an entry's recovery files, judged from the keyring alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The keyring holds its password as current: the file is a copy and goes.
    AlreadyStored,
    /// `#previous` holds its password while current holds another: a later rotation
    /// replaced it (and kept it there); the file goes.
    Superseded,
    /// The one remaining file of an entry nobody rotated since it was written: its
    /// password is stored as current.
    Install,
    /// The one remaining file of an entry that changed in another way: a conflict.
    Changed,
    /// One of this many remaining files of one entry: a conflict, since nothing in the
    /// keyring says which is live.
    Several(usize),
}

/// Judges the recovery files of one entry (their passwords, in order) from the entry's
/// current and `#previous` passwords; one verdict per file. Never reads a time: see the
/// module docs.
pub(crate) fn judge(
    current: Option<&SecretString>,
    previous: Option<&SecretString>,
    files: &[&SecretString],
) -> Vec<Verdict> {
    let holds = |slot: Option<&SecretString>, secret: &SecretString| {
        slot.is_some_and(|s| s.expose_secret() == secret.expose_secret())
    };
    let settled: Vec<Option<Verdict>> = files
        .iter()
        .map(|password| {
            if holds(current, password) {
                Some(Verdict::AlreadyStored)
            } else if current.is_some() && holds(previous, password) {
                Some(Verdict::Superseded)
            } else {
                None
            }
        })
        .collect();
    let remaining = settled.iter().filter(|v| v.is_none()).count();
    // The Telepath protocol copies current to `#previous` before its request, so an
    // entry nobody touched since still has current == `#previous` (or no current at all).
    let untouched = current.is_none_or(|current| holds(previous, current));
    let rest = if remaining > 1 {
        Verdict::Several(remaining)
    } else if untouched {
        Verdict::Install
    } else {
        Verdict::Changed
    };
    settled.into_iter().map(|v| v.unwrap_or(rest)).collect()
}

fn message_stem(outcome: ItemOutcome) -> &'static str {
    match outcome {
        ItemOutcome::AlreadyStored => "the keyring already holds the password",
        _ => "a later rotation moved the password to '#previous' and stored another as current",
    }
}

fn holds(slot: &Option<SecretString>, secret: &SecretString) -> bool {
    slot.as_ref()
        .is_some_and(|s| s.expose_secret() == secret.expose_secret())
}

/// Stores the one recovery file of an entry that [`judge`] found untouched since the file
/// was written, reads it back, then removes the file.
async fn install(
    store: &dyn SecretStore,
    entry: &EntryName,
    file: &RecoveryFile,
    unchanged: Precondition,
    dry_run: bool,
) -> Result<(ItemOutcome, String)> {
    let path = file.path.display();
    let place = store.locate(entry, Slot::Current);
    if dry_run {
        return Ok((
            ItemOutcome::WouldRecover,
            format!("would store the password in {path} as {place} and remove the file"),
        ));
    }
    let credential = providers::parse_entry(entry.current())
        .ok()
        .flatten()
        .map(|(_, credential)| credential);
    let facts = Facts {
        provider: file.provider.clone(),
        credential: credential
            .as_ref()
            .map(|c| c.id().to_owned())
            .unwrap_or_default(),
        device: credential
            .as_ref()
            .and_then(|c| c.device().map(str::to_owned)),
        rotated_at: Some(file.created_at.to_string()),
        ..Facts::default()
    };
    let record = Record {
        secret: Some(&file.password),
        facts: &facts,
    };
    store
        .write(entry, Slot::Current, record, unchanged)
        .await
        .map_err(Error::keyring_unavailable)?;
    let read_back = store
        .read(entry, Slot::Current)
        .await
        .map_err(Error::keyring_unavailable)?
        .and_then(|stored| stored.secret);
    if !holds(&read_back, &file.password) {
        return Err(Error::Unconfirmed {
            message: format!(
                "the {} did not return the password just stored as {place}; {path} is kept",
                store.kind().noun()
            ),
            recovery_file: Some(file.path.clone()),
        });
    }
    remove_file(&file.path)?;
    Ok((
        ItemOutcome::Stored,
        format!("stored as {place} and read back; removed {path}"),
    ))
}

fn remove_file(path: &std::path::Path) -> Result<()> {
    std::fs::remove_file(path)
        .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))
}

/// The exit code of a recovery: 0 when nothing is left, else the highest code among
/// what is left (9 over 8 over 7 ...).
pub fn exit_code(items: &[Item]) -> ExitCode {
    items
        .iter()
        .filter(|i| i.outcome.remains())
        .map(|i| {
            if i.exit_code == exit::SUCCESS {
                exit::UNCONFIRMED
            } else {
                i.exit_code
            }
        })
        .max()
        .unwrap_or(exit::SUCCESS)
}
