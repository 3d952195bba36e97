//! `siprot generate`: print one new password that passes a provider's policy.

use std::io::Write;

use secrecy::ExposeSecret;

use crate::cli::GenerateArgs;
use crate::error::{Error, Result, exit};
use crate::policy::Policy;

pub fn run(args: GenerateArgs) -> Result<u8> {
    let policy = args.provider.map_or(&Policy::GENERIC, |kind| kind.policy());
    let password = policy.generate(args.length)?;
    let mut out = std::io::stdout().lock();
    out.write_all(password.expose_secret().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("cannot write to standard output", e))?;
    Ok(exit::SUCCESS)
}
