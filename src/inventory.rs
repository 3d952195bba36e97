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
//! Every entry is checked when the file is read, before anything is sent: unknown keys,
//! unknown providers, invalid ids, options a provider does not take, bad ages and
//! duplicates are configuration errors (exit 4) naming the file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::providers::{self, CredentialRef, ProviderKind};

/// The inventory read when `--inventory` is given without a path.
pub const DEFAULT_PATH: &str = "siprot.toml";

/// The placeholders a description template may use.
pub const PLACEHOLDERS: [&str; 4] = ["{date}", "{provider}", "{id}", "{device}"];

/// A validated inventory.
#[derive(Debug)]
pub struct Inventory {
    pub path: PathBuf,
    pub entries: Vec<InventoryEntry>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    provider: String,
    id: String,
    device: Option<String>,
    description: Option<String>,
    max_age: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl Inventory {
    /// Reads and validates the inventory at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read the inventory {}: {e}", path.display()))
        })?;
        Self::parse(&text, path)
    }

    /// Validates inventory text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let lines = LineIndex::new(text);
        let at = |offset: usize| lines.line_of(offset);
        let bad = |line: usize, message: String| {
            Error::Config(format!("{}:{line}: {message}", path.display()))
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| at(span.start));
            bad(line, e.message().trim().replace('\n', " "))
        })?;
        let mut entries = Vec::with_capacity(raw.credential.len());
        let mut seen: HashMap<(&'static str, String, Option<String>), usize> = HashMap::new();
        for spanned in raw.credential {
            let line = lines.header_line(spanned.span().start);
            let raw = spanned.into_inner();
            let entry = validate(raw, line).map_err(|message| bad(line, message))?;
            let key = (
                entry.provider.name(),
                entry.credential.id().to_owned(),
                entry.credential.device().map(str::to_owned),
            );
            if let Some(first) = seen.insert(key, line) {
                return Err(bad(
                    line,
                    format!(
                        "duplicate of the entry on line {first} ({} {})",
                        entry.provider,
                        entry.credential.display()
                    ),
                ));
            }
            entries.push(entry);
        }
        Ok(Self {
            path: path.to_owned(),
            entries,
        })
    }

    /// The entries that pass `--provider` and every `--tag`, in file order.
    pub fn select(&self, provider: Option<ProviderKind>, tags: &[String]) -> Vec<&InventoryEntry> {
        self.entries
            .iter()
            .filter(|e| e.matches(provider, tags))
            .collect()
    }
}

fn validate(raw: RawEntry, line: usize) -> std::result::Result<InventoryEntry, String> {
    let provider = ProviderKind::from_name(&raw.provider).ok_or_else(|| {
        let known: Vec<_> = providers::ALL.iter().map(|p| p.name()).collect();
        format!(
            "unknown provider '{}' (known: {})",
            raw.provider,
            known.join(", ")
        )
    })?;
    let credential = CredentialRef::new(provider, &raw.id, raw.device.as_deref()).map_err(|e| {
        e.to_string()
            .replace("--device <DEVICE_ID>", "a `device` key")
            .replace("--device", "`device`")
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
    for tag in &raw.tags {
        if tag.is_empty() || tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("tag {tag:?} must be a non-empty word"));
        }
    }
    Ok(InventoryEntry {
        line,
        provider,
        credential,
        description: raw.description,
        max_age,
        tags: raw.tags,
    })
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

/// Byte offsets to line numbers, computed once per file (inventories have thousands of
/// entries, so nothing here may rescan the text per entry).
struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    /// 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset).max(1)
    }

    fn line_text(&self, line: usize) -> &'a str {
        let start = self.starts[line - 1];
        let end = self
            .starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        &self.text[start..end.max(start)]
    }

    /// The line of the `[[credential]]` header above a table's first key: the span toml
    /// gives an array-of-tables element starts at its first key.
    fn header_line(&self, offset: usize) -> usize {
        let line = self.line_of(offset);
        (1..=line)
            .rev()
            .find(|l| self.line_text(*l).trim_start().starts_with("[["))
            .unwrap_or(line)
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
        assert_eq!(err.exit_code(), 4, "{err}");
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
    fn the_shipped_example_is_valid() {
        let text = include_str!("../examples/siprot.toml");
        let inventory = parse(text).unwrap();
        assert_eq!(inventory.entries.len(), 3);
        assert_eq!(inventory.select(None, &["prod".into()]).len(), 2);
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
