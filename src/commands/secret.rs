//! `siprot secret get`: print a stored password and a newline, nothing else, for piping
//! into a carrier's configuration (with `--json`, one object with the password and where
//! it is stored).

use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::SecretGetArgs;
use crate::commands::{block_on, stored_secret};
use crate::error::{ExitCode, Result, exit};
use crate::output;
use crate::settings::Accounts;
use crate::store::Slot;

pub fn get(args: SecretGetArgs) -> Result<ExitCode> {
    let (kind, credential) = args.credential.resolve()?;
    let name = Accounts::load(None)?.entry_name(kind, &credential, None)?;
    let slot = if args.previous {
        Slot::Previous
    } else if args.pending {
        Slot::Pending
    } else {
        Slot::Current
    };
    let (secret, store, service) = block_on(async {
        let store = args.store.open(None).await?;
        let secret = stored_secret(store.as_ref(), kind, &name, slot).await?;
        Ok((secret, store.kind(), store.service().to_owned()))
    })?;
    if args.json {
        let json = SecretJson {
            password: secret.expose_secret(),
            provider: kind.name(),
            credential: credential.id(),
            device: credential.device(),
            slot: slot.name(),
            store: store.name(),
            keyring_service: &service,
            keyring_entry: &name.slot(slot),
        };
        // Strings may need escaping (\uXXXX: 6 bytes a byte at most).
        let escaped = secret.expose_secret().len() + service.len() + json.keyring_entry.len();
        output::json_product(&json, escaped * 6 + 512)?;
        return Ok(exit::SUCCESS);
    }
    let mut text = Zeroizing::new(String::with_capacity(secret.expose_secret().len() + 1));
    text.push_str(secret.expose_secret());
    text.push('\n');
    output::product(text.as_bytes())?;
    Ok(exit::SUCCESS)
}

/// The JSON contract of `secret get --json`.
#[derive(Serialize)]
struct SecretJson<'a> {
    password: &'a str,
    provider: &'static str,
    credential: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    /// `current`, `previous` or `pending`.
    slot: &'static str,
    /// `keyring` or `vault`.
    store: &'static str,
    keyring_service: &'a str,
    /// The slot's entry (`telepath/conn_abc#previous`).
    keyring_entry: &'a str,
}
