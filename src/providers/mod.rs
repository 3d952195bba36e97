//! The providers siprot rotates passwords at, behind one [`Provider`] trait.
//!
//! A provider knows its API and nothing else: it turns a [`RotateRequest`] into one HTTP
//! exchange and reports what came back. It never touches the keyring and never decides the
//! order of steps; `rotation` does that, reading [`PasswordOrigin`] to pick the protocol.
//!
//! Adding a provider means one new module that exports a `REGISTRATION`, one `pub mod` line
//! and one entry in [`ALL`] below, plus its fake and test target (CONTRIBUTING.md); the
//! conformance suite (`tests/e2e/conformance.rs`) fails for a provider without them.

use std::fmt;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::Attempts;
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Accounts, Settings, Spec};
use crate::store::EntryName;

pub mod exchange;
pub mod exotel;
pub mod plivo;
pub mod telepath;
pub mod telnyx;
pub mod twilio;
pub mod vobiz;

/// Every provider siprot knows, in the order `--help` lists them.
pub static ALL: &[ProviderKind] = &[
    ProviderKind(&telepath::REGISTRATION),
    ProviderKind(&exotel::REGISTRATION),
    ProviderKind(&vobiz::REGISTRATION),
    ProviderKind(&telnyx::REGISTRATION),
    ProviderKind(&plivo::REGISTRATION),
    ProviderKind(&twilio::REGISTRATION),
];

#[cfg(test)]
pub mod memory;

/// Who chooses a rotated password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordOrigin {
    /// The provider generates it and returns it once (Telepath).
    ServerGenerated,
    /// siprot generates (or reads) it and sends it (Exotel, Vobiz).
    ClientSupplied,
}

/// The static facts of a provider, in its own module: what it is called, how it rotates,
/// its policy, where its error bodies carry a message and how its credentials are named.
/// All of it is known without connecting; only [`Registration::entry_name`] and
/// [`Registration::connect`] read settings, from the account's resolved [`Settings`].
pub struct Registration {
    /// Name on the command line, in JSON and in keyring entry names.
    pub name: &'static str,
    /// One line for `--provider`'s possible values in `--help`: the kind of password
    /// (`server-generated ...` or `client-set ...`), `enable/disable` when it can toggle,
    /// and what the ID is (`id_is`); a unit test holds it to the flags below.
    pub summary: &'static str,
    pub origin: PasswordOrigin,
    pub policy: &'static Policy,
    /// What a credential's id is at this provider, for `--help` (e.g. `trunk id`).
    pub id_is: &'static str,
    /// The arguments naming one credential in `--help` examples: an id, plus its
    /// [`SecondPart`]'s option when the provider has one.
    pub example: &'static str,
    /// The second part of a credential's id, when the id alone does not name it (Exotel's
    /// `--device`): the command line, the inventory, entry names and help follow it.
    pub second_part: Option<&'static SecondPart>,
    /// What may be sent again after a try that may have reached the provider: the
    /// exchange follows it and `--help` tells it.
    pub resend: Resend,
    /// Whether a rotation can carry a `--description`.
    pub takes_description: bool,
    /// Whether credentials can be enabled and disabled.
    pub can_toggle: bool,
    /// Whether the provider's answers name the credential's SIP username (which
    /// `verify` then uses without `--username`).
    pub returns_sip_username: bool,
    /// Every setting it reads (API keys, account ids, base URL), each with its
    /// environment variable: `config show`, `login`, `doctor` and profiles follow it.
    pub settings: &'static [Spec],
    /// Which of its secret settings `siprot login` keeps.
    pub login: LoginSecrets,
    /// The keyring entry name (the "current" one) of a credential; may read the account
    /// setting it needs.
    pub entry_name: fn(&CredentialRef, &Settings) -> Result<String>,
    /// Where the provider's error bodies carry a human message (JSON keys, outermost
    /// first; a number picks that element of an array), tried in order before the generic
    /// `message`, `error` and `description`.
    pub error_paths: &'static [&'static [&'static str]],
    /// Reads the provider's settings and builds a client for it.
    pub connect: fn(&Settings, &ConnectOptions) -> Result<Box<dyn Provider>>,
}

impl Registration {
    /// Its secret settings: what `siprot login` keeps, in the order it asks for them and
    /// `--with-token` reads them.
    pub fn secrets(&self) -> Vec<&'static Spec> {
        self.settings.iter().filter(|spec| spec.secret).collect()
    }
}

/// The keys of the registered providers' settings that `filter` picks, each once, in
/// registry order and then each provider's own order, joined by `, `: for help texts.
pub fn setting_keys_where(filter: impl Fn(&Spec) -> bool) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for spec in ALL.iter().flat_map(|kind| kind.registration().settings) {
        if filter(spec) && !keys.contains(&spec.key) {
            keys.push(spec.key);
        }
    }
    keys.join(", ")
}

/// The second part of a credential's id at a provider that addresses a credential by two
/// ids (Exotel: a user and its device), as the command line, the inventory and the keyring
/// entry name give it.
#[derive(Debug)]
pub struct SecondPart {
    /// The command-line option (`--device`).
    pub flag: &'static str,
    /// The inventory key (`device`), also the option's id in the command line's parser.
    pub key: &'static str,
    /// What it is, before its value in messages (`device`: `u1 (device d1)`).
    pub noun: &'static str,
    /// The option's value in `--help` (`DEVICE_ID`).
    pub value_name: &'static str,
    /// The option's help, before the providers that take it (`The device id`).
    pub help: &'static str,
    /// Where it sits in the keyring entry name: before or after the credential id.
    pub placement: Placement,
    /// Refuses a value the provider cannot have (after [`validate_id`]), exit 2.
    pub validate: fn(&str) -> Result<()>,
}

/// Where a [`SecondPart`] sits in a keyring entry name, relative to the credential id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `.../<id>/<part>` (Exotel's `<user>/<device>`).
    AfterId,
    /// `.../<part>/<id>` (Twilio's `<credential list>/<credential>`).
    BeforeId,
}

/// Which secret settings `siprot login` keeps for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSecrets {
    /// Every secret setting, in the order of [`Registration::settings`].
    All,
    /// One secret, chosen by a plain setting: `then` when `when_set` is configured,
    /// `otherwise` when it is not (Twilio: the API key secret with an API key, else the
    /// Auth Token).
    OneOf {
        when_set: &'static str,
        then: &'static str,
        otherwise: &'static str,
    },
}

impl LoginSecrets {
    /// Whether the account `settings` describes uses the secret setting `key` (and so
    /// whether `login` keeps it, and a rotation looks it up in the store).
    pub fn uses(self, key: &str, settings: &Settings) -> bool {
        match self {
            LoginSecrets::All => true,
            LoginSecrets::OneOf {
                when_set,
                then,
                otherwise,
            } => {
                let set = settings.optional(when_set).ok().flatten().is_some();
                key == if set { then } else { otherwise }
            }
        }
    }
}

/// Every registered [`SecondPart`], each once (by its key), in registry order.
pub fn second_parts() -> Vec<&'static SecondPart> {
    let mut parts: Vec<&'static SecondPart> = Vec::new();
    for part in ALL
        .iter()
        .filter_map(|kind| kind.registration().second_part)
    {
        if !parts.iter().any(|known| known.key == part.key) {
            parts.push(part);
        }
    }
    parts
}

/// The registered [`SecondPart`] whose key is `key`.
pub fn second_part(key: &str) -> Option<&'static SecondPart> {
    second_parts().into_iter().find(|part| part.key == key)
}

/// A registered provider: a cheap, copyable handle to its [`Registration`].
#[derive(Clone, Copy)]
pub struct ProviderKind(&'static Registration);

impl ProviderKind {
    /// Finds a provider by its command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|kind| kind.name() == name)
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn registration(self) -> &'static Registration {
        self.0
    }

    pub fn origin(self) -> PasswordOrigin {
        self.0.origin
    }

    pub fn policy(self) -> &'static Policy {
        self.0.policy
    }

    /// The keyring names of `credential`'s entries, in the account `settings` name.
    pub fn entry_name(self, credential: &CredentialRef, settings: &Settings) -> Result<EntryName> {
        (self.0.entry_name)(credential, settings).map(EntryName::new)
    }

    pub fn connect(
        self,
        settings: &Settings,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Provider>> {
        (self.0.connect)(settings, options)
    }
}

impl PartialEq for ProviderKind {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for ProviderKind {}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderKind({})", self.name())
    }
}

/// The names of the registered providers whose registration passes `filter`, as prose
/// (`a`, `a and b`, `a, b and c`; `none`), for help texts and messages.
pub fn names_where(filter: impl Fn(&Registration) -> bool) -> String {
    let names: Vec<&str> = ALL
        .iter()
        .map(|kind| kind.registration())
        .filter(|registration| filter(registration))
        .map(|registration| registration.name)
        .collect();
    match names.as_slice() {
        [] => "none".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The longest id siprot accepts for one path segment or entry-name part, in bytes.
pub const MAX_ID_LEN: usize = 200;

/// One credential at a provider, as the operator named it: a validated id and, for
/// providers that have one, the [`SecondPart`] of its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRef {
    id: String,
    /// The second part's key (its [`SecondPart::key`]) and value.
    part: Option<(&'static str, String)>,
}

impl CredentialRef {
    /// Validates the parts for `kind`: each must be usable as one URL path segment and as
    /// one unambiguous part of a keyring entry name. `parts` are the second parts given,
    /// as `(key, value)`: exactly the provider's own, or none when it has none.
    pub fn new(kind: ProviderKind, id: &str, parts: &[(&str, &str)]) -> Result<Self> {
        validate_id("credential id", id)?;
        let wanted = kind.registration().second_part;
        if let Some((key, _)) = parts
            .iter()
            .find(|(key, _)| wanted.is_none_or(|wanted| wanted.key != *key))
        {
            let flag = second_part(key).map_or(*key, |part| part.flag);
            return Err(Error::Usage(format!("{kind} does not take {flag}")));
        }
        let part = match (wanted, parts) {
            (None, _) => None,
            (Some(wanted), [(_, value)]) => {
                validate_id(&format!("{} id", wanted.noun), value)?;
                (wanted.validate)(value)?;
                Some((wanted.key, (*value).to_owned()))
            }
            (Some(wanted), []) => {
                return Err(Error::Usage(format!(
                    "{kind} needs {} <{}>",
                    wanted.flag, wanted.value_name
                )));
            }
            (Some(wanted), _) => {
                return Err(Error::Usage(format!(
                    "{kind} takes {} only once",
                    wanted.flag
                )));
            }
        };
        Ok(Self {
            id: id.to_owned(),
            part,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The value of the second part of the id (Exotel's device, Twilio's credential list),
    /// where the provider has one.
    pub fn device(&self) -> Option<&str> {
        self.part.as_ref().map(|(_, value)| value.as_str())
    }

    /// The second part; providers that have one only see credentials that have it.
    pub fn require_device(&self) -> Result<&str> {
        self.device()
            .ok_or_else(|| Error::Usage("this provider needs a second part of the id".into()))
    }

    /// The second part as command-line words (`["--device", value]`), if there is one.
    pub fn part_args(&self) -> Option<(&'static str, &str)> {
        let (key, value) = self.part.as_ref()?;
        Some((second_part(key)?.flag, value.as_str()))
    }

    /// How the operator names it: `id` or `id (device d)`.
    pub fn display(&self) -> String {
        match &self.part {
            Some((key, value)) => {
                let noun = second_part(key).map_or(*key, |p| p.noun);
                format!("{} ({noun} {value})", self.id)
            }
            None => self.id.clone(),
        }
    }
}

/// The provider and credential a keyring entry name (of a current password) names, as
/// written: `Ok(None)` when the name is not a siprot provider's. Ids never contain `/`, so
/// the last part is the id, or the id and the second part in its [`Placement`]. Whether
/// the entry belongs to the account configured now is [`credential_of_entry`]'s question.
pub fn parse_entry(entry: &str) -> Result<Option<(ProviderKind, CredentialRef)>> {
    let Some((name, rest)) = entry.split_once('/') else {
        return Ok(None);
    };
    let Some(kind) = ProviderKind::from_name(name) else {
        return Ok(None);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let part = kind.registration().second_part;
    let credential = match (part, parts.as_slice()) {
        (Some(part), [.., first, second]) => {
            let (id, value) = match part.placement {
                Placement::AfterId => (first, second),
                Placement::BeforeId => (second, first),
            };
            CredentialRef::new(kind, id, &[(part.key, *value)])?
        }
        (None, [.., id]) => CredentialRef::new(kind, id, &[])?,
        _ => {
            return Err(Error::Usage(format!(
                "keyring entry '{entry}' does not name a {kind} credential"
            )));
        }
    };
    Ok(Some((kind, credential)))
}

/// The credential a keyring entry name (of a current password) belongs to, read back
/// under the command's account ([`parse_entry`], then the name is rebuilt from it), so that
/// an entry of another account (say another Exotel account SID than the profile's) is
/// reported instead of being sent with the wrong keys.
pub fn credential_of_entry(
    entry: &str,
    accounts: &Accounts,
) -> Result<Option<(ProviderKind, CredentialRef)>> {
    let Some((kind, credential)) = parse_entry(entry)? else {
        return Ok(None);
    };
    let expected = kind.entry_name(&credential, &accounts.settings(kind, None)?)?;
    if expected.current() != entry {
        return Err(Error::Config(format!(
            "keyring entry '{entry}' belongs to another {kind} account than the one configured \
             (which would use '{expected}'): choose that account's profile with --profile"
        )));
    }
    Ok(Some((kind, credential)))
}

/// Refuses ids that could escape their path segment or make keyring names ambiguous:
/// empty, `.`/`..`, `/`, `#`, whitespace or control characters, or longer than [`MAX_ID_LEN`].
/// Everything else (`%`, `?`, unicode, ...) is percent-encoded as one path segment by `http`.
pub fn validate_id(what: &str, id: &str) -> Result<()> {
    let problem = if id.is_empty() {
        Some("is empty".to_owned())
    } else if id == "." || id == ".." {
        Some("cannot be '.' or '..'".to_owned())
    } else if id.len() > MAX_ID_LEN {
        Some(format!(
            "is {} bytes long, at most {MAX_ID_LEN} allowed",
            id.len()
        ))
    } else if id.contains('/') {
        Some("cannot contain '/'".to_owned())
    } else if id.contains('#') {
        Some("cannot contain '#' (reserved for keyring entry suffixes)".to_owned())
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some("cannot contain whitespace or control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::Usage(format!("invalid {what}: {problem}"))),
        None => Ok(()),
    }
}

/// What a rotation asks of the provider.
#[derive(Debug)]
#[non_exhaustive]
pub enum RotateRequest {
    /// The provider makes the new password (server-generated providers).
    Generate,
    /// Set exactly this password (client-set providers), with an optional description
    /// for providers that keep one.
    Set {
        password: SecretString,
        description: Option<String>,
    },
}

/// What the provider confirmed.
#[derive(Debug, Default)]
pub struct Rotated {
    /// The new password, when the provider returns one (server-generated providers).
    pub password: Option<SecretString>,
    pub username: Option<String>,
    pub request_id: Option<String>,
    /// When the provider says the change happened (RFC 3339), if it says.
    pub rotated_at: Option<String>,
}

/// The result of enabling or disabling a credential.
#[derive(Debug, Default)]
pub struct Toggled {
    pub enabled: bool,
    pub username: Option<String>,
    pub request_id: Option<String>,
}

/// One provider's API.
#[async_trait]
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// The request a rotation would send, for `--dry-run` (e.g. `PUT https://...`).
    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String>;

    /// Performs the HTTP exchange of a rotation, retrying only what the provider's API
    /// allows; every request sent is counted in `attempts`.
    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        attempts: &Attempts,
    ) -> Result<Rotated>;

    /// Enables or disables a credential; most providers have no such operation.
    async fn set_enabled(
        &self,
        _credential: &CredentialRef,
        enabled: bool,
        _attempts: &Attempts,
    ) -> Result<Toggled> {
        Err(Error::Unsupported {
            provider: self.kind().name(),
            operation: if enabled { "enable" } else { "disable" },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_found() {
        for kind in ALL {
            assert_eq!(ProviderKind::from_name(kind.name()), Some(*kind));
        }
        let mut names: Vec<_> = ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(ProviderKind::from_name("nope").is_none());
    }

    #[test]
    fn names_are_listed_as_prose_in_registry_order() {
        // The expectations are computed from the registry here, independently of
        // `names_where`, so that registering a provider needs no edit to this test.
        fn prose(names: &[&str]) -> String {
            let mut out = String::new();
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    out.push_str(if i + 1 == names.len() { " and " } else { ", " });
                }
                out.push_str(name);
            }
            if out.is_empty() {
                "none".to_owned()
            } else {
                out
            }
        }
        let filters: [&dyn Fn(&Registration) -> bool; 4] = [
            &|_| true,
            &|r| r.second_part.is_some(),
            &|r| r.origin == PasswordOrigin::ClientSupplied,
            &|_| false,
        ];
        for filter in filters {
            let names: Vec<&str> = ALL
                .iter()
                .map(|kind| kind.registration())
                .filter(|r| filter(r))
                .map(|r| r.name)
                .collect();
            assert_eq!(names_where(filter), prose(&names));
        }
        // The prose itself, on lists of every length it distinguishes.
        assert_eq!(prose(&["a", "b", "c"]), "a, b and c");
        assert_eq!(prose(&["a", "b"]), "a and b");
        assert_eq!(prose(&["a"]), "a");
        assert_eq!(prose(&[]), "none");
        // Every registered name, once, in registry order.
        let all = names_where(|_| true);
        let mut from = 0;
        for kind in ALL {
            let at = all[from..]
                .find(kind.registration().name)
                .unwrap_or_else(|| panic!("{} not in {all:?} after {from}", kind.name()));
            from += at + kind.registration().name.len();
        }
    }

    #[test]
    fn readme_has_one_row_per_provider() {
        // The README's providers table: one row per registered provider, in registry
        // order, each naming every variable of the provider's settings.
        let readme = include_str!("../../README.md");
        let table = readme
            .split("\n## Providers\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a ## Providers section");
        let rows: Vec<&str> = table
            .lines()
            .filter(|line| line.starts_with("| `"))
            .collect();
        let names: Vec<String> = rows
            .iter()
            .filter_map(|row| row.split('`').nth(1))
            .map(str::to_owned)
            .collect();
        let registered: Vec<String> = ALL.iter().map(|k| k.name().to_owned()).collect();
        assert_eq!(names, registered, "the README's providers table");
        for (kind, row) in ALL.iter().zip(rows) {
            for spec in kind.registration().settings {
                assert!(
                    row.contains(&format!("`{}`", spec.var)),
                    "{} is not in the README's row of {kind}",
                    spec.var
                );
            }
        }
    }

    #[test]
    fn summaries_agree_with_the_registration_flags() {
        // `--provider`'s possible values show each summary: the kind of password and
        // enable/disable it names must be the registration's, not a copied provider's.
        for kind in ALL {
            let r = kind.registration();
            let server = r.origin == PasswordOrigin::ServerGenerated;
            assert_eq!(r.summary.starts_with("server-generated"), server, "{kind}");
            assert_eq!(r.summary.starts_with("client-set"), !server, "{kind}");
            assert_eq!(r.summary.contains("enable/disable"), r.can_toggle, "{kind}");
            assert!(r.summary.contains(r.id_is), "{kind}: {}", r.summary);
        }
    }

    #[test]
    fn setting_keys_are_listed_once_each() {
        let all = setting_keys_where(|_| true);
        let keys: Vec<&str> = all.split(", ").collect();
        for kind in ALL {
            for spec in kind.registration().settings {
                assert_eq!(keys.iter().filter(|k| **k == spec.key).count(), 1, "{all}");
            }
            let secrets = kind.registration().secrets();
            let expected: Vec<&Spec> = kind
                .registration()
                .settings
                .iter()
                .filter(|s| s.secret)
                .collect();
            assert_eq!(secrets.len(), expected.len());
        }
        assert_eq!(setting_keys_where(|_| false), "");
    }

    #[test]
    fn hostile_ids_are_refused_with_usage_errors() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a#pending",
            "a b",
            "a\tb",
            "a\nb",
            "\u{7f}",
            &long,
        ] {
            let err = validate_id("credential id", id).unwrap_err();
            assert_eq!(err.exit_code().code(), 2, "{id:?}");
        }
        for id in ["conn_abc123xyz", "a%2Fb", "a?b", "ünïcödé", "...", "a.b"] {
            validate_id("credential id", id).unwrap();
        }
    }

    #[test]
    fn a_second_part_is_required_exactly_where_the_provider_has_one() {
        let exotel = ProviderKind::from_name("exotel").unwrap();
        let telepath = ProviderKind::from_name("telepath").unwrap();
        let twilio = ProviderKind::from_name("twilio").unwrap();
        let list = "CL0123456789abcdef0123456789abcdef";
        let cred = "CR0123456789abcdef0123456789abcdef";
        assert!(CredentialRef::new(exotel, "u", &[]).is_err());
        assert!(CredentialRef::new(exotel, "u", &[("device", "d")]).is_ok());
        assert!(CredentialRef::new(exotel, "u", &[("credential_list", list)]).is_err());
        assert!(CredentialRef::new(telepath, "t", &[("device", "d")]).is_err());
        assert!(CredentialRef::new(telepath, "t", &[]).is_ok());
        assert!(CredentialRef::new(twilio, cred, &[("credential_list", list)]).is_ok());
        assert!(CredentialRef::new(twilio, cred, &[("device", list)]).is_err());
        assert!(CredentialRef::new(twilio, cred, &[("credential_list", "dev_01")]).is_err());
        let both = [("device", "d"), ("credential_list", list)];
        assert!(CredentialRef::new(exotel, "u", &both).is_err());
    }

    #[test]
    fn entry_names_parse_back_with_the_second_part_in_its_place() {
        let list = "CL0123456789abcdef0123456789abcdef";
        let cred = "CR0123456789abcdef0123456789abcdef";
        let entry = format!("twilio/AC0123456789abcdef0123456789abcdef/{list}/{cred}");
        let (kind, credential) = parse_entry(&entry).unwrap().unwrap();
        assert_eq!(kind.name(), "twilio");
        assert_eq!((credential.id(), credential.device()), (cred, Some(list)));
        assert_eq!(credential.part_args(), Some(("--credential-list", list)));
        let (_, credential) = parse_entry("exotel/sid/u1/d1").unwrap().unwrap();
        assert_eq!((credential.id(), credential.device()), ("u1", Some("d1")));
        assert_eq!(credential.display(), "u1 (device d1)");
    }
}
