//! The fleet inventory: a TOML file listing the credentials siprot rotates together.
//!
//! ```toml
//! [[credential]]
//! provider = "vobiz"
//! id = "aabbccdd-1234-5678-90ab-cdef12345678"
//! description = "Rotated by siprot on {date}"
//! max_age = "30d"
//! tags = ["prod", "eu"]
//! ```
//!
//! Before the first table, `store = "vault"` (with `vault_mount` and `secret_prefix`)
//! picks the store for the whole fleet; `--store` and `SIPROT_STORE` win over it.
//! `exec = "CMD"` there is the post-rotation hook of every entry ([`crate::hook`]); an
//! entry's own `exec` wins over it, and `--exec` over both.
//!
//! For `rotate --inventory --verify`, an entry may name the registrar that proves its
//! new password, `registrar = "sip:HOST[:PORT][;transport=udp|tcp]"`, with `sip_username`
//! and `domain`; given before the first table, each is the default of every entry.
//!
//! An entry may say `profile = "NAME"`: its provider account is that profile's
//! ([`crate::profiles`]) instead of the command's.
//!
//! Every entry is checked when the file is read, before anything is sent: unknown keys,
//! unknown providers, invalid ids, options a provider does not take, bad ages and
//! duplicates are configuration errors naming the file and line, all of them reported at
//! once as one error (exit 4; the first [`MAX_LISTED`], then a count). Only a regular
//! file of at most [`MAX_SIZE`] bytes is read, and it is parsed one table at a time.
//! Since its `exec` runs with every new password and its `store` says where passwords
//! go, it must be trusted first ([`crate::trust`]): owned by the user or root and
//! writable by nobody else, nor its directories (exit 4 otherwise).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::profiles::ProfileName;
use crate::providers::{self, CredentialRef, ProviderKind};
use crate::sip::Registrar;
use crate::store::StoreKind;
use crate::trust::{self, Trust};
use crate::verification;

/// The inventory read when `--inventory` is given without a path.
pub const DEFAULT_PATH: &str = "siprot.toml";

/// The largest inventory file siprot reads: 16 MiB, about 250,000 entries. Larger
/// files, and anything but a regular file (a FIFO, a device, a directory), are refused.
pub const MAX_SIZE: u64 = 16 * 1024 * 1024;

/// The largest one table (one `[[credential]]` entry, or the text before the first) may
/// be: a real entry is under 1 KiB, and this bounds the memory one table's parse takes.
const MAX_TABLE: usize = 1024 * 1024;

/// The placeholders a description template may use.
pub const PLACEHOLDERS: [&str; 4] = ["{date}", "{provider}", "{id}", "{device}"];

/// A validated inventory.
#[derive(Debug)]
pub struct Inventory {
    pub path: PathBuf,
    pub entries: Vec<InventoryEntry>,
    /// The store for the whole fleet (`store = "vault"`); `--store` and `SIPROT_STORE` win.
    pub store: Option<StoreKind>,
    /// The vault store's mount and prefix for the whole fleet; the options win.
    pub vault_mount: Option<String>,
    pub secret_prefix: Option<String>,
    /// The post-rotation hook of every entry without its own (`exec = "CMD"`).
    pub exec: Option<String>,
}

/// One credential of the inventory.
#[derive(Debug, Clone)]
pub struct InventoryEntry {
    /// 1-based line of its `[[credential]]` header.
    pub line: usize,
    pub provider: ProviderKind,
    pub credential: CredentialRef,
    /// The description template (Vobiz), placeholders not yet filled in.
    pub description: Option<String>,
    /// Rotate only when the last rotation is older than this.
    pub max_age: Option<jiff::SignedDuration>,
    pub tags: Vec<String>,
    /// Where `rotate --inventory --verify` registers (the entry's, or the file's default).
    pub registrar: Option<Registrar>,
    /// The SIP username to verify as (else the one the provider returns).
    pub sip_username: Option<String>,
    /// The SIP domain of the From and To URIs (else the registrar's host).
    pub domain: Option<String>,
    /// Its own post-rotation hook (`exec = "CMD"`).
    pub exec: Option<String>,
    /// The profile of its provider account (`profile = "NAME"`, [`crate::profiles`]);
    /// `None`: the command's.
    pub profile: Option<ProfileName>,
}

impl InventoryEntry {
    /// The description for a rotation now: the template with its placeholders filled in.
    pub fn description_now(&self) -> Option<String> {
        let template = self.description.as_deref()?;
        let date = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
        Some(
            template
                .replace("{date}", &date)
                .replace("{provider}", self.provider.name())
                .replace("{id}", self.credential.id())
                .replace("{device}", self.credential.device().unwrap_or_default()),
        )
    }

    /// Whether it passes `--provider` and every `--tag` given.
    pub fn matches(&self, provider: Option<ProviderKind>, tags: &[String]) -> bool {
        provider.is_none_or(|p| p == self.provider) && tags.iter().all(|t| self.tags.contains(t))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    credential: Vec<Spanned<RawEntry>>,
    /// Settings for the whole file (only before the first table).
    store: Option<Spanned<String>>,
    vault_mount: Option<String>,
    secret_prefix: Option<String>,
    /// Defaults of every entry (not flattened: `deny_unknown_fields` ignores flattening).
    registrar: Option<String>,
    sip_username: Option<String>,
    domain: Option<String>,
    /// The post-rotation hook of every entry without its own.
    exec: Option<String>,
}

/// The verification keys, of an entry or (before the first table) of the file.
#[derive(Default, Clone)]
struct RawSip {
    registrar: Option<String>,
    sip_username: Option<String>,
    domain: Option<String>,
}

/// The file-wide settings found so far.
#[derive(Default)]
struct Settings {
    store: Option<StoreKind>,
    vault_mount: Option<String>,
    secret_prefix: Option<String>,
    sip: RawSip,
    exec: Option<String>,
}

/// One `[[credential]]` table. Unknown keys are refused by [`validate`]: the ones the
/// registry names as second parts of ids (`device`...) are [`RawEntry::parts`].
#[derive(Deserialize)]
struct RawEntry {
    provider: String,
    id: String,
    description: Option<String>,
    max_age: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    registrar: Option<String>,
    sip_username: Option<String>,
    domain: Option<String>,
    exec: Option<String>,
    profile: Option<String>,
    /// Every other key: a second part of the id ([`providers::second_parts`]) or a mistake.
    #[serde(flatten)]
    parts: std::collections::BTreeMap<String, toml::Value>,
}

impl RawEntry {
    /// A key that is neither one of the table's own nor a registered second part of an id.
    fn unknown_key(&self) -> Option<&str> {
        self.parts
            .keys()
            .map(String::as_str)
            .find(|key| providers::second_part(key).is_none())
    }
}

/// The byte offset in `table` of the line that sets `key` (`key = ...`), if there is one.
fn key_offset(table: &str, key: &str) -> Option<usize> {
    let mut offset = 0;
    for line in table.split_inclusive('\n') {
        let text = line.trim_start();
        let rest = text
            .strip_prefix(key)
            .or_else(|| text.strip_prefix(&format!("\"{key}\"")));
        if rest.is_some_and(|rest| rest.trim_start().starts_with('=')) {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

impl Inventory {
    /// Reads and validates the inventory at `path`: a regular file (or a symlink to one)
    /// of at most [`MAX_SIZE`] bytes that nobody else may change ([`Trust::Owner`]);
    /// anything else is refused (exit 4) before it is read.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read(path)?;
        Self::parse(&text, path)
    }

    /// Validates inventory text; `path` is only used in messages.
    ///
    /// The text is split at its table headers (found with toml's own lexer) and each
    /// table is parsed on its own, so memory holds the text, the entries and one table's
    /// parse tree at a time, never a tree of the whole file (which took about 35 times
    /// the file's size). Every mistake is reported, not only the first: a table that is
    /// not valid TOML is one mistake and the next table is read as usual. They come as
    /// one error (exit 4) listing each as `file:line: message`, in file order (the first
    /// [`MAX_LISTED`], then how many more).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut lines = LineCounter::new(text);
        let mut mistakes = Mistakes::default();
        let starts = table_starts(text);
        let mut bounds = Vec::with_capacity(starts.len() + 1);
        if starts.first() != Some(&0) {
            bounds.push((0, false));
        }
        bounds.extend(starts.iter().map(|start| (*start, true)));
        let mut entries = Vec::with_capacity(starts.len());
        let mut settings = Settings::default();
        let mut seen: HashMap<(&'static str, String, Option<String>), usize> = HashMap::new();
        for (i, (start, header)) in bounds.iter().copied().enumerate() {
            let end = bounds.get(i + 1).map_or(text.len(), |(next, _)| *next);
            if end - start > MAX_TABLE {
                mistakes.add(
                    lines.line_of(start),
                    format!(
                        "the table starting here is over {} KiB (an unclosed bracket?)",
                        MAX_TABLE / 1024
                    ),
                );
                continue;
            }
            let table = &text[start..end];
            let raw: RawFile = match toml::from_str(table) {
                Ok(raw) => raw,
                Err(e) => {
                    if header && !table.starts_with("[[") {
                        // `[other]`, `[credential]`, `[credential.x]`: no such table is valid.
                        let header = table.lines().next().unwrap_or_default().trim();
                        mistakes.add(
                            lines.line_of(start),
                            format!(
                                "`{header}` is not allowed: each entry is a [[credential]] table"
                            ),
                        );
                    } else {
                        let offset = start + e.span().map_or(0, |span| span.start);
                        mistakes.add(lines.line_of(offset), e.message().trim().to_owned());
                    }
                    continue;
                }
            };
            if let Some(store) = &raw.store {
                match StoreKind::parse(store.get_ref()) {
                    Some(kind) => settings.store = Some(kind),
                    None => mistakes.add(
                        lines.line_of(start + store.span().start),
                        format!(
                            "unknown store '{}' (known: keyring, vault)",
                            store.get_ref().escape_debug()
                        ),
                    ),
                }
            }
            settings.vault_mount = raw.vault_mount.or(settings.vault_mount);
            settings.secret_prefix = raw.secret_prefix.or(settings.secret_prefix);
            settings.sip = RawSip {
                registrar: raw.registrar.or(settings.sip.registrar),
                sip_username: raw.sip_username.or(settings.sip.sip_username),
                domain: raw.domain.or(settings.sip.domain),
            };
            if let Some(exec) = raw.exec {
                match check_exec(&exec) {
                    Ok(()) => settings.exec = Some(exec),
                    Err(m) => mistakes.add(lines.line_of(start), m),
                }
            }
            if !header && !raw.credential.is_empty() && !starts.is_empty() {
                mistakes.add(
                    lines.line_of(starts[0]),
                    "`credential` is both an inline array and [[credential]] tables".into(),
                );
                continue;
            }
            for spanned in raw.credential {
                // The span of an array-of-tables element starts at its first key: its
                // line is the header's, where this table starts.
                let line = lines.line_of(if header {
                    start
                } else {
                    start + spanned.span().start
                });
                let span = spanned.span();
                let raw = spanned.into_inner();
                if let Some(key) = raw.unknown_key() {
                    // On the key's own line, as serde's `deny_unknown_fields` would say.
                    let at = table
                        .get(span.start..)
                        .and_then(|within| key_offset(within, key))
                        .map_or(line, |offset| lines.line_of(start + span.start + offset));
                    mistakes.add(at, format!("unknown field `{}`", one_line(key)));
                    continue;
                }
                let entry = match validate(raw, &settings.sip, line) {
                    Ok(entry) => entry,
                    Err(message) => {
                        mistakes.add(line, message);
                        continue;
                    }
                };
                let key = (
                    entry.provider.name(),
                    entry.credential.id().to_owned(),
                    entry.credential.device().map(str::to_owned),
                );
                if let Some(first) = seen.insert(key, line) {
                    mistakes.add(
                        line,
                        format!(
                            "duplicate of the entry on line {first} ({} {})",
                            entry.provider,
                            entry.credential.display()
                        ),
                    );
                    continue;
                }
                entries.push(entry);
            }
        }
        mistakes.check(path)?;
        Ok(Self {
            path: path.to_owned(),
            entries,
            store: settings.store,
            vault_mount: settings.vault_mount,
            secret_prefix: settings.secret_prefix,
            exec: settings.exec,
        })
    }

    /// The hook of `entry`: its own `exec`, else the file's.
    pub fn exec_of<'a>(&'a self, entry: &'a InventoryEntry) -> Option<&'a str> {
        entry.exec.as_deref().or(self.exec.as_deref())
    }

    /// The entry of `provider`'s credential `id` (and `device`), if the file has it.
    pub fn find(
        &self,
        provider: ProviderKind,
        id: &str,
        device: Option<&str>,
    ) -> Option<&InventoryEntry> {
        self.entries.iter().find(|e| {
            e.provider == provider && e.credential.id() == id && e.credential.device() == device
        })
    }

    /// The entries that pass `--provider` and every `--tag`, in file order; none is a
    /// configuration error (exit 4) naming the selection, unless `allow_empty`.
    pub fn select_some(
        &self,
        provider: Option<ProviderKind>,
        tags: &[String],
        allow_empty: bool,
    ) -> Result<Vec<&InventoryEntry>> {
        let selected = self.select(provider, tags);
        if !selected.is_empty() || allow_empty {
            return Ok(selected);
        }
        let path = self.path.display();
        let hint = "(give --allow-empty to accept an empty selection)";
        if self.entries.is_empty() {
            return Err(Error::Config(format!(
                "{path} lists no credentials: nothing to do {hint}"
            )));
        }
        let mut selection = Vec::new();
        if let Some(provider) = provider {
            selection.push(format!("--provider {provider}"));
        }
        for tag in tags {
            selection.push(format!("--tag {}", tag.escape_debug()));
        }
        let n = self.entries.len();
        let credentials = if n == 1 { "credential" } else { "credentials" };
        Err(Error::Config(format!(
            "{} matches none of the {n} {credentials} in {path} {hint}",
            selection.join(" ")
        )))
    }

    /// The entries that pass `--provider` and every `--tag`, in file order.
    pub fn select(&self, provider: Option<ProviderKind>, tags: &[String]) -> Vec<&InventoryEntry> {
        self.entries
            .iter()
            .filter(|e| e.matches(provider, tags))
            .collect()
    }
}

/// The most mistakes one error lists; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// The mistakes found in an inventory so far: the first [`MAX_LISTED`] (line, message),
/// and how many in all.
#[derive(Default)]
struct Mistakes {
    listed: Vec<(usize, String)>,
    total: usize,
}

impl Mistakes {
    fn add(&mut self, line: usize, message: String) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push((line, message));
        }
    }

    /// None, or one configuration error (exit 4) listing them on one line, each as
    /// `file:line: message` (one alone is just that).
    fn check(self, path: &Path) -> Result<()> {
        let path = path.display();
        let listed: Vec<String> = self
            .listed
            .iter()
            .map(|(line, message)| format!("{path}:{line}: {}", one_line(message)))
            .collect();
        match self.total {
            0 => Ok(()),
            1 => Err(Error::Config(listed.join(""))),
            total => {
                let more = total - listed.len();
                let more = if more > 0 {
                    format!("; ... and {more} more")
                } else {
                    String::new()
                };
                Err(Error::Config(format!(
                    "{path} has {total} mistakes: {}{more}",
                    listed.join("; ")
                )))
            }
        }
    }
}

/// A message on one line: line breaks become spaces, other control characters escapes
/// (an inventory's values may hold any, and a message goes to a terminal).
fn one_line(message: &str) -> String {
    let message = message
        .trim()
        .replace("\r\n", " ")
        .replace(['\n', '\r'], " ");
    crate::redact::escape_controls(&message)
}

fn validate(
    raw: RawEntry,
    defaults: &RawSip,
    line: usize,
) -> std::result::Result<InventoryEntry, String> {
    let provider = ProviderKind::from_name(&raw.provider).ok_or_else(|| {
        let known: Vec<_> = providers::ALL.iter().map(|p| p.name()).collect();
        format!(
            "unknown provider '{}' (known: {})",
            raw.provider,
            known.join(", ")
        )
    })?;
    let mut parts = Vec::with_capacity(raw.parts.len());
    for (key, value) in &raw.parts {
        let value = value
            .as_str()
            .ok_or_else(|| format!("`{key}` must be a string"))?;
        parts.push((key.as_str(), value));
    }
    let credential = CredentialRef::new(provider, &raw.id, &parts).map_err(|e| {
        providers::second_parts()
            .into_iter()
            .fold(e.to_string(), |message, part| {
                message
                    .replace(
                        &format!("{} <{}>", part.flag, part.value_name),
                        &format!("a `{}` key", part.key),
                    )
                    .replace(part.flag, &format!("`{}`", part.key))
            })
    })?;
    if let Some(template) = &raw.description {
        if !provider.registration().takes_description {
            return Err(format!(
                "{provider} keeps no description: drop `description`"
            ));
        }
        check_template(template)?;
    }
    let max_age = raw.max_age.as_deref().map(parse_age).transpose()?;
    let profile = raw
        .profile
        .as_deref()
        .map(|name| ProfileName::parse(name, "profile"))
        .transpose()
        .map_err(|e| e.to_string().replace("invalid configuration: ", ""))?;
    if let Some(exec) = &raw.exec {
        check_exec(exec)?;
    }
    for tag in &raw.tags {
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("tag {tag:?} must be a non-empty word"));
        }
    }
    let registrar = raw
        .registrar
        .or_else(|| defaults.registrar.clone())
        .map(|uri| uri.parse::<Registrar>())
        .transpose()
        .map_err(|e| format!("registrar: {e}"))?;
    let sip_username = raw.sip_username.or_else(|| defaults.sip_username.clone());
    let domain = raw.domain.or_else(|| defaults.domain.clone());
    if let Some(username) = &sip_username {
        verification::validate_sip_token("username", username).map_err(|e| e.to_string())?;
    }
    if let Some(domain) = &domain {
        verification::validate_sip_token("domain", domain).map_err(|e| e.to_string())?;
    }
    if registrar.is_some()
        && sip_username.is_none()
        && !provider.registration().returns_sip_username
    {
        return Err(format!(
            "{provider} returns no SIP username: give `sip_username` with `registrar`"
        ));
    }
    Ok(InventoryEntry {
        line,
        provider,
        credential,
        description: raw.description,
        max_age,
        tags: raw.tags,
        registrar,
        sip_username,
        domain,
        exec: raw.exec,
        profile,
    })
}

/// A hook command is not blank and has no NUL (which no `sh -c` argument can carry).
fn check_exec(command: &str) -> std::result::Result<(), String> {
    if command.trim().is_empty() {
        return Err("`exec` is empty: drop it or name a command".into());
    }
    if command.contains('\0') {
        return Err("`exec` contains a NUL character".into());
    }
    Ok(())
}

fn check_template(template: &str) -> std::result::Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let tail = &rest[open..];
        let Some(close) = tail.find('}') else {
            return Err(format!("description has an unclosed '{{': {template:?}"));
        };
        let placeholder = &tail[..=close];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "description uses unknown placeholder {placeholder} (known: {})",
                PLACEHOLDERS.join(" ")
            ));
        }
        rest = &tail[close + 1..];
    }
    Ok(())
}

/// Parses an age such as `30d`, `12h`, `2w`, `90m` or `45s` (one number, one unit).
pub fn parse_age(text: &str) -> std::result::Result<jiff::SignedDuration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("age {text:?} must be a number and a unit, like 30d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "age {text:?} needs a unit: s, m, h, d or w (like 30d)"
            ));
        }
    };
    number
        .checked_mul(seconds)
        .filter(|s| *s > 0 && *s <= 100 * 365 * 86_400)
        .map(jiff::SignedDuration::from_secs)
        .ok_or_else(|| format!("age {text:?} must be more than 0 and at most 100 years"))
}

/// Reads the inventory file; see [`Inventory::load`].
fn read(path: &Path) -> Result<String> {
    let what = format!("the inventory {}", path.display());
    let mut file = trust::read_small(path, MAX_SIZE, Trust::Owner).map_err(|e| {
        let mut message = e.message(&what);
        if let trust::ReadError::Missing(_) = e {
            message.push_str(&format!(
                "; give the inventory's path with --inventory PATH (the default is \
                 {DEFAULT_PATH} in the current directory)"
            ));
        }
        Error::Config(message)
    })?;
    String::from_utf8(std::mem::take(&mut *file.bytes))
        .map_err(|_| Error::Config(format!("cannot read {what}: it is not UTF-8 text")))
}

/// Byte offsets of the table headers (`[table]`, `[[array]]`) of a TOML document, found
/// with toml's own lexer, so that brackets in strings, comments and values spanning
/// lines (arrays, inline tables) are never taken for headers. A header is a `[` that
/// begins a line outside any value.
fn table_starts(text: &str) -> Vec<usize> {
    use toml_parser::lexer::TokenKind;
    let mut starts = Vec::new();
    // Brackets and braces open in the current value.
    let mut depth = 0usize;
    let mut line_start = true;
    let mut in_header = false;
    for token in toml_parser::Source::new(text).lex() {
        match token.kind() {
            TokenKind::Newline => {
                if depth == 0 {
                    line_start = true;
                    in_header = false;
                }
            }
            TokenKind::Whitespace | TokenKind::Comment => {}
            _ if in_header => {}
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                starts.push(token.span().start());
                in_header = true;
                line_start = false;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    starts
}

/// Byte offsets to line numbers, counted forward as the tables are read (nothing here
/// may rescan the text per entry, nor keep a table of every line).
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// 1-based line of a byte offset.
    fn line_of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += self.text[self.offset..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        self.offset = offset;
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory> {
        Inventory::parse(text, Path::new("fleet.toml"))
    }

    fn message(text: &str) -> String {
        let err = parse(text).unwrap_err();
        assert_eq!(err.exit_code().code(), 4, "{err}");
        err.to_string()
    }

    const GOOD: &str = r#"
# the production trunks
[[credential]]
provider = "telepath"
id = "conn_abc123xyz"
max_age = "30d"
tags = ["prod"]

[[credential]]
provider = "exotel"
id = "6f1c2d3e-aaaa"
device = "dev_01"
tags = ["prod", "eu"]

[[credential]]
provider = "vobiz"
id = "cred-1"
description = "Rotated by siprot on {date} ({provider} {id})"
"#;

    #[test]
    fn a_good_inventory_reads_with_lines_and_filters() {
        let inventory = parse(GOOD).unwrap();
        let lines: Vec<usize> = inventory.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 9, 15]);
        assert_eq!(
            inventory.entries[0].max_age,
            Some(jiff::SignedDuration::from_hours(30 * 24))
        );
        assert_eq!(inventory.entries[1].credential.device(), Some("dev_01"));
        let telepath = ProviderKind::from_name("telepath");
        assert_eq!(inventory.select(telepath, &[]).len(), 1);
        assert_eq!(inventory.select(None, &["prod".into()]).len(), 2);
        assert_eq!(
            inventory.select(None, &["prod".into(), "eu".into()]).len(),
            1
        );
        assert_eq!(inventory.select(None, &["nope".into()]).len(), 0);
        let description = inventory.entries[2].description_now().unwrap();
        assert!(
            description.starts_with("Rotated by siprot on 20"),
            "{description}"
        );
        assert!(description.ends_with("(vobiz cred-1)"), "{description}");
        assert!(parse("").unwrap().entries.is_empty());
    }

    #[test]
    fn a_second_part_is_the_key_its_provider_registers() {
        let list = "CL0123456789abcdef0123456789abcdef";
        let cred = "CR0123456789abcdef0123456789abcdef";
        let head = |provider: &str, id: &str| {
            format!("[[credential]]\nprovider = \"{provider}\"\nid = \"{id}\"\n")
        };
        let text = format!("{}credential_list = \"{list}\"\n", head("twilio", cred));
        let inventory = parse(&text).unwrap();
        assert_eq!(inventory.entries[0].credential.id(), cred);
        assert_eq!(inventory.entries[0].credential.device(), Some(list));
        for (text, message) in [
            (head("twilio", cred), "twilio needs a `credential_list` key"),
            (
                format!("{}device = \"d\"\n", head("twilio", cred)),
                "twilio does not take `device`",
            ),
            (
                format!(
                    "{}device = \"d\"\ncredential_list = \"{list}\"\n",
                    head("exotel", "u")
                ),
                "exotel does not take `credential_list`",
            ),
            (
                format!("{}credential_list = 7\n", head("twilio", cred)),
                "`credential_list` must be a string",
            ),
            (
                format!("{}\ncolour = \"red\"\n", head("twilio", cred)),
                "fleet.toml:5: unknown field `colour`",
            ),
        ] {
            let error = parse(&text).unwrap_err().to_string();
            assert!(error.contains(message), "{message} in {error}");
        }
    }

    #[test]
    fn mistakes_name_the_file_and_line() {
        let cases = [
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\ncolour = \"red\"\n",
                "fleet.toml:4:",
                "unknown field `colour`",
            ),
            (
                "[[credential]]\nprovider = \"nope\"\nid = \"a\"\n",
                "fleet.toml:1:",
                "unknown provider 'nope'",
            ),
            (
                "\n\n[[credential]]\nprovider = \"exotel\"\nid = \"a\"\n",
                "fleet.toml:3:",
                "exotel needs a `device` key",
            ),
            (
                "[[credential]]\nprovider = \"telepath\"\nid = \"a/b\"\n",
                "fleet.toml:1:",
                "cannot contain '/'",
            ),
            (
                "[[credential]]\nprovider = \"telepath\"\nid = \"a\"\ndescription = \"x\"\n",
                "fleet.toml:1:",
                "keeps no description",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\ndescription = \"{when}\"\n",
                "fleet.toml:1:",
                "unknown placeholder {when}",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\nmax_age = \"30\"\n",
                "fleet.toml:1:",
                "needs a unit",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n\n[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n",
                "fleet.toml:5:",
                "duplicate of the entry on line 1",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\n",
                "fleet.toml:1:",
                "missing field `id`",
            ),
            ("[[credential]\nprovider = \"vobiz\"\n", "fleet.toml:1:", ""),
            (
                "[[credentials]]\nprovider = \"vobiz\"\nid = \"a\"\n",
                "fleet.toml:1:",
                "unknown field `credentials`",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\ntags = [\"two words\"]\n",
                "fleet.toml:1:",
                "non-empty word",
            ),
        ];
        for (text, at, fragment) in cases {
            let message = message(text);
            assert!(message.contains(at), "{text:?}: {message}");
            assert!(message.contains(fragment), "{text:?}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn every_mistake_is_reported_in_file_order_and_the_list_is_capped() {
        // Three entries wrong in three ways, a good one between, a table that is not
        // TOML (the tables after it are still read), and a duplicate.
        let text = "[[credential]]\nprovider = \"nope\"\nid = \"a\"\n\
            [[credential]]\nprovider = \"vobiz\"\nid = \"good\"\n\
            [[credential]]\nprovider = \"vobiz\"\nid = \"b\"\nmax_age = \"30\"\n\
            [[credential]]\nprovider = \"vobiz\"\nid = \"c\"\ncolour = \"red\"\n\
            [[credential]]\nprovider = = \"vobiz\"\n\
            [[credential]]\nprovider = \"vobiz\"\nid = \"good\"\n";
        let message = message(text);
        assert!(message.contains("fleet.toml has 5 mistakes: "), "{message}");
        let expected = [
            "fleet.toml:1: unknown provider 'nope'",
            "; fleet.toml:7: age \"30\" needs a unit",
            "; fleet.toml:14: unknown field `colour`",
            "; fleet.toml:16: ",
            "; fleet.toml:17: duplicate of the entry on line 4",
        ];
        let mut rest = message.as_str();
        for fragment in expected {
            let at = rest
                .find(fragment)
                .unwrap_or_else(|| panic!("{fragment:?} in order in {message}"));
            rest = &rest[at + fragment.len()..];
        }
        assert!(!message.contains('\n'), "one line: {message}");
        // A control character in a value is escaped, never written to the terminal.
        let message = self::message("[[credential]]\nprovider = \"a\\u001b[31m\"\nid = \"a\"\n");
        assert!(!message.chars().any(char::is_control), "{message:?}");
        assert!(message.contains("\\u{1b}[31m"), "{message}");
        // Past MAX_LISTED, the rest are counted.
        let many = "[[credential]]\nprovider = \"nope\"\nid = \"a\"\n".repeat(MAX_LISTED + 7);
        let message = self::message(&many);
        assert!(
            message.contains(&format!("has {} mistakes", MAX_LISTED + 7)),
            "{message}"
        );
        assert_eq!(message.matches("unknown provider").count(), MAX_LISTED);
        assert!(message.ends_with("; ... and 7 more"), "{message}");
    }

    #[test]
    fn tables_are_split_at_headers_only() {
        // Brackets in strings, comments, multi-line strings and arrays, a BOM, indented
        // and spaced headers, CRLF line endings.
        let text = "\u{feff}# [[credential]] in a comment\r\n\
            [[credential]]\r\nprovider = \"vobiz\"\r\nid = \"a\"\r\n\
            description = \"\"\"x\n[[credential]]\nprovider = 'telepath'\n\"\"\"\n\
            tags = [\n  \"[x]\",\n]\n\n  [[ credential ]]\nprovider = \"vobiz\"\nid = \"b\"\n\
            [[\"credential\"]] # quoted\nprovider = \"vobiz\"\nid = \"c\"\n";
        let inventory = parse(text).unwrap();
        let lines: Vec<usize> = inventory.entries.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 13, 16]);
        assert_eq!(inventory.entries[0].tags, ["[x]"]);
        assert!(
            inventory.entries[0]
                .description
                .as_deref()
                .unwrap()
                .contains("[[credential]]")
        );
        // Other tables are refused wherever they are.
        for (text, at) in [
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n[other]\nx = 1\n",
                ":4: `[other]` is not allowed",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n[credential.x]\n",
                ":4: `[credential.x]` is not allowed",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n [credential] # c\n",
                ":4: `[credential] # c` is not allowed",
            ),
            (
                "x = 1\n[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n",
                ":1: unknown field `x`",
            ),
        ] {
            let message = message(text);
            assert!(message.contains(at), "{text:?}: {message}");
        }
        // An inline array alone is TOML too; mixed with [[credential]] it is not.
        let inline = "credential = [\n  { provider = \"vobiz\", id = \"a\" },\n  { provider = \"vobiz\", id = \"b\" },\n]\n";
        let lines: Vec<usize> = parse(inline)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(lines, [2, 3]);
        let mixed = format!("{inline}[[credential]]\nprovider = \"vobiz\"\nid = \"c\"\n");
        assert!(message(&mixed).contains("fleet.toml:5: `credential` is both"));
        // An unclosed bracket cannot make one table of the rest of a large file.
        let mut unclosed =
            String::from("[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\ntags = [\n");
        while unclosed.len() <= MAX_TABLE {
            unclosed.push_str("[[credential]]\nprovider = \"vobiz\"\nid = \"b\"\n");
        }
        assert!(
            message(&unclosed).contains("fleet.toml:1: the table starting here is over 1024 KiB")
        );
    }

    #[test]
    fn registrars_come_from_the_entry_or_the_file_and_are_checked() {
        let text = "registrar = \"sip:10.0.0.1\"\ndomain = \"example.net\"\n\
            [[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n\
            [[credential]]\nprovider = \"telepath\"\nid = \"conn_b\"\n\
            registrar = \"sip:10.0.0.2:5080;transport=tcp\"\n\
            [[credential]]\nprovider = \"exotel\"\nid = \"u\"\ndevice = \"d\"\n\
            sip_username = \"u-d\"\n";
        let inventory = parse(text).unwrap();
        let registrars: Vec<String> = inventory
            .entries
            .iter()
            .map(|e| e.registrar.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            registrars,
            [
                "sip:10.0.0.1:5060;transport=udp",
                "sip:10.0.0.2:5080;transport=tcp",
                "sip:10.0.0.1:5060;transport=udp"
            ]
        );
        assert!(
            inventory
                .entries
                .iter()
                .all(|e| e.domain.as_deref() == Some("example.net"))
        );
        assert_eq!(inventory.entries[2].sip_username.as_deref(), Some("u-d"));
        assert!(
            parse(GOOD)
                .unwrap()
                .entries
                .iter()
                .all(|e| e.registrar.is_none())
        );
        let cases = [
            (
                "registrar = \"sip:h\"\n[[credential]]\nprovider = \"exotel\"\nid = \"u\"\ndevice = \"d\"\n",
                "fleet.toml:2:",
                "exotel returns no SIP username: give `sip_username`",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\nregistrar = \"http://h\"\n",
                "fleet.toml:1:",
                "registrar: ",
            ),
            (
                "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\nsip_username = \"a b\"\n",
                "fleet.toml:1:",
                "SIP username must be",
            ),
        ];
        for (text, at, expected) in cases {
            let error = message(text);
            assert!(error.contains(at) && error.contains(expected), "{error}");
        }
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../examples/siprot.toml");
        let inventory = parse(text).unwrap();
        assert_eq!(inventory.entries.len(), 3);
        assert_eq!(inventory.select(None, &["prod".into()]).len(), 2);
        assert!(inventory.entries[0].exec.is_some());
    }

    #[test]
    fn an_entrys_exec_wins_over_the_files() {
        let inventory = parse(
            "exec = \"file-hook\"\n\
             [[credential]]\nprovider = \"telepath\"\nid = \"conn_a\"\n\
             [[credential]]\nprovider = \"telepath\"\nid = \"conn_b\"\nexec = \"own-hook\"\n",
        )
        .unwrap();
        let [a, b] = &inventory.entries[..] else {
            panic!("two entries")
        };
        assert_eq!(inventory.exec_of(a), Some("file-hook"));
        assert_eq!(inventory.exec_of(b), Some("own-hook"));
        let telepath = ProviderKind::from_name("telepath").unwrap();
        assert_eq!(
            inventory.find(telepath, "conn_b", None).map(|e| e.line),
            Some(b.line)
        );
        assert!(inventory.find(telepath, "conn_c", None).is_none());
        for bad in ["exec = \"\"\n", "exec = \" \"\n"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages_take_one_number_and_a_unit() {
        assert_eq!(parse_age("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_age("2w").unwrap().as_secs(), 14 * 86_400);
        assert_eq!(parse_age("12h").unwrap().as_secs(), 12 * 3600);
        assert_eq!(parse_age("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_age("45s").unwrap().as_secs(), 45);
        for bad in [
            "",
            "d",
            "30",
            "30 d",
            "0d",
            "-1d",
            "1.5d",
            "30y",
            "999999999999w",
        ] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }
}
