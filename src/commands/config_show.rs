//! `siprot config show`: each provider's settings in the chosen profile and where each
//! one comes from (flag, environment, profile, keyring or vault, default, missing). Plain
//! values are shown; a secret only as set or missing, never its value. A base URL that
//! commands refuse is shown as refused, with why, and its user info, query and fragment
//! masked. Secrets the
//! environment lacks are looked up in the store (read, never printed); a store that
//! cannot be opened is said once and leaves them `missing`.

use serde::Serialize;

use crate::cli::ConfigShowArgs;
use crate::commands::block_on;
use crate::error::{ExitCode, Result, exit};
use crate::output;
use crate::providers::{self, ProviderKind};
use crate::settings::{Accounts, Settings, Shown, Source};

#[derive(Serialize)]
struct ConfigJson<'a> {
    /// The config file's path (it may not exist).
    config_file: Option<String>,
    /// The profile this command used.
    profile: &'a str,
    /// Why the store could not be asked for secrets, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    store_error: Option<String>,
    providers: Vec<ProviderJson>,
}

#[derive(Serialize)]
struct ProviderJson {
    provider: &'static str,
    /// The profiles the config file names for this provider.
    profiles: Vec<String>,
    settings: Vec<Shown>,
}

pub fn run(args: ConfigShowArgs) -> Result<ExitCode> {
    let accounts = Accounts::load(args.base_url.clone())?;
    let kinds: Vec<ProviderKind> = match args.provider {
        Some(kind) => vec![kind],
        None => providers::ALL.to_vec(),
    };
    let mut all: Vec<Settings> = kinds
        .iter()
        .map(|&kind| accounts.settings(kind, None))
        .collect::<Result<_>>()?;
    let mut store_error = None;
    if all.iter().any(Settings::lacks_secrets) {
        let loaded = block_on(async {
            let store = args.store.open(None).await?;
            for settings in &mut all {
                if settings.lacks_secrets() {
                    settings.load_secrets(store.as_ref()).await?;
                }
            }
            Ok(())
        });
        if let Err(e) = loaded {
            store_error = Some(e.to_string());
        }
    }
    let config_file = accounts.profiles().path().map(|p| p.display().to_string());
    if args.json {
        output::json(&ConfigJson {
            config_file,
            profile: accounts.profile().as_str(),
            store_error,
            providers: all
                .iter()
                .map(|settings| ProviderJson {
                    provider: settings.provider().name(),
                    profiles: accounts.profiles().names(settings.provider()),
                    settings: settings.shown(),
                })
                .collect(),
        })?;
        return Ok(exit::SUCCESS);
    }
    output::line(&format!(
        "config file: {}",
        config_file
            .as_deref()
            .unwrap_or("none (no config directory)")
    ))?;
    output::line(&format!(
        "profile: {}{}",
        accounts.profile().as_str(),
        if accounts.profile().is_chosen() {
            ""
        } else {
            " (none chosen with --profile or SIPROT_PROFILE)"
        }
    ))?;
    if let Some(error) = &store_error {
        output::line(&format!("store: not read ({error})"))?;
    }
    for settings in &all {
        let names = accounts.profiles().names(settings.provider());
        output::line(&format!(
            "{} (profiles in the file: {})",
            settings.provider(),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ))?;
        for shown in settings.shown() {
            output::line(&format!("  {}", line(&shown)))?;
        }
    }
    Ok(exit::SUCCESS)
}

/// `  account_sid  EXOTEL_ACCOUNT_SID  profile  acme_in`; a value a command would refuse
/// ends in `(refused: why)`.
fn line(shown: &Shown) -> String {
    let mut value = match (&shown.value, shown.secret, shown.source) {
        (_, true, Source::Missing) => "(secret, not set)".to_owned(),
        (_, true, _) => "(secret, set)".to_owned(),
        (Some(value), false, _) => value.escape_debug().to_string(),
        (None, false, _) if shown.refused.is_some() => "(not shown)".to_owned(),
        (None, false, Source::Default) => "(the provider's default)".to_owned(),
        (None, false, _) => "(not set)".to_owned(),
    };
    if let Some(why) = &shown.refused {
        value.push_str(&format!(" (refused: {why})"));
    }
    format!(
        "{:<12} {:<26} {:<11} {value}",
        shown.key,
        shown.var,
        shown.source.name()
    )
}
