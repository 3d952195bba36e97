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

/// Who claimed a credential in a shared store: the host, the state directory and the
/// state directory's random id ([`HolderId`]) of the siprot run that wrote a `#pending`
/// slot, and since when. A claim is this place's own only when all three match
/// ([`Holder::same_place`]): host name and path alone are shared by cloned VMs and
/// containers. The local lock keeps two runs of one place apart, so a holder's own
/// leftover claim is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    /// The holder's state directory (where its recovery files would be).
    pub state: String,
    /// The state directory's id; `None` in a claim written before siprot recorded one,
    /// and for a run whose state directory has none yet (it has never claimed anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<HolderId>,
    pub pid: u32,
    /// RFC 3339 time the claim was written.
    pub since: String,
}

impl Holder {
    /// This run as it compares claims: this host, `state`'s directory and its id if it
    /// has one (a directory without one never wrote a claim, so no claim is its own),
    /// this process, now. Creates nothing.
    pub fn here(state: &crate::state::StateDir) -> crate::error::Result<Self> {
        Ok(Self::with_id(state, HolderId::read(state)?))
    }

    /// This run as a claim it writes names it: as [`Holder::here`], with the state
    /// directory's id created first when it has none.
    pub fn claiming(state: &crate::state::StateDir) -> crate::error::Result<Self> {
        Ok(Self::with_id(state, Some(HolderId::of(state)?)))
    }

    /// This run in a store without claims (the keyring, where no claim names a holder):
    /// the state directory's id is not read.
    pub fn unclaimed(state: &crate::state::StateDir) -> Self {
        Self::with_id(state, None)
    }

    fn with_id(state: &crate::state::StateDir, id: Option<HolderId>) -> Self {
        Self {
            host: hostname(),
            state: state.root().display().to_string(),
            id,
            pid: std::process::id(),
            since: jiff::Timestamp::now().to_string(),
        }
    }

    /// Whether `other` is provably this place (not necessarily this run): the same host,
    /// state directory and id, an id on both sides. A claim without an id is nobody's.
    pub fn same_place(&self, other: &Holder) -> bool {
        self.host == other.host
            && self.state == other.state
            && self.id.is_some()
            && self.id == other.id
    }

    /// Whether a claim naming `holder` (`None`: no holder recorded) is provably this
    /// place's own; anything else is held: left alone, and nothing sent over it.
    pub fn owns(&self, holder: Option<&Holder>) -> bool {
        holder.is_some_and(|holder| self.same_place(holder))
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = match &self.id {
            Some(id) => format!("id {id}"),
            None => "no id".to_owned(),
        };
        write!(
            f,
            "host {} (process {}, state directory {}, {id}) since {}",
            self.host, self.pid, self.state, self.since
        )
    }
}

/// A state directory's random id (128 bits from the OS's CSPRNG, in hex), kept in its
/// file `holder-id` (mode 0600) from the first run that claims a credential in a shared
/// store. Not a secret: it tells claims of this state directory from those of a clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HolderId(String);

impl std::fmt::Display for HolderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id file's name in the state directory.
const HOLDER_ID_FILE: &str = "holder-id";

/// Hex digits of a [`HolderId`].
const HOLDER_ID_LEN: usize = 32;

impl HolderId {
    /// The state directory's id, `None` when it has none yet.
    pub fn read(state: &crate::state::StateDir) -> crate::error::Result<Option<Self>> {
        let path = state.root().join(HOLDER_ID_FILE);
        let mut bytes = Vec::with_capacity(HOLDER_ID_LEN + 1);
        let opened = crate::state::no_follow(std::fs::OpenOptions::new())
            .read(true)
            .open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::state::state_file_error("the holder id", &path, e)),
        };
        use std::io::Read;
        (&mut file)
            .take(HOLDER_ID_LEN as u64 + 2)
            .read_to_end(&mut bytes)
            .map_err(|e| crate::state::state_file_error("the holder id", &path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let id = text.trim_end_matches('\n');
        if id.len() != HOLDER_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(crate::error::Error::Config(format!(
                "the holder id {} is not one siprot wrote: remove it (a new one is made on \
                 the next rotation; claims of the old one are then held, exit 7, until \
                 removed by hand)",
                path.display()
            )));
        }
        Ok(Some(Self(id.to_owned())))
    }

    /// The state directory's id, made now when it has none: written whole under a
    /// temporary name, then linked to its name only if no other run made one first (the
    /// one that is there wins).
    pub fn of(state: &crate::state::StateDir) -> crate::error::Result<Self> {
        if let Some(id) = Self::read(state)? {
            return Ok(id);
        }
        state.check()?;
        let path = state.root().join(HOLDER_ID_FILE);
        let temp = state
            .root()
            .join(format!(".{HOLDER_ID_FILE}.{}.tmp", std::process::id()));
        // A temporary file of a dead process with this pid is stale (no live process
        // shares the pid), so it goes first.
        let _ = std::fs::remove_file(&temp);
        let written =
            Self::write_new(&temp).and_then(|()| match std::fs::hard_link(&temp, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(crate::state::state_file_error("the holder id", &path, e))
                }
                _ => Ok(()),
            });
        let _ = std::fs::remove_file(&temp);
        written?;
        Self::read(state)?.ok_or_else(|| {
            crate::error::Error::Unexpected(format!("{} vanished once written", path.display()))
        })
    }

    /// A new random id in a new file at `temp` (mode 0600, flushed).
    fn write_new(temp: &std::path::Path) -> crate::error::Result<()> {
        use rand::TryRng;
        use std::io::Write;
        let mut raw = [0u8; HOLDER_ID_LEN / 2];
        rand::rngs::SysRng.try_fill_bytes(&mut raw).map_err(|e| {
            crate::error::Error::Unexpected(format!("no random bytes for the holder id: {e}"))
        })?;
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut file = crate::state::no_follow(crate::state::private_options())
            .write(true)
            .create_new(true)
            .open(temp)
            .map_err(|e| crate::state::state_file_error("the holder id", temp, e))?;
        file.write_all(format!("{hex}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| crate::error::Error::io(format!("cannot write {}", temp.display()), e))
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

    /// Whether a write that succeeded is the store's own word that it holds the secret, so
    /// that reading it back could only repeat it: the OS keyring (the Secret Service
    /// answers over the local bus after it stored the item; nothing stands between).
    /// Stores reached over a network (a proxy may answer without storing) say `false`, and
    /// a rotation reads their current slot back before it gives up the other copy.
    fn confirms_writes(&self) -> bool {
        false
    }

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
