//! Fake Telepath, Exotel and Vobiz APIs on one local port, for trying siprot by hand.
//!
//! ```text
//! cargo run --example fake-providers -- --port 8787
//! ```
//!
//! It seeds one demo credential per provider, prints the environment to point siprot at
//! it, logs one line per request (never headers or bodies) and serves until Ctrl-C. With
//! `--sip-users PATH` it keeps a Kamailio db_text `subscriber` table there in step with
//! the SIP passwords, as `scripts/demo-verify.sh` uses it.

mod server;

use std::time::Duration;

use clap::Parser;

use server::{FakeConfig, FakeProviders};

const TELEPATH_TRUNK: &str = "conn_abc123xyz";
const TELEPATH_USER: &str = "agent-prod-01";
const EXOTEL_USER: &str = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab";
const EXOTEL_DEVICE: &str = "dev_01";
const VOBIZ_CREDENTIAL: &str = "aabbccdd-1234-5678-90ab-cdef12345678";
const VOBIZ_USER: &str = "acme_sip_user_01";
const TELNYX_CONNECTION: &str = "1293384261075731499";
const TELNYX_USER: &str = "acmesipuser02";
const PLIVO_ENDPOINT: &str = "39452475478853";
const PLIVO_USER: &str = "acmesipuser03";
const TWILIO_LIST: &str = "CL0123456789abcdef0123456789abcdef";
const TWILIO_CREDENTIAL: &str = "CR0123456789abcdef0123456789abcdef";
const TWILIO_USER: &str = "acmesipuser04";

/// Fake Telepath, Exotel and Vobiz SIP-password APIs on 127.0.0.1, for trying siprot
/// without touching a real provider.
#[derive(Parser)]
#[command(name = "fake-providers")]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Artificial delay before each request is handled, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,
    /// Also seed N credentials spread over the three providers (for benchmarks)
    #[arg(long, value_name = "N", default_value_t = 0)]
    fleet: usize,
    /// Write a siprot inventory of the --fleet credentials to this file
    #[arg(long, value_name = "PATH", requires = "fleet")]
    inventory: Option<std::path::PathBuf>,
    /// Do not log requests
    #[arg(long)]
    quiet: bool,
    /// Keep a Kamailio db_text `subscriber` table at this path in step with the SIP
    /// passwords (scripts/demo-verify.sh points a local Kamailio at it)
    #[arg(long, value_name = "PATH")]
    sip_users: Option<std::path::PathBuf>,
}

/// Seeds `n` credentials, a third at each provider, and returns their inventory.
fn seed_fleet(fake: &FakeProviders, n: usize) -> String {
    let mut inventory = String::new();
    for i in 0..n {
        let (provider, extra) = match i % 3 {
            0 => {
                fake.add_telepath_trunk(
                    &format!("fleet-{i:05}"),
                    "fleet",
                    &format!("Fleet-Pass-{i:05}-Tp"),
                );
                ("telepath", String::new())
            }
            1 => {
                fake.add_exotel_device(
                    &format!("fleet-{i:05}"),
                    "dev",
                    &format!("Fleet-Pass-{i:05}-Ex"),
                );
                ("exotel", "device = \"dev\"\n".to_owned())
            }
            _ => {
                fake.add_vobiz_credential(
                    &format!("fleet-{i:05}"),
                    "fleet",
                    &format!("Fleet-Pass-{i:05}-Vz"),
                );
                ("vobiz", String::new())
            }
        };
        inventory.push_str(&format!(
            "[[credential]]\nprovider = \"{provider}\"\nid = \"fleet-{i:05}\"\n{extra}\n"
        ));
    }
    inventory
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let fake = FakeProviders::new(FakeConfig {
        latency: Duration::from_millis(args.latency_ms),
        ..FakeConfig::default()
    });
    fake.add_telepath_trunk(TELEPATH_TRUNK, TELEPATH_USER, "Demo-Telepath-Pass-1");
    fake.add_exotel_device(EXOTEL_USER, EXOTEL_DEVICE, "Demo-Exotel-Pass-1");
    fake.add_vobiz_credential(VOBIZ_CREDENTIAL, VOBIZ_USER, "Demo-Vobiz-Pass-1");
    fake.add_telnyx_connection(TELNYX_CONNECTION, TELNYX_USER, "Demo-Telnyx-Pass-1");
    fake.add_plivo_endpoint(PLIVO_ENDPOINT, PLIVO_USER, "Demo-Plivo-Pass-1");
    fake.add_twilio_credential(
        TWILIO_LIST,
        TWILIO_CREDENTIAL,
        TWILIO_USER,
        "Demo-Twilio-Pass-1",
    );
    fake.set_log_requests(!args.quiet);
    let inventory = seed_fleet(&fake, args.fleet);
    if let Some(path) = &args.sip_users {
        fake.share_sip_users(path);
        if !path.exists() {
            std::process::exit(1);
        }
    }
    if let Some(path) = &args.inventory
        && let Err(e) = std::fs::write(path, inventory)
    {
        eprintln!("fake-providers: cannot write {}: {e}", path.display());
        std::process::exit(1);
    }

    let addr = match fake.start(args.port).await {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!(
                "fake-providers: cannot listen on 127.0.0.1:{}: {e}",
                args.port
            );
            std::process::exit(1);
        }
    };
    println!("fake providers listening on http://{addr} (Ctrl-C to stop)");
    println!();
    println!("  telepath  {}", FakeProviders::telepath_base(addr));
    println!("  exotel    {}", FakeProviders::exotel_base(addr));
    println!("  vobiz     {}", FakeProviders::vobiz_base(addr));
    println!("  telnyx    {}", FakeProviders::telnyx_base(addr));
    println!("  plivo     {}", FakeProviders::plivo_base(addr));
    println!("  twilio    {}", FakeProviders::twilio_base(addr));
    println!();
    println!("# point siprot at it (a keyring service of its own keeps demo secrets apart):");
    let mut exports = vec![("SIPROT_KEYRING_SERVICE", "siprot-fake-providers".to_owned())];
    exports.extend(fake.environment(addr));
    for (name, value) in exports {
        println!("export {name}={value}");
    }
    println!();
    println!("# then, for example:");
    println!("siprot rotate --provider telepath {TELEPATH_TRUNK}");
    println!("siprot rotate --provider exotel {EXOTEL_USER} --device {EXOTEL_DEVICE}");
    println!("siprot rotate --provider vobiz {VOBIZ_CREDENTIAL}");
    println!("siprot disable --provider vobiz {VOBIZ_CREDENTIAL}");
    println!("siprot rotate --provider telnyx {TELNYX_CONNECTION}");
    println!("siprot rotate --provider plivo {PLIVO_ENDPOINT}");
    println!("siprot rotate --provider twilio {TWILIO_CREDENTIAL} --credential-list {TWILIO_LIST}");
    println!();

    match tokio::signal::ctrl_c().await {
        Ok(()) => eprintln!("fake-providers: stopped"),
        Err(e) => {
            eprintln!("fake-providers: cannot wait for Ctrl-C: {e}");
            std::process::exit(1);
        }
    }
}
