//! `scripts/demo-verify.sh`: the fake providers and a local Kamailio for trying `verify`
//! by hand, run as a newcomer would (in the test's keyring session, with the binaries this
//! test build made), and checked to leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo-verify.sh")
}

/// Runs the script with `args` and standard input `stdin`, with the binaries of this
/// build (`cargo test` builds the fake-providers example beside siprot).
fn run(args: &[&str], stdin: &str) -> Output {
    assert!(
        std::env::var_os("SIPROT_PRIVATE_KEYRING").is_some(),
        "run the tests with scripts/test.sh (a private keyring session)"
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_siprot"))
        .parent()
        .expect("siprot's directory")
        .to_owned();
    assert!(
        bin_dir.join("examples/fake-providers").exists(),
        "build the example first: cargo build --example fake-providers"
    );
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new("bash")
        .arg(script())
        .args(args)
        .env("SIPROT_DEMO_BIN_DIR", &bin_dir)
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The script's work directory, from its `==> files (removed at the end): DIR` line.
pub(super) fn work_dir(stdout: &str) -> PathBuf {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("==> files (removed at the end): "))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no work directory line: {stdout}"))
}

/// No process runs with `dir` in its command line (Kamailio's is `-f DIR/kamailio.cfg`,
/// the fake providers' `--sip-users DIR/db/subscriber`).
#[track_caller]
fn assert_nothing_left(dir: &Path) {
    let dir = dir.display().to_string();
    assert!(!Path::new(&dir).exists(), "{dir} is left");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(!cmdline.contains(&dir), "still running: {cmdline}");
    }
}

#[test]
fn the_script_parses() {
    let status = Command::new("bash")
        .arg("-n")
        .arg(script())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn check_mode_rotates_and_verifies_against_its_own_kamailio_and_stops_it() {
    let output = run(&["--check"], "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("demo-verify: ok"), "{stdout}");
    // rotate --verify, with the registrar refusing the previous password.
    assert!(
        stdout.contains("accepted the current password of conn_abc123xyz (telepath, SIP user agent-prod-01): 200 OK"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""verified":true"#)
            && stdout.contains(r#""previous":{"result":"rejected""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: the previous password is rejected"),
        "{stdout}"
    );
    // The fleet, every entry verified, and status showing it.
    assert!(
        stdout.contains("verified                          3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("3 credential(s): 0 overdue, 0 need recovery, 0 not verified"),
        "{stdout}"
    );
    assert_nothing_left(&work_dir(&stdout));
}

#[test]
fn interactive_mode_prints_the_commands_and_opens_a_shell_where_they_work() {
    let output = run(
        &[],
        "siprot rotate --provider vobiz aabbccdd-1234-5678-90ab-cdef12345678 \
         --verify \"$SIPROT_DEMO_REGISTRAR\" --json\nexit\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("siprot rotate --provider telepath conn_abc123xyz --verify sip:127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains(" ul.dump"), "{stdout}");
    // The command typed in the shell reached the fake providers and Kamailio.
    assert!(
        stdout.contains(r#""verified":true"#)
            && stdout.contains(r#""username":"acme_sip_user_01""#),
        "{stdout}"
    );
    assert!(stdout.contains("==> stopping Kamailio"), "{stdout}");
    assert_nothing_left(&work_dir(&stdout));
}
