//! In-process fault tables of the rotation protocol ([`rotation::rotate`]) and of
//! [`recovery::recover`], run by `cargo test --lib` without D-Bus.
//!
//! Every case runs against a [`MemoryProvider`] of a real kind (Telepath for the
//! server-generated protocol, Vobiz for the client-set one) and keyring-core's mock store,
//! wrapped by [`FaultStore`], which records every keyring call of a case's own keyring
//! service and makes a chosen one fail (through `mock::Cred::set_error`): only that call
//! (`once`), or that call and every later one of the run (`dead`, a keyring that stopped).
//!
//! A table is built from fault-free baselines: for each protocol, each starting state and
//! each provider outcome, the baseline's keyring calls are recorded (and where the request
//! came among them); then each of those calls fails in turn, in both modes. After the
//! first run the case checks the documented exit code (8 before the request; the
//! outcome's after it; 9 when the provider may hold a password the keyring does not
//! confirm) and that the provider's password is still known locally (current, `#pending`
//! or a recovery file; Telepath's lost answer excepted). Then it runs each documented
//! follow-up on the healthy keyring (the same `rotate` again, or `siprot recover`) and
//! checks that it exits 0 with the keyring's current password equal to the provider's,
//! nothing pending, no probe and no recovery file left.
//!
//! The same is done for `recover` itself: each kind of leftover (a `#pending` the provider
//! took or never took, a recovery file of each kind `recover` judges, a probe) with each
//! keyring call of its baseline failing, then one more `recover` must settle it. A last
//! table checks that judgement ([`recovery::judge`]) on its own.
//!
//! Each case uses a keyring service of its own and a state directory of its own, so that
//! cases (and other unit tests sharing the process-wide mock store) never meet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, OnceLock};

use keyring_core::api::{CredentialApi, CredentialStoreApi};
use keyring_core::{Credential, CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

use crate::http::Attempts;
use crate::providers::memory::{MemoryProvider, Outcome};
use crate::providers::{CredentialRef, PasswordOrigin, Provider, ProviderKind};
use crate::recovery;
use crate::rotation::{self, PasswordSource, RotationInput};
use crate::state::StateDir;
use crate::store::{self, EntryName, Keyring, Slot};

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
    /// Records a call; whether it is to fail. Untracked services never fail.
    fn call(&self, service: &str, entry: &str, op: Op) -> bool {
        let mut services = lock(&self.services);
        let Some(log) = services.get_mut(service) else {
            return false;
        };
        let index = log.calls.len();
        log.calls.push(Call {
            entry: entry.to_owned(),
            op,
        });
        match log.fail_from {
            Some((k, Mode::Once)) => index == k,
            Some((k, Mode::Dead)) => index >= k,
            None => false,
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
        if self.faults.call(&self.service, &self.user, op) {
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
        if self.faults.call(service, "", Op::List) {
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
// One case's world

/// The account setting Vobiz names its entries with (read from the environment).
fn configure_accounts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("VOBIZ_AUTH_ID").is_none() {
            // SAFETY: set once, before any case reads it, and read by no other unit test;
            // std's environment lock orders it with every read through `std::env`.
            unsafe { std::env::set_var("VOBIZ_AUTH_ID", "MA_UNIT") };
        }
    });
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
    provider: &'static str,
}

const P0: &str = "p0-Initial-pw-1";
const P1: &str = "p1-Staged-pw-2";
const P2: &str = "p2-Recovered-pw-3";

struct World {
    service: String,
    keyring: Keyring,
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
            "now current {}, #pending {}, #previous {}, #probe {}, recovery files [{}], provider \
             {} after {} request(s); at the start current {}, #pending {}, provider {}",
            now(self.current.as_ref()),
            now(self.pending.as_ref()),
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
        self.pending.is_none() && self.probe.is_none() && self.files.is_empty()
    }
}

impl World {
    async fn new(kind: ProviderKind) -> Self {
        configure_accounts();
        let faults = faults();
        let n = NEXT_SERVICE.fetch_add(1, Ordering::Relaxed);
        let service = format!("siprot-unit-fault-{}-{n}", std::process::id());
        faults.reset(&service, None);
        let keyring = Keyring::open(&service, store::DEFAULT_TIMEOUT)
            .await
            .expect("the mock keyring");
        let credential = match kind.registration().needs_device {
            true => CredentialRef::new(kind, "user-1", Some("dev-1")),
            false => CredentialRef::new(kind, "cred-1", None),
        }
        .expect("a valid credential");
        let name = kind.entry_name(&credential).expect("an entry name");
        let dir = temp_dir();
        let state = StateDir::at(dir.path().join("siprot"));
        let provider = MemoryProvider::new(kind, &service, None);
        Self {
            service,
            keyring,
            provider,
            credential,
            name,
            state,
            _dir: dir,
        }
    }

    /// A world standing as `start` says; its keyring log starts after the setup.
    async fn at(kind: ProviderKind, start: Start) -> Self {
        Self::laid_out(kind, start.layout()).await
    }

    /// A world holding what `layout` says; its keyring log starts after the setup.
    async fn laid_out(kind: ProviderKind, layout: Layout) -> Self {
        let mut world = Self::new(kind).await;
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

    /// Scripts the provider's answer and arms the keyring fault (keyring call number and
    /// mode, if any) for the run about to start.
    fn arm(&self, outcome: Outcome, fault: Option<(usize, Mode)>) {
        self.provider.script([outcome]);
        faults().reset(&self.service, fault);
    }

    /// Writes a slot directly in the store (not on the keyring thread: setup and checks
    /// need no timeout, and the table runs faster without the thread hops).
    fn put(&self, slot: Slot, password: &str) {
        Entry::new(&self.service, &self.name.slot(slot))
            .and_then(|entry| entry.set_password(password))
            .expect("a healthy mock keyring");
    }

    fn get(&self, slot: Slot) -> Option<SecretString> {
        match Entry::new(&self.service, &self.name.slot(slot)).and_then(|e| e.get_password()) {
            Ok(password) => Some(password.into()),
            Err(keyring_core::Error::NoEntry) => None,
            Err(error) => panic!("a healthy mock keyring: {error}"),
        }
    }

    /// The exit code of one `rotate` of the credential, as the command would exit.
    async fn rotate(&self) -> u8 {
        let input = RotationInput {
            source: PasswordSource::Generate { length: None },
            description: None,
            dry_run: false,
            attempts: Attempts::new(),
        };
        let rotated = rotation::rotate(
            &self.provider,
            &self.credential,
            &self.keyring,
            &self.state,
            input,
        )
        .await;
        match rotated {
            Ok(_) => 0,
            Err(error) => error.exit_code().code(),
        }
    }

    /// The exit code of `siprot recover`, as the command would exit.
    async fn recover(&self) -> u8 {
        let provider = self.provider.clone();
        let connect = move |kind: ProviderKind| -> crate::Result<Box<dyn Provider>> {
            assert_eq!(
                kind,
                provider.kind(),
                "recover connects to the entry's provider"
            );
            Ok(Box::new(provider.clone()))
        };
        match recovery::recover(&self.keyring, &self.state, &connect, false).await {
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
        Snapshot {
            current: self.get(Slot::Current),
            pending: self.get(Slot::Pending),
            previous: self.get(Slot::Previous),
            probe: self.get(Slot::Probe),
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
    kind: ProviderKind,
    start: Start,
    outcome: Outcome,
    /// The failing call (its index in the baseline and what it is) and how long it fails.
    fault: Option<(usize, Call, Mode)>,
    /// How many keyring calls the baseline made before its request.
    request_at: Option<usize>,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} from {:?}, provider {:?}, ",
            self.kind, self.start, self.outcome
        )?;
        match &self.fault {
            None => write!(f, "no keyring fault"),
            Some((k, call, mode)) => write!(
                f,
                "keyring call {} ({call}, {} the request) failing {}",
                k + 1,
                if self.request_at.is_some_and(|r| *k < r) {
                    "before"
                } else {
                    "after"
                },
                match mode {
                    Mode::Once => "once",
                    Mode::Dead => "from then on",
                }
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
        let world = World::at(self.kind, self.start).await;
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
        if follow_up == FollowUp::Recover && !before.files.is_empty() {
            // The same `rotate` must refuse and send nothing while the file is there.
            let refused = world.rotate().await;
            let requests = world.provider.requests();
            if refused != 9 || requests != before.requests {
                return Some(format!(
                    "a rerun with a recovery file left exit {refused} after {} new request(s)",
                    requests - before.requests
                ));
            }
        }
        let code = match follow_up {
            FollowUp::Rerun => world.rotate().await,
            FollowUp::Recover => world.recover().await,
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
) -> (Vec<Call>, Option<usize>) {
    let world = World::at(kind, start).await;
    world.provider.script([outcome]);
    world.rotate().await;
    let log = faults().take(&world.service);
    (log.calls, log.request_at)
}

/// Every case of the table for `kind` from `starts`.
async fn cases(kind: ProviderKind, starts: &[Start]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &start in starts {
        for outcome in OUTCOMES {
            let (calls, request_at) = baseline(kind, start, outcome).await;
            cases.push(Case {
                kind,
                start,
                outcome,
                fault: None,
                request_at,
            });
            for (k, call) in calls.into_iter().enumerate() {
                for mode in [Mode::Once, Mode::Dead] {
                    cases.push(Case {
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

async fn run_table(kind: &str, starts: &[Start]) {
    let kind = ProviderKind::from_name(kind).expect("a registered provider");
    let cases = cases(kind, starts).await;
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
    )
    .await;
}

#[tokio::test]
async fn server_generated_rotation_survives_every_keyring_fault_and_provider_outcome() {
    run_table("telepath", &[Start::Current, Start::Empty]).await;
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
    let world = World::laid_out(kind, layout).await;
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
    /// A probe a rotation could not delete.
    Probe,
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
        }
    }
}

struct RecoverCase {
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
            "recover of {:?}, provider {:?}, ",
            self.leftover, self.outcome
        )?;
        match &self.fault {
            None => write!(f, "no keyring fault"),
            Some((k, call, mode)) => write!(
                f,
                "keyring call {} ({call}{}) failing {}",
                k + 1,
                match self.request_at {
                    None => "",
                    Some(r) if *k < r => ", before the request",
                    Some(_) => ", after the request",
                },
                match mode {
                    Mode::Once => "once",
                    Mode::Dead => "from then on",
                }
            ),
        }
    }
}

impl RecoverCase {
    /// The exit code the README documents for the faulted `recover`.
    fn expected_code(&self) -> u8 {
        if let Some((k, _, _)) = &self.fault
            && self.request_at.is_none_or(|r| *k < r)
        {
            // Nothing sent: the keyring was unusable.
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
        let world = World::laid_out(kind, self.leftover.layout()).await;
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

async fn recover_cases(leftover: Leftover) -> Vec<RecoverCase> {
    let kind = ProviderKind::from_name(leftover.kind()).expect("a registered provider");
    let outcomes: &[Outcome] = match kind.origin() {
        PasswordOrigin::ClientSupplied => &OUTCOMES,
        PasswordOrigin::ServerGenerated => &[Outcome::Accept],
    };
    let mut cases = Vec::new();
    for &outcome in outcomes {
        let world = World::laid_out(kind, leftover.layout()).await;
        world.provider.script([outcome]);
        world.recover().await;
        let log = faults().take(&world.service);
        let faults = log.calls.into_iter().enumerate().flat_map(|(k, call)| {
            [Mode::Once, Mode::Dead].map(|mode| Some((k, call.clone(), mode)))
        });
        for fault in std::iter::once(None).chain(faults) {
            cases.push(RecoverCase {
                leftover,
                outcome,
                fault,
                request_at: log.request_at,
            });
        }
    }
    cases
}

#[tokio::test]
async fn recover_survives_every_keyring_fault_and_provider_outcome() {
    let mut cases = Vec::new();
    for leftover in [
        Leftover::PendingLive,
        Leftover::PendingDead,
        Leftover::PendingFirst,
        Leftover::FileUntouched,
        Leftover::FileFirst,
        Leftover::FileStored,
        Leftover::FileSuperseded,
        Leftover::Probe,
    ] {
        cases.extend(recover_cases(leftover).await);
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
