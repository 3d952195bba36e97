//! Diagnostics on standard error, off by default: `-v` shows siprot's own steps
//! (protocol, keyring calls, HTTP tries and their timings), `-vv` adds the libraries'
//! debug output, and `RUST_LOG` (env_logger syntax, e.g. `RUST_LOG=trace`) overrides both.
//!
//! Nothing siprot logs carries a secret: it logs entry names, URLs without credentials,
//! statuses and timings; API keys travel in headers marked sensitive. The test suite runs
//! faults with `RUST_LOG=trace` and `-vv` and checks every output for leaks.
//!
//! A log line that cannot be written (standard error full or closed) is dropped:
//! env_logger ignores a failed write, so logging never panics or changes the exit code.

use std::io::Write;

use log::LevelFilter;

/// Installs the logger for this process; later calls do nothing.
pub fn init(verbosity: u8) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(LevelFilter::Off);
    match verbosity {
        0 => {}
        1 => {
            builder.filter_module("siprot", LevelFilter::Debug);
        }
        _ => {
            builder
                .filter_level(LevelFilter::Debug)
                .filter_module("siprot", LevelFilter::Trace);
        }
    }
    if let Some(filters) = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
    {
        builder.parse_filters(&filters);
    }
    builder
        .target(env_logger::Target::Stderr)
        .format(|out, record| {
            writeln!(
                out,
                "siprot: {}: [{}] {}",
                record.level().as_str().to_ascii_lowercase(),
                record.target(),
                record.args()
            )
        });
    // Only fails when a logger is already installed, which changes nothing.
    let _ = builder.try_init();
}
