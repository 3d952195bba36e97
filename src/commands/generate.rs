//! `siprot generate`: print one new password that passes a provider's policy.

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::cli::GenerateArgs;
use crate::error::{ExitCode, Result, exit};
use crate::output;
use crate::policy::Policy;

pub fn run(args: GenerateArgs) -> Result<ExitCode> {
    let policy = args.provider.map_or(&Policy::GENERIC, |kind| kind.policy());
    let password = policy.generate(args.length)?;
    let mut text = Zeroizing::new(String::with_capacity(password.expose_secret().len() + 1));
    text.push_str(password.expose_secret());
    text.push('\n');
    output::product(text.as_bytes())?;
    Ok(exit::SUCCESS)
}
