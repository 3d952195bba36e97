//! `siprot secret get`: print a stored password and a newline, nothing else, for piping
//! into a carrier's configuration.

use secrecy::ExposeSecret;
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
    let secret = block_on(async {
        let store = args.store.open(None).await?;
        stored_secret(store.as_ref(), kind, &name, slot).await
    })?;
    let mut text = Zeroizing::new(String::with_capacity(secret.expose_secret().len() + 1));
    text.push_str(secret.expose_secret());
    text.push('\n');
    output::product(text.as_bytes())?;
    Ok(exit::SUCCESS)
}
