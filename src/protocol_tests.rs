//! In-process fault tables of the rotation protocol ([`rotation::rotate`]) and of
//! [`recovery::recover`], run by `cargo test --lib` without D-Bus, and unit tests of the
//! protocol on a shared store.
//!
//! Every case runs against a [`MemoryProvider`] of a real kind (Telepath for the
//! server-generated protocol, Vobiz for the client-set one) and one of two stores
//! ([`Backing`]); each table runs once against each:
//! - the keyring: keyring-core's mock store wrapped by [`FaultStore`], which records every
//!   keyring call of a case's own keyring service and makes a chosen one fail (through
//!   `mock::Cred::set_error`);
//! - a shared store: a [`MemoryStore`] that behaves as the vault store (versions,
//!   check-and-set, claims), wrapped by [`FaultyStore`], which records every
//!   [`SecretStore`] call and fails a chosen one as a store that stopped answering
//!   ([`StoreError::Unavailable`]).
//!
//! A fault hits only the chosen call (`once`), or that call and every later one of the
//! run (`dead`, a store that stopped); in the shared store also the chosen call after it
//! took effect (`landed`: a write committed whose answer was lost).
//!
//! A table is built from fault-free baselines: for each protocol, each starting state and
//! each provider outcome, the baseline's store calls are recorded (and where the request
//! came among them); then each of those calls fails in turn, in both modes. After the
//! first run the case checks the documented exit code (8 before the request; the
//! outcome's after it; 9 when the provider may hold a password the store does not
//! confirm), that the provider's password is still known locally (current, `#pending`
//! or a recovery file; Telepath's lost answer excepted), and that an exit 0 left nothing
//! to recover (a `#pending` or claim whose removal failed excepted). Then it runs each
//! documented follow-up on the healthy store (the same `rotate` again, `siprot recover`,
//! or, for a claim this host left after the provider may have rotated, `recover` then
//! `rotate`; while a recovery file or this host's claim is there, `rotate` must first
//! refuse with exit 9 and send nothing) and checks that it exits 0 with the store's
//! current password equal to the provider's, nothing pending, no claim, no probe and no
//! recovery file left.
//!
//! The same is done for `recover` itself: each kind of leftover (a `#pending` the provider
//! took or never took, a recovery file of each kind `recover` judges, a probe in the
//! keyring, this host's claim in a shared store alone or beside its recovery file) with
//! each store call of its baseline failing, then one more `recover` must settle it. A
//! table checks that judgement ([`recovery::judge`]) on its own.
//!
//! Table sizes (cases, each with its follow-ups): client-set rotation 468 in the keyring
//! and 443 in the shared store, server-generated rotation 202 and 244, `recover` 475 and
//! 573; `cargo test --lib` runs them all in about a second.
//!
//! The last tests run two hosts (two state directories) on one shared [`MemoryStore`]:
//! concurrent rotators, another holder's claim, claims not provably this host's (a
//! clone's, one without an id or a holder), this host's leftover claim, a
//! check-and-set conflict when the new current is written, a write of the new current
//! the store answered without storing (caught by the read-back), another host's rotation
//! finished between a run's start and its claim, `recover` beside a run in flight on the
//! same host, and the facts kept beside each password. [`FaultyStore::hold`] stops one run at a chosen store call, so that two
//! runs interleave exactly there.
//!
//! Each case uses a store service of its own and a state directory of its own, so that
//! cases (and other unit tests sharing the process-wide mock store) never meet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

use crate::http::Attempts;
use crate::providers::memory::{MemoryProvider, Outcome};
use crate::providers::{CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::recovery;
use crate::rotation::{self, PasswordSource, RotationInput};
use crate::settings::{Accounts, Settings};
use crate::state::StateDir;
use crate::store::memory::MemoryStore;
use crate::store::{
    self, EntryName, Facts, Holder, Keyring, Precondition, Record, SecretStore, Slot, StoreError,
    Stored,
};

// ---------------------------------------------------------------------------------------
// The fault-injecting store

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `get_credential`: the search for duplicates.
    Find,
    Get,
    Set,
    Delete,
    /// A search of the whole service (`Keyring::list`).
    List,
    /// [`SecretStore::preflight`] of a store other than the keyring.
    Preflight,
}

#[derive(Debug, Clone)]
struct Call {
    entry: String,
    op: Op,
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Find => "search",
            Op::Get => "read",
            Op::Set => "write",
            Op::Delete => "delete",
            Op::List => return write!(f, "list of the service's entries"),
            Op::Preflight => "preflight of",
        };
        write!(f, "{op} '{}'", self.entry)
    }
}

/// How an injected fault lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Only the chosen call fails.
    Once,
    /// The chosen call and every later one fail, until the fault is cleared.
    Dead,
    /// The chosen call takes effect, then fails (a shared store that committed a write and
    /// lost its answer); shared stores only.
    Landed,
}

impl Mode {
    /// The modes a table tries against `backing`.
    fn of(backing: Backing) -> &'static [Mode] {
        match backing {
            Backing::Keyring => &[Mode::Once, Mode::Dead],
            Backing::Shared => &[Mode::Once, Mode::Dead, Mode::Landed],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Once => "once",
            Mode::Dead => "from then on",
            Mode::Landed => "after taking effect",
        }
    }
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    /// How many calls were made when the provider got a request.
    request_at: Option<usize>,
    fail_from: Option<(usize, Mode)>,
}

/// The calls and faults of each tracked keyring service.
#[derive(Debug, Default)]
struct Faults {
    services: Mutex<HashMap<String, Log>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Faults {
    /// Records a call; how it is to fail, if it is. Untracked services never fail.
    fn call(&self, service: &str, entry: &str, op: Op) -> Option<Mode> {
        let mut services = lock(&self.services);
        let log = services.get_mut(service)?;
        let index = log.calls.len();
        log.calls.push(Call {
            entry: entry.to_owned(),
            op,
        });
        match log.fail_from {
            Some((k, mode @ (Mode::Once | Mode::Landed))) => (index == k).then_some(mode),
            Some((k, Mode::Dead)) => (index >= k).then_some(Mode::Dead),
            None => None,
        }
    }

    /// Starts a new log for `service` (tracked from now on), failing as `fail_from` says.
    fn reset(&self, service: &str, fail_from: Option<(usize, Mode)>) {
        lock(&self.services).insert(
            service.to_owned(),
            Log {
                fail_from,
                ..Log::default()
            },
        );
    }

    fn tracks(&self, service: &str) -> bool {
        lock(&self.services).contains_key(service)
    }

    fn take(&self, service: &str) -> Log {
        lock(&self.services)
            .insert(service.to_owned(), Log::default())
            .unwrap_or_default()
    }

    fn mark_request(&self, service: &str) {
        if let Some(log) = lock(&self.services).get_mut(service) {
            log.request_at.get_or_insert(log.calls.len());
        }
    }
}

fn injected() -> keyring_core::Error {
    keyring_core::Error::NoStorageAccess(Box::new(std::io::Error::other("injected keyring fault")))
}

/// keyring-core's mock store, with the calls of tracked services recorded and failed on
/// demand.
///
/// The credentials of tracked services are keyring-core mock credentials kept here, by
/// service and name, rather than in the mock store (whose linear searches would make the
/// table quadratic); other services go to the mock store untouched.
struct FaultStore {
    mock: Arc<CredentialStore>,
    faults: Arc<Faults>,
    tracked: Mutex<HashMap<String, HashMap<String, Arc<FaultCred>>>>,
}

/// One mock credential; each call is recorded first, and a call chosen to fail gets the
/// mock's own `set_error` just before it runs.
struct FaultCred {
    mock: Entry,
    service: String,
    user: String,
    faults: Arc<Faults>,
}

impl FaultCred {
    fn arm(&self, op: Op) {
        if self.faults.call(&self.service, &self.user, op).is_some() {
            let mock: &keyring_core::mock::Cred = self
                .mock
                .as_any()
                .downcast_ref()
                .expect("an entry of the mock store");
            mock.set_error(injected());
        }
    }
}

impl CredentialApi for FaultCred {
    fn set_secret(&self, secret: &[u8]) -> keyring_core::Result<()> {
        self.arm(Op::Set);
        self.mock.set_secret(secret)
    }

    fn get_secret(&self) -> keyring_core::Result<Vec<u8>> {
        self.arm(Op::Get);
        self.mock.get_secret()
    }

    fn delete_credential(&self) -> keyring_core::Result<()> {
        self.arm(Op::Delete);
        self.mock.delete_credential()
    }

    fn get_credential(&self) -> keyring_core::Result<Option<Arc<Credential>>> {
        self.arm(Op::Find);
        // The mock has no duplicates: found means this very credential.
        self.mock.get_credential().map(|_| None)
    }

    fn get_specifiers(&self) -> Option<(String, String)> {
        Some((self.service.clone(), self.user.clone()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    /// Names only: the mock's own Debug would show the secret.
    fn debug_fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultCred({}, {})", self.service, self.user)
    }
}

impl CredentialStoreApi for FaultStore {
    fn vendor(&self) -> String {
        "keyring-core's mock store with injected faults (siprot's unit tests)".into()
    }

    fn id(&self) -> String {
        self.mock.id()
    }

    fn build(
        &self,
        service: &str,
        user: &str,
        modifiers: Option<&HashMap<&str, &str>>,
    ) -> keyring_core::Result<Entry> {
        if modifiers.is_some_and(|m| !m.is_empty()) || !self.faults.tracks(service) {
            return self.mock.build(service, user, modifiers);
        }
        let mut tracked = lock(&self.tracked);
        let cred = tracked
            .entry(service.to_owned())
            .or_default()
            .entry(user.to_owned())
            .or_insert_with(|| {
                Arc::new(FaultCred {
                    mock: Entry::new_with_credential(Arc::new(keyring_core::mock::Cred {
                        specifiers: (service.to_owned(), user.to_owned()),
                        inner: Mutex::default(),
                    })),
                    service: service.to_owned(),
                    user: user.to_owned(),
                    faults: self.faults.clone(),
                })
            })
            .clone();
        Ok(Entry::new_with_credential(cred))
    }

    fn search(&self, spec: &HashMap<&str, &str>) -> keyring_core::Result<Vec<Entry>> {
        let service = spec.get("service").copied().unwrap_or_default();
        if !self.faults.tracks(service) {
            return self.mock.search(spec);
        }
        if self.faults.call(service, "", Op::List).is_some() {
            return Err(injected());
        }
        let tracked = lock(&self.tracked);
        Ok(tracked
            .get(service)
            .into_iter()
            .flat_map(HashMap::values)
            // A name once used stays here, with or without a secret; a real store finds
            // only the items that exist.
            .filter(|cred| cred.mock.get_credential().is_ok())
            .map(|cred| Entry::new_with_credential(cred.clone()))
            .collect())
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn persistence(&self) -> keyring_core::CredentialPersistence {
        keyring_core::CredentialPersistence::ProcessOnly
    }
}

/// Makes the fault store keyring-core's default (once per process) and returns its log.
///
/// It wraps the mock store [`store::use_mock_store`] installed, so that entries other
/// unit tests made before the swap are still there after it.
fn faults() -> &'static Arc<Faults> {
    static FAULTS: OnceLock<Arc<Faults>> = OnceLock::new();
    FAULTS.get_or_init(|| {
        store::use_mock_store().expect("the mock store");
        let mock = keyring_core::get_default_store().expect("the mock store is the default");
        let faults = Arc::new(Faults::default());
        keyring_core::set_default_store(Arc::new(FaultStore {
            mock,
            faults: faults.clone(),
            tracked: Mutex::default(),
        }));
        faults
    })
}

// ---------------------------------------------------------------------------------------
// The fault-injecting wrapper of a shared store

/// A [`MemoryStore`] seen through the [`SecretStore`] interface, with every call of its
/// service recorded in [`faults`] and failed on demand (as [`StoreError::Unavailable`],
/// what a vault store returns for a server that stopped answering), before it runs or,
/// for [`Mode::Landed`], after it took effect, as [`FaultStore`] does for the keyring. Gates ([`FaultyStore::hold`]) stop chosen calls until the test
/// lets them go, so that two rotations on one store interleave exactly where a test wants.
#[derive(Debug)]
struct FaultyStore {
    memory: MemoryStore,
    /// Armed gates, in order: only the first one can hold a call.
    gates: Mutex<std::collections::VecDeque<Gate>>,
}

/// Whether a gate holds a call before it runs or after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Before,
    After,
}

/// Holds the next call of `op` on `slot`: says when it is reached, and waits to be let go.
#[derive(Debug)]
struct Gate {
    op: Op,
    slot: Slot,
    hold: Hold,
    reached: tokio::sync::oneshot::Sender<()>,
    release: tokio::sync::oneshot::Receiver<()>,
}

impl FaultyStore {
    fn new(memory: MemoryStore) -> Self {
        Self {
            memory,
            gates: Mutex::default(),
        }
    }

    /// Arms a gate (after those armed already) on the next call of `op` on `slot`: the
    /// receiver is told when the call is held, and the call goes on once the sender is
    /// used (or dropped).
    fn hold(
        &self,
        op: Op,
        slot: Slot,
        hold: Hold,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (reached, reached_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release) = tokio::sync::oneshot::channel();
        lock(&self.gates).push_back(Gate {
            op,
            slot,
            hold,
            reached,
            release,
        });
        (reached_rx, release_tx)
    }

    /// Waits at the first armed gate if it is for this call at this point.
    async fn pass(&self, op: Op, slot: Option<Slot>, hold: Hold) {
        let gate = {
            let mut gates = lock(&self.gates);
            match gates.front() {
                Some(g) if g.op == op && Some(g.slot) == slot && g.hold == hold => {
                    gates.pop_front()
                }
                _ => None,
            }
        };
        if let Some(gate) = gate {
            let _ = gate.reached.send(());
            let _ = gate.release.await;
        }
    }

    /// Runs one call of the memory store: held by a gate before or after it, recorded,
    /// and failed instead if chosen.
    async fn call<T>(
        &self,
        entry: &str,
        slot: Option<Slot>,
        op: Op,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.pass(op, slot, Hold::Before).await;
        let fault = faults().call(self.memory.service(), entry, op);
        let injected = || StoreError::Unavailable {
            store: self.memory.kind(),
            message: "injected store fault".into(),
        };
        if matches!(fault, Some(Mode::Once | Mode::Dead)) {
            return Err(injected());
        }
        let result = call.await;
        self.pass(op, slot, Hold::After).await;
        match fault {
            Some(Mode::Landed) => Err(injected()),
            _ => result,
        }
    }
}

#[async_trait::async_trait]
impl SecretStore for FaultyStore {
    fn kind(&self) -> store::StoreKind {
        self.memory.kind()
    }

    fn service(&self) -> &str {
        self.memory.service()
    }

    fn shared(&self) -> bool {
        self.memory.shared()
    }

    fn locate(&self, name: &EntryName, slot: Slot) -> String {
        self.memory.locate(name, slot)
    }

    async fn read(&self, name: &EntryName, slot: Slot) -> Result<Option<Stored>, StoreError> {
        let call = self.memory.read(name, slot);
        self.call(&name.slot(slot), Some(slot), Op::Get, call).await
    }

    async fn write(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
        when: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        let call = self.memory.write(name, slot, record, when);
        self.call(&name.slot(slot), Some(slot), Op::Set, call).await
    }

    async fn delete(&self, name: &EntryName, slot: Slot) -> Result<bool, StoreError> {
        let call = self.memory.delete(name, slot);
        self.call(&name.slot(slot), Some(slot), Op::Delete, call)
            .await
    }

    async fn list(&self) -> Result<Vec<(EntryName, Slot)>, StoreError> {
        self.call("", None, Op::List, self.memory.list()).await
    }

    async fn preflight(&self, name: &EntryName) -> Result<(), StoreError> {
        let call = self.memory.preflight(name);
        self.call(name.current(), None, Op::Preflight, call).await
    }
}

// ---------------------------------------------------------------------------------------
// One case's world

/// The account settings Vobiz and Exotel name their entries with.
const ACCOUNT: &[(&str, &str)] = &[("auth_id", "MA_UNIT"), ("account_sid", "ac_unit")];

fn account(kind: ProviderKind) -> Settings {
    Settings::for_tests(kind, ACCOUNT)
}

/// A state directory's parent: in memory where there is a tmpfs (on a busy ext4 each
/// directory created costs a millisecond, which would make the table slow), else the
/// usual temporary directory.
fn temp_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir()),
        false => tempfile::tempdir(),
    }
    .expect("a temporary directory")
}

static NEXT_SERVICE: AtomicUsize = AtomicUsize::new(0);

/// How the keyring and the provider stand before the first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// The keyring's current password is the provider's.
    Current,
    /// The provider has a password the keyring never held (a first rotation).
    Empty,
    /// An earlier run lost its answer after the provider took its `#pending` password.
    PendingLive,
    /// An earlier run lost its answer before the provider took its `#pending` password.
    PendingDead,
}

impl Start {
    fn layout(self) -> Layout {
        let (current, pending, provider) = match self {
            Start::Current => (Some(P0), None, P0),
            Start::Empty => (None, None, P0),
            Start::PendingLive => (Some(P0), Some(P1), P1),
            Start::PendingDead => (Some(P0), Some(P1), P0),
        };
        Layout {
            current,
            pending,
            provider,
            ..Layout::default()
        }
    }
}

/// What the keyring slots, the recovery file and the provider hold before a run.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    current: Option<&'static str>,
    pending: Option<&'static str>,
    previous: Option<&'static str>,
    probe: Option<&'static str>,
    file: Option<&'static str>,
    /// A claim marker of this world's own (shared stores only).
    claim: bool,
    provider: &'static str,
}

const P0: &str = "p0-Initial-pw-1";
const P1: &str = "p1-Staged-pw-2";
const P2: &str = "p2-Recovered-pw-3";

/// Which store a case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// The keyring, over keyring-core's mock store wrapped by [`FaultStore`].
    Keyring,
    /// A shared [`MemoryStore`] (as the vault store behaves) wrapped by [`FaultyStore`].
    Shared,
}

enum Backend {
    Keyring(Keyring),
    Shared(FaultyStore),
}

struct World {
    service: String,
    backend: Backend,
    provider: MemoryProvider,
    credential: CredentialRef,
    name: EntryName,
    state: StateDir,
    _dir: tempfile::TempDir,
}

/// What the keyring, the state directory and the provider hold.
struct Snapshot {
    current: Option<SecretString>,
    pending: Option<SecretString>,
    previous: Option<SecretString>,
    probe: Option<SecretString>,
    /// A shared store's claim marker (a `#pending` without a password).
    claim: bool,
    files: Vec<SecretString>,
    provider: Option<SecretString>,
    requests: usize,
}

fn same(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        _ => false,
    }
}

impl Snapshot {
    /// Which password each place holds, by name (never the password itself): P0 and P1
    /// are the test's, "new" one siprot or the provider made; "*" marks the provider's.
    fn describe(&self, start: &Snapshot) -> String {
        let name = |p: Option<&SecretString>, provider: Option<&SecretString>| -> String {
            let Some(p) = p else {
                return "none".into();
            };
            let label = match p.expose_secret() {
                P0 => "P0",
                P1 => "P1",
                P2 => "P2",
                _ => "new",
            };
            let live = if same(Some(p), provider) { "*" } else { "" };
            format!("{label}{live}")
        };
        let now = |p: Option<&SecretString>| name(p, self.provider.as_ref());
        let files: Vec<String> = self.files.iter().map(|f| now(Some(f))).collect();
        format!(
            "now current {}, #pending {}{}, #previous {}, #probe {}, recovery files [{}], \
             provider {} after {} request(s); at the start current {}, #pending {}, provider {}",
            now(self.current.as_ref()),
            now(self.pending.as_ref()),
            if self.claim { " (a claim)" } else { "" },
            now(self.previous.as_ref()),
            if self.probe.is_some() {
                "present"
            } else {
                "none"
            },
            files.join(", "),
            now(self.provider.as_ref()),
            self.requests,
            name(start.current.as_ref(), start.provider.as_ref()),
            name(start.pending.as_ref(), start.provider.as_ref()),
            name(start.provider.as_ref(), start.provider.as_ref()),
        )
    }

    /// Whether the provider's password is in the keyring or a recovery file.
    fn provider_known(&self) -> bool {
        let provider = self.provider.as_ref();
        same(self.current.as_ref(), provider)
            || same(self.pending.as_ref(), provider)
            || self.files.iter().any(|f| same(Some(f), provider))
    }

    /// Settled: current is the provider's password, and nothing is left to recover.
    fn settled(&self) -> bool {
        self.current.is_some()
            && same(self.current.as_ref(), self.provider.as_ref())
            && self.nothing_left()
    }

    fn nothing_left(&self) -> bool {
        self.pending.is_none() && !self.claim && self.probe.is_none() && self.files.is_empty()
    }
}

impl World {
    async fn new(kind: ProviderKind, backing: Backing) -> Self {
        let faults = faults();
        let n = NEXT_SERVICE.fetch_add(1, Ordering::Relaxed);
        let service = format!("siprot-unit-fault-{}-{n}", std::process::id());
        faults.reset(&service, None);
        let backend = match backing {
            Backing::Keyring => Backend::Keyring(
                Keyring::open(&service, store::DEFAULT_TIMEOUT)
                    .await
                    .expect("the mock keyring"),
            ),
            Backing::Shared => Backend::Shared(FaultyStore::new(MemoryStore::shared(&service))),
        };
        let credential = match kind.registration().second_part {
            Some(part) => CredentialRef::new(kind, "user-1", &[(part.key, "dev-1")]),
            None => CredentialRef::new(kind, "cred-1", &[]),
        }
        .expect("a valid credential");
        let name = kind
            .entry_name(&credential, &account(kind))
            .expect("an entry name");
        let dir = temp_dir();
        let state = StateDir::at(dir.path().join("siprot"));
        let provider = MemoryProvider::new(kind, &service, None);
        Self {
            service,
            backend,
            provider,
            credential,
            name,
            state,
            _dir: dir,
        }
    }

    /// A world standing as `start` says; its store log starts after the setup.
    async fn at(kind: ProviderKind, start: Start, backing: Backing) -> Self {
        Self::laid_out(kind, start.layout(), backing).await
    }

    /// A world holding what `layout` says; its store log starts after the setup.
    async fn laid_out(kind: ProviderKind, layout: Layout, backing: Backing) -> Self {
        let mut world = Self::new(kind, backing).await;
        for (slot, password) in [
            (Slot::Current, layout.current),
            (Slot::Pending, layout.pending),
            (Slot::Previous, layout.previous),
            (Slot::Probe, layout.probe),
        ] {
            if let Some(password) = password {
                world.put(slot, password);
            }
        }
        if layout.claim {
            world.put_claim(Holder::claiming(&world.state).expect("a holder id"));
        }
        if let Some(password) = layout.file {
            world
                .state
                .write_recovery(
                    &world.service,
                    world.name.current(),
                    kind.name(),
                    &password.into(),
                )
                .expect("a recovery file");
        }
        world.provider = MemoryProvider::new(kind, &world.service, Some(layout.provider.into()));
        let marked = world.service.clone();
        world
            .provider
            .on_request(move || faults().mark_request(&marked));
        faults().reset(&world.service, None);
        world
    }

    /// A second host on this world's shared store: the same store, credential and
    /// provider, its own state directory (and so another holder).
    fn beside(&self) -> Self {
        let memory = self.memory().expect("a shared store").clone();
        let dir = temp_dir();
        Self {
            service: self.service.clone(),
            backend: Backend::Shared(FaultyStore::new(memory)),
            provider: self.provider.clone(),
            credential: self.credential.clone(),
            name: self.name.clone(),
            state: StateDir::at(dir.path().join("siprot")),
            _dir: dir,
        }
    }

    fn store(&self) -> &dyn SecretStore {
        match &self.backend {
            Backend::Keyring(keyring) => keyring,
            Backend::Shared(faulty) => faulty,
        }
    }

    /// The shared store's wrapper of this world (where gates are armed).
    fn faulty(&self) -> &FaultyStore {
        match &self.backend {
            Backend::Keyring(_) => panic!("the keyring has no gates"),
            Backend::Shared(faulty) => faulty,
        }
    }

    fn memory(&self) -> Option<&MemoryStore> {
        match &self.backend {
            Backend::Keyring(_) => None,
            Backend::Shared(faulty) => Some(&faulty.memory),
        }
    }

    /// The facts a rotation of this world's credential writes beside a password.
    fn facts(&self) -> Facts {
        Facts {
            provider: self.provider.kind().name().to_owned(),
            credential: self.credential.id().to_owned(),
            device: self.credential.device().map(str::to_owned),
            ..Facts::default()
        }
    }

    /// Scripts the provider's answer and arms the store fault (store call number and
    /// mode, if any) for the run about to start.
    fn arm(&self, outcome: Outcome, fault: Option<(usize, Mode)>) {
        self.provider.script([outcome]);
        faults().reset(&self.service, fault);
    }

    /// Writes a slot directly in the store (not on the keyring thread: setup and checks
    /// need no timeout, and the table runs faster without the thread hops). In a shared
    /// store a `#pending` is this world's claim.
    fn put(&self, slot: Slot, password: &str) {
        match self.memory() {
            None => Entry::new(&self.service, &self.name.slot(slot))
                .and_then(|entry| entry.set_password(password))
                .expect("a healthy mock keyring"),
            Some(memory) => {
                let holder = (slot == Slot::Pending)
                    .then(|| Holder::claiming(&self.state).expect("a holder id"));
                let facts = Facts {
                    holder,
                    ..self.facts()
                };
                memory.put(&self.name, slot, Some(password), facts);
            }
        }
    }

    /// Writes a claim marker of `holder` in the shared store.
    fn put_claim(&self, holder: Holder) {
        let facts = Facts {
            holder: Some(holder),
            ..self.facts()
        };
        let memory = self.memory().expect("claims live in a shared store");
        memory.put(&self.name, Slot::Pending, None, facts);
    }

    fn read(&self, slot: Slot) -> Option<Stored> {
        self.memory().expect("a shared store").get(&self.name, slot)
    }

    fn get(&self, slot: Slot) -> Option<SecretString> {
        if let Some(memory) = self.memory() {
            return memory.get(&self.name, slot).and_then(|s| s.secret);
        }
        match Entry::new(&self.service, &self.name.slot(slot)).and_then(|e| e.get_password()) {
            Ok(password) => Some(password.into()),
            Err(keyring_core::Error::NoEntry) => None,
            Err(error) => panic!("a healthy mock keyring: {error}"),
        }
    }

    /// One `rotate` of the credential with a generated password.
    async fn rotation(&self) -> crate::Result<rotation::RotationReport> {
        let input = RotationInput {
            source: PasswordSource::Generate { length: None },
            description: None,
            dry_run: false,
            attempts: Attempts::new(),
        };
        rotation::rotate(
            &self.provider,
            &self.credential,
            &self.name,
            self.store(),
            &self.state,
            input,
        )
        .await
    }

    /// The exit code of one `rotate` of the credential, as the command would exit.
    async fn rotate(&self) -> u8 {
        match self.rotation().await {
            Ok(_) => 0,
            Err(error) => error.exit_code().code(),
        }
    }

    /// What `siprot recover` found and did.
    async fn recovery(&self) -> crate::Result<Vec<recovery::Item>> {
        let provider = self.provider.clone();
        let connect = move |settings: &Settings| -> crate::Result<Box<dyn Provider>> {
            assert_eq!(
                settings.provider(),
                provider.kind(),
                "recover connects to the entry's provider"
            );
            Ok(Box::new(provider.clone()))
        };
        let accounts = Accounts::for_tests(ACCOUNT);
        recovery::recover(self.store(), &self.state, &accounts, &connect, false).await
    }

    /// The exit code of `siprot recover`, as the command would exit.
    async fn recover(&self) -> u8 {
        match self.recovery().await {
            Ok(items) => recovery::exit_code(&items).code(),
            Err(error) => error.exit_code().code(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        faults().reset(&self.service, None);
        let files = self
            .state
            .recovery_files()
            .expect("a readable state directory")
            .into_iter()
            .map(|file| file.expect("a readable recovery file"))
            .filter(|file| file.service == self.service && file.entry == self.name.current())
            .map(|file| file.password)
            .collect();
        let claim = self.memory().is_some_and(|memory| {
            memory
                .get(&self.name, Slot::Pending)
                .is_some_and(|pending| pending.secret.is_none())
        });
        Snapshot {
            current: self.get(Slot::Current),
            pending: self.get(Slot::Pending),
            previous: self.get(Slot::Previous),
            probe: self.get(Slot::Probe),
            claim,
            files,
            provider: self.provider.password(),
            requests: self.provider.requests(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The rotation table

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FollowUp {
    /// The same `rotate` again.
    Rerun,
    /// `siprot recover`.
    Recover,
    /// `siprot recover`, then the same `rotate` again: for a shared store's claim this
    /// host left after the provider may have rotated (the password it got is lost, so
    /// only a new rotation makes a known one, and `rotate` refuses until `recover`
    /// cleared the claim).
    RecoverThenRerun,
}

const OUTCOMES: [Outcome; 8] = [
    Outcome::Accept,
    Outcome::Refuse(401),
    Outcome::Refuse(404),
    Outcome::Refuse(400),
    Outcome::Refuse(429),
    Outcome::NotSent,
    Outcome::LostAnswer,
    Outcome::UnknownUnchanged,
];

struct Case {
    backing: Backing,
    kind: ProviderKind,
    start: Start,
    outcome: Outcome,
    /// The failing call (its index in the baseline and what it is) and how long it fails.
    fault: Option<(usize, Call, Mode)>,
    /// How many store calls the baseline made before its request.
    request_at: Option<usize>,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in the {:?} store from {:?}, provider {:?}, ",
            self.kind, self.backing, self.start, self.outcome
        )?;
        match &self.fault {
            None => write!(f, "no store fault"),
            Some((k, call, mode)) => write!(
                f,
                "store call {} ({call}, {} the request) failing {}",
                k + 1,
                if self.request_at.is_some_and(|r| *k < r) {
                    "before"
                } else {
                    "after"
                },
                mode.describe()
            ),
        }
    }
}

impl Case {
    fn resumed(&self) -> bool {
        matches!(self.start, Start::PendingLive | Start::PendingDead)
    }

    /// The exit code the README documents for the first run.
    fn expected_code(&self) -> u8 {
        if let Some((k, _, _)) = &self.fault
            && self.request_at.is_none_or(|r| *k < r)
        {
            return 8;
        }
        match self.outcome {
            Outcome::Accept => match &self.fault {
                // Only the last step of a promotion may fail without failing the rotation.
                Some((_, call, _))
                    if !(call.op == Op::Delete && call.entry.ends_with("#pending")) =>
                {
                    9
                }
                _ => 0,
            },
            // A password staged by an earlier run may be live: it is kept whatever happens.
            _ if self.resumed() => 9,
            Outcome::Refuse(401 | 403) => 5,
            Outcome::Refuse(404) => 6,
            Outcome::Refuse(429) | Outcome::NotSent => 7,
            Outcome::Refuse(_) => 1,
            Outcome::LostAnswer | Outcome::UnknownUnchanged => 9,
        }
    }

    /// Runs the first run in a new world; the world and the problems found.
    async fn first_run(&self) -> (World, Snapshot, u8, Vec<String>) {
        let world = World::at(self.kind, self.start, self.backing).await;
        let start = world.snapshot();
        world.arm(
            self.outcome,
            self.fault.as_ref().map(|(k, _, mode)| (*k, *mode)),
        );
        let code = world.rotate().await;
        // A request that was never sent leaves its answer unused.
        world.provider.clear_script();
        let after = world.snapshot();
        let mut problems = Vec::new();
        let expected = self.expected_code();
        if code != expected {
            problems.push(format!("first run: exit {code}, documented {expected}"));
        }
        let unchanged = same(after.provider.as_ref(), start.provider.as_ref());
        if expected == 8 && (after.requests != 0 || !unchanged) {
            problems.push("first run: a request was sent although the keyring failed".into());
        }
        let lost_by_design = self.kind.origin() == PasswordOrigin::ServerGenerated
            && self.outcome == Outcome::LostAnswer;
        let unknown_before = unchanged && start.current.is_none();
        if !after.provider_known() && !lost_by_design && !unknown_before {
            problems.push("first run: the provider's password is nowhere local".into());
        }
        if code == 0 && !same(after.current.as_ref(), after.provider.as_ref()) {
            problems.push("first run: exit 0 but current is not the provider's password".into());
        }
        let pending_kept = matches!(
            &self.fault,
            Some((_, call, _)) if call.op == Op::Delete && call.entry.ends_with("#pending")
        );
        if code == 0 && !pending_kept && !after.nothing_left() {
            problems.push("first run: exit 0 but something is left to recover".into());
        }
        if [1, 5, 6, 7, 8].contains(&code) && !unchanged {
            problems.push(format!(
                "first run: exit {code} but the provider's password changed"
            ));
        }
        for problem in &mut problems {
            problem.push_str(&format!(": {}", after.describe(&start)));
        }
        (world, start, code, problems)
    }

    /// The follow-ups the README gives for what the first run left.
    fn follow_ups(&self, code: u8, after: &Snapshot) -> Vec<FollowUp> {
        match self.kind.origin() {
            // A recovery file: `rotate` refuses, `recover` stores it.
            PasswordOrigin::ServerGenerated if !after.files.is_empty() => vec![FollowUp::Recover],
            // A claim this host left: `rotate` refuses, `recover` clears it; when the
            // provider may have rotated, only a new rotation makes a known password.
            PasswordOrigin::ServerGenerated if after.claim && code == 9 => {
                vec![FollowUp::RecoverThenRerun]
            }
            PasswordOrigin::ServerGenerated if after.claim => {
                vec![FollowUp::Recover, FollowUp::RecoverThenRerun]
            }
            // The answer was lost: only a new rotation makes a known password.
            PasswordOrigin::ServerGenerated if code == 9 => vec![FollowUp::Rerun],
            _ => vec![FollowUp::Rerun, FollowUp::Recover],
        }
    }

    /// Runs the case with each documented follow-up; every problem found.
    async fn run(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let (world, start, code, first) = self.first_run().await;
        let after = world.snapshot();
        let follow_ups = self.follow_ups(code, &after);
        problems.extend(first.into_iter().map(|p| format!("{self}: {p}")));
        let mut world = Some((world, start));
        for follow_up in follow_ups {
            let (world, start) = match world.take() {
                Some(first) => first,
                None => {
                    let (world, start, again, _) = self.first_run().await;
                    assert_eq!(again, code, "{self}: the same first run ended otherwise");
                    (world, start)
                }
            };
            if let Some(problem) = Self::follow(&world, &start, follow_up).await {
                problems.push(format!("{self}, then {follow_up:?}: {problem}"));
            }
        }
        problems
    }

    async fn follow(world: &World, start: &Snapshot, follow_up: FollowUp) -> Option<String> {
        let before = world.snapshot();
        if follow_up != FollowUp::Rerun && (!before.files.is_empty() || before.claim) {
            // The same `rotate` must refuse and send nothing while the file or this
            // host's claim is there.
            let refused = world.rotate().await;
            let requests = world.provider.requests();
            if refused != 9 || requests != before.requests {
                return Some(format!(
                    "a rerun with a recovery file or claim left exit {refused} after {} new \
                     request(s)",
                    requests - before.requests
                ));
            }
        }
        let code = match follow_up {
            FollowUp::Rerun => world.rotate().await,
            FollowUp::Recover => world.recover().await,
            FollowUp::RecoverThenRerun => match world.recover().await {
                0 => world.rotate().await,
                code => code,
            },
        };
        let end = world.snapshot();
        let untouched = same(end.provider.as_ref(), start.provider.as_ref())
            && same(end.current.as_ref(), start.current.as_ref());
        let fine = end.settled()
            // `recover` after a run that changed nothing has nothing to do.
            || (follow_up == FollowUp::Recover && untouched && end.nothing_left());
        if code != 0 || !fine {
            return Some(format!("exit {code}: {}", end.describe(start)));
        }
        None
    }
}

/// The baseline of one protocol, start and outcome: its keyring calls and its request.
async fn baseline(
    kind: ProviderKind,
    start: Start,
    outcome: Outcome,
    backing: Backing,
) -> (Vec<Call>, Option<usize>) {
    let world = World::at(kind, start, backing).await;
    world.provider.script([outcome]);
    world.rotate().await;
    let log = faults().take(&world.service);
    (log.calls, log.request_at)
}

/// Every case of the table for `kind` from `starts`.
async fn cases(kind: ProviderKind, starts: &[Start], backing: Backing) -> Vec<Case> {
    let mut cases = Vec::new();
    for &start in starts {
        for outcome in OUTCOMES {
            let (calls, request_at) = baseline(kind, start, outcome, backing).await;
            cases.push(Case {
                backing,
                kind,
                start,
                outcome,
                fault: None,
                request_at,
            });
            for (k, call) in calls.into_iter().enumerate() {
                for &mode in Mode::of(backing) {
                    cases.push(Case {
                        backing,
                        kind,
                        start,
                        outcome,
                        fault: Some((k, call.clone(), mode)),
                        request_at,
                    });
                }
            }
        }
    }
    cases
}

async fn run_table(kind: &str, starts: &[Start], backing: Backing) {
    let kind = ProviderKind::from_name(kind).expect("a registered provider");
    let cases = cases(kind, starts, backing).await;
    let mut problems = Vec::new();
    // Cases run side by side, so that the keyring thread always has work queued.
    for chunk in cases.chunks(32) {
        let runs = futures_util::future::join_all(chunk.iter().map(Case::run)).await;
        problems.extend(runs.into_iter().flatten());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn client_set_rotation_survives_every_keyring_fault_and_provider_outcome() {
    run_table(
        "vobiz",
        &[
            Start::Current,
            Start::Empty,
            Start::PendingLive,
            Start::PendingDead,
        ],
        Backing::Keyring,
    )
    .await;
}

#[tokio::test]
async fn server_generated_rotation_survives_every_keyring_fault_and_provider_outcome() {
    run_table(
        "telepath",
        &[Start::Current, Start::Empty],
        Backing::Keyring,
    )
    .await;
}

#[tokio::test]
async fn client_set_rotation_survives_every_shared_store_fault_and_provider_outcome() {
    run_table(
        "vobiz",
        &[
            Start::Current,
            Start::Empty,
            Start::PendingLive,
            Start::PendingDead,
        ],
        Backing::Shared,
    )
    .await;
}

#[tokio::test]
async fn server_generated_rotation_survives_every_shared_store_fault_and_provider_outcome() {
    run_table("telepath", &[Start::Current, Start::Empty], Backing::Shared).await;
}

/// A `#pending` equal to current is what a rotation leaves when it finished all but
/// removing `#pending` (killed after writing current, or the delete failed): a rerun
/// rotates anew instead of resending the password in use (which would restart its age
/// without changing it).
#[tokio::test]
async fn a_pending_equal_to_current_is_dropped_and_the_rotation_starts_afresh() {
    let kind = ProviderKind::from_name("vobiz").expect("vobiz is registered");
    let layout = Layout {
        current: Some(P0),
        pending: Some(P0),
        provider: P0,
        ..Layout::default()
    };
    let world = World::laid_out(kind, layout, Backing::Keyring).await;
    assert_eq!(world.rotate().await, 0);
    let now = world.snapshot();
    assert!(now.settled(), "{}", now.describe(&now));
    let current = now.current.as_ref().expect("a current password");
    assert_ne!(current.expose_secret(), P0, "a new password was set");
    assert!(
        same(now.previous.as_ref(), Some(&P0.into())),
        "the finished rotation's password is the previous one"
    );
    assert_eq!(now.requests, 1);
}

// ---------------------------------------------------------------------------------------
// The recover table

/// What an interrupted rotation left for `recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leftover {
    /// `#pending` the provider took (the answer was lost).
    PendingLive,
    /// `#pending` the provider never took.
    PendingDead,
    /// `#pending` of a first rotation, taken by the provider.
    PendingFirst,
    /// A recovery file of an entry nobody touched since (current still `#previous`).
    FileUntouched,
    /// A recovery file of a first rotation (no current).
    FileFirst,
    /// A recovery file whose password is already current.
    FileStored,
    /// A recovery file a later rotation superseded (its password is in `#previous`).
    FileSuperseded,
    /// A probe a rotation could not delete (the keyring only).
    Probe,
    /// This host's claim of a Telepath rotation that stopped before the request (shared
    /// stores only).
    Claim,
    /// A recovery file of an untouched entry with the claim its rotation kept (shared
    /// stores only).
    ClaimedFile,
}

impl Leftover {
    fn kind(self) -> &'static str {
        match self {
            Leftover::PendingLive | Leftover::PendingDead | Leftover::PendingFirst => "vobiz",
            _ => "telepath",
        }
    }

    fn layout(self) -> Layout {
        let base = Layout::default();
        match self {
            Leftover::PendingLive => Layout {
                current: Some(P0),
                pending: Some(P1),
                provider: P1,
                ..base
            },
            Leftover::PendingDead => Layout {
                current: Some(P0),
                pending: Some(P1),
                provider: P0,
                ..base
            },
            Leftover::PendingFirst => Layout {
                pending: Some(P1),
                provider: P1,
                ..base
            },
            Leftover::FileUntouched => Layout {
                current: Some(P0),
                previous: Some(P0),
                file: Some(P2),
                provider: P2,
                ..base
            },
            Leftover::FileFirst => Layout {
                file: Some(P2),
                provider: P2,
                ..base
            },
            Leftover::FileStored => Layout {
                current: Some(P2),
                previous: Some(P0),
                file: Some(P2),
                provider: P2,
                ..base
            },
            Leftover::FileSuperseded => Layout {
                current: Some(P1),
                previous: Some(P2),
                file: Some(P2),
                provider: P1,
                ..base
            },
            Leftover::Probe => Layout {
                current: Some(P0),
                probe: Some("siprot keyring probe"),
                provider: P0,
                ..base
            },
            Leftover::Claim => Layout {
                current: Some(P0),
                claim: true,
                provider: P0,
                ..base
            },
            Leftover::ClaimedFile => Layout {
                claim: true,
                ..Leftover::FileUntouched.layout()
            },
        }
    }
}

struct RecoverCase {
    backing: Backing,
    leftover: Leftover,
    /// The answer to a resent `#pending` password.
    outcome: Outcome,
    fault: Option<(usize, Call, Mode)>,
    request_at: Option<usize>,
}

impl std::fmt::Display for RecoverCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recover in the {:?} store of {:?}, provider {:?}, ",
            self.backing, self.leftover, self.outcome
        )?;
        match &self.fault {
            None => write!(f, "no store fault"),
            Some((k, call, mode)) => write!(
                f,
                "store call {} ({call}{}) failing {}",
                k + 1,
                match self.request_at {
                    None => "",
                    Some(r) if *k < r => ", before the request",
                    Some(_) => ", after the request",
                },
                mode.describe()
            ),
        }
    }
}

impl RecoverCase {
    /// The exit code the README documents for the faulted `recover`.
    fn expected_code(&self) -> u8 {
        if let Some((_, call, _)) = &self.fault
            && self.leftover == Leftover::ClaimedFile
            && !(call.op == Op::List || call.entry.ends_with("#pending"))
        {
            // The file could not be stored, so the claim stays beside it (exit 9).
            return 9;
        }
        if let Some((k, _, _)) = &self.fault
            && self.request_at.is_none_or(|r| *k < r)
        {
            // Nothing sent: the store was unusable.
            return 8;
        }
        match (self.request_at, self.outcome) {
            (None, _) | (Some(_), Outcome::Accept) => match &self.fault {
                Some((_, call, _))
                    if !(call.op == Op::Delete && call.entry.ends_with("#pending")) =>
                {
                    9
                }
                _ => 0,
            },
            // The resent password stays pending whatever the provider answered.
            (Some(_), _) => 9,
        }
    }

    async fn run(&self) -> Vec<String> {
        let kind = ProviderKind::from_name(self.leftover.kind()).expect("a registered provider");
        let world = World::laid_out(kind, self.leftover.layout(), self.backing).await;
        let start = world.snapshot();
        world.arm(
            self.outcome,
            self.fault.as_ref().map(|(k, _, mode)| (*k, *mode)),
        );
        let code = world.recover().await;
        world.provider.clear_script();
        let after = world.snapshot();
        let mut problems = Vec::new();
        let expected = self.expected_code();
        if code != expected {
            problems.push(format!("exit {code}, documented {expected}"));
        }
        if !after.provider_known() {
            problems.push("the provider's password is nowhere local".into());
        }
        let mut problems: Vec<String> = problems
            .into_iter()
            .map(|p| format!("{self}: {p}: {}", after.describe(&start)))
            .collect();
        let again = world.recover().await;
        let end = world.snapshot();
        if again != 0 || !end.settled() {
            problems.push(format!(
                "{self}, then recover: exit {again}: {}",
                end.describe(&start)
            ));
        }
        problems
    }
}

async fn recover_cases(leftover: Leftover, backing: Backing) -> Vec<RecoverCase> {
    let kind = ProviderKind::from_name(leftover.kind()).expect("a registered provider");
    let outcomes: &[Outcome] = match kind.origin() {
        PasswordOrigin::ClientSupplied => &OUTCOMES,
        PasswordOrigin::ServerGenerated => &[Outcome::Accept],
    };
    let mut cases = Vec::new();
    for &outcome in outcomes {
        let world = World::laid_out(kind, leftover.layout(), backing).await;
        world.provider.script([outcome]);
        world.recover().await;
        let log = faults().take(&world.service);
        let faults = log.calls.into_iter().enumerate().flat_map(|(k, call)| {
            Mode::of(backing)
                .iter()
                .map(move |&mode| Some((k, call.clone(), mode)))
        });
        for fault in std::iter::once(None).chain(faults) {
            cases.push(RecoverCase {
                backing,
                leftover,
                outcome,
                fault,
                request_at: log.request_at,
            });
        }
    }
    cases
}

async fn run_recover_table(leftovers: &[Leftover], backing: Backing) {
    let mut cases = Vec::new();
    for &leftover in leftovers {
        cases.extend(recover_cases(leftover, backing).await);
    }
    let mut problems = Vec::new();
    for chunk in cases.chunks(32) {
        let runs = futures_util::future::join_all(chunk.iter().map(RecoverCase::run)).await;
        problems.extend(runs.into_iter().flatten());
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in {} cases:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn recover_survives_every_keyring_fault_and_provider_outcome() {
    run_recover_table(
        &[
            Leftover::PendingLive,
            Leftover::PendingDead,
            Leftover::PendingFirst,
            Leftover::FileUntouched,
            Leftover::FileFirst,
            Leftover::FileStored,
            Leftover::FileSuperseded,
            Leftover::Probe,
        ],
        Backing::Keyring,
    )
    .await;
}

#[tokio::test]
async fn recover_survives_every_shared_store_fault_and_provider_outcome() {
    run_recover_table(
        &[
            Leftover::PendingLive,
            Leftover::PendingDead,
            Leftover::PendingFirst,
            Leftover::FileUntouched,
            Leftover::FileFirst,
            Leftover::FileStored,
            Leftover::FileSuperseded,
            Leftover::Claim,
            Leftover::ClaimedFile,
        ],
        Backing::Shared,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// recover's judgement of recovery files

#[test]
fn recovery_files_are_judged_from_the_keyring_alone() {
    use crate::recovery::{Verdict, judge};
    use Verdict::{AlreadyStored, Changed, Install, Several, Superseded};
    let [a, b, c, n, m] = ["a", "b", "c", "n", "m"].map(SecretString::from);
    // (current, #previous, the files' passwords, the verdicts)
    #[allow(clippy::type_complexity)]
    let table: &[(
        Option<&SecretString>,
        Option<&SecretString>,
        &[&SecretString],
        &[Verdict],
    )] = &[
        // a copy of current
        (Some(&a), None, &[&a], &[AlreadyStored]),
        (Some(&a), Some(&b), &[&a], &[AlreadyStored]),
        // a later rotation moved it to #previous
        (Some(&b), Some(&a), &[&a], &[Superseded]),
        // untouched since: no current, or current still the backup in #previous
        (None, None, &[&n], &[Install]),
        (None, Some(&a), &[&n], &[Install]),
        (Some(&a), Some(&a), &[&n], &[Install]),
        // #previous alone proves nothing without a current
        (None, Some(&n), &[&n], &[Install]),
        // changed in another way
        (Some(&b), Some(&c), &[&n], &[Changed]),
        (Some(&b), None, &[&n], &[Changed]),
        // several remaining files: which is live is unknown, even on an untouched entry
        (Some(&a), Some(&a), &[&n, &m], &[Several(2), Several(2)]),
        (None, None, &[&n, &n], &[Several(2), Several(2)]),
        (Some(&b), Some(&c), &[&n, &m], &[Several(2), Several(2)]),
        // settled files do not count as remaining ones
        (Some(&a), Some(&a), &[&a, &n], &[AlreadyStored, Install]),
        (Some(&b), Some(&a), &[&a, &n], &[Superseded, Changed]),
        (
            Some(&b),
            Some(&a),
            &[&n, &a, &b, &m],
            &[Several(2), Superseded, AlreadyStored, Several(2)],
        ),
        (Some(&a), None, &[&a, &a], &[AlreadyStored, AlreadyStored]),
    ];
    for (row, (current, previous, files, verdicts)) in table.iter().enumerate() {
        assert_eq!(
            judge(*current, *previous, files),
            *verdicts,
            "row {row} of the table"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The protocol on a shared store: two hosts, one store

fn provider_kind(name: &str) -> ProviderKind {
    ProviderKind::from_name(name).expect("a registered provider")
}

/// Two hosts (two state directories) on one shared store that holds what `layout` says.
async fn two_hosts(kind: &str, layout: Layout) -> (World, World) {
    let a = World::laid_out(provider_kind(kind), layout, Backing::Shared).await;
    let b = a.beside();
    (a, b)
}

/// The message and exit code of a failed rotation.
fn failure(result: crate::Result<rotation::RotationReport>) -> (u8, String) {
    match result {
        Ok(report) => panic!("the rotation succeeded: {:?}", report.status),
        Err(error) => (error.exit_code().code(), error.to_string()),
    }
}

/// The one recover item of `kind` (a claim, a pending password, a recovery file).
fn the_item(items: &[recovery::Item], kind: recovery::ItemKind) -> &recovery::Item {
    let found: Vec<&recovery::Item> = items.iter().filter(|i| i.kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind:?} item: {items:?}");
    found[0]
}

/// Two rotations of one credential from two hosts that both found it unclaimed: both
/// reach the claim, the first one's lands, and the second one stops with exit 7 before
/// anything is sent, naming the first one's host and state directory; the first finishes.
#[tokio::test]
async fn of_two_concurrent_rotators_in_a_shared_store_exactly_one_proceeds() {
    for kind in ["telepath", "vobiz", "exotel"] {
        let (a, b) = two_hosts(kind, Start::Current.layout()).await;
        let (a_claiming, let_a_claim) = a.faulty().hold(Op::Set, Slot::Pending, Hold::Before);
        let (a_claimed, let_a_go_on) = a.faulty().hold(Op::Set, Slot::Pending, Hold::After);
        let (b_claiming, let_b_claim) = b.faulty().hold(Op::Set, Slot::Pending, Hold::Before);
        let driver = async {
            // Both read the store and found no claim.
            a_claiming.await.expect("a reaches its claim");
            b_claiming.await.expect("b reaches its claim");
            let_a_claim.send(()).expect("a waits");
            a_claimed.await.expect("a's claim lands");
            let_b_claim.send(()).expect("b waits");
        };
        let second = async {
            let result = b.rotation().await;
            // Nothing reached the provider from either host yet: a waits after its claim.
            let requests = b.provider.requests();
            let _ = let_a_go_on.send(());
            (result, requests)
        };
        let (first, (second, requests_by_then), ()) = tokio::join!(a.rotation(), second, driver);
        let (code, message) = failure(second);
        assert_eq!(code, 7, "{kind}: {message}");
        assert_eq!(
            requests_by_then, 0,
            "{kind}: a request went out before b stopped"
        );
        let holder = Holder::here(&a.state).expect("a's holder");
        for part in [
            holder.host.as_str(),
            holder.state.as_str(),
            "nothing was sent",
        ] {
            assert!(message.contains(part), "{kind}: '{part}' not in: {message}");
        }
        let first = first.unwrap_or_else(|e| panic!("{kind}: the first rotator failed: {e}"));
        assert_eq!(first.status, rotation::RotationStatus::Rotated);
        let end = a.snapshot();
        assert!(end.settled(), "{kind}: {}", end.describe(&end));
        assert_eq!(
            end.requests, 1,
            "{kind}: only the first rotator sent a request"
        );
        assert!(b.recovery().await.expect("recover").is_empty(), "{kind}");
    }
}

/// A second host that starts while the first one's claim is in the store (a run in
/// flight, or one that died): its rotation stops before anything is sent, and its
/// `recover` leaves another host's Telepath claim alone (`held`, exit 7) while the
/// holder's `recover` clears it. A client-set `#pending` of another host is finished by
/// either host's `recover`.
#[tokio::test]
async fn a_claim_of_another_holder_stops_the_rotation_and_only_its_holder_clears_it() {
    // A Telepath claim of host a, which died before its request.
    let (a, b) = two_hosts("telepath", Start::Current.layout()).await;
    a.put_claim(Holder::claiming(&a.state).expect("a holder id"));
    let (code, message) = failure(b.rotation().await);
    assert_eq!(code, 7, "{message}");
    assert!(
        message.contains(&a.state.root().display().to_string()),
        "{message}"
    );
    assert_eq!(
        b.provider.requests(),
        0,
        "nothing is sent over another's claim"
    );
    let items = b.recovery().await.expect("recover");
    let claim = the_item(&items, recovery::ItemKind::Claim);
    assert_eq!(
        claim.outcome,
        recovery::ItemOutcome::Held,
        "{}",
        claim.message
    );
    assert_eq!(recovery::exit_code(&items).code(), 7);
    assert!(b.snapshot().claim, "another host's claim stays");
    let items = a.recovery().await.expect("recover");
    let claim = the_item(&items, recovery::ItemKind::Claim);
    assert_eq!(
        claim.outcome,
        recovery::ItemOutcome::Cleared,
        "{}",
        claim.message
    );
    assert_eq!(recovery::exit_code(&items).code(), 0);
    assert_eq!(b.rotate().await, 0);
    let end = b.snapshot();
    assert!(end.settled(), "{}", end.describe(&end));

    // A claim of a host that is not this one at all names that host and its time.
    let (_, b) = two_hosts("telepath", Start::Current.layout()).await;
    let elsewhere = Holder {
        host: "pbx-ci-7".into(),
        state: "/var/lib/siprot".into(),
        id: None,
        pid: 4242,
        since: "2026-11-29T08:00:00Z".into(),
    };
    b.put_claim(elsewhere.clone());
    let (code, message) = failure(b.rotation().await);
    assert_eq!(code, 7, "{message}");
    for part in [elsewhere.host.as_str(), elsewhere.since.as_str()] {
        assert!(message.contains(part), "'{part}' not in: {message}");
    }
    assert_eq!(b.provider.requests(), 0);

    // A client-set `#pending` host a staged and the provider took.
    for kind in ["vobiz", "exotel"] {
        let (a, b) = two_hosts(kind, Start::PendingLive.layout()).await;
        let (code, message) = failure(b.rotation().await);
        assert_eq!(code, 7, "{kind}: {message}");
        assert!(
            message.contains(&a.state.root().display().to_string()),
            "{message}"
        );
        assert_eq!(
            b.provider.requests(),
            0,
            "{kind}: nothing is sent over another's claim"
        );
        let items = b.recovery().await.expect("recover");
        let pending = the_item(&items, recovery::ItemKind::Pending);
        assert_eq!(
            pending.outcome,
            recovery::ItemOutcome::Finished,
            "{}",
            pending.message
        );
        let end = b.snapshot();
        assert!(end.settled(), "{kind}: {}", end.describe(&end));
        assert!(
            same(end.current.as_ref(), Some(&P1.into())),
            "{kind}: the staged one"
        );
    }
}

/// This host's own leftover Telepath claim (a run that died between its claim and its
/// end, with no recovery file): `rotate` stops with exit 9 and sends nothing, telling to
/// run `siprot recover`, which clears it; then `rotate` works again.
#[tokio::test]
async fn this_hosts_leftover_claim_is_cleared_by_recover_and_blocks_rotate_until_then() {
    let world = World::laid_out(
        provider_kind("telepath"),
        Leftover::Claim.layout(),
        Backing::Shared,
    )
    .await;
    let (code, message) = failure(world.rotation().await);
    assert_eq!(code, 9, "{message}");
    assert!(message.contains("siprot recover"), "{message}");
    assert_eq!(world.provider.requests(), 0);
    assert!(world.snapshot().claim);
    let items = world.recovery().await.expect("recover");
    let claim = the_item(&items, recovery::ItemKind::Claim);
    assert_eq!(
        claim.outcome,
        recovery::ItemOutcome::Cleared,
        "{}",
        claim.message
    );
    assert_eq!(recovery::exit_code(&items).code(), 0);
    assert!(!world.snapshot().claim);
    assert_eq!(world.rotate().await, 0);
    let end = world.snapshot();
    assert!(end.settled(), "{}", end.describe(&end));
    assert_eq!(end.requests, 1);
}

/// Someone else writes the current password while a rotation is between its start and
/// its new current: the check-and-set write fails (exit 9) and the new password is kept
/// (client-set: in `#pending`, resent by a rerun; Telepath: in a recovery file, with the
/// claim kept until `recover` stored it).
#[tokio::test]
async fn a_current_changed_during_the_rotation_is_not_overwritten() {
    for kind in ["vobiz", "exotel"] {
        let world = World::laid_out(
            provider_kind(kind),
            Start::Current.layout(),
            Backing::Shared,
        )
        .await;
        let memory = world.memory().expect("a shared store").clone();
        let (promoting, let_it_go) = world.faulty().hold(Op::Set, Slot::Current, Hold::Before);
        let other = async {
            promoting
                .await
                .expect("the rotation reaches its new current");
            memory.put(&world.name, Slot::Current, Some(P2), world.facts());
            let_it_go.send(()).expect("the rotation waits");
        };
        let (rotated, ()) = tokio::join!(world.rotation(), other);
        let (code, message) = failure(rotated);
        assert_eq!(code, 9, "{kind}: {message}");
        let after = world.snapshot();
        assert!(
            same(after.current.as_ref(), Some(&P2.into())),
            "{kind}: not overwritten"
        );
        assert!(
            after.pending.is_some() && same(after.pending.as_ref(), after.provider.as_ref()),
            "{kind}: the accepted password is kept in #pending: {}",
            after.describe(&after)
        );
        assert_eq!(
            world.rotate().await,
            0,
            "{kind}: a rerun resends and promotes it"
        );
        let end = world.snapshot();
        assert!(end.settled(), "{kind}: {}", end.describe(&end));
        assert!(
            same(end.previous.as_ref(), Some(&P2.into())),
            "{kind}: kept as previous"
        );
    }

    // Telepath, where the other writer stored the same password again (a new version):
    // `recover` installs the file over that version and clears the claim.
    let world = World::laid_out(
        provider_kind("telepath"),
        Start::Current.layout(),
        Backing::Shared,
    )
    .await;
    let memory = world.memory().expect("a shared store").clone();
    let (storing, let_it_go) = world.faulty().hold(Op::Set, Slot::Current, Hold::Before);
    let other = async {
        storing.await.expect("the rotation reaches its new current");
        memory.put(&world.name, Slot::Current, Some(P0), world.facts());
        let_it_go.send(()).expect("the rotation waits");
    };
    let (rotated, ()) = tokio::join!(world.rotation(), other);
    let (code, message) = failure(rotated);
    assert_eq!(code, 9, "{message}");
    let after = world.snapshot();
    assert!(same(after.current.as_ref(), Some(&P0.into())));
    assert_eq!(after.files.len(), 1, "{}", after.describe(&after));
    assert!(same(after.files.first(), after.provider.as_ref()));
    assert!(after.claim, "the claim stays beside the recovery file");
    assert_eq!(
        world.rotate().await,
        9,
        "rotate refuses while the file is there"
    );
    assert_eq!(world.provider.requests(), 1);
    assert_eq!(world.recover().await, 0);
    let end = world.snapshot();
    assert!(end.settled(), "{}", end.describe(&end));

    // Telepath, where the other writer stored another password: nothing is guessed, the
    // file and the claim stay for the operator.
    let world = World::laid_out(
        provider_kind("telepath"),
        Start::Current.layout(),
        Backing::Shared,
    )
    .await;
    let memory = world.memory().expect("a shared store").clone();
    let (storing, let_it_go) = world.faulty().hold(Op::Set, Slot::Current, Hold::Before);
    let other = async {
        storing.await.expect("the rotation reaches its new current");
        memory.put(&world.name, Slot::Current, Some(P2), world.facts());
        let_it_go.send(()).expect("the rotation waits");
    };
    let (rotated, ()) = tokio::join!(world.rotation(), other);
    assert_eq!(failure(rotated).0, 9);
    assert_eq!(world.recover().await, 9);
    let end = world.snapshot();
    assert!(same(end.current.as_ref(), Some(&P2.into())));
    assert!(same(end.files.first(), end.provider.as_ref()) && end.claim);
}

/// What a shared store keeps beside a password: the facts a PBX template reads, written
/// with current, and carried to `#previous` with the password they describe.
#[tokio::test]
async fn a_shared_store_keeps_the_facts_of_each_password() {
    for kind in ["telepath", "vobiz", "exotel"] {
        let world = World::laid_out(
            provider_kind(kind),
            Start::Current.layout(),
            Backing::Shared,
        )
        .await;
        assert_eq!(world.rotate().await, 0, "{kind}");
        let first = world.read(Slot::Current).expect("a current password");
        let facts = &first.facts;
        assert_eq!(facts.provider, kind);
        assert_eq!(facts.credential, world.credential.id());
        assert_eq!(facts.device.as_deref(), world.credential.device(), "{kind}");
        assert_eq!(facts.username, Some(format!("{}-user", world.service)));
        let rotated_at = facts.rotated_at.as_deref().expect("rotated_at is written");
        rotated_at
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{kind}: rotated_at '{rotated_at}': {e}"));
        assert_eq!(facts.holder, None, "{kind}: current carries no claim");
        assert_eq!(world.rotate().await, 0, "{kind}");
        let previous = world.read(Slot::Previous).expect("a previous password");
        assert!(
            same(previous.secret.as_ref(), first.secret.as_ref()),
            "{kind}"
        );
        assert_eq!(
            previous.facts, first.facts,
            "{kind}: #previous keeps its facts"
        );
        let second = world.read(Slot::Current).expect("a current password");
        assert!(second.version > first.version, "{kind}: a new version");
    }
}

/// Another host's whole rotation that runs between this one's start and its claim (the
/// claim was free again when this one wrote it): this rotation builds on the password
/// that rotation stored (keeps it in `#previous`, replaces it by check-and-set) instead of
/// failing after its request over a current it read before claiming.
#[tokio::test]
async fn a_rotation_another_host_finished_before_the_claim_is_built_upon() {
    for kind in ["telepath", "vobiz"] {
        let (a, b) = two_hosts(kind, Start::Current.layout()).await;
        let (claiming, let_it_claim) = a.faulty().hold(Op::Set, Slot::Pending, Hold::Before);
        let other = async {
            claiming.await.expect("a reaches its claim");
            assert_eq!(b.rotate().await, 0, "{kind}: b rotates while a waits");
            let b_password = b.snapshot().current;
            let_it_claim.send(()).expect("a waits");
            b_password
        };
        let (rotated, b_password) = tokio::join!(a.rotation(), other);
        if let Err(error) = rotated {
            panic!("{kind}: the later rotation failed: {error}");
        }
        let end = a.snapshot();
        assert!(end.settled(), "{kind}: {}", end.describe(&end));
        assert_eq!(end.requests, 2, "{kind}");
        assert!(
            same(end.previous.as_ref(), b_password.as_ref()),
            "{kind}: the other host's password is kept as previous: {}",
            end.describe(&end)
        );
    }
}

/// `recover` on the host (and state directory) whose rotation is in flight must not take
/// that rotation's claim for a leftover: the run holds the credential's lock, so the
/// claim stays (exit 7) and no other host can start a second rotation beside it.
#[tokio::test]
async fn recover_leaves_the_claim_of_a_rotation_in_flight_on_this_host() {
    let (a, b) = two_hosts("telepath", Start::Current.layout()).await;
    let (claimed, let_it_go_on) = a.faulty().hold(Op::Set, Slot::Pending, Hold::After);
    let meanwhile = async {
        claimed.await.expect("the rotation claims the credential");
        let items = a.recovery().await.expect("recover");
        let claim = the_item(&items, recovery::ItemKind::Claim);
        assert_eq!(
            claim.outcome,
            recovery::ItemOutcome::Failed,
            "{}",
            claim.message
        );
        assert_eq!(recovery::exit_code(&items).code(), 7, "{}", claim.message);
        assert!(a.snapshot().claim, "the claim of the run in flight stays");
        let (code, message) = failure(b.rotation().await);
        assert_eq!(code, 7, "{message}");
        let_it_go_on.send(()).expect("the rotation waits");
    };
    let (rotated, ()) = tokio::join!(a.rotation(), meanwhile);
    rotated.unwrap_or_else(|e| panic!("the rotation in flight failed: {e}"));
    let end = a.snapshot();
    assert!(end.settled(), "{}", end.describe(&end));
    assert_eq!(end.requests, 1, "one rotation reached the provider");
}

/// A store that answers the write of the new current without storing it (a broken proxy
/// in front of the vault store): the read-back after that write finds the old password,
/// so the rotation never exits 0, and the accepted password stays where it was (client-set:
/// `#pending`, resent and promoted by a rerun; Telepath: a recovery file beside the claim,
/// stored by `recover`).
#[tokio::test]
async fn a_current_write_the_store_answered_without_storing_is_caught_by_the_read_back() {
    for kind in ["vobiz", "exotel", "telepath"] {
        let world = World::laid_out(
            provider_kind(kind),
            Start::Current.layout(),
            Backing::Shared,
        )
        .await;
        let memory = world.memory().expect("a shared store").clone();
        let (written, let_it_go) = world.faulty().hold(Op::Set, Slot::Current, Hold::After);
        let lying = async {
            written.await.expect("the rotation writes its new current");
            // The write is undone before its answer arrives: it never stored anything.
            memory.put(&world.name, Slot::Current, Some(P0), world.facts());
            let_it_go.send(()).expect("the rotation waits");
        };
        let (rotated, ()) = tokio::join!(world.rotation(), lying);
        let (code, message) = failure(rotated);
        assert_eq!(code, 9, "{kind}: {message}");
        assert!(message.contains("read back"), "{kind}: {message}");
        let after = world.snapshot();
        assert!(
            !same(after.provider.as_ref(), Some(&P0.into())),
            "{kind}: the provider rotated"
        );
        assert!(
            same(after.current.as_ref(), Some(&P0.into())),
            "{kind}: {}",
            after.describe(&after)
        );
        if kind == "telepath" {
            assert!(
                same(after.files.first(), after.provider.as_ref()) && after.claim,
                "{kind}: the password is in a recovery file beside the claim: {}",
                after.describe(&after)
            );
            assert_eq!(world.recover().await, 0, "{kind}: recover stores it");
        } else {
            assert!(
                same(after.pending.as_ref(), after.provider.as_ref()),
                "{kind}: the password stays in #pending: {}",
                after.describe(&after)
            );
            assert_eq!(
                world.rotate().await,
                0,
                "{kind}: a rerun resends and promotes it"
            );
        }
        let end = world.snapshot();
        assert!(end.settled(), "{kind}: {}", end.describe(&end));
        assert!(same(end.current.as_ref(), after.provider.as_ref()));
    }
}

/// Claims that are not provably this host's: one of a clone of it (a cloned VM or
/// container: the same host name and state path, its own state directory id), one
/// written without an id (before siprot recorded one) and one that names no holder at
/// all. `rotate` stops with exit 7 and sends nothing, `recover` reports a claim `held`
/// (exit 7), and each stays where it is.
#[tokio::test]
async fn a_claim_not_provably_this_hosts_is_held_and_kept() {
    for kind in ["telepath", "vobiz", "exotel"] {
        let world = World::laid_out(
            provider_kind(kind),
            Start::Current.layout(),
            Backing::Shared,
        )
        .await;
        let memory = world.memory().expect("a shared store").clone();
        let here = Holder::claiming(&world.state).expect("this host's holder");
        let clone_dir = temp_dir();
        let clone_state = StateDir::at(clone_dir.path().join("siprot"));
        let clone = Holder {
            host: here.host.clone(),
            state: here.state.clone(),
            ..Holder::claiming(&clone_state).expect("the clone's holder")
        };
        assert!(clone.id.is_some() && clone.id != here.id);
        let without_id = Holder {
            id: None,
            ..here.clone()
        };
        let staged = (kind != "telepath").then_some(P1);
        for (what, holder) in [
            ("a clone's", Some(clone)),
            ("an id-less", Some(without_id)),
            ("a holder-less", None),
        ] {
            let facts = Facts {
                holder,
                ..world.facts()
            };
            memory.put(&world.name, Slot::Pending, staged, facts.clone());
            let (code, message) = failure(world.rotation().await);
            assert_eq!(code, 7, "{kind}, {what} claim: {message}");
            assert!(message.contains("nothing was sent"), "{message}");
            assert_eq!(world.provider.requests(), 0, "{kind}, {what} claim");
            let kept = memory.get(&world.name, Slot::Pending).expect("kept");
            assert_eq!(kept.facts, facts, "{kind}, {what} claim: left as it was");
            if staged.is_none() {
                let items = world.recovery().await.expect("recover");
                let claim = the_item(&items, recovery::ItemKind::Claim);
                assert_eq!(
                    claim.outcome,
                    recovery::ItemOutcome::Held,
                    "{what} claim: {}",
                    claim.message
                );
                assert_eq!(recovery::exit_code(&items).code(), 7, "{what} claim");
                assert!(world.snapshot().claim, "{what} claim: recover keeps it");
            }
            memory
                .delete(&world.name, Slot::Pending)
                .await
                .expect("the test removes it");
        }
        assert_eq!(world.rotate().await, 0, "{kind}: free again");
    }
}

/// The state directory's id is made once, by the first run that may claim, and kept: a
/// run that only compares claims creates nothing, and a file siprot did not write is
/// refused (exit 4).
#[test]
fn the_state_directory_id_is_made_once_and_kept() {
    let dir = temp_dir();
    let state = StateDir::at(dir.path().join("siprot"));
    let before = Holder::here(&state).expect("no id yet");
    assert_eq!(before.id, None);
    assert!(!state.root().join("holder-id").exists());
    let first = Holder::claiming(&state).expect("an id");
    assert!(first.id.is_some());
    assert_eq!(Holder::claiming(&state).expect("the id").id, first.id);
    assert_eq!(Holder::here(&state).expect("the id").id, first.id);
    assert!(first.same_place(&Holder::here(&state).expect("here")));
    assert!(
        !before.same_place(&before),
        "no id: nothing is provably ours"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.root().join("holder-id"))
            .expect("the id file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::write(state.root().join("holder-id"), "not an id\n").expect("overwrite");
    let refused = Holder::claiming(&state).expect_err("refused");
    assert_eq!(refused.exit_code().code(), 4, "{refused}");
}
