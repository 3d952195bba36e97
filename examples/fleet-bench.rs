//! Fleet benchmark: rotates N credentials through siprot's fleet code against the fake
//! providers (a separate process, so its memory is not counted) and prints wall time next
//! to the two floors it cannot beat.
//!
//! ```text
//! scripts/bench.sh                      # both modes, the figures in docs/performance.md
//! fleet-bench --mode network --n 1000 --concurrency 32 --latency-ms 50
//! fleet-bench --mode keyring --n 200 --concurrency 32 --latency-ms 50   # needs a Secret Service
//! fleet-bench --mode vault --n 4000 --concurrency 32 --latency-ms 50     # starts an OpenBao dev server
//! ```
//!
//! - network mode: keyring-core's in-memory mock store, so the network is the floor:
//!   max over providers of ceil(credentials / concurrency) x latency.
//! - keyring mode: the real Secret Service (run it inside `scripts/with-keyring.sh`). The
//!   keyring floor is measured in the same run: as many Secret Service writes as the fleet
//!   made, back to back in a minimal loop, on the same keyring.
//! - vault mode: the vault store against a real OpenBao dev server (in memory) this
//!   benchmark starts on a free loopback port: `bao` from `SIPROT_BAO`, else the one
//!   `scripts/install-deps.sh` installs under `target/openbao-venv`. Its store is measured
//!   against the network floor only; `scripts/bench.sh` compares its wall with network
//!   mode's in the same run.
//!
//! `RUST_LOG=siprot=debug` shows siprot's own log lines (each store request and provider
//! try), e.g. to count the requests a rotation makes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use memory::{mib, peak_rss_kib, rss_kib};
use siprot::config::ConnectOptions;
use siprot::fleet::{self, FleetOptions, Outcome};
use siprot::http::HttpConfig;
use siprot::inventory::Inventory;
use siprot::providers::PasswordOrigin;
use siprot::settings::{Accounts, Settings};
use siprot::state::StateDir;
use siprot::store::vault::{self, VaultOptions, VaultStore};
use siprot::store::{self, Facts, Keyring, Precondition, Record, SecretStore, Slot};

#[path = "bench-support/memory.rs"]
mod memory;
#[path = "bench-support/openbao.rs"]
mod openbao;

#[derive(Parser)]
#[command(name = "fleet-bench")]
struct Args {
    /// `network` (mock keyring), `keyring` (the real Secret Service) or `vault` (OpenBao)
    #[arg(long, default_value = "network")]
    mode: String,
    /// Credentials in the fleet, spread evenly over the three providers
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Concurrent rotations per provider
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Latency the fake adds to every request, in milliseconds
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Later runs after the first, each with its own floor (the keyring floor moves
    /// with whatever else the machine is doing, so one run is not enough)
    #[arg(long, default_value_t = 1)]
    later_runs: usize,
}

fn main() -> ExitCode {
    siprot::logging::init(0);
    let args = Args::parse();
    let mode = match args.mode.as_str() {
        "network" => Mode::Network,
        "keyring" => Mode::Keyring,
        "vault" => Mode::Vault,
        other => {
            eprintln!("fleet-bench: unknown mode {other:?} (network, keyring or vault)");
            return ExitCode::from(2);
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let inventory_path = dir.path().join("fleet.toml");
    let (mut fake, exports) = start_fake(&args, &inventory_path);
    // Still one thread: the environment is set before any runtime or client exists.
    unsafe {
        for (name, value) in &exports {
            std::env::set_var(name, value);
        }
        std::env::set_var("XDG_STATE_HOME", dir.path());
        std::env::set_var(
            "SIPROT_KEYRING_SERVICE",
            format!("siprot-bench-{}", std::process::id()),
        );
    }
    if mode == Mode::Network {
        store::use_mock_store().expect("mock store");
    }
    let mut bao = None;
    if mode == Mode::Vault {
        match openbao::start() {
            Ok((child, address, token)) => {
                bao = Some(child);
                // Still one thread, as above.
                unsafe {
                    std::env::set_var("VAULT_ADDR", address);
                    std::env::set_var("VAULT_TOKEN", token);
                }
            }
            Err(message) => {
                let _ = fake.kill();
                eprintln!("fleet-bench: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = run(&args, mode, &inventory_path);
    let _ = fake.kill();
    let _ = fake.wait();
    if let Some(mut bao) = bao {
        let _ = bao.kill();
        let _ = bao.wait();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fleet-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the fake providers next to this binary and reads the environment it prints.
fn start_fake(args: &Args, inventory: &std::path::Path) -> (Child, Vec<(String, String)>) {
    let exe = std::env::current_exe().expect("own path");
    let fake = exe.with_file_name(format!("fake-providers{}", std::env::consts::EXE_SUFFIX));
    let mut child = Command::new(&fake)
        .args(["--port", "0", "--quiet", "--fleet", &args.n.to_string()])
        .args(["--latency-ms", &args.latency_ms.to_string(), "--inventory"])
        .arg(inventory)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (cargo build --release --examples)",
                fake.display()
            )
        });
    let stdout = child.stdout.take().expect("fake stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut exports = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("fake output");
        if let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            exports.push((name.to_owned(), value.to_owned()));
            if name == "VOBIZ_AUTH_TOKEN" {
                break;
            }
        }
    }
    // Keep reading what the fake prints after the exports, so it never hits a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, exports)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Network,
    Keyring,
    Vault,
}

fn run(args: &Args, mode: Mode, inventory_path: &std::path::Path) -> Result<(), String> {
    let inventory = Inventory::load(inventory_path).map_err(|e| e.to_string())?;
    let entries: Vec<_> = inventory.entries.iter().collect();
    let state = StateDir::locate().map_err(|e| e.to_string())?;
    let service = siprot::config::keyring_service().map_err(|e| e.to_string())?;
    let accounts = Accounts::load(None).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let store: Box<dyn SecretStore> = match mode {
        Mode::Vault => {
            let options = VaultOptions {
                mount: vault::DEFAULT_MOUNT.to_owned(),
                prefix: "siprot-bench/".to_owned(),
                timeout: store::DEFAULT_TIMEOUT,
            };
            Box::new(
                runtime
                    .block_on(VaultStore::open(&options))
                    .map_err(|e| e.to_string())?,
            )
        }
        _ => Box::new(
            runtime
                .block_on(Keyring::open(&service, store::DEFAULT_TIMEOUT))
                .map_err(|e| e.to_string())?,
        ),
    };
    let store = store.as_ref();

    // Every credential starts with a current password, as in a fleet rotated before:
    // the steady state, where the protocol makes its usual number of writes.
    runtime.block_on(async {
        for entry in &entries {
            let name = accounts
                .entry_name(entry.provider, &entry.credential, None)
                .map_err(|e| e.to_string())?;
            let seed = secrecy::SecretString::from(format!("Seed-{}", entry.credential.id()));
            let facts = Facts::default();
            let record = Record {
                secret: Some(&seed),
                facts: &facts,
            };
            store
                .write(&name, Slot::Current, record, Precondition::Any)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;

    let mut per_provider: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &entries {
        *per_provider.entry(entry.provider.name()).or_default() += 1;
    }
    // Run 1 is the fleet's first rotation by siprot on this machine (its lock files are
    // created); run 2 is every later one, e.g. tomorrow's cron job.
    let later = (1..=args.later_runs).map(|i| {
        if args.later_runs == 1 {
            "later run".to_owned()
        } else {
            format!("later run {i}")
        }
    });
    for run in std::iter::once("first run".to_owned()).chain(later) {
        let label = format!("{} ({run})", args.mode);
        measure(
            &label,
            args,
            &runtime,
            &entries,
            &per_provider,
            store,
            &state,
            (mode != Mode::Vault).then_some(service.as_str()),
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn measure(
    label: &str,
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    entries: &[&siprot::inventory::InventoryEntry],
    per_provider: &BTreeMap<&str, usize>,
    store: &dyn SecretStore,
    state: &StateDir,
    keyring_service: Option<&str>,
) -> Result<(), String> {
    let options = FleetOptions {
        concurrency: args.concurrency,
        if_older_than: None,
        dry_run: false,
        verify: None,
        exec: None,
        default_exec: None,
        exec_timeout: siprot::hook::DEFAULT_TIMEOUT,
    };
    let connect_options = ConnectOptions {
        http: HttpConfig::default(),
    };
    let connect = |settings: &Settings| settings.provider().connect(settings, &connect_options);
    let accounts = Accounts::load(None).map_err(|e| e.to_string())?;
    let (mut done, mut failed, mut writes, mut requests) = (0usize, 0usize, 0u64, 0u64);
    let mut first_failure = None;
    // What the process holds before the fleet starts: the inventory, the keyring (the
    // mock store keeps every secret in this process) and the runtime.
    let rss_before = rss_kib();
    let started = Instant::now();
    runtime.block_on(fleet::rotate(
        entries,
        &accounts,
        &connect,
        store,
        state,
        &options,
        |result| {
            requests += u64::from(result.attempts);
            match &result.outcome {
                Outcome::Done(report) => {
                    done += 1;
                    writes += u64::from(report.keyring_writes);
                }
                Outcome::Failed { message, .. } => {
                    failed += 1;
                    first_failure.get_or_insert_with(|| message.clone());
                }
                _ => {}
            }
        },
    ));
    let wall = started.elapsed();
    if let Some(message) = first_failure {
        return Err(format!("{failed} rotation(s) failed, the first: {message}"));
    }

    let latency = Duration::from_millis(args.latency_ms);
    let network_floor = per_provider
        .values()
        .map(|n| latency * n.div_ceil(args.concurrency) as u32)
        .max()
        .unwrap_or_default();
    // The keyring floor: measured for a keyring (mock or real); none for the vault
    // store, which takes writes in parallel.
    let keyring_floor = match keyring_service {
        Some(service) => {
            let (floor, floor_writes) = keyring_floor(service, &accounts, entries)?;
            if floor_writes != writes {
                return Err(format!(
                    "the fleet made {writes} keyring writes but the floor loop {floor_writes}"
                ));
            }
            Some(floor)
        }
        None => None,
    };
    let floor = network_floor.max(keyring_floor.unwrap_or_default());
    let rss = peak_rss_kib();
    println!(
        "| {} | {} | {} | {:.2} s | {:.2} s | {} | {:.2} | {:.2} | {:.0} | {} | {} |",
        label,
        args.n,
        args.concurrency,
        wall.as_secs_f64(),
        network_floor.as_secs_f64(),
        keyring_floor.map_or("-".to_owned(), |f| format!("{:.2} s", f.as_secs_f64())),
        writes as f64 / done.max(1) as f64,
        wall.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON),
        requests as f64 / wall.as_secs_f64(),
        mib(rss_before),
        mib(rss),
    );
    Ok(())
}

/// What the keyring alone costs for this fleet: the protocol's writes for every
/// credential, back to back through keyring-core, on the fleet's own entries (so the
/// same keyring size and the same kinds of write: a client-set rotation creates
/// `#pending`, replaces `#previous` and the current entry, and deletes `#pending`; a
/// Telepath one replaces `#previous` and the current entry). No reads, no network, no
/// locks, no audit log. The fake checks API tokens, not old passwords, so overwriting
/// the entries with a placeholder does not disturb the next run.
fn keyring_floor(
    service: &str,
    accounts: &Accounts,
    entries: &[&siprot::inventory::InventoryEntry],
) -> Result<(Duration, u64), String> {
    let placeholder = "floor-write-0123456789";
    let mut writes = 0;
    let started = Instant::now();
    for entry in entries {
        let name = accounts
            .entry_name(entry.provider, &entry.credential, None)
            .map_err(|e| e.to_string())?;
        let open = |slot: Slot| {
            keyring_core::Entry::new(service, &name.slot(slot)).map_err(|e| e.to_string())
        };
        let client_set = entry.provider.origin() == PasswordOrigin::ClientSupplied;
        if client_set {
            open(Slot::Pending)?
                .set_password(placeholder)
                .map_err(|e| e.to_string())?;
        }
        for slot in [Slot::Previous, Slot::Current] {
            open(slot)?
                .set_password(placeholder)
                .map_err(|e| e.to_string())?;
        }
        writes += 2;
        if client_set {
            open(Slot::Pending)?
                .delete_credential()
                .map_err(|e| e.to_string())?;
            writes += 2;
        }
    }
    Ok((started.elapsed(), writes))
}
