//! A Vault or OpenBao KV version 2 engine as a [`super::SecretStore`] (being built).

use std::time::Duration;

use crate::error::{Error, Result};

/// The default KV version 2 mount.
pub const DEFAULT_MOUNT: &str = "secret";
/// The default path under the mount.
pub const DEFAULT_PREFIX: &str = "siprot/";

/// `--vault-mount`, `--secret-prefix` and the time allowed per call.
#[derive(Debug, Clone)]
pub struct VaultOptions {
    pub mount: String,
    pub prefix: String,
    pub timeout: Duration,
}

impl VaultOptions {
    /// The store's service name: `vault:<mount>/<prefix>`, with `VAULT_NAMESPACE/` in
    /// front when it is set.
    pub fn service(&self) -> String {
        let namespace = std::env::var("VAULT_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .map(|n| format!("{}/", n.trim_matches('/')))
            .unwrap_or_default();
        format!("vault:{namespace}{}/{}", self.mount, self.prefix)
    }
}

/// The vault store.
#[derive(Debug)]
pub struct VaultStore {}

impl VaultStore {
    /// Opens the store the environment names.
    pub async fn open(_options: &VaultOptions) -> Result<Self> {
        Err(Error::Config("the vault store is not built yet".into()))
    }
}

#[async_trait::async_trait]
impl super::SecretStore for VaultStore {
    fn kind(&self) -> super::StoreKind {
        super::StoreKind::Vault
    }
    fn service(&self) -> &str {
        "vault"
    }
    fn shared(&self) -> bool {
        true
    }
    fn locate(&self, name: &super::EntryName, _slot: super::Slot) -> String {
        name.to_string()
    }
    async fn read(
        &self,
        _name: &super::EntryName,
        _slot: super::Slot,
    ) -> std::result::Result<Option<super::Stored>, super::StoreError> {
        Ok(None)
    }
    async fn write(
        &self,
        _name: &super::EntryName,
        _slot: super::Slot,
        _record: super::Record<'_>,
        _when: super::Precondition,
    ) -> std::result::Result<Option<u64>, super::StoreError> {
        Ok(None)
    }
    async fn delete(
        &self,
        _name: &super::EntryName,
        _slot: super::Slot,
    ) -> std::result::Result<bool, super::StoreError> {
        Ok(false)
    }
    async fn list(
        &self,
    ) -> std::result::Result<Vec<(super::EntryName, super::Slot)>, super::StoreError> {
        Ok(Vec::new())
    }
    async fn preflight(
        &self,
        _name: &super::EntryName,
    ) -> std::result::Result<(), super::StoreError> {
        Ok(())
    }
}
