//! One module per subcommand: each wires the core modules together and renders the
//! result. Commands open the keyring and read what they show, but never order keyring
//! writes or provider requests (that is [`crate::rotation`]'s job), nor speak a
//! provider's API or the keyring's protocol.

pub mod check_password;
pub mod completions;
pub mod config_show;
pub mod doctor;
pub mod exec;
pub mod exit_codes;
pub mod fleet;
pub mod generate;
pub mod login;
pub mod recover;
pub mod rotate;
pub mod rotate_verify;
pub mod secret;
pub mod status;
pub mod toggle;
pub mod verify;

use std::future::Future;
use std::time::Duration;

use crate::cli::{
    Cli, Command, ConfigCommand, CredentialArgs, HttpArgs, NetArgs, SecretCommand, StoreArgs,
};
use crate::config::{self, ConnectOptions};
use crate::error::{Error, ExitCode, Result};
use crate::http::HttpConfig;
use crate::inventory::Inventory;
use crate::output;
use crate::providers::{CredentialRef, Provider, ProviderKind};
use crate::retry::RetryConfig;
use crate::settings::{Accounts, Settings};
use crate::store::vault::{self, VaultOptions, VaultStore};
use crate::store::{EntryName, Keyring, SecretStore, Slot, StoreKind};
use secrecy::SecretString;

/// Runs the parsed command line and returns the exit code; errors are printed here, once,
/// and so is a failure to write standard output (which never changes the exit code).
pub fn run(cli: Cli) -> ExitCode {
    let (result, json) = match cli.command {
        Command::Rotate(args) => {
            let json = args.json;
            (rotate::run(args), json)
        }
        Command::Enable(args) => {
            let json = args.json;
            (toggle::enable(args), json)
        }
        Command::Disable(args) => {
            let json = args.toggle.json;
            (toggle::disable(args), json)
        }
        Command::CheckPassword(args) => {
            let json = args.json;
            (check_password::run(args), json)
        }
        Command::Generate(args) => {
            let json = args.json;
            (generate::run(args), json)
        }
        Command::Secret(SecretCommand::Get(args)) => {
            let json = args.json;
            (secret::get(args), json)
        }
        Command::Status(args) => {
            let json = args.json;
            (status::run(args), json)
        }
        Command::Recover(args) => {
            let json = args.json;
            (recover::run(args), json)
        }
        Command::Verify(args) => {
            let json = args.json;
            (verify::run(args), json)
        }
        Command::Exec(args) => {
            let json = args.json;
            (exec::run(args), json)
        }
        Command::Completions(args) => (completions::completions(args), false),
        Command::Man(args) => (completions::man(args), false),
        Command::Doctor(args) => {
            let json = args.json;
            (doctor::run(args), json)
        }
        Command::Login(args) => {
            let json = args.json;
            (login::login(args), json)
        }
        Command::Logout(args) => {
            let json = args.json;
            (login::logout(args), json)
        }
        Command::Config(ConfigCommand::Show(args)) => {
            let json = args.json;
            (config_show::run(args), json)
        }
        Command::ExitCodes(args) => {
            let json = args.json;
            (exit_codes::run(args), json)
        }
    };
    let code = match result {
        Ok(code) => code,
        Err(error) => fail(&error, json, None),
    };
    let code = crate::interrupt::final_code(code);
    output::finish(code);
    code
}

/// Prints a failure once (one line on stderr, and the JSON error object with `--json`)
/// and returns its exit code.
pub(crate) fn fail(error: &Error, json: bool, attempts: Option<u32>) -> ExitCode {
    output::error(error);
    if json {
        let mut object = output::JsonError::new(error);
        if let Some(attempts) = attempts {
            object = object.with_attempts(attempts);
        }
        // The error line is already on stderr; a failure to print JSON too changes nothing.
        let _ = output::json(&object);
    }
    error.exit_code()
}

/// Runs async work on a small runtime that exists only for commands that need it, so
/// that `check-password` and `generate` start no runtime, HTTP client or keyring.
pub(crate) fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    let result = runtime.block_on(future);
    // A DNS lookup that outlived its timeout may still sit on tokio's blocking pool (keyring
    // calls have a thread of their own): don't wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

/// The password in `slot` of `name`; a missing one is [`Error::NotFound`] (exit 6).
pub(crate) async fn stored_secret(
    store: &dyn SecretStore,
    provider: ProviderKind,
    name: &EntryName,
    slot: Slot,
) -> Result<SecretString> {
    store
        .read(name, slot)
        .await
        .map_err(Error::keyring_unavailable)?
        .and_then(|stored| stored.secret)
        .ok_or_else(|| Error::NotFound {
            provider: provider.name(),
            message: format!("no password stored in {}", store.locate(name, slot)),
        })
}

/// The environment variable that picks the store when `--store` does not.
pub const STORE_VAR: &str = "SIPROT_STORE";

impl StoreArgs {
    /// The store to use: `--store`, else `SIPROT_STORE`, else `fallback` (an inventory's
    /// `store` setting), else the keyring; with the flag or variable that chose it.
    fn kind(&self, fallback: Option<StoreKind>) -> Result<(StoreKind, Option<&'static str>)> {
        if let Some(kind) = self.store {
            return Ok((kind, Some("--store")));
        }
        match config::optional(STORE_VAR)? {
            Some(name) => StoreKind::parse(&name)
                .map(|kind| (kind, Some(STORE_VAR)))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{STORE_VAR} is '{}', not one of keyring, vault",
                        name.escape_debug()
                    ))
                }),
            None => Ok((fallback.unwrap_or_default(), None)),
        }
    }

    /// The vault store's options: the command line's, else the inventory's, else the
    /// defaults.
    fn vault_options(&self, inventory: Option<&Inventory>) -> VaultOptions {
        let pick = |given: &Option<String>, file: Option<&String>, default: &str| {
            given
                .clone()
                .or_else(|| file.cloned())
                .unwrap_or_else(|| default.to_owned())
        };
        VaultOptions {
            mount: pick(
                &self.vault_mount,
                inventory.and_then(|i| i.vault_mount.as_ref()),
                vault::DEFAULT_MOUNT,
            ),
            prefix: pick(
                &self.secret_prefix,
                inventory.and_then(|i| i.secret_prefix.as_ref()),
                vault::DEFAULT_PREFIX,
            ),
            timeout: self.keyring_timeout,
        }
    }

    /// The chosen store (see [`StoreArgs::kind`]); options of a store not chosen are
    /// refused, so that a typo never silently writes elsewhere.
    /// An inventory's `vault_mount`/`secret_prefix` with another store are refused the
    /// same way, and a flag or variable overriding its `store` is warned about.
    fn chosen(&self, inventory: Option<&Inventory>) -> Result<StoreKind> {
        let (kind, chooser) = self.kind(inventory.and_then(|i| i.store))?;
        if kind != StoreKind::Vault && (self.vault_mount.is_some() || self.secret_prefix.is_some())
        {
            return Err(Error::Usage(format!(
                "--vault-mount and --secret-prefix are for the vault store, but the store is \
                 {kind} (choose it with --store vault or {STORE_VAR}=vault)"
            )));
        }
        if let Some(inventory) = inventory {
            check_inventory_store(inventory, kind, chooser)?;
        }
        Ok(kind)
    }

    /// The service name of the chosen store (what the audit log, lock and recovery files
    /// name it by), without opening it.
    pub(crate) fn service(&self, inventory: Option<&Inventory>) -> Result<String> {
        match self.chosen(inventory)? {
            StoreKind::Vault => Ok(self.vault_options(inventory).service()),
            _ => config::keyring_service(),
        }
    }

    /// Starts opening the OS keyring, when it is the chosen store, while the caller goes
    /// on ([`crate::store::open_ahead`]); [`StoreArgs::open`] then finds it open.
    pub(crate) fn open_ahead(&self, inventory: Option<&Inventory>) {
        if matches!(self.chosen(inventory), Ok(StoreKind::Keyring)) {
            crate::store::open_ahead();
        }
    }

    /// Opens the chosen store.
    pub(crate) async fn open(&self, inventory: Option<&Inventory>) -> Result<Box<dyn SecretStore>> {
        match self.chosen(inventory)? {
            StoreKind::Vault => {
                let store = VaultStore::open(&self.vault_options(inventory)).await?;
                Ok(Box::new(store))
            }
            _ => {
                let service = config::keyring_service()?;
                let keyring = Keyring::open(&service, self.keyring_timeout)
                    .await
                    .map_err(Error::keyring_unavailable)?;
                Ok(Box::new(keyring))
            }
        }
    }
}

/// An inventory's vault settings with a store that is not the vault store are a usage
/// error (exit 2), as the flags are; `chooser` (`--store`, `SIPROT_STORE`) overriding the
/// inventory's own `store` is warned about, once per process.
fn check_inventory_store(
    inventory: &Inventory,
    kind: StoreKind,
    chooser: Option<&'static str>,
) -> Result<()> {
    let shown = inventory.path.display();
    let overridden = chooser.zip(inventory.store).filter(|(_, own)| *own != kind);
    let why = match overridden {
        Some((chooser, own)) => format!("{chooser} {kind} overrides its store = \"{own}\""),
        None => format!(
            "choose it with store = \"vault\" in {shown}, --store vault or {STORE_VAR}=vault"
        ),
    };
    if kind != StoreKind::Vault {
        let keys: Vec<&str> = [
            inventory.vault_mount.as_ref().map(|_| "vault_mount"),
            inventory.secret_prefix.as_ref().map(|_| "secret_prefix"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !keys.is_empty() {
            return Err(Error::Usage(format!(
                "{shown} sets {}, which {} for the vault store, but the store is {kind} ({why})",
                keys.join(" and "),
                if keys.len() == 1 { "is" } else { "are" }
            )));
        }
    }
    if let Some((chooser, own)) = overridden {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            output::warning(&format!(
                "{chooser} {kind} overrides store = \"{own}\" of the inventory {shown}"
            ));
        }
    }
    Ok(())
}

impl CredentialArgs {
    /// The provider and the checked credential (ids a URL path or an entry name could
    /// not hold are refused, exit 2).
    pub(crate) fn resolve(&self) -> Result<(ProviderKind, CredentialRef)> {
        let kind = self.provider.provider;
        Ok((
            kind,
            CredentialRef::new(kind, &self.id, &self.part.pairs())?,
        ))
    }
}

impl NetArgs {
    pub(crate) fn connect_options(&self) -> ConnectOptions {
        ConnectOptions {
            http: self.http.config(),
        }
    }

    /// The entry name of `credential` in the command's account of `kind`, and a client
    /// for that account ([`connect`]; the store is `store`, for secrets `login` kept).
    pub(crate) fn connect_to(
        &self,
        kind: ProviderKind,
        credential: &CredentialRef,
        store: &StoreArgs,
    ) -> Result<(EntryName, Box<dyn Provider>)> {
        let settings = Accounts::load(self.base_url.clone())?.settings(kind, None)?;
        let entry = kind.entry_name(credential, &settings)?;
        let provider = block_on(connect(settings, &self.connect_options(), store, None))?;
        Ok((entry, provider))
    }
}

/// A client for `settings`' account. Secrets the environment lacks are read from the
/// store first (`siprot login`'s entries); a store that cannot be opened leaves them
/// missing, and the missing-setting error (exit 4) says why. The store is closed again:
/// the client outlives this runtime, the store's connections would not.
pub(crate) async fn connect(
    mut settings: Settings,
    options: &ConnectOptions,
    store: &StoreArgs,
    inventory: Option<&Inventory>,
) -> Result<Box<dyn Provider>> {
    if settings.lacks_secrets() {
        match store.open(inventory).await {
            Ok(store) => settings.load_secrets(store.as_ref()).await?,
            Err(error) => settings.store_unavailable(format!("the store is unusable: {error}")),
        }
    }
    settings.provider().connect(&settings, options)
}

impl HttpArgs {
    pub(crate) fn config(&self) -> HttpConfig {
        HttpConfig {
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            retry: RetryConfig {
                max_retries: self.retries,
                deadline: self.deadline,
                ..RetryConfig::default()
            },
            ..HttpConfig::default()
        }
    }
}
