//! A Vault or OpenBao KV version 2 engine as a [`super::SecretStore`] (being built).
