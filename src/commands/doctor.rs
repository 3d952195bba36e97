//! `siprot doctor`: says whether a rotation would work here, changing nothing. One check
//! per line (`ok|warn|fail  <check>: <detail>; <next step>`) or, with `--json`, one
//! object holding every check. Exit 0 when no check failed (warnings allowed); otherwise
//! 8 when a store check failed, else 4. Entry names come from the store's listing (a
//! server's answer): human lines are printed with control characters escaped, and at most
//! `NAMES_SHOWN` (20) names per check.

use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::commands::block_on;
use crate::config::ConnectOptions;
use crate::error::{Error, ExitCode, Result, exit};
use crate::output;
use crate::providers::{self, ProviderKind};
use crate::settings::{Accounts, BASE_URL, Source};
use crate::state::StateDir;
use crate::store::diagnose::{self, Collection};
use crate::store::vault::{self, VaultConnection};
use crate::store::{EntryName, SecretStore, Slot, StoreKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Status,
    detail: String,
    next: Option<String>,
    /// Whether the check is about the store (a failure there is exit 8).
    #[serde(skip)]
    store: bool,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: &str, status: Status, detail: impl Into<String>, next: Option<&str>) {
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            detail: detail.into(),
            next: next.map(str::to_owned),
            store: false,
        });
    }

    fn store(&mut self, name: &str, status: Status, detail: impl Into<String>, next: Option<&str>) {
        self.add(name, status, detail, next);
        if let Some(last) = self.checks.last_mut() {
            last.store = true;
        }
    }

    fn exit_code(&self) -> ExitCode {
        let failed = self.checks.iter().filter(|c| c.status == Status::Fail);
        let mut code = exit::SUCCESS;
        for check in failed {
            code = code.worse(if check.store {
                exit::KEYRING
            } else {
                exit::CONFIG
            });
        }
        code
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    exit_code: u8,
    checks: &'a [Check],
}

pub fn run(args: DoctorArgs) -> Result<ExitCode> {
    let mut report = Report::default();
    let kind = args.store.chosen(None);
    let listed = match kind {
        Ok(StoreKind::Vault) => vault(&args, &mut report),
        Ok(_) => keyring(&args, &mut report),
        Err(e) => {
            report.store(
                "store",
                Status::Fail,
                e.to_string(),
                Some("fix --store or SIPROT_STORE"),
            );
            None
        }
    };
    let stored: Vec<String> = match &listed {
        Some(Ok(names)) => names.clone(),
        _ => Vec::new(),
    };
    let pending = listed.map(|listed| {
        listed.map(|names| {
            names
                .into_iter()
                .filter(|name| EntryName::parse(name).1 == Slot::Pending)
                .collect::<Vec<_>>()
        })
    });
    match pending {
        Some(Ok(names)) if names.is_empty() => {
            report.add("pending entries", Status::Ok, "none", None)
        }
        Some(Ok(names)) => report.add(
            "pending entries",
            Status::Warn,
            format!("{} left over: {}", names.len(), shown_names(&names)),
            Some("run siprot recover"),
        ),
        Some(Err(why)) => report.add(
            "pending entries",
            Status::Warn,
            format!("cannot list the store's entries: {why}"),
            Some("fix the store first"),
        ),
        None => {}
    }
    state(&mut report);
    let accounts = config_file(&mut report);
    for &kind in providers::ALL {
        provider(kind, accounts.as_ref(), &args, &stored, &mut report);
    }

    let code = report.exit_code();
    if args.json {
        output::json(&JsonReport {
            ok: code == exit::SUCCESS,
            exit_code: code.code(),
            checks: &report.checks,
        })?;
    } else {
        for check in &report.checks {
            let mut line = format!(
                "{:<4}  {}: {}",
                check.status.word(),
                check.name,
                check.detail
            );
            if let Some(next) = &check.next {
                line.push_str("; ");
                line.push_str(next);
            }
            output::line(&crate::redact::escape_controls(&line))?;
        }
    }
    Ok(code)
}

/// The keyring checks; returns the pending entries (when the store could be listed).
fn keyring(
    args: &DoctorArgs,
    report: &mut Report,
) -> Option<std::result::Result<Vec<String>, String>> {
    const START_BUS: &str = "run siprot in a desktop session, or start one with \
        `dbus-run-session -- $SHELL` and a Secret Service in it, or use --store vault";
    if cfg!(target_os = "linux") {
        match diagnose::session_bus() {
            Ok(bus) => report.store("session bus", Status::Ok, bus, None),
            Err(why) => {
                report.store("session bus", Status::Fail, why, Some(START_BUS));
                return None;
            }
        }
        match diagnose::secret_service(args.store.keyring_timeout) {
            Ok(Collection::Unlocked(label)) => report.store(
                "keyring",
                Status::Ok,
                format!("Secret Service answers, default collection '{label}' unlocked"),
                None,
            ),
            Ok(Collection::Missing) => report.store(
                "keyring",
                Status::Warn,
                "Secret Service answers, but has no default collection yet",
                Some("the first rotation creates one (and may prompt for its password)"),
            ),
            Ok(Collection::Locked(label)) => {
                report.store(
                    "keyring",
                    Status::Fail,
                    format!("the default collection '{label}' is locked"),
                    Some(diagnose::UNLOCK_HINT),
                );
                return None;
            }
            Err(why) => {
                report.store(
                    "keyring",
                    Status::Fail,
                    why,
                    Some("start a Secret Service (`gnome-keyring-daemon --start --components=secrets`, KeePassXC) or use --store vault"),
                );
                return None;
            }
        }
    }
    let listed = block_on(async {
        let store = args.store.open(None).await?;
        Ok(list_names(store.as_ref()).await)
    });
    match listed {
        Ok(pending) => Some(pending),
        Err(e) => {
            report.store(
                "keyring",
                Status::Fail,
                e.to_string(),
                Some("see the README's troubleshooting"),
            );
            None
        }
    }
}

/// The most entry names a check's detail shows; the rest are counted.
const NAMES_SHOWN: usize = 20;

/// The first [`NAMES_SHOWN`] of `names`, comma-separated, then how many more.
fn shown_names(names: &[String]) -> String {
    let mut shown = names
        .iter()
        .take(NAMES_SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        shown.push_str(&format!(" ... and {} more", names.len() - NAMES_SHOWN));
    }
    shown
}

/// Every slot the store holds for siprot, by name (`telepath/x#pending`,
/// `login/telepath/default/api_key`): names only, never a secret.
async fn list_names(store: &dyn SecretStore) -> std::result::Result<Vec<String>, String> {
    let entries = store.list().await.map_err(|e| e.to_string())?;
    Ok(names_of(entries))
}

fn names_of(entries: Vec<(EntryName, Slot)>) -> Vec<String> {
    entries
        .into_iter()
        .map(|(name, slot)| name.slot(slot))
        .collect()
}

/// The vault store checks; returns the pending entries and claims.
fn vault(
    args: &DoctorArgs,
    report: &mut Report,
) -> Option<std::result::Result<Vec<String>, String>> {
    let addr_var = ["VAULT_ADDR", "BAO_ADDR"]
        .into_iter()
        .find(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    let token_var = ["VAULT_TOKEN", "BAO_TOKEN"]
        .into_iter()
        .find(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    match addr_var {
        Some(var) => report.store("vault address", Status::Ok, format!("from {var}"), None),
        None => report.store(
            "vault address",
            Status::Fail,
            "VAULT_ADDR (or BAO_ADDR) is not set",
            Some("export VAULT_ADDR=https://vault.example.com:8200"),
        ),
    }
    match token_var {
        Some(var) => report.store(
            "vault token",
            Status::Ok,
            format!("from {var} (not shown)"),
            None,
        ),
        None => match vault::token_file_warning() {
            Some(exposed) => report.store(
                "vault token",
                Status::Warn,
                format!("VAULT_TOKEN (or BAO_TOKEN) is not set, and {exposed}"),
                Some("or export VAULT_TOKEN from your secret manager"),
            ),
            None => report.store(
                "vault token",
                Status::Warn,
                "VAULT_TOKEN (or BAO_TOKEN) is not set: the token helper file is tried",
                Some("export VAULT_TOKEN from your secret manager"),
            ),
        },
    }
    if let Err(e) = VaultConnection::from_env() {
        report.store(
            "vault store",
            Status::Fail,
            e.to_string(),
            Some("fix the vault settings"),
        );
        return None;
    }
    // One listing (bounded: see `store::vault`) serves both this check and the next.
    let result = block_on(async {
        let store = args.store.open(None).await?;
        let service = store.service().to_owned();
        let entries = store.list().await.map_err(Error::keyring_unavailable)?;
        Ok((service, names_of(entries)))
    });
    match result {
        Ok((service, names)) => {
            report.store(
                "vault store",
                Status::Ok,
                format!(
                    "{service}: reachable, unsealed, the token may list it, the KV mount exists"
                ),
                None,
            );
            Some(Ok(names))
        }
        Err(e) => {
            let text = e.to_string();
            let next = if text.contains("listing '") {
                "check what answers at VAULT_ADDR (a proxy in between?) and --secret-prefix"
            } else if text.contains("sealed") {
                "unseal the server (`bao operator unseal`), or ask its operator"
            } else if matches!(e, Error::StoreDenied { .. }) {
                "check the token (`bao token lookup`), its policy and --vault-mount"
            } else {
                "check VAULT_ADDR and that the server is up"
            };
            report.store("vault store", Status::Fail, text, Some(next));
            None
        }
    }
}

/// The state directory, its lock directory and recovery files left over; nothing is
/// created (a missing directory is created by the first command that writes).
fn state(report: &mut Report) {
    let state = match StateDir::locate() {
        Ok(state) => state,
        Err(e) => {
            report.add(
                "state directory",
                Status::Fail,
                e.to_string(),
                Some("set XDG_STATE_HOME"),
            );
            return;
        }
    };
    let root = state.root().to_path_buf();
    let locks = state.lock_dir();
    if root.exists() && locks.exists() {
        match state.check() {
            Ok(()) => {
                // Unix: its owner and mode were checked. Windows has no modes: it is a
                // real directory, with the access list of the profile it is in.
                let private = match cfg!(unix) {
                    true => "private and writable",
                    false => "a real directory (its access list is not checked)",
                };
                report.add(
                    "state directory",
                    Status::Ok,
                    format!("{} {private}", root.display()),
                    None,
                );
                report.add(
                    "lock directory",
                    Status::Ok,
                    format!("{} {private}", locks.display()),
                    None,
                );
            }
            Err(e) => {
                report.add(
                    "state directory",
                    Status::Fail,
                    e.to_string(),
                    Some("fix its owner or mode"),
                );
                return;
            }
        }
    } else {
        let missing = if root.exists() { &locks } else { &root };
        let parent_ok = missing
            .ancestors()
            .skip(1)
            .find(|p| p.exists())
            .is_some_and(|p| p.is_dir());
        let check = if root.exists() {
            "lock directory"
        } else {
            "state directory"
        };
        report.add(
            check,
            if parent_ok { Status::Ok } else { Status::Fail },
            format!(
                "{} does not exist yet (the first rotation creates it, mode 0700)",
                missing.display()
            ),
            (!parent_ok).then_some("create its parent directory"),
        );
        if !parent_ok {
            return;
        }
    }
    if !state.recovery_dir().exists() {
        report.add("recovery files", Status::Ok, "none", None);
        return;
    }
    // Listed here, not through StateDir::recovery_files (which would create `locks/`).
    let dir = state.recovery_dir();
    match std::fs::read_dir(&dir) {
        Ok(listing) => {
            let mut names: Vec<String> = listing
                .filter_map(|item| item.ok())
                .map(|item| item.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .map(|path| path.display().to_string())
                .collect();
            names.sort();
            if names.is_empty() {
                report.add("recovery files", Status::Ok, "none", None);
            } else {
                report.add(
                    "recovery files",
                    Status::Warn,
                    format!("{} left over: {}", names.len(), names.join(", ")),
                    Some("run siprot recover"),
                );
            }
        }
        Err(e) => report.add(
            "recovery files",
            Status::Warn,
            format!("cannot list {}: {e}", dir.display()),
            Some("run siprot recover"),
        ),
    }
}

/// The config file (profiles): readable, and holding no secret.
fn config_file(report: &mut Report) -> Option<Accounts> {
    match Accounts::load(None) {
        Ok(accounts) => {
            let path = accounts.profiles().path().map_or_else(
                || "no config directory".to_owned(),
                |p| p.display().to_string(),
            );
            let count: usize = providers::ALL
                .iter()
                .map(|&kind| accounts.profiles().names(kind).len())
                .sum();
            report.add(
                "config file",
                Status::Ok,
                format!(
                    "{path}: {count} profile(s); this command's profile is '{}'",
                    accounts.profile().as_str()
                ),
                None,
            );
            Some(accounts)
        }
        Err(e) => {
            report.add(
                "config file",
                Status::Fail,
                e.to_string(),
                Some(
                    "fix what it names (secrets go into the keyring with siprot login; the \
                     file must be yours and writable by you alone)",
                ),
            );
            None
        }
    }
}

/// A provider's settings in the command's profile: present (and where each came from),
/// missing (warn: the provider is not used here), or unusable (fail: a bad base URL, a
/// half-set account). Secrets are looked up in the store only when `stored` (the store's
/// listing) has `siprot login`'s entry for them; their values are never shown.
fn provider(
    kind: ProviderKind,
    accounts: Option<&Accounts>,
    args: &DoctorArgs,
    stored: &[String],
    report: &mut Report,
) {
    let check = format!("provider {}", kind.name());
    let Some(accounts) = accounts else {
        return;
    };
    let mut settings = match accounts.settings(kind, None) {
        Ok(settings) => settings,
        Err(e) => {
            report.add(
                &check,
                Status::Fail,
                e.to_string(),
                Some("fix the setting it names"),
            );
            return;
        }
    };
    let logged_in = stored.iter().any(|name| {
        name.starts_with(&format!(
            "login/{}/{}/",
            kind.name(),
            settings.profile().as_str()
        ))
    });
    if settings.lacks_secrets() && logged_in {
        let loaded = block_on(async {
            let store = args.store.open(None).await?;
            settings.load_secrets(store.as_ref()).await
        });
        if let Err(e) = loaded {
            settings.store_unavailable(e.to_string());
        }
    }
    let set: Vec<String> = settings
        .shown()
        .iter()
        .filter(|shown| !matches!(shown.source, Source::Missing | Source::Default))
        .map(|shown| match shown.source {
            Source::Environment => format!("{} (environment)", shown.var),
            source => format!("{} ({})", shown.key, source.name()),
        })
        .collect();
    let anything_set = settings.shown().iter().any(|shown| {
        shown.key != BASE_URL && !matches!(shown.source, Source::Missing | Source::Default)
    });
    let login = settings.profile().login_command(kind);
    match kind.connect(&settings, &ConnectOptions::default()) {
        Ok(_) => report.add(
            &check,
            Status::Ok,
            format!("settings: {}", set.join(", ")),
            None,
        ),
        Err(Error::MissingSetting { var, .. }) if !anything_set => report.add(
            &check,
            Status::Warn,
            format!("not set up ({var} not set): not used here"),
            Some(&format!("to use it, run `{login}` or export {var}")),
        ),
        Err(e @ Error::MissingSetting { .. }) => report.add(
            &check,
            Status::Fail,
            format!("{e} (set: {})", set.join(", ")),
            Some("set the missing one, or unset the others"),
        ),
        Err(e) => report.add(
            &check,
            Status::Fail,
            e.to_string(),
            Some("fix the setting it names"),
        ),
    }
}
