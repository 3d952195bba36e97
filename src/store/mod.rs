//! Where rotated passwords are kept: one [`SecretStore`] interface over the OS keyring
//! ([`keyring`], the default) and a shared Vault/OpenBao KV v2 store ([`vault`]); unit
//! tests also use an in-memory store of either kind (`memory`). [`diagnose`] says why the
//! keyring cannot be used (no bus, no Secret Service, locked), for its errors and `doctor`.
//!
//! A credential has slots ([`Slot`]): its current password, a `#pending` one staged
//! before the request that sets it (or, in a shared store, a claim marker with no
//! password), and `#previous`, the one before the current. A store keeps each slot of
//! each credential ([`EntryName`]) and answers reads, writes, deletes and a listing of
//! everything it holds for siprot; it never decides the order of writes (that is
//! [`crate::rotation`]'s job).
//!
//! Writes take a [`Precondition`]: `Absent` creates only if the slot is empty (the claim
//! two hosts race for), `Version` replaces only the version read earlier (KV v2
//! check-and-set). A store without versions (the keyring, whose only writers are siprot
//! processes serialised by the local lock) checks `Absent` and ignores `Version`.
//!
//! Errors ([`StoreError`]) carry only descriptions, paths and names, never a secret or a
//! token; [`crate::error::Error::keyring_unavailable`] maps them to exit codes.

pub mod diagnose;
pub mod keyring;
#[cfg(test)]
pub mod memory;
pub mod vault;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

pub use keyring::{Duplicates, ItemInfo, Keyring, label, open_ahead, use_mock_store};

/// Default time allowed for one store call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--store` and `SIPROT_STORE`: which store holds the passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StoreKind {
    /// The OS keyring (Secret Service, Keychain, Credential Manager) of this machine.
    #[default]
    Keyring,
    /// A Vault or OpenBao server's KV version 2 engine, shared by every host that reads it.
    Vault,
}

impl StoreKind {
    pub const ALL: [StoreKind; 2] = [StoreKind::Keyring, StoreKind::Vault];

    /// The name used on the command line, in `SIPROT_STORE`, the inventory and JSON.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::Vault => "vault",
        }
    }

    /// The store as prose names it: `keyring`, `vault store`.
    pub fn noun(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::Vault => "vault store",
        }
    }

    /// Parses a store's name (`keyring` or `vault`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The slots of one credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Slot {
    /// The password in use.
    Current,
    /// A client-set password staged before the request that sets it; in a shared store
    /// also the claim of a rotation in flight (with no password for a server-generated one).
    Pending,
    /// The password before the current one.
    Previous,
    /// A throw-away entry that proves the keyring is writable.
    Probe,
}

impl Slot {
    /// What a slot adds to the current entry's name; names are built by [`EntryName::slot`].
    fn suffix(self) -> &'static str {
        match self {
            Slot::Current => "",
            Slot::Pending => "#pending",
            Slot::Previous => "#previous",
            Slot::Probe => "#probe",
        }
    }

    /// `current`, `pending`, `previous` or `probe`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Current => "current",
            Slot::Pending => "pending",
            Slot::Previous => "previous",
            Slot::Probe => "probe",
        }
    }
}

/// The names of one credential: its current entry (what reports, recovery items and the
/// fleet name it by, e.g. `telepath/conn_abc`) and the keyring names of its other slots
/// ([`EntryName::slot`], the one place a slot's keyring name is built). Shown and
/// serialized as the current entry's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EntryName(String);

impl EntryName {
    pub fn new(current: impl Into<String>) -> Self {
        Self(current.into())
    }

    pub fn current(&self) -> &str {
        &self.0
    }

    pub fn slot(&self, slot: Slot) -> String {
        format!("{}{}", self.0, slot.suffix())
    }

    /// The credential and slot a keyring entry's name belongs to: `x#pending` is the
    /// [`Slot::Pending`] of `x`; a name without a slot's suffix is a current entry.
    pub fn parse(name: &str) -> (Self, Slot) {
        [Slot::Pending, Slot::Previous, Slot::Probe]
            .into_iter()
            .find_map(|slot| Some((Self::new(name.strip_suffix(slot.suffix())?), slot)))
            .unwrap_or_else(|| (Self::new(name), Slot::Current))
    }
}

impl std::fmt::Display for EntryName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who claimed a credential in a shared store: the host and the state directory of the
/// siprot run that wrote a `#pending` slot, and since when. Two runs with the same host
/// and state directory are the same holder (the local lock keeps them apart), so a
/// holder's own leftover claim is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    /// The holder's state directory (where its recovery files would be).
    pub state: String,
    pub pid: u32,
    /// RFC 3339 time the claim was written.
    pub since: String,
}

impl Holder {
    /// This run: this host, `state`'s directory, this process, now.
    pub fn here(state: &crate::state::StateDir) -> Self {
        Self {
            host: hostname(),
            state: state.root().display().to_string(),
            pid: std::process::id(),
            since: jiff::Timestamp::now().to_string(),
        }
    }

    /// Whether `other` is the same host and state directory (not necessarily the same run).
    pub fn same_place(&self, other: &Holder) -> bool {
        self.host == other.host && self.state == other.state
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {} (process {}, state directory {}) since {}",
            self.host, self.pid, self.state, self.since
        )
    }
}

/// This machine's host name (`unknown` when it cannot be told).
fn hostname() -> String {
    #[cfg(unix)]
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").unwrap_or_default();
    if name.is_empty() {
        "unknown".to_owned()
    } else {
        name
    }
}

/// What a store keeps beside a password, for whoever reads the secret (a PBX template
/// reads `username`, for instance). Never secret. The keyring keeps none of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The SIP user name, when the provider told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The provider's registered name (`telepath`, ...).
    #[serde(default)]
    pub provider: String,
    /// The credential id at the provider.
    #[serde(default)]
    pub credential: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// RFC 3339 time of the rotation that made this password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
    /// On a `#pending` slot of a shared store: the run that claimed the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// One slot as read from a store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The password; `None` for a claim marker (a server-generated rotation in flight).
    pub secret: Option<SecretString>,
    /// The slot's version (KV v2); `None` in a store without versions.
    pub version: Option<u64>,
    pub facts: Facts,
}

impl Stored {
    /// The precondition under which a write replaces exactly what was read here.
    pub fn unchanged(stored: Option<&Stored>) -> Precondition {
        match stored {
            None => Precondition::Absent,
            Some(Stored {
                version: Some(v), ..
            }) => Precondition::Version(*v),
            Some(_) => Precondition::Any,
        }
    }
}

/// What a write stores in a slot.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// `None` writes a claim marker without a password (shared stores only).
    pub secret: Option<&'a SecretString>,
    pub facts: &'a Facts,
}

/// When a write may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Whatever the slot holds.
    Any,
    /// Only if the slot is empty (KV v2 `cas=0`); otherwise [`StoreError::Conflict`].
    Absent,
    /// Only if the slot is still at this version (KV v2 `cas=N`); otherwise
    /// [`StoreError::Conflict`]. Stores without versions ignore it.
    Version(u64),
}

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The keyring could not be opened (exit 8).
    #[error("no credential store could be opened: {0}")]
    Open(String),
    /// The keyring did not answer in time (exit 8).
    #[error("the keyring did not answer within {0:?}")]
    Timeout(Duration),
    /// More than one keyring item matches one entry (exit 4).
    #[error("{0}")]
    Ambiguous(Duplicates),
    /// A keyring call failed (exit 8).
    #[error("{0}")]
    Store(String),
    /// A store other than the keyring cannot be reached or used now: unreachable, sealed,
    /// no leader, a server error, no answer in time (exit 8).
    #[error("{message}")]
    Unavailable { store: StoreKind, message: String },
    /// The store refused siprot's token or setting: no permission for a path (naming it
    /// and the capability), an invalid token, a missing mount (exit 4).
    #[error("{message}")]
    Denied { store: StoreKind, message: String },
    /// A write's [`Precondition`] did not hold: the slot was created or changed by
    /// someone else (exit 7 before anything was sent).
    #[error("{message}")]
    Conflict { store: StoreKind, message: String },
}

/// One interface over every place siprot keeps passwords. Implementations do single slot
/// operations; [`crate::rotation`] orders them.
#[async_trait]
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> StoreKind;

    /// The name records of this store are kept under in the audit log, lock files and
    /// recovery files: the keyring service (`siprot`), or `vault:<mount>/<prefix>`.
    fn service(&self) -> &str;

    /// Whether other hosts may use the same store at once: then a rotation claims the
    /// credential in the store itself ([`Slot::Pending`] created with
    /// [`Precondition::Absent`]) instead of relying on the local lock alone.
    fn shared(&self) -> bool;

    /// Where a slot lives, for messages: `keyring entry 'telepath/x#pending'` or
    /// `vault secret 'secret/siprot/.pending/telepath/x'`.
    fn locate(&self, name: &EntryName, slot: Slot) -> String;

    /// Reads a slot; `None` when it is empty.
    async fn read(&self, name: &EntryName, slot: Slot) -> Result<Option<Stored>, StoreError>;

    /// Writes a slot if `when` holds; returns the new version where the store has versions.
    async fn write(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
        when: Precondition,
    ) -> Result<Option<u64>, StoreError>;

    /// Empties a slot (every version of it); `false` when it was empty.
    async fn delete(&self, name: &EntryName, slot: Slot) -> Result<bool, StoreError>;

    /// Every slot this store holds for siprot (under its service or prefix), sorted.
    /// A listed slot may be gone by the time it is read: callers treat a miss as absent.
    async fn list(&self) -> Result<Vec<(EntryName, Slot)>, StoreError>;

    /// Checks, before anything is sent to a provider, that a rotation of `name` can use
    /// the store: every slot it touches matches one keyring item at most
    /// ([`StoreError::Ambiguous`]), or the token may read, write and delete every path
    /// ([`StoreError::Denied`] naming the path and the capability).
    async fn preflight(&self, name: &EntryName) -> Result<(), StoreError>;

    /// A fleet's hint before its rotations: a store may check every credential at once
    /// (the vault store checks the token's capabilities on all their paths in a few
    /// requests instead of one per rotation). Never fails: whatever it could not check,
    /// each rotation's [`SecretStore::preflight`] checks and reports.
    async fn prepare(&self, _names: &[EntryName]) {}

    /// Empties a slot without telling whether it held anything (the protocol never needs
    /// to know; the vault store then saves a read).
    async fn remove(&self, name: &EntryName, slot: Slot) -> Result<(), StoreError> {
        self.delete(name, slot).await.map(|_| ())
    }

    /// Where more than one keyring item matches a slot and all hold the same secret,
    /// removes the extras and describes each removed item; stores where a slot is always
    /// one item have nothing to resolve.
    async fn resolve_duplicates(
        &self,
        _name: &EntryName,
        _slot: Slot,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}
