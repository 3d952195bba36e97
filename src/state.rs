//! siprot's files under `$XDG_STATE_HOME/siprot/`: the append-only audit log and the
//! recovery files that hold a password when the keyring failed to store it.
//!
//! The audit log (`audit.jsonl`) never holds a secret. A recovery file does (mode 0600,
//! in plain text, because the keyring is what failed); `siprot` says where it is.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The state directory and the files in it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
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
    pub action: &'a str,
    pub outcome: &'a str,
    pub request_id: Option<&'a str>,
    /// HTTP requests sent (retries included); `None` when none could be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    pub exit_code: u8,
    /// The SIP username the provider returned (Telepath, Vobiz), for `verify`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
}

/// The audit outcome written just before a request that may change a password. The
/// rotation's final record (a later line) supersedes it; left as an entry's last attempt,
/// it means that rotation was cut off (SIGKILL, power loss) and its outcome is unknown.
pub const OUTCOME_IN_PROGRESS: &str = "in-progress";

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
}

/// One rotation attempt recorded in the audit log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub time: jiff::Timestamp,
    /// `rotated`, `resumed`, `failed`, `unconfirmed`, `interrupted` (stopped by a signal
    /// before its request) or [`OUTCOME_IN_PROGRESS`].
    pub outcome: String,
    pub exit_code: u8,
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
        Self { root }
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

    /// Appends one record as one line with one write, so concurrent runs never interleave.
    pub fn audit(&self, record: &AuditRecord<'_>) -> Result<()> {
        let mut line = serde_json::to_vec(record)
            .map_err(|e| Error::Unexpected(format!("cannot encode the audit record: {e}")))?;
        line.push(b'\n');
        let path = self.audit_log();
        let mut file = open_in_private_dir(private_options().append(true).create(true), &path)
            .map_err(|e| Error::io(format!("cannot open the audit log {}", path.display()), e))?;
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
            action: String,
            outcome: String,
            exit_code: u8,
            username: Option<String>,
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
            if line.action != "rotate" {
                continue;
            }
            if line.outcome == "rotated" || line.outcome == "resumed" {
                history.last_rotated = Some(line.time);
            }
            history.last_attempt = Some(Attempt {
                time: line.time,
                outcome: line.outcome,
                exit_code: line.exit_code,
            });
        }
        histories
    }

    /// Every recovery file, oldest first; a file that cannot be read is returned as its
    /// path and the problem (never quoting its contents).
    pub fn recovery_files(&self) -> Result<Vec<Result<RecoveryFile, (PathBuf, String)>>> {
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

    /// Writes a password the keyring could not take to a new file only the user can read,
    /// flushed to disk, and returns its path.
    pub fn write_recovery(
        &self,
        service: &str,
        entry: &str,
        provider: &str,
        password: &SecretString,
    ) -> Result<PathBuf> {
        let dir = self.recovery_dir();
        create_private_dir(&dir)?;
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
        let mut file = private_options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        file.write_all(&contents)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        Ok(path)
    }
}

fn read_recovery(path: &Path) -> Result<RecoveryFile, String> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| format!("cannot read it: {e}"))?);
    let stored: StoredRecovery = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "not a siprot recovery file ({})",
            crate::http::json_problem(&e)
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

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Opens `path`, creating its directory (mode 0700) only when it is missing: after the
/// first run the directory exists, and a fleet opens files here thousands of times.
pub(crate) fn open_in_private_dir(options: &OpenOptions, path: &Path) -> std::io::Result<fs::File> {
    match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir).map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            options.open(path)
        }
        other => other,
    }
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_lines_append_and_hold_no_secret_fields() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        for outcome in ["rotated", "failed"] {
            state
                .audit(&AuditRecord {
                    time: "2026-01-01T00:00:00Z".into(),
                    service: Some("siprot"),
                    provider: "telepath",
                    entry: "telepath/conn_1",
                    action: "rotate",
                    outcome,
                    request_id: Some("req-1"),
                    attempts: Some(1),
                    exit_code: 0,
                    username: None,
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
            "failed",
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
            record("2026-01-03T00:00:00Z", OUTCOME_IN_PROGRESS),
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
            OUTCOME_IN_PROGRESS
        );
        // The final record supersedes the in-progress one, even dated earlier.
        fs::write(
            state.audit_log(),
            log + &record("2026-01-01T00:00:00Z", "rotated"),
        )
        .unwrap();
        let history = &state.histories("siprot")["telepath/t"];
        assert_eq!(history.last_attempt.as_ref().unwrap().outcome, "rotated");
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
