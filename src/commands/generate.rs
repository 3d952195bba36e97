//! `siprot generate`: print one new password that passes a provider's policy (with
//! `--json`, one object with the password, its length and the policy's name).

use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::GenerateArgs;
use crate::error::{ExitCode, Result, exit};
use crate::output;
use crate::policy::Policy;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let policy = args.provider.map_or(&Policy::GENERIC, |kind| kind.policy());
    let password = policy.generate(args.length)?;
    if args.json {
        let json = GenerateJson {
            password: password.expose_secret(),
            length: password.expose_secret().chars().count(),
            policy: policy.name(),
        };
        // The alphabet needs no escaping: the password's length and room for the rest.
        output::json_product(&json, password.expose_secret().len() + 128)?;
        return Ok(exit::SUCCESS);
    }
    let mut text = Zeroizing::new(String::with_capacity(password.expose_secret().len() + 1));
    text.push_str(password.expose_secret());
    text.push('\n');
    output::product(text.as_bytes())?;
    Ok(exit::SUCCESS)
}

/// The JSON contract of `generate --json`.
#[derive(Serialize)]
struct GenerateJson<'a> {
    password: &'a str,
    /// In characters.
    length: usize,
    /// The provider's name, or `generic`.
    policy: &'static str,
}
