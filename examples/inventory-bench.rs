//! Inventory benchmark: writes an inventory of N credentials (a third at each provider,
//! about 64 bytes per entry, like a real fleet's file) and validates it with
//! `Inventory::load`, the first thing `rotate --inventory` and `status` do, then prints
//! the file size, the wall time of the load and this process's peak resident set size.
//!
//! ```text
//! scripts/bench.sh                         # all benchmarks, the figures in docs/performance.md
//! inventory-bench --n 100000               # one run (build with --release)
//! ```

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use memory::{mib, peak_rss_kib, rss_kib};
use siprot::inventory::Inventory;

#[path = "bench-support/memory.rs"]
mod memory;

#[derive(Parser)]
#[command(name = "inventory-bench")]
struct Args {
    /// Credentials in the inventory, spread evenly over the three providers
    #[arg(long, default_value_t = 100_000)]
    n: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("fleet.toml");
    let file = std::fs::File::create(&path).expect("create the inventory");
    let mut out = BufWriter::new(file);
    writeln!(out, "# inventory-bench: {} credentials", args.n).expect("write");
    for i in 0..args.n {
        let entry = match i % 3 {
            0 => format!("[[credential]]\nprovider = \"telepath\"\nid = \"conn_{i:08}\"\n"),
            1 => format!(
                "[[credential]]\nprovider = \"exotel\"\nid = \"user-{i:08}\"\ndevice = \"dev_01\"\n"
            ),
            _ => format!("[[credential]]\nprovider = \"vobiz\"\nid = \"cred-{i:08}\"\n"),
        };
        let tags = if i % 4 == 0 {
            "tags = [\"prod\"]\n"
        } else {
            ""
        };
        write!(out, "\n{entry}{tags}").expect("write");
    }
    out.flush().expect("flush");
    drop(out);
    let size = std::fs::metadata(&path).expect("metadata").len();
    let before = rss_kib();
    let started = Instant::now();
    let inventory = match Inventory::load(&path) {
        Ok(inventory) => inventory,
        Err(e) => {
            eprintln!("inventory-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let wall = started.elapsed();
    let peak = peak_rss_kib();
    assert_eq!(inventory.entries.len(), args.n, "every entry read");
    println!("| entries | file size | load wall | RSS before the load | peak RSS |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {:.1} MB | {:.2} s | {} | {} |",
        args.n,
        size as f64 / 1e6,
        wall.as_secs_f64(),
        mib(before),
        mib(peak)
    );
    ExitCode::SUCCESS
}
