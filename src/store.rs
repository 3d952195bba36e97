//! Keyring entries: their names and time-bounded access to the OS credential store.
//!
//! A credential's current secret lives under its entry name (e.g. `telepath/conn_abc`);
//! `#pending` holds a password that was staged before a request and `#previous` the one
//! before the current. All entries share one service (`siprot`, or
//! `SIPROT_KEYRING_SERVICE`). On Linux the store is the Secret Service (pure-Rust zbus
//! client), on macOS the Keychain, on Windows the Credential Manager.
//!
//! Keyring calls block, and a Secret Service that never answers must not hang siprot:
//! each call runs on tokio's blocking pool under a timeout. Errors carry only the store's
//! own description, never a secret.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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

    /// Runs a blocking keyring call on tokio's blocking pool, bounded by the timeout.
    async fn blocking<T, E>(
        &self,
        call: impl FnOnce(&str) -> Result<T, E> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let service = self.service.clone();
        let started = std::time::Instant::now();
        let task = tokio::task::spawn_blocking(move || call(&service).map_err(|e| e.to_string()));
        let result = match tokio::time::timeout(self.timeout, task).await {
            Err(_) => Err(StoreError::Timeout(self.timeout)),
            Ok(Err(join)) => Err(StoreError::Store(format!("keyring task failed: {join}"))),
            Ok(Ok(result)) => result.map_err(StoreError::Store),
        };
        log::trace!(
            "keyring call in service '{}' took {:?}{}",
            self.service,
            started.elapsed(),
            if result.is_ok() { "" } else { " and failed" }
        );
        result
    }
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
