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
//! A recovery file is only installed when the keyring shows that nothing rotated the
//! entry since the file was written: the current password is absent or still the one
//! backed up to `#previous` before that request, and the audit log has no later
//! successful rotation. Older files of the same entry hold passwords the provider has
//! already replaced; they go once the newest one is safely stored. Anything else is a
//! conflict left for the operator, never a guess.
//!
//! Leftover `#probe` entries (a throw-away secret proving the keyring writable) are
//! removed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result, exit};
use crate::http::Attempts;
use crate::lock::CredentialLock;
use crate::providers::{self, PasswordOrigin, Provider, ProviderKind};
use crate::rotation::{self, PasswordSource, RotationInput, RotationStatus};
use crate::state::{RecoveryFile, StateDir};
use crate::store::{Keyring, Slot};

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ItemKind {
    Pending,
    RecoveryFile,
    Probe,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Pending => "pending",
            ItemKind::RecoveryFile => "recovery_file",
            ItemKind::Probe => "probe",
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
    /// A newer rotation replaced this password at the provider; the file is gone.
    Superseded,
    /// Nothing was pending any more (another run finished it).
    Gone,
    /// A probe entry was removed.
    Removed,
    /// `--dry-run`: what would be done.
    WouldRecover,
    /// Could not be recovered now; see the message and exit code.
    Failed,
    /// The keyring changed since the file was written; the operator decides.
    Conflict,
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
            ItemOutcome::WouldRecover => "would-recover",
            ItemOutcome::Failed => "failed",
            ItemOutcome::Conflict => "conflict",
        }
    }

    /// Whether the item still needs recovering after this outcome.
    pub fn remains(self) -> bool {
        matches!(
            self,
            ItemOutcome::WouldRecover | ItemOutcome::Failed | ItemOutcome::Conflict
        )
    }
}

/// One thing found and what became of it.
#[derive(Debug)]
pub struct Item {
    pub kind: ItemKind,
    pub service: String,
    /// The keyring entry of the current password it belongs to.
    pub entry: String,
    pub provider: Option<ProviderKind>,
    pub file: Option<PathBuf>,
    pub outcome: ItemOutcome,
    pub message: String,
    /// 0 when done; otherwise the exit code of the failure.
    pub exit_code: u8,
    pub attempts: u32,
}

/// Builds a provider client; called at most once per provider.
pub type Connect<'a> = dyn Fn(ProviderKind) -> Result<Box<dyn Provider>> + 'a;

/// Finds everything there is to recover in `keyring`'s service and the state directory,
/// and recovers it (or, with `dry_run`, only says what it would do).
pub async fn recover(
    keyring: &Keyring,
    state: &StateDir,
    connect: &Connect<'_>,
    dry_run: bool,
) -> Result<Vec<Item>> {
    let names = keyring.list().await.map_err(Error::keyring_unavailable)?;
    let mut items = Vec::new();
    let mut clients: BTreeMap<&'static str, Result<Box<dyn Provider>>> = BTreeMap::new();
    for name in &names {
        if let Some(entry) = name.strip_suffix(Slot::Pending.suffix()) {
            let item = finish_pending(keyring, state, entry, connect, &mut clients, dry_run).await;
            items.push(item);
        } else if let Some(entry) = name.strip_suffix(Slot::Probe.suffix())
            && let Some(item) = remove_probe(keyring, name, entry, dry_run).await
        {
            items.push(item);
        }
    }
    items.extend(install_files(keyring, state, dry_run).await?);
    Ok(items)
}

fn item(kind: ItemKind, service: &str, entry: &str) -> Item {
    Item {
        kind,
        service: service.to_owned(),
        entry: entry.to_owned(),
        provider: None,
        file: None,
        outcome: ItemOutcome::Failed,
        message: String::new(),
        exit_code: exit::SUCCESS,
        attempts: 0,
    }
}

fn failed(mut item: Item, error: &Error) -> Item {
    item.outcome = ItemOutcome::Failed;
    item.message = error.to_string();
    item.exit_code = error.exit_code();
    item
}

async fn finish_pending(
    keyring: &Keyring,
    state: &StateDir,
    entry: &str,
    connect: &Connect<'_>,
    clients: &mut BTreeMap<&'static str, Result<Box<dyn Provider>>>,
    dry_run: bool,
) -> Item {
    let mut found = item(ItemKind::Pending, keyring.service(), entry);
    let (kind, credential) = match providers::credential_of_entry(entry) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            let error = Error::Unconfirmed {
                message: format!(
                    "'{entry}#pending' is not the entry of a provider siprot knows: inspect it \
                     with secret-tool"
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
                "{kind} never uses a pending entry, so '{entry}#pending' was not written by \
                 siprot's rotation: inspect it with secret-tool"
            ),
            recovery_file: None,
        };
        return failed(found, &error);
    }
    let provider = match clients.entry(kind.name()).or_insert_with(|| connect(kind)) {
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
    let result = rotation::rotate(provider.as_ref(), &credential, keyring, state, input).await;
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

async fn remove_probe(keyring: &Keyring, name: &str, entry: &str, dry_run: bool) -> Option<Item> {
    let mut found = item(ItemKind::Probe, keyring.service(), entry);
    found.provider = providers::credential_of_entry(entry)
        .ok()
        .flatten()
        .map(|(kind, _)| kind);
    if dry_run {
        found.outcome = ItemOutcome::WouldRecover;
        found.message = format!("would remove the leftover keyring probe '{name}'");
        return Some(found);
    }
    match keyring.delete(name).await {
        Ok(false) => None,
        Ok(true) => {
            found.outcome = ItemOutcome::Removed;
            found.message = format!("removed the leftover keyring probe '{name}'");
            Some(found)
        }
        Err(e) => Some(failed(found, &Error::keyring_unavailable(e))),
    }
}

/// Installs the newest recovery file of each entry; older ones are superseded by it.
async fn install_files(keyring: &Keyring, state: &StateDir, dry_run: bool) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut by_entry: BTreeMap<(String, String), Vec<RecoveryFile>> = BTreeMap::new();
    for file in state.recovery_files()? {
        match file {
            Ok(file) => by_entry
                .entry((file.service.clone(), file.entry.clone()))
                .or_default()
                .push(file),
            Err((path, problem)) => {
                let mut found = item(ItemKind::RecoveryFile, "", "");
                found.file = Some(path.clone());
                let error = Error::Unconfirmed {
                    message: format!("{}: {problem}; inspect it by hand", path.display()),
                    recovery_file: Some(path),
                };
                items.push(failed(found, &error));
            }
        }
    }
    for ((service, entry), mut files) in by_entry {
        // Oldest first (as listed): the newest is the only password that can be live.
        let Some(newest) = files.pop() else { continue };
        let keyring = keyring.for_service(&service);
        let mut found = item(ItemKind::RecoveryFile, &service, &entry);
        found.file = Some(newest.path.clone());
        found.provider = ProviderKind::from_name(&newest.provider);
        let (outcome, message) = match install(&keyring, state, &newest, dry_run).await {
            Ok(done) => done,
            Err(error) => {
                items.push(failed(found, &error));
                continue;
            }
        };
        found.outcome = outcome;
        found.message = message;
        if outcome.remains() && outcome != ItemOutcome::WouldRecover {
            found.exit_code = exit::UNCONFIRMED;
        }
        let newest_done = !outcome.remains();
        items.push(found);
        for older in files {
            let mut old = item(ItemKind::RecoveryFile, &service, &entry);
            old.file = Some(older.path.clone());
            old.provider = ProviderKind::from_name(&older.provider);
            if newest_done {
                match remove_file(&older.path) {
                    Ok(()) => {
                        old.outcome = ItemOutcome::Superseded;
                        old.message = format!(
                            "{} rotated again after this file was written; its password is \
                             dead, the file was removed",
                            older.provider
                        );
                    }
                    Err(error) => old = failed(old, &error),
                }
            } else {
                old.outcome = if dry_run {
                    ItemOutcome::WouldRecover
                } else {
                    ItemOutcome::Conflict
                };
                old.message = format!(
                    "superseded by {}, which is not installed yet",
                    newest.path.display()
                );
                old.exit_code = if dry_run { 0 } else { exit::UNCONFIRMED };
            }
            items.push(old);
        }
    }
    Ok(items)
}

async fn install(
    keyring: &Keyring,
    state: &StateDir,
    file: &RecoveryFile,
    dry_run: bool,
) -> Result<(ItemOutcome, String)> {
    let _lock = CredentialLock::unless_dry_run(dry_run, state, keyring.service(), &file.entry)?;
    let current = keyring
        .get(&file.entry)
        .await
        .map_err(Error::keyring_unavailable)?;
    let previous = keyring
        .get(&format!("{}{}", file.entry, Slot::Previous.suffix()))
        .await
        .map_err(Error::keyring_unavailable)?;
    let holds = |slot: &Option<SecretString>, secret: &SecretString| {
        slot.as_ref()
            .is_some_and(|s| s.expose_secret() == secret.expose_secret())
    };
    let path = file.path.display();
    if holds(&current, &file.password) {
        if dry_run {
            return Ok((
                ItemOutcome::WouldRecover,
                format!("the keyring already holds the password in {path}: would remove the file"),
            ));
        }
        remove_file(&file.path)?;
        return Ok((
            ItemOutcome::AlreadyStored,
            format!("the keyring already held the password; removed {path}"),
        ));
    }
    if let Some(later) = state
        .last_rotated(keyring.service(), &file.entry)
        .filter(|at| *at > file.created_at)
    {
        if dry_run {
            return Ok((
                ItemOutcome::WouldRecover,
                format!(
                    "rotated again at {later}: the password in {path} is dead; would remove the file"
                ),
            ));
        }
        remove_file(&file.path)?;
        return Ok((
            ItemOutcome::Superseded,
            format!(
                "rotated again at {later}, after the file was written: its password is dead; removed {path}"
            ),
        ));
    }
    // The Telepath protocol copies current to `#previous` before its request, so an
    // entry nobody touched since still has current == `#previous` (or no current at all).
    let untouched = match &current {
        None => true,
        Some(current) => holds(&previous, current),
    };
    if !untouched {
        return Ok((
            ItemOutcome::Conflict,
            format!(
                "keyring entry '{}' changed after {path} was written and no later rotation is \
                 in the audit log: check which password {} accepts, store it, then delete the file",
                file.entry, file.provider
            ),
        ));
    }
    if dry_run {
        return Ok((
            ItemOutcome::WouldRecover,
            format!(
                "would store the password in {path} as '{}' and remove the file",
                file.entry
            ),
        ));
    }
    keyring
        .set(&file.entry, &file.password)
        .await
        .map_err(Error::keyring_unavailable)?;
    let read_back = keyring
        .get(&file.entry)
        .await
        .map_err(Error::keyring_unavailable)?;
    if !holds(&read_back, &file.password) {
        return Err(Error::Unconfirmed {
            message: format!(
                "the keyring did not return the password just stored as '{}'; {path} is kept",
                file.entry
            ),
            recovery_file: Some(file.path.clone()),
        });
    }
    remove_file(&file.path)?;
    Ok((
        ItemOutcome::Stored,
        format!("stored as '{}' and read back; removed {path}", file.entry),
    ))
}

fn remove_file(path: &std::path::Path) -> Result<()> {
    std::fs::remove_file(path)
        .map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))
}

/// The exit code of a recovery: 0 when nothing is left, else the highest code among
/// what is left (9 over 8 over 7 ...).
pub fn exit_code(items: &[Item]) -> u8 {
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
