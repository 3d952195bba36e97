//! A provider account's settings and where each one comes from.
//!
//! Every provider declares its settings once ([`Spec`]: a key such as `account_sid`, the
//! environment variable it is also read from, whether it is a secret). For one provider
//! and one profile they are resolved in this order, first found wins:
//!
//! 1. the command line (`--base-url` only);
//! 2. the environment variable;
//! 3. the profile's table `[<provider>.<profile>]` in the config file
//!    ([`crate::profiles`]), which holds plain settings only;
//! 4. the store (`siprot login`), which holds secrets only, as the entry
//!    `login/<provider>/<profile>/<key>` ([`login_entry`]).
//!
//! Plain settings and the environment are resolved at once ([`Settings::resolve`]); the
//! store is read only for secrets still missing ([`Settings::load_secrets`]), so a command
//! whose secrets all come from the environment never opens it for them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use secrecy::SecretString;
use serde::Serialize;
use url::Url;

use crate::config;
use crate::error::{Error, Result};
use crate::profiles::{ProfileName, Profiles};
use crate::providers::{CredentialRef, ProviderKind};
use crate::store::{EntryName, SecretStore, Slot, StoreKind};

/// One setting a provider reads.
#[derive(Debug)]
pub struct Spec {
    /// Its key in a profile and in `config show` (`account_sid`).
    pub key: &'static str,
    /// The environment variable that sets it (`EXOTEL_ACCOUNT_SID`).
    pub var: &'static str,
    /// A secret (API key or token): never in the config file, kept by `siprot login`.
    pub secret: bool,
    /// Whether a rotation needs it (a base URL or a region has a default).
    pub required: bool,
    /// What it is and where to find it, for the message when it is missing.
    pub hint: &'static str,
}

/// The key every provider's base URL has in its [`Spec`] list.
pub const BASE_URL: &str = "base_url";

impl Spec {
    /// The base URL setting, read from `var`; not required (each provider has a default).
    pub const fn base_url(var: &'static str) -> Self {
        Self {
            key: BASE_URL,
            var,
            secret: false,
            required: false,
            hint: "the API's base URL",
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The command line (`--base-url`).
    Flag,
    /// Its environment variable.
    Environment,
    /// The profile's table in the config file.
    Profile,
    /// The keyring (`siprot login`).
    Keyring,
    /// The vault store (`siprot login --store vault`).
    Vault,
    /// The provider's default (a base URL).
    Default,
    /// Nowhere.
    Missing,
}

impl Source {
    fn store(kind: StoreKind) -> Self {
        match kind {
            StoreKind::Vault => Source::Vault,
            _ => Source::Keyring,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Environment => "environment",
            Source::Profile => "profile",
            Source::Keyring => "keyring",
            Source::Vault => "vault",
            Source::Default => "default",
            Source::Missing => "missing",
        }
    }
}

#[derive(Clone)]
enum Value {
    Plain(String),
    Secret(SecretString),
}

/// One resolved setting.
#[derive(Clone)]
struct Resolved {
    spec: &'static Spec,
    value: Option<Value>,
    source: Source,
}

/// One provider account's settings (one provider, one profile), with their sources.
#[derive(Clone)]
pub struct Settings {
    kind: ProviderKind,
    profile: ProfileName,
    /// The config file, for messages (`None` when there is no config directory).
    config_path: Option<PathBuf>,
    values: Vec<Resolved>,
    /// Why the store could not be asked for the secrets still missing.
    store_note: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("provider", &self.kind.name())
            .field("profile", &self.profile.as_str())
            .finish_non_exhaustive()
    }
}

/// The store entry `siprot login` keeps a provider's secret `key` in, for `profile`.
pub fn login_entry(kind: ProviderKind, profile: &ProfileName, key: &str) -> EntryName {
    EntryName::new(format!("login/{}/{}/{key}", kind.name(), profile.as_str()))
}

impl Settings {
    /// Resolves `kind`'s settings for `profile` from `base_url_flag`, the environment and
    /// the config file; secrets not in the environment stay missing until
    /// [`Settings::load_secrets`].
    pub fn resolve(
        kind: ProviderKind,
        profile: &ProfileName,
        profiles: &Profiles,
        base_url_flag: Option<&str>,
    ) -> Result<Self> {
        let table = profiles.table(kind, profile);
        let mut values = Vec::new();
        for spec in kind.registration().settings {
            let flag = (spec.key == BASE_URL).then_some(base_url_flag).flatten();
            let (value, source) = if let Some(flag) = flag {
                (Some(Value::Plain(flag.to_owned())), Source::Flag)
            } else if let Some(env) = config::optional(spec.var)? {
                if let Some(shadowed) = table.and_then(|t| t.get(spec.key))
                    && profile.is_chosen()
                    && shadowed != &env
                {
                    crate::output::warning(&format!(
                        "{} from the environment overrides {} of profile {}.{}",
                        spec.var,
                        spec.key,
                        kind.name(),
                        profile.as_str()
                    ));
                }
                let value = if spec.secret {
                    Value::Secret(SecretString::from(env))
                } else {
                    Value::Plain(env)
                };
                (Some(value), Source::Environment)
            } else if let Some(plain) = table.and_then(|t| t.get(spec.key)).filter(|_| !spec.secret)
            {
                (Some(Value::Plain(plain.clone())), Source::Profile)
            } else {
                (None, Source::Missing)
            };
            values.push(Resolved {
                spec,
                value,
                source,
            });
        }
        Ok(Self {
            kind,
            profile: profile.clone(),
            config_path: profiles.path().map(ToOwned::to_owned),
            values,
            store_note: None,
        })
    }

    /// Settings given as `(key, value)` pairs (plain ones; keys the provider lacks are
    /// ignored), for unit tests.
    #[cfg(test)]
    pub fn for_tests(kind: ProviderKind, pairs: &[(&str, &str)]) -> Self {
        let values = kind
            .registration()
            .settings
            .iter()
            .map(|spec| {
                let value = pairs
                    .iter()
                    .find(|(key, _)| *key == spec.key)
                    .map(|(_, value)| Value::Plain((*value).to_owned()));
                let source = if value.is_some() {
                    Source::Profile
                } else {
                    Source::Missing
                };
                Resolved {
                    spec,
                    value,
                    source,
                }
            })
            .collect();
        Self {
            kind,
            profile: ProfileName::default_profile(),
            config_path: None,
            values,
            store_note: None,
        }
    }

    /// Whether a secret is still missing (and [`Settings::load_secrets`] would look for it).
    pub fn lacks_secrets(&self) -> bool {
        self.values
            .iter()
            .any(|r| r.spec.secret && r.value.is_none() && self.uses(r.spec))
    }

    /// Whether the account uses this secret setting (Twilio's Auth Token or its API key
    /// secret, not both: [`crate::providers::LoginSecrets`]).
    fn uses(&self, spec: &Spec) -> bool {
        self.kind.registration().login.uses(spec.key, self)
    }

    /// Reads the secrets still missing from `store` (`siprot login`'s entries); one not
    /// there stays missing. A store that fails to answer is an error (exit 8): nothing is
    /// sent with half the account's secrets.
    pub async fn load_secrets(&mut self, store: &dyn SecretStore) -> Result<()> {
        for index in 0..self.values.len() {
            let resolved = &self.values[index];
            if !resolved.spec.secret || resolved.value.is_some() || !self.uses(resolved.spec) {
                continue;
            }
            let entry = login_entry(self.kind, &self.profile, resolved.spec.key);
            match store.read(&entry, Slot::Current).await {
                Ok(Some(stored)) => {
                    if let Some(secret) = stored.secret {
                        self.values[index].value = Some(Value::Secret(secret));
                        self.values[index].source = Source::store(store.kind());
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(Error::keyring_unavailable(e)),
            }
        }
        Ok(())
    }

    /// Notes that the store was not asked for missing secrets, and why.
    pub fn store_unavailable(&mut self, why: String) {
        self.store_note = Some(why);
    }

    pub fn provider(&self) -> ProviderKind {
        self.kind
    }

    pub fn profile(&self) -> &ProfileName {
        &self.profile
    }

    fn find(&self, key: &str) -> Result<&Resolved> {
        self.values
            .iter()
            .find(|r| r.spec.key == key)
            .ok_or_else(|| Error::Config(format!("{} has no setting '{key}'", self.kind.name())))
    }

    /// A plain setting, if it is set (an empty value counts as unset).
    pub fn optional(&self, key: &str) -> Result<Option<&str>> {
        Ok(match &self.find(key)?.value {
            Some(Value::Plain(value)) if !value.trim().is_empty() => Some(value.as_str()),
            _ => None,
        })
    }

    /// A plain setting that must be set.
    pub fn required(&self, key: &str) -> Result<&str> {
        match self.optional(key)? {
            Some(value) => Ok(value),
            None => Err(self.missing(self.find(key)?.spec)),
        }
    }

    /// A secret that must be set.
    pub fn secret(&self, key: &str) -> Result<SecretString> {
        let resolved = self.find(key)?;
        match &resolved.value {
            Some(Value::Secret(secret))
                if !secrecy::ExposeSecret::expose_secret(secret)
                    .trim()
                    .is_empty() =>
            {
                Ok(secret.clone())
            }
            _ => Err(self.missing(resolved.spec)),
        }
    }

    /// The base URL: `--base-url`, the environment, the profile, else `default`; an unsafe
    /// one is refused naming where it came from.
    pub fn base_url(&self, default: &str) -> Result<Url> {
        let resolved = self.find(BASE_URL)?;
        match (&resolved.value, resolved.source) {
            (Some(Value::Plain(url)), Source::Flag) => config::parse_base_url(url, "--base-url"),
            (Some(Value::Plain(url)), Source::Profile) => config::parse_base_url(
                url,
                &format!(
                    "base_url of profile {}.{}",
                    self.kind.name(),
                    self.profile.as_str()
                ),
            ),
            (Some(Value::Plain(url)), _) => config::parse_base_url(url, resolved.spec.var),
            _ => config::parse_base_url(default, resolved.spec.var),
        }
    }

    /// The error for a missing setting: its variable, what it is, and the other places it
    /// could come from.
    fn missing(&self, spec: &Spec) -> Error {
        let profile = self.profile.as_str();
        let provider = self.kind.name();
        let elsewhere = if spec.secret {
            let login = self.profile.login_command(self.kind);
            match &self.store_note {
                Some(note) => format!("or run `{login}`; {note}"),
                None => format!("or run `{login}`"),
            }
        } else {
            match &self.config_path {
                Some(path) => format!(
                    "or set {} in [{provider}.{profile}] of {}",
                    spec.key,
                    path.display()
                ),
                None => format!("or set {} in a profile", spec.key),
            }
        };
        Error::MissingSetting {
            var: spec.var,
            hint: format!("{}; {elsewhere}", spec.hint),
        }
    }

    /// Each setting with its source, for `config show` (secrets only as whether they are
    /// set); an unset setting with a default (base URL, region) is `default`.
    pub fn shown(&self) -> Vec<Shown> {
        self.values
            .iter()
            .map(|r| {
                let (value, source) = match &r.value {
                    Some(Value::Plain(value)) => (Some(value.clone()), r.source),
                    Some(Value::Secret(_)) => (None, r.source),
                    None if !r.spec.required => (None, Source::Default),
                    None => (None, Source::Missing),
                };
                let mut shown = Shown {
                    key: r.spec.key,
                    var: r.spec.var,
                    secret: r.spec.secret,
                    value,
                    source,
                    refused: None,
                };
                if r.spec.key == BASE_URL {
                    shown.refuse_unsafe_url();
                }
                shown
            })
            .collect()
    }
}

/// One setting as `config show` shows it: a secret's value never.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub key: &'static str,
    pub var: &'static str,
    pub secret: bool,
    /// The value of a plain setting; always `None` for a secret. A refused base URL's
    /// user info, query and fragment are masked (`***`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub source: Source,
    /// Why a command would refuse the value (a base URL with user info, a query, plain
    /// `http://` to another host ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl Shown {
    /// A base URL every command would refuse is shown as refused, without the parts
    /// that may hold a secret ([`config::masked_base_url`]).
    fn refuse_unsafe_url(&mut self) {
        let Some(raw) = &self.value else {
            return;
        };
        if let Err(why) = config::check_base_url(raw) {
            self.value = config::masked_base_url(raw);
            self.refused = Some(why);
        }
    }
}

/// Every environment variable any provider reads a secret from.
pub fn secret_vars() -> impl Iterator<Item = &'static str> {
    crate::providers::ALL.iter().flat_map(|kind| {
        kind.registration()
            .settings
            .iter()
            .filter(|spec| spec.secret)
            .map(|spec| spec.var)
    })
}

/// The provider accounts one command uses: the config file read once, the profile chosen
/// for the command (`--profile`, `SIPROT_PROFILE`, `default`) and `--base-url`. Each
/// account's settings are resolved once (so that a fleet of a thousand entries neither
/// resolves them a thousand times nor warns a thousand times about an overriding
/// variable), then handed out as copies.
#[derive(Debug)]
pub struct Accounts {
    profiles: Profiles,
    profile: ProfileName,
    base_url: Option<String>,
    resolved: Mutex<HashMap<(&'static str, ProfileName), Settings>>,
}

impl Accounts {
    /// Reads the config file and the chosen profile; `base_url` is `--base-url`.
    pub fn load(base_url: Option<String>) -> Result<Self> {
        Ok(Self {
            profiles: Profiles::load()?,
            profile: ProfileName::chosen(None)?,
            base_url,
            resolved: Mutex::default(),
        })
    }

    /// Accounts whose default profile of every provider holds the plain `pairs`, for unit
    /// tests.
    #[cfg(test)]
    pub fn for_tests(pairs: &[(&str, &str)]) -> Self {
        Self {
            profiles: Profiles::for_tests(pairs),
            profile: ProfileName::default_profile(),
            base_url: None,
            resolved: Mutex::default(),
        }
    }

    /// The profile of the command (an entry may name another).
    pub fn profile(&self) -> &ProfileName {
        &self.profile
    }

    pub fn profiles(&self) -> &Profiles {
        &self.profiles
    }

    /// `kind`'s settings in `profile` (else the command's), secrets from the environment
    /// only: enough for entry names.
    pub fn settings(&self, kind: ProviderKind, profile: Option<&ProfileName>) -> Result<Settings> {
        let profile = profile.unwrap_or(&self.profile);
        let key = (kind.name(), profile.clone());
        let mut resolved = self
            .resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(settings) = resolved.get(&key) {
            return Ok(settings.clone());
        }
        let settings = Settings::resolve(kind, profile, &self.profiles, self.base_url.as_deref())?;
        resolved.insert(key, settings.clone());
        Ok(settings)
    }

    /// The entry name of `credential` at `kind` in `profile` (else the command's).
    pub fn entry_name(
        &self,
        kind: ProviderKind,
        credential: &CredentialRef,
        profile: Option<&ProfileName>,
    ) -> Result<EntryName> {
        kind.entry_name(credential, &self.settings(kind, profile)?)
    }

    /// `kind`'s settings with the secrets the environment lacks read from `store` (where
    /// `siprot login` keeps them): enough to connect.
    pub async fn with_secrets(
        &self,
        kind: ProviderKind,
        profile: Option<&ProfileName>,
        store: &dyn SecretStore,
    ) -> Result<Settings> {
        let mut settings = self.settings(kind, profile)?;
        if settings.lacks_secrets() {
            settings.load_secrets(store).await?;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> ProviderKind {
        ProviderKind::from_name(name).unwrap()
    }

    #[test]
    fn a_missing_setting_names_its_variable_and_where_else_it_could_come_from() {
        let mut settings = Settings::for_tests(kind("vobiz"), &[]);
        settings.profile = ProfileName::parse("reseller", "t").unwrap();
        settings.config_path = Some(PathBuf::from("/home/u/.config/siprot/config.toml"));
        let plain = settings.required("auth_id").unwrap_err().to_string();
        assert!(plain.contains("VOBIZ_AUTH_ID is not set"), "{plain}");
        assert!(
            plain.contains("set auth_id in [vobiz.reseller] of /home/u/.config/siprot/config.toml"),
            "{plain}"
        );
        settings.store_unavailable("the store is unusable: no D-Bus session bus".into());
        let secret = settings.secret("auth_token").unwrap_err();
        assert_eq!(secret.exit_code().code(), 4);
        let secret = secret.to_string();
        assert!(secret.contains("VOBIZ_AUTH_TOKEN is not set"), "{secret}");
        assert!(
            secret.contains("siprot login --provider vobiz --profile reseller"),
            "{secret}"
        );
        assert!(secret.contains("no D-Bus session bus"), "{secret}");
        assert!(!secret.contains('\n'));
    }

    #[test]
    fn shown_settings_carry_plain_values_and_never_a_secret() {
        let mut settings = Settings::for_tests(kind("exotel"), &[("account_sid", "acme_in")]);
        settings.values[1].value = Some(Value::Secret(SecretString::from("ex-key-SECRET")));
        settings.values[1].source = Source::Keyring;
        let shown = settings.shown();
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
        let by_key = |key: &str| shown.iter().find(|s| s.key == key).unwrap();
        assert_eq!(by_key("account_sid").value.as_deref(), Some("acme_in"));
        assert_eq!(by_key("api_key").source, Source::Keyring);
        assert_eq!(by_key("api_token").source, Source::Missing);
        // Not required: their defaults apply.
        assert_eq!(by_key("region").source, Source::Default);
        assert_eq!(by_key("base_url").source, Source::Default);
        assert!(format!("{settings:?}").contains("exotel"));
        assert!(!format!("{settings:?}").contains("SECRET"));
    }

    #[test]
    fn a_base_url_a_rotation_would_refuse_is_shown_refused_without_its_secret_parts() {
        let raw = "https://user:SECRET1@api.example.com/v1?key=SECRET2";
        let settings = Settings::for_tests(kind("telepath"), &[("base_url", raw)]);
        let shown = settings.shown();
        let base = shown.iter().find(|s| s.key == BASE_URL).unwrap();
        assert_eq!(
            base.value.as_deref(),
            Some("https://***@api.example.com/v1?***")
        );
        assert!(base.refused.as_deref().unwrap().contains("user info"));
        let json = serde_json::to_string(&shown).unwrap();
        assert!(!json.contains("SECRET"), "{json}");
        let good = Settings::for_tests(kind("telepath"), &[("base_url", "https://a.example/v1")]);
        let shown = good.shown();
        let base = shown.iter().find(|s| s.key == BASE_URL).unwrap();
        assert_eq!(base.value.as_deref(), Some("https://a.example/v1"));
        assert!(base.refused.is_none());
    }

    #[test]
    fn every_provider_declares_its_base_url_and_each_key_once() {
        for kind in crate::providers::ALL {
            let specs = kind.registration().settings;
            assert!(specs.iter().any(|s| s.key == BASE_URL), "{kind}");
            for spec in specs {
                assert_eq!(
                    specs.iter().filter(|s| s.key == spec.key).count(),
                    1,
                    "{kind}: {}",
                    spec.key
                );
            }
        }
        assert!(secret_vars().any(|var| var == "TELEPATH_API_KEY"));
        assert!(!secret_vars().any(|var| var == "VOBIZ_AUTH_ID"));
    }
}
