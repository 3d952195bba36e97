//! An in-memory [`SecretStore`] for unit tests: the protocol's store without D-Bus or a
//! server.
//!
//! [`MemoryStore::shared`] behaves as a Vault/OpenBao KV version 2 engine does for
//! siprot: each slot has a version, 1 on its first write and one more on each later
//! write; [`Precondition::Absent`] writes only into an empty slot and
//! [`Precondition::Version`] only over that version (else [`StoreError::Conflict`]); a
//! delete removes every version (the next write is version 1 again); a `#pending` may be
//! a claim marker without a password; facts are kept beside each password; there is no
//! probe slot. [`MemoryStore::unshared`] behaves as the keyring does: no versions, no
//! facts, no claim markers, `Version` ignored, `Absent` checked.
//!
//! Clones are handles on one map: two handles (with two state directories) are two
//! hosts using one store. [`MemoryStore::get`] and [`MemoryStore::put`] read and write a
//! slot directly, for a test's setup and checks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use secrecy::SecretString;

use super::{
    EntryName, Facts, Precondition, Record, SecretStore, Slot, StoreError, StoreKind, Stored,
};

/// What one slot holds: its password (none for a claim marker), facts and version.
#[derive(Debug, Clone)]
struct Held {
    secret: Option<SecretString>,
    facts: Facts,
    version: u64,
}

/// Slots in the order a listing gives them.
const SLOTS: [Slot; 4] = [Slot::Current, Slot::Pending, Slot::Previous, Slot::Probe];

fn index(slot: Slot) -> usize {
    SLOTS.iter().position(|s| *s == slot).unwrap_or(0)
}

/// An in-memory store; clones share one map.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    service: Arc<str>,
    shared: bool,
    slots: Arc<Mutex<BTreeMap<(EntryName, usize), Held>>>,
}

impl MemoryStore {
    /// A store as a Vault KV v2 engine behaves, shared by every handle cloned from it.
    pub fn shared(service: &str) -> Self {
        Self::new(service, true)
    }

    /// A store as the keyring behaves.
    pub fn unshared(service: &str) -> Self {
        Self::new(service, false)
    }

    fn new(service: &str, shared: bool) -> Self {
        Self {
            service: Arc::from(service),
            shared,
            slots: Arc::default(),
        }
    }

    fn slots(&self) -> MutexGuard<'_, BTreeMap<(EntryName, usize), Held>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot as [`SecretStore::read`] returns it, without going through the trait.
    pub fn get(&self, name: &EntryName, slot: Slot) -> Option<Stored> {
        self.slots()
            .get(&(name.clone(), index(slot)))
            .map(|held| self.stored(held))
    }

    /// Writes a slot whatever it holds (a test's setup, or another writer); the new
    /// version, as [`SecretStore::write`] returns it.
    pub fn put(
        &self,
        name: &EntryName,
        slot: Slot,
        secret: Option<&str>,
        facts: Facts,
    ) -> Option<u64> {
        let record = Held {
            secret: secret.map(SecretString::from),
            facts,
            version: 0,
        };
        self.store(name, slot, record)
    }

    /// The stored form of a slot: keyring-like stores have neither versions nor facts.
    fn stored(&self, held: &Held) -> Stored {
        Stored {
            secret: held.secret.clone(),
            version: self.shared.then_some(held.version),
            facts: match self.shared {
                true => held.facts.clone(),
                false => Facts::default(),
            },
        }
    }

    fn store(&self, name: &EntryName, slot: Slot, mut record: Held) -> Option<u64> {
        let mut slots = self.slots();
        let key = (name.clone(), index(slot));
        record.version = slots.get(&key).map_or(1, |held| held.version + 1);
        let version = record.version;
        slots.insert(key, record);
        self.shared.then_some(version)
    }

    fn conflict(&self, message: String) -> StoreError {
        StoreError::Conflict {
            store: self.kind(),
            message,
        }
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    fn kind(&self) -> StoreKind {
        match self.shared {
            true => StoreKind::Vault,
            false => StoreKind::Keyring,
        }
    }

    fn service(&self) -> &str {
        &self.service
    }

    fn shared(&self) -> bool {
        self.shared
    }

    fn locate(&self, name: &EntryName, slot: Slot) -> String {
        format!("memory slot '{}'", name.slot(slot))
    }

    async fn read(&self, name: &EntryName, slot: Slot) -> Result<Option<Stored>, StoreError> {
        Ok(self.get(name, slot))
    }

    async fn write(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
        when: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        let place = self.locate(name, slot);
        if record.secret.is_none() && !self.shared {
            return Err(StoreError::Store(format!(
                "the keyring keeps passwords only, not a claim marker ({place})"
            )));
        }
        if slot == Slot::Probe && self.shared {
            return Err(StoreError::Unavailable {
                store: self.kind(),
                message: format!("a shared store has no probe slot ({place})"),
            });
        }
        let mut slots = self.slots();
        let key = (name.clone(), index(slot));
        let version = slots.get(&key).map(|held| held.version);
        match (when, version) {
            (Precondition::Absent, Some(_)) => {
                return Err(self.conflict(format!("{place} exists already")));
            }
            (Precondition::Version(want), have) if self.shared && have != Some(want) => {
                return Err(self.conflict(format!(
                    "{place} is no longer at version {want} (now {})",
                    have.map_or_else(|| "absent".to_owned(), |v| v.to_string())
                )));
            }
            _ => {}
        }
        let version = version.map_or(1, |v| v + 1);
        slots.insert(
            key,
            Held {
                secret: record.secret.cloned(),
                facts: record.facts.clone(),
                version,
            },
        );
        Ok(self.shared.then_some(version))
    }

    async fn delete(&self, name: &EntryName, slot: Slot) -> Result<bool, StoreError> {
        Ok(self.slots().remove(&(name.clone(), index(slot))).is_some())
    }

    async fn list(&self) -> Result<Vec<(EntryName, Slot)>, StoreError> {
        Ok(self
            .slots()
            .keys()
            .map(|(name, slot)| (name.clone(), SLOTS[*slot]))
            .collect())
    }

    async fn preflight(&self, _name: &EntryName) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn facts(provider: &str) -> Facts {
        Facts {
            provider: provider.into(),
            credential: "cred-1".into(),
            ..Facts::default()
        }
    }

    fn secret(stored: Option<Stored>) -> Option<String> {
        stored
            .and_then(|s| s.secret)
            .map(|s| s.expose_secret().to_owned())
    }

    #[tokio::test]
    async fn shared_slots_have_versions_and_check_and_set() {
        let store = MemoryStore::shared("memory-test");
        let other_host = store.clone();
        let name = EntryName::new("vobiz/MA_UNIT/cred-1");
        let (a, b) = (SecretString::from("a"), SecretString::from("b"));
        let f = facts("vobiz");
        let record = |secret| Record {
            secret: Some(secret),
            facts: &f,
        };
        let first = store
            .write(&name, Slot::Current, record(&a), Precondition::Absent)
            .await
            .unwrap();
        assert_eq!(first, Some(1));
        let again = other_host
            .write(&name, Slot::Current, record(&b), Precondition::Absent)
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict { .. })),
            "{again:?}"
        );
        let read = other_host
            .read(&name, Slot::Current)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.version, Some(1));
        assert_eq!(read.facts, f, "facts are kept beside the password");
        assert_eq!(Stored::unchanged(Some(&read)), Precondition::Version(1));
        assert_eq!(
            store
                .write(&name, Slot::Current, record(&b), Precondition::Version(1))
                .await
                .unwrap(),
            Some(2)
        );
        let stale = other_host
            .write(&name, Slot::Current, record(&a), Precondition::Version(1))
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
        assert_eq!(
            secret(store.get(&name, Slot::Current)).as_deref(),
            Some("b")
        );
        // A write without a precondition still counts a version.
        store
            .write(&name, Slot::Current, record(&a), Precondition::Any)
            .await
            .unwrap();
        assert_eq!(store.get(&name, Slot::Current).unwrap().version, Some(3));
        // Delete removes every version: the slot is absent and starts again at 1.
        assert!(store.delete(&name, Slot::Current).await.unwrap());
        assert!(!store.delete(&name, Slot::Current).await.unwrap());
        assert!(store.read(&name, Slot::Current).await.unwrap().is_none());
        let missing = store
            .write(&name, Slot::Current, record(&a), Precondition::Version(3))
            .await;
        assert!(
            matches!(missing, Err(StoreError::Conflict { .. })),
            "{missing:?}"
        );
        assert_eq!(
            store
                .write(&name, Slot::Current, record(&a), Precondition::Absent)
                .await
                .unwrap(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn shared_store_takes_claim_markers_and_refuses_probes() {
        let store = MemoryStore::shared("memory-test");
        let name = EntryName::new("telepath/conn_1");
        let f = facts("telepath");
        let marker = Record {
            secret: None,
            facts: &f,
        };
        store
            .write(&name, Slot::Pending, marker, Precondition::Absent)
            .await
            .unwrap();
        let claim = store.read(&name, Slot::Pending).await.unwrap().unwrap();
        assert!(claim.secret.is_none());
        let probe = SecretString::from("probe");
        let written = store
            .write(
                &name,
                Slot::Probe,
                Record {
                    secret: Some(&probe),
                    facts: &f,
                },
                Precondition::Any,
            )
            .await;
        assert!(
            matches!(written, Err(StoreError::Unavailable { .. })),
            "{written:?}"
        );
    }

    #[tokio::test]
    async fn unshared_store_behaves_as_the_keyring() {
        let store = MemoryStore::unshared("memory-test");
        let name = EntryName::new("vobiz/MA_UNIT/cred-1");
        let f = facts("vobiz");
        let marker = Record {
            secret: None,
            facts: &f,
        };
        let refused = store
            .write(&name, Slot::Pending, marker, Precondition::Absent)
            .await;
        assert!(matches!(refused, Err(StoreError::Store(_))), "{refused:?}");
        let a = SecretString::from("a");
        let record = Record {
            secret: Some(&a),
            facts: &f,
        };
        assert_eq!(
            store
                .write(&name, Slot::Current, record, Precondition::Absent)
                .await
                .unwrap(),
            None
        );
        let again = store
            .write(&name, Slot::Current, record, Precondition::Absent)
            .await;
        assert!(
            matches!(again, Err(StoreError::Conflict { .. })),
            "{again:?}"
        );
        // Versions are ignored; nothing but the password is kept.
        store
            .write(&name, Slot::Current, record, Precondition::Version(42))
            .await
            .unwrap();
        let read = store.read(&name, Slot::Current).await.unwrap().unwrap();
        assert_eq!((read.version, &read.facts), (None, &Facts::default()));
        assert_eq!(Stored::unchanged(Some(&read)), Precondition::Any);
        store
            .write(&name, Slot::Probe, record, Precondition::Any)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn listing_is_sorted_by_entry_then_slot() {
        let store = MemoryStore::shared("memory-test");
        let (x, y) = (EntryName::new("vobiz/b"), EntryName::new("telepath/a"));
        store.put(&x, Slot::Previous, Some("p"), Facts::default());
        store.put(&x, Slot::Current, Some("c"), Facts::default());
        store.put(&y, Slot::Pending, None, Facts::default());
        assert_eq!(
            store.list().await.unwrap(),
            vec![
                (y.clone(), Slot::Pending),
                (x.clone(), Slot::Current),
                (x.clone(), Slot::Previous),
            ]
        );
    }
}
