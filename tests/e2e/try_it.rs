//! `scripts/try-it.sh`: a practice session against the fake providers, run as a newcomer
//! would (with the binaries this test build made, a home directory of its own and no
//! keyring session of the tests: the script starts its own), and checked to keep to its
//! private keyring, state and configuration and to leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::demo_verify::work_dir;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/try-it.sh")
}

/// Runs the script with `args`, standard input `stdin` and `SHELL=shell`, from a home
/// directory of its own (`home`), outside the tests' keyring session.
fn run(args: &[&str], stdin: &str, shell: &str, home: &Path) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_siprot"))
        .parent()
        .expect("siprot's directory")
        .to_owned();
    assert!(
        bin_dir.join("examples/fake-providers").exists(),
        "build the example first: cargo build --example fake-providers"
    );
    let mut child = Command::new("bash")
        .arg(script())
        .args(args)
        .env("SIPROT_DEMO_BIN_DIR", &bin_dir)
        .env("HOME", home)
        .env("SHELL", shell)
        // As on a machine without a desktop session: the script makes its own.
        .env_remove("SIPROT_PRIVATE_KEYRING")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("SIPROT_KEYRING_SERVICE")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME")
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

/// The keyring service the session used (`siprot-try-it-PID`), as siprot's output names it.
fn keyring_service(stdout: &str) -> String {
    let start = stdout
        .find("siprot-try-it-")
        .unwrap_or_else(|| panic!("no keyring service named: {stdout}"));
    let digits = stdout[start + "siprot-try-it-".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    stdout[start..start + "siprot-try-it-".len() + digits].to_owned()
}

/// Nothing the session started still runs: no process has `home` as its HOME (the fake
/// providers, the shell, the private D-Bus daemon and gnome-keyring all inherit it) or the
/// work directory in its command line; the work directory is gone; nothing was written
/// in the user's own state or configuration directory under `home`.
#[track_caller]
fn assert_torn_down(home: &Path, work: &Path) {
    assert!(!work.exists(), "{} is left", work.display());
    let marker = format!("HOME={}", home.display());
    let work = work.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) || cmdline.contains(&work)
            {
                left.push(cmdline);
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for own in [".local/state/siprot", ".config/siprot"] {
        assert!(
            !home.join(own).exists(),
            "written in the home directory: {own}"
        );
    }
}

/// No item of `service` in the tests' own keyring session: the script used another one.
#[track_caller]
fn assert_not_in_the_tests_keyring(service: &str) {
    let output = Command::new("secret-tool")
        .args(["search", "--all", "service", service])
        .output()
        .expect("secret-tool");
    let found = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(!found.contains(service), "{found}");
}

#[test]
fn the_try_it_script_and_its_library_parse() {
    for path in ["scripts/try-it.sh", "scripts/lib/demo.sh"] {
        let status = Command::new("bash")
            .arg("-n")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .status()
            .unwrap();
        assert!(status.success(), "{path}");
    }
}

#[test]
fn try_it_check_runs_every_banner_command_in_a_private_keyring_and_leaves_nothing() {
    let home = tempfile::tempdir().unwrap();
    let output = run(&["--check"], "", "/bin/bash", home.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("try-it: ok"), "{stdout}");
    assert!(
        stdout.contains("starting a private D-Bus session with a throw-away gnome-keyring"),
        "{stdout}"
    );
    let work = work_dir(&stdout);
    // The banner's commands ran, and did what they say.
    for command in [
        "$ siprot doctor",
        "$ siprot rotate --provider telepath conn_abc123xyz",
        "$ siprot rotate --inventory --dry-run",
        "$ siprot status",
        "$ siprot recover --dry-run",
    ] {
        assert!(stdout.contains(command), "{command} not run: {stdout}");
    }
    assert!(
        stdout.contains("ok    keyring: Secret Service answers"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("state directory: {}/state/siprot", work.display())),
        "the state directory is not the session's own: {stdout}"
    );
    assert!(stdout.contains("hook ok: exit 0"), "{stdout}");
    assert!(
        stdout.contains("3 credential(s): 0 overdue, 0 need recovery"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped (rotated recently)        3"),
        "{stdout}"
    );
    assert_not_in_the_tests_keyring(&keyring_service(&stdout));
    assert_torn_down(home.path(), &work);
}

#[test]
fn try_it_opens_the_users_shell_with_the_banner_where_the_commands_work() {
    for shell in ["/bin/bash", "/bin/sh"] {
        let home = tempfile::tempdir().unwrap();
        let output = run(
            &[],
            "siprot rotate --provider vobiz aabbccdd-1234-5678-90ab-cdef12345678 --json\n\
             echo \"config=$XDG_CONFIG_HOME\"\nexit\n",
            shell,
            home.path(),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{shell}: {stdout}\n{stderr}");
        let work = work_dir(&stdout);
        // The banner: the commands to try, and the warning that the keyring is throw-away.
        assert!(stdout.contains("  siprot doctor\n"), "{stdout}");
        assert!(stdout.contains("  siprot rotate --inventory\n"), "{stdout}");
        assert!(
            stdout.contains("The keyring is a throw-away one"),
            "{stdout}"
        );
        // The command typed in the shell reached the fake Vobiz and the private keyring.
        assert!(
            stdout.contains(r#""status":"rotated""#)
                && stdout.contains(r#""username":"acme_sip_user_01""#),
            "{shell}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains(&format!("config={}/config", work.display())),
            "{shell}: {stdout}"
        );
        assert!(
            stdout.contains("==> stopping the fake providers"),
            "{stdout}"
        );
        assert_not_in_the_tests_keyring(&keyring_service(&stdout));
        assert_torn_down(home.path(), &work);
    }
}
