//! `siprot doctor`: one line per check, exit 0 when nothing failed, 8 when the keyring
//! cannot be used (no bus, locked collection); leftovers are warnings; nothing changes.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::keyring::PrivateKeyring;
use crate::support::{Run, Target, TestEnv};

fn env_on_private_keyring() -> (TestEnv, PrivateKeyring) {
    let mut env = TestEnv::start();
    let keyring = PrivateKeyring::start();
    env.set_env("DBUS_SESSION_BUS_ADDRESS", &keyring.bus_address);
    (env, keyring)
}

/// Every file under `dir` with its contents (the state directory's whole state).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in listing {
            let path = item.unwrap().path();
            if path.is_dir() {
                files.insert(format!("{}/", path.display()), Vec::new());
                todo.push(path);
            } else {
                files.insert(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The line of check `name` in doctor's output.
fn line<'a>(run: &'a Run, name: &str) -> &'a str {
    run.stdout
        .lines()
        .find(|l| {
            l.split_once("  ")
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(&format!("{name}:")))
        })
        .unwrap_or_else(|| panic!("no '{name}' check in:\n{}", run.stdout))
}

fn slots(env: &TestEnv) -> Vec<Option<String>> {
    Target::ALL
        .iter()
        .flat_map(|t| ["", "#pending", "#previous"].map(|s| env.lookup(&t.slot(env, s))))
        .collect()
}

#[test]
fn doctor_on_a_healthy_keyring_passes_every_check_and_changes_nothing() {
    let (env, _keyring) = env_on_private_keyring();
    for target in Target::ALL {
        target.seed(&env);
        target.rotate(&env, &[]).assert_code(0);
    }
    let keyring_before = slots(&env);
    let state_before = snapshot(env.state.path());

    let run = env.run(&["doctor"], None);
    run.assert_code(0);
    for l in run.stdout.lines() {
        assert!(l.starts_with("ok    "), "not ok: {l}\n{}", run.stdout);
    }
    for check in [
        "session bus",
        "keyring",
        "pending entries",
        "state directory",
        "lock directory",
        "recovery files",
        "provider telepath",
        "provider exotel",
        "provider vobiz",
    ] {
        line(&run, check);
    }
    assert!(line(&run, "keyring").contains("unlocked"), "{}", run.stdout);
    assert!(
        line(&run, "provider vobiz").contains("VOBIZ_AUTH_ID"),
        "{}",
        run.stdout
    );

    let json = env.run(&["doctor", "--json"], None);
    json.assert_code(0);
    let value = json.json();
    assert_eq!(value["ok"], true);
    let checks = value["checks"].as_array().unwrap();
    assert!(checks.len() >= 9);
    assert!(
        checks
            .iter()
            .all(|c| c["status"] == "ok" && c["name"].is_string())
    );

    assert_eq!(slots(&env), keyring_before, "doctor changed the keyring");
    assert_eq!(
        snapshot(env.state.path()),
        state_before,
        "doctor changed the state directory"
    );
}

#[test]
fn doctor_with_no_session_bus_fails_naming_the_bus_and_exits_8() {
    let env = TestEnv::without_keyring();
    let run = env.run(&["doctor"], None);
    run.assert_code(8);
    let bus = line(&run, "session bus");
    assert!(
        bus.starts_with("fail  session bus: no D-Bus session bus"),
        "{bus}"
    );
    assert!(bus.contains("dbus-run-session"), "{bus}");
    // Nothing was created: not even the state directory.
    assert!(
        !env.state_root().exists(),
        "doctor created the state directory"
    );
    // Providers are still reported.
    assert!(
        line(&run, "provider telepath").starts_with("ok "),
        "{}",
        run.stdout
    );

    let json = env.run(&["doctor", "--json"], None);
    json.assert_code(8);
    let value = json.json();
    assert_eq!(value["ok"], false);
    assert!(
        value["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "session bus"
                && c["status"] == "fail"
                && c["next"].as_str().is_some_and(|n| !n.is_empty()))
    );

    // The keyring error of any command names the cause and points to doctor.
    let run = env.run(&["secret", "get", "--provider", "vobiz", "cred-x"], None);
    run.assert_code(8)
        .assert_one_line_error("no D-Bus session bus");
    assert!(run.stderr.contains("siprot doctor"), "{}", run.stderr);
}

#[test]
fn doctor_on_a_locked_keyring_fails_with_the_unlock_hint() {
    let (env, mut keyring) = env_on_private_keyring();
    for target in Target::ALL {
        target.seed(&env);
    }
    keyring.lock();
    let run = env.run(&["doctor"], None);
    run.assert_code(8);
    let keyring_line = line(&run, "keyring");
    assert!(keyring_line.starts_with("fail  keyring:"), "{keyring_line}");
    assert!(keyring_line.contains("is locked"), "{keyring_line}");
    assert!(
        keyring_line.contains("gnome-keyring-daemon --replace --unlock"),
        "{keyring_line}"
    );
    assert!(
        line(&run, "session bus").starts_with("ok "),
        "{}",
        run.stdout
    );

    // A rotation's error names the lock and points to doctor; nothing is sent.
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(8).assert_one_line_error("locked");
    assert!(run.stderr.contains("siprot doctor"), "{}", run.stderr);
    assert!(env.fake.requests().is_empty());

    // The hint works: after it, doctor passes and so does the rotation.
    keyring.unlock_by_replacing();
    let run = env.run(&["doctor"], None);
    run.assert_code(0);
    assert!(line(&run, "keyring").contains("unlocked"), "{}", run.stdout);
    Target::VOBIZ.rotate(&env, &[]).assert_code(0);
}

#[test]
fn leftovers_are_warnings_that_say_run_siprot_recover() {
    let (env, _keyring) = env_on_private_keyring();
    let target = Target::VOBIZ;
    target.seed(&env);
    target.rotate(&env, &[]).assert_code(0);
    let pending = target.slot(&env, "#pending");
    env.remember_secret("Pending-Doctor-Pass-1");
    env.store(&pending, "Pending-Doctor-Pass-1");
    let file = env.recovery_dir().join("telepath_conn_doc-1.json");
    std::fs::write(&file, b"{}").unwrap();
    let state_before = snapshot(env.state.path());

    let run = env.run(&["doctor"], None);
    run.assert_code(0);
    let pending_line = line(&run, "pending entries");
    assert!(
        pending_line.starts_with("warn  pending entries: 1 left over"),
        "{pending_line}"
    );
    assert!(pending_line.contains(&pending), "{pending_line}");
    assert!(
        pending_line.ends_with("run siprot recover"),
        "{pending_line}"
    );
    let files = line(&run, "recovery files");
    assert!(
        files.starts_with("warn  recovery files: 1 left over"),
        "{files}"
    );
    assert!(files.contains("telepath_conn_doc-1.json"), "{files}");
    assert!(files.ends_with("run siprot recover"), "{files}");

    assert_eq!(
        env.lookup(&pending).as_deref(),
        Some("Pending-Doctor-Pass-1")
    );
    assert_eq!(
        snapshot(env.state.path()),
        state_before,
        "doctor changed the state directory"
    );
}

#[test]
fn a_provider_without_settings_is_a_warning_and_a_bad_base_url_a_failure() {
    let mut env = TestEnv::without_keyring();
    env.remove_env("VOBIZ_AUTH_ID");
    env.remove_env("VOBIZ_AUTH_TOKEN");
    env.set_env("SIPROT_TELEPATH_BASE_URL", "http://example.com/api");
    let run = env.run(&["doctor"], None);
    let vobiz = line(&run, "provider vobiz");
    assert!(
        vobiz.starts_with("warn  provider vobiz: not set up"),
        "{vobiz}"
    );
    let telepath = line(&run, "provider telepath");
    assert!(
        telepath.starts_with("fail  provider telepath:"),
        "{telepath}"
    );
    assert!(telepath.contains("SIPROT_TELEPATH_BASE_URL"), "{telepath}");
}

#[test]
fn doctor_on_a_bus_without_a_secret_service_names_it() {
    let (env, mut keyring) = env_on_private_keyring();
    Target::VOBIZ.seed(&env);
    keyring.kill();
    let run = env.run(&["doctor", "--keyring-timeout", "5"], None);
    run.assert_code(8);
    assert!(
        line(&run, "session bus").starts_with("ok "),
        "{}",
        run.stdout
    );
    let service = line(&run, "keyring");
    assert!(
        service.starts_with("fail  keyring: no Secret Service on the session bus"),
        "{service}"
    );
    assert!(
        service.contains("gnome-keyring-daemon --start"),
        "{service}"
    );

    let run = Target::VOBIZ.rotate(&env, &["--keyring-timeout", "5"]);
    run.assert_code(8)
        .assert_one_line_error("no Secret Service on the D-Bus session bus");
    assert!(run.stderr.contains("siprot doctor"), "{}", run.stderr);
    assert!(env.fake.requests().is_empty());
}
