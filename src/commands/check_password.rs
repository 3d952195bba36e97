//! `siprot check-password`: judge a password read from standard input against a
//! provider's policy; exit 0 when it passes, 3 when it fails.

use serde::Serialize;

use crate::cli::CheckPasswordArgs;
use crate::error::{ExitCode, Result, exit};
use crate::input;
use crate::output;
use crate::policy::{Policy, Report};

pub fn run(args: CheckPasswordArgs) -> Result<ExitCode> {
    let policy = args.provider.map_or(&Policy::GENERIC, |kind| kind.policy());
    let password = input::read_password("Password to check: ")?;
    let report = policy.check(&password);
    drop(password);
    if args.json {
        output::json(&CheckJson {
            ok: report.ok,
            provider: policy.name(),
            rules: &report,
            note: policy.note(),
        })?;
    } else {
        print_human(policy, &report)?;
    }
    Ok(if report.ok {
        exit::SUCCESS
    } else {
        exit::POLICY
    })
}

/// The JSON contract: `{"ok", "provider", "rules": [{"rule","ok","message"}], "warnings"}`.
#[derive(Serialize)]
struct CheckJson<'a> {
    ok: bool,
    provider: &'a str,
    #[serde(flatten, serialize_with = "rules_and_warnings")]
    rules: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

fn rules_and_warnings<S: serde::Serializer>(report: &&Report, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("rules", &report.rules)?;
    map.serialize_entry("warnings", &report.warnings)?;
    map.end()
}

fn print_human(policy: &Policy, report: &Report) -> Result<()> {
    if let Some(note) = policy.note() {
        output::line(&format!("note: {note}"))?;
    }
    for rule in &report.rules {
        let mark = if rule.ok { "pass" } else { "FAIL" };
        output::line(&format!("{mark}  {}: {}", rule.rule, rule.message))?;
    }
    for warning in &report.warnings {
        output::line(&format!("warn  {warning}"))?;
    }
    output::line(&if report.ok {
        format!("the password passes the {} policy", policy.name())
    } else {
        format!("the password fails the {} policy", policy.name())
    })
}
