//! `siprot enable` and `siprot disable`: flip a credential's `enabled` flag at providers
//! that have one. On a terminal, `disable` asks first ([`input::confirm`]).

use serde::Serialize;

use crate::audit::{AuditAction, AuditOutcome};
use crate::cli::{DisableArgs, ToggleArgs};
use crate::commands::block_on;
use crate::error::{Error, ExitCode, Result, exit};
use crate::http::Attempts;
use crate::input;
use crate::output;
use crate::state::{AuditRecord, StateDir};

/// `siprot enable`.
pub fn enable(args: ToggleArgs) -> Result<ExitCode> {
    run(args, true, true)
}

/// `siprot disable`: confirmed on a terminal unless `--yes`.
pub fn disable(args: DisableArgs) -> Result<ExitCode> {
    run(args.toggle, false, args.yes)
}

/// Sets the flag once the configuration is checked and, unless `confirmed`, the operator
/// said yes on a terminal.
fn run(args: ToggleArgs, enable: bool, confirmed: bool) -> Result<ExitCode> {
    let kind = args.credential.provider.provider;
    let action = if enable {
        AuditAction::Enable
    } else {
        AuditAction::Disable
    };
    let operation = if enable { "enable" } else { "disable" };
    if !kind.registration().can_toggle {
        return Err(Error::Unsupported {
            provider: kind.name(),
            operation,
        });
    }
    let (_, credential) = args.credential.resolve()?;
    let (entry, provider) = args.net.connect_to(kind, &credential, &args.store)?;
    let state = StateDir::locate()?;
    state.check()?;
    input::confirm(
        &format!("{operation} {kind} credential {}", credential.display()),
        &format!(
            "it stops working (registrations and calls) until `siprot enable --provider {kind} \
             {}{}`",
            credential.id(),
            credential
                .part_args()
                .map(|(flag, value)| format!(" {flag} {value}"))
                .unwrap_or_default()
        ),
        confirmed,
    )?;
    let attempts = Attempts::new();
    let result = block_on(provider.set_enabled(&credential, enable, &attempts));
    let audited = state.audit(&AuditRecord {
        time: jiff::Timestamp::now().to_string(),
        service: None,
        provider: kind.name(),
        entry: entry.current(),
        action,
        outcome: if result.is_ok() {
            AuditOutcome::Done
        } else {
            AuditOutcome::Failed
        },
        request_id: result.as_ref().ok().and_then(|t| t.request_id.as_deref()),
        attempts: Some(attempts.count()),
        username: result.as_ref().ok().and_then(|t| t.username.as_deref()),
        registrar: None,
        exit_code: result
            .as_ref()
            .map_or_else(Error::exit_code, |_| exit::SUCCESS),
    });
    if let Err(e) = audited {
        output::warning(&format!("audit log not written: {e}"));
    }
    let toggled = result?;
    let status = if toggled.enabled {
        "enabled"
    } else {
        "disabled"
    };
    if args.json {
        output::json(&ToggleJson {
            provider: kind.name(),
            credential: credential.id(),
            username: toggled.username.as_deref(),
            enabled: toggled.enabled,
            status,
            request_id: toggled.request_id.as_deref(),
            attempts: attempts.count(),
        })?;
    } else {
        output::line(&format!(
            "{kind} credential {} is now {status}",
            credential.display()
        ))?;
    }
    Ok(exit::SUCCESS)
}

#[derive(Serialize)]
struct ToggleJson<'a> {
    provider: &'a str,
    credential: &'a str,
    username: Option<&'a str>,
    enabled: bool,
    status: &'a str,
    request_id: Option<&'a str>,
    attempts: u32,
}
