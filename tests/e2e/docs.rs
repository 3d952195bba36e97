//! The documentation's relative links resolve: every `[text](path#anchor)` in README.md,
//! CONTRIBUTING.md and docs/*.md names a file of the repository and, for a Markdown file,
//! one of its headings (as GitHub makes anchors from headings).

use std::collections::BTreeSet;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md"), repo().join("CONTRIBUTING.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// GitHub's anchor of a heading: lowercase, punctuation but `-` and `_` dropped, spaces
/// to `-`; a repeated one gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = BTreeSet::new();
    for line in prose(text) {
        let Some(heading) = line.trim_start_matches('#').strip_prefix(' ') else {
            continue;
        };
        if !line.starts_with('#') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.iter().filter(|s| **s == slug).count();
        out.insert(if n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        seen.push(slug);
    }
    out
}

/// The targets of the Markdown links of a line, outside inline code.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = part;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_relative_link_and_anchor_in_the_documentation_resolves() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in prose(&text) {
            for target in links(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                let name = file.strip_prefix(repo()).unwrap().display().to_string();
                if !resolved.exists() {
                    broken.push(format!("{name}: {target}: no such file"));
                    continue;
                }
                if !anchor.is_empty() && resolved.extension().is_some_and(|e| e == "md") {
                    let text = std::fs::read_to_string(&resolved).unwrap();
                    if !anchors(&text).contains(anchor) {
                        broken.push(format!("{name}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_anchors_are_githubs() {
    let anchors = anchors(
        "# siprot\n## rotate --verify\n### Fleet verification (`--verify`)\n## Troubleshooting by exit code\n```\n# not a heading\n```\n## rotate --verify\n",
    );
    let expected: BTreeSet<String> = [
        "siprot",
        "rotate---verify",
        "fleet-verification---verify",
        "troubleshooting-by-exit-code",
        "rotate---verify-1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(anchors, expected);
}

#[test]
fn the_fake_providers_doc_names_every_option_of_the_fakes() {
    let fakes = std::path::Path::new(env!("CARGO_BIN_EXE_siprot"))
        .parent()
        .expect("siprot's directory")
        .join("examples/fake-providers");
    let output = std::process::Command::new(&fakes)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo build --example fake-providers)",
                fakes.display()
            )
        });
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let options: BTreeSet<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(String::from)
        .collect();
    assert!(options.contains("--sip-users"), "{help}");
    let doc = std::fs::read_to_string(repo().join("docs/fake-providers.md")).unwrap();
    let missing: Vec<&String> = options
        .iter()
        .filter(|option| !doc.contains(&format!("`{option}")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/fake-providers.md does not document {missing:?}"
    );
}
