//! One rotation per credential at a time: an advisory lock file per credential under the
//! state directory (`locks/`), taken without waiting.
//!
//! The lock is the operating system's (`flock` on Unix, `LockFileEx` on Windows) on an
//! open file, so it goes away with the process however it ends, SIGKILL included: a
//! stale lock file on disk is harmless, and nobody ever has to delete one by hand.
//!
//! Lock files are created with mode 0600 (on Unix: see [`crate::state`] for Windows) and
//! opened without following a symbolic link, in a directory [`StateDir::check`] has found
//! trustworthy.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};

use crate::error::{Error, Result};
use crate::state::{StateDir, no_follow, open_in_private_dir, private_options, state_file_error};

/// Held while a credential is being rotated; released when dropped (or the process dies).
#[derive(Debug)]
pub struct CredentialLock {
    _file: File,
}

impl CredentialLock {
    /// Takes the lock of `entry` in keyring `service`, or fails at once with
    /// [`Error::Busy`] naming the process that holds it.
    pub fn acquire(state: &StateDir, service: &str, entry: &str) -> Result<Self> {
        state.check()?;
        let path = state.lock_dir().join(lock_file_name(service, entry));
        let mut options = no_follow(private_options());
        let mut file = open_in_private_dir(
            options.read(true).write(true).create(true).truncate(false),
            &path,
        )
        .map_err(|e| state_file_error("the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!("process {holder}")
                } else {
                    "another process".to_owned()
                };
                return Err(Error::Busy(format!(
                    "{entry} is being rotated by another siprot ({who}, lock {})",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), e));
            }
        }
        // Only for the message a second process prints; the lock itself is what counts.
        // Padded to a fixed width, so that a shorter pid overwrites a longer one without
        // truncating the file (which costs a journal write).
        let _ = file
            .rewind()
            .and_then(|()| write!(file, "{:<20}", std::process::id()));
        log::debug!("locked {}", path.display());
        Ok(Self { _file: file })
    }

    /// The lock a run that changes something needs; `None` for a dry run, which reads
    /// only and so never holds up a real run.
    pub fn unless_dry_run(
        dry_run: bool,
        state: &StateDir,
        service: &str,
        entry: &str,
    ) -> Result<Option<Self>> {
        if dry_run {
            Ok(None)
        } else {
            Self::acquire(state, service, entry).map(Some)
        }
    }
}

/// A readable, file-name-safe prefix of the entry plus a hash of service and entry, so
/// that distinct credentials never share a lock and names stay short.
fn lock_file_name(service: &str, entry: &str) -> String {
    let readable: String = entry
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{readable}-{:016x}.lock", fnv1a(&[service, "\0", entry]))
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike std's hasher.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|p| p.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_credential_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        let first = CredentialLock::acquire(&state, "svc", "exotel/u/d").unwrap();
        let err = CredentialLock::acquire(&state, "svc", "exotel/u/d").unwrap_err();
        assert_eq!(err.exit_code().code(), 7);
        let text = err.to_string();
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        // Another credential, or the same entry in another keyring service, is free.
        let _other = CredentialLock::acquire(&state, "svc", "exotel/u/e").unwrap();
        let _elsewhere = CredentialLock::acquire(&state, "svc2", "exotel/u/d").unwrap();
        drop(first);
        let _again = CredentialLock::acquire(&state, "svc", "exotel/u/d").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn lock_files_are_private_and_never_followed_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::at(tmp.path().join("siprot"));
        drop(CredentialLock::acquire(&state, "svc", "telepath/a").unwrap());
        let path = state.lock_dir().join(lock_file_name("svc", "telepath/a"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let err = CredentialLock::acquire(&state, "svc", "telepath/a").unwrap_err();
        assert_eq!(err.exit_code().code(), 4, "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }

    #[test]
    fn lock_names_are_distinct_short_and_safe() {
        let a = lock_file_name("siprot", "telepath/a_b");
        let b = lock_file_name("siprot", "telepath/a/b");
        assert_ne!(a, b);
        let long = lock_file_name("siprot", &"x".repeat(200));
        assert!(long.len() < 120, "{long}");
        assert!(!a.contains('/'));
        assert_eq!(fnv1a(&["a"]), 0xaf63_dc4c_8601_ec8c);
    }
}
