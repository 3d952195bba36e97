//! The OS keyring as a [`SecretStore`]: time-bounded access to the OS credential store.
//!
//! A credential's current secret lives under its entry name (e.g. `telepath/conn_abc`);
//! `#pending` holds a password that was staged before a request and `#previous` the one
//! before the current (the names [`EntryName::slot`] builds). All entries share one
//! service (`siprot`, or `SIPROT_KEYRING_SERVICE`). An item holds the password only: the
//! [`Facts`] a shared store keeps beside it are not kept here. On Linux the store is the Secret Service (pure-Rust zbus
//! client), on macOS the Keychain, on Windows the Credential Manager.
//!
//! Keyring calls block, and a Secret Service that never answers must not hang siprot:
//! every call runs on one keyring thread, in order, under a timeout (see [`Worker`]).
//! Errors carry only the store's own description, never a secret.
//!
//! Items siprot creates are labelled for keyring managers (`siprot: telepath conn_abc
//! (previous)`, the service name first). Another program can add a second item with the
//! same `service` and `username` (python-keyring adds its own `application` attribute);
//! every call on such an entry then fails with [`StoreError::Ambiguous`], which lists the
//! items by label and attributes and says how to remove the extra one
//! ([`Keyring::ensure_unique`] checks for this before a rotation sends anything,
//! [`Keyring::resolve_duplicates`] removes duplicates that hold the same secret).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keyring_core::{CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

use super::{
    EntryName, Facts, Precondition, Record, SecretStore, Slot, StoreError, StoreKind, Stored,
};

impl StoreError {
    /// Maps keyring-core's error for `entry` of `service`; an ambiguous match becomes a
    /// readable [`Duplicates`] (never the store's debug dump of item paths).
    fn from_core(error: keyring_core::Error, service: &str, entry: &str) -> Self {
        match error {
            keyring_core::Error::Ambiguous(items) => StoreError::Ambiguous(Duplicates::new(
                service,
                entry,
                items.iter().map(ItemInfo::of).collect(),
                false,
            )),
            other => StoreError::Store(explained(other.to_string())),
        }
    }
}

/// A keyring error's text with its cause named (no bus, no Secret Service, locked) and
/// `siprot doctor` as the next step, when it is one of those ([`super::diagnose::explain`]).
fn explained(message: String) -> String {
    super::diagnose::explain(&message).unwrap_or(message)
}

/// Attributes siprot's own items carry; an item with more was written by another program.
const OWN_ATTRIBUTES: [&str; 2] = ["service", "username"];

/// Attributes a Secret Service client may add to any item; they say nothing about who
/// wrote it.
const NEUTRAL_ATTRIBUTES: [&str; 1] = ["xdg:schema"];

/// The keyring items that all match one entry (same `service` and `username`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicates {
    pub service: String,
    pub entry: String,
    pub items: Vec<ItemInfo>,
    /// The items were compared and hold different secrets.
    pub secrets_differ: bool,
}

/// What a keyring manager shows of one item: its label and attributes (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInfo {
    pub label: Option<String>,
    pub attributes: BTreeMap<String, String>,
}

impl ItemInfo {
    fn of(entry: &Entry) -> Self {
        Self {
            label: item_label(entry),
            attributes: entry
                .get_attributes()
                .map(|a| a.into_iter().collect())
                .unwrap_or_default(),
        }
    }

    /// Written the way siprot (or `secret-tool store` with the same two attributes) writes
    /// items: `service` and `username` and nothing else but neutral attributes.
    fn is_own(&self) -> bool {
        self.attributes.keys().all(|k| {
            OWN_ATTRIBUTES.contains(&k.as_str()) || NEUTRAL_ATTRIBUTES.contains(&k.as_str())
        })
    }

    /// Whether a search for `attributes` finds this item.
    fn matches(&self, attributes: &[(&str, &str)]) -> bool {
        attributes
            .iter()
            .all(|(k, v)| self.attributes.get(*k).is_some_and(|own| own == v))
    }

    fn describe(&self) -> String {
        let label = match &self.label {
            Some(label) => format!("'{}'", printable(label)),
            None => "an unlabelled item".to_owned(),
        };
        let extra: Vec<String> = self
            .attributes
            .iter()
            .filter(|(k, _)| {
                !OWN_ATTRIBUTES.contains(&k.as_str()) && !NEUTRAL_ATTRIBUTES.contains(&k.as_str())
            })
            .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
            .collect();
        if extra.is_empty() {
            format!("{label} (attributes service and username only, as siprot writes them)")
        } else {
            format!("{label} (also {})", extra.join(", "))
        }
    }
}

impl Duplicates {
    /// siprot's own items first, then the others in the store's order.
    fn new(service: &str, entry: &str, mut items: Vec<ItemInfo>, secrets_differ: bool) -> Self {
        items.sort_by_key(|item| !item.is_own());
        Self {
            service: service.to_owned(),
            entry: entry.to_owned(),
            items,
            secrets_differ,
        }
    }

    /// `secret-tool clear` commands that remove every item except siprot's own, each
    /// checked to match the item it is for and not siprot's; otherwise why there are none.
    pub fn removal_commands(&self) -> Result<Vec<String>, &'static str> {
        let own: Vec<&ItemInfo> = self.items.iter().filter(|i| i.is_own()).collect();
        let keep = match own.as_slice() {
            [keep] => *keep,
            [] => return Err("none of them has only the attributes siprot writes"),
            _ => return Err("no attribute tells siprot's item apart from the others"),
        };
        let mut commands: Vec<String> = Vec::new();
        for item in self.items.iter().filter(|i| !i.is_own()) {
            let command = self
                .removal_command(item, keep)
                .ok_or("an attribute holds a character a command line cannot show")?;
            if !commands.contains(&command) {
                commands.push(command);
            }
        }
        Ok(commands)
    }

    /// The command that removes `item` (and items like it) but never `keep`: the entry's
    /// `service` and `username` and the attributes that make `item` foreign (checked).
    fn removal_command(&self, item: &ItemInfo, keep: &ItemInfo) -> Option<String> {
        let attributes: Vec<(&str, &str)> = [
            ("service", self.service.as_str()),
            ("username", self.entry.as_str()),
        ]
        .into_iter()
        .chain(
            item.attributes
                .iter()
                .filter(|(k, _)| {
                    !OWN_ATTRIBUTES.contains(&k.as_str())
                        && !NEUTRAL_ATTRIBUTES.contains(&k.as_str())
                })
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .collect();
        if keep.matches(&attributes) || !item.matches(&attributes) {
            return None;
        }
        let mut command = String::from("secret-tool clear");
        for (key, value) in attributes {
            command.push(' ');
            command.push_str(&shell_word(key)?);
            command.push(' ');
            command.push_str(&shell_word(value)?);
        }
        Some(command)
    }
}

impl std::fmt::Display for Duplicates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.items.iter().map(ItemInfo::describe).collect();
        write!(
            f,
            "keyring service '{}' has {} items for entry '{}' where siprot expects one: {}",
            printable(&self.service),
            self.items.len(),
            printable(&self.entry),
            items.join(" and ")
        )?;
        if self.secrets_differ {
            write!(f, "; they hold different passwords")?;
        }
        match self.removal_commands() {
            Ok(commands) => write!(
                f,
                "; remove the extra one with `{}` (it leaves siprot's item alone)",
                commands.join("` and `")
            ),
            Err(why) => write!(
                f,
                "; {why}, so siprot cannot name a command that removes only the extra one \
                 (a plain `secret-tool clear` removes all of them): list them with \
                 `secret-tool search --all service {} username {}`, keep the one holding the \
                 password the provider has and delete the others by their label in a keyring \
                 manager such as Seahorse",
                shell_word(&self.service).unwrap_or_else(|| "...".into()),
                shell_word(&self.entry).unwrap_or_else(|| "...".into()),
            ),
        }
    }
}

/// `text` with control characters escaped, so that it stays on one line.
fn printable(text: &str) -> String {
    crate::redact::escape_controls(text)
}

/// `word` quoted for a POSIX shell; `None` if it holds a control character.
fn shell_word(word: &str) -> Option<String> {
    if word.chars().any(char::is_control) {
        return None;
    }
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+=#".contains(c));
    if plain {
        Some(word.to_owned())
    } else {
        Some(format!("'{}'", word.replace('\'', "'\\''")))
    }
}

/// The label of an item found by a search (only the Secret Service store has labels).
#[cfg(target_os = "linux")]
fn item_label(entry: &Entry) -> Option<String> {
    entry
        .as_any()
        .downcast_ref::<zbus_secret_service_keyring_store::cred::Wrapper>()
        .and_then(|item| item.get_label().ok())
}

#[cfg(not(target_os = "linux"))]
fn item_label(_entry: &Entry) -> Option<String> {
    None
}

/// The entry name of a credential the Credential Manager store found as (`found`,
/// `name`), if it is one of `service`'s. That store names a credential
/// `{entry}.{service}` and splits a name it finds at its last `.`: a service with a `.`
/// in it comes back split elsewhere, so the target name is put together again and
/// `service` cut off its end.
fn entry_of_target(found: &str, name: &str, service: &str) -> Option<String> {
    let target = format!("{name}.{found}");
    target
        .strip_suffix(service)?
        .strip_suffix('.')
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
}

/// The label siprot gives a new item: `siprot: telepath conn_abc (previous)`.
pub fn label(service: &str, entry: &str) -> String {
    let (name, slot) = match entry.split_once('#') {
        Some((name, slot)) => (name, Some(slot)),
        None => (entry, None),
    };
    let mut label = format!("{service}: {}", name.replacen('/', " ", 1));
    if let Some(slot) = slot {
        label.push_str(&format!(" ({slot})"));
    }
    printable(&label)
}

static DEFAULT_STORE: OnceLock<Result<(), StoreError>> = OnceLock::new();

/// Opens the platform's store once per process and makes it keyring-core's default.
fn init_native_store() -> Result<(), StoreError> {
    DEFAULT_STORE
        .get_or_init(|| {
            let store = native_store().map_err(|e| StoreError::Open(explained(e.to_string())))?;
            keyring_core::set_default_store(store);
            LABELS.store(cfg!(target_os = "linux"), Ordering::Relaxed);
            TARGET_NAMES.store(cfg!(target_os = "windows"), Ordering::Relaxed);
            Ok(())
        })
        .clone()
}

/// Starts opening the OS store on the keyring thread and returns at once: the caller
/// goes on with its own start-up (building the HTTP client, which loads the system's trust
/// roots) while the store connects, and [`Keyring::open`] then finds it open, or waits
/// behind this under its timeout as for any other keyring call. Nothing happens twice:
/// the store is opened once per process, and its error, if any, is what `open` reports.
pub fn open_ahead() {
    if DEFAULT_STORE.get().is_some() {
        return;
    }
    if worker()
        .jobs
        .send(Box::new(|| {
            let _ = init_native_store();
        }))
        .is_err()
    {
        log::debug!("keyring: the keyring thread is not running");
    }
}

#[cfg(target_os = "linux")]
fn native_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn native_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(target_os = "windows")]
fn native_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
fn native_store() -> keyring_core::Result<Arc<CredentialStore>> {
    Err(keyring_core::Error::NotSupportedByStore(
        "no credential store for this operating system".into(),
    ))
}

/// Uses keyring-core's in-memory mock store instead of the OS store (unit tests and
/// benchmarks; nothing survives the process).
pub fn use_mock_store() -> Result<(), StoreError> {
    DEFAULT_STORE
        .get_or_init(|| {
            let store =
                keyring_core::mock::Store::new().map_err(|e| StoreError::Open(e.to_string()))?;
            keyring_core::set_default_store(store);
            Ok(())
        })
        .clone()
}

/// The entries of one keyring service.
#[derive(Debug, Clone)]
pub struct Keyring {
    service: Arc<str>,
    timeout: Duration,
    /// Slots a fleet's [`SecretStore::prepare`] found matching one item at most: their
    /// rotations' preflights skip the search (see [`Keyring::prepare_fleet`]).
    unique: Arc<Mutex<HashSet<String>>>,
}

impl Keyring {
    /// Opens the OS store (once per process) for `service`.
    pub async fn open(service: &str, timeout: Duration) -> Result<Self, StoreError> {
        let keyring = Self {
            service: Arc::from(service),
            timeout,
            unique: Arc::default(),
        };
        keyring.blocking(|_| init_native_store()).await?;
        Ok(keyring)
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// The same store under another service name (the store is already open).
    pub fn for_service(&self, service: &str) -> Self {
        Self {
            service: Arc::from(service),
            timeout: self.timeout,
            unique: Arc::default(),
        }
    }

    /// Reads an entry; `None` when there is none.
    pub async fn get(&self, entry: &str) -> Result<Option<SecretString>, StoreError> {
        log::debug!("keyring: read '{entry}'");
        let entry = entry.to_owned();
        self.blocking(move |service| {
            match Entry::new(service, &entry).and_then(|e| e.get_password()) {
                Ok(password) => Ok(Some(SecretString::from(password))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(StoreError::from_core(e, service, &entry)),
            }
        })
        .await
    }

    /// Creates or replaces an entry; a new item gets siprot's [`label`].
    pub async fn set(&self, entry: &str, secret: &SecretString) -> Result<(), StoreError> {
        log::debug!("keyring: write '{entry}'");
        let entry = entry.to_owned();
        let secret = secret.clone();
        self.blocking(move |service| {
            labelled_entry(service, &entry)
                .and_then(|e| e.set_password(secret.expose_secret()))
                .map_err(|e| StoreError::from_core(e, service, &entry))
        })
        .await
    }

    /// Creates an entry only if there is none, in one keyring call (nothing runs between
    /// the check and the write); [`StoreError::Conflict`] when there is one.
    pub async fn create(&self, entry: &str, secret: &SecretString) -> Result<(), StoreError> {
        log::debug!("keyring: create '{entry}' if absent");
        let entry = entry.to_owned();
        let secret = secret.clone();
        self.blocking(move |service| {
            match Entry::new(service, &entry).and_then(|e| e.get_password()) {
                Ok(_) => {
                    return Err(StoreError::Conflict {
                        store: StoreKind::Keyring,
                        message: format!("keyring entry '{entry}' exists already"),
                    });
                }
                Err(keyring_core::Error::NoEntry) => {}
                Err(e) => return Err(StoreError::from_core(e, service, &entry)),
            }
            labelled_entry(service, &entry)
                .and_then(|e| e.set_password(secret.expose_secret()))
                .map_err(|e| StoreError::from_core(e, service, &entry))
        })
        .await
    }

    /// Deletes an entry; `false` when there was none.
    pub async fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        log::debug!("keyring: delete '{entry}'");
        let entry = entry.to_owned();
        self.blocking(move |service| {
            match Entry::new(service, &entry).and_then(|e| e.delete_credential()) {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(StoreError::from_core(e, service, &entry)),
            }
        })
        .await
    }

    /// Fails with [`StoreError::Ambiguous`] when more than one item matches one of
    /// `entries` (a search per entry; no secret is read).
    pub async fn ensure_unique(&self, entries: &[&str]) -> Result<(), StoreError> {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        self.blocking(move |service| {
            for entry in &entries {
                match Entry::new(service, entry).and_then(|e| e.get_credential()) {
                    Ok(_) | Err(keyring_core::Error::NoEntry) => {}
                    Err(e) => return Err(StoreError::from_core(e, service, entry)),
                }
            }
            Ok(())
        })
        .await
    }

    /// Where more than one item matches one of `entries` and all of them hold the same
    /// secret, deletes all but one (siprot's own, when one is) and describes each deleted
    /// item (label and attributes). Items that hold different secrets are left alone:
    /// [`StoreError::Ambiguous`] with `secrets_differ`.
    pub async fn resolve_duplicates(&self, entries: &[&str]) -> Result<Vec<String>, StoreError> {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        self.blocking(move |service| {
            let mut removed = Vec::new();
            for entry in &entries {
                let items = match Entry::new(service, entry).and_then(|e| e.get_credential()) {
                    Ok(_) | Err(keyring_core::Error::NoEntry) => continue,
                    Err(keyring_core::Error::Ambiguous(items)) => items,
                    Err(e) => return Err(StoreError::from_core(e, service, entry)),
                };
                let ambiguous = |secrets_differ| {
                    StoreError::Ambiguous(Duplicates::new(
                        service,
                        entry,
                        items.iter().map(ItemInfo::of).collect(),
                        secrets_differ,
                    ))
                };
                let mut secrets = Vec::with_capacity(items.len());
                for item in &items {
                    match item.get_secret() {
                        Ok(secret) => secrets.push(zeroize::Zeroizing::new(secret)),
                        Err(_) => return Err(ambiguous(false)),
                    }
                }
                if secrets.windows(2).any(|pair| *pair[0] != *pair[1]) {
                    return Err(ambiguous(true));
                }
                let infos: Vec<ItemInfo> = items.iter().map(ItemInfo::of).collect();
                let keep = infos.iter().position(ItemInfo::is_own).unwrap_or(0);
                for (i, item) in items.iter().enumerate() {
                    if i != keep {
                        item.delete_credential()
                            .map_err(|e| StoreError::from_core(e, service, entry))?;
                        removed.push(infos[i].describe());
                    }
                }
            }
            Ok(removed)
        })
        .await
    }

    /// The names of every entry of this service: found by its `service` attribute (the
    /// Secret Service, the Keychain), or on Windows among all generic credentials.
    ///
    /// A name may outlive its secret in some stores (keyring-core's mock keeps deleted
    /// entries), so a caller reads each entry and treats a miss as "not there".
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut names = self.blocking(listed).await?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A fleet's duplicate check, in one listing of the service instead of a search per
    /// slot per rotation: every slot of `names` that the listing shows at most once is
    /// remembered as unique, and [`SecretStore::preflight`] then searches only the others
    /// (which is where a duplicate, if any, is found and reported). An item another program
    /// adds later is caught where the protocol writes the slot, as for a single rotation
    /// (see docs/protocol.md). A listing that fails leaves every check to the preflights.
    async fn prepare_fleet(&self, names: &[EntryName]) {
        let listed = match self.blocking(listed).await {
            Ok(listed) => listed,
            Err(e) => {
                log::debug!("keyring: the fleet's duplicate check failed: {e}");
                return;
            }
        };
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(listed.len());
        for name in &listed {
            *seen.entry(name.as_str()).or_default() += 1;
        }
        let mut unique = self.unique.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            for slot in SLOTS {
                let entry = name.slot(slot);
                if seen.get(entry.as_str()).copied().unwrap_or(0) <= 1 {
                    unique.insert(entry);
                }
            }
        }
        log::debug!(
            "keyring: one listing of {} items checked {} credentials' slots for duplicates",
            listed.len(),
            names.len()
        );
    }

    /// The slots of `name` a fleet's [`Keyring::prepare_fleet`] has not shown unique.
    fn unchecked(&self, name: &EntryName) -> Vec<String> {
        let unique = self.unique.lock().unwrap_or_else(|e| e.into_inner());
        SLOTS
            .map(|slot| name.slot(slot))
            .into_iter()
            .filter(|entry| !unique.contains(entry))
            .collect()
    }

    /// Runs a blocking keyring call on the keyring worker, bounded by the timeout.
    async fn blocking<T>(
        &self,
        call: impl FnOnce(&str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        let service = self.service.clone();
        let started = Instant::now();
        let result = worker()
            .call(
                move || {
                    let running = Instant::now();
                    let result = call(&service);
                    log::trace!(
                        "keyring call ran {:?} on the keyring thread",
                        running.elapsed()
                    );
                    result
                },
                self.timeout,
            )
            .await;
        log::trace!(
            "keyring call in service '{}' took {:?}{} (queued and ran)",
            self.service,
            started.elapsed(),
            if result.is_ok() { "" } else { " and failed" }
        );
        result
    }
}

/// The keyring as a [`SecretStore`]: slots are entries named by [`EntryName::slot`];
/// [`Precondition::Absent`] is checked in the same keyring call as the write (no other
/// call runs between, see [`Worker`]); [`Precondition::Version`] is ignored, because
/// items have no versions and the local lock keeps siprot runs of this machine apart.
#[async_trait]
impl SecretStore for Keyring {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn service(&self) -> &str {
        &self.service
    }

    fn shared(&self) -> bool {
        false
    }

    fn confirms_writes(&self) -> bool {
        true
    }

    fn locate(&self, name: &EntryName, slot: Slot) -> String {
        format!("keyring entry '{}'", name.slot(slot))
    }

    async fn read(&self, name: &EntryName, slot: Slot) -> Result<Option<Stored>, StoreError> {
        Ok(self.get(&name.slot(slot)).await?.map(|secret| Stored {
            secret: Some(secret),
            version: None,
            facts: Facts::default(),
        }))
    }

    async fn write(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
        when: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        let entry = name.slot(slot);
        let Some(secret) = record.secret else {
            return Err(StoreError::Store(format!(
                "the keyring keeps passwords only, not a claim marker ('{entry}')"
            )));
        };
        match when {
            Precondition::Any | Precondition::Version(_) => self.set(&entry, secret).await,
            Precondition::Absent => self.create(&entry, secret).await,
        }
        .map(|()| None)
    }

    async fn delete(&self, name: &EntryName, slot: Slot) -> Result<bool, StoreError> {
        Keyring::delete(self, &name.slot(slot)).await
    }

    async fn list(&self) -> Result<Vec<(EntryName, Slot)>, StoreError> {
        let names = Keyring::list(self).await?;
        Ok(names.iter().map(|n| EntryName::parse(n)).collect())
    }

    async fn preflight(&self, name: &EntryName) -> Result<(), StoreError> {
        let slots = self.unchecked(name);
        if slots.is_empty() {
            return Ok(());
        }
        let slots: Vec<&str> = slots.iter().map(String::as_str).collect();
        self.ensure_unique(&slots).await
    }

    async fn prepare(&self, names: &[EntryName]) {
        self.prepare_fleet(names).await
    }

    async fn resolve_duplicates(
        &self,
        name: &EntryName,
        slot: Slot,
    ) -> Result<Vec<String>, StoreError> {
        Keyring::resolve_duplicates(self, &[&name.slot(slot)]).await
    }
}

/// Every slot a rotation touches.
const SLOTS: [Slot; 3] = [Slot::Current, Slot::Pending, Slot::Previous];

/// The entry name of every item of `service`, once per item (a name shows twice when two
/// items match it): found by the `service` attribute (the Secret Service, the Keychain),
/// or on Windows among all generic credentials. Runs on the keyring worker.
fn listed(service: &str) -> Result<Vec<String>, StoreError> {
    // The Credential Manager has no attributes to search by (its store takes only a
    // regular expression for target names): every generic credential is listed and the
    // service's are kept.
    let by_target_name = TARGET_NAMES.load(Ordering::Relaxed);
    let spec = match by_target_name {
        true => HashMap::new(),
        false => HashMap::from([("service", service)]),
    };
    Ok(Entry::search(&spec)
        .map_err(|e| StoreError::Store(explained(e.to_string())))?
        .iter()
        .filter_map(Entry::get_specifiers)
        .filter_map(|(found, name)| match by_target_name {
            true => entry_of_target(&found, &name, service),
            // Some stores match the service as a substring: exact matches only.
            false => (found == service).then_some(name),
        })
        .collect())
}

/// Whether the default store takes a `label` modifier (the Secret Service does;
/// keyring-core's mock store refuses every modifier).
static LABELS: AtomicBool = AtomicBool::new(false);

/// Whether the default store keys items by a target name alone and cannot search by
/// attribute (the Credential Manager; keyring-core's mock store searches by `service`).
static TARGET_NAMES: AtomicBool = AtomicBool::new(false);

/// The entry for `service`/`entry`, with siprot's label for an item it creates.
fn labelled_entry(service: &str, entry: &str) -> keyring_core::Result<Entry> {
    if LABELS.load(Ordering::Relaxed) {
        let label = label(service, entry);
        Entry::new_with_modifiers(service, entry, &HashMap::from([("label", label.as_str())]))
    } else {
        Entry::new(service, entry)
    }
}

/// The one thread that talks to the credential store.
///
/// Keyring calls run one at a time, in the order they were made: stores such as
/// gnome-keyring serialise them anyway (each change rewrites the whole keyring file),
/// and a queue keeps a fleet's many rotations from piling up blocking threads.
///
/// A call's timeout counts only the time the worker spends on one call, not time
/// queued behind others, so a long but healthy queue does not time out. When the
/// worker has been stuck on one call for longer than the timeout (a frozen store),
/// every waiting and new call fails at once instead of each waiting its turn.
struct Worker {
    jobs: mpsc::Sender<Job>,
    /// When the worker started the call it is on; `None` when idle.
    busy_since: Arc<Mutex<Option<Instant>>>,
}

type Job = Box<dyn FnOnce() + Send>;

fn worker() -> &'static Worker {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER.get_or_init(Worker::start)
}

impl Worker {
    fn start() -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let busy_since = Arc::new(Mutex::new(None));
        let busy = busy_since.clone();
        // Detached: a store that never answers must not keep the process from exiting.
        let spawned = std::thread::Builder::new()
            .name("siprot-keyring".into())
            .spawn(move || {
                for job in queue {
                    set_busy(&busy, Some(Instant::now()));
                    // A panicking store fails that one call (its caller sees the reply
                    // dropped), not every later one.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    set_busy(&busy, None);
                }
            });
        if let Err(e) = spawned {
            log::debug!("keyring: could not start the keyring thread: {e}");
        }
        Self { jobs, busy_since }
    }

    /// How long the worker has been on its current call.
    fn stuck_for(&self) -> Option<Duration> {
        let busy = self.busy_since.lock().unwrap_or_else(|e| e.into_inner());
        busy.map(|since| since.elapsed())
    }

    async fn call<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
        timeout: Duration,
    ) -> Result<T, StoreError> {
        if self.stuck_for().is_some_and(|busy| busy >= timeout) {
            return Err(StoreError::Timeout(timeout));
        }
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that gave up (timed out, or its rotation was dropped) must not
            // have its write land later behind its back.
            if !reply.is_closed() {
                let _ = reply.send(call());
            }
        });
        if self.jobs.send(job).is_err() {
            return Err(StoreError::Store(
                "the keyring thread is not running".into(),
            ));
        }
        let check_every = (timeout / 4).max(Duration::from_millis(10));
        loop {
            // Wake when the call the worker is on would reach the timeout.
            let wait = match self.stuck_for() {
                Some(busy) if busy < timeout => (timeout - busy).min(check_every),
                _ => check_every,
            };
            match tokio::time::timeout(wait, &mut answer).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => {
                    return Err(StoreError::Store("the keyring thread stopped".into()));
                }
                Err(_) => {
                    if self.stuck_for().is_some_and(|busy| busy >= timeout) {
                        return Err(StoreError::Timeout(timeout));
                    }
                }
            }
        }
    }
}

fn set_busy(busy: &Mutex<Option<Instant>>, value: Option<Instant>) {
    *busy.lock().unwrap_or_else(|e| e.into_inner()) = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_name_distinct_entries() {
        let name = EntryName::new("telepath/conn_1");
        assert_eq!(name.slot(Slot::Current), "telepath/conn_1");
        assert_eq!(name.slot(Slot::Pending), "telepath/conn_1#pending");
        assert_eq!(name.slot(Slot::Previous), "telepath/conn_1#previous");
        for slot in [Slot::Current, Slot::Pending, Slot::Previous, Slot::Probe] {
            assert_eq!(EntryName::parse(&name.slot(slot)), (name.clone(), slot));
        }
        assert_eq!(
            serde_json::to_string(&name).unwrap(),
            "\"telepath/conn_1\"",
            "serialized as the plain name"
        );
        assert_eq!(name.slot(Slot::Probe), "telepath/conn_1#probe");
    }

    fn item(label: &str, extra: &[(&str, &str)]) -> ItemInfo {
        let mut attributes = BTreeMap::from([
            ("service".to_owned(), "siprot".to_owned()),
            ("username".to_owned(), "vobiz/MA1/cred-1".to_owned()),
        ]);
        for (k, v) in extra {
            attributes.insert((*k).to_owned(), (*v).to_owned());
        }
        ItemInfo {
            label: Some(label.to_owned()),
            attributes,
        }
    }

    fn duplicates(items: Vec<ItemInfo>) -> Duplicates {
        Duplicates::new("siprot", "vobiz/MA1/cred-1", items, false)
    }

    #[test]
    fn credential_manager_target_names_give_back_the_entries_of_one_service() {
        // The store splits `telepath/conn_1#pending.siprot` at its last '.'.
        assert_eq!(
            entry_of_target("siprot", "telepath/conn_1#pending", "siprot").as_deref(),
            Some("telepath/conn_1#pending")
        );
        // An entry with a '.' in it: split at the last one, put together again.
        assert_eq!(
            entry_of_target("siprot", "exotel/SID/u.1/d", "siprot").as_deref(),
            Some("exotel/SID/u.1/d")
        );
        // A service with a '.': the store split inside the service.
        assert_eq!(
            entry_of_target("b", "vobiz/A/c1.siprot.a", "siprot.a.b").as_deref(),
            Some("vobiz/A/c1")
        );
        // Another service, one that ends like this one, and no entry at all.
        assert_eq!(entry_of_target("other", "telepath/c", "siprot"), None);
        assert_eq!(entry_of_target("xsiprot", "telepath/c", "siprot"), None);
        assert_eq!(entry_of_target("siprot", "", "siprot"), None);
    }

    #[test]
    fn labels_name_the_provider_the_credential_and_the_slot() {
        assert_eq!(
            label("siprot", "telepath/conn_abc123xyz#previous"),
            "siprot: telepath conn_abc123xyz (previous)"
        );
        assert_eq!(
            label("siprot", "exotel/SID/user/dev"),
            "siprot: exotel SID/user/dev"
        );
        assert_eq!(
            label("a\nb", "vobiz/x/y#pending"),
            "a\\nb: vobiz x/y (pending)"
        );
    }

    #[test]
    fn the_removal_command_matches_only_the_foreign_item_and_is_quoted() {
        let d = duplicates(vec![
            item(
                "Password for 'x' on 'siprot'",
                &[("application", "Python keyring library")],
            ),
            item("siprot: vobiz MA1/cred-1", &[]),
        ]);
        assert_eq!(
            d.items[0].label.as_deref(),
            Some("siprot: vobiz MA1/cred-1")
        );
        assert_eq!(
            d.removal_commands().unwrap(),
            [
                "secret-tool clear service siprot username vobiz/MA1/cred-1 application \
              'Python keyring library'"
            ]
        );
        let text = d.to_string();
        assert!(!text.contains('\n'));
        assert!(
            text.contains("(also application=Python keyring library)"),
            "{text}"
        );

        // secret-tool's own `xdg:schema` does not make an item foreign: the command
        // leaves it out, and an item with it is siprot's to keep.
        let d = duplicates(vec![
            item(
                "foreign",
                &[("application", "app"), ("xdg:schema", "org.example")],
            ),
            item("stored by hand", &[("xdg:schema", "org.example")]),
        ]);
        assert_eq!(
            d.removal_commands().unwrap(),
            ["secret-tool clear service siprot username vobiz/MA1/cred-1 application app"]
        );
        assert!(!d.to_string().contains("xdg:schema"), "{d}");

        // Quotes inside a value survive the shell.
        assert_eq!(shell_word("it's").unwrap(), "'it'\\''s'");
        assert_eq!(shell_word("a\nb"), None);
    }

    #[test]
    fn items_no_attribute_tells_apart_get_no_command() {
        let d = duplicates(vec![item("one", &[]), item("two", &[])]);
        assert!(d.removal_commands().is_err());
        let text = d.to_string();
        assert!(
            text.contains("no attribute tells siprot's item apart from the others"),
            "{text}"
        );
        assert!(
            text.contains("secret-tool search --all service siprot"),
            "{text}"
        );
        assert!(!text.contains("secret-tool clear service"), "{text}");

        // Two foreign items and none of siprot's: which to keep is the operator's call.
        let d = duplicates(vec![
            item("a", &[("application", "x")]),
            item("b", &[("application", "y")]),
        ]);
        assert!(d.to_string().contains("none of them has only"), "{d}");

        // A control character in a value: no command is printed.
        let d = duplicates(vec![
            item("own", &[]),
            item("f", &[("application", "a\nb")]),
        ]);
        assert!(d.removal_commands().is_err());
        assert!(!d.to_string().contains('\n'));
    }

    #[tokio::test]
    async fn a_healthy_queue_longer_than_the_timeout_does_not_time_out() {
        let worker = Worker::start();
        let timeout = Duration::from_millis(100);
        let calls = (0..8).map(|i| {
            worker.call(
                move || {
                    std::thread::sleep(Duration::from_millis(40));
                    Ok(i)
                },
                timeout,
            )
        });
        let results = futures_util::future::join_all(calls).await;
        let values: Vec<i32> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(values, (0..8).collect::<Vec<_>>(), "calls run in order");
    }

    #[tokio::test]
    async fn a_stuck_store_fails_queued_and_new_calls_and_drops_their_writes() {
        let worker = Worker::start();
        let timeout = Duration::from_millis(200);
        let (release, stuck) = mpsc::channel::<()>();
        let stuck_call = worker.call(
            move || {
                let _ = stuck.recv();
                Ok(())
            },
            timeout,
        );
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let queued_call = worker.call(
            move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            },
            timeout,
        );
        let (first, queued) = tokio::join!(stuck_call, queued_call);
        assert!(matches!(first, Err(StoreError::Timeout(_))), "{first:?}");
        assert!(matches!(queued, Err(StoreError::Timeout(_))), "{queued:?}");

        // Still stuck: a new call fails too.
        let new_call = worker.call(|| Ok(()), timeout).await;
        assert!(
            matches!(new_call, Err(StoreError::Timeout(_))),
            "{new_call:?}"
        );

        // Once the store answers, calls work again and the abandoned one never ran.
        release.send(()).unwrap();
        while worker.stuck_for().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(worker.call(|| Ok(7), timeout).await.unwrap(), 7);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panicking_call_fails_alone() {
        let worker = Worker::start();
        let timeout = Duration::from_secs(5);
        let panicked = worker
            .call(
                || -> Result<(), StoreError> { panic!("store bug") },
                timeout,
            )
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Store(_))),
            "{panicked:?}"
        );
        assert_eq!(worker.call(|| Ok(1), timeout).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn set_get_delete_round_trip_in_the_mock_store() {
        use_mock_store().unwrap();
        let keyring = Keyring {
            service: Arc::from("siprot-unit"),
            timeout: crate::store::DEFAULT_TIMEOUT,
            unique: Arc::default(),
        };
        assert!(keyring.get("a").await.unwrap().is_none());
        keyring.set("a", &SecretString::from("pw-1")).await.unwrap();
        assert_eq!(
            keyring.get("a").await.unwrap().unwrap().expose_secret(),
            "pw-1"
        );
        keyring.set("a", &SecretString::from("pw-2")).await.unwrap();
        assert_eq!(
            keyring.get("a").await.unwrap().unwrap().expose_secret(),
            "pw-2"
        );
        let other = Keyring {
            service: Arc::from("siprot-unit-other"),
            timeout: crate::store::DEFAULT_TIMEOUT,
            unique: Arc::default(),
        };
        other.set("b", &SecretString::from("pw-3")).await.unwrap();
        assert_eq!(keyring.list().await.unwrap(), ["a"]);
        assert!(keyring.delete("a").await.unwrap());
        assert!(!keyring.delete("a").await.unwrap());
    }
}
