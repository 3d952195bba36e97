//! `siprot login` and `siprot logout`: keep a provider's API secrets in the store (the
//! keyring by default) as the entries `login/<provider>/<profile>/<key>`, and remove them.
//! Secrets are typed without echo on a terminal or read from standard input
//! (`--with-token`), never taken as arguments; [`crate::settings`] reads them back
//! whenever the environment does not set them.

use std::io::IsTerminal;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::cli::{LoginArgs, LogoutArgs};
use crate::commands::block_on;
use crate::error::{Error, ExitCode, Result, exit};
use crate::input;
use crate::output;
use crate::profiles::ProfileName;
use crate::providers::{LoginSecrets, ProviderKind};
use crate::settings::{Accounts, Spec, login_entry};
use crate::store::{Facts, Precondition, Record, SecretStore, Slot};

/// The most bytes read from standard input for all of one provider's secrets.
const MAX_INPUT: usize = 16 * 1024;

/// What `login --json` prints.
#[derive(Serialize)]
struct LoginJson<'a> {
    status: &'static str,
    provider: &'static str,
    profile: &'a str,
    store: &'static str,
    /// The store entries written (names only).
    entries: Vec<String>,
    /// Whether the provider confirmed the secrets (its documented API has no read-only
    /// request to do so with).
    checked: bool,
    /// Settings the account still lacks before a rotation can use it.
    missing: Vec<&'static str>,
}

pub fn login(args: LoginArgs) -> Result<ExitCode> {
    let kind = args.provider.provider;
    let profile = ProfileName::chosen(None)?;
    let specs: Vec<&'static Spec> = login_secrets(kind, &profile)?;
    let values = if args.with_token {
        read_stdin(kind, &specs)?
    } else if std::io::stdin().is_terminal() {
        prompt(kind, &specs)?
    } else {
        return Err(Error::Usage(format!(
            "standard input is not a terminal: pass --with-token to read {} from it, one per \
             line",
            described(kind, &specs)
        )));
    };
    let (store_kind, entries) = block_on(async {
        let store = args.store.open(None).await?;
        let mut written = Vec::new();
        for (spec, value) in specs.iter().zip(&values) {
            let entry = login_entry(kind, &profile, spec.key);
            write(store.as_ref(), kind, &entry, value).await?;
            written.push(entry.current().to_owned());
        }
        Ok((store.kind(), written))
    })?;
    for spec in &specs {
        if std::env::var_os(spec.var).is_some() {
            output::warning(&format!(
                "{} is set in the environment and wins over what was just stored: unset it \
                 to use the login",
                spec.var
            ));
        }
    }
    let missing = missing_plain(kind, &profile);
    let store_noun = store_kind.noun();
    if args.json {
        output::json(&LoginJson {
            status: "stored",
            provider: kind.name(),
            profile: profile.as_str(),
            store: store_kind.name(),
            entries,
            checked: false,
            missing: missing.iter().map(|spec| spec.var).collect(),
        })?;
    } else {
        output::line(&format!(
            "stored {} for profile '{}' in the {store_noun} ({})",
            described(kind, &specs),
            profile.as_str(),
            entries.join(", ")
        ))?;
        output::line(&format!(
            "not checked: {kind}'s documented API has no read-only request; the first \
             rotation (or `siprot rotate --dry-run`) uses them"
        ))?;
        for spec in &missing {
            output::line(&format!(
                "before rotating, set {} (export {} or put `{} = \"...\"` in [{}.{}] of {}): {}",
                spec.key,
                spec.var,
                spec.key,
                kind.name(),
                profile.as_str(),
                crate::profiles::Profiles::path_here()?
                    .map_or_else(|| "the config file".to_owned(), |p| p.display().to_string()),
                spec.hint
            ))?;
        }
    }
    Ok(exit::SUCCESS)
}

/// What `logout --json` prints.
#[derive(Serialize)]
struct LogoutJson<'a> {
    status: &'static str,
    provider: &'static str,
    profile: &'a str,
    store: &'static str,
    /// The store entries removed (names only); empty when nothing was kept.
    removed: Vec<String>,
}

pub fn logout(args: LogoutArgs) -> Result<ExitCode> {
    let kind = args.provider.provider;
    let profile = ProfileName::chosen(None)?;
    let (store_kind, removed) = block_on(async {
        let store = args.store.open(None).await?;
        let mut removed = Vec::new();
        for spec in secrets_of(kind) {
            let entry = login_entry(kind, &profile, spec.key);
            if store
                .delete(&entry, Slot::Current)
                .await
                .map_err(Error::keyring_unavailable)?
            {
                removed.push(entry.current().to_owned());
            }
        }
        Ok((store.kind(), removed))
    })?;
    if args.json {
        output::json(&LogoutJson {
            status: if removed.is_empty() {
                "nothing-stored"
            } else {
                "removed"
            },
            provider: kind.name(),
            profile: profile.as_str(),
            store: store_kind.name(),
            removed,
        })?;
    } else if removed.is_empty() {
        output::line(&format!(
            "nothing was stored for {kind} profile '{}' in the {}",
            profile.as_str(),
            store_kind.noun()
        ))?;
    } else {
        output::line(&format!(
            "removed {} from the {}",
            removed.join(", "),
            store_kind.noun()
        ))?;
    }
    Ok(exit::SUCCESS)
}

/// The secret settings `login` keeps for `kind` in `profile`, in the order they are asked
/// for: all of them, or the one its [`LoginSecrets`] choice names for the account's plain
/// settings (Twilio's API key secret when an API key SID is configured, else the Auth Token).
fn login_secrets(kind: ProviderKind, profile: &ProfileName) -> Result<Vec<&'static Spec>> {
    let choice = kind.registration().login;
    if choice == LoginSecrets::All {
        return Ok(secrets_of(kind));
    }
    let settings = Accounts::load(None)?.settings(kind, Some(profile))?;
    Ok(secrets_of(kind)
        .into_iter()
        .filter(|spec| choice.uses(spec.key, &settings))
        .collect())
}

/// The provider's secret settings, in the order they are asked for (`logout` removes
/// them all).
fn secrets_of(kind: ProviderKind) -> Vec<&'static Spec> {
    kind.registration().secrets()
}

/// `<provider>'s api_key`, `<provider>'s api_key and api_token`.
fn described(kind: ProviderKind, specs: &[&Spec]) -> String {
    let keys: Vec<&str> = specs.iter().map(|spec| spec.key).collect();
    format!("{kind}'s {}", keys.join(" and "))
}

/// Asks for each secret on the terminal, without echo.
fn prompt(kind: ProviderKind, specs: &[&Spec]) -> Result<Vec<SecretString>> {
    specs
        .iter()
        .map(|spec| {
            let typed = input::prompt_secret(&format!("{kind} {} ({}): ", spec.key, spec.hint))?;
            checked(spec, typed.expose_secret())
        })
        .collect()
}

/// Reads one line per secret from standard input.
fn read_stdin(kind: ProviderKind, specs: &[&Spec]) -> Result<Vec<SecretString>> {
    parse_lines(kind, specs, &input::read_stdin(MAX_INPUT)?)
}

/// Splits input into exactly one line per secret (a final line ending is optional;
/// `\r\n` is accepted).
fn parse_lines(kind: ProviderKind, specs: &[&Spec], bytes: &[u8]) -> Result<Vec<SecretString>> {
    if bytes.len() > MAX_INPUT {
        return Err(Error::Usage(format!(
            "standard input is longer than {MAX_INPUT} bytes"
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::Usage("standard input is not valid UTF-8".into()))?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    let lines: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .collect()
    };
    if lines.len() != specs.len() {
        return Err(Error::Usage(format!(
            "--with-token reads {} line(s) from standard input ({}, in that order), but it \
             had {}",
            specs.len(),
            described(kind, specs),
            lines.len()
        )));
    }
    specs
        .iter()
        .zip(lines)
        .map(|(spec, line)| checked(spec, line))
        .collect()
}

/// A secret as typed: not blank, no control character, at most 4096 bytes; the message
/// never repeats it.
fn checked(spec: &Spec, value: &str) -> Result<SecretString> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::Usage(format!("the {} is empty", spec.key)));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::Usage(format!(
            "the {} contains a control character",
            spec.key
        )));
    }
    if value.len() > 4096 {
        return Err(Error::Usage(format!(
            "the {} is longer than 4096 bytes",
            spec.key
        )));
    }
    Ok(SecretString::from(value))
}

/// Writes one secret and reads it back.
async fn write(
    store: &dyn SecretStore,
    kind: ProviderKind,
    entry: &crate::store::EntryName,
    value: &SecretString,
) -> Result<()> {
    let facts = Facts {
        provider: kind.name().to_owned(),
        credential: "login".to_owned(),
        ..Facts::default()
    };
    let record = Record {
        secret: Some(value),
        facts: &facts,
    };
    store
        .write(entry, Slot::Current, record, Precondition::Any)
        .await
        .map_err(Error::keyring_unavailable)?;
    let back = store
        .read(entry, Slot::Current)
        .await
        .map_err(Error::keyring_unavailable)?
        .and_then(|stored| stored.secret);
    if back.is_none_or(|back| back.expose_secret() != value.expose_secret()) {
        return Err(Error::KeyringUnavailable(format!(
            "{} did not read back as written",
            store.locate(entry, Slot::Current)
        )));
    }
    Ok(())
}

/// The plain settings (not base URLs) the account still lacks in `profile`.
fn missing_plain(kind: ProviderKind, profile: &ProfileName) -> Vec<&'static Spec> {
    let Ok(accounts) = Accounts::load(None) else {
        return Vec::new();
    };
    let Ok(settings) = accounts.settings(kind, Some(profile)) else {
        return Vec::new();
    };
    kind.registration()
        .settings
        .iter()
        .filter(|spec| !spec.secret && spec.required)
        .filter(|spec| settings.required(spec.key).is_err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exotel() -> (ProviderKind, Vec<&'static Spec>) {
        let kind = ProviderKind::from_name("exotel").unwrap();
        (kind, secrets_of(kind))
    }

    #[test]
    fn one_line_per_secret_in_order() {
        let (kind, specs) = exotel();
        for input in [
            &b"key-1\ntoken-2\n"[..],
            b"key-1\r\ntoken-2",
            b"key-1\ntoken-2",
        ] {
            let values = parse_lines(kind, &specs, input).unwrap();
            assert_eq!(values[0].expose_secret(), "key-1");
            assert_eq!(values[1].expose_secret(), "token-2");
        }
    }

    #[test]
    fn wrong_line_counts_and_bad_values_are_usage_errors_that_never_repeat_the_input() {
        let (kind, specs) = exotel();
        for input in [
            &b""[..],
            b"\n",
            b"only-one-SECRET\n",
            b"a-SECRET\nb-SECRET\nc-SECRET\n",
            b"a-SECRET\n\n",
            b"a-\x1bSECRET\nb\n",
        ] {
            let error = parse_lines(kind, &specs, input).unwrap_err();
            assert_eq!(error.exit_code().code(), 2);
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
    }

    #[test]
    fn the_store_entries_are_named_by_provider_profile_and_key() {
        let (kind, _) = exotel();
        let profile = ProfileName::parse("mumbai", "t").unwrap();
        assert_eq!(
            login_entry(kind, &profile, "api_token").current(),
            "login/exotel/mumbai/api_token"
        );
        // `config` keeps its name for the variable list.
        assert!(crate::config::secret_vars().contains(&"EXOTEL_API_TOKEN"));
    }
}
