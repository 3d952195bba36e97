//! A Vault or OpenBao KV version 2 engine as a [`SecretStore`], over HTTP.
//!
//! Settings are the ones the vault and bao CLIs read: `VAULT_ADDR` (else `BAO_ADDR`),
//! `VAULT_TOKEN` (else `BAO_TOKEN`, else the token file `~/.vault-token`),
//! `VAULT_NAMESPACE`, `VAULT_CACERT` (a PEM bundle trusted beside the system's roots) and
//! `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY` (a PEM client certificate and key). Plain
//! `http://` is allowed only to a loopback address, as for the providers. The token is
//! sent as `X-Vault-Token` in a header marked sensitive; it never appears in Debug
//! output, logs or errors. The files these settings name (and the token file) are read
//! only when they are regular files of bounded size ([`crate::trust::read_small`]: a FIFO
//! or a device is refused naming it, exit 4); a token file that group or others may read
//! is used, with a warning.
//!
//! The mount must be the root of a KV version 2 mount: before its first write or delete,
//! and in [`SecretStore::preflight`]/[`SecretStore::prepare`], the store asks
//! `sys/internal/ui/mounts/<mount>` as the CLIs do, and refuses (exit 4) a path inside a
//! mount, a KV version 1 mount or another engine. Every delete is read back: a slot still
//! there after a delete the server answered is an error naming it.
//!
//! Layout, under a mount (`secret`) and a prefix (`siprot/`): a credential's current
//! password is the secret `<mount>/<prefix><entry>`, its `#pending` slot
//! `<mount>/<prefix>.pending/<entry>` and its `#previous` slot
//! `<mount>/<prefix>.previous/<entry>`, so a consumer reading the current secret (or a
//! policy on `<prefix><provider>/*`) never sees the other two. A secret's data is the
//! password beside the [`Facts`] flattened: `password`, `username`, `provider`,
//! `credential`, `device`, `rotated_at` (and `holder` on a claim, which may have no
//! password).
//!
//! Calls and retries: every call is bounded by [`VaultOptions::timeout`], retries and
//! waits included. Reads, lists, deletes and writes under check-and-set (`Absent`,
//! `Version`) are retried with [`crate::retry`]'s backoff after a connection failure, a
//! timeout, a 5xx (a sealed node, a cluster without a leader), a 429 or 412, a KV mount
//! still setting itself up, or a 307 (a standby's redirect, never followed); a write
//! without check-and-set only when the try provably did not reach the server (refused
//! connection, 307, sealed, 429). When a retried check-and-set write meets a mismatch and an
//! earlier try may have landed, the slot is read back: holding exactly what was written,
//! the write succeeded.
//!
//! A caught SIGINT, SIGTERM or SIGHUP ([`crate::interrupt`]) changes nothing here: the
//! store's calls are sent and retried within their timeout as without one, because after
//! a provider accepted a password they are what makes it safe (its promotion to current,
//! the removal of `#pending`, the release of a claim); a signal stops only the provider's
//! requests and new rotations.
//!
//! A caller that gave up never has its write sent later: tries run inside the caller's
//! future (no background task), so dropping it (a caller's own timeout, a cancelled
//! rotation) stops the retries, and no try starts once the call's timeout has passed.
//! A try in flight when the caller gives up may still reach the server, as any request
//! may; it is never resent.
//!
//! A listing ([`SecretStore::list`]: `recover`, `doctor`, `status`) walks the folders
//! under the prefix with one LIST each, and the whole walk is bounded whatever the server
//! (or a proxy) answers: at most [`LIST_MAX_DEPTH`] folders deep, at most
//! [`LIST_MAX_ENTRIES`] keys in all its answers together, and done within the store's
//! timeout (`--keyring-timeout`) for all its requests together. A bound hit is
//! [`StoreError::Unavailable`] (exit 8) saying which; nothing is kept of the walk but the
//! names found, so its memory is bounded by the keys bound.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    EntryName, Facts, Precondition, Record, SecretStore, Slot, StoreError, StoreKind, Stored,
};
use crate::config::{optional, parse_base_url};
use crate::error::{Error, Result};
use crate::http::{
    Attempts, HttpClient, HttpConfig, HttpMethod, OnSignal, RequestBuilder, Response, SendError,
    TlsOptions, header,
};
use crate::retry::{Resend, RetryConfig};
use crate::trust::{ReadError, Trust};

/// The KV version 2 mount siprot uses unless told otherwise (`--vault-mount`).
pub const DEFAULT_MOUNT: &str = "secret";
/// The folder of siprot's secrets in the mount unless told otherwise (`--secret-prefix`).
pub const DEFAULT_PREFIX: &str = "siprot/";

/// The folders of the `#pending` and `#previous` slots under the prefix.
const PENDING_FOLDER: &str = ".pending";
const PREVIOUS_FOLDER: &str = ".previous";

/// The storage index in an `X-Vault-Index` header: OpenBao sends the base64 of
/// `{"cluster": "...", "value": "<n>"}`.
fn index_value(header: &str) -> Option<u64> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Index {
        value: String,
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(header)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(header))
        .ok()?;
    serde_json::from_slice::<Index>(&json)
        .ok()?
        .value
        .parse()
        .ok()
}

/// The most folders a listing goes below the prefix (or its `.pending/`, `.previous/`
/// folder): siprot's deepest entries are three folders down
/// (`exotel/<sid>/<user>/<device>`, `login/<provider>/<profile>/<key>`).
pub const LIST_MAX_DEPTH: usize = 8;

/// The most keys (secrets and folders) all the answers of one listing may hold together:
/// about 20,000 credentials with their `#previous` (an answer is also at most 1 MiB).
pub const LIST_MAX_ENTRIES: usize = 100_000;

/// Credentials per capability check of a fleet (six paths each).
const CHECK_CHUNK: usize = 200;

/// Where the CLIs keep the token `vault login` wrote, under the home directory.
const TOKEN_FILE: &str = ".vault-token";

/// The mount, the prefix and the time allowed for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultOptions {
    /// A KV version 2 mount (`secret`, or nested like `team/kv`).
    pub mount: String,
    /// The folder of siprot's secrets in the mount: empty or ending in `/`.
    pub prefix: String,
    /// Bound on one store call, retries and waits included.
    pub timeout: Duration,
}

impl VaultOptions {
    /// The store's service name without connecting: `vault:<mount>/<prefix>`, with
    /// `VAULT_NAMESPACE` in front when it is set (what [`SecretStore::service`] says once
    /// the store is open).
    pub fn service(&self) -> String {
        let namespace = std::env::var("VAULT_NAMESPACE")
            .ok()
            .map(|ns| ns.trim_matches('/').to_owned())
            .filter(|ns| !ns.is_empty());
        service_name(
            namespace.as_deref(),
            self.mount.trim_matches('/'),
            &self.prefix,
        )
    }
}

/// `vault:[<namespace>/]<mount>/<prefix>`.
fn service_name(namespace: Option<&str>, mount: &str, prefix: &str) -> String {
    match namespace {
        Some(ns) => format!("vault:{ns}/{mount}/{prefix}"),
        None => format!("vault:{mount}/{prefix}"),
    }
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            mount: DEFAULT_MOUNT.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: super::DEFAULT_TIMEOUT,
        }
    }
}

/// Where the server is and how siprot authenticates: what [`VaultConnection::from_env`]
/// reads from the CLIs' variables. Debug never shows the token.
#[derive(Clone)]
pub struct VaultConnection {
    /// `http://` only to a loopback address (checked by [`VaultConnection::new`]).
    pub addr: Url,
    pub token: SecretString,
    /// `VAULT_NAMESPACE`, without leading or trailing `/`.
    pub namespace: Option<String>,
    pub tls: TlsOptions,
}

impl std::fmt::Debug for VaultConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConnection")
            .field("addr", &self.addr.as_str())
            .field("namespace", &self.namespace)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl VaultConnection {
    /// A connection to `addr` (checked as `source` names it) with `token`, no namespace
    /// and the system's trust roots.
    pub fn new(addr: &str, source: &str, token: SecretString) -> Result<Self> {
        Ok(Self {
            addr: parse_base_url(addr, source)?,
            token,
            namespace: None,
            tls: TlsOptions::default(),
        })
    }

    /// `VAULT_ADDR` (else `BAO_ADDR`), `VAULT_TOKEN` (else `BAO_TOKEN`, else
    /// `~/.vault-token`), `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_CLIENT_CERT` and
    /// `VAULT_CLIENT_KEY`.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(&Env {
            var: &optional,
            home: dirs::home_dir(),
        })
    }

    fn from_vars(env: &Env<'_>) -> Result<Self> {
        let (var, addr) =
            first_setting(env, &["VAULT_ADDR", "BAO_ADDR"])?.ok_or(Error::MissingSetting {
                var: "VAULT_ADDR",
                hint: "the address of the Vault or OpenBao server, e.g. \
                       https://vault.example.com:8200 (or BAO_ADDR)"
                    .into(),
            })?;
        let mut connection = Self::new(&addr, var, token(env)?)?;
        connection.namespace = (env.var)("VAULT_NAMESPACE")?
            .map(|ns| ns.trim_matches('/').to_owned())
            .filter(|ns| !ns.is_empty());
        if let Some(ns) = &connection.namespace {
            segments(ns, "VAULT_NAMESPACE", false)?;
        }
        connection.tls = tls_options(env)?;
        Ok(connection)
    }
}

/// A Vault or OpenBao server's KV version 2 mount, under siprot's prefix.
pub struct VaultStore {
    client: HttpClient,
    addr: Url,
    token: SecretString,
    namespace: Option<String>,
    /// The mount's path segments.
    mount: Vec<String>,
    /// The prefix's path segments (empty for no prefix).
    prefix: Vec<String>,
    /// `<mount>/` as the CLI names paths, for messages.
    mount_path: String,
    /// The prefix as given (empty or ending in `/`).
    prefix_path: String,
    service: String,
    timeout: Duration,
    backoff: RetryConfig,
    /// Credentials whose paths a fleet's capability check found writable.
    checked: std::sync::Mutex<std::collections::HashSet<EntryName>>,
    /// The highest storage index seen in an answer, and its header (see
    /// [`VaultStore::note_index`]).
    index: std::sync::Mutex<Option<(u64, String)>>,
    /// The mount was found to be the root of a KV version 2 mount
    /// ([`VaultStore::check_mount`]).
    mount_checked: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for VaultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultStore")
            .field("addr", &self.addr.as_str())
            .field("namespace", &self.namespace)
            .field("mount", &self.mount_path)
            .field("prefix", &self.prefix_path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where settings come from: the environment and the home directory (a map and a
/// directory of their own in the tests).
struct Env<'a> {
    var: &'a dyn Fn(&'static str) -> Result<Option<String>>,
    home: Option<std::path::PathBuf>,
}

/// A non-empty setting, from the first of `vars` that is set.
fn first_setting(env: &Env<'_>, vars: &[&'static str]) -> Result<Option<(&'static str, String)>> {
    for var in vars {
        if let Some(value) = (env.var)(var)?.filter(|v| !v.trim().is_empty()) {
            return Ok(Some((var, value)));
        }
    }
    Ok(None)
}

/// The largest PEM file (`VAULT_CACERT`, `VAULT_CLIENT_CERT`, `VAULT_CLIENT_KEY`) read:
/// a system's whole CA bundle is about 200 KiB.
const MAX_PEM: u64 = 4 * 1024 * 1024;

/// The largest token file read: a token is at most a few hundred bytes.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Reads a file a setting names: a regular file of at most [`MAX_PEM`] bytes (a FIFO or a
/// device is refused, never waited on or read without end). An error names the variable
/// and the path, never the content.
fn read_setting_file(var: &str, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    crate::trust::read_small(std::path::Path::new(path), MAX_PEM, Trust::Any)
        .map(|file| file.bytes)
        .map_err(|e| Error::Config(e.message(&format!("{var} '{path}'"))))
}

/// The token: `VAULT_TOKEN`, else `BAO_TOKEN`, else `~/.vault-token`.
fn token(env: &Env<'_>) -> Result<SecretString> {
    if let Some((_, token)) = first_setting(env, crate::config::VAULT_TOKEN_VARS)? {
        return Ok(SecretString::from(token.trim().to_owned()));
    }
    let missing = Error::MissingSetting {
        var: "VAULT_TOKEN",
        hint: "a Vault or OpenBao token with access to siprot's paths (or BAO_TOKEN, or \
               `vault login`/`bao login` writing ~/.vault-token)"
            .into(),
    };
    let Some(file) = env.home.as_ref().map(|home| home.join(TOKEN_FILE)) else {
        return Err(missing);
    };
    let read = match crate::trust::read_small(&file, MAX_TOKEN_FILE, Trust::Any) {
        Ok(read) => read,
        Err(ReadError::Missing(_)) => return Err(missing),
        Err(e) => {
            return Err(Error::Config(
                e.message(&format!("the token file {}", file.display())),
            ));
        }
    };
    if let Some(warning) = token_file_exposure(&file, &read.metadata) {
        warn_once(&warning);
    }
    match std::str::from_utf8(&read.bytes).map(str::trim) {
        Ok(token) if !token.is_empty() => Ok(SecretString::from(token.to_owned())),
        Ok(_) => Err(Error::Config(format!(
            "the token file {} is empty (VAULT_TOKEN is not set)",
            file.display()
        ))),
        Err(_) => Err(Error::Config(format!(
            "the token file {} is not UTF-8 text",
            file.display()
        ))),
    }
}

/// What is wrong with a token file group or others may read (`metadata` of the file
/// itself), with the `chmod` that fixes it; `None` when only its owner may.
#[cfg(unix)]
fn token_file_exposure(file: &std::path::Path, metadata: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = metadata.mode() & 0o777;
    (mode & 0o044 != 0).then(|| {
        format!(
            "the token file {} is readable by group or others (mode {mode:o}): chmod 600 {}",
            file.display(),
            file.display()
        )
    })
}

#[cfg(not(unix))]
fn token_file_exposure(_file: &std::path::Path, _metadata: &std::fs::Metadata) -> Option<String> {
    None
}

/// The warning about a `~/.vault-token` group or others may read, for `doctor`:
/// `None` when a token variable is set (the file is not read), the file is missing or
/// only its owner may read it.
pub fn token_file_warning() -> Option<String> {
    let set = crate::config::VAULT_TOKEN_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.to_string_lossy().trim().is_empty()));
    if set {
        return None;
    }
    let file = dirs::home_dir()?.join(TOKEN_FILE);
    // Anything but a regular file is refused when it is read (the `vault store` check).
    let metadata = std::fs::metadata(&file).ok().filter(|m| m.is_file())?;
    token_file_exposure(&file, &metadata)
}

/// Prints a warning once per process (a command may open the store more than once).
fn warn_once(warning: &str) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        crate::output::warning(warning);
    }
}

/// `VAULT_CACERT` and `VAULT_CLIENT_CERT`/`VAULT_CLIENT_KEY`.
fn tls_options(env: &Env<'_>) -> Result<TlsOptions> {
    let mut tls = TlsOptions::default();
    if let Some(path) = (env.var)("VAULT_CACERT")?.filter(|p| !p.is_empty()) {
        let pem = read_setting_file("VAULT_CACERT", &path)?;
        let roots = crate::http::Certificate::from_pem_bundle(&pem)
            .ok()
            .filter(|roots| !roots.is_empty())
            .ok_or_else(|| {
                Error::Config(format!("VAULT_CACERT: '{path}' holds no PEM certificate"))
            })?;
        tls.extra_roots = roots;
    }
    let cert = (env.var)("VAULT_CLIENT_CERT")?.filter(|p| !p.is_empty());
    let key = (env.var)("VAULT_CLIENT_KEY")?.filter(|p| !p.is_empty());
    match (cert, key) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(Error::Config(
                "VAULT_CLIENT_CERT is set but VAULT_CLIENT_KEY is not".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "VAULT_CLIENT_KEY is set but VAULT_CLIENT_CERT is not".into(),
            ));
        }
        (Some(cert), Some(key)) => {
            let mut pem = read_setting_file("VAULT_CLIENT_CERT", &cert)?;
            let key_pem = read_setting_file("VAULT_CLIENT_KEY", &key)?;
            pem.push(b'\n');
            pem.extend_from_slice(&key_pem);
            let identity = crate::http::Identity::from_pem(&pem).map_err(|_| {
                Error::Config(format!(
                    "VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: '{cert}' and '{key}' are not a PEM \
                     certificate and its private key"
                ))
            })?;
            tls.identity = Some(identity);
        }
    }
    Ok(tls)
}

/// The path segments of a mount or prefix; `what` names the setting in errors.
fn segments(value: &str, what: &str, folder: bool) -> Result<Vec<String>> {
    let bad = |why: &str| Error::Config(format!("{what} '{value}': {why}"));
    if value.chars().any(char::is_control) {
        return Err(bad("contains a control character"));
    }
    let body = if folder {
        if value.is_empty() {
            return Ok(Vec::new());
        }
        value
            .strip_suffix('/')
            .ok_or_else(|| bad("must be empty or end in '/'"))?
    } else {
        value.trim_matches('/')
    };
    let parts: Vec<String> = body.split('/').map(str::to_owned).collect();
    for part in &parts {
        if part.is_empty() {
            return Err(bad("has an empty path segment"));
        }
        if part == "." || part == ".." {
            return Err(bad("has a '.' or '..' path segment"));
        }
    }
    if folder
        && parts
            .first()
            .is_some_and(|p| p == PENDING_FOLDER || p == PREVIOUS_FOLDER)
    {
        return Err(bad("starts with a folder siprot keeps its other slots in"));
    }
    Ok(parts)
}

/// One path segment, percent-encoded (everything but unreserved characters).
fn encode_segment(segment: &str, out: &mut String) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// What a call does, for retries and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Delete,
    List,
    Check,
}

impl Op {
    /// The capability a 403 on this call is about.
    fn capability(self) -> &'static str {
        match self {
            Op::Read | Op::Check => "read",
            Op::Write => "create/update",
            Op::Delete => "delete",
            Op::List => "list",
        }
    }
}

/// The answer to a call whose status the store judges itself (2xx, 4xx).
struct Answer {
    response: Response,
    /// An earlier try may have reached the server (and changed the slot).
    maybe_landed: bool,
    /// How many tries the answer took.
    tries: u32,
}

/// `{"errors": [...]}`, Vault's error body.
#[derive(Deserialize, Default)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

/// A KV version 2 read: `data.data` and `data.metadata`.
#[derive(Deserialize)]
struct ReadBody {
    data: ReadData,
}

#[derive(Deserialize)]
struct ReadData {
    #[serde(default)]
    data: Option<SecretData>,
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

impl Metadata {
    fn live(&self) -> bool {
        self.deletion_time.is_empty() && !self.destroyed
    }
}

#[derive(Deserialize)]
struct SecretData {
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(flatten)]
    facts: Facts,
}

#[derive(Deserialize)]
struct WriteAnswer {
    data: WriteMeta,
}

#[derive(Deserialize)]
struct WriteMeta {
    version: u64,
}

#[derive(Serialize)]
struct WriteBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Cas>,
    data: WriteData<'a>,
}

#[derive(Serialize)]
struct Cas {
    cas: u64,
}

#[derive(Serialize)]
struct WriteData<'a> {
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_password"
    )]
    password: Option<&'a SecretString>,
    #[serde(flatten)]
    facts: &'a Facts,
}

fn expose_password<S: serde::Serializer>(
    password: &Option<&SecretString>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match password {
        Some(password) => serializer.serialize_str(password.expose_secret()),
        None => serializer.serialize_none(),
    }
}

#[derive(Deserialize)]
struct ListBody {
    data: ListKeys,
}

#[derive(Deserialize)]
struct ListKeys {
    #[serde(default)]
    keys: Vec<String>,
}

/// A slot as it is on the server: live, deleted (soft, still with a version that a
/// create must check against), or never written.
enum Found {
    Live(Box<Stored>),
    Deleted(u64),
    None,
}

impl VaultStore {
    /// Connects to the server the environment names (nothing is sent yet: the first
    /// call finds out whether it answers).
    pub async fn open(options: &VaultOptions) -> Result<VaultStore> {
        Self::connect(VaultConnection::from_env()?, options)
    }

    /// Connects to the server `connection` names.
    pub fn connect(connection: VaultConnection, options: &VaultOptions) -> Result<VaultStore> {
        let VaultConnection {
            addr,
            token,
            namespace,
            tls,
        } = connection;
        if let Some(ns) = &namespace {
            segments(ns, "VAULT_NAMESPACE", false)?;
            header::HeaderValue::from_str(ns)
                .map_err(|_| Error::Config("VAULT_NAMESPACE is not a valid header".into()))?;
        }
        let mount = segments(&options.mount, "the vault mount", false)?;
        if mount.first().is_some_and(|m| m == "sys") {
            return Err(Error::Config(format!(
                "the vault mount '{}' is not a KV mount",
                options.mount
            )));
        }
        let prefix = segments(&options.prefix, "the secret prefix", true)?;
        if options.timeout.is_zero() {
            return Err(Error::Config("the vault store's timeout is zero".into()));
        }
        let http = HttpConfig {
            connect_timeout: options.timeout.min(Duration::from_secs(10)),
            timeout: options.timeout,
            retry: RetryConfig {
                max_retries: 0,
                deadline: options.timeout,
                ..RetryConfig::default()
            },
            tls,
            on_signal: OnSignal::Finish,
            ..HttpConfig::default()
        };
        let client = HttpClient::new(&http)?;
        let mount_path = mount.join("/");
        let prefix_path = options.prefix.clone();
        let service = service_name(namespace.as_deref(), &mount_path, &prefix_path);
        Ok(VaultStore {
            client,
            addr,
            token,
            namespace,
            mount,
            prefix,
            mount_path,
            prefix_path,
            service,
            timeout: options.timeout,
            backoff: RetryConfig {
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                ..RetryConfig::default()
            },
            checked: std::sync::Mutex::default(),
            index: std::sync::Mutex::default(),
            mount_checked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> &Url {
        &self.addr
    }

    /// The path of a slot under the prefix, as segments (`.pending`, `telepath`, `x`).
    fn slot_segments(&self, name: &EntryName, slot: Slot) -> Result<Vec<String>, StoreError> {
        let mut out = self.prefix.clone();
        match slot {
            Slot::Current => {}
            Slot::Pending => out.push(PENDING_FOLDER.to_owned()),
            Slot::Previous => out.push(PREVIOUS_FOLDER.to_owned()),
            Slot::Probe => {
                return Err(self.denied(format!(
                    "the vault store has no probe slot ('{}')",
                    name.slot(slot)
                )));
            }
        }
        for part in name.current().split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(self.denied(format!(
                    "refusing entry name '{name}': an empty, '.' or '..' path segment"
                )));
            }
            out.push(part.to_owned());
        }
        Ok(out)
    }

    /// `secret/siprot/.pending/telepath/x`: a slot's path as the CLI names it.
    fn kv_path(&self, name: &EntryName, slot: Slot) -> String {
        let folder = match slot {
            Slot::Current => "",
            Slot::Pending => ".pending/",
            Slot::Previous => ".previous/",
            Slot::Probe => ".probe/",
        };
        format!("{}/{}{folder}{name}", self.mount_path, self.prefix_path)
    }

    /// `secret/data/siprot/...` or `secret/metadata/siprot/...`: the API path (for
    /// capabilities and messages).
    fn api_path(&self, kind: &str, rest: &[String]) -> String {
        let mut path = format!("{}/{kind}", self.mount_path);
        for part in rest {
            path.push('/');
            path.push_str(part);
        }
        path
    }

    /// The URL of `/v1/<mount>/<kind>/<rest>`, each segment encoded (a trailing `/` for
    /// a folder).
    fn url(&self, kind: &str, rest: &[String], folder: bool) -> Url {
        let mut path = self.addr.path().trim_end_matches('/').to_owned();
        path.push_str("/v1");
        for part in self.mount.iter().map(String::as_str).chain([kind]) {
            path.push('/');
            encode_segment(part, &mut path);
        }
        for part in rest {
            path.push('/');
            encode_segment(part, &mut path);
        }
        if folder {
            path.push('/');
        }
        let mut url = self.addr.clone();
        url.set_path(&path);
        url
    }

    fn sys_url(&self, path: &str) -> Url {
        let mut url = self.addr.clone();
        url.set_path(&format!(
            "{}/v1/sys/{path}",
            self.addr.path().trim_end_matches('/')
        ));
        url
    }

    fn request(&self, method: HttpMethod, url: Url) -> Result<RequestBuilder, StoreError> {
        let mut token = header::HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| self.denied("the vault token is not a valid header value".into()))?;
        token.set_sensitive(true);
        let mut request = self
            .client
            .request(method, url)
            .header("X-Vault-Token", token)
            .header("X-Vault-Request", "true");
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns.as_str());
        }
        if let Some((_, index)) = self.lock_index().as_ref() {
            // A standby that has not applied this store's latest answer yet forwards the
            // request to the active node instead of answering from older data.
            request = request
                .header("X-Vault-Index", index.as_str())
                .header("X-Vault-Inconsistent", "forward-active-node");
        }
        Ok(request)
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, Option<(u64, String)>> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the highest storage index a response carried (`X-Vault-Index`, base64 of
    /// `{"cluster": .., "value": "<n>"}` in OpenBao 2.7), so that later requests read at
    /// least what this store saw written. An index siprot cannot read is ignored.
    fn note_index(&self, response: &Response) {
        let Some(raw) = &response.consistency_index else {
            return;
        };
        let Some(value) = index_value(raw) else {
            return;
        };
        let mut index = self.lock_index();
        if index.as_ref().is_none_or(|(seen, _)| value > *seen) {
            *index = Some((value, raw.clone()));
        }
    }

    fn unavailable(&self, message: String) -> StoreError {
        StoreError::Unavailable {
            store: StoreKind::Vault,
            message,
        }
    }

    fn denied(&self, message: String) -> StoreError {
        StoreError::Denied {
            store: StoreKind::Vault,
            message,
        }
    }

    /// Sends a request, retrying what may be retried until the call's timeout, and
    /// returns the first answer that is not a transient failure. `path` names what the
    /// call is about in messages; `idempotent` allows retries after a try that may have
    /// reached the server.
    async fn call(
        &self,
        op: Op,
        path: &str,
        idempotent: bool,
        build: impl Fn() -> Result<RequestBuilder, StoreError>,
    ) -> Result<Answer, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let mut maybe_landed = false;
        let mut tries: u32 = 0;
        let mut last_answer: Option<String> = None;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timed = tokio::time::timeout(
                left,
                self.client
                    .send(build()?, Resend::OnlyIfNotSent, &Attempts::new()),
            )
            .await;
            let outcome_was_cut = timed.is_err();
            let outcome = timed.unwrap_or_else(|_| {
                Err(SendError::Unknown(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            });
            if let Ok(response) = &outcome {
                self.note_index(response);
            }
            // What went wrong, whether another try is allowed, whether this one may
            // have landed.
            let (what, retry, landed) = match outcome {
                Ok(response) if is_upgrading(&response) => (
                    "the KV mount is still upgrading to version 2 (HTTP 400)".to_owned(),
                    true,
                    false,
                ),
                Ok(response) => match response.status.as_u16() {
                    // A rate limit, or a node behind the state the request needs.
                    status @ (412 | 429) => (format!("HTTP {status}"), true, false),
                    200..=299 | 400..=499 => {
                        return Ok(Answer {
                            response,
                            maybe_landed,
                            tries,
                        });
                    }
                    307 => (
                        "a standby redirected the request (HTTP 307, not followed)".to_owned(),
                        true,
                        false,
                    ),
                    // A sealed node did nothing; any other 5xx (a standby that lost the
                    // active node while forwarding) may come after the write landed.
                    503 if is_sealed(&response) => (self.server_error(&response), true, false),
                    500..=599 => (self.server_error(&response), idempotent, true),
                    status => (format!("unexpected HTTP {status}"), false, false),
                },
                Err(SendError::NotSent(message)) => (message, true, false),
                Err(SendError::Unknown(message)) => (message, idempotent, true),
            };
            maybe_landed |= landed;
            let wait = self.backoff.backoff(tries);
            log::debug!("vault: {op:?} {path}: try {tries}: {what}");
            // A last try the deadline cut short says less than the answer before it
            // (e.g. "sealed"): report that one.
            let what = match (&outcome_was_cut, last_answer.take()) {
                (true, Some(answer)) => format!("{answer}, then no answer before the deadline"),
                _ => what,
            };
            if !outcome_was_cut {
                last_answer = Some(what.clone());
            }
            if !retry || Instant::now() + wait >= deadline {
                let after = if tries > 1 {
                    format!(
                        " (after {tries} tries within the store's timeout of {:?})",
                        self.timeout
                    )
                } else {
                    String::new()
                };
                let unknown = if maybe_landed && op == Op::Write {
                    "; the write may or may not have been stored"
                } else {
                    ""
                };
                return Err(self.unavailable(format!(
                    "vault at {} did not answer for '{path}': {what}{after}{unknown}",
                    self.addr
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// A 5xx's description: `sealed` when the server says so.
    fn server_error(&self, response: &Response) -> String {
        let errors = serde_json::from_slice::<Errors>(&response.body).unwrap_or_default();
        let text = crate::redact::one_line(&errors.errors.join("; "));
        let text: String = text.chars().take(300).collect();
        if is_sealed(response) {
            format!("the server is sealed (HTTP {}: {text})", response.status)
        } else if text.is_empty() {
            format!("HTTP {}", response.status)
        } else {
            format!("HTTP {}: {text}", response.status)
        }
    }

    /// The error for a 4xx answer that is not the call's expected outcome.
    fn refused(&self, op: Op, path: &str, response: &Response) -> StoreError {
        let errors = serde_json::from_slice::<Errors>(&response.body).unwrap_or_default();
        let text: String = crate::redact::one_line(&errors.errors.join("; "))
            .chars()
            .take(300)
            .collect();
        match response.status.as_u16() {
            403 => self.denied(format!(
                "vault at {} refused the token for '{path}' (HTTP 403: {text}): the token is \
                 invalid or expired, or its policy lacks '{}' on '{path}'",
                self.addr,
                op.capability()
            )),
            404 if text.contains("no handler for route") => self.denied(format!(
                "vault at {} has no KV version 2 mount at '{}' ({text})",
                self.addr, self.mount_path
            )),
            status => self.denied(format!(
                "vault at {} refused '{path}' (HTTP {status}: {text})",
                self.addr
            )),
        }
    }

    fn bad_json(&self, path: &str, what: &str) -> StoreError {
        self.unavailable(format!(
            "vault at {} sent an unusable answer for '{path}': {what}",
            self.addr
        ))
    }

    /// Reads a slot as it is on the server.
    async fn find(&self, name: &EntryName, slot: Slot) -> Result<Found, StoreError> {
        let rest = self.slot_segments(name, slot)?;
        let path = self.api_path("data", &rest);
        let url = self.url("data", &rest, false);
        let answer = self
            .call(Op::Read, &path, true, || {
                self.request(HttpMethod::GET, url.clone())
            })
            .await?;
        let response = answer.response;
        match response.status.as_u16() {
            200 => {}
            404 => {
                // A soft-deleted secret answers 404 with its metadata.
                return Ok(match serde_json::from_slice::<ReadBody>(&response.body) {
                    Ok(body) => Found::Deleted(body.data.metadata.version),
                    Err(_) => {
                        let errors =
                            serde_json::from_slice::<Errors>(&response.body).unwrap_or_default();
                        if errors.errors.is_empty() {
                            Found::None
                        } else {
                            return Err(self.refused(Op::Read, &path, &response));
                        }
                    }
                });
            }
            _ => return Err(self.refused(Op::Read, &path, &response)),
        }
        let body: ReadBody = serde_json::from_slice(&response.body)
            .map_err(|_| self.bad_json(&path, "not a KV version 2 secret"))?;
        let metadata = body.data.metadata;
        match body.data.data {
            Some(data) if metadata.live() => Ok(Found::Live(Box::new(Stored {
                secret: data.password,
                version: Some(metadata.version),
                facts: data.facts,
            }))),
            _ => Ok(Found::Deleted(metadata.version)),
        }
    }

    /// One write try under `cas` (none: unconditional).
    async fn put(
        &self,
        rest: &[String],
        record: Record<'_>,
        cas: Option<u64>,
    ) -> Result<(Answer, String), StoreError> {
        let path = self.api_path("data", rest);
        let url = self.url("data", rest, false);
        let body = zeroize::Zeroizing::new(
            serde_json::to_vec(&WriteBody {
                options: cas.map(|cas| Cas { cas }),
                data: WriteData {
                    password: record.secret,
                    facts: record.facts,
                },
            })
            .map_err(|_| self.unavailable(format!("cannot encode the secret for '{path}'")))?,
        );
        let answer = self
            .call(Op::Write, &path, cas.is_some(), || {
                Ok(self
                    .request(HttpMethod::POST, url.clone())?
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.to_vec()))
            })
            .await?;
        Ok((answer, path))
    }

    /// Whether a slot holds exactly `record`.
    async fn holds(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
    ) -> Result<Option<u64>, StoreError> {
        Ok(match self.find(name, slot).await? {
            Found::Live(stored)
                if stored.facts == *record.facts
                    && stored.secret.as_ref().map(ExposeSecret::expose_secret)
                        == record.secret.map(ExposeSecret::expose_secret) =>
            {
                stored.version
            }
            _ => None,
        })
    }

    /// Every leaf under `folder` (segments below the prefix), recursively, as paths
    /// relative to it; `skip` names folders left out at its top. Within `budget`'s
    /// bounds (see the module docs).
    async fn walk(
        &self,
        folder: &[String],
        skip: &[&str],
        budget: &mut ListBudget,
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        // Folders still to list, as paths relative to `folder` (`exotel/sid/`) and depth.
        let mut todo: Vec<(String, usize)> = vec![(String::new(), 0)];
        while let Some((relative, depth)) = todo.pop() {
            let mut dir = folder.to_vec();
            dir.extend(
                relative
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            let Some(keys) = self.list_folder(&dir, budget).await? else {
                continue;
            };
            budget.entries += keys.len();
            if budget.entries > LIST_MAX_ENTRIES {
                return Err(self.listing_too_big(budget));
            }
            for key in keys {
                if let Some(sub) = key.strip_suffix('/') {
                    if relative.is_empty() && skip.contains(&sub) {
                        continue;
                    }
                    if sub.is_empty() || sub == "." || sub == ".." || sub.contains('/') {
                        continue;
                    }
                    if depth >= LIST_MAX_DEPTH {
                        return Err(self.listing_too_deep(&format!("{relative}{sub}/")));
                    }
                    todo.push((format!("{relative}{sub}/"), depth + 1));
                } else if !key.is_empty() && !key.contains('/') {
                    found.push(format!("{relative}{key}"));
                }
            }
        }
        Ok(found)
    }

    /// The keys of one folder (`None`: there is no such folder), by one LIST within what
    /// is left of `budget`'s time.
    async fn list_folder(
        &self,
        dir: &[String],
        budget: &mut ListBudget,
    ) -> Result<Option<Vec<String>>, StoreError> {
        // For messages only; its folders' names come from the server's answers.
        let path = crate::redact::escape_controls(&format!("{}/", self.api_path("metadata", dir)));
        let mut url = self.url("metadata", dir, true);
        url.set_query(Some("list=true"));
        let left = budget.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.listing_too_slow(budget));
        }
        budget.requests += 1;
        let call = self.call(Op::List, &path, true, || {
            self.request(HttpMethod::GET, url.clone())
        });
        let answer = tokio::time::timeout(left, call)
            .await
            .map_err(|_| self.listing_too_slow(budget))??;
        let response = answer.response;
        match response.status.as_u16() {
            200 => {}
            404 => {
                let errors = serde_json::from_slice::<Errors>(&response.body).unwrap_or_default();
                if errors.errors.is_empty() {
                    return Ok(None);
                }
                return Err(self.refused(Op::List, &path, &response));
            }
            _ => return Err(self.refused(Op::List, &path, &response)),
        }
        let body: ListBody = serde_json::from_slice(&response.body)
            .map_err(|_| self.bad_json(&path, "not a list of keys"))?;
        Ok(Some(body.data.keys))
    }

    /// `secret/siprot/`: what a listing walks, for its errors.
    fn listing_root(&self) -> String {
        format!("{}/{}", self.mount_path, self.prefix_path)
    }

    fn listing_too_slow(&self, budget: &ListBudget) -> StoreError {
        self.unavailable(format!(
            "vault at {}: listing '{}' did not finish within the store's timeout of {:?} \
             (--keyring-timeout; {} LIST requests, {} keys so far): a server or proxy that \
             answers every LIST with more folders?",
            self.addr,
            self.listing_root(),
            self.timeout,
            budget.requests,
            budget.entries
        ))
    }

    fn listing_too_big(&self, budget: &ListBudget) -> StoreError {
        self.unavailable(format!(
            "vault at {}: listing '{}' found more than {LIST_MAX_ENTRIES} keys (after {} LIST \
             requests), more than siprot lists: a server or proxy that answers every LIST \
             with more folders, or a prefix that holds more than siprot's secrets?",
            self.addr,
            self.listing_root(),
            budget.requests
        ))
    }

    fn listing_too_deep(&self, relative: &str) -> StoreError {
        let shown: String = crate::redact::escape_controls(relative)
            .chars()
            .take(200)
            .collect();
        self.unavailable(format!(
            "vault at {}: listing '{}' found folders more than {LIST_MAX_DEPTH} deep \
             ('{shown}'...), deeper than any of siprot's secrets: a server or proxy that \
             answers every LIST with more folders?",
            self.addr,
            self.listing_root()
        ))
    }
}

impl VaultStore {
    /// Whether a fleet's [`SecretStore::prepare`] found `name`'s paths writable.
    fn checked(&self, name: &EntryName) -> bool {
        self.checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// The capability check of every path a rotation of each of `names` touches, in one
    /// request: per name, `Ok` or [`StoreError::Denied`] naming its first missing
    /// capability. A token the server refuses outright fails the whole check.
    async fn capabilities(
        &self,
        names: &[EntryName],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut needs: Vec<Vec<(String, &'static [&'static str])>> = Vec::new();
        for name in names {
            let mut of_name: Vec<(String, &'static [&'static str])> = Vec::new();
            for slot in [Slot::Current, Slot::Pending, Slot::Previous] {
                let rest = self.slot_segments(name, slot)?;
                of_name.push((self.api_path("data", &rest), &["update", "create", "read"]));
                of_name.push((self.api_path("metadata", &rest), &["delete"]));
            }
            needs.push(of_name);
        }
        let paths: Vec<&str> = needs.iter().flatten().map(|(p, _)| p.as_str()).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "paths": paths }))
            .map_err(|_| self.unavailable("cannot encode the capability check".into()))?;
        let url = self.sys_url("capabilities-self");
        let check = "sys/capabilities-self";
        let answer = self
            .call(Op::Check, check, true, || {
                Ok(self
                    .request(HttpMethod::POST, url.clone())?
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone()))
            })
            .await?;
        let response = answer.response;
        if response.status.as_u16() == 403 {
            return Err(self.denied(format!(
                "vault at {} refused the token (HTTP 403 on {check}): it is invalid or \
                 expired, or may not look up its own capabilities",
                self.addr
            )));
        }
        if !response.status.is_success() {
            return Err(self.refused(Op::Check, check, &response));
        }
        #[derive(Deserialize)]
        struct Capabilities {
            data: std::collections::HashMap<String, Vec<String>>,
        }
        let caps: Capabilities = serde_json::from_slice(&response.body)
            .map_err(|_| self.bad_json(check, "not a capability list"))?;
        Ok(needs
            .iter()
            .map(|of_name| self.judge_capabilities(of_name, &caps.data))
            .collect())
    }

    /// `Ok` when the token holds every capability `needs` names, else
    /// [`StoreError::Denied`] naming the first one missing.
    fn judge_capabilities(
        &self,
        needs: &[(String, &'static [&'static str])],
        caps: &std::collections::HashMap<String, Vec<String>>,
    ) -> Result<(), StoreError> {
        for (path, wanted) in needs {
            let has = caps.get(path).cloned().unwrap_or_default();
            if has.iter().any(|c| c == "root") {
                continue;
            }
            let deny = has.iter().any(|c| c == "deny");
            if let Some(missing) = wanted
                .iter()
                .find(|cap| deny || !has.iter().any(|c| c == *cap))
            {
                let verb = *missing;
                let holds = if has.is_empty() || deny {
                    "no capability".to_owned()
                } else {
                    has.join(", ")
                };
                return Err(self.denied(format!(
                    "vault token may not {verb} {path} at {} (its policy grants {holds}; a \
                     rotation needs create, update and read on {}/data/{}* and delete on \
                     {}/metadata/{}*)",
                    self.addr, self.mount_path, self.prefix_path, self.mount_path, self.prefix_path
                )));
            }
        }
        Ok(())
    }
}

impl VaultStore {
    /// Checks, once per store, that the mount is the root of a KV version 2 mount, as the
    /// `bao`/`vault` CLIs learn it before a `kv` command (`sys/internal/ui/mounts/<path>`:
    /// the engine's type, its version and its own path). A path inside a mount
    /// (`secret/data`), a KV version 1 mount or another engine (`cubbyhole`) is
    /// [`StoreError::Denied`] (exit 4) before anything is written. The token needs some
    /// capability under the mount, which any policy that lets siprot work there grants.
    async fn check_mount(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.mount_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let check = format!("sys/internal/ui/mounts/{}", self.mount_path);
        let mut path = String::from("internal/ui/mounts");
        for part in &self.mount {
            path.push('/');
            encode_segment(part, &mut path);
        }
        let url = self.sys_url(&path);
        let answer = self
            .call(Op::Check, &check, true, || {
                self.request(HttpMethod::GET, url.clone())
            })
            .await?;
        let response = answer.response;
        match response.status.as_u16() {
            200 => {}
            403 => {
                return Err(self.denied(format!(
                    "vault at {} refused the token for '{check}' (HTTP 403): there is no \
                     mount at '{}', or the token is invalid or expired, or its policy grants \
                     nothing under it",
                    self.addr, self.mount_path
                )));
            }
            _ => return Err(self.refused(Op::Check, &check, &response)),
        }
        #[derive(Deserialize)]
        struct Mount {
            data: MountData,
        }
        #[derive(Deserialize)]
        struct MountData {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            path: String,
            #[serde(default)]
            options: Option<std::collections::HashMap<String, serde_json::Value>>,
        }
        let mount: Mount = serde_json::from_slice(&response.body)
            .map_err(|_| self.bad_json(&check, "not a mount's description"))?;
        self.judge_mount(
            &mount.data.kind,
            &mount.data.path,
            mount.data.options.as_ref(),
        )?;
        self.mount_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// `Ok` for the root of a KV version 2 mount, else [`StoreError::Denied`] saying what
    /// the mount is.
    fn judge_mount(
        &self,
        kind: &str,
        root: &str,
        options: Option<&std::collections::HashMap<String, serde_json::Value>>,
    ) -> Result<(), StoreError> {
        let root = root.trim_end_matches('/');
        let given = &self.mount_path;
        let kv = matches!(kind, "kv" | "generic");
        let version = options
            .and_then(|o| o.get("version"))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "1".to_owned());
        let kind = crate::redact::one_line(kind);
        let root_shown = crate::redact::one_line(root);
        if root != given {
            let hint = if kv && version == "2" {
                format!(" (--vault-mount {root_shown})")
            } else {
                String::new()
            };
            return Err(self.denied(format!(
                "the vault mount '{given}' is not the root of a mount: it is a path inside the \
                 {kind} mount '{root_shown}'; --vault-mount takes the root of a KV version 2 \
                 mount{hint}"
            )));
        }
        if !kv {
            return Err(self.denied(format!(
                "the vault mount '{given}' is a {kind} mount, not a KV version 2 mount"
            )));
        }
        if version != "2" {
            return Err(self.denied(format!(
                "the vault mount '{given}' is a KV version {} mount; siprot needs version 2 \
                 (`bao kv enable-versioning {given}` upgrades it)",
                crate::redact::one_line(&version)
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl SecretStore for VaultStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Vault
    }

    fn service(&self) -> &str {
        &self.service
    }

    fn shared(&self) -> bool {
        true
    }

    fn locate(&self, name: &EntryName, slot: Slot) -> String {
        format!("vault secret '{}'", self.kv_path(name, slot))
    }

    async fn read(&self, name: &EntryName, slot: Slot) -> Result<Option<Stored>, StoreError> {
        log::debug!("vault: read {}", self.kv_path(name, slot));
        Ok(match self.find(name, slot).await? {
            Found::Live(stored) => Some(*stored),
            Found::Deleted(_) | Found::None => None,
        })
    }

    async fn write(
        &self,
        name: &EntryName,
        slot: Slot,
        record: Record<'_>,
        when: Precondition,
    ) -> Result<Option<u64>, StoreError> {
        log::debug!("vault: write {} ({when:?})", self.kv_path(name, slot));
        self.check_mount().await?;
        let rest = self.slot_segments(name, slot)?;
        let cas = match when {
            Precondition::Any => None,
            Precondition::Absent => Some(0),
            Precondition::Version(version) => Some(version),
        };
        let (mut answer, path) = self.put(&rest, record, cas).await?;
        if answer.response.status.as_u16() == 400 && is_cas_mismatch(&answer.response) {
            // An earlier try of this very write may have landed: then the slot holds it
            // (exactly this password and these facts, which no other writer has).
            if (answer.maybe_landed || answer.tries > 1)
                && let Some(version) = self.holds(name, slot, record).await?
            {
                return Ok(Some(version));
            }
            // A create over a soft-deleted secret checks against its last version.
            if when == Precondition::Absent
                && let Found::Deleted(version) = self.find(name, slot).await?
                && version > 0
            {
                (answer, _) = self.put(&rest, record, Some(version)).await?;
            }
        }
        let response = &answer.response;
        match response.status.as_u16() {
            200..=299 => {
                let body: WriteAnswer = serde_json::from_slice(&response.body)
                    .map_err(|_| self.bad_json(&path, "no version in the answer"))?;
                Ok(Some(body.data.version))
            }
            400 if is_cas_mismatch(response) => Err(StoreError::Conflict {
                store: StoreKind::Vault,
                message: match when {
                    Precondition::Absent => format!(
                        "{} exists already (created by another rotation)",
                        self.locate(name, slot)
                    ),
                    _ => format!(
                        "{} was changed by someone else since siprot read it \
                         (check-and-set on '{path}' did not match)",
                        self.locate(name, slot)
                    ),
                },
            }),
            _ => Err(self.refused(Op::Write, &path, response)),
        }
    }

    async fn delete(&self, name: &EntryName, slot: Slot) -> Result<bool, StoreError> {
        log::debug!("vault: delete {}", self.kv_path(name, slot));
        self.check_mount().await?;
        let rest = self.slot_segments(name, slot)?;
        let existed = match self.find(name, slot).await? {
            Found::Live(_) => true,
            Found::Deleted(_) => false,
            Found::None => return Ok(false),
        };
        let path = self.api_path("metadata", &rest);
        let url = self.url("metadata", &rest, false);
        let answer = self
            .call(Op::Delete, &path, true, || {
                self.request(HttpMethod::DELETE, url.clone())
            })
            .await?;
        match answer.response.status.as_u16() {
            200..=299 | 404 => {}
            _ => return Err(self.refused(Op::Delete, &path, &answer.response)),
        }
        self.confirm_gone(name, slot).await?;
        Ok(existed)
    }

    async fn list(&self) -> Result<Vec<(EntryName, Slot)>, StoreError> {
        let mut budget = ListBudget {
            deadline: Instant::now() + self.timeout,
            entries: 0,
            requests: 0,
        };
        let mut entries = Vec::new();
        for (folder, slot) in [
            (None, Slot::Current),
            (Some(PENDING_FOLDER), Slot::Pending),
            (Some(PREVIOUS_FOLDER), Slot::Previous),
        ] {
            let mut dir = self.prefix.clone();
            dir.extend(folder.map(str::to_owned));
            let skip: &[&str] = if folder.is_none() {
                &[PENDING_FOLDER, PREVIOUS_FOLDER]
            } else {
                &[]
            };
            for leaf in self.walk(&dir, skip, &mut budget).await? {
                entries.push((EntryName::new(leaf), slot));
            }
        }
        entries.sort_by(|(a, sa), (b, sb)| {
            a.cmp(b).then_with(|| slot_order(*sa).cmp(&slot_order(*sb)))
        });
        Ok(entries)
    }

    async fn preflight(&self, name: &EntryName) -> Result<(), StoreError> {
        if self.checked(name) {
            return self.check_mount().await;
        }
        // Both questions at once: the mount's answer comes first.
        let (mount, verdicts) = tokio::join!(
            self.check_mount(),
            self.capabilities(std::slice::from_ref(name))
        );
        mount?;
        verdicts?.pop().unwrap_or(Ok(()))
    }

    async fn prepare(&self, names: &[EntryName]) {
        if let Err(e) = self.check_mount().await {
            // Each rotation's own preflight checks (and reports) it.
            log::debug!("vault: the fleet's mount check failed: {e}");
            return;
        }
        for chunk in names.chunks(CHECK_CHUNK) {
            match self.capabilities(chunk).await {
                Ok(verdicts) => {
                    let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
                    for (name, verdict) in chunk.iter().zip(verdicts) {
                        if verdict.is_ok() {
                            checked.insert(name.clone());
                        }
                    }
                }
                // Each rotation's own preflight checks (and reports) it.
                Err(e) => log::debug!("vault: the fleet's capability check failed: {e}"),
            }
        }
    }

    async fn remove(&self, name: &EntryName, slot: Slot) -> Result<(), StoreError> {
        log::debug!("vault: remove {}", self.kv_path(name, slot));
        self.check_mount().await?;
        let rest = self.slot_segments(name, slot)?;
        let path = self.api_path("metadata", &rest);
        let url = self.url("metadata", &rest, false);
        let answer = self
            .call(Op::Delete, &path, true, || {
                self.request(HttpMethod::DELETE, url.clone())
            })
            .await?;
        match answer.response.status.as_u16() {
            200..=299 | 404 => {}
            _ => return Err(self.refused(Op::Delete, &path, &answer.response)),
        }
        self.confirm_gone(name, slot).await
    }
}

impl VaultStore {
    /// Reads a slot back after its delete: a server (or a proxy) that answered the delete
    /// but still holds the secret is an error naming the slot, never passed over.
    async fn confirm_gone(&self, name: &EntryName, slot: Slot) -> Result<(), StoreError> {
        match self.find(name, slot).await? {
            Found::Live(_) => Err(self.unavailable(format!(
                "vault at {} answered the delete of {}, but the secret is still there",
                self.addr,
                self.locate(name, slot)
            ))),
            Found::Deleted(_) | Found::None => Ok(()),
        }
    }
}

/// What one listing has used of its bounds (see the module docs).
struct ListBudget {
    /// When the whole listing must be done: the store's timeout after it started.
    deadline: Instant,
    /// Keys in all the answers so far.
    entries: usize,
    /// LIST requests sent so far.
    requests: usize,
}

/// Current before pending before previous, for a sorted listing.
fn slot_order(slot: Slot) -> u8 {
    match slot {
        Slot::Current => 0,
        Slot::Pending => 1,
        Slot::Previous => 2,
        Slot::Probe => 3,
    }
}

/// A 503 because the server is sealed.
fn is_sealed(response: &Response) -> bool {
    response.status.as_u16() == 503
        && serde_json::from_slice::<Errors>(&response.body)
            .unwrap_or_default()
            .errors
            .iter()
            .any(|e| e.to_ascii_lowercase().contains("sealed"))
}

/// A KV version 2 mount that is not ready yet (HTTP 400 right after it was enabled, or
/// on a standby until the active node has set it up): nothing was done, try again.
fn is_upgrading(response: &Response) -> bool {
    response.status.as_u16() == 400
        && serde_json::from_slice::<Errors>(&response.body)
            .unwrap_or_default()
            .errors
            .iter()
            .any(|e| {
                e.contains("upgrade from non-versioned to versioned")
                    || e.contains("Upgrading from non-versioned")
            })
}

/// A KV version 2 check-and-set mismatch (HTTP 400).
fn is_cas_mismatch(response: &Response) -> bool {
    serde_json::from_slice::<Errors>(&response.body)
        .unwrap_or_default()
        .errors
        .iter()
        .any(|e| e.contains("check-and-set parameter did not match"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_and_prefix_segments_are_checked() {
        assert_eq!(segments("secret", "m", false).unwrap(), ["secret"]);
        assert_eq!(segments("team/kv", "m", false).unwrap(), ["team", "kv"]);
        assert_eq!(segments("siprot/", "p", true).unwrap(), ["siprot"]);
        assert!(segments("", "p", true).unwrap().is_empty());
        assert_eq!(segments("a/b/", "p", true).unwrap(), ["a", "b"]);
        for bad in ["siprot", "a//b/", "./", "a/../", "/", ".pending/"] {
            let err = segments(bad, "the secret prefix", true).unwrap_err();
            assert_eq!(err.exit_code().code(), 4, "{bad}");
            assert!(err.to_string().contains("the secret prefix"), "{err}");
        }
        for bad in ["", "a//b", "..", "a\nb"] {
            assert!(segments(bad, "the vault mount", false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_the_root_of_a_kv_version_2_mount_is_taken() {
        let store = |mount: &str| {
            VaultStore::connect(
                VaultConnection::new("http://127.0.0.1:1", "test", SecretString::from("t"))
                    .unwrap(),
                &VaultOptions {
                    mount: mount.to_owned(),
                    ..VaultOptions::default()
                },
            )
            .unwrap()
        };
        let version =
            |v: serde_json::Value| std::collections::HashMap::from([("version".to_owned(), v)]);
        let v2 = version(serde_json::json!("2"));
        assert!(
            store("secret")
                .judge_mount("kv", "secret/", Some(&v2))
                .is_ok()
        );
        assert!(
            store("team/kv")
                .judge_mount("kv", "team/kv/", Some(&v2))
                .is_ok()
        );
        assert!(
            store("secret")
                .judge_mount("kv", "secret/", Some(&version(serde_json::json!(2))))
                .is_ok()
        );
        for (mount, kind, root, options, expected) in [
            (
                "secret/data",
                "kv",
                "secret/",
                Some(&v2),
                "is not the root of a mount: it is a path inside the kv mount 'secret'; \
                 --vault-mount takes the root of a KV version 2 mount (--vault-mount secret)",
            ),
            (
                "cubbyhole",
                "cubbyhole",
                "cubbyhole/",
                None,
                "is a cubbyhole mount, not a KV version 2 mount",
            ),
            (
                "kv1",
                "kv",
                "kv1/",
                Some(&version(serde_json::json!("1"))),
                "is a KV version 1 mount",
            ),
            ("kv1", "kv", "kv1/", None, "is a KV version 1 mount"),
        ] {
            let error = store(mount).judge_mount(kind, root, options).unwrap_err();
            assert!(error.to_string().contains(expected), "{mount}: {error}");
            assert_eq!(
                Error::keyring_unavailable(error).exit_code().code(),
                4,
                "{mount}"
            );
        }
    }

    #[test]
    fn the_storage_index_is_read_from_openbaos_header() {
        // As OpenBao 2.7.2 sent it after a KV write on Raft storage.
        let header =
            "eyJjbHVzdGVyIjoiMjgwZDUxMjYtZGMxYi02NjYzLWU4NWQtZTA4YWUxMzYxODk5IiwidmFsdWUiOiIzNSJ9";
        assert_eq!(index_value(header), Some(35));
        assert_eq!(index_value("not base64 !"), None);
        assert_eq!(index_value("e30="), None, "{{}} has no value");
    }

    #[test]
    fn segments_are_encoded_one_by_one() {
        let mut out = String::new();
        encode_segment("a b/c?d#e%f.g", &mut out);
        assert_eq!(out, "a%20b%2Fc%3Fd%23e%25f.g");
    }

    #[test]
    fn the_password_is_flattened_beside_the_facts() {
        let secret = SecretString::from("pw-1");
        let facts = Facts {
            username: Some("u".into()),
            provider: "telepath".into(),
            credential: "conn_x".into(),
            ..Facts::default()
        };
        let body = serde_json::to_value(WriteBody {
            options: Some(Cas { cas: 0 }),
            data: WriteData {
                password: Some(&secret),
                facts: &facts,
            },
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"options": {"cas": 0}, "data": {"password": "pw-1",
                "username": "u", "provider": "telepath", "credential": "conn_x"}})
        );
        let read: SecretData = serde_json::from_value(body["data"].clone()).unwrap();
        assert_eq!(read.password.unwrap().expose_secret(), "pw-1");
        assert_eq!(read.facts, facts);
    }

    fn from_vars(vars: &[(&'static str, &str)], home: &std::path::Path) -> Result<VaultConnection> {
        let map: std::collections::HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let var = move |name: &'static str| Ok(map.get(name).cloned());
        VaultConnection::from_vars(&Env {
            var: &var,
            home: Some(home.to_owned()),
        })
    }

    #[test]
    fn settings_come_from_the_clis_variables_and_the_token_file() {
        let home = tempfile::tempdir().unwrap();
        let err = from_vars(&[("VAULT_TOKEN", "t")], home.path()).unwrap_err();
        assert_eq!(err.exit_code().code(), 4);
        assert!(err.to_string().contains("VAULT_ADDR is not set"), "{err}");
        assert!(err.to_string().contains("BAO_ADDR"), "{err}");

        let err = from_vars(&[("VAULT_ADDR", "http://127.0.0.1:8200")], home.path()).unwrap_err();
        assert!(err.to_string().contains("VAULT_TOKEN is not set"), "{err}");
        assert!(err.to_string().contains("~/.vault-token"), "{err}");

        let ok = from_vars(
            &[
                ("BAO_ADDR", "http://127.0.0.1:8200/"),
                ("BAO_TOKEN", "bao-tok"),
            ],
            home.path(),
        )
        .unwrap();
        assert_eq!(ok.token.expose_secret(), "bao-tok");
        assert_eq!(ok.addr.as_str(), "http://127.0.0.1:8200/");

        std::fs::write(home.path().join(".vault-token"), "file-tok\n").unwrap();
        let ok = from_vars(
            &[
                ("VAULT_ADDR", "https://vault.example.com:8200"),
                ("VAULT_NAMESPACE", "/team/"),
            ],
            home.path(),
        )
        .unwrap();
        assert_eq!(ok.token.expose_secret(), "file-tok");
        assert_eq!(ok.namespace.as_deref(), Some("team"));
        assert!(!format!("{ok:?}").contains("file-tok"));
        // VAULT_TOKEN beats the file.
        let ok = from_vars(
            &[
                ("VAULT_ADDR", "http://localhost:8200"),
                ("VAULT_TOKEN", "env-tok"),
            ],
            home.path(),
        )
        .unwrap();
        assert_eq!(ok.token.expose_secret(), "env-tok");

        std::fs::write(home.path().join(".vault-token"), "  \n").unwrap();
        let err = from_vars(&[("VAULT_ADDR", "http://127.0.0.1:1")], home.path()).unwrap_err();
        assert_eq!(err.exit_code().code(), 4);
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn unsafe_addresses_and_unusable_files_are_configuration_errors() {
        let home = tempfile::tempdir().unwrap();
        let token = ("VAULT_TOKEN", "secret-token-xyz");
        let err = from_vars(
            &[("VAULT_ADDR", "http://10.0.0.5:8200"), token],
            home.path(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code().code(), 4);
        assert!(err.to_string().contains("VAULT_ADDR"), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");

        let addr = ("VAULT_ADDR", "https://vault.example.com");
        let missing = home.path().join("nope.pem");
        let missing = missing.to_str().unwrap();
        let junk = home.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate, but a secret-looking line").unwrap();
        let junk = junk.to_str().unwrap();
        for (vars, names) in [
            (vec![("VAULT_CACERT", missing)], "VAULT_CACERT"),
            (vec![("VAULT_CACERT", junk)], "VAULT_CACERT"),
            (vec![("VAULT_CLIENT_CERT", junk)], "VAULT_CLIENT_KEY is not"),
            (vec![("VAULT_CLIENT_KEY", junk)], "VAULT_CLIENT_CERT is not"),
            (
                vec![("VAULT_CLIENT_CERT", junk), ("VAULT_CLIENT_KEY", junk)],
                "VAULT_CLIENT_CERT/VAULT_CLIENT_KEY",
            ),
            (
                vec![("VAULT_CLIENT_CERT", missing), ("VAULT_CLIENT_KEY", junk)],
                "VAULT_CLIENT_CERT",
            ),
        ] {
            let mut all = vec![addr, token];
            all.extend(vars);
            let err = from_vars(&all, home.path()).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.exit_code().code(), 4, "{text}");
            assert!(text.contains(names), "{text} lacks {names}");
            assert!(!text.contains("secret-looking"), "{text}");
            assert!(!text.contains("secret-token-xyz"), "{text}");
        }
    }

    /// A fake KV version 2 server for what a real one will not do on demand: answer 500
    /// after a write landed, or 307 from a standby.
    mod fake {
        use std::sync::{Arc, Mutex};

        use axum::Router;
        use axum::extract::State;
        use axum::http::StatusCode;
        use axum::response::{IntoResponse, Response};
        use axum::routing::get;

        #[derive(Default)]
        pub struct Server {
            /// The stored data, with its version.
            pub data: Option<(serde_json::Value, u64)>,
            /// Answers to give before behaving: status and body.
            pub script: Vec<(u16, String)>,
            /// Whether a scripted answer comes after the write was applied.
            pub apply_first: bool,
            pub requests: usize,
        }

        type Shared = Arc<Mutex<Server>>;

        async fn read(State(server): State<Shared>) -> Response {
            let mut server = server.lock().unwrap();
            server.requests += 1;
            if !server.script.is_empty() {
                let (status, body) = server.script.remove(0);
                return (
                    StatusCode::from_u16(status).unwrap(),
                    [("location", "/x")],
                    body,
                )
                    .into_response();
            }
            match &server.data {
                Some((data, version)) => axum::Json(serde_json::json!({"data": {"data": data,
                    "metadata": {"version": version, "deletion_time": "", "destroyed": false}}}))
                .into_response(),
                None => (StatusCode::NOT_FOUND, r#"{"errors":[]}"#).into_response(),
            }
        }

        async fn write(State(server): State<Shared>, body: String) -> Response {
            let mut server = server.lock().unwrap();
            server.requests += 1;
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            let cas = body["options"]["cas"].as_u64();
            let current = server.data.as_ref().map_or(0, |(_, v)| *v);
            let applies = cas.is_none_or(|cas| cas == current);
            if applies && server.apply_first {
                server.data = Some((body["data"].clone(), current + 1));
            }
            if !server.script.is_empty() {
                let (status, answer) = server.script.remove(0);
                return (StatusCode::from_u16(status).unwrap(), answer).into_response();
            }
            if !applies {
                return (
                    StatusCode::BAD_REQUEST,
                    r#"{"errors":["check-and-set parameter did not match the current version"]}"#,
                )
                    .into_response();
            }
            if !server.apply_first {
                server.data = Some((body["data"].clone(), current + 1));
            }
            let version = server.data.as_ref().map_or(0, |(_, v)| *v);
            axum::Json(serde_json::json!({"data": {"version": version}})).into_response()
        }

        /// `secret` is the root of a KV version 2 mount (not counted as a request).
        async fn mount() -> Response {
            let body = r#"{"data":{"type":"kv","path":"secret/","options":{"version":"2"}}}"#;
            (StatusCode::OK, body).into_response()
        }

        /// Serves `server` on a loopback port; returns its address.
        pub async fn start(server: Shared) -> String {
            let app = Router::new()
                .route("/v1/secret/data/{*path}", get(read).post(write))
                .route("/v1/sys/internal/ui/mounts/secret", get(mount))
                .with_state(server);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            format!("http://{addr}")
        }
    }

    async fn fake_store(
        server: fake::Server,
    ) -> (VaultStore, std::sync::Arc<std::sync::Mutex<fake::Server>>) {
        let shared = std::sync::Arc::new(std::sync::Mutex::new(server));
        let addr = fake::start(shared.clone()).await;
        let connection =
            VaultConnection::new(&addr, "test", SecretString::from("fake-token")).unwrap();
        let store = VaultStore::connect(
            connection,
            &VaultOptions {
                timeout: Duration::from_secs(5),
                ..VaultOptions::default()
            },
        )
        .unwrap();
        (store, shared)
    }

    #[tokio::test]
    async fn a_retried_create_that_landed_is_a_success_not_a_conflict() {
        let (store, server) = fake_store(fake::Server {
            script: vec![(
                500,
                r#"{"errors":["error during forwarding RPC request"]}"#.into(),
            )],
            apply_first: true,
            ..fake::Server::default()
        })
        .await;
        let name = EntryName::new("telepath/conn_x");
        let secret = SecretString::from("landed-pw");
        let facts = Facts::default();
        let record = Record {
            secret: Some(&secret),
            facts: &facts,
        };
        let version = store
            .write(&name, Slot::Current, record, Precondition::Absent)
            .await
            .unwrap();
        assert_eq!(version, Some(1));
        // Sent twice, then read back once.
        assert_eq!(server.lock().unwrap().requests, 3);

        // Someone else's password there: a conflict.
        let other = SecretString::from("other-pw");
        let err = store
            .write(
                &name,
                Slot::Current,
                Record {
                    secret: Some(&other),
                    facts: &facts,
                },
                Precondition::Absent,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
        assert!(
            err.to_string().contains("secret/siprot/telepath/conn_x"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_standby_redirect_is_retried_not_followed() {
        let (store, server) = fake_store(fake::Server {
            script: vec![
                (307, String::new()),
                (503, r#"{"errors":["Vault is sealed"]}"#.into()),
            ],
            ..fake::Server::default()
        })
        .await;
        let name = EntryName::new("telepath/conn_y");
        assert!(store.read(&name, Slot::Current).await.unwrap().is_none());
        assert_eq!(server.lock().unwrap().requests, 3);

        // An unconditional write is not resent after a 500: it may have landed.
        server.lock().unwrap().script = vec![(500, r#"{"errors":["internal"]}"#.into())];
        let secret = SecretString::from("any-pw");
        let facts = Facts::default();
        let err = store
            .write(
                &name,
                Slot::Current,
                Record {
                    secret: Some(&secret),
                    facts: &facts,
                },
                Precondition::Any,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert!(
            err.to_string().contains("may or may not have been stored"),
            "{err}"
        );
        assert_eq!(server.lock().unwrap().requests, 4);
    }
}
