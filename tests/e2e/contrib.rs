//! `contrib/`: the systemd user units the guide shows for scheduled rotation are real
//! files, valid for `systemd-analyze verify`, the guide shows them as they are, and the
//! service's step that unlocks the keyring from a password file works.

use std::path::PathBuf;
use std::process::Command;

use crate::support::TestEnv;
use crate::support::keyring::PrivateKeyring;
use crate::support::targets::Target;

const UNITS: &[&str] = &["siprot-rotate.service", "siprot-rotate.timer"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(repo().join("contrib/systemd").join(name))
        .unwrap_or_else(|e| panic!("contrib/systemd/{name}: {e}"))
}

#[test]
fn the_systemd_user_units_pass_systemd_analyze_verify() {
    // As installed: a home whose ~/.cargo/bin/siprot is this build's binary (verify checks
    // that ExecStart's command is executable), the units in a directory of their own.
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_siprot"), bin.join("siprot")).unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let units = tempfile::tempdir().unwrap();
    let mut args = vec!["--user".to_owned(), "verify".to_owned()];
    for name in UNITS {
        let path = units.path().join(name);
        std::fs::write(&path, unit(name)).unwrap();
        args.push(path.display().to_string());
    }
    let output = Command::new("systemd-analyze")
        .args(&args)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("systemd-analyze (package systemd; scripts/install-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // A bad value is only a warning for verify: there must be none.
    assert!(stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn a_missing_siprot_binary_fails_the_verification() {
    // The check above can fail: without ~/.cargo/bin/siprot the service is refused.
    let home = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let units = tempfile::tempdir().unwrap();
    let path = units.path().join(UNITS[0]);
    std::fs::write(&path, unit(UNITS[0])).unwrap();
    let output = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&path)
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("systemd-analyze");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(".cargo/bin/siprot is not executable"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_guide_shows_the_systemd_units_as_they_are_in_contrib() {
    let guide = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for name in UNITS {
        let text = unit(name);
        assert!(
            guide.contains(&format!("```ini\n{text}```")),
            "README.md does not show contrib/systemd/{name} as it is"
        );
    }
}

/// The service's ExecStartPre as the shell runs it: systemd's `%h` is the home directory
/// and `$$` a literal `$`.
fn unlock_command(home: &std::path::Path) -> String {
    let service = unit("siprot-rotate.service");
    let line = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre=/bin/sh -c '"))
        .expect("an ExecStartPre=/bin/sh -c '...' line");
    line.strip_suffix('\'')
        .expect("the command ends the line")
        .replace("%h", &home.display().to_string())
        .replace("$$", "$")
}

/// Runs the service's unlock step against `keyring`, as the user manager would (no
/// GNOME_KEYRING_CONTROL: a `--replace` must never reach the tests' own keyring).
fn run_unlock_step(keyring: &PrivateKeyring, home: &std::path::Path) {
    let (data, runtime) = keyring.dirs();
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(unlock_command(home))
        .env("HOME", home)
        .env("DBUS_SESSION_BUS_ADDRESS", &keyring.bus_address)
        .env("XDG_DATA_HOME", data)
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("GNOME_KEYRING_CONTROL")
        .status()
        .expect("sh");
    assert!(status.success(), "the unlock step failed: {status}");
}

#[test]
fn the_services_unlock_step_unlocks_a_locked_keyring_from_the_password_file() {
    let mut env = TestEnv::start();
    let keyring = PrivateKeyring::start();
    env.set_env("DBUS_SESSION_BUS_ADDRESS", &keyring.bus_address);
    keyring.lock();
    let keyring_line = |run: &crate::support::Run| {
        run.stdout
            .lines()
            .find(|l| l.contains(" keyring: "))
            .unwrap_or_else(|| panic!("no keyring line: {}", run.stdout))
            .to_owned()
    };
    let run = env.run(&["doctor"], None);
    run.assert_code(8);
    assert!(keyring_line(&run).contains("is locked"), "{}", run.stdout);

    // Without the password file the step does nothing (a desktop login unlocks it).
    let home = tempfile::tempdir().unwrap();
    run_unlock_step(&keyring, home.path());
    let run = env.run(&["doctor"], None);
    run.assert_code(8);

    // With it (the keyring's password, readable only by its owner), the keyring is open.
    let config = home.path().join(".config/siprot");
    std::fs::create_dir_all(&config).unwrap();
    let password = config.join("keyring-password");
    std::fs::write(&password, "throwaway").unwrap();
    std::fs::set_permissions(
        &password,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    run_unlock_step(&keyring, home.path());
    let run = env.run(&["doctor"], None);
    assert!(
        keyring_line(&run).contains("unlocked"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    Target::VOBIZ.seed(&env);
    Target::VOBIZ.rotate(&env, &[]).assert_code(0);
}
