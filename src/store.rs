//! Keyring entries: their names and time-bounded access to the OS credential store.
//!
//! A credential's current secret lives under its entry name (e.g. `telepath/conn_abc`);
//! `#pending` holds a password that was staged before a request and `#previous` the one
//! before the current. All entries share one service (`siprot`, or
//! `SIPROT_KEYRING_SERVICE`). On Linux the store is the Secret Service (pure-Rust zbus
//! client), on macOS the Keychain, on Windows the Credential Manager.
//!
//! Keyring calls block, and a Secret Service that never answers must not hang siprot:
//! every call runs on one keyring thread, in order, under a timeout (see [`Worker`]).
//! Errors carry only the store's own description, never a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use keyring_core::{CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

/// Default time allowed for one keyring call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The slots of one credential in the keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Slot {
    /// The password in use.
    Current,
    /// A client-set password staged before the request that sets it.
    Pending,
    /// The password before the current one.
    Previous,
    /// A throw-away entry that proves the keyring is writable.
    Probe,
}

impl Slot {
    pub fn suffix(self) -> &'static str {
        match self {
            Slot::Current => "",
            Slot::Pending => "#pending",
            Slot::Previous => "#previous",
            Slot::Probe => "#probe",
        }
    }
}

/// The keyring names of one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName(String);

impl EntryName {
    pub fn new(current: String) -> Self {
        Self(current)
    }

    pub fn current(&self) -> &str {
        &self.0
    }

    pub fn slot(&self, slot: Slot) -> String {
        format!("{}{}", self.0, slot.suffix())
    }
}

/// Why a keyring call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("no credential store could be opened: {0}")]
    Open(String),
    #[error("the keyring did not answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Store(String),
}

static DEFAULT_STORE: OnceLock<Result<(), StoreError>> = OnceLock::new();

/// Opens the platform's store once per process and makes it keyring-core's default.
fn init_native_store() -> Result<(), StoreError> {
    DEFAULT_STORE
        .get_or_init(|| {
            let store = native_store().map_err(|e| StoreError::Open(e.to_string()))?;
            keyring_core::set_default_store(store);
            Ok(())
        })
        .clone()
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
}

impl Keyring {
    /// Opens the OS store (once per process) for `service`.
    pub async fn open(service: &str, timeout: Duration) -> Result<Self, StoreError> {
        let keyring = Self {
            service: Arc::from(service),
            timeout,
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
        }
    }

    /// Reads an entry; `None` when there is none.
    pub async fn get(&self, entry: &str) -> Result<Option<SecretString>, StoreError> {
        log::debug!("keyring: read '{entry}'");
        let entry = entry.to_owned();
        self.blocking(
            move |service| match Entry::new(service, &entry)?.get_password() {
                Ok(password) => Ok(Some(SecretString::from(password))),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            },
        )
        .await
    }

    /// Creates or replaces an entry.
    pub async fn set(&self, entry: &str, secret: &SecretString) -> Result<(), StoreError> {
        log::debug!("keyring: write '{entry}'");
        let entry = entry.to_owned();
        let secret = secret.clone();
        self.blocking(move |service| {
            Entry::new(service, &entry)?.set_password(secret.expose_secret())
        })
        .await
    }

    /// Deletes an entry; `false` when there was none.
    pub async fn delete(&self, entry: &str) -> Result<bool, StoreError> {
        log::debug!("keyring: delete '{entry}'");
        let entry = entry.to_owned();
        self.blocking(
            move |service| match Entry::new(service, &entry)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(e),
            },
        )
        .await
    }

    /// The names of every entry of this service (found by its `service` attribute).
    ///
    /// A name may outlive its secret in some stores (keyring-core's mock keeps deleted
    /// entries), so a caller reads each entry and treats a miss as "not there".
    pub async fn list(&self) -> Result<Vec<String>, StoreError> {
        self.blocking(|service| {
            let spec = HashMap::from([("service", service)]);
            let mut names: Vec<String> = Entry::search(&spec)?
                .iter()
                .filter_map(Entry::get_specifiers)
                // Some stores match the service as a substring: keep exact matches only.
                .filter(|(found, _)| found == service)
                .map(|(_, name)| name)
                .collect();
            names.sort();
            names.dedup();
            Ok::<_, keyring_core::Error>(names)
        })
        .await
    }

    /// Runs a blocking keyring call on the keyring worker, bounded by the timeout.
    async fn blocking<T, E>(
        &self,
        call: impl FnOnce(&str) -> Result<T, E> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let service = self.service.clone();
        let started = Instant::now();
        let result = worker()
            .call(
                move || call(&service).map_err(|e| e.to_string()),
                self.timeout,
            )
            .await;
        log::trace!(
            "keyring call in service '{}' took {:?}{}",
            self.service,
            started.elapsed(),
            if result.is_ok() { "" } else { " and failed" }
        );
        result
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
        call: impl FnOnce() -> Result<T, String> + Send + 'static,
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
                Ok(Ok(result)) => return result.map_err(StoreError::Store),
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
        let name = EntryName::new("telepath/conn_1".into());
        assert_eq!(name.slot(Slot::Current), "telepath/conn_1");
        assert_eq!(name.slot(Slot::Pending), "telepath/conn_1#pending");
        assert_eq!(name.slot(Slot::Previous), "telepath/conn_1#previous");
        assert_eq!(name.slot(Slot::Probe), "telepath/conn_1#probe");
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
            .call(|| -> Result<(), String> { panic!("store bug") }, timeout)
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
            timeout: DEFAULT_TIMEOUT,
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
            timeout: DEFAULT_TIMEOUT,
        };
        other.set("b", &SecretString::from("pw-3")).await.unwrap();
        assert_eq!(keyring.list().await.unwrap(), ["a"]);
        assert!(keyring.delete("a").await.unwrap());
        assert!(!keyring.delete("a").await.unwrap());
    }
}
