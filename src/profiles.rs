//! Profiles: several accounts per provider, in `$XDG_CONFIG_HOME/siprot/config.toml`.
//!
//! ```toml
//! [vobiz.main]
//! auth_id = "MA_MAIN0001"
//!
//! [vobiz.reseller]
//! auth_id = "MA_RESELL01"
//!
//! [exotel.mumbai]
//! account_sid = "acme_in"
//! region = "mumbai"
//! ```
//!
//! A table `[<provider>.<profile>]` holds that provider's plain settings (the keys of its
//! [`crate::settings::Spec`] list). The file never holds a secret: a file with an API key,
//! token or password in it is refused as a whole (exit 4), each such line named, with the
//! `siprot login` command that keeps the secret in the keyring instead. Every mistake of
//! the file is reported at once, `file:line` each. Only a regular file of at most
//! [`MAX_SIZE`] bytes is read, and only when nobody else may change it or its
//! directories ([`crate::trust`]): a `base_url` planted there would receive the API keys.
//!
//! Which profile a command uses: an inventory entry's `profile`, else `--profile`, else
//! `SIPROT_PROFILE`, else `default` ([`ProfileName::chosen`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config;
use crate::error::{Error, Result};
use crate::providers::{self, ProviderKind};
use crate::trust::{self, ReadError, Trust};

/// Sets the config file's path instead of `$XDG_CONFIG_HOME/siprot/config.toml`.
pub const CONFIG_VAR: &str = "SIPROT_CONFIG";
/// Picks the profile when `--profile` does not.
pub const PROFILE_VAR: &str = "SIPROT_PROFILE";
/// The profile used when none is chosen.
pub const DEFAULT_PROFILE: &str = "default";

/// The largest config file siprot reads (a few profiles take a few hundred bytes).
pub const MAX_SIZE: u64 = 1024 * 1024;

/// At most this many mistakes of one file are listed.
const MAX_MISTAKES: usize = 50;

/// `--profile`, set once at start-up by [`choose`].
static FLAG: OnceLock<Option<String>> = OnceLock::new();

/// Records the global `--profile` flag (called once, before any command runs).
pub fn choose(flag: Option<String>) {
    let _ = FLAG.set(flag);
}

/// A profile's name: letters, digits, `_`, `-` and `.`, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProfileName {
    name: String,
    /// Chosen by the operator (flag, variable or inventory), not the default.
    chosen: bool,
}

impl ProfileName {
    /// `explicit` (an inventory entry's), else `--profile`, else `SIPROT_PROFILE`, else
    /// `default`.
    pub fn chosen(explicit: Option<&str>) -> Result<Self> {
        if let Some(name) = explicit {
            return Self::parse(name, "profile");
        }
        if let Some(Some(flag)) = FLAG.get() {
            return Self::parse(flag, "--profile");
        }
        match config::optional(PROFILE_VAR)? {
            Some(name) if !name.is_empty() => Self::parse(&name, PROFILE_VAR),
            _ => Ok(Self::default_profile()),
        }
    }

    /// A name given on the command line or in a file, checked.
    pub fn parse(name: &str, source: &str) -> Result<Self> {
        check_name(name).map_err(|why| Error::Config(format!("{source}: {why}")))?;
        Ok(Self {
            name: name.to_owned(),
            chosen: true,
        })
    }

    pub fn default_profile() -> Self {
        Self {
            name: DEFAULT_PROFILE.to_owned(),
            chosen: false,
        }
    }

    /// The `siprot login` command that keeps `kind`'s secrets for this profile.
    pub fn login_command(&self, kind: ProviderKind) -> String {
        if self.is_default() {
            format!("siprot login --provider {kind}")
        } else {
            format!("siprot login --provider {kind} --profile {}", self.name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn is_default(&self) -> bool {
        self.name == DEFAULT_PROFILE
    }

    /// Whether the operator named it (rather than falling back to `default`).
    pub fn is_chosen(&self) -> bool {
        self.chosen
    }
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("a profile name has 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || name == "."
        || name == ".."
    {
        return Err(format!(
            "'{}' is not a profile name (letters, digits, '_', '-' and '.' only)",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// The config file's profiles: provider → profile → key → value.
#[derive(Debug, Default)]
pub struct Profiles {
    path: Option<PathBuf>,
    tables: BTreeMap<(&'static str, String), BTreeMap<String, String>>,
}

impl Profiles {
    /// The config file's path: `SIPROT_CONFIG`, else `$XDG_CONFIG_HOME/siprot/config.toml`,
    /// else the platform's configuration directory's.
    pub fn path_here() -> Result<Option<PathBuf>> {
        if let Some(path) = config::optional(CONFIG_VAR)?.filter(|p| !p.is_empty()) {
            return Ok(Some(PathBuf::from(path)));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(dirs::config_dir);
        Ok(base.map(|dir| dir.join("siprot").join("config.toml")))
    }

    /// Loads the config file; none at all is no profiles. `SIPROT_CONFIG` naming a file
    /// that does not exist is an error, and so is a file that is not small and regular or
    /// that someone else may change ([`crate::trust`]): its `base_url` says where API keys
    /// are sent.
    pub fn load() -> Result<Self> {
        let Some(path) = Self::path_here()? else {
            return Ok(Self::default());
        };
        let what = format!("the config file {}", path.display());
        let mut file = match trust::read_small(&path, MAX_SIZE, Trust::Owner) {
            Ok(file) => file,
            Err(ReadError::Missing(_)) if config::optional(CONFIG_VAR)?.is_none() => {
                return Ok(Self {
                    path: Some(path),
                    tables: BTreeMap::new(),
                });
            }
            Err(e) => return Err(Error::Config(e.message(&what))),
        };
        let text = String::from_utf8(std::mem::take(&mut *file.bytes))
            .map_err(|_| Error::Config(format!("cannot read {what}: it is not UTF-8 text")))?;
        Self::parse(&text, &path)
    }

    /// Parses a config file's text, reporting every mistake of it at once.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let mut mistakes = Mistakes::new(text, &shown);
        let mut tables = BTreeMap::new();
        match toml::de::DeTable::parse(text) {
            Err(e) => {
                let offset = e.span().map_or(0, |span| span.start);
                mistakes.add(offset, e.message().trim().replace('\n', " "));
            }
            Ok(root) => {
                for (provider, value) in root.get_ref() {
                    walk_provider(provider, value, &mut mistakes, &mut tables);
                }
            }
        }
        mistakes.into_result()?;
        Ok(Self {
            path: Some(path.to_owned()),
            tables,
        })
    }

    /// A default profile of every provider holding the `pairs` it has settings for, for
    /// unit tests.
    #[cfg(test)]
    pub fn for_tests(pairs: &[(&str, &str)]) -> Self {
        let mut tables = BTreeMap::new();
        for kind in providers::ALL {
            let table = pairs
                .iter()
                .filter(|(key, _)| kind.registration().settings.iter().any(|s| s.key == *key))
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            tables.insert((kind.name(), DEFAULT_PROFILE.to_owned()), table);
        }
        Self { path: None, tables }
    }

    /// The config file's path, when there is a config directory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The table `[<kind>.<profile>]`, if the file has it.
    pub fn table(
        &self,
        kind: ProviderKind,
        profile: &ProfileName,
    ) -> Option<&BTreeMap<String, String>> {
        self.tables.get(&(kind.name(), profile.as_str().to_owned()))
    }

    /// Every profile the file names for `kind`.
    pub fn names(&self, kind: ProviderKind) -> Vec<String> {
        self.tables
            .keys()
            .filter(|(provider, _)| *provider == kind.name())
            .map(|(_, profile)| profile.clone())
            .collect()
    }
}

type Key<'i> = toml::Spanned<toml::de::DeString<'i>>;
type Val<'i> = toml::Spanned<toml::de::DeValue<'i>>;

fn walk_provider(
    provider: &Key<'_>,
    value: &Val<'_>,
    mistakes: &mut Mistakes<'_>,
    tables: &mut BTreeMap<(&'static str, String), BTreeMap<String, String>>,
) {
    let Some(kind) = ProviderKind::from_name(provider.get_ref()) else {
        mistakes.add(
            provider.span().start,
            format!(
                "'{}' is not a provider (tables are [<provider>.<profile>]; providers: {})",
                provider.get_ref().escape_debug(),
                providers::names_where(|_| true)
            ),
        );
        return;
    };
    let toml::de::DeValue::Table(profiles) = value.get_ref() else {
        mistakes.add(
            provider.span().start,
            format!("{kind} must be a table of profiles, [{kind}.<profile>]"),
        );
        return;
    };
    for (profile, settings) in profiles {
        if let Err(why) = check_name(profile.get_ref()) {
            mistakes.add(profile.span().start, why);
            continue;
        }
        let toml::de::DeValue::Table(settings) = settings.get_ref() else {
            mistakes.add(
                profile.span().start,
                format!("{kind}.{} must be a table of settings", profile.get_ref()),
            );
            continue;
        };
        let mut table = BTreeMap::new();
        for (key, value) in settings {
            if let Some(value) = setting(kind, profile.get_ref(), key, value, mistakes) {
                table.insert(key.get_ref().to_string(), value);
            }
        }
        tables.insert((kind.name(), profile.get_ref().to_string()), table);
    }
}

/// One `key = value` of a profile, or the mistake it is. A secret is refused with the
/// `siprot login` command that keeps it in the keyring; its value is never repeated.
fn setting(
    kind: ProviderKind,
    profile: &str,
    key: &Key<'_>,
    value: &Val<'_>,
    mistakes: &mut Mistakes<'_>,
) -> Option<String> {
    let name = key.get_ref().as_ref();
    let spec = kind.registration().settings.iter().find(|s| s.key == name);
    let at = key.span().start;
    if spec.is_some_and(|s| s.secret) || spec.is_none() && looks_secret(name) {
        let login = ProfileName::parse(profile, "profile")
            .map(|profile| profile.login_command(kind))
            .unwrap_or_default();
        mistakes.add(
            at,
            format!(
                "[{kind}.{profile}] {} is a secret, and the config file must never hold one: \
                 delete this line and run `{login}`, which reads it without echo and keeps \
                 it in the keyring",
                name.escape_debug()
            ),
        );
        return None;
    }
    let Some(spec) = spec else {
        let known: Vec<&str> = kind
            .registration()
            .settings
            .iter()
            .filter(|s| !s.secret)
            .map(|s| s.key)
            .collect();
        mistakes.add(
            at,
            format!(
                "[{kind}.{profile}] has no setting '{}' (known: {})",
                name.escape_debug(),
                known.join(", ")
            ),
        );
        return None;
    };
    match value.get_ref() {
        toml::de::DeValue::String(text) => Some(text.to_string()),
        _ => {
            mistakes.add(
                value.span().start,
                format!("[{kind}.{profile}] {} must be a string", spec.key),
            );
            None
        }
    }
}

/// Whether a key a provider does not know names a secret (so that a mistyped
/// `api-key = "..."` is refused as a secret rather than only as unknown).
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "token", "secret", "password", "passwd", "auth"]
        .iter()
        .any(|word| key.contains(word))
}

/// The mistakes of one file, each with its line.
struct Mistakes<'a> {
    text: &'a str,
    path: &'a str,
    found: Vec<(usize, String)>,
}

impl<'a> Mistakes<'a> {
    fn new(text: &'a str, path: &'a str) -> Self {
        Self {
            text,
            path,
            found: Vec::new(),
        }
    }

    fn add(&mut self, offset: usize, message: String) {
        let offset = offset.min(self.text.len());
        let line = self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        self.found.push((line, message));
    }

    fn into_result(mut self) -> Result<()> {
        self.found.sort_by_key(|(line, _)| *line);
        let listed: Vec<String> = self
            .found
            .iter()
            .take(MAX_MISTAKES)
            .map(|(line, message)| format!("{}:{line}: {message}", self.path))
            .collect();
        match self.found.len() {
            0 => Ok(()),
            1 => Err(Error::Config(listed.join(""))),
            n => Err(Error::Config(format!(
                "{} has {n} mistakes: {}",
                self.path,
                listed.join("; ")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Profiles> {
        Profiles::parse(text, Path::new("config.toml"))
    }

    fn kind(name: &str) -> ProviderKind {
        ProviderKind::from_name(name).unwrap()
    }

    #[test]
    fn two_accounts_of_one_provider_are_two_profiles() {
        let profiles = parse(
            "[vobiz.main]\nauth_id = \"MA_ONE\"\n\n[vobiz.reseller]\nauth_id = \"MA_TWO\"\n\
             base_url = \"http://127.0.0.1:1/v1\"\n[exotel.mumbai]\naccount_sid = \"x\"\n\
             region = \"mumbai\"\n",
        )
        .unwrap();
        let reseller = ProfileName::parse("reseller", "t").unwrap();
        assert_eq!(
            profiles.table(kind("vobiz"), &reseller).unwrap()["auth_id"],
            "MA_TWO"
        );
        assert_eq!(profiles.names(kind("vobiz")), ["main", "reseller"]);
        assert_eq!(profiles.names(kind("exotel")), ["mumbai"]);
        assert!(profiles.names(kind("telepath")).is_empty());
    }

    #[test]
    fn secrets_are_refused_without_repeating_them_and_every_mistake_is_listed() {
        let text = "[exotel.mumbai]\naccount_sid = \"x\"\napi_token = \"tok-SECRET-1\"\n\
                    [vobiz.main]\nauth_token = \"tok-SECRET-2\"\npassword = \"tok-SECRET-3\"\n\
                    colour = \"blue\"\n[nosuch.x]\na = \"b\"\n";
        let error = parse(text).unwrap_err().to_string();
        assert_eq!(parse(text).unwrap_err().exit_code().code(), 4);
        assert!(!error.contains("SECRET"), "{error}");
        for expected in [
            "config.toml has 5 mistakes",
            "config.toml:3: [exotel.mumbai] api_token is a secret",
            "siprot login --provider exotel --profile mumbai",
            "config.toml:5: [vobiz.main] auth_token is a secret",
            "config.toml:6: [vobiz.main] password is a secret",
            "config.toml:7: [vobiz.main] has no setting 'colour' (known: auth_id, base_url)",
            "config.toml:8: 'nosuch' is not a provider",
        ] {
            assert!(error.contains(expected), "{expected} in {error}");
        }
        assert!(!error.contains('\n'));
    }

    #[test]
    fn bad_shapes_and_names_are_mistakes_with_lines() {
        for (text, expected) in [
            (
                "[vobiz]\nauth_id = \"x\"\n",
                "config.toml:2: vobiz.auth_id must be a table",
            ),
            (
                "vobiz = 1\n",
                "config.toml:1: vobiz must be a table of profiles",
            ),
            (
                "[vobiz.main]\nauth_id = 5\n",
                "config.toml:2: [vobiz.main] auth_id must be a string",
            ),
            (
                "[vobiz.\"a b\"]\nauth_id = \"x\"\n",
                "config.toml:1: 'a b' is not a profile name",
            ),
            ("[vobiz.main\n", "config.toml:1:"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected} in {error}");
        }
    }

    #[test]
    fn profile_names_are_checked() {
        assert!(ProfileName::parse("eu-west_1.b", "t").is_ok());
        for bad in ["", "..", "a/b", "a b", "x#y", &"a".repeat(65)] {
            let error = ProfileName::parse(bad, "--profile").unwrap_err();
            assert_eq!(error.exit_code().code(), 4, "{bad}");
        }
    }
}
