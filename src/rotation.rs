//! The rotation protocol: the only place that orders keyring writes and provider calls.
//!
//! Client-set providers (Exotel, Vobiz):
//! 1. reuse a `#pending` password left by an earlier run, or make one and write it to
//!    `#pending` (keyring write 1); no keyring, no request (exit 8). A `#pending` that
//!    equals current is the leftover of a rotation that finished: it is removed, and the
//!    rotation starts afresh;
//! 2. send it (the PUT is idempotent, so a rerun resends the same password);
//! 3. on confirmed success promote: current to `#previous` (write 2, skipped when there is
//!    no current), the password to current (write 3), delete `#pending` (write 4).
//!    A request that failed for sure deletes a fresh `#pending`; one whose outcome is
//!    unknown keeps it and exits 9.
//!
//! Server-generated providers (Telepath):
//! 0. refuse to start (exit 9, nothing sent) while a recovery file of the entry exists:
//!    `siprot recover` settles it first;
//! 1. copy current to `#previous` (write 1): the backup the protocol needs anyway, and the
//!    proof the keyring is writable; with no current yet, write and delete a probe;
//! 2. send the request once (it is never retried once sent);
//! 3. store the returned password as current (write 2). If that fails, write it to a
//!    recovery file (0600) and exit 9.
//!
//! Just before the request that may change the password, an `in-progress` record goes to
//! the audit log, so that a rotation cut off by SIGKILL or a power loss shows as "outcome
//! unknown" in `siprot status`; the rotation's final record supersedes it. If SIGINT,
//! SIGTERM or SIGHUP was caught before that point ([`crate::interrupt`]), the request is
//! not sent: a fresh `#pending` is removed as for a request that failed for sure, and the
//! rotation ends with [`Error::Interrupted`] (or exit 9 for a `#pending` from an earlier
//! run, which stays for `siprot recover`).
//!
//! Before any request, each slot the rotation reads or writes must match at most one
//! keyring item (another program may have added a second one): otherwise nothing is sent
//! (exit 4). A duplicate that appears after the provider accepted is removed when it
//! holds the same password, and otherwise reported like a failed keyring write.
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
use crate::store::{EntryName, Keyring, Slot, StoreError};

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
    pub service: String,
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

/// Runs one rotation and records it in the audit log.
pub async fn rotate(
    provider: &dyn Provider,
    credential: &CredentialRef,
    keyring: &Keyring,
    state: &StateDir,
    input: RotationInput,
) -> Result<RotationReport> {
    let kind = provider.kind();
    refuse_pending_only(kind, &input.source)?;
    let name = kind.entry_name(credential)?;
    let dry_run = input.dry_run;
    let attempts = input.attempts.clone();
    let _lock = CredentialLock::unless_dry_run(dry_run, state, keyring.service(), name.current())?;
    let mut run = Run {
        provider,
        credential,
        keyring,
        name: &name,
        report: RotationReport::start(kind, credential, keyring, &name),
    };
    log_start(kind, &name);
    let result = match kind.origin() {
        PasswordOrigin::ServerGenerated => run.server_generated(state, dry_run, &attempts).await,
        PasswordOrigin::ClientSupplied => run.client_supplied(state, input).await,
    };
    let mut report = run.report;
    report.conclude(&result, &attempts);
    if !dry_run && report.status != RotationStatus::NothingPending {
        audit_rotation(state, keyring, &name, &mut report, &result, &attempts);
    }
    result.map(|()| report)
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
        keyring: &Keyring,
        name: &EntryName,
    ) -> Self {
        Self {
            provider: kind,
            credential: credential.clone(),
            service: keyring.service().to_owned(),
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
    keyring: &Keyring,
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
        service: Some(keyring.service()),
        provider: report.provider.name(),
        entry: name.current(),
        action: AuditAction::Rotate,
        outcome,
        request_id: report.request_id.as_deref(),
        attempts: Some(attempts.count()),
        exit_code: code,
        username: report.username.as_deref(),
    });
    if let Err(e) = audited {
        report.warnings.push(format!("audit log not written: {e}"));
    }
}

struct Run<'a> {
    provider: &'a dyn Provider,
    credential: &'a CredentialRef,
    keyring: &'a Keyring,
    name: &'a EntryName,
    report: RotationReport,
}

impl Run<'_> {
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
            service: Some(self.keyring.service()),
            provider: self.report.provider.name(),
            entry: self.name.current(),
            action: AuditAction::Rotate,
            outcome: AuditOutcome::InProgress,
            request_id: None,
            attempts: None,
            exit_code: exit::UNCONFIRMED,
            username: None,
        });
        if let Err(e) = recorded {
            self.report
                .warnings
                .push(format!("audit log not written before the request: {e}"));
        }
        Ok(())
    }

    /// A client-set rotation: choose the password (the one staged by an earlier run, else
    /// the given or a generated one), stage it in `#pending`, send it, promote it.
    async fn client_supplied(&mut self, state: &StateDir, input: RotationInput) -> Result<()> {
        let pending_entry = self.name.slot(Slot::Pending);
        let RotationInput {
            source,
            description,
            dry_run,
            attempts,
        } = input;
        let Some((password, resumed)) = self.choose(source, &pending_entry, dry_run).await? else {
            self.report.status = RotationStatus::NothingPending;
            return Ok(());
        };
        if dry_run {
            return self.plan_client_supplied(resumed, &pending_entry).await;
        }
        self.stage(state, &password, resumed, &pending_entry)
            .await?;
        let request = RotateRequest::Set {
            password: password.clone(),
            description,
        };
        let rotated = self
            .send(request, resumed, &pending_entry, &attempts)
            .await?;
        checkpoint::reached("response-received");
        self.report.username = rotated.username;
        self.report.request_id = rotated.request_id;
        self.report.rotated_at = rotated.rotated_at;
        self.promote(&password, &pending_entry).await?;
        self.report.status = if resumed {
            RotationStatus::Resumed
        } else {
            RotationStatus::Rotated
        };
        self.report.password = Some(password);
        Ok(())
    }

    /// The password to set and whether an earlier run staged it (`#pending`, which wins
    /// over a generated one and must equal a given one); `None` when only a pending one
    /// was asked for and there is none.
    async fn choose(
        &mut self,
        source: PasswordSource,
        pending_entry: &str,
        dry_run: bool,
    ) -> Result<Option<(SecretString, bool)>> {
        let kind = self.report.provider;
        self.ensure_unique().await?;
        let staged = self
            .keyring
            .get(pending_entry)
            .await
            .map_err(Error::keyring_unavailable)?;
        let staged = self.unless_finished(staged, pending_entry, dry_run).await?;
        let resumed = staged.is_some();
        let password = match (staged, source) {
            (Some(staged), PasswordSource::Given(given))
                if staged.expose_secret() != given.expose_secret() =>
            {
                return Err(Error::Unconfirmed {
                    message: format!(
                        "an earlier rotation left an unconfirmed password in keyring entry \
                         '{pending_entry}'; run the same command without --password-stdin to \
                         finish it first"
                    ),
                    recovery_file: None,
                });
            }
            (None, PasswordSource::PendingOnly) => return Ok(None),
            (Some(staged), _) => staged,
            (None, PasswordSource::Given(given)) => given,
            (None, PasswordSource::Generate { length }) => kind.policy().generate(length)?,
        };
        Ok(Some((password, resumed)))
    }

    /// A dry run's plan of a client-set rotation.
    async fn plan_client_supplied(&mut self, resumed: bool, pending_entry: &str) -> Result<()> {
        let current = self
            .keyring
            .get(self.name.current())
            .await
            .map_err(Error::keyring_unavailable)?;
        self.report.status = RotationStatus::DryRun;
        self.report.plan.extend([
            if resumed {
                format!("reuse the unconfirmed password in '{pending_entry}'")
            } else {
                format!("generate or take the new password and store it in '{pending_entry}'")
            },
            self.provider.describe_rotation(self.credential)?,
            match current {
                Some(_) => format!(
                    "move the current password to '{}' and store the new one as '{}'",
                    self.name.slot(Slot::Previous),
                    self.name.current()
                ),
                None => format!("store the new password as '{}'", self.name.current()),
            },
        ]);
        Ok(())
    }

    /// Stages a fresh password in `#pending` (a resumed one is there already), then
    /// [`Run::before_request`]; a signal before the request removes a fresh `#pending`
    /// (nothing was sent) and keeps a resumed one (it may be live).
    async fn stage(
        &mut self,
        state: &StateDir,
        password: &SecretString,
        resumed: bool,
        pending_entry: &str,
    ) -> Result<()> {
        if !resumed {
            self.keyring
                .set(pending_entry, password)
                .await
                .map_err(Error::keyring_unavailable)?;
            self.report.keyring_writes += 1;
            checkpoint::reached("pending-written");
        }
        if let Err(stopped) = self.before_request(state) {
            if resumed {
                return Err(Error::Unconfirmed {
                    message: format!(
                        "{stopped}; the password staged by an earlier run is kept in keyring \
                         entry '{pending_entry}': run `siprot recover` (or the same command) to \
                         resend it"
                    ),
                    recovery_file: None,
                });
            }
            // As for a request that failed for sure: the fresh `#pending` goes.
            self.remove_pending(pending_entry).await;
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
        pending_entry: &str,
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
                        "{error}; the password may be live at {kind} and is kept in keyring \
                         entry '{pending_entry}': run the same command again to resend it"
                    ),
                    recovery_file: None,
                })
            }
            Err(error) => {
                self.remove_pending(pending_entry).await;
                Err(error)
            }
        }
    }

    /// Removes a `#pending` whose password was never set; a failure is a warning.
    async fn remove_pending(&mut self, pending_entry: &str) {
        if let Err(e) = self.keyring.delete(pending_entry).await {
            self.report
                .warnings
                .push(format!("could not remove '{pending_entry}': {e}"));
        }
    }

    /// A `#pending` equal to the current password was left by a rotation that finished all
    /// but removing it (killed after writing current, or the delete failed): the provider
    /// confirmed that password before it became current, so there is nothing to resend.
    /// It is removed (a dry run only says so) and the rotation starts afresh, so that a
    /// rerun really rotates instead of resending the password in use.
    async fn unless_finished(
        &mut self,
        staged: Option<SecretString>,
        pending_entry: &str,
        dry_run: bool,
    ) -> Result<Option<SecretString>> {
        let Some(staged) = staged else {
            return Ok(None);
        };
        let current = self
            .keyring
            .get(self.name.current())
            .await
            .map_err(Error::keyring_unavailable)?;
        if current.is_none_or(|c| c.expose_secret() != staged.expose_secret()) {
            return Ok(Some(staged));
        }
        log::debug!("'{pending_entry}' holds the current password: an earlier rotation finished");
        if dry_run {
            self.report.plan.push(format!(
                "remove '{pending_entry}': it holds the current password, left by a rotation \
                 that finished"
            ));
        } else {
            self.keyring
                .delete(pending_entry)
                .await
                .map_err(Error::keyring_unavailable)?;
            self.report.keyring_writes += 1;
        }
        Ok(None)
    }

    /// Current to `#previous`, pending to current, then drop `#pending`. Until the last
    /// step the password stays in `#pending`, so a failure here loses nothing.
    async fn promote(&mut self, password: &SecretString, pending_entry: &str) -> Result<()> {
        let kind = self.report.provider;
        let unconfirmed = |error: StoreError| Error::Unconfirmed {
            message: match error {
                StoreError::Ambiguous(duplicates) => format!(
                    "{kind} accepted the new password, which is kept in keyring entry \
                     '{pending_entry}', but {duplicates}; then run the same command again to \
                     finish"
                ),
                error => format!(
                    "the provider accepted the new password but the keyring failed while \
                     promoting it ({error}); it is kept in keyring entry '{pending_entry}': run \
                     the same command again to finish"
                ),
            },
            recovery_file: None,
        };
        let (keyring, name) = (self.keyring, self.name);
        let current = self
            .resolving(name.current(), || keyring.get(name.current()))
            .await
            .map_err(unconfirmed)?;
        if let Some(current) = current.filter(|c| c.expose_secret() != password.expose_secret()) {
            let previous_entry = name.slot(Slot::Previous);
            self.resolving(&previous_entry, || keyring.set(&previous_entry, &current))
                .await
                .map_err(unconfirmed)?;
            self.report.keyring_writes += 1;
            self.report.previous_kept = true;
            checkpoint::reached("previous-written");
        }
        self.resolving(name.current(), || keyring.set(name.current(), password))
            .await
            .map_err(unconfirmed)?;
        self.report.keyring_writes += 1;
        checkpoint::reached("current-written");
        match self
            .resolving(pending_entry, || keyring.delete(pending_entry))
            .await
        {
            Ok(_) => self.report.keyring_writes += 1,
            Err(e) => self.report.warnings.push(format!(
                "the new password is stored, but '{pending_entry}' could not be removed: {e}"
            )),
        }
        Ok(())
    }

    /// A server-generated rotation: keep the current password in `#previous` (or prove
    /// the keyring writable), ask the provider for a new one, store it as current (or in
    /// a recovery file when the keyring fails).
    async fn server_generated(
        &mut self,
        state: &StateDir,
        dry_run: bool,
        attempts: &Attempts,
    ) -> Result<()> {
        self.refuse_over_recovery_file(state)?;
        let previous_entry = self.name.slot(Slot::Previous);
        self.ensure_unique().await?;
        let current = self
            .keyring
            .get(self.name.current())
            .await
            .map_err(Error::keyring_unavailable)?;
        if dry_run {
            return self.plan_server_generated(current.is_some(), &previous_entry);
        }
        self.keep_previous(current.as_ref(), &previous_entry)
            .await?;
        checkpoint::reached("previous-written");
        self.before_request(state)?;
        let rotated = self
            .request_generated(attempts, current.is_some(), &previous_entry)
            .await?;
        let kind = self.report.provider;
        let password = rotated.password.ok_or_else(|| Error::Unconfirmed {
            message: format!("{kind} confirmed the rotation but returned no password"),
            recovery_file: None,
        })?;
        checkpoint::reached("response-received");
        self.report.username = rotated.username;
        self.report.request_id = rotated.request_id;
        self.report.rotated_at = rotated.rotated_at;
        let (keyring, name) = (self.keyring, self.name);
        let stored = self
            .resolving(name.current(), || keyring.set(name.current(), &password))
            .await;
        if let Err(store_error) = stored {
            return Err(self.save_for_recovery(state, &password, &store_error));
        }
        self.report.keyring_writes += 1;
        self.report.password = Some(password);
        Ok(())
    }

    /// A new request would kill the password a recovery file of this entry may hold, and
    /// make it impossible to prove from the keyring which file is live: refused.
    fn refuse_over_recovery_file(&self, state: &StateDir) -> Result<()> {
        let kind = self.report.provider;
        if let Some(path) = state
            .recovery_files_of(self.keyring.service(), self.name.current())?
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
    fn plan_server_generated(&mut self, has_current: bool, previous_entry: &str) -> Result<()> {
        let kind = self.report.provider;
        self.report.status = RotationStatus::DryRun;
        self.report.plan = vec![
            if has_current {
                format!("copy the current password to '{previous_entry}'")
            } else {
                "write and delete a probe entry to prove the keyring is writable".into()
            },
            self.provider.describe_rotation(self.credential)?,
            format!(
                "store the password {kind} returns as '{}'",
                self.name.current()
            ),
        ];
        Ok(())
    }

    /// Before the request: the current password is copied to `#previous`; with none, a
    /// probe entry is written and deleted to prove the keyring takes a write.
    async fn keep_previous(
        &mut self,
        current: Option<&SecretString>,
        previous_entry: &str,
    ) -> Result<()> {
        match current {
            Some(current) => {
                self.keyring
                    .set(previous_entry, current)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.report.keyring_writes += 1;
                self.report.previous_kept = true;
            }
            None => {
                let probe = self.name.slot(Slot::Probe);
                let marker = SecretString::from("siprot keyring probe");
                self.keyring
                    .set(&probe, &marker)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.keyring
                    .delete(&probe)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                self.report.keyring_writes += 2;
            }
        }
        Ok(())
    }

    /// Asks the provider for a new password; an unknown outcome becomes
    /// [`Error::Unconfirmed`] (the provider may have rotated it).
    async fn request_generated(
        &self,
        attempts: &Attempts,
        had_current: bool,
        previous_entry: &str,
    ) -> Result<Rotated> {
        let kind = self.report.provider;
        self.provider
            .rotate(self.credential, RotateRequest::Generate, attempts)
            .await
            .map_err(|error| match error {
                Error::OutcomeUnknown { .. } => Error::Unconfirmed {
                    message: format!(
                        "{error}; {kind} may have rotated the password without siprot \
                         receiving it; {}run the same command again to get a new, known password",
                        if had_current {
                            format!("the old one is kept in '{previous_entry}'; ")
                        } else {
                            String::new()
                        }
                    ),
                    recovery_file: None,
                },
                other => other,
            })
    }

    /// Before any request: every slot the rotation reads or writes must match one keyring
    /// item at most, or nothing is sent (exit 4, the items and how to remove the extra).
    async fn ensure_unique(&self) -> Result<()> {
        let slots = [Slot::Current, Slot::Pending, Slot::Previous].map(|s| self.name.slot(s));
        let slots: Vec<&str> = slots.iter().map(String::as_str).collect();
        self.keyring
            .ensure_unique(&slots)
            .await
            .map_err(Error::keyring_unavailable)
    }

    /// After the provider accepted, runs a keyring call on `entry`; when a second item
    /// matching it appeared since [`Run::ensure_unique`], duplicates that hold the same
    /// secret are removed (one write each) and the call runs once more. Others stay, and
    /// the error lists them.
    async fn resolving<T, F>(&mut self, entry: &str, call: impl Fn() -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        match call().await {
            Err(StoreError::Ambiguous(_)) => {
                for item in self.keyring.resolve_duplicates(&[entry]).await? {
                    self.report.keyring_writes += 1;
                    self.report.warnings.push(format!(
                        "removed a duplicate keyring item holding the same password: {item}"
                    ));
                }
                call().await
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
            self.keyring.service(),
            self.name.current(),
            kind.name(),
            password,
        ) {
            Ok(path) => Error::Unconfirmed {
                message: format!(
                    "{kind} rotated the password but the keyring could not store it \
                     ({store_error}); it was saved to {} (mode 0600): store it, then delete the file",
                    path.display()
                ),
                recovery_file: Some(path),
            },
            Err(file_error) => Error::Unconfirmed {
                message: format!(
                    "{kind} rotated the password but neither the keyring ({store_error}) nor a \
                     recovery file ({file_error}) could hold it: run the same command again once \
                     the keyring works, to get a new password"
                ),
                recovery_file: None,
            },
        }
    }
}
