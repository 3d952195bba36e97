//! The rotation protocol: the only place that orders store writes and provider calls.
//! It runs the same steps on every [`SecretStore`]; a shared store (Vault/OpenBao, which
//! other hosts use at the same time) adds a claim, because the local lock file protects
//! only this machine.
//!
//! Every rotation first checks the store ([`SecretStore::preflight`]: one keyring item per
//! slot at most, a vault token that may write every path; otherwise exit 4, nothing sent)
//! and reads the current slot once, just after creating its `#pending` (so that in a
//! shared store a rotation another host finished a moment before is seen): the new
//! password is later written over exactly that (check-and-set in a shared store), and it
//! is what goes to `#previous`. After writing the new password as current it reads the
//! slot once more (in a store whose writes are not their own confirmation, i.e. not the
//! OS keyring: [`SecretStore::confirms_writes`]): only a read-back holding the new
//! password lets the rotation give up the other copy (`#pending`, or Telepath's answer)
//! and exit 0.
//!
//! Client-set providers (Exotel, Vobiz):
//! 1. stage the password in `#pending`, created only if absent (store write 1; in a
//!    shared store this is the claim, naming this host). No store, no request (exit 8).
//!    If a `#pending` is there already: one written by an earlier run here is resent
//!    instead (a given password must equal it); one equal to current is the leftover of a
//!    rotation that finished, removed before staging afresh; one another host's run holds
//!    stops this rotation before anything is sent (exit 7, naming it);
//! 2. send it (the PUT is idempotent, so a rerun resends the same password);
//! 3. on confirmed success promote: current to `#previous` (write 2, skipped when there is
//!    no current), the password to current (write 3, then read back once: a store that
//!    answered without storing it fails the rotation with exit 9, `#pending` kept),
//!    delete `#pending` (write 4).
//!    A request that failed for sure deletes a fresh `#pending`; one whose outcome is
//!    unknown keeps it and exits 9.
//!
//! Server-generated providers (Telepath):
//! 0. refuse to start (exit 9, nothing sent) while a recovery file of the entry exists:
//!    `siprot recover` settles it first;
//! 1. in a shared store, claim the credential: a `#pending` marker without a password,
//!    created only if absent (another run's claim: exit 7; an earlier run's from here:
//!    exit 9, `siprot recover` clears it). It also proves the store writable;
//! 2. copy current to `#previous`: the backup the protocol needs anyway, and in the
//!    keyring the proof it is writable; with no current yet, the keyring writes and
//!    deletes a probe;
//! 3. send the request once (it is never retried once sent);
//! 4. store the returned password as current and read it back once. If that fails (or
//!    the read-back does not hold it), write it to a recovery file (0600) and exit 9;
//!    the claim stays until `siprot recover` here has stored it, so that no other host
//!    rotates over it. Otherwise the claim goes.
//!
//! Just before the request that may change the password, an `in-progress` record goes to
//! the audit log, so that a rotation cut off by SIGKILL or a power loss shows as "outcome
//! unknown" in `siprot status`; the rotation's final record supersedes it. If SIGINT,
//! SIGTERM or SIGHUP was caught before that point ([`crate::interrupt`]), the request is
//! not sent: a fresh `#pending` (or claim) is removed as for a request that failed for
//! sure, and the rotation ends with [`Error::Interrupted`] (or exit 9 for a `#pending`
//! from an earlier run, which stays for `siprot recover`).
//!
//! A keyring duplicate that appears after the provider accepted is removed when it holds
//! the same password, and otherwise reported like a failed store write.
//!
//! Every rotation appends one final line to the audit log, whatever its outcome.

use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditAction, AuditOutcome};
use crate::checkpoint;
use crate::error::{Error, Result, exit};
use crate::http::Attempts;
use crate::interrupt;
use crate::lock::CredentialLock;
use crate::providers::{
    CredentialRef, PasswordOrigin, Provider, ProviderKind, RotateRequest, Rotated,
};
use crate::state::{AuditRecord, StateDir};
use crate::store::{
    EntryName, Facts, Holder, Precondition, Record, SecretStore, Slot, StoreError, StoreKind,
    Stored,
};

/// Where a client-set password comes from.
#[derive(Debug)]
#[non_exhaustive]
pub enum PasswordSource {
    /// Generate one that passes the provider's policy (default length when `None`).
    Generate { length: Option<usize> },
    /// Use this one (already read from standard input).
    Given(SecretString),
    /// Only finish a rotation an earlier run staged in `#pending`; never start a new one
    /// (`siprot recover`).
    PendingOnly,
}

/// What the operator asked for.
#[derive(Debug)]
pub struct RotationInput {
    pub source: PasswordSource,
    pub description: Option<String>,
    pub dry_run: bool,
    /// Counts the requests sent; the caller keeps a clone to read it whatever the outcome.
    pub attempts: Attempts,
}

/// How a rotation ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStatus {
    Rotated,
    /// A `#pending` password from an earlier run was resent and is now current.
    Resumed,
    DryRun,
    /// [`PasswordSource::PendingOnly`] found nothing pending (another run finished it).
    NothingPending,
}

impl RotationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStatus::Rotated => "rotated",
            RotationStatus::Resumed => "resumed",
            RotationStatus::DryRun => "dry-run",
            RotationStatus::NothingPending => "nothing-pending",
        }
    }

    /// What the audit log records for a rotation that ended so; `None` for those it does
    /// not record (a dry run, nothing pending).
    pub fn audit_outcome(self) -> Option<AuditOutcome> {
        match self {
            RotationStatus::Rotated => Some(AuditOutcome::Rotated),
            RotationStatus::Resumed => Some(AuditOutcome::Resumed),
            RotationStatus::DryRun | RotationStatus::NothingPending => None,
        }
    }
}

/// What happened, for output and audit.
#[derive(Debug)]
pub struct RotationReport {
    pub provider: ProviderKind,
    pub credential: CredentialRef,
    /// Which store holds the password.
    pub store: StoreKind,
    /// The store's service (the keyring service, or `vault:<mount>/<prefix>`).
    pub service: String,
    /// Where the current and the previous password live, for messages
    /// ([`SecretStore::locate`]).
    pub current_in: String,
    pub previous_in: String,
    pub entry: EntryName,
    pub status: RotationStatus,
    pub username: Option<String>,
    pub rotated_at: Option<String>,
    pub request_id: Option<String>,
    /// The new password (for `--show-password`); `None` on a dry run.
    pub password: Option<SecretString>,
    pub keyring_writes: u32,
    /// HTTP requests sent to the provider, retries included.
    pub attempts: u32,
    /// Whether the password that was current before is now in `#previous`.
    pub previous_kept: bool,
    /// On a dry run: the steps that would be taken.
    pub plan: Vec<String>,
    /// Things that went wrong without failing the rotation.
    pub warnings: Vec<String>,
}

/// Runs one rotation of `credential`, whose entries are named `name` in `store`, and
/// records it in the audit log.
pub async fn rotate(
    provider: &dyn Provider,
    credential: &CredentialRef,
    name: &EntryName,
    store: &dyn SecretStore,
    state: &StateDir,
    input: RotationInput,
) -> Result<RotationReport> {
    let kind = provider.kind();
    refuse_pending_only(kind, &input.source)?;
    let dry_run = input.dry_run;
    let attempts = input.attempts.clone();
    let _lock = CredentialLock::unless_dry_run(dry_run, state, store.service(), name.current())?;
    let mut run = Run {
        provider,
        credential,
        store,
        name,
        holder: holder_of_run(state, store, dry_run)?,
        current: None,
        start: Precondition::Any,
        report: RotationReport::start(kind, credential, store, name),
    };
    log_start(kind, name);
    let result = match kind.origin() {
        PasswordOrigin::ServerGenerated => run.server_generated(state, dry_run, &attempts).await,
        PasswordOrigin::ClientSupplied => run.client_supplied(state, input).await,
    };
    let mut report = run.report;
    report.conclude(&result, &attempts);
    if !dry_run && report.status != RotationStatus::NothingPending {
        audit_rotation(state, store, name, &mut report, &result, &attempts);
    }
    result.map(|()| report)
}

/// This run as a claim names it: in a shared store a run that may write a claim makes the
/// state directory's id first, a dry run only reads it (none yet: no claim is ours); the
/// keyring has no claims, so its rotations never touch the id.
fn holder_of_run(state: &StateDir, store: &dyn SecretStore, dry_run: bool) -> Result<Holder> {
    match (store.shared(), dry_run) {
        (false, _) => Ok(Holder::unclaimed(state)),
        (true, false) => Holder::claiming(state),
        (true, true) => Holder::here(state),
    }
}

/// Finishing a pending password is for client-set providers only.
fn refuse_pending_only(kind: ProviderKind, source: &PasswordSource) -> Result<()> {
    if matches!(source, PasswordSource::PendingOnly)
        && kind.origin() != PasswordOrigin::ClientSupplied
    {
        return Err(Error::Usage(format!(
            "{kind} generates passwords on its server: there is never a pending one to finish"
        )));
    }
    Ok(())
}

/// Logs (at debug level) which entry is rotated and who makes the password.
fn log_start(kind: ProviderKind, name: &EntryName) {
    log::debug!(
        "rotating '{}' at {kind} ({})",
        name.current(),
        match kind.origin() {
            PasswordOrigin::ServerGenerated => "the provider generates the password",
            PasswordOrigin::ClientSupplied => "siprot sets the password",
        }
    );
}

impl RotationReport {
    /// The report before anything happened: status rotated, nothing written or sent.
    fn start(
        kind: ProviderKind,
        credential: &CredentialRef,
        store: &dyn SecretStore,
        name: &EntryName,
    ) -> Self {
        Self {
            provider: kind,
            credential: credential.clone(),
            store: store.kind(),
            service: store.service().to_owned(),
            current_in: store.locate(name, Slot::Current),
            previous_in: store.locate(name, Slot::Previous),
            entry: name.clone(),
            status: RotationStatus::Rotated,
            username: None,
            rotated_at: None,
            request_id: None,
            password: None,
            keyring_writes: 0,
            attempts: 0,
            previous_kept: false,
            plan: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Fills in what the rotation's end tells: the requests sent, and the time of a
    /// finished rotation when the provider gave none.
    fn conclude(&mut self, result: &Result<()>, attempts: &Attempts) {
        self.attempts = attempts.count();
        let finished = matches!(
            self.status,
            RotationStatus::Rotated | RotationStatus::Resumed
        );
        if result.is_ok() && finished && self.rotated_at.is_none() {
            self.rotated_at = Some(jiff::Timestamp::now().to_string());
        }
    }
}

/// The rotation's final record in the audit log (none for a status without an audit
/// outcome); a failure to write it is a warning in the report.
fn audit_rotation(
    state: &StateDir,
    store: &dyn SecretStore,
    name: &EntryName,
    report: &mut RotationReport,
    result: &Result<()>,
    attempts: &Attempts,
) {
    let (outcome, code) = match result {
        Ok(()) => (report.status.audit_outcome(), exit::SUCCESS),
        Err(Error::Unconfirmed { .. }) => (Some(AuditOutcome::Unconfirmed), exit::UNCONFIRMED),
        Err(e @ Error::Interrupted { .. }) => (Some(AuditOutcome::Interrupted), e.exit_code()),
        Err(e) => (Some(AuditOutcome::Failed), e.exit_code()),
    };
    let Some(outcome) = outcome else {
        return;
    };
    let audited = state.audit(&AuditRecord {
        time: jiff::Timestamp::now().to_string(),
        service: Some(store.service()),
        provider: report.provider.name(),
        entry: name.current(),
        action: AuditAction::Rotate,
        outcome,
        request_id: report.request_id.as_deref(),
        attempts: Some(attempts.count()),
        exit_code: code,
        username: report.username.as_deref(),
        registrar: None,
    });
    if let Err(e) = audited {
        report.warnings.push(format!("audit log not written: {e}"));
    }
}

/// Why a run could not create its `#pending`.
enum Claimed {
    /// The slot holds something already (what, when it could be read).
    Elsewhere(Box<ClaimConflict>),
    Failed(Error),
}

/// A `#pending` found where a run wanted to create its own.
struct ClaimConflict {
    name: String,
    place: String,
    found: Option<Stored>,
}

impl Claimed {
    /// The error of a claim that had to succeed: a `#pending` of another run (exit 7,
    /// naming it) or one an earlier run from here left (exit 9: `siprot recover` settles
    /// it). Nothing was sent either way.
    fn into_error(self, here: &Holder) -> Error {
        let conflict = match self {
            Claimed::Failed(error) => return error,
            Claimed::Elsewhere(conflict) => conflict,
        };
        let ClaimConflict { name, place, found } = *conflict;
        let Some(found) = found else {
            return Error::Busy(format!(
                "another run claimed '{name}' a moment ago ({place})"
            ));
        };
        match found.facts.holder {
            Some(holder) if !here.same_place(&holder) => Error::Busy(format!(
                "'{name}' is being rotated by {holder} (claim in {place}), so nothing was sent; \
                 if that run is gone, `siprot recover` finishes or clears it"
            )),
            None => Error::Busy(unowned_claim(&name, &place)),
            Some(_) => Error::Unconfirmed {
                message: format!(
                    "an earlier rotation of '{name}' from this host did not finish (it left \
                     {place}): run `siprot recover` first; nothing was sent"
                ),
                recovery_file: None,
            },
        }
    }
}

/// Why a claim with no holder recorded stops a rotation (exit 7): it cannot be proved
/// this host's, so it is kept and nothing is sent over it.
fn unowned_claim(name: &str, place: &str) -> String {
    format!(
        "'{name}' is claimed in {place}, which names no holder, so it cannot be this \
         host's and nothing was sent; if no run holds it, delete it by hand"
    )
}

struct Run<'a> {
    provider: &'a dyn Provider,
    credential: &'a CredentialRef,
    store: &'a dyn SecretStore,
    name: &'a EntryName,
    /// This run, as a claim in a shared store names it.
    holder: Holder,
    /// What the current slot held when the rotation read it, at its start.
    current: Option<Stored>,
    /// Writing the new current password requires the current slot unchanged since then
    /// (check-and-set in a shared store).
    start: Precondition,
    report: RotationReport,
}

impl<'a> Run<'a> {
    /// Called just before the request that may change the password: stops if a signal
    /// came ([`Error::Interrupted`], nothing sent), else records the rotation as in
    /// progress in the audit log (a failure to do so is a warning, as for the final record).
    fn before_request(&mut self, state: &StateDir) -> Result<()> {
        if let Some(signal) = interrupt::received() {
            return Err(Error::Interrupted {
                signal,
                message: format!(
                    "interrupted by {signal} before anything was sent to {} for '{}'; nothing \
                     was changed",
                    self.report.provider,
                    self.name.current()
                ),
            });
        }
        let recorded = state.audit(&AuditRecord {
            time: jiff::Timestamp::now().to_string(),
            service: Some(self.store.service()),
            provider: self.report.provider.name(),
            entry: self.name.current(),
            action: AuditAction::Rotate,
            outcome: AuditOutcome::InProgress,
            request_id: None,
            attempts: None,
            exit_code: exit::UNCONFIRMED,
            username: None,
            registrar: None,
        });
        if let Err(e) = recorded {
            self.report
                .warnings
                .push(format!("audit log not written before the request: {e}"));
        }
        Ok(())
    }

    /// A client-set rotation: read current, choose the password (the one staged by an
    /// earlier run, else the given or a generated one) and stage it in `#pending`, send
    /// it, promote it.
    async fn client_supplied(&mut self, state: &StateDir, input: RotationInput) -> Result<()> {
        let RotationInput {
            source,
            description,
            dry_run,
            attempts,
        } = input;
        self.preflight().await?;
        let Some((password, resumed)) = self.choose(source, dry_run).await? else {
            self.report.status = RotationStatus::NothingPending;
            return Ok(());
        };
        if dry_run {
            return self.plan_client_supplied(resumed);
        }
        self.stage(state, resumed).await?;
        let request = RotateRequest::Set {
            password: password.clone(),
            description,
        };
        let rotated = self.send(request, resumed, &attempts).await?;
        checkpoint::reached("response-received");
        self.report.username = rotated.username;
        self.report.request_id = rotated.request_id;
        self.report.rotated_at = rotated.rotated_at;
        self.promote(&password).await?;
        self.report.status = if resumed {
            RotationStatus::Resumed
        } else {
            RotationStatus::Rotated
        };
        self.report.password = Some(password);
        Ok(())
    }

    /// Where a slot of this credential lives, for messages.
    fn locate(&self, slot: Slot) -> String {
        self.store.locate(self.name, slot)
    }

    /// Reads the current slot once, at the start: the new password replaces exactly this
    /// (check-and-set in a shared store), and it is what goes to `#previous`.
    async fn read_current(&mut self) -> Result<()> {
        let current = self
            .store
            .read(self.name, Slot::Current)
            .await
            .map_err(Error::keyring_unavailable)?;
        self.start = Stored::unchanged(current.as_ref());
        self.current = current;
        Ok(())
    }

    /// [`Run::read_current`] just after this run created its `#pending`: in a shared store
    /// a rotation another host finished a moment ago is then what the new password keeps
    /// in `#previous` and replaces. If the store fails, the fresh `#pending` goes (nothing
    /// was sent).
    async fn read_current_claimed(&mut self) -> Result<()> {
        if let Err(error) = self.read_current().await {
            self.remove_pending().await;
            return Err(error);
        }
        Ok(())
    }

    /// The current password read at the start.
    fn current_secret(&self) -> Option<&SecretString> {
        self.current.as_ref().and_then(|c| c.secret.as_ref())
    }

    /// The password to set and whether an earlier run staged it; `None` when only a
    /// pending one was asked for and there is none.
    ///
    /// A real run stages the password it would set straight away (`#pending` created only
    /// if absent: the claim); only when a `#pending` is there already is it read: a
    /// password an earlier run staged wins over a generated one and must equal a given
    /// one; one equal to current is a finished rotation's leftover (removed, then staged
    /// afresh); one another host's run holds in a shared store stops this rotation (exit 7,
    /// `recover` finishes it). A dry run and `recover` only read.
    async fn choose(
        &mut self,
        source: PasswordSource,
        dry_run: bool,
    ) -> Result<Option<(SecretString, bool)>> {
        let kind = self.report.provider;
        let candidate = match &source {
            _ if dry_run => None,
            PasswordSource::PendingOnly => None,
            PasswordSource::Given(given) => Some(given.clone()),
            PasswordSource::Generate { length } => Some(kind.policy().generate(*length)?),
        };
        let staged = match &candidate {
            Some(candidate) => match self.claim(Some(candidate)).await {
                Ok(()) => {
                    checkpoint::reached("pending-written");
                    self.read_current_claimed().await?;
                    return Ok(Some((candidate.clone(), false)));
                }
                Err(Claimed::Elsewhere(conflict)) => {
                    self.read_current().await?;
                    conflict.found
                }
                Err(Claimed::Failed(error)) => return Err(error),
            },
            None => {
                self.read_current().await?;
                self.store
                    .read(self.name, Slot::Pending)
                    .await
                    .map_err(Error::keyring_unavailable)?
            }
        };
        let Some(staged) = self.unless_finished(staged, dry_run).await? else {
            return match (candidate, source) {
                // The leftover is gone: stage afresh (a second leftover means another run).
                (Some(candidate), _) => {
                    let here = self.holder.clone();
                    self.claim(Some(&candidate))
                        .await
                        .map_err(|c| c.into_error(&here))?;
                    checkpoint::reached("pending-written");
                    Ok(Some((candidate, false)))
                }
                (None, PasswordSource::PendingOnly) => Ok(None),
                (None, PasswordSource::Given(given)) => Ok(Some((given, false))),
                (None, PasswordSource::Generate { length }) => {
                    Ok(Some((kind.policy().generate(length)?, false)))
                }
            };
        };
        if !matches!(source, PasswordSource::PendingOnly) {
            self.refuse_foreign_claim(&staged)?;
        }
        let Some(staged) = staged.secret else {
            return Err(Error::Busy(format!(
                "{} holds a claim without a password, which siprot writes only for a provider \
                 that generates passwords: run `siprot recover` to clear it",
                self.locate(Slot::Pending)
            )));
        };
        if let PasswordSource::Given(given) = &source
            && staged.expose_secret() != given.expose_secret()
        {
            return Err(Error::Unconfirmed {
                message: format!(
                    "an earlier rotation left an unconfirmed password in {}; run the same \
                     command without --password-stdin to finish it first",
                    self.locate(Slot::Pending)
                ),
                recovery_file: None,
            });
        }
        Ok(Some((staged, true)))
    }

    /// A claim in a shared store written by a run of another host or state directory:
    /// that run may be in flight, so nothing is sent (exit 7, naming it).
    fn refuse_foreign_claim(&self, claim: &Stored) -> Result<()> {
        if !self.store.shared() {
            // The keyring keeps no holder; the local lock is its only guard.
            return Ok(());
        }
        match &claim.facts.holder {
            Some(holder) if !self.holder.same_place(holder) => Err(Error::Busy(format!(
                "'{}' is being rotated by {holder} (claim in {}), so nothing was sent; if that \
                 run is gone, `siprot recover` finishes or clears it",
                self.name.current(),
                self.locate(Slot::Pending)
            ))),
            None => Err(Error::Busy(unowned_claim(
                self.name.current(),
                &self.locate(Slot::Pending),
            ))),
            Some(_) => Ok(()),
        }
    }

    /// A dry run's plan of a client-set rotation.
    fn plan_client_supplied(&mut self, resumed: bool) -> Result<()> {
        let pending = self.locate(Slot::Pending);
        self.report.status = RotationStatus::DryRun;
        self.report.plan.extend([
            if resumed {
                format!("reuse the unconfirmed password in {pending}")
            } else {
                format!("generate or take the new password and store it in {pending}")
            },
            self.provider.describe_rotation(self.credential)?,
            match self.start {
                Precondition::Absent => {
                    format!("store the new password as {}", self.locate(Slot::Current))
                }
                _ => format!(
                    "move the current password to {} and store the new one as {}",
                    self.locate(Slot::Previous),
                    self.locate(Slot::Current)
                ),
            },
        ]);
        Ok(())
    }

    /// The facts a store keeps beside a password of this credential.
    fn facts(&self) -> Facts {
        Facts {
            username: self.report.username.clone(),
            provider: self.report.provider.name().to_owned(),
            credential: self.credential.id().to_owned(),
            device: self.credential.device().map(str::to_owned),
            rotated_at: self.report.rotated_at.clone(),
            holder: None,
        }
    }

    /// Creates this run's `#pending` (a password, or a claim marker without one) only if
    /// the slot is empty. [`Claimed::Elsewhere`] when it is not (with what it holds).
    async fn claim(&mut self, password: Option<&SecretString>) -> Result<(), Claimed> {
        let facts = Facts {
            holder: Some(self.holder.clone()),
            ..self.facts()
        };
        let record = Record {
            secret: password,
            facts: &facts,
        };
        match self
            .store
            .write(self.name, Slot::Pending, record, Precondition::Absent)
            .await
        {
            Ok(_) => {
                self.report.keyring_writes += 1;
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => {
                let found = self
                    .store
                    .read(self.name, Slot::Pending)
                    .await
                    .map_err(|e| Claimed::Failed(Error::keyring_unavailable(e)))?;
                Err(Claimed::Elsewhere(Box::new(ClaimConflict {
                    name: self.name.current().to_owned(),
                    place: self.locate(Slot::Pending),
                    found,
                })))
            }
            Err(e) => Err(Claimed::Failed(Error::keyring_unavailable(e))),
        }
    }

    /// Before the request: a signal that came stops the rotation ([`Run::before_request`]).
    /// It removes a fresh `#pending` (nothing was sent) and keeps a resumed one (it may
    /// be live).
    async fn stage(&mut self, state: &StateDir, resumed: bool) -> Result<()> {
        if let Err(stopped) = self.before_request(state) {
            if resumed {
                return Err(Error::Unconfirmed {
                    message: format!(
                        "{stopped}; the password staged by an earlier run is kept in {}: run \
                         `siprot recover` (or the same command) to resend it",
                        self.locate(Slot::Pending)
                    ),
                    recovery_file: None,
                });
            }
            // As for a request that failed for sure: the fresh `#pending` goes.
            self.remove_pending().await;
            return Err(stopped);
        }
        Ok(())
    }

    /// Sends the staged password. A failure that leaves it possibly live (its outcome
    /// unknown, or a resumed password an earlier request may have set) keeps `#pending`
    /// and is [`Error::Unconfirmed`]; one that changed nothing for sure removes it.
    async fn send(
        &mut self,
        request: RotateRequest,
        resumed: bool,
        attempts: &Attempts,
    ) -> Result<Rotated> {
        let kind = self.report.provider;
        match self
            .provider
            .rotate(self.credential, request, attempts)
            .await
        {
            Ok(rotated) => Ok(rotated),
            Err(error) if resumed || matches!(error, Error::OutcomeUnknown { .. }) => {
                Err(Error::Unconfirmed {
                    message: format!(
                        "{error}; the password may be live at {kind} and is kept in {}: run the \
                         same command again to resend it",
                        self.locate(Slot::Pending)
                    ),
                    recovery_file: None,
                })
            }
            Err(error) => {
                self.remove_pending().await;
                Err(error)
            }
        }
    }

    /// Removes a `#pending` (a password never set, or this run's claim); a failure is a
    /// warning.
    async fn remove_pending(&mut self) {
        if let Err(e) = self.store.remove(self.name, Slot::Pending).await {
            self.report.warnings.push(format!(
                "could not remove {}: {e}",
                self.locate(Slot::Pending)
            ));
        }
    }

    /// A `#pending` equal to the current password was left by a rotation that finished all
    /// but removing it (killed after writing current, or the delete failed): the provider
    /// confirmed that password before it became current, so there is nothing to resend.
    /// It is removed (a dry run only says so) and the rotation starts afresh, so that a
    /// rerun really rotates instead of resending the password in use.
    async fn unless_finished(
        &mut self,
        staged: Option<Stored>,
        dry_run: bool,
    ) -> Result<Option<Stored>> {
        let staged_secret = staged.as_ref().and_then(|s| s.secret.as_ref());
        let finished = match (staged_secret, self.current_secret()) {
            (Some(staged), Some(current)) => staged.expose_secret() == current.expose_secret(),
            _ => false,
        };
        if !finished {
            return Ok(staged);
        }
        let pending = self.locate(Slot::Pending);
        log::debug!("{pending} holds the current password: an earlier rotation finished");
        if dry_run {
            self.report.plan.push(format!(
                "remove {pending}: it holds the current password, left by a rotation that \
                 finished"
            ));
        } else {
            self.store
                .remove(self.name, Slot::Pending)
                .await
                .map_err(Error::keyring_unavailable)?;
            self.report.keyring_writes += 1;
        }
        Ok(None)
    }

    /// Current to `#previous`, pending to current (only over the current the rotation
    /// read at its start), then drop `#pending`. Until the last step the password stays in
    /// `#pending`, so a failure here loses nothing.
    async fn promote(&mut self, password: &SecretString) -> Result<()> {
        let kind = self.report.provider;
        let pending = self.locate(Slot::Pending);
        let noun = self.store.kind().noun();
        let unconfirmed = |error: StoreError| Error::Unconfirmed {
            message: match error {
                StoreError::Ambiguous(duplicates) => format!(
                    "{kind} accepted the new password, which is kept in {pending}, but \
                     {duplicates}; then run the same command again to finish"
                ),
                error => format!(
                    "the provider accepted the new password but the {noun} failed while \
                     promoting it ({error}); it is kept in {pending}: run the same command \
                     again to finish"
                ),
            },
            recovery_file: None,
        };
        let previous = self.current.as_ref().and_then(|current| {
            let secret = current.secret.as_ref()?;
            (secret.expose_secret() != password.expose_secret())
                .then(|| (secret.clone(), current.facts.clone()))
        });
        if let Some((secret, facts)) = previous {
            let record = Record {
                secret: Some(&secret),
                facts: &facts,
            };
            self.resolving(Slot::Previous, |store, name| {
                store.write(name, Slot::Previous, record, Precondition::Any)
            })
            .await
            .map_err(&unconfirmed)?;
            self.report.keyring_writes += 1;
            self.report.previous_kept = true;
            checkpoint::reached("previous-written");
        }
        self.write_current(password).await.map_err(&unconfirmed)?;
        checkpoint::reached("current-written");
        match self
            .resolving(Slot::Pending, |store, name| {
                store.remove(name, Slot::Pending)
            })
            .await
        {
            Ok(_) => self.report.keyring_writes += 1,
            Err(e) => self.report.warnings.push(format!(
                "the new password is stored, but {pending} could not be removed: {e}"
            )),
        }
        Ok(())
    }

    /// Writes the new password as current, over the current the rotation read at its
    /// start (in a shared store, once it held the claim) only, then reads it back
    /// ([`Run::confirm_current`]). Its facts carry the time of the rotation (now, when the
    /// provider told none), which the report then gives too.
    async fn write_current(&mut self, password: &SecretString) -> Result<(), StoreError> {
        let mut facts = self.facts();
        facts
            .rotated_at
            .get_or_insert_with(|| jiff::Timestamp::now().to_string());
        let when = self.start;
        let record = Record {
            secret: Some(password),
            facts: &facts,
        };
        self.resolving(Slot::Current, |store, name| {
            store.write(name, Slot::Current, record, when)
        })
        .await?;
        self.report.keyring_writes += 1;
        self.confirm_current(password).await?;
        self.report.rotated_at = facts.rotated_at;
        Ok(())
    }

    /// Reads the current slot back once, just after writing it and before the only other
    /// copy of the password (`#pending`, or the answer in memory) is given up: a store that
    /// answered without storing (a broken proxy) fails here like a failed write.
    ///
    /// A store whose successful write is already its own word that it stored the secret
    /// ([`SecretStore::confirms_writes`]: the OS keyring) is not read again: that read
    /// would cost a keyring call per rotation on the fleet's one keyring thread and could
    /// only repeat the write's answer.
    async fn confirm_current(&self, password: &SecretString) -> Result<(), StoreError> {
        if self.store.confirms_writes() {
            return Ok(());
        }
        let read = self.store.read(self.name, Slot::Current).await?;
        let holds = read
            .as_ref()
            .and_then(|stored| stored.secret.as_ref())
            .is_some_and(|stored| stored.expose_secret() == password.expose_secret());
        if holds {
            return Ok(());
        }
        let message = format!(
            "{} did not hold the new password when read back after writing it",
            self.locate(Slot::Current)
        );
        Err(match self.store.kind() {
            StoreKind::Keyring => StoreError::Store(message),
            store => StoreError::Unavailable { store, message },
        })
    }

    /// A server-generated rotation: claim the credential in a shared store, keep the
    /// current password in `#previous` (or prove the keyring writable), ask the provider
    /// for a new one, store it as current (or in a recovery file when the store fails).
    async fn server_generated(
        &mut self,
        state: &StateDir,
        dry_run: bool,
        attempts: &Attempts,
    ) -> Result<()> {
        self.refuse_over_recovery_file(state)?;
        self.preflight().await?;
        if dry_run {
            self.read_current().await?;
            return self.plan_server_generated(self.current_secret().is_some());
        }
        let claimed = self.store.shared();
        if claimed {
            let here = self.holder.clone();
            self.claim(None).await.map_err(|c| c.into_error(&here))?;
            self.read_current_claimed().await?;
        } else {
            self.read_current().await?;
        }
        let has_current = self.current_secret().is_some();
        if let Err(e) = self.prepare_request(state).await {
            if claimed {
                self.remove_pending().await;
            }
            return Err(e);
        }
        let rotated = self.request_generated(attempts, has_current).await;
        let rotated = match rotated {
            Ok(rotated) => rotated,
            Err(e) => {
                if claimed {
                    self.remove_pending().await;
                }
                return Err(e);
            }
        };
        let kind = self.report.provider;
        let Some(password) = rotated.password else {
            if claimed {
                self.remove_pending().await;
            }
            return Err(Error::Unconfirmed {
                message: format!("{kind} confirmed the rotation but returned no password"),
                recovery_file: None,
            });
        };
        checkpoint::reached("response-received");
        self.report.username = rotated.username;
        self.report.request_id = rotated.request_id;
        self.report.rotated_at = rotated.rotated_at;
        if let Err(store_error) = self.write_current(&password).await {
            // The claim stays while a recovery file holds the password, so that no other
            // host rotates over it before `siprot recover` here has stored it.
            let error = self.save_for_recovery(state, &password, &store_error);
            if claimed
                && !matches!(
                    &error,
                    Error::Unconfirmed {
                        recovery_file: Some(_),
                        ..
                    }
                )
            {
                self.remove_pending().await;
            }
            return Err(error);
        }
        if claimed {
            match self.store.remove(self.name, Slot::Pending).await {
                Ok(_) => self.report.keyring_writes += 1,
                Err(e) => self.report.warnings.push(format!(
                    "the new password is stored, but the claim in {} could not be removed \
                     ({e}): `siprot recover` clears it",
                    self.locate(Slot::Pending)
                )),
            }
        }
        self.report.password = Some(password);
        Ok(())
    }

    /// Keeps the current password and records the request as in progress.
    async fn prepare_request(&mut self, state: &StateDir) -> Result<()> {
        self.keep_previous().await?;
        checkpoint::reached("previous-written");
        self.before_request(state)
    }

    /// A new request would kill the password a recovery file of this entry may hold, and
    /// make it impossible to prove from the store which file is live: refused.
    fn refuse_over_recovery_file(&self, state: &StateDir) -> Result<()> {
        let kind = self.report.provider;
        if let Some(path) = state
            .recovery_files_of(self.store.service(), self.name.current())?
            .into_iter()
            .next()
        {
            return Err(Error::Unconfirmed {
                message: format!(
                    "the recovery file {} may hold the password {kind} accepts for '{}': run \
                     siprot recover first; nothing was sent",
                    path.display(),
                    self.name.current()
                ),
                recovery_file: Some(path),
            });
        }
        Ok(())
    }

    /// A dry run's plan of a server-generated rotation.
    fn plan_server_generated(&mut self, has_current: bool) -> Result<()> {
        let kind = self.report.provider;
        self.report.status = RotationStatus::DryRun;
        let mut plan = Vec::new();
        if self.store.shared() {
            plan.push(format!(
                "claim the credential in {} (only if nobody else has)",
                self.locate(Slot::Pending)
            ));
        }
        if has_current {
            plan.push(format!(
                "copy the current password to {}",
                self.locate(Slot::Previous)
            ));
        } else if !self.store.shared() {
            plan.push("write and delete a probe entry to prove the keyring is writable".into());
        }
        plan.push(self.provider.describe_rotation(self.credential)?);
        plan.push(format!(
            "store the password {kind} returns as {}",
            self.locate(Slot::Current)
        ));
        self.report.plan = plan;
        Ok(())
    }

    /// Before the request: the current password is copied to `#previous`; with none, a
    /// probe entry is written and deleted to prove the keyring takes a write (in a shared
    /// store the claim has proved that already).
    async fn keep_previous(&mut self) -> Result<()> {
        let current = self
            .current
            .as_ref()
            .and_then(|c| Some((c.secret.as_ref()?, &c.facts)));
        match current {
            Some((current, facts)) => {
                let record = Record {
                    secret: Some(current),
                    facts,
                };
                self.store
                    .write(self.name, Slot::Previous, record, Precondition::Any)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.report.keyring_writes += 1;
                self.report.previous_kept = true;
            }
            None if self.store.shared() => {}
            None => {
                let marker = SecretString::from("siprot keyring probe");
                let facts = Facts::default();
                let record = Record {
                    secret: Some(&marker),
                    facts: &facts,
                };
                self.store
                    .write(self.name, Slot::Probe, record, Precondition::Any)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.store
                    .delete(self.name, Slot::Probe)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.report.keyring_writes += 2;
            }
        }
        Ok(())
    }

    /// Asks the provider for a new password; an unknown outcome becomes
    /// [`Error::Unconfirmed`] (the provider may have rotated it).
    async fn request_generated(&self, attempts: &Attempts, had_current: bool) -> Result<Rotated> {
        let kind = self.report.provider;
        let previous = self.locate(Slot::Previous);
        self.provider
            .rotate(self.credential, RotateRequest::Generate, attempts)
            .await
            .map_err(|error| match error {
                Error::OutcomeUnknown { .. } => Error::Unconfirmed {
                    message: format!(
                        "{error}; {kind} may have rotated the password without siprot \
                         receiving it; {}run the same command again to get a new, known password",
                        if had_current {
                            format!("the old one is kept in {previous}; ")
                        } else {
                            String::new()
                        }
                    ),
                    recovery_file: None,
                },
                other => other,
            })
    }

    /// Before any request: the store must be usable for every slot the rotation touches
    /// (one keyring item each at most; a vault token that may write each path), or
    /// nothing is sent (exit 4, saying what to fix).
    async fn preflight(&self) -> Result<()> {
        self.store
            .preflight(self.name)
            .await
            .map_err(Error::keyring_unavailable)
    }

    /// After the provider accepted, runs a store call on `slot`; when a second keyring
    /// item matching it appeared since [`Run::preflight`], duplicates that hold the same
    /// secret are removed (one write each) and the call runs once more. Others stay, and
    /// the error lists them.
    async fn resolving<'s, T, F>(
        &mut self,
        slot: Slot,
        call: impl Fn(&'s dyn SecretStore, &'s EntryName) -> F,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
        'a: 's,
    {
        match call(self.store, self.name).await {
            Err(StoreError::Ambiguous(_)) => {
                for item in self.store.resolve_duplicates(self.name, slot).await? {
                    self.report.keyring_writes += 1;
                    self.report.warnings.push(format!(
                        "removed a duplicate keyring item holding the same password: {item}"
                    ));
                }
                call(self.store, self.name).await
            }
            other => other,
        }
    }

    fn save_for_recovery(
        &self,
        state: &StateDir,
        password: &SecretString,
        store_error: &StoreError,
    ) -> Error {
        let kind = self.report.provider;
        match state.write_recovery(
            self.store.service(),
            self.name.current(),
            kind.name(),
            password,
        ) {
            Ok(path) => Error::Unconfirmed {
                message: format!(
                    "{kind} rotated the password but the {} could not store it \
                     ({store_error}); it was saved to {} (mode 0600): run `siprot recover` to \
                     store it",
                    self.store.kind().noun(),
                    path.display()
                ),
                recovery_file: Some(path),
            },
            Err(file_error) => Error::Unconfirmed {
                message: format!(
                    "{kind} rotated the password but neither the {store} ({store_error}) nor a \
                     recovery file ({file_error}) could hold it: run the same command again once \
                     the {store} works, to get a new password",
                    store = self.store.kind().noun()
                ),
                recovery_file: None,
            },
        }
    }
}
