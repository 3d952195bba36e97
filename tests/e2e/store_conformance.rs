//! The conformance suite every store runs, in the manner of object_store's shared tests
//! that every backend runs: one set of cases ([`store_conformance!`] lists them, the one
//! place to add a case) over the library's [`SecretStore`] interface, each run by every
//! store's [`Fixture`] (one line per store at the bottom of the list): the real keyring
//! (the gnome-keyring of the test session, a service per test) and the vault store (a
//! real OpenBao dev server, a prefix per test).
//!
//! Then the vault store's own cases: its data layout read back through the `bao` CLI,
//! `#pending`/`#previous` out of a consumer's sight, its token never in an error or
//! Debug string, and writes across the kill of a Raft cluster's leader.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use siprot::error::Error;
use siprot::store::{
    EntryName, Facts, Holder, Keyring, Precondition, Record, SecretStore, Slot, StoreError,
};

use crate::support::openbao::{Bao, Cluster, unique_prefix};

/// The three slots a rotation uses.
const SLOTS: [Slot; 3] = [Slot::Current, Slot::Pending, Slot::Previous];

/// A store kind under test.
#[async_trait]
trait Fixture: Sync {
    /// An empty store of this kind that no other test uses.
    async fn store(&self) -> Box<dyn SecretStore>;

    /// Whether writes return versions and check [`Precondition::Version`].
    fn versioned(&self) -> bool;

    /// Starts a write of `record` to `name`'s current slot and gives up on it while the
    /// store cannot take it (the write still waiting or retrying), then lets the store
    /// work again. Returns the store to check with and what keeps its server alive.
    async fn abandon_a_write(
        &self,
        name: &EntryName,
        record: Record<'_>,
    ) -> (Box<dyn SecretStore>, Box<dyn std::any::Any + Send>);

    /// Each failure this store can have: what caused it, the store's error, the exit
    /// code it must map to and a fragment its message must hold.
    async fn failures(&self) -> Vec<(&'static str, StoreError, u8, String)>;
}

/// The case list: every store runs every case. A new store adds one line below.
macro_rules! store_conformance {
    ($($store:ident => $fixture:expr),* $(,)?) => {$(
        mod $store {
            store_conformance!(@cases $fixture;
                each_slot_is_created_read_replaced_and_deleted,
                listing_shows_a_stores_own_entries_only,
                create_only_if_absent_conflicts_the_second_time,
                a_write_whose_caller_gave_up_never_lands,
                store_errors_map_to_their_exit_codes,
            );
        }
    )*};
    (@cases $fixture:expr; $($case:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            super::$case(&$fixture).await
        }
    )*};
}

store_conformance! {
    keyring => super::KeyringFixture,
    vault => super::VaultFixture,
}

fn facts(credential: &str) -> Facts {
    Facts {
        username: Some(format!("user-{credential}")),
        provider: "telepath".into(),
        credential: credential.into(),
        device: None,
        rotated_at: Some("2026-11-29T10:00:00Z".into()),
        holder: None,
    }
}

async fn secret_of(store: &dyn SecretStore, name: &EntryName, slot: Slot) -> Option<String> {
    store
        .read(name, slot)
        .await
        .unwrap_or_else(|e| panic!("read {name} {slot:?}: {e}"))
        .map(|stored| {
            stored
                .secret
                .expect("a password")
                .expose_secret()
                .to_owned()
        })
}

async fn each_slot_is_created_read_replaced_and_deleted(fixture: &dyn Fixture) {
    let store = fixture.store().await;
    let name = EntryName::new("telepath/conn_round1");
    let facts = facts("conn_round1");
    for (i, slot) in SLOTS.into_iter().enumerate() {
        assert!(store.read(&name, slot).await.unwrap().is_none(), "{slot:?}");
        let first = SecretString::from(format!("first-{i}-{}", slot.name()));
        let record = Record {
            secret: Some(&first),
            facts: &facts,
        };
        let v1 = store
            .write(&name, slot, record, Precondition::Any)
            .await
            .unwrap();
        let stored = store.read(&name, slot).await.unwrap().expect("written");
        assert_eq!(
            stored.secret.unwrap().expose_secret(),
            first.expose_secret()
        );
        assert_eq!(stored.version, v1, "{slot:?}");
        let second = SecretString::from(format!("second-{i}-{}", slot.name()));
        let v2 = store
            .write(
                &name,
                slot,
                Record {
                    secret: Some(&second),
                    facts: &facts,
                },
                Precondition::Any,
            )
            .await
            .unwrap();
        if fixture.versioned() {
            assert!(v2 > v1, "{v1:?} then {v2:?}");
        }
        assert_eq!(
            secret_of(&*store, &name, slot).await.as_deref(),
            Some(second.expose_secret())
        );
        // The other slots are their own.
        for other in SLOTS.into_iter().filter(|s| *s != slot) {
            let expected = SLOTS
                .iter()
                .position(|s| *s == other)
                .filter(|&j| j < i)
                .map(|j| format!("second-{j}-{}", other.name()));
            assert_eq!(
                secret_of(&*store, &name, other).await,
                expected,
                "{other:?} after writing {slot:?}"
            );
        }
    }
    for slot in SLOTS {
        assert!(store.delete(&name, slot).await.unwrap(), "{slot:?}");
        assert!(store.read(&name, slot).await.unwrap().is_none(), "{slot:?}");
        assert!(!store.delete(&name, slot).await.unwrap(), "{slot:?} again");
        // Empty again: it can be created anew.
    }
    let again = SecretString::from("third");
    store
        .write(
            &name,
            Slot::Current,
            Record {
                secret: Some(&again),
                facts: &facts,
            },
            Precondition::Absent,
        )
        .await
        .unwrap();
    assert_eq!(
        secret_of(&*store, &name, Slot::Current).await.as_deref(),
        Some("third")
    );
}

async fn listing_shows_a_stores_own_entries_only(fixture: &dyn Fixture) {
    let mine = fixture.store().await;
    let other = fixture.store().await;
    let facts = facts("x");
    let secret = SecretString::from("listed-pw");
    let record = Record {
        secret: Some(&secret),
        facts: &facts,
    };
    let written = [
        ("telepath/conn_b", Slot::Current),
        ("telepath/conn_b", Slot::Previous),
        ("telepath/conn_a", Slot::Pending),
        ("exotel/SID/user-1/dev-1", Slot::Current),
        ("vobiz/MA1/cred-1", Slot::Current),
        ("vobiz/MA1/cred-1", Slot::Pending),
        ("vobiz/MA1/cred-1", Slot::Previous),
    ];
    for (name, slot) in written {
        mine.write(&EntryName::new(name), slot, record, Precondition::Any)
            .await
            .unwrap();
    }
    other
        .write(
            &EntryName::new("telepath/conn_other"),
            Slot::Current,
            record,
            Precondition::Any,
        )
        .await
        .unwrap();
    let listed = mine.list().await.unwrap();
    let mut expected: Vec<(EntryName, Slot)> = written
        .iter()
        .map(|(n, s)| (EntryName::new(*n), *s))
        .collect();
    let order = |s: &Slot| SLOTS.iter().position(|x| x == s);
    expected.sort_by(|(a, sa), (b, sb)| a.cmp(b).then(order(sa).cmp(&order(sb))));
    let mut got = listed.clone();
    got.sort_by(|(a, sa), (b, sb)| a.cmp(b).then(order(sa).cmp(&order(sb))));
    assert_eq!(got, expected);
    let names: Vec<&EntryName> = listed.iter().map(|(n, _)| n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by entry");
    assert_eq!(
        other.list().await.unwrap(),
        [(EntryName::new("telepath/conn_other"), Slot::Current)]
    );
    assert_ne!(mine.service(), other.service());
}

async fn create_only_if_absent_conflicts_the_second_time(fixture: &dyn Fixture) {
    let store = fixture.store().await;
    let name = EntryName::new("telepath/conn_claim");
    let facts = facts("conn_claim");
    let first = SecretString::from("claim-first");
    let second = SecretString::from("claim-second");
    for slot in SLOTS {
        let v1 = store
            .write(
                &name,
                slot,
                Record {
                    secret: Some(&first),
                    facts: &facts,
                },
                Precondition::Absent,
            )
            .await
            .unwrap();
        let err = store
            .write(
                &name,
                slot,
                Record {
                    secret: Some(&second),
                    facts: &facts,
                },
                Precondition::Absent,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        let located = store.locate(&name, slot);
        let located = located.split('\'').nth(1).unwrap_or(&located);
        assert!(err.to_string().contains(located), "{err} names {located}");
        let error = Error::keyring_unavailable(err);
        assert_eq!(error.exit_code().code(), 7, "{error}");
        assert_eq!(
            secret_of(&*store, &name, slot).await.as_deref(),
            Some("claim-first"),
            "{slot:?} unchanged"
        );
        if fixture.versioned() {
            let v1 = v1.expect("a version");
            let v2 = store
                .write(
                    &name,
                    slot,
                    Record {
                        secret: Some(&second),
                        facts: &facts,
                    },
                    Precondition::Version(v1),
                )
                .await
                .unwrap()
                .expect("a version");
            assert!(v2 > v1);
            let stale = store
                .write(
                    &name,
                    slot,
                    Record {
                        secret: Some(&first),
                        facts: &facts,
                    },
                    Precondition::Version(v1),
                )
                .await
                .unwrap_err();
            assert!(matches!(stale, StoreError::Conflict { .. }), "{stale:?}");
            assert_eq!(Error::keyring_unavailable(stale).exit_code().code(), 7);
            assert_eq!(
                secret_of(&*store, &name, slot).await.as_deref(),
                Some("claim-second")
            );
        }
    }
}

async fn a_write_whose_caller_gave_up_never_lands(fixture: &dyn Fixture) {
    let name = EntryName::new("telepath/conn_abandoned");
    let facts = facts("conn_abandoned");
    let secret = SecretString::from("abandoned-pw");
    let (store, _alive) = fixture
        .abandon_a_write(
            &name,
            Record {
                secret: Some(&secret),
                facts: &facts,
            },
        )
        .await;
    assert!(
        store.read(&name, Slot::Current).await.unwrap().is_none(),
        "the abandoned write landed"
    );
    // The store works again.
    let fresh = SecretString::from("fresh-pw");
    store
        .write(
            &name,
            Slot::Current,
            Record {
                secret: Some(&fresh),
                facts: &facts,
            },
            Precondition::Absent,
        )
        .await
        .unwrap();
    assert_eq!(
        secret_of(&*store, &name, Slot::Current).await.as_deref(),
        Some("fresh-pw")
    );
}

async fn store_errors_map_to_their_exit_codes(fixture: &dyn Fixture) {
    let failures = fixture.failures().await;
    assert!(!failures.is_empty());
    for (what, err, code, fragment) in failures {
        let error = Error::keyring_unavailable(err);
        let text = error.to_string();
        assert_eq!(error.exit_code().code(), code, "{what}: {text}");
        assert!(
            text.contains(&fragment),
            "{what}: {text} lacks {fragment:?}"
        );
        assert!(!text.contains('\n'), "{what}: {text}");
    }
}

/// The keyring of the test session.
struct KeyringFixture;

impl KeyringFixture {
    async fn keyring(&self) -> Keyring {
        let service = format!(
            "siprot-store-test-{}",
            unique_prefix("k").trim_end_matches('/')
        );
        Keyring::open(&service, siprot::store::DEFAULT_TIMEOUT)
            .await
            .expect("the keyring of the test session (run under scripts/with-keyring.sh)")
    }
}

#[async_trait]
impl Fixture for KeyringFixture {
    async fn store(&self) -> Box<dyn SecretStore> {
        Box::new(self.keyring().await)
    }

    fn versioned(&self) -> bool {
        false
    }

    async fn abandon_a_write(
        &self,
        name: &EntryName,
        record: Record<'_>,
    ) -> (Box<dyn SecretStore>, Box<dyn std::any::Any + Send>) {
        let keyring = self.keyring().await;
        // A queue of calls ahead on the keyring thread: the write waits behind them.
        let filler = SecretString::from("filler-pw");
        let names: Vec<String> = (0..100).map(|i| format!("filler/{i}")).collect();
        let ahead = futures_util::future::join_all(names.iter().map(|n| keyring.set(n, &filler)));
        tokio::pin!(ahead);
        tokio::select! {
            biased;
            _ = &mut ahead => panic!("100 keyring writes done at once"),
            () = std::future::ready(()) => {}
        }
        let gave_up = tokio::time::timeout(
            Duration::from_millis(1),
            keyring.write(name, Slot::Current, record, Precondition::Any),
        )
        .await;
        assert!(gave_up.is_err(), "the write did not wait: {gave_up:?}");
        for result in ahead.await {
            result.unwrap();
        }
        (
            Box::new(keyring.for_service(keyring.service())),
            Box::new(()),
        )
    }

    async fn failures(&self) -> Vec<(&'static str, StoreError, u8, String)> {
        let keyring = self.keyring().await;
        let name = EntryName::new("telepath/conn_fail");
        let facts = facts("conn_fail");
        let secret = SecretString::from("fail-pw");
        let record = Record {
            secret: Some(&secret),
            facts: &facts,
        };
        let mut failures = Vec::new();
        keyring
            .write(&name, Slot::Pending, record, Precondition::Absent)
            .await
            .unwrap();
        let conflict = keyring
            .write(&name, Slot::Pending, record, Precondition::Absent)
            .await
            .unwrap_err();
        failures.push((
            "a second create",
            conflict,
            7,
            "'telepath/conn_fail#pending' exists already".into(),
        ));
        let marker = keyring
            .write(
                &name,
                Slot::Current,
                Record {
                    secret: None,
                    facts: &facts,
                },
                Precondition::Any,
            )
            .await
            .unwrap_err();
        failures.push(("a claim marker", marker, 8, "keyring unavailable: ".into()));
        // Another program's item for the same entry: only the Secret Service holds two
        // (the Credential Manager and the Keychain key an item by service and name).
        #[cfg(target_os = "linux")]
        {
            keyring
                .write(&name, Slot::Current, record, Precondition::Any)
                .await
                .unwrap();
            let mut child = std::process::Command::new("secret-tool")
                .args(["store", "--label", "foreign", "service", keyring.service()])
                .args(["username", name.current(), "application", "other"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("secret-tool");
            {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"other-pw").unwrap();
            }
            assert!(child.wait().unwrap().success());
            let ambiguous = keyring.preflight(&name).await.unwrap_err();
            failures.push((
                "two items for one entry",
                ambiguous,
                4,
                "has 2 items for entry 'telepath/conn_fail'".into(),
            ));
        }
        failures
    }
}

/// The vault store on the shared OpenBao dev server (private ones for faults).
struct VaultFixture;

const VAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[async_trait]
impl Fixture for VaultFixture {
    async fn store(&self) -> Box<dyn SecretStore> {
        Box::new(Bao::shared().store(&unique_prefix("c"), VAULT_TIMEOUT))
    }

    fn versioned(&self) -> bool {
        true
    }

    async fn abandon_a_write(
        &self,
        name: &EntryName,
        record: Record<'_>,
    ) -> (Box<dyn SecretStore>, Box<dyn std::any::Any + Send>) {
        let bao = Bao::start();
        let prefix = unique_prefix("abandon");
        bao.stop();
        // The caller's own timeout passes while the store retries.
        let patient = bao.store(&prefix, Duration::from_secs(60));
        let gave_up = tokio::time::timeout(
            Duration::from_millis(1500),
            patient.write(name, Slot::Current, record, Precondition::Absent),
        )
        .await;
        assert!(gave_up.is_err(), "{gave_up:?}");
        // The store's timeout passes during its retries.
        let hasty = bao.store(&prefix, Duration::from_secs(1));
        let started = Instant::now();
        let err = hasty
            .write(name, Slot::Previous, record, Precondition::Absent)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "{err}");
        assert!(err.to_string().contains("tries"), "retried: {err}");
        bao.restart();
        // Longer than the longest backoff: a retry still pending would have landed.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let store = bao.store(&prefix, VAULT_TIMEOUT);
        assert!(
            store.read(name, Slot::Previous).await.unwrap().is_none(),
            "the timed-out write landed"
        );
        drop(patient);
        (Box::new(store), Box::new(bao))
    }

    async fn failures(&self) -> Vec<(&'static str, StoreError, u8, String)> {
        let bao = Bao::start();
        let prefix = unique_prefix("fail");
        let name = EntryName::new("telepath/conn_fail");
        let mut failures = Vec::new();

        let reader = bao.read_only_token("reader");
        let read_only = bao.store_with(&reader, &prefix, VAULT_TIMEOUT);
        let denied = read_only.preflight(&name).await.unwrap_err();
        failures.push((
            "a read-only token",
            denied,
            4,
            format!("vault token may not update secret/data/{prefix}telepath/conn_fail at"),
        ));

        let invalid = bao.store_with("not-a-token-5fa3", &prefix, VAULT_TIMEOUT);
        let refused = invalid.read(&name, Slot::Current).await.unwrap_err();
        failures.push(("an invalid token", refused, 4, "refused the token".into()));
        let refused = invalid.preflight(&name).await.unwrap_err();
        failures.push((
            "an invalid token's preflight",
            refused,
            4,
            "refused the token".into(),
        ));

        // Long enough for a loaded machine to get the sealed answer within it.
        let store = bao.store(&prefix, Duration::from_secs(5));
        let facts = facts("conn_fail");
        let secret = SecretString::from("fail-pw");
        let record = Record {
            secret: Some(&secret),
            facts: &facts,
        };
        store
            .write(&name, Slot::Pending, record, Precondition::Absent)
            .await
            .unwrap();
        let conflict = store
            .write(&name, Slot::Pending, record, Precondition::Absent)
            .await
            .unwrap_err();
        failures.push((
            "a second create",
            conflict,
            7,
            format!("'secret/{prefix}.pending/telepath/conn_fail' exists already"),
        ));
        let probe = store
            .write(&name, Slot::Probe, record, Precondition::Any)
            .await
            .unwrap_err();
        failures.push(("the probe slot", probe, 4, "no probe slot".into()));

        bao.seal();
        let sealed = store.read(&name, Slot::Current).await.unwrap_err();
        failures.push((
            "a sealed server",
            sealed,
            8,
            "vault store unavailable: ".into(),
        ));
        let sealed = store.preflight(&name).await.unwrap_err();
        failures.push(("a sealed server", sealed, 8, "is sealed".into()));

        bao.stop();
        let unreachable = store.read(&name, Slot::Current).await.unwrap_err();
        failures.push((
            "an unreachable server",
            unreachable,
            8,
            format!("vault store unavailable: vault at {}/", bao.addr),
        ));
        let unreachable = store.list().await.unwrap_err();
        failures.push((
            "an unreachable server's listing",
            unreachable,
            8,
            "could not connect".into(),
        ));
        for (what, err, _, _) in &failures {
            assert!(!format!("{err:?}").contains("not-a-token-5fa3"), "{what}");
            assert!(!err.to_string().contains("fail-pw"), "{what}");
        }
        failures
    }
}

// The vault store's own cases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_data_is_the_password_beside_the_facts_as_the_cli_reads_it() {
    let bao = Bao::shared();
    eprintln!("bao server -dev up in {:?}", bao.started_in.lock().unwrap());
    let prefix = unique_prefix("layout");
    let store = bao.store(&prefix, VAULT_TIMEOUT);
    let name = EntryName::new("telepath/conn_layout1");
    let mut facts = facts("conn_layout1");
    facts.device = Some("desk-1".into());
    let current = SecretString::from("current-Pw-1!");
    let previous = SecretString::from("previous-Pw-0!");
    let pending = SecretString::from("pending-Pw-2!");
    for (slot, secret) in [
        (Slot::Current, &current),
        (Slot::Previous, &previous),
        (Slot::Pending, &pending),
    ] {
        store
            .write(
                &name,
                slot,
                Record {
                    secret: Some(secret),
                    facts: &facts,
                },
                Precondition::Absent,
            )
            .await
            .unwrap();
    }
    let path = format!("secret/{prefix}telepath/conn_layout1");
    assert_eq!(
        store.locate(&name, Slot::Current),
        format!("vault secret '{path}'")
    );
    assert_eq!(
        bao.kv_get(&path, "password").as_deref(),
        Some("current-Pw-1!")
    );
    for (field, value) in [
        ("provider", "telepath"),
        ("credential", "conn_layout1"),
        ("username", "user-conn_layout1"),
        ("device", "desk-1"),
        ("rotated_at", "2026-11-29T10:00:00Z"),
    ] {
        assert_eq!(bao.kv_get(&path, field).as_deref(), Some(value), "{field}");
    }
    // A consumer of the current secret sees only the current password.
    let data = bao.kv_data(&path).unwrap();
    let keys: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "credential",
            "device",
            "password",
            "provider",
            "rotated_at",
            "username"
        ]
    );
    let listed = bao.cli(
        "root",
        &[
            "kv",
            "list",
            "-format=json",
            &format!("secret/{prefix}telepath"),
        ],
    );
    let listed: Vec<String> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed, ["conn_layout1"]);
    assert_eq!(
        bao.kv_get(
            &format!("secret/{prefix}.previous/telepath/conn_layout1"),
            "password"
        )
        .as_deref(),
        Some("previous-Pw-0!")
    );
    assert_eq!(
        bao.kv_get(
            &format!("secret/{prefix}.pending/telepath/conn_layout1"),
            "password"
        )
        .as_deref(),
        Some("pending-Pw-2!")
    );
    // A claim marker: no password, the holder.
    let claim = EntryName::new("telepath/conn_layout2");
    let mut claimed = facts.clone();
    claimed.holder = Some(Holder {
        host: "ci-runner-7".into(),
        state: "/var/lib/siprot".into(),
        id: None,
        pid: 4242,
        since: "2026-11-29T10:00:00Z".into(),
    });
    store
        .write(
            &claim,
            Slot::Pending,
            Record {
                secret: None,
                facts: &claimed,
            },
            Precondition::Absent,
        )
        .await
        .unwrap();
    let marker = store.read(&claim, Slot::Pending).await.unwrap().unwrap();
    assert!(marker.secret.is_none());
    assert_eq!(marker.facts, claimed);
    let data = bao
        .kv_data(&format!("secret/{prefix}.pending/telepath/conn_layout2"))
        .unwrap();
    assert!(data.get("password").is_none(), "{data}");
    assert_eq!(data["holder"]["host"], "ci-runner-7");
    assert_eq!(store.service(), format!("vault:secret/{prefix}"));
    assert!(store.shared());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_soft_deleted_secrets_read_as_absent_and_can_be_created() {
    let bao = Bao::shared();
    let prefix = unique_prefix("soft");
    let store = bao.store(&prefix, VAULT_TIMEOUT);
    let name = EntryName::new("vobiz/MA1/cred-9");
    let facts = facts("cred-9");
    let secret = SecretString::from("soft-pw-1");
    let record = Record {
        secret: Some(&secret),
        facts: &facts,
    };
    store
        .write(&name, Slot::Current, record, Precondition::Absent)
        .await
        .unwrap();
    let path = format!("secret/{prefix}vobiz/MA1/cred-9");
    let out = bao.cli("root", &["kv", "delete", &path]);
    assert!(out.status.success());
    assert!(store.read(&name, Slot::Current).await.unwrap().is_none());
    assert!(!store.delete(&name, Slot::Current).await.unwrap());
    store
        .write(&name, Slot::Current, record, Precondition::Absent)
        .await
        .unwrap();
    assert_eq!(bao.kv_get(&path, "password").as_deref(), Some("soft-pw-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_token_never_appears_in_errors_or_debug() {
    let bao = Bao::start();
    let token = "s.TopSecretToken-77aa";
    let prefix = unique_prefix("leak");
    let store = bao.store_with(token, &prefix, Duration::from_secs(1));
    let name = EntryName::new("telepath/conn_leak");
    let mut texts = vec![format!("{store:?}"), format!("{:?}", bao.connection(token))];
    let facts = facts("conn_leak");
    let pw = SecretString::from("leak-pw");
    let record = Record {
        secret: Some(&pw),
        facts: &facts,
    };
    let mut errors = vec![
        store.read(&name, Slot::Current).await.unwrap_err(),
        store
            .write(&name, Slot::Current, record, Precondition::Absent)
            .await
            .unwrap_err(),
        store.delete(&name, Slot::Current).await.unwrap_err(),
        store.list().await.unwrap_err(),
        store.preflight(&name).await.unwrap_err(),
    ];
    bao.stop();
    errors.push(store.read(&name, Slot::Current).await.unwrap_err());
    for err in errors {
        texts.push(format!("{err:?}"));
        texts.push(err.to_string());
        texts.push(Error::keyring_unavailable(err).to_string());
    }
    for text in texts {
        assert!(!text.contains(token), "{text}");
        assert!(!text.contains("TopSecret"), "{text}");
        assert!(!text.contains("leak-pw"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_writes_go_on_across_the_kill_of_the_cluster_leader() {
    let cluster = Cluster::start();
    eprintln!("raft cluster of 3 up in {:?}", cluster.started_in);
    let via = cluster.standby();
    let prefix = unique_prefix("raft");
    let store = std::sync::Arc::new(cluster.store(via, &prefix, Duration::from_secs(30)));
    let facts = facts("raft");

    // Sequential writes first: the cost of one write.
    let started = Instant::now();
    let sequential = 50;
    for i in 0..sequential {
        let pw = SecretString::from(format!("seq-pw-{i}"));
        store
            .write(
                &EntryName::new(format!("telepath/seq_{i}")),
                Slot::Current,
                Record {
                    secret: Some(&pw),
                    facts: &facts,
                },
                Precondition::Absent,
            )
            .await
            .unwrap();
    }
    let per_write = started.elapsed() / sequential;
    eprintln!("raft: {per_write:?} per sequential write through a standby");

    // Then 400 writes by 8 writers, the leader killed after the first 150 answers.
    let writers = 8;
    let each = 50;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let facts = facts.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..each {
                let name = EntryName::new(format!("telepath/conn_{w}_{i}"));
                let began = Instant::now();
                let pw = SecretString::from(format!("raft-pw-{w}-{i}"));
                let result = store
                    .write(
                        &name,
                        Slot::Current,
                        Record {
                            secret: Some(&pw),
                            facts: &facts,
                        },
                        Precondition::Absent,
                    )
                    .await;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                outcomes.push((name, pw, result, (began, Instant::now())));
            }
            outcomes
        }));
    }
    while done.load(std::sync::atomic::Ordering::SeqCst) < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Instant::now();
    let killed = tokio::task::block_in_place(|| cluster.kill_leader());
    eprintln!("raft: killed the leader node{killed}; writing through node{via}");
    let mut outcomes = Vec::new();
    let all = futures_util::future::join_all(tasks);
    let results = tokio::time::timeout(Duration::from_secs(180), all)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the writes did not end within 180 s of the kill; node logs:\n{}\n{}\n{}",
                cluster.log(0),
                cluster.log(1),
                cluster.log(2)
            )
        });
    for result in results {
        outcomes.extend(result.unwrap());
    }
    assert_eq!(outcomes.len(), writers * each);
    let confirmed: Vec<_> = outcomes.iter().filter(|(_, _, r, _)| r.is_ok()).collect();
    let failed: BTreeMap<String, String> = outcomes
        .iter()
        .filter_map(|(n, _, r, _)| r.as_ref().err().map(|e| (n.to_string(), e.to_string())))
        .collect();
    // The failover as a writer sees it: the longest write that was under way at the kill.
    let failover = outcomes
        .iter()
        .filter(|(_, _, _, (began, ended))| *began <= killed_at && *ended >= killed_at)
        .chain(
            outcomes
                .iter()
                .filter(|(_, _, _, (began, _))| *began > killed_at),
        )
        .map(|(_, _, _, (began, ended))| *ended - *began)
        .max();
    let first_after = confirmed
        .iter()
        .map(|(_, _, _, (began, _))| *began)
        .filter(|began| *began > killed_at)
        .min();
    eprintln!(
        "raft: {} of {} writes confirmed, {} reported as errors; longest write around the \
         kill {:?}; new leader node{:?}",
        confirmed.len(),
        outcomes.len(),
        failed.len(),
        failover,
        cluster.leader()
    );
    assert!(
        first_after.is_some(),
        "no write started after the kill was confirmed: {failed:?}"
    );
    for (what, error) in &failed {
        assert!(
            error.contains("vault at"),
            "{what}: an error that names the store: {error}"
        );
    }
    // Every confirmed write is readable with what was written.
    for (name, pw, _, _) in confirmed {
        let stored = store
            .read(name, Slot::Current)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} confirmed but absent"));
        assert_eq!(
            stored.secret.unwrap().expose_secret(),
            pw.expose_secret(),
            "{name}"
        );
    }
    assert!(
        failed.len() < outcomes.len() / 4,
        "most writes should ride out the election: {failed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_over_https_trusts_the_ca_it_is_given_and_no_other() {
    let bao = Bao::start_tls();
    eprintln!("bao -dev-tls up in {:?}", bao.started_in.lock().unwrap());
    let prefix = unique_prefix("tls");
    let name = EntryName::new("telepath/conn_tls");
    let facts = facts("conn_tls");
    let pw = SecretString::from("tls-pw-1");
    let record = Record {
        secret: Some(&pw),
        facts: &facts,
    };
    let options = siprot::store::vault::VaultOptions {
        prefix: prefix.clone(),
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    // Without the CA: the server's certificate is not trusted.
    let untrusting =
        siprot::store::vault::VaultStore::connect(bao.connection("root"), &options).unwrap();
    let err = untrusting.read(&name, Slot::Current).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let ca = std::fs::read(bao.tls_file("vault-ca.pem")).unwrap();
    let mut pem = std::fs::read(bao.tls_file("vault-cert.pem")).unwrap();
    pem.extend(std::fs::read(bao.tls_file("vault-key.pem")).unwrap());
    let mut connection = bao.connection("root");
    connection.tls.extra_roots = siprot::http::Certificate::from_pem_bundle(&ca).unwrap();
    // A client identity is presented (the dev server does not ask for one).
    connection.tls.identity = Some(siprot::http::Identity::from_pem(&pem).unwrap());
    let trusting = siprot::store::vault::VaultStore::connect(connection, &options).unwrap();
    trusting
        .write(&name, Slot::Current, record, Precondition::Absent)
        .await
        .unwrap();
    assert_eq!(
        bao.kv_get(&format!("secret/{prefix}telepath/conn_tls"), "password")
            .as_deref(),
        Some("tls-pw-1")
    );
}

/// A fleet's `prepare` checks every credential's paths in one request and remembers those
/// the token may write: their `preflight` then asks nothing (shown by taking the token's
/// rights away afterwards), while a credential the check refused is still refused by its
/// own `preflight`, naming the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_prepare_checks_a_fleet_at_once_and_preflight_skips_what_it_found_writable() {
    let bao = Bao::shared();
    let prefix = unique_prefix("prepare");
    let allowed = EntryName::new("telepath/conn_allowed");
    let refused = EntryName::new("telepath/conn_refused");
    let dir = tempfile::tempdir().unwrap();
    let policy = |paths: &str| {
        let file = dir.path().join("p.hcl");
        std::fs::write(&file, paths).unwrap();
        let out = bao.cli(
            "root",
            &["policy", "write", "siprot-prepare", file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let grant = |sub: &str| {
        format!(
            "path \"secret/data/{prefix}{sub}\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\n\
             path \"secret/metadata/{prefix}{sub}\" {{ capabilities = [\"delete\"] }}\n"
        )
    };
    // Only the allowed credential's three slots.
    policy(
        &[
            grant("telepath/conn_allowed"),
            grant(".pending/telepath/conn_allowed"),
            grant(".previous/telepath/conn_allowed"),
        ]
        .concat(),
    );
    let out = bao.cli(
        "root",
        &[
            "token",
            "create",
            "-policy",
            "siprot-prepare",
            "-field=token",
        ],
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let store = bao.store_with(&token, &prefix, Duration::from_secs(10));

    store.prepare(&[allowed.clone(), refused.clone()]).await;
    // Take every right away: a preflight that asked the server now would be refused.
    policy("path \"secret/data/nothing\" { capabilities = [\"read\"] }\n");
    store
        .preflight(&allowed)
        .await
        .expect("remembered from prepare");
    let error = store.preflight(&refused).await.unwrap_err();
    assert!(matches!(error, StoreError::Denied { .. }), "{error:?}");
    assert!(error.to_string().contains("conn_refused"), "{error}");
    assert_eq!(Error::keyring_unavailable(error).exit_code().code(), 4);

    // A store that was never prepared asks, and is refused.
    let fresh = bao.store_with(&token, &prefix, Duration::from_secs(10));
    assert!(fresh.preflight(&allowed).await.is_err());
}
