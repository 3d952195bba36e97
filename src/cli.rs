//! Command-line definitions (clap derive) and nothing else: parsing turns provider names
//! into [`ProviderKind`]s here, so no provider name travels further as a string. Help texts
//! and examples that name providers are built from the registry by [`command`]. A usage
//! error that would repeat a stray argument (a password typed after `check-password`) is
//! replaced by one that does not ([`unrepeated_error`]).

use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use std::path::PathBuf;

use crate::config::parse_seconds;
use crate::error;
use crate::inventory;
use crate::providers::{
    self, LoginSecrets, PasswordOrigin, ProviderKind, Registration, names_where,
};
use crate::retry;
use crate::settings::Spec;
use crate::sip::Registrar;
use crate::store::StoreKind;

/// What the top-level `--help` prints after the options, below the list of exit codes
/// that [`command`] builds from [`error::EXIT_CODES`].
const AFTER_HELP: &str = "\
-v logs siprot's steps on standard error, -vv also its libraries'; RUST_LOG overrides.

Passwords are never taken as arguments: they come from standard input or are generated.";

/// Rotate SIP passwords at telecom providers and keep every new secret in the OS keyring
/// (the providers are named by [`command`], from the registry).
#[derive(Debug, Parser)]
#[command(name = "siprot", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Log what siprot does on standard error (-v: its steps; -vv: libraries too;
    /// RUST_LOG overrides). Secrets are never logged
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Print no human report on standard output: the exit code tells; errors and warnings
    /// still go to standard error, and --json, --show-password, `secret get`, `generate`,
    /// `completions`, `man` and `exit-codes` still print
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The provider account to use: a profile of $XDG_CONFIG_HOME/siprot/config.toml and
    /// the API keys `siprot login --profile NAME` kept [env: SIPROT_PROFILE]
    /// [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rotate one credential's SIP password and store the new one in the keyring
    Rotate(RotateArgs),
    /// Enable a credential (providers that support it)
    Enable(ToggleArgs),
    /// Disable a credential without deleting it (providers that support it)
    Disable(DisableArgs),
    /// Check a password read from standard input against a provider's policy
    CheckPassword(CheckPasswordArgs),
    /// Print one new password that passes a provider's policy
    Generate(GenerateArgs),
    /// Read secrets stored by siprot
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Finish interrupted rotations: resend #pending passwords, store recovery files
    Recover(RecoverArgs),
    /// Show each inventory credential's last rotation, age, outcome and what needs doing
    #[command(after_help = STATUS_HELP)]
    Status(StatusArgs),
    /// Prove the stored password works: a SIP REGISTER (binding query) to the registrar
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Run the post-rotation hook again, alone, with the stored current password
    #[command(after_help = EXEC_HELP)]
    Exec(ExecArgs),
    /// Say whether a rotation would work here (store, state directory, providers'
    /// settings, leftovers), changing nothing
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Keep a provider's API keys in the keyring (or --store), typed without echo or read
    /// from standard input, so that no secret sits in an environment variable
    Login(LoginArgs),
    /// Remove the API keys `siprot login` kept for a provider (and --profile)
    Logout(LogoutArgs),
    /// Show the settings siprot would use and where each one comes from
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script for siprot
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print siprot's manual page (roff), or a subcommand's
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
    /// List siprot's exit codes: what each means and what to do
    ExitCodes(ExitCodesArgs),
}

/// `siprot exit-codes`.
#[derive(Debug, Args)]
pub struct ExitCodesArgs {
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
}

const DOCTOR_HELP: &str = "\
One line per check: `ok|warn|fail  <check>: <detail>; <next step>`. Nothing is changed:
no keyring item, state directory or lock is created, nothing is unlocked, no provider is
called. A provider without settings is `warn` (not used here); leftovers (#pending
entries, recovery files) are `warn` with \"run siprot recover\".

Exit codes: 0 no check failed (warnings allowed), 8 a store check failed (no bus, no
Secret Service, locked collection, vault store unreachable, sealed or refusing the
token), 4 another check failed.

Examples:
  siprot doctor
  siprot doctor --store vault --json";

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The start of `login`'s help; [`login_help`] adds each provider's secrets and the rest.
const LOGIN_HELP: &str = "\
On a terminal each secret is asked for without echo. With --with-token they are read
from standard input instead, one per line in the order listed below (as `gh auth login
--with-token`); nothing is ever taken as an argument.";

/// The start of `logout`'s help; [`logout_help`] adds the examples.
const LOGOUT_HELP: &str = "\
Removes login/<provider>/<profile>/<key> for each secret of the provider. Nothing kept is
not an error (exit 0, `removed` empty in --json). Environment variables are not touched.";

/// The start of `config`'s help; [`config_help`] adds the examples.
const CONFIG_HELP: &str = "\
Settings come, first found wins, from the command line (--base-url), the environment,
the profile's table in $XDG_CONFIG_HOME/siprot/config.toml, then the store (secrets kept
by `siprot login`). `siprot config show` says which, for every setting.";

/// The start of `config show`'s help; [`config_show_help`] adds each provider's plain
/// settings and the examples.
const CONFIG_SHOW_HELP: &str = "\
One line per setting: its key, its environment variable, where the value comes from
(flag, environment, profile, keyring, vault, default, missing) and, for plain settings,
the value. A secret's value is never shown: only whether it is set and where from.
Looking a secret up in the store reads it but prints nothing of it.

The config file is $XDG_CONFIG_HOME/siprot/config.toml (SIPROT_CONFIG names another),
with one table per provider account, [<provider>.<profile>], of plain settings:";

/// The profile name the examples of `login`, `logout` and `config` use.
const EXAMPLE_PROFILE: &str = "work";

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub provider: ProviderArg,
    /// Read the secrets from standard input, one per line, instead of asking on the
    /// terminal
    #[arg(long)]
    pub with_token: bool,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub provider: ProviderArg,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Show each setting of each provider (or --provider) in the profile, and its source
    Show(ConfigShowArgs),
}

#[derive(Debug, Args)]
pub struct ConfigShowArgs {
    /// Only this provider
    #[arg(long, short = 'p')]
    pub provider: Option<ProviderKind>,
    /// Show the settings as a command given this --base-url would use them (needs
    /// --provider)
    #[arg(long, value_name = "URL", requires = "provider")]
    pub base_url: Option<String>,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

const COMPLETIONS_HELP: &str = "\
The script goes to standard output; install it where your shell looks for completions.
zsh needs `fpath+=~/.zfunc; autoload -Uz compinit; compinit` in ~/.zshrc, elvish `use
siprot` in ~/.config/elvish/rc.elv.

Examples:
  siprot completions bash > ~/.local/share/bash-completion/completions/siprot
  siprot completions zsh > ~/.zfunc/_siprot
  siprot completions fish > ~/.config/fish/completions/siprot.fish
  siprot completions powershell >> $PROFILE
  siprot completions elvish > ~/.config/elvish/lib/siprot.elv";

/// `siprot completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

const MAN_HELP: &str = "\
One page per command: `siprot man` is siprot(1), `siprot man rotate` is siprot-rotate(1),
`siprot man secret get` is siprot-secret-get(1). --dir writes them all as files.

Examples:
  siprot man | man -l -
  siprot man rotate > siprot-rotate.1
  siprot man --dir ~/.local/share/man/man1";

/// `siprot man [SUBCOMMAND]...`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (none: siprot's own page)
    #[arg(value_name = "SUBCOMMAND", conflicts_with = "dir")]
    pub path: Vec<String>,
    /// Write every page (siprot.1, siprot-rotate.1, ...) into DIR instead, and print their paths
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const EXEC_HELP: &str = "\
The hook is --exec CMD, or else the inventory entry's `exec` (or the file's) with
--inventory PATH. It runs as `sh -c CMD` in a process group of its own, with the stored
current password and a newline on its standard input (and nowhere else), and
SIPROT_PROVIDER, SIPROT_CREDENTIAL, SIPROT_DEVICE, SIPROT_USERNAME, SIPROT_ENTRY and
SIPROT_STORE in its environment (the providers' API keys and VAULT_TOKEN removed).

Exit codes: 0 the hook exited 0, 11 it failed, was killed or timed out, 6 no password
stored.";

/// The post-rotation hook's options (`rotate`, `exec`).
#[derive(Debug, Args)]
pub struct HookArgs {
    /// After the new password is stored, run CMD through `sh -c` with the password on its
    /// standard input (beats the inventory's `exec`); exit 11 when it fails
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Option<String>,
    /// Seconds the hook may run before its whole process group is killed
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds)]
    pub exec_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub credential: CredentialArgs,
    #[command(flatten)]
    pub hook: HookArgs,
    /// Without --exec: the hook is this inventory's entry's `exec` (else the file's)
    #[arg(long, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Print the result as one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

const VERIFY_HELP: &str = "\
Sends a REGISTER without a Contact header (a query of the bindings, RFC 3261 10.2.3) and
answers the registrar's digest challenge (MD5, SHA-256 or SHA-512-256; qop auth) with the
stored password. No binding is added, refreshed or removed: the phone that uses the
credential stays registered.

The SIP username is --username, or else the one the provider returned at the last
rotation by siprot (see --username).

Results and exit codes:
  ok              0   the registrar accepted the password (2xx)
  rejected        5   a second 401/407, or 403/404
  unreachable     7   no answer within --timeout, refused, or 408/480/503
  not-challenged  10  the registrar accepted without asking for a password, or (with
                      --expect-rejected-previous) it still accepts the previous one
  failed          1   any other answer";

/// Who to register as (verify, rotate --verify).
#[derive(Debug, Args)]
pub struct SipUserArgs {
    /// The SIP username (default: the one the provider returned, now or at the last
    /// rotation, if it returns one)
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// The SIP domain of the From and To URIs (default: the registrar's host)
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The registrar: sip:HOST[:PORT][;transport=udp|tcp] (port 5060 and udp by default)
    #[arg(long, value_name = "URI")]
    pub registrar: Registrar,
    #[command(flatten)]
    pub credential: CredentialArgs,
    #[command(flatten)]
    pub sip: SipUserArgs,
    /// Also try the #previous password and succeed only if the registrar rejects it
    #[arg(long)]
    pub expect_rejected_previous: bool,
    /// Seconds allowed for each verification (resolution, retransmissions, challenge)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// While the registrar rejects the password, ask it again (backing off) until
    /// DURATION (30s, 2m) has passed; 0: one try
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_wait)]
    pub wait: Duration,
    /// Print the result as one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

const STATUS_HELP: &str = "\
For each credential of the inventory: the last successful rotation (from the audit log),
its age, the outcome of the last attempt, whether it is overdue for its max_age (or for
--max-age), and whether a #pending entry or a recovery file waits for `siprot recover`.
A rotation cut off mid-request (SIGKILL, power loss), or one whose provider generates
the password left unconfirmed (a 5xx, a timeout after sending) with no successful
rotation since, shows as \"outcome unknown\" with the next step; a last rotation dated more than 5 minutes in the future shows its clock
skew, has no age and counts as overdue. The last verification (verify, rotate --verify)
shows with its time and result; a credential whose current password no verification
accepted since its last rotation is flagged \"not verified since its rotation\".
Exit code 0 whenever the report could be made; read `overdue`, `needs_recovery` and
`unverified` in --json to alert on them. An empty inventory, or a --provider/--tag that
selects nothing, is exit 4 unless --allow-empty is given.

Examples:
  siprot status
  siprot status --inventory fleet.toml --json";

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The inventory file
    #[arg(long, value_name = "PATH", default_value = inventory::DEFAULT_PATH)]
    pub inventory: PathBuf,
    /// Only this provider's credentials
    #[arg(long, short = 'p')]
    pub provider: Option<ProviderKind>,
    /// Only credentials with this tag (repeat: all must match)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// Overdue after this age for entries without max_age (30d, 12h, 2w)
    #[arg(long, value_name = "AGE", value_parser = inventory::parse_age)]
    pub max_age: Option<jiff::SignedDuration>,
    /// Report an empty inventory, or a --provider/--tag that selects nothing, with exit 0
    /// (else exit 4)
    #[arg(long)]
    pub allow_empty: bool,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `recover`'s help up to the paragraph that names the providers ([`recover_help`]).
const RECOVER_HELP: &str = "\
What it does with what it finds (in the store and $XDG_STATE_HOME/siprot/recovery):
  <entry>#pending   resend that password (setting it again is harmless) and make it current
  recovery file     store its password as the entry's current one, read it back, delete the file
  <entry>#probe     remove it (a leftover of a keyring check)
  claim             (vault store) a rotation's claim: this host's is removed once no recovery
                    file of it is left; another host's is reported and left (exit 7)";

/// `recover`'s help after the paragraph that names the providers.
const RECOVER_HELP_END: &str = "\
A recovery file is only stored when the entry was not rotated since it was written; if it
was, the file's password is dead and the file is removed. Anything else is a conflict that
siprot reports and leaves alone.

Exit code: 0 when nothing is left to recover, otherwise the highest code among what is left.

Examples:
  siprot recover --dry-run
  siprot recover --json";

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// List what would be done and change nothing (exit 9 if anything is to recover)
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

const ROTATE_FLEET_EXAMPLES: &str = "\
A fleet from an inventory (see the README for the file format):
  siprot rotate --inventory fleet.toml --if-older-than 30d
  siprot rotate --inventory fleet.toml --verify --verify-wait 30s   # entries' `registrar`";

const CHECK_NOTE: &str =
    "One trailing newline (LF or CRLF) is removed; any other control character fails the policy.";

/// Which provider, parsed from its name.
/// Where passwords are kept: `--store`, the vault store's mount and prefix, timeouts.
#[derive(Debug, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// Where passwords are kept: this machine's keyring, or a Vault/OpenBao KV v2 engine
    /// (VAULT_ADDR, VAULT_TOKEN ...) [env: SIPROT_STORE] [default: keyring]
    #[arg(long, value_name = "STORE", value_parser = parse_store)]
    pub store: Option<StoreKind>,
    /// Vault store: the KV version 2 mount [default: secret]
    #[arg(long, value_name = "MOUNT")]
    pub vault_mount: Option<String>,
    /// Vault store: the path under the mount that siprot's secrets live under
    /// [default: siprot/]
    #[arg(long, value_name = "PREFIX")]
    pub secret_prefix: Option<String>,
    /// Seconds allowed for each keyring (or vault store) call
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub keyring_timeout: Duration,
}

/// A wait such as `30s`, `2m` or `1h` (a bare number is seconds), at most an hour; `0`
/// for none.
pub fn parse_wait(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if raw.chars().all(|c| c.is_ascii_digit()) && raw.parse::<u64>().is_ok_and(|n| n == 0) {
        return Ok(Duration::ZERO);
    }
    let age = if raw.chars().all(|c| c.is_ascii_digit()) {
        inventory::parse_age(&format!("{raw}s"))?
    } else {
        inventory::parse_age(raw)?
    };
    let seconds = age.as_secs();
    if seconds > 3600 {
        return Err(format!("'{raw}' must be at most 1h"));
    }
    Ok(Duration::from_secs(seconds.unsigned_abs()))
}

fn parse_store(name: &str) -> Result<StoreKind, String> {
    StoreKind::parse(name).ok_or_else(|| {
        let names: Vec<&str> = StoreKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown store '{name}' (expected {})", names.join(" or "))
    })
}

/// One credential: `--provider P ID [--device D]` (or the provider's other second part).
#[derive(Debug, Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub provider: ProviderArg,
    /// The credential id
    #[arg(value_name = "ID")]
    pub id: String,
    #[command(flatten)]
    pub part: SecondPartArgs,
}

/// The second parts of credential ids (`--device` ...): one option per registered
/// [`providers::SecondPart`], its id the part's key, so that a provider's registration
/// alone adds its option.
#[derive(Debug, Clone, Default)]
pub struct SecondPartArgs {
    /// Each one given, as `(key, value)`.
    pub given: Vec<(&'static str, String)>,
}

impl SecondPartArgs {
    /// The parts given, as [`providers::CredentialRef::new`] takes them.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.given
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect()
    }
}

impl FromArgMatches for SecondPartArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut parts = Self::default();
        parts.update_from_arg_matches(matches)?;
        Ok(parts)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for part in providers::second_parts() {
            if let Ok(Some(value)) = matches.try_get_one::<String>(part.key) {
                self.given.retain(|(key, _)| *key != part.key);
                self.given.push((part.key, value.clone()));
            }
        }
        Ok(())
    }
}

impl Args for SecondPartArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        providers::second_parts()
            .into_iter()
            .fold(command, |command, part| {
                let takers = names_where(|r| r.second_part.is_some_and(|p| p.key == part.key));
                command.arg(
                    clap::Arg::new(part.key)
                        .long(part.flag.trim_start_matches('-'))
                        .value_name(part.value_name)
                        .value_parser(clap::value_parser!(String))
                        .action(clap::ArgAction::Set)
                        .help(format!("{} ({takers})", part.help)),
                )
            })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

#[derive(Debug, Args)]
pub struct ProviderArg {
    /// The provider
    #[arg(long, short = 'p')]
    pub provider: ProviderKind,
}

/// How to reach the provider.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Provider API base URL (overrides SIPROT_<PROVIDER>_BASE_URL and the default)
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// Timeouts and retries of provider requests.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Seconds allowed for the whole HTTP exchange
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Seconds allowed to connect (TCP and TLS)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub connect_timeout: Duration,
    /// Retries after a transient failure (where the provider allows a resend; otherwise
    /// only when the request provably never left)
    #[arg(long, value_name = "N", default_value_t = retry::DEFAULT_RETRIES,
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
    /// Seconds allowed for the provider call, all tries and waits included
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_seconds)]
    pub deadline: Duration,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The provider (with --inventory: only that provider's credentials)
    #[arg(long, short = 'p', required_unless_present = "inventory")]
    pub provider: Option<ProviderKind>,
    /// The credential id at the provider
    #[arg(value_name = "ID", required_unless_present = "inventory")]
    pub id: Option<String>,
    #[command(flatten)]
    pub part: SecondPartArgs,
    /// Description stored with the credential, where the provider keeps one
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Use the password read from standard input instead of generating one (client-set
    /// passwords only)
    #[arg(long, conflicts_with = "length")]
    pub password_stdin: bool,
    /// Length of the generated password (default: the provider's default, >= 128 bits)
    #[arg(long, value_name = "N")]
    pub length: Option<usize>,
    /// Rotate every credential of an inventory file instead of one (default path: siprot.toml)
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = inventory::DEFAULT_PATH,
        conflicts_with_all = ["id", "description", "password_stdin", "length",
                              "show_password", "base_url"]
    )]
    pub inventory: Option<PathBuf>,
    /// With --inventory: only credentials with this tag (repeat: all must match)
    #[arg(long, value_name = "TAG")]
    pub tag: Vec<String>,
    /// With --inventory: an empty inventory, or a --provider/--tag that selects nothing,
    /// rotates nothing with exit 0 (else exit 4)
    #[arg(long)]
    pub allow_empty: bool,
    /// After storing the new password, prove it with a SIP REGISTER to this registrar
    /// (sip:HOST[:PORT][;transport=udp|tcp]); exit 10 when it is not verified. With
    /// --inventory, give no URI: each entry's `registrar` is used
    #[arg(long, value_name = "URI", num_args = 0..=1)]
    pub verify: Option<Option<Registrar>>,
    #[command(flatten)]
    pub sip: SipUserArgs,
    /// With --verify: also try the #previous password and count it a failure if the
    /// registrar still accepts it
    #[arg(long)]
    pub expect_rejected_previous: bool,
    /// With --verify (client-set passwords only): when the registrar rejects the new
    /// password, set the #previous one back at the provider and in the keyring
    #[arg(long)]
    pub rollback_on_verify_failure: bool,
    /// With --verify: seconds allowed for the verification
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub verify_timeout: Duration,
    /// With --verify: while the registrar rejects the new password, ask it again (backing
    /// off) until DURATION (30s, 2m) has passed; 0: one try
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_wait)]
    pub verify_wait: Duration,
    /// With --inventory: skip credentials rotated less than AGE ago (30d, 12h, 2w; beats
    /// each entry's max_age)
    #[arg(long, value_name = "AGE", value_parser = inventory::parse_age)]
    pub if_older_than: Option<jiff::SignedDuration>,
    /// With --inventory: concurrent rotations per provider account (provider and
    /// profile) [default: 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: Option<u16>,
    /// Check configuration and keyring access and print the plan; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Rotate without asking first: on a terminal, a rotation whose new password the
    /// provider generates (the old one stops working at once) is confirmed first
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub hook: HookArgs,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    /// Also print the new password (the only way a password reaches standard output)
    #[arg(long)]
    pub show_password: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Debug, Args)]
pub struct ToggleArgs {
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
    /// Where `siprot login` keeps the API keys, when they are not in the environment
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `disable`: `enable`'s arguments and `--yes`.
#[derive(Debug, Args)]
pub struct DisableArgs {
    #[command(flatten)]
    pub toggle: ToggleArgs,
    /// Disable without asking first (on a terminal, disable asks for confirmation)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CheckPasswordArgs {
    /// The policy to check against (default: siprot's generic strong policy)
    #[arg(long, short = 'p')]
    pub provider: Option<ProviderKind>,
    /// Read the password from standard input (the only source; `-` may be given for clarity)
    #[arg(value_name = "-", value_parser = ["-"], hide_possible_values = true)]
    pub stdin: Option<String>,
    /// Print one JSON object on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The policy the password must pass (default: siprot's generic strong policy)
    #[arg(long, short = 'p')]
    pub provider: Option<ProviderKind>,
    /// Length in characters (default: enough for at least 128 bits of entropy)
    #[arg(long, value_name = "N")]
    pub length: Option<usize>,
    /// Print one JSON object on standard output: the password, its length, the policy
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print the stored current password and a newline, nothing else
    Get(SecretGetArgs),
}

#[derive(Debug, Args)]
pub struct SecretGetArgs {
    #[command(flatten)]
    pub credential: CredentialArgs,
    /// Print the `#previous` password instead of the current one
    #[arg(long, conflicts_with = "pending")]
    pub previous: bool,
    /// Print the `#pending` (unconfirmed) password instead of the current one
    #[arg(long)]
    pub pending: bool,
    /// Print one JSON object on standard output: the password, provider, credential,
    /// slot and entry
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Parses the process's arguments with [`command`]'s help texts (exits on `--help`,
/// `--version` and usage errors, as clap does).
pub fn parse() -> Cli {
    let mut matches = command().try_get_matches().unwrap_or_else(|error| {
        let argv: Vec<String> = std::env::args_os()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        if let Some(message) = unrepeated_error(&error, &argv) {
            crate::output::error(&crate::Error::Usage(message));
            std::process::exit(i32::from(crate::error::exit::USAGE.code()));
        }
        error.exit()
    });
    Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|error| error.exit())
}

/// The one-line message (exit 2) of a usage error that clap would print with a stray
/// argument in it, such as a password typed after `check-password`, which must never be
/// repeated on standard error (a terminal's scrollback, a CI log); `None` for any other
/// error, which clap prints as usual.
pub fn unrepeated_error(error: &clap::Error, argv: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let invalid_arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => Some(arg.as_str()),
        _ => None,
    };
    let stray = match error.kind() {
        // An argument where none is taken (an option's name is safe to repeat).
        ErrorKind::UnknownArgument => invalid_arg.is_some_and(|arg| !arg.starts_with('-')),
        // Anything but `-` as check-password's one argument.
        ErrorKind::InvalidValue => invalid_arg == Some("[-]"),
        _ => false,
    };
    if !stray {
        return None;
    }
    // The subcommand: the leading words of the command line that name one.
    let mut current = command();
    let mut path = Vec::new();
    for word in argv.iter().skip(1).filter(|arg| !arg.starts_with('-')) {
        let Some(sub) = current.find_subcommand(word).cloned() else {
            break;
        };
        path.push(sub.get_name().to_owned());
        current = sub;
    }
    let path = path.join(" ");
    let not_repeated = "the argument is not repeated here, in case it is a password";
    Some(match path.as_str() {
        "check-password" => format!(
            "check-password reads the password from standard input, never from the command \
             line: type it after `siprot check-password` (it is not echoed) or pipe it in \
             ({not_repeated}; remove it from your shell history)"
        ),
        "" => format!("unexpected argument ({not_repeated}); see `siprot --help`"),
        _ => format!("unexpected argument to {path} ({not_repeated}); see `siprot {path} --help`"),
    })
}

/// The command line with every help text and example that names providers built from the
/// registry ([`providers::ALL`]), so that a new provider appears in `--help` by itself.
pub fn command() -> clap::Command {
    with_help(Cli::command(), &shared_arg_texts())
        .about(format!(
            "Rotate SIP passwords at {} and keep every new secret in the OS keyring",
            names_where(|_| true)
        ))
        .after_help(top_help())
        .mut_subcommand("exit-codes", |c| {
            c.after_help(format!(
                "{}\n\
                 Examples:\n\
                 \x20 siprot help exit-codes\n\
                 \x20 siprot exit-codes --json",
                exit_code_table()
            ))
        })
        .mut_subcommand("rotate", rotate_texts)
        .mut_subcommand("rotate", |c| {
            // A fleet's credentials name their own second parts.
            providers::second_parts().into_iter().fold(c, |c, part| {
                c.mut_arg(part.key, |a| a.conflicts_with("inventory"))
            })
        })
        .mut_subcommand("verify", |c| c.after_help(verify_help()))
        .mut_subcommand("check-password", |c| c.after_help(check_help()))
        .mut_subcommand("enable", |c| {
            c.about(format!(
                "Enable a credential (providers that support it: {})",
                names_where(|r| r.can_toggle)
            ))
            .after_help(toggle_help("enable"))
        })
        .mut_subcommand("disable", |c| {
            c.about(format!(
                "Disable a credential without deleting it (providers that support it: {})",
                names_where(|r| r.can_toggle)
            ))
            .after_help(toggle_help("disable"))
        })
        .mut_subcommand("generate", |c| c.after_help(generate_help()))
        .mut_subcommand("secret", |c| {
            c.after_help(secret_help())
                .mut_subcommand("get", |c| c.after_help(secret_help()))
        })
        .mut_subcommand("exec", |c| c.after_help(exec_help()))
        .mut_subcommand("recover", |c| c.after_help(recover_help()))
        .mut_subcommand("login", |c| c.after_help(login_help()))
        .mut_subcommand("logout", |c| c.after_help(logout_help()))
        .mut_subcommand("config", |c| {
            c.after_help(config_help())
                .mut_subcommand("show", |c| c.after_help(config_show_help()))
        })
}

/// `recover`'s help: which providers leave which leftovers, from the registry.
fn recover_help() -> String {
    let kinds = format!(
        "#pending entries are left by the providers that take a client-set password ({}), \
         recovery files and claims by those that generate it ({}).",
        names_where(client_set),
        names_where(|r| !client_set(r))
    );
    format!(
        "{RECOVER_HELP}\n\n{}\n\n{RECOVER_HELP_END}",
        wrap(&kinds, 88).join("\n")
    )
}

/// The secrets `login` keeps for `r`, in the order `--with-token` reads them:
/// `api_key (VAR), then api_token (VAR)`.
fn login_secrets(r: &Registration) -> String {
    let shown = |key: &str| {
        r.settings.iter().find(|spec| spec.key == key).map_or_else(
            || key.to_owned(),
            |spec| format!("{} ({})", spec.key, spec.var),
        )
    };
    if let LoginSecrets::OneOf {
        when_set,
        then,
        otherwise,
    } = r.login
    {
        return format!("{}; with {when_set}: {}", shown(otherwise), shown(then));
    }
    let secrets: Vec<String> = r
        .secrets()
        .iter()
        .map(|spec| format!("{} ({})", spec.key, spec.var))
        .collect();
    if secrets.is_empty() {
        "nothing (no secret setting)".to_owned()
    } else {
        secrets.join(", then ")
    }
}

/// The provider with the most secrets (the first of them): the one whose examples show
/// several lines on standard input.
fn most_secrets() -> &'static Registration {
    let most = providers::ALL
        .iter()
        .map(|kind| kind.registration().secrets().len())
        .max()
        .unwrap_or(0);
    first_where(|r| r.secrets().len() == most)
}

/// `login`'s help: each registered provider's secrets in `--with-token`'s order, the
/// plain settings and the examples, from the registry.
fn login_help() -> String {
    let width = providers::ALL
        .iter()
        .map(|kind| kind.name().len())
        .max()
        .unwrap_or(0);
    let mut help = format!("{LOGIN_HELP}\n");
    for r in providers::ALL.iter().map(|kind| kind.registration()) {
        help += &format!("  {:<width$}  {}\n", r.name, login_secrets(r));
    }
    let multi = most_secrets();
    let key = multi.secrets().first().map_or("<key>", |spec| spec.key);
    let rest = format!(
        "They are kept as the store entries login/<provider>/<profile>/<key> (e.g. \
         login/{}/{EXAMPLE_PROFILE}/{key}) and used whenever the environment variable is not \
         set (the environment wins). Plain settings ({}) go into a profile of the config file \
         or the environment, never a secret (see `siprot config show`). The providers' \
         documented APIs have no read-only request, so the keys cannot be checked here: the \
         first rotation (or `--dry-run`) uses them.",
        multi.name,
        providers::setting_keys_where(|spec| !spec.secret)
    );
    help += &wrap(&rest, 88).join("\n");
    help + "\n\n" + &login_examples(multi)
}

/// `login`'s examples: `multi` (with the most secrets) reads several lines.
fn login_examples(multi: &Registration) -> String {
    let first = first_where(|_| true);
    let one = first_where(|r| r.secrets().len() == 1);
    let secrets = multi.secrets();
    let lines = "%s\\n".repeat(secrets.len());
    let values: Vec<String> = secrets
        .iter()
        .map(|spec| format!("\"${}\"", spec.key.to_uppercase()))
        .collect();
    format!(
        "Examples:\n\
         \x20 siprot login --provider {}\n\
         \x20 siprot login --provider {} --profile reseller\n\
         \x20 siprot login --provider {} --with-token < ~/{}.key\n\
         \x20 printf '{lines}' {} | siprot login --provider {} --with-token\n\
         \x20 siprot login --provider {} --store vault --with-token < token.txt",
        first.name,
        last_provider().name,
        one.name,
        one.name,
        values.join(" "),
        multi.name,
        one.name,
    )
}

/// `logout`'s help and examples.
fn logout_help() -> String {
    format!(
        "{LOGOUT_HELP}\n\n\
         Examples:\n\
         \x20 siprot logout --provider {}\n\
         \x20 siprot logout --provider {} --profile {EXAMPLE_PROFILE} --json",
        first_where(|_| true).name,
        most_secrets().name,
    )
}

/// `config`'s help and examples.
fn config_help() -> String {
    format!(
        "{CONFIG_HELP}\n\n\
         Examples:\n\
         \x20 siprot config show\n\
         \x20 siprot --profile {EXAMPLE_PROFILE} config show --provider {} --json",
        most_secrets().name,
    )
}

/// Whether `spec` belongs in a profile's table other than as the base URL.
fn plain_account_setting(spec: &Spec) -> bool {
    !spec.secret && spec.key != crate::settings::BASE_URL
}

/// `config show`'s help: each registered provider's plain settings, a table of the first
/// provider that has some, the secrets refused, the examples.
fn config_show_help() -> String {
    let width = providers::ALL
        .iter()
        .map(|kind| kind.name().len())
        .max()
        .unwrap_or(0);
    let mut help = format!("{CONFIG_SHOW_HELP}\n");
    for r in providers::ALL.iter().map(|kind| kind.registration()) {
        let keys: Vec<&str> = r
            .settings
            .iter()
            .filter(|spec| !spec.secret)
            .map(|spec| spec.key)
            .collect();
        help += &format!("  {:<width$}  {}\n", r.name, keys.join(", "));
    }
    let table = first_where(|r| r.settings.iter().any(plain_account_setting));
    help += &format!("for example:\n  [{}.{EXAMPLE_PROFILE}]\n", table.name);
    for spec in table
        .settings
        .iter()
        .filter(|spec| plain_account_setting(spec))
    {
        help += &format!("  {} = \"...\"\n", spec.key);
    }
    let refused = format!(
        "A file holding a secret ({}, anything like a password) is refused (exit 4): keep \
         secrets with `siprot login`.",
        providers::setting_keys_where(|spec| spec.secret)
    );
    help += &wrap(&refused, 88).join("\n");
    help + &format!(
        "\n\n\
         Examples:\n\
         \x20 siprot config show\n\
         \x20 siprot config show --provider {} --profile reseller\n\
         \x20 siprot config show --json",
        last_provider().name
    )
}

/// The top-level help after the options: every exit code with its summary (from
/// [`error::EXIT_CODES`]), where each is explained, then [`AFTER_HELP`].
fn top_help() -> String {
    let codes: Vec<String> = error::EXIT_CODES
        .iter()
        .map(|doc| format!("{} {}", doc.code, doc.summary))
        .collect();
    format!(
        "Exit codes: {}. `siprot help exit-codes` says what each means and what to do.\n\n\
         {AFTER_HELP}",
        codes.join(", ")
    )
}

/// The table of `siprot help exit-codes` and `siprot exit-codes`: each code, what it means
/// and what to do, from [`error::EXIT_CODES`], wrapped within 80 columns.
pub fn exit_code_table() -> String {
    const INDENT: &str = "       ";
    let mut table = String::from("Exit codes, what each means and what to do:\n");
    for doc in error::EXIT_CODES {
        let mut first = true;
        for line in wrap(doc.meaning, 80 - INDENT.len()) {
            if first {
                table += &format!("  {:<5}{line}\n", doc.code.to_string());
                first = false;
            } else {
                table += &format!("{INDENT}{line}\n");
            }
        }
        let mut first = true;
        for line in wrap(doc.what_to_do, 80 - INDENT.len() - 3) {
            let lead = if first { "-> " } else { "   " };
            table += &format!("{INDENT}{lead}{line}\n");
            first = false;
        }
    }
    table
}

/// `text`'s words in lines of at most `width` characters (a longer word on its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// `enable`'s or `disable`'s examples (`operation` is the subcommand); `disable`'s
/// confirmation.
fn toggle_help(operation: &str) -> String {
    let r = first_where(|r| r.can_toggle);
    let (question, yes) = if operation == "disable" {
        (format!("{DISABLE_QUESTION}\n\n"), " --yes")
    } else {
        (String::new(), "")
    };
    format!(
        "{question}Examples:\n\
         \x20 siprot {operation} --provider {} {}\n\
         \x20 siprot {operation} --provider {} {}{yes} --json",
        r.name, r.example, r.name, r.example,
    )
}

const DISABLE_QUESTION: &str = "\
On a terminal, disable asks first (\"...? [y/N]\" on standard error) and sends nothing
unless the answer is y or yes (exit 2 otherwise); --yes skips the question, which is never
asked when standard input is not a terminal (scripts, cron, CI).";

/// `generate`'s examples.
fn generate_help() -> String {
    let set = first_where(client_set);
    format!(
        "Examples:\n\
         \x20 siprot generate\n\
         \x20 siprot generate --provider {} --length 32\n\
         \x20 siprot generate --provider {} --json",
        set.name,
        last_provider().name,
    )
}

/// `secret get`'s examples (also `secret`'s).
fn secret_help() -> String {
    let first = first_where(|_| true);
    let device = first_where(|r| r.second_part.is_some());
    let last = last_provider();
    format!(
        "Examples:\n\
         \x20 siprot secret get --provider {} {}\n\
         \x20 siprot secret get --provider {} {} --previous\n\
         \x20 siprot secret get --provider {} {} --json",
        first.name, first.example, device.name, device.example, last.name, last.example,
    )
}

/// `exec`'s help and examples.
fn exec_help() -> String {
    let first = first_where(|_| true);
    let last = last_provider();
    format!(
        "{EXEC_HELP}\n\n\
         Examples:\n\
         \x20 siprot exec --provider {} ID --exec /usr/local/bin/siprot-asterisk-hook\n\
         \x20 siprot exec --provider {} {} --inventory fleet.toml --json",
        last.name, first.name, first.example,
    )
}

/// Whether the provider takes the password from siprot (`--password-stdin`, `--verify`'s
/// rollback).
fn client_set(r: &Registration) -> bool {
    r.origin == PasswordOrigin::ClientSupplied
}

/// The first provider in the registry `filter` picks (the first of all when none does):
/// the one an example names.
fn first_where(filter: impl Fn(&Registration) -> bool) -> &'static Registration {
    providers::ALL
        .iter()
        .map(|kind| kind.registration())
        .find(|r| filter(r))
        .unwrap_or_else(|| providers::ALL[0].registration())
}

/// The last provider in the registry.
fn last_provider() -> &'static Registration {
    providers::ALL[providers::ALL.len() - 1].registration()
}

/// The help of the arguments several subcommands share.
fn shared_arg_texts() -> [(&'static str, String); 2] {
    [
        (
            "username",
            format!(
                "The SIP username (default: the one the provider returned, now or at the last \
                 rotation; none from {})",
                names_where(|r| !r.returns_sip_username)
            ),
        ),
        (
            "retries",
            format!(
                "Retries after a transient failure ({}: any; {}: only when the request provably \
                 never left)",
                names_where(|r| r.resend == retry::Resend::Idempotent),
                names_where(|r| r.resend != retry::Resend::Idempotent)
            ),
        ),
    ]
}

/// `rotate`'s examples and the help of its arguments that name providers.
fn rotate_texts(c: clap::Command) -> clap::Command {
    let client = names_where(client_set);
    c.after_help(rotate_examples())
        .mut_arg("id", |a| a.help(id_help()))
        .mut_arg("yes", |a| {
            a.help(format!(
                "Rotate without asking first: on a terminal, a rotation whose new password the \
                 provider generates ({}: the old one stops working at once) is confirmed first",
                names_where(|r| !client_set(r))
            ))
        })
        .mut_arg("description", |a| {
            a.help(format!(
                "Description stored with the credential ({}; default \"Rotated by \
                 siprot on <UTC date>\")",
                names_where(|r| r.takes_description)
            ))
        })
        .mut_arg("password_stdin", |a| {
            a.help(format!(
                "Use the password read from standard input instead of generating one \
                 ({client})"
            ))
        })
        .mut_arg("rollback_on_verify_failure", |a| {
            a.help(format!(
                "With --verify ({client}): when the registrar rejects the new password, \
                 set the #previous one back at the provider and in the keyring"
            ))
        })
}

/// `rotate`'s examples: one per provider, then the flags' and the fleet's.
fn rotate_examples() -> String {
    let set = first_where(client_set);
    let described = first_where(|r| r.takes_description);
    let device = first_where(|r| r.second_part.is_some());
    let mut rotate_examples = String::from("Examples:\n");
    for r in providers::ALL.iter().map(|kind| kind.registration()) {
        rotate_examples += &format!("  siprot rotate --provider {} {}\n", r.name, r.example);
    }
    // Placeholders instead of example ids keep the longer lines within 100 columns.
    let short = |r: &Registration| {
        let part = r
            .second_part
            .map(|p| format!(" {} {}", p.flag, p.value_name))
            .unwrap_or_default();
        format!("--provider {} ID{part}", r.name)
    };
    rotate_examples += &format!(
        "  siprot rotate --provider {} {} --description 'Q3 rotation'\n\
         \x20 generate-password | siprot rotate {} --password-stdin\n\
         \x20 siprot rotate {} --dry-run --json\n\
         \x20 siprot rotate {} \\\n\
         \x20     --verify 'sip:sip.example.net;transport=tcp' --expect-rejected-previous \\\n\
         \x20     --rollback-on-verify-failure\n\n\
         {ROTATE_FLEET_EXAMPLES}\n\
         \x20 siprot rotate --inventory --tag prod --provider {} --concurrency 16 --json",
        described.name,
        described.example,
        short(set),
        short(device),
        short(set),
        last_provider().name,
    );
    rotate_examples
}

/// The help of `rotate`'s credential id: what it is at each provider.
fn id_help() -> String {
    let ids = providers::ALL
        .iter()
        .map(|kind| format!("{} {}", kind.name(), kind.registration().id_is))
        .collect::<Vec<_>>();
    match ids.as_slice() {
        [rest @ .., last] if !rest.is_empty() => {
            format!("The credential: {}, or {last}", rest.join(", "))
        }
        _ => format!("The credential: {}", ids.join("")),
    }
}

/// `verify`'s help and examples.
fn verify_help() -> String {
    let verify = first_where(|r| r.returns_sip_username);
    let last = last_provider();
    format!(
        "{VERIFY_HELP}\n\n\
         Examples:\n\
         \x20 siprot verify --registrar sip:sip.example.net -p {} {}\n\
         \x20 siprot verify --registrar 'sip:10.0.0.5:5080;transport=tcp' -p {} \\\n\
         \x20     {} --expect-rejected-previous --json",
        verify.name, verify.example, last.name, last.example,
    )
}

/// `check-password`'s examples and note.
fn check_help() -> String {
    format!(
        "Examples:\n\
         \x20 siprot check-password --provider {}       (type the password; it is not echoed)\n\
         \x20 printf %s \"$candidate\" | siprot check-password --provider {} --json\n\n\
         {CHECK_NOTE}",
        first_where(client_set).name,
        last_provider().name,
    )
}

/// Sets the help of each argument named in `texts`, in `command` and every subcommand
/// that has it.
fn with_help(command: clap::Command, texts: &[(&str, String)]) -> clap::Command {
    let mut command = command;
    for (id, text) in texts {
        if command.get_arguments().any(|arg| arg.get_id() == *id) {
            command = command.mut_arg(*id, |arg| arg.help(text.clone()));
        }
    }
    command.mut_subcommands(|sub| with_help(sub, texts))
}

impl ValueEnum for ProviderKind {
    fn value_variants<'a>() -> &'a [Self] {
        providers::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()).help(self.registration().summary))
    }
}

/// Test helpers shared with `commands::completions`: the lists of provider names a text
/// carries, and the lists the registry makes.
#[cfg(test)]
pub(crate) mod provider_lists {
    use crate::providers::{self, PasswordOrigin, Registration};
    use crate::retry::Resend;

    /// Each run of two or more registered provider names in `text`, lowercased: names
    /// separated only by punctuation, whitespace, `and` or `or` (a name repeated at once,
    /// as PowerShell's completions do, counts once).
    pub fn runs(text: &str) -> Vec<Vec<String>> {
        let names: Vec<String> = providers::ALL
            .iter()
            .map(|kind| kind.name().to_lowercase())
            .collect();
        let mut runs = Vec::new();
        let mut run: Vec<String> = Vec::new();
        let words = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase);
        for word in words.chain(std::iter::once(String::new())) {
            if names.contains(&word) {
                if run.last() != Some(&word) {
                    run.push(word);
                }
            } else if word != "and" && word != "or" {
                if run.len() >= 2 {
                    runs.push(std::mem::take(&mut run));
                }
                run.clear();
            }
        }
        runs
    }

    /// Every list of names the registry makes: all providers, and those each registration
    /// flag picks or leaves out, in registry order.
    pub fn registry_lists() -> Vec<Vec<String>> {
        let flags: [&dyn Fn(&Registration) -> bool; 7] = [
            &|_| true,
            &|r| r.origin == PasswordOrigin::ClientSupplied,
            &|r| r.second_part.is_some(),
            &|r| r.can_toggle,
            &|r| r.takes_description,
            &|r| r.returns_sip_username,
            &|r| r.resend == Resend::Idempotent,
        ];
        let mut lists = Vec::new();
        for flag in flags {
            for wanted in [true, false] {
                lists.push(
                    providers::ALL
                        .iter()
                        .map(|kind| kind.registration())
                        .filter(|r| flag(r) == wanted)
                        .map(|r| r.name.to_lowercase())
                        .collect(),
                );
            }
        }
        lists
    }

    /// Fails unless every list of providers in `text` is one the registry makes (with a
    /// copy of a provider registered, a hand-written list misses the copy and fails).
    pub fn assert_from_registry(what: &str, text: &str) {
        let lists = registry_lists();
        for run in runs(text) {
            assert!(
                lists.contains(&run),
                "{what}: the list of providers {run:?} is not one the registry makes \
                 ({lists:?}): build it with providers::names_where\n{text}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_wait_is_zero_or_a_duration_of_at_most_an_hour() {
        for (raw, secs) in [
            ("0", 0),
            ("00", 0),
            ("30s", 30),
            ("2m", 120),
            ("45", 45),
            ("1h", 3600),
        ] {
            assert_eq!(parse_wait(raw), Ok(Duration::from_secs(secs)), "{raw}");
        }
        for raw in ["", "-1s", "2h", "3601", "1.5s", "soon"] {
            assert!(parse_wait(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn verify_takes_an_optional_uri() {
        let parse = |args: &[&str]| {
            let mut argv = vec!["siprot", "rotate"];
            argv.extend_from_slice(args);
            match Cli::try_parse_from(argv).map(|cli| cli.command) {
                Ok(Command::Rotate(args)) => Ok(args.verify.map(|v| v.map(|r| r.to_string()))),
                Ok(_) => panic!("not rotate"),
                Err(e) => Err(e.kind()),
            }
        };
        assert_eq!(
            parse(&["--inventory", "f.toml", "--verify"]),
            Ok(Some(None))
        );
        assert_eq!(
            parse(&["--verify", "--inventory", "f.toml"]),
            Ok(Some(None))
        );
        assert_eq!(
            parse(&["-p", "vobiz", "c", "--verify", "sip:h"]),
            Ok(Some(Some("sip:h:5060;transport=udp".into())))
        );
        assert_eq!(parse(&["-p", "vobiz", "c"]), Ok(None));
    }

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    fn long_help(path: &[&str]) -> String {
        let mut command = command();
        command.build();
        let mut current = &mut command;
        for name in path {
            current = current.find_subcommand_mut(name).unwrap();
        }
        current.render_long_help().to_string()
    }

    #[test]
    fn help_names_the_providers_from_the_registry() {
        // Expectations come from the registry (`names_where` has its own test), so that
        // registering a provider needs no edit here.
        // Prose is compared with its line wrapping undone: clap wraps where it likes.
        let flat = |help: &str| help.split_whitespace().collect::<Vec<_>>().join(" ");
        let all = names_where(|_| true);
        let top = flat(&long_help(&[]));
        assert!(
            top.contains(&format!("Rotate SIP passwords at {all}")),
            "{top}"
        );
        let rotate = long_help(&["rotate"]);
        for kind in providers::ALL {
            let r = kind.registration();
            let example = format!("siprot rotate --provider {} {}\n", r.name, r.example);
            assert!(rotate.contains(&example), "{example} in {rotate}");
            assert!(
                flat(&rotate).contains(&format!("{} {}", r.name, r.id_is)),
                "{rotate}"
            );
        }
        let client = names_where(|r| r.origin == PasswordOrigin::ClientSupplied);
        assert!(flat(&rotate).contains(&format!("({client})")), "{rotate}");
        let idempotent = names_where(|r| r.resend == retry::Resend::Idempotent);
        let not = names_where(|r| r.resend != retry::Resend::Idempotent);
        assert!(
            flat(&rotate).contains(&format!("{idempotent}: any; {not}: only")),
            "{rotate}"
        );
        for path in [
            &["rotate"][..],
            &["verify"],
            &["enable"],
            &["secret", "get"],
        ] {
            let help = long_help(path);
            for part in providers::second_parts() {
                let takers = names_where(|r| r.second_part.is_some_and(|p| p.key == part.key));
                let text = format!("{} <{}>", part.flag, part.value_name);
                assert!(flat(&help).contains(&text), "{path:?}: {help}");
                let text = format!("{} ({takers})", part.help);
                assert!(flat(&help).contains(&text), "{path:?}: {help}");
            }
        }
        let verify = providers::ALL
            .iter()
            .map(|kind| kind.registration())
            .find(|r| r.returns_sip_username)
            .expect("a provider returns a SIP username");
        let example = format!("-p {} {}", verify.name, verify.example);
        assert!(long_help(&["verify"]).contains(&example));
        let toggles = names_where(|r| r.can_toggle);
        assert!(top.contains(&format!("(providers that support it: {toggles})")));
    }

    /// Every subcommand at every depth (clap's own `help` aside), with its path.
    fn every_path() -> Vec<Vec<String>> {
        fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
            for sub in command.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                path.push(sub.get_name().to_owned());
                out.push(path.clone());
                walk(sub, path, out);
                path.pop();
            }
        }
        let mut command = command();
        command.build();
        let mut out = vec![Vec::new()];
        walk(&command, &mut Vec::new(), &mut out);
        out
    }

    #[test]
    fn every_list_of_providers_in_every_help_is_one_the_registry_makes() {
        for path in every_path() {
            let names: Vec<&str> = path.iter().map(String::as_str).collect();
            let help = long_help(&names);
            provider_lists::assert_from_registry(
                &format!("siprot {} --help", path.join(" ")),
                &help,
            );
        }
        // The check itself: a hand-written list that leaves a provider out fails it.
        let all = providers::ALL
            .iter()
            .map(|kind| kind.name())
            .collect::<Vec<_>>();
        if let [first, .., last] = all.as_slice() {
            assert!(
                !provider_lists::registry_lists()
                    .contains(&vec![last.to_string(), first.to_string()])
            );
            assert_eq!(
                provider_lists::runs(&format!("({first} and {last}); x {first}, y")),
                vec![vec![first.to_string(), last.to_string()]]
            );
        }
    }

    #[test]
    fn login_help_lists_each_providers_secrets_in_with_token_order() {
        let help = long_help(&["login"]);
        let listed: Vec<&str> = help
            .split("nothing is ever taken as an argument.\n")
            .nth(1)
            .and_then(|rest| rest.split("They are kept").next())
            .expect("the list of secrets")
            .lines()
            .collect();
        assert_eq!(listed.len(), providers::ALL.len(), "{listed:?}");
        for (kind, line) in providers::ALL.iter().zip(listed) {
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some(kind.name()), "{line}");
            let rest: Vec<&str> = words.collect();
            // Independently of `Registration::secrets`: every secret setting, in order, by
            // its key and its variable; nothing else.
            let registration = kind.registration();
            let var = |key: &str| {
                let spec = registration.settings.iter().find(|s| s.key == key);
                format!("{key} ({})", spec.expect("a setting of its own").var)
            };
            let expected = match registration.login {
                LoginSecrets::All => registration
                    .settings
                    .iter()
                    .filter(|spec| spec.secret)
                    .map(|spec| format!("{} ({})", spec.key, spec.var))
                    .collect::<Vec<_>>()
                    .join(", then "),
                // The one secret login keeps, chosen by a plain setting.
                LoginSecrets::OneOf {
                    when_set,
                    then,
                    otherwise,
                } => format!("{}; with {when_set}: {}", var(otherwise), var(then)),
            };
            assert_eq!(rest.join(" "), expected, "{line}");
        }
    }

    #[test]
    fn config_show_help_lists_each_providers_plain_settings_and_refuses_every_secret() {
        let help = long_help(&["config", "show"]);
        let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for kind in providers::ALL {
            let keys: Vec<&str> = kind
                .registration()
                .settings
                .iter()
                .filter(|spec| !spec.secret)
                .map(|spec| spec.key)
                .collect();
            let line = format!("{} {}", kind.name(), keys.join(", "));
            assert!(flat.contains(&line), "{line} in {help}");
            for spec in kind.registration().settings.iter().filter(|s| s.secret) {
                let refused = flat
                    .split("A file holding a secret (")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    .expect("the secrets refused");
                assert!(refused.split(", ").any(|key| key == spec.key), "{refused}");
            }
        }
    }

    /// Where a registered provider's name may be written in `src/`: its own module, the
    /// registry's lines in `providers/mod.rs`, comments, tests and test-only modules.
    fn allowed_line(path: &std::path::Path, line: &str, name: &str) -> bool {
        let trimmed = line.trim_start();
        let in_cli = path.ends_with("cli.rs");
        // Doc comments of cli.rs are clap's help texts; other comments are for readers.
        (trimmed.starts_with("//") && !(in_cli && trimmed.starts_with("///")))
            || (path.ends_with("providers/mod.rs")
                && (trimmed == format!("pub mod {name};")
                    || trimmed == format!("ProviderKind(&{name}::REGISTRATION),")))
    }

    /// The files of `dir` (recursively) that are test-only modules (`#[cfg(test)]` then
    /// `mod NAME;`) or a provider's own module.
    fn exempt_files(src: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut exempt: Vec<std::path::PathBuf> = providers::ALL
            .iter()
            .map(|kind| src.join("providers").join(format!("{}.rs", kind.name())))
            .collect();
        for path in rust_files(src) {
            let text = std::fs::read_to_string(&path).unwrap();
            let dir = path.parent().unwrap();
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next() {
                let next = lines.peek().map_or("", |next| next.trim());
                let module = next.strip_prefix("pub mod ").or(next.strip_prefix("mod "));
                if line.trim() == "#[cfg(test)]"
                    && let Some(module) = module.and_then(|m| m.strip_suffix(';'))
                {
                    exempt.push(dir.join(format!("{module}.rs")));
                }
            }
        }
        exempt
    }

    fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(rust_files(&path));
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
        files
    }

    /// The lines of a source file up to its first inline test module (`#[cfg(test)]`
    /// then `mod NAME {`, `pub(crate) mod NAME {` ...).
    fn code_lines(text: &str) -> Vec<&str> {
        let lines: Vec<&str> = text.lines().collect();
        let end = lines
            .windows(2)
            .position(|pair| {
                pair[0].trim() == "#[cfg(test)]"
                    && pair[1].contains("mod ")
                    && pair[1].trim_end().ends_with('{')
            })
            .unwrap_or(lines.len());
        lines[..end].to_vec()
    }

    #[test]
    fn no_provider_name_is_written_outside_its_module_and_the_registry() {
        // Help texts, messages and completions name providers through the registry only:
        // a name written by hand (`telepath`, `EXOTEL_API_KEY`, any case) in the code of
        // another file is a list a new provider would not be in.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let exempt = exempt_files(&src);
        assert!(exempt.len() > providers::ALL.len(), "{exempt:?}");
        let mut found = Vec::new();
        for path in rust_files(&src).into_iter().filter(|p| !exempt.contains(p)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for (number, line) in code_lines(&text).iter().enumerate() {
                let words: Vec<String> = line
                    .split(|c: char| !c.is_alphanumeric())
                    .map(str::to_lowercase)
                    .collect();
                let named = providers::ALL.iter().any(|kind| {
                    words.iter().any(|word| word == kind.name())
                        && !allowed_line(&path, line, kind.name())
                });
                if named {
                    found.push(format!("{}:{}: {line}", path.display(), number + 1));
                }
            }
        }
        assert!(
            found.is_empty(),
            "provider names written by hand:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn each_second_part_parses_under_its_own_key() {
        for part in providers::second_parts() {
            let argv = [
                "siprot", "secret", "get", "-p", "vobiz", "c", part.flag, "v1",
            ];
            let cli = Cli::from_arg_matches(&command().try_get_matches_from(argv).unwrap());
            let Ok(Cli {
                command: Command::Secret(SecretCommand::Get(args)),
                ..
            }) = cli
            else {
                panic!("not secret get")
            };
            assert_eq!(args.credential.part.pairs(), [(part.key, "v1")]);
            let argv = ["siprot", "rotate", "--inventory", "f.toml", part.flag, "v1"];
            assert!(
                command().try_get_matches_from(argv).is_err(),
                "{}",
                part.flag
            );
        }
    }

    #[test]
    fn providers_parse_from_their_names_only() {
        let cli = Cli::try_parse_from(["siprot", "rotate", "--provider", "vobiz", "id1"]).unwrap();
        let Command::Rotate(args) = cli.command else {
            panic!("not rotate")
        };
        assert_eq!(args.provider.map(|p| p.name()), Some("vobiz"));
        let err =
            Cli::try_parse_from(["siprot", "rotate", "--provider", "nope", "id1"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    /// Every `pub const NAME: ExitCode = ExitCode(N)` in `error::exit`, read from the
    /// source, so that a new exit code fails the tests until `--help` and
    /// `error::EXIT_CODES` list it.
    fn exit_constants() -> Vec<u8> {
        let source = include_str!("error.rs");
        let block = source
            .split("pub mod exit {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .expect("error.rs has `pub mod exit`");
        let codes: Vec<u8> = block
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub const "))
            .map(|line| {
                let number = line
                    .split("ExitCode(")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    .expect("pub const NAME: ExitCode = ExitCode(N)");
                number.parse::<u8>().expect("a number")
            })
            .collect();
        assert!(codes.len() >= 15, "{codes:?}");
        assert!(codes.contains(&crate::error::exit::HOOK_FAILED.code()));
        codes
    }

    #[test]
    fn top_level_help_lists_every_exit_code() {
        let codes = exit_constants();
        let help = long_help(&[]);
        let listed = help
            .split("Exit codes:")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("an Exit codes: paragraph");
        let numbers: Vec<u8> = listed
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '/' | '(' | ')'))
            .filter_map(|token| token.parse::<u8>().ok())
            .collect();
        for code in codes {
            assert!(numbers.contains(&code), "exit code {code} not in: {listed}");
        }
        assert!(
            listed.contains("`siprot help exit-codes` says what each means"),
            "{listed}"
        );
    }

    #[test]
    fn help_exit_codes_explains_every_exit_code_once_in_order() {
        let mut codes = exit_constants();
        codes.sort_unstable();
        let table: Vec<u8> = error::EXIT_CODES.iter().map(|d| d.code.code()).collect();
        assert_eq!(table, codes);
        let help = long_help(&["exit-codes"]);
        let listed = help
            .split("Exit codes, what each means and what to do:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("the table");
        let numbers: Vec<u8> = listed
            .lines()
            .filter(|line| !line.starts_with("   "))
            .filter_map(|line| line.split_whitespace().next()?.parse::<u8>().ok())
            .collect();
        assert_eq!(numbers, codes, "{listed}");
        for doc in error::EXIT_CODES {
            let flat = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat(listed).contains(&flat(doc.meaning)), "{}", doc.meaning);
            assert!(flat(listed).contains(&flat(doc.what_to_do)), "{}", doc.code);
        }
        assert!(listed.lines().all(|line| line.len() <= 80), "{listed}");
        assert_eq!(
            exit_code_table().trim_end(),
            format!("Exit codes, what each means and what to do:\n{listed}").trim_end()
        );
    }

    #[test]
    fn every_subcommand_has_examples_in_its_long_help() {
        // Every subcommand at every depth (clap's own `help` aside), found in the command
        // tree, so that a new subcommand fails here until its help has examples.
        fn walk(command: &clap::Command, path: &mut Vec<String>, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                if sub.get_name() == "help" {
                    continue;
                }
                path.push(sub.get_name().to_owned());
                let names: Vec<&str> = path.iter().map(String::as_str).collect();
                let help = long_help(&names);
                let examples = help.split("Examples:\n").nth(1).unwrap_or("");
                if !examples.starts_with("  siprot ") {
                    missing.push(path.join(" "));
                }
                walk(sub, path, missing);
                path.pop();
            }
        }
        let mut command = command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, &mut Vec::new(), &mut missing);
        assert!(
            missing.is_empty(),
            "no Examples: in the help of {missing:?}"
        );
    }

    #[test]
    fn check_password_takes_no_password_argument() {
        assert!(Cli::try_parse_from(["siprot", "check-password", "-"]).is_ok());
        assert!(Cli::try_parse_from(["siprot", "check-password", "hunter2"]).is_err());
    }

    #[test]
    fn a_stray_argument_is_never_repeated_in_the_error() {
        let message = |args: &[&str]| {
            let argv: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            let error = command().try_get_matches_from(&argv).unwrap_err();
            unrepeated_error(&error, &argv)
        };
        for args in [
            &["siprot", "check-password", "MyPass123!"][..],
            &[
                "siprot",
                "-v",
                "check-password",
                "-p",
                "vobiz",
                "MyPass123!",
            ],
            &["siprot", "check-password", "-", "MyPass123!"],
            &["siprot", "check-password", "--json", "MyPass123!"],
        ] {
            let message = message(args).unwrap_or_else(|| panic!("{args:?}"));
            assert!(
                message.starts_with("check-password reads the password from standard input"),
                "{message}"
            );
            assert!(!message.contains("MyPass123!"), "{message}");
        }
        for (args, expected) in [
            (&["siprot", "generate", "MyPass123!"][..], "to generate "),
            (
                &["siprot", "generate", "-p", "vobiz", "MyPass123!"],
                "to generate ",
            ),
            (
                &["siprot", "secret", "get", "-p", "vobiz", "c", "MyPass123!"],
                "to secret get ",
            ),
            (
                &["siprot", "rotate", "-p", "vobiz", "c", "MyPass123!"],
                "to rotate ",
            ),
        ] {
            let message = message(args).unwrap_or_else(|| panic!("{args:?}"));
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("MyPass123!"), "{message}");
        }
        // Other usage errors are clap's own (an option's name is safe to repeat).
        for args in [
            &["siprot", "check-password", "--pasword"][..],
            &["siprot", "rotate", "-p", "nope", "c"],
            &["siprot", "generate", "--length", "x"],
        ] {
            assert_eq!(message(args), None, "{args:?}");
        }
    }
}
