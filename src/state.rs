//! siprot's files under `$XDG_STATE_HOME/siprot/` (else the platform's local data
//! directory: `~/.local/state/siprot` on Linux, `~/Library/Application Support/siprot` on
//! macOS, `%LOCALAPPDATA%\siprot` on Windows): the append-only audit log and the
//! recovery files that hold a password when the keyring failed to store it.
//!
//! The audit log (`audit.jsonl`) never holds a secret. A recovery file does (mode 0600,
//! in plain text, because the keyring is what failed); `siprot` says where it is. It is
//! written under a temporary name, flushed, then renamed, so that it is either complete
//! or absent. The directory also holds `holder-id`, the random id a shared store's claims
//! name this state directory by (made and read in [`crate::store`]'s `Holder`).
//!
//! As ssh treats `~/.ssh`, the state directory and its `locks/` and `recovery/`
//! directories are trusted only when they are real directories (not symbolic links),
//! owned by the user and writable by nobody else; lock files and the audit log are
//! opened without following a symbolic link. Anything else is a configuration error
//! (exit 4) found before anything is sent. The directories are checked once per process
//! ([`StateDir::check`]), not at every file opened.
//! The inventory and the config file are trusted by the same rules, relaxed for files a
//! user may keep anywhere (root's files, sticky directories), in [`crate::trust`].
//!
//! Windows has no Unix modes or owners to check: there the directories must be real
//! directories (no symbolic link or junction) and files are opened without following a
//! link (`FILE_FLAG_OPEN_REPARSE_POINT`), but who may read them is the access list they
//! inherit from the user's profile, which siprot does not check.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::audit::{AuditAction, AuditOutcome};
use crate::error::{Error, ExitCode, Result};
use crate::providers::PasswordOrigin;

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    /// What [`StateDir::check`] found, shared by the clones (once per process).
    checked: Arc<OnceLock<Result<(), String>>>,
}

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    pub time: String,
    /// The keyring service of the entry (for actions that use the keyring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a str>,
    pub provider: &'a str,
    pub entry: &'a str,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub request_id: Option<&'a str>,
    /// HTTP requests sent (retries included); `None` when none could be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    pub exit_code: ExitCode,
    /// The SIP username the provider returned (Telepath, Vobiz), for `verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    /// The registrar a verification registered with (`verify` records only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrar: Option<&'a str>,
}

/// How far in the future an audit record may be dated and still count as "now": clocks of
/// hosts that share a state directory, or one stepped by NTP, differ by a little.
pub const FUTURE_TOLERANCE: jiff::SignedDuration = jiff::SignedDuration::from_secs(5 * 60);

/// How old a rotation recorded at some time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordAge {
    /// Its age; zero for a record dated up to [`FUTURE_TOLERANCE`] ahead.
    Known(jiff::SignedDuration),
    /// Dated this far in the future, beyond [`FUTURE_TOLERANCE`]: the clock ran ahead when
    /// it was written (or the line was forged), so its real age is unknown.
    Future(jiff::SignedDuration),
}

impl RecordAge {
    pub fn of(recorded: jiff::Timestamp, now: jiff::Timestamp) -> Self {
        let age = now.duration_since(recorded);
        if -age > FUTURE_TOLERANCE {
            RecordAge::Future(-age)
        } else {
            RecordAge::Known(age.max(jiff::SignedDuration::ZERO))
        }
    }
}

/// One entry's rotations in the audit log.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The time of the last successful rotation: of the last such line in the log, which
    /// is append-only and written by one rotation of an entry at a time, so a clock that
    /// was stepped back or ran ahead cannot hide a later line behind an earlier date.
    pub last_rotated: Option<jiff::Timestamp>,
    /// The last rotation attempt in the log, whatever its outcome.
    pub last_attempt: Option<Attempt>,
    /// The SIP username the provider returned most recently, if it ever did.
    pub username: Option<String>,
    /// The last verification (`verify`, `rotate --verify`) in the log.
    pub last_verification: Option<Verification>,
    /// Whether a verification accepted the current password after the last successful
    /// rotation (by log order: a rotation line resets it, a `verified` line sets it).
    pub verified_since_rotation: bool,
    /// The last record since the last successful rotation that left the provider's
    /// password unknown (`in-progress` cut off, or `unconfirmed`): see
    /// [`History::outcome_unknown`].
    unknown: Option<Attempt>,
    /// While the last attempt is an `in-progress` record: what `unknown` was before it,
    /// for a final record that says its request changed nothing.
    unknown_before_request: Option<Attempt>,
}

impl History {
    /// Whether the provider's password is unknown after the entry's rotations: the record
    /// that made it so, else `None`. One rule for `status`, the fleet's due check and
    /// `recover`:
    /// - an `in-progress` record with no final one after it: that rotation was cut off
    ///   (SIGKILL, power loss) after its request may have reached the provider (or it is
    ///   still running: the credential's lock tells);
    /// - for a server-generated provider (`origin`, Telepath) also an `unconfirmed` one
    ///   whose rotation sent its request (exit 9: a 5xx, a timeout after sending, an
    ///   answer no store took), and either stays unknown through later attempts that
    ///   changed nothing for sure (`failed`, `interrupted`, an `unconfirmed` one that sent
    ///   nothing), until a successful rotation (`rotated`, or `resumed`, which `recover`
    ///   writes when it stores a recovery file's password): the provider made a password
    ///   and killed the old one, and only a rotation brings a live one back.
    ///
    /// A client-set provider's unconfirmed rotation keeps its password in `#pending`,
    /// which `recover` (or a rerun) resends: its outcome is not lost, and only a cut-off
    /// last attempt counts.
    pub fn outcome_unknown(&self, origin: PasswordOrigin) -> Option<&Attempt> {
        if origin == PasswordOrigin::ServerGenerated {
            return self.unknown.as_ref();
        }
        self.last_attempt
            .as_ref()
            .filter(|attempt| attempt.outcome == AuditOutcome::InProgress)
    }

    /// Takes one rotation record (`action` `rotate`), in log order.
    fn record_attempt(&mut self, attempt: Attempt) {
        let after_request = self
            .last_attempt
            .as_ref()
            .is_some_and(|last| last.outcome == AuditOutcome::InProgress);
        match &attempt.outcome {
            outcome if outcome.is_rotation() => {
                self.last_rotated = Some(attempt.time);
                self.verified_since_rotation = false;
                self.unknown = None;
            }
            AuditOutcome::InProgress => {
                self.unknown_before_request = self.unknown.replace(attempt.clone());
            }
            // One that sent nothing (refused over a recovery file or a claim, a store that
            // failed first) lost no answer: it changed nothing, as a failure.
            AuditOutcome::Unconfirmed if attempt.attempts != Some(0) => {
                self.unknown = Some(attempt.clone());
            }
            // Only before a request: an `in-progress` before it was cut off.
            AuditOutcome::Interrupted => {}
            // The final record of the request just recorded in progress: it changed
            // nothing for sure, so what was unknown before it still is.
            _ if after_request => self.unknown = self.unknown_before_request.take(),
            _ => {}
        }
        self.last_attempt = Some(attempt);
    }
}

/// One verification recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Verification {
    pub time: jiff::Timestamp,
    /// `verified`, `rejected`, `unreachable`, `not-verified`, `failed` (or one this
    /// version does not know).
    pub outcome: AuditOutcome,
    pub registrar: Option<String>,
}

/// One rotation attempt recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub time: jiff::Timestamp,
    /// `rotated`, `resumed`, `failed`, `unconfirmed`, `interrupted` (stopped by a signal
    /// before its request), `in-progress` ([`AuditOutcome::InProgress`]) or one this
    /// version does not know.
    pub outcome: AuditOutcome,
    pub exit_code: ExitCode,
    /// The requests it sent (`None` in a record that does not say).
    pub attempts: Option<u32>,
}

impl Attempt {
    /// Why this record (one [`History::outcome_unknown`] returned) leaves the provider's
    /// password unknown, to follow "its last rotation (<record>)".
    pub fn unknown_cause(&self) -> &'static str {
        if self.outcome == AuditOutcome::InProgress {
            "was cut off with its request in flight (killed, or a power loss)"
        } else {
            "ended unconfirmed (exit 9): its answer was lost (an error such as HTTP 500, or a \
             timeout after sending) or never stored"
        }
    }
}

/// A recovery file as read back by `siprot recover`.
#[derive(Debug)]
pub struct RecoveryFile {
    pub path: PathBuf,
    pub service: String,
    pub entry: String,
    pub provider: String,
    pub created_at: jiff::Timestamp,
    pub password: SecretString,
}

#[derive(Deserialize)]
struct StoredRecovery {
    service: String,
    entry: String,
    provider: String,
    created_at: jiff::Timestamp,
    password: SecretString,
}

#[derive(Serialize)]
struct RecoveryContents<'a> {
    service: &'a str,
    entry: &'a str,
    provider: &'a str,
    created_at: String,
    password: &'a str,
}

impl StateDir {
    /// `$XDG_STATE_HOME/siprot`, else the platform's state or local data directory.
    pub fn locate() -> Result<Self> {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(dirs::state_dir)
            .or_else(dirs::data_local_dir)
            .ok_or_else(|| {
                Error::Config("no state directory: set XDG_STATE_HOME to an absolute path".into())
            })?;
        Ok(Self::at(base.join("siprot")))
    }

    pub fn at(root: PathBuf) -> Self {
        Self {
            root,
            checked: Arc::default(),
        }
    }

    /// Makes sure the state directory can be trusted and written, before anything that
    /// writes to it (and so before any request): it and `locks/` are created (mode 0700)
    /// when missing; it, `locks/` and `recovery/` must be real directories owned by the
    /// user, writable by the user and by nobody else, and the audit log must not be a
    /// symbolic link. Checked once per process; a failure is [`Error::Config`] (exit 4)
    /// saying what to fix.
    pub fn check(&self) -> Result<()> {
        self.checked
            .get_or_init(|| self.check_now())
            .clone()
            .map_err(Error::Config)
    }

    fn check_now(&self) -> Result<(), String> {
        ensure_private_dir(&self.root, "state directory")?;
        ensure_private_dir(&self.lock_dir(), "lock directory")?;
        let recovery = self.recovery_dir();
        if fs::symlink_metadata(&recovery).is_ok() {
            verify_private_dir(&recovery, "recovery directory")?;
        }
        let audit = self.audit_log();
        if let Ok(meta) = fs::symlink_metadata(&audit)
            && !meta.file_type().is_file()
        {
            return Err(format!(
                "the audit log {} is {}, not a regular file: remove it (siprot follows no \
                 links in its state directory)",
                audit.display(),
                if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "something else"
                }
            ));
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.jsonl")
    }

    pub fn recovery_dir(&self) -> PathBuf {
        self.root.join("recovery")
    }

    pub fn lock_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Appends one record as one line with one write, so concurrent runs never interleave.
    /// Records with more fields than [`AuditRecord`] flatten one into theirs.
    pub fn audit(&self, record: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Unexpected(format!("cannot encode the audit record: {e}")))?;
        line.push(b'\n');
        self.check()?;
        let path = self.audit_log();
        let mut file = open_in_private_dir(
            no_follow(private_options()).append(true).create(true),
            &path,
        )
        .map_err(|e| state_file_error("the audit log", &path, e))?;
        file.write_all(&line).map_err(|e| {
            Error::io(
                format!("cannot append to the audit log {}", path.display()),
                e,
            )
        })
    }

    /// When the audit log last recorded a successful rotation of `entry` in `service`.
    pub fn last_rotated(&self, service: &str, entry: &str) -> Option<jiff::Timestamp> {
        self.last_rotations(service).remove(entry)
    }

    /// The time of the last successful rotation of every entry of `service` in the audit
    /// log, read in one pass.
    pub fn last_rotations(&self, service: &str) -> HashMap<String, jiff::Timestamp> {
        self.histories(service)
            .into_iter()
            .filter_map(|(entry, history)| Some((entry, history.last_rotated?)))
            .collect()
    }

    /// What the audit log says about each entry of `service`: its last successful
    /// rotation and its last rotation attempt, whatever the outcome, each the last such
    /// line of the log (not the one with the latest date).
    pub fn histories(&self, service: &str) -> HashMap<String, History> {
        #[derive(Deserialize)]
        struct Line {
            time: jiff::Timestamp,
            service: Option<String>,
            entry: String,
            action: AuditAction,
            outcome: AuditOutcome,
            exit_code: ExitCode,
            attempts: Option<u32>,
            username: Option<String>,
            registrar: Option<String>,
        }
        let mut histories: HashMap<String, History> = HashMap::new();
        let Ok(file) = fs::File::open(self.audit_log()) else {
            return histories;
        };
        // Line by line: the log only grows (a daily fleet run adds a line per credential),
        // so memory stays bounded by the number of entries, not by the log's size.
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        let rotations = std::iter::from_fn(|| {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => None,
                // A line that is not a record (torn by a crash, edited by hand) is skipped.
                Ok(_) => Some(serde_json::from_slice::<Line>(&line).ok()),
            }
        })
        .flatten()
        .filter(|l| l.service.as_deref().is_none_or(|s| s == service));
        for line in rotations {
            let history = histories.entry(line.entry).or_default();
            if line.username.is_some() {
                history.username = line.username;
            }
            if line.action == AuditAction::Verify {
                history.verified_since_rotation |= line.outcome == AuditOutcome::Verified;
                history.last_verification = Some(Verification {
                    time: line.time,
                    outcome: line.outcome,
                    registrar: line.registrar,
                });
                continue;
            }
            if line.action != AuditAction::Rotate {
                continue;
            }
            history.record_attempt(Attempt {
                time: line.time,
                outcome: line.outcome,
                exit_code: line.exit_code,
                attempts: line.attempts,
            });
        }
        histories
    }

    /// Every recovery file, oldest first; a file that cannot be read is returned as its
    /// path and the problem (never quoting its contents). Temporary files of a write in
    /// progress (or of one that failed) are not recovery files and are never listed.
    pub fn recovery_files(&self) -> Result<Vec<Result<RecoveryFile, (PathBuf, String)>>> {
        self.check()?;
        let dir = self.recovery_dir();
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
        };
        let mut files = Vec::new();
        for item in listing {
            let path = item
                .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?
                .path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            files.push(read_recovery(&path).map_err(|problem| (path, problem)));
        }
        files.sort_by_key(|f| match f {
            Ok(file) => (Some(file.created_at), file.path.clone()),
            Err((path, _)) => (None, path.clone()),
        });
        Ok(files)
    }

    /// The recovery files that may hold a password of `entry` in keyring `service`: those
    /// naming it, and those that cannot be read but whose file name is the entry's.
    pub fn recovery_files_of(&self, service: &str, entry: &str) -> Result<Vec<PathBuf>> {
        Ok(self
            .recovery_files()?
            .into_iter()
            .filter_map(|file| match file {
                Ok(file) => (file.service == service && file.entry == entry).then_some(file.path),
                Err((path, _)) => recovery_file_name_fits(&path, entry).then_some(path),
            })
            .collect())
    }

    /// Writes a password the keyring could not take to a new file only the user can read,
    /// flushed to disk, and returns its path. The file is written under a temporary name
    /// and renamed once complete; a write that fails leaves no file behind.
    pub fn write_recovery(
        &self,
        service: &str,
        entry: &str,
        provider: &str,
        password: &SecretString,
    ) -> Result<PathBuf> {
        self.check()?;
        let dir = self.recovery_dir();
        create_private_dir(&dir)?;
        verify_private_dir(&dir, "recovery directory").map_err(Error::Config)?;
        let stamp = jiff::Timestamp::now();
        let file_name = format!(
            "{}-{}.json",
            sanitize(entry),
            stamp.strftime("%Y%m%dT%H%M%S%.fZ")
        );
        let path = dir.join(file_name);
        let contents = Zeroizing::new(
            serde_json::to_vec_pretty(&RecoveryContents {
                service,
                entry,
                provider,
                created_at: stamp.to_string(),
                password: password.expose_secret(),
            })
            .map_err(|e| Error::Unexpected(format!("cannot encode the recovery file: {e}")))?,
        );
        write_new_file(&dir, &path, &contents)?;
        Ok(path)
    }
}

/// Writes `contents` (plus a final newline) to `path` in `dir` so that `path` is either
/// absent or complete: to a temporary name first (created exclusively, mode 0600, never
/// through a symbolic link), flushed, renamed to `path`, then the directory is flushed.
/// Whatever a failed write left is removed. `path` is unique to the caller (an entry's
/// file name with the time in nanoseconds, written under the entry's lock), so the
/// rename replaces nothing.
fn write_new_file(dir: &Path, path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = no_follow(private_options())
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", temp.display()), e))
        .and_then(|()| {
            drop(file);
            fs::rename(&temp, path).map_err(|e| {
                Error::io(
                    format!("cannot rename {} to {}", temp.display(), path.display()),
                    e,
                )
            })
        });
    if let Err(error) = written {
        if let Err(e) = fs::remove_file(&temp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("could not remove {}: {e}", temp.display());
        }
        return Err(error);
    }
    // The file is complete under its name; a directory that cannot be flushed does not
    // make it less so, and removing it now would lose the only copy.
    if let Err(e) = sync_dir(dir) {
        log::warn!("could not flush the directory {}: {e}", dir.display());
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Whether `path`'s file name is one [`StateDir::write_recovery`] gives a file of `entry`.
pub fn recovery_file_name_fits(path: &Path, entry: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".json"))
        .and_then(|n| n.strip_prefix(&sanitize(entry)))
        .is_some_and(|stamp| stamp.starts_with('-') && stamp.len() > 1)
}

fn read_recovery(path: &Path) -> Result<RecoveryFile, String> {
    let bytes = Zeroizing::new(read_no_follow(path).map_err(|e| format!("cannot read it: {e}"))?);
    let stored: StoredRecovery = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "not a siprot recovery file ({})",
            crate::redact::json_problem(&e)
        )
    })?;
    Ok(RecoveryFile {
        path: path.to_owned(),
        service: stored.service,
        entry: stored.entry,
        provider: stored.provider,
        created_at: stored.created_at,
        password: stored.password,
    })
}

/// A file-name-safe rendering of an entry name (`/` and other specials become `_`).
fn sanitize(entry: &str) -> String {
    entry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// Options that create a file only its owner can read and write: mode 0600 on Unix. On
/// Windows a new file takes the access list of its directory, which under the user's
/// profile (`%LOCALAPPDATA%`) admits only the user, SYSTEM and administrators.
pub(crate) fn private_options() -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut options = OpenOptions::new();
        options.mode(0o600);
        options
    }
    #[cfg(not(unix))]
    OpenOptions::new()
}

/// Never follows a symbolic link at the path: on Unix `O_NOFOLLOW` fails the open; on
/// Windows `FILE_FLAG_OPEN_REPARSE_POINT` opens the link itself (never its target), which
/// the callers then refuse as not a regular file.
pub(crate) fn no_follow(mut options: OpenOptions) -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NOFOLLOW);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options
}

#[cfg(unix)]
const O_NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// `FILE_FLAG_OPEN_REPARSE_POINT` of `CreateFileW`.
#[cfg(windows)]
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;

fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = no_follow(OpenOptions::new()).read(true).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    // Sized up front, so that no reallocation leaves a copy of the password behind.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0) + 1);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The error for a file of the state directory that cannot be opened: a symbolic link
/// or a directory the user cannot write is something to fix (exit 4), the rest is I/O.
pub(crate) fn state_file_error(what: &str, path: &Path, error: std::io::Error) -> Error {
    #[cfg(unix)]
    if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return Error::Config(format!(
            "{what} {} is a symbolic link: remove it (siprot follows no links in its state \
             directory)",
            path.display()
        ));
    }
    if let Some(hint) = unwritable(&error) {
        return Error::Config(format!(
            "cannot write {what} {} ({error}): {hint}",
            path.display()
        ));
    }
    Error::io(format!("cannot open {what} {}", path.display()), error)
}

/// What to do when the state directory cannot be written, for the errors that say so.
fn unwritable(error: &std::io::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::PermissionDenied
        | ErrorKind::ReadOnlyFilesystem
        | ErrorKind::NotADirectory
        | ErrorKind::AlreadyExists => Some(
            "make the state directory a writable directory of yours (chmod 700), or set \
             XDG_STATE_HOME to one",
        ),
        _ => None,
    }
}

/// Opens `path`, creating its directory (mode 0700) only when it is missing: after the
/// first run the directory exists, and a fleet opens files here thousands of times.
pub(crate) fn open_in_private_dir(options: &OpenOptions, path: &Path) -> std::io::Result<fs::File> {
    match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_dir(dir)?;
            }
            options.open(path)
        }
        other => other,
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    create_dir(dir).map_err(|e| match unwritable(&e) {
        Some(hint) => Error::Config(format!("cannot create {} ({e}): {hint}", dir.display())),
        None => Error::io(format!("cannot create {}", dir.display()), e),
    })
}

/// Creates `dir` (mode 0700) when missing, then checks it as [`verify_private_dir`] does.
fn ensure_private_dir(dir: &Path, what: &str) -> Result<(), String> {
    if let Err(e) = create_dir(dir) {
        return Err(format!(
            "cannot create the {what} {} ({e}): {}",
            dir.display(),
            unwritable(&e).unwrap_or("check the path and its parents")
        ));
    }
    verify_private_dir(dir, what)
}

/// Refuses a directory that is a symbolic link, not a directory, not owned by the
/// effective user, writable by group or others, or not writable by its owner; the
/// message says what to fix.
fn verify_private_dir(dir: &Path, what: &str) -> Result<(), String> {
    let shown = dir.display();
    let meta =
        fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect the {what} {shown}: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "the {what} {shown} is a symbolic link: replace it with a real directory (mode \
             700); siprot keeps passwords and locks there and follows no links"
        ));
    }
    if !meta.is_dir() {
        return Err(format!(
            "the {what} {shown} is not a directory: move it away, or set XDG_STATE_HOME"
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!(
                "the {what} {shown} is owned by uid {}, not by you (uid {me}): chown it to \
                 yourself, or set XDG_STATE_HOME to a directory of your own",
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "the {what} {shown} is writable by group or others (mode {mode:o}): chmod 700 \
                 {shown}"
            ));
        }
        if mode & 0o300 != 0o300 {
            return Err(format!(
                "the {what} {shown} is not writable by you (mode {mode:o}): chmod 700 {shown}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines_append_and_hold_no_secret_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        for outcome in [AuditOutcome::Rotated, AuditOutcome::Failed] {
            state
                .audit(&AuditRecord {
                    time: "2026-01-01T00:00:00Z".into(),
                    service: Some("siprot"),
                    provider: "telepath",
                    entry: "telepath/conn_1",
                    action: AuditAction::Rotate,
                    outcome,
                    request_id: Some("req-1"),
                    attempts: Some(1),
                    exit_code: crate::error::exit::SUCCESS,
                    username: None,
                    registrar: None,
                })
                .unwrap();
        }
        let text = fs::read_to_string(state.audit_log()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["outcome"], "failed");
        assert_eq!(lines[0]["entry"], "telepath/conn_1");
    }

    #[test]
    fn histories_skip_torn_and_foreign_lines_and_keep_reading() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        fs::create_dir_all(state.audit_log().parent().unwrap()).unwrap();
        let record = |time: &str, service: &str, entry: &str, outcome: &str| {
            format!(
                r#"{{"time":"{time}","service":"{service}","provider":"vobiz","entry":"{entry}","action":"rotate","outcome":"{outcome}","exit_code":0}}"#
            )
        };
        let mut log = Vec::new();
        log.extend(record("2026-01-01T00:00:00Z", "siprot", "vobiz/a", "rotated").as_bytes());
        log.extend(b"\n{\"time\":\"2026-01-0");
        log.extend(b"\n\xff\xfe not utf-8\n");
        log.extend(record("2026-01-02T00:00:00Z", "other", "vobiz/a", "rotated").as_bytes());
        log.push(b'\n');
        log.extend(record("2026-01-03T00:00:00Z", "siprot", "vobiz/a", "failed").as_bytes());
        log.push(b'\n');
        log.extend(record("2026-01-04T00:00:00Z", "siprot", "vobiz/b", "rotated").as_bytes());
        log.extend(
            b"\n{\"time\":\"2026-01-05T00:00:00Z\",\"provider\":\"vobiz\",\"entry\":\"vobiz/a\",\"action\":\"disable\",\"outcome\":\"done\",\"exit_code\":0,\"username\":\"sip-a\"}\n",
        );
        fs::write(state.audit_log(), log).unwrap();

        let histories = state.histories("siprot");
        assert_eq!(histories.len(), 2);
        let a = &histories["vobiz/a"];
        assert_eq!(
            a.last_rotated.unwrap().to_string(),
            "2026-01-01T00:00:00Z",
            "the other service's rotation does not count"
        );
        assert_eq!(
            a.last_attempt.as_ref().unwrap().outcome,
            AuditOutcome::Failed,
            "a disable is not a rotation attempt"
        );
        assert_eq!(a.username.as_deref(), Some("sip-a"));
        assert_eq!(histories["vobiz/b"].username, None);
        let b = &histories["vobiz/b"];
        assert_eq!(b.last_rotated.unwrap().to_string(), "2026-01-04T00:00:00Z");
    }

    #[test]
    fn the_last_line_of_an_entry_wins_over_a_later_date() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        fs::create_dir_all(state.root()).unwrap();
        let record = |time: &str, outcome: &str| {
            format!(
                "{{\"time\":\"{time}\",\"service\":\"siprot\",\"provider\":\"telepath\",\"entry\":\"telepath/t\",\"action\":\"rotate\",\"outcome\":\"{outcome}\",\"exit_code\":0}}\n"
            )
        };
        // A future-dated success, then a real one and a rotation cut off after its
        // in-progress record.
        let log = [
            record("2030-01-01T00:00:00Z", "rotated"),
            record("2026-01-02T00:00:00Z", "rotated"),
            record("2026-01-03T00:00:00Z", "in-progress"),
        ]
        .concat();
        fs::write(state.audit_log(), &log).unwrap();
        let history = &state.histories("siprot")["telepath/t"];
        assert_eq!(
            history.last_rotated.unwrap().to_string(),
            "2026-01-02T00:00:00Z"
        );
        assert_eq!(
            history.last_attempt.as_ref().unwrap().outcome,
            AuditOutcome::InProgress
        );
        assert_eq!(
            history
                .outcome_unknown(PasswordOrigin::ServerGenerated)
                .map(|a| a.time.to_string()),
            Some("2026-01-03T00:00:00Z".to_owned()),
            "a rotation cut off after its in-progress record"
        );
        // The final record supersedes the in-progress one, even dated earlier.
        fs::write(
            state.audit_log(),
            log + &record("2026-01-01T00:00:00Z", "rotated"),
        )
        .unwrap();
        let history = &state.histories("siprot")["telepath/t"];
        assert_eq!(
            history.last_attempt.as_ref().unwrap().outcome,
            AuditOutcome::Rotated
        );
        assert!(
            history
                .outcome_unknown(PasswordOrigin::ServerGenerated)
                .is_none()
        );
    }

    /// A server-generated provider's `unconfirmed` record (a lost answer) leaves its
    /// outcome unknown until a successful rotation, through attempts that changed nothing
    /// (a cut-off one whose final record is `failed` included); a client-set one's does
    /// not (its `#pending` keeps the password).
    #[test]
    fn an_unconfirmed_server_generated_rotation_stays_unknown_until_a_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        fs::create_dir_all(state.root()).unwrap();
        let record = |time: &str, outcome: &str| {
            format!(
                "{{\"time\":\"2026-01-0{time}T00:00:00Z\",\"service\":\"siprot\",\"provider\":\"telepath\",\"entry\":\"telepath/t\",\"action\":\"rotate\",\"outcome\":\"{outcome}\",\"exit_code\":9}}\n"
            )
        };
        let unknown = |log: &[String], origin| {
            fs::write(state.audit_log(), log.concat()).unwrap();
            state.histories("siprot")["telepath/t"]
                .outcome_unknown(origin)
                .map(|a| (a.time.to_string(), a.outcome.to_string()))
        };
        let server = PasswordOrigin::ServerGenerated;
        let mut log = vec![
            record("1", "rotated"),
            record("2", "in-progress"),
            record("3", "unconfirmed"),
        ];
        let lost = Some(("2026-01-03T00:00:00Z".to_owned(), "unconfirmed".to_owned()));
        assert_eq!(unknown(&log, server), lost);
        assert_eq!(unknown(&log, PasswordOrigin::ClientSupplied), None);
        // A later request that failed for sure, one stopped before its request, and one
        // refused before sending (over a recovery file or a claim).
        log.extend([
            record("4", "in-progress"),
            record("5", "failed"),
            record("6", "interrupted"),
            record("6", "unconfirmed").replace("\"exit_code\"", "\"attempts\":0,\"exit_code\""),
        ]);
        assert_eq!(unknown(&log, server), lost);
        let nothing_sent = [record("1", "rotated"), log[log.len() - 1].clone()];
        assert_eq!(unknown(&nothing_sent, server), None, "it sent nothing");
        // A cut-off rotation, then one that failed before sending: still cut off.
        log.extend([record("7", "in-progress"), record("8", "interrupted")]);
        let cut_off = Some(("2026-01-07T00:00:00Z".to_owned(), "in-progress".to_owned()));
        assert_eq!(unknown(&log, server), cut_off);
        log.push(record("9", "resumed"));
        assert_eq!(unknown(&log, server), None, "recover stored the password");
        log.extend([record("9", "unconfirmed"), record("9", "rotated")]);
        assert_eq!(unknown(&log, server), None, "a later rotation");
    }

    #[test]
    fn unknown_actions_and_outcomes_are_read_not_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        fs::create_dir_all(state.root()).unwrap();
        let line = |action: &str, outcome: &str, username: &str| {
            format!(
                "{{\"time\":\"2026-01-01T00:00:00Z\",\"service\":\"siprot\",\"provider\":\"vobiz\",\"entry\":\"vobiz/a\",\"action\":\"{action}\",\"outcome\":\"{outcome}\",\"exit_code\":0,\"username\":\"{username}\"}}\n"
            )
        };
        // Lines a newer siprot might write: a rotation with an outcome this version does
        // not know (it counts as the last attempt, not as a rotation), and an unknown
        // action (whose username is still taken).
        let log = [
            line("rotate", "rotated", "sip-1"),
            line("rotate", "rolled-back", "sip-2"),
            line("verify", "accepted", "sip-3"),
        ]
        .concat();
        fs::write(state.audit_log(), log).unwrap();
        let history = &state.histories("siprot")["vobiz/a"];
        assert_eq!(
            history.last_attempt.as_ref().unwrap().outcome,
            AuditOutcome::Other("rolled-back".into())
        );
        assert!(history.last_rotated.is_some());
        assert_eq!(history.username.as_deref(), Some("sip-3"));
    }

    #[test]
    fn the_last_verification_is_kept_and_a_rotation_makes_the_password_unverified() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        let write = |action: AuditAction, outcome: AuditOutcome, registrar: Option<&str>| {
            state
                .audit(&AuditRecord {
                    time: jiff::Timestamp::now().to_string(),
                    service: Some("siprot"),
                    provider: "vobiz",
                    entry: "vobiz/a",
                    action,
                    outcome,
                    request_id: None,
                    attempts: None,
                    exit_code: crate::error::exit::SUCCESS,
                    username: None,
                    registrar,
                })
                .unwrap();
        };
        let history = || state.histories("siprot").remove("vobiz/a").unwrap();
        write(AuditAction::Rotate, AuditOutcome::Rotated, None);
        assert!(!history().verified_since_rotation);
        assert!(history().last_verification.is_none());
        let registrar = Some("sip:127.0.0.1:5060;transport=udp");
        write(AuditAction::Verify, AuditOutcome::Verified, registrar);
        write(AuditAction::Verify, AuditOutcome::Unreachable, registrar);
        let h = history();
        assert!(
            h.verified_since_rotation,
            "a later failed try takes nothing back"
        );
        let last = h.last_verification.unwrap();
        assert_eq!(last.outcome, AuditOutcome::Unreachable);
        assert_eq!(last.registrar.as_deref(), registrar);
        assert!(h.last_rotated.is_some() && h.last_attempt.is_some());
        write(AuditAction::Rotate, AuditOutcome::Failed, None);
        assert!(
            history().verified_since_rotation,
            "a failed rotation changed nothing"
        );
        write(AuditAction::Rotate, AuditOutcome::Rotated, None);
        assert!(!history().verified_since_rotation);
        write(AuditAction::Verify, AuditOutcome::Rejected, registrar);
        assert!(!history().verified_since_rotation);
        let text = fs::read_to_string(state.audit_log()).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["action"], "verify");
        assert_eq!(last["outcome"], "rejected");
        assert_eq!(last["registrar"], "sip:127.0.0.1:5060;transport=udp");
    }

    #[test]
    fn a_record_more_than_five_minutes_ahead_has_no_age() {
        let now: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let at = |secs: i64| now + jiff::SignedDuration::from_secs(secs);
        assert_eq!(
            RecordAge::of(at(-90), now),
            RecordAge::Known(jiff::SignedDuration::from_secs(90))
        );
        assert_eq!(
            RecordAge::of(at(300), now),
            RecordAge::Known(jiff::SignedDuration::ZERO)
        );
        assert_eq!(
            RecordAge::of(at(301), now),
            RecordAge::Future(jiff::SignedDuration::from_secs(301))
        );
    }

    /// Issue 12 item 6: a write that fails (here: the file size limit is 0, as on a full
    /// file system) leaves no file, not an empty one that `recover` trips over forever.
    /// The write runs in a child process (this test binary again), where the limit is set.
    #[cfg(unix)]
    #[test]
    fn a_failed_recovery_write_leaves_no_file() {
        const CHILD: &str = "SIPROT_TEST_RECOVERY_WRITE_CHILD";
        if let Some(root) = std::env::var_os(CHILD) {
            let state = StateDir::at(PathBuf::from(root));
            let pw = SecretString::from("n0t-Written-Pass");
            let error = state
                .write_recovery("siprot", "telepath/conn_1", "telepath", &pw)
                .unwrap_err();
            assert!(error.to_string().contains("cannot write"), "{error}");
            // A directory, since no file can be written here: proof that the child ran.
            fs::create_dir(state.root().join("child-ran")).unwrap();
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("siprot");
        let state = StateDir::at(root.clone());
        fs::create_dir_all(state.recovery_dir()).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"trap '' XFSZ; ulimit -f 0 && exec "$0" "$@""#)
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "state::tests::a_failed_recovery_write_leaves_no_file",
                "--test-threads=1",
            ])
            .env(CHILD, &root)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "the write in the child did not fail cleanly"
        );
        assert!(
            root.join("child-ran").is_dir(),
            "the child test did not run"
        );
        let left: Vec<_> = fs::read_dir(state.recovery_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "a failed write left {left:?}");

        // A temporary file (of a write in progress, or one cut off by SIGKILL) is never
        // listed as a recovery file.
        fs::write(
            state
                .recovery_dir()
                .join(".telepath_conn_1-20260101T000000Z.json.tmp"),
            "{}",
        )
        .unwrap();
        assert!(state.recovery_files().unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_recovery_write_whose_rename_fails_removes_its_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("x.json");
        // A non-empty directory at the final name makes the rename fail.
        fs::create_dir_all(path.join("occupied")).unwrap();
        let error = write_new_file(dir, &path, b"{}").unwrap_err();
        assert!(error.to_string().contains("cannot rename"), "{error}");
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.json"], "only the directory that was there");
    }

    #[cfg(unix)]
    #[test]
    fn directories_are_checked_once_and_refused_with_what_to_fix() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        state.check().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(state.root()), 0o700);
        assert_eq!(mode(&state.lock_dir()), 0o700);
        // Once per process: a later change is not looked at again by this StateDir...
        fs::set_permissions(state.root(), fs::Permissions::from_mode(0o777)).unwrap();
        state.check().unwrap();
        // ...but a new process (a new StateDir) refuses it.
        let error = StateDir::at(state.root().to_owned()).check().unwrap_err();
        assert_eq!(error.exit_code().code(), 4);
        let text = error.to_string();
        assert!(
            text.contains(&format!("chmod 700 {}", state.root().display())),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[cfg(unix)]
    #[test]
    fn recovery_files_are_private_and_hold_the_password() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        let pw = SecretString::from("rec0very-Pass");
        let path = state
            .write_recovery("siprot", "telepath/conn_1", "telepath", &pw)
            .unwrap();
        assert!(path.starts_with(state.recovery_dir()));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let saved: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(saved["password"], "rec0very-Pass");
        assert_eq!(saved["entry"], "telepath/conn_1");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("telepath_conn_1-"), "{name}");
    }
}
