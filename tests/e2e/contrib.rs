//! `contrib/`: the systemd user units the guide shows for scheduled rotation are real
//! files, valid for `systemd-analyze verify`, and the guide shows them as they are.

use std::path::PathBuf;
use std::process::Command;

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
