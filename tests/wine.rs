//! The Windows end-to-end subset: a Windows build of siprot (`siprot.exe`, built for
//! `x86_64-pc-windows-gnu` by `scripts/windows.sh`) run under Wine against the fake
//! providers, which run here natively on 127.0.0.1. Its keyring is Wine's Credential
//! Manager (in the Wine prefix), read back through `siprot.exe secret get`; its state
//! directory is the test's, by its `Z:` name. Every run is leak-checked as in the Linux
//! suite ([`TestEnv::run`]).
//!
//! A plain `cargo test` does not build this target (`test = false` in `Cargo.toml`: it
//! needs the Windows build and Wine); `scripts/windows.sh` (run by `.ci/run`) runs it with
//! `cargo test --test wine`, and each test fails when the build or Wine is missing, so CI
//! never skips them. Wine runs on a Unix
//! host: on Windows this target is empty.

#![cfg(unix)]

#[path = "support/mod.rs"]
mod support;

use support::{Fault, Run, Target, TestEnv};

/// A Wine world holding `targets`' credentials at the fakes (nothing in the keyring).
fn world(targets: &[Target]) -> TestEnv {
    let env = TestEnv::under_wine();
    for target in targets {
        (target.create)(target, &env);
    }
    env
}

/// `secret get` of `target`'s slot (`""`, `"--previous"`, `"--pending"`).
fn secret(env: &TestEnv, target: Target, slot: &str) -> Run {
    let mut args = vec!["secret", "get", "--provider", target.name, target.id];
    if let Some((flag, _, value)) = target.part() {
        args.extend([flag, value]);
    }
    if !slot.is_empty() {
        args.push(slot);
    }
    env.run(&args, None)
}

/// The password in `target`'s slot, read back from the Credential Manager.
#[track_caller]
fn stored(env: &TestEnv, target: Target, slot: &str) -> String {
    let run = secret(env, target, slot);
    run.assert_code(0);
    run.stdout
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("no newline after the password: {:?}", run.stdout))
        .to_owned()
}

/// An inventory of `targets` in the test's directory, by its Windows name.
fn inventory(env: &TestEnv, targets: &[Target]) -> String {
    let path = env.state.path().join("siprot.toml");
    let mut text = String::new();
    for target in targets {
        text.push_str(&format!(
            "[[credential]]\nprovider = \"{}\"\nid = \"{}\"\n",
            target.name, target.id
        ));
        text.push_str(&target.id_toml());
    }
    std::fs::write(&path, text).unwrap();
    env.host_path(&path)
}

#[test]
fn rotations_at_every_provider_land_in_the_credential_manager() {
    let env = world(&Target::ALL);
    for target in Target::ALL {
        let first = target.rotate(&env, &["--json"]);
        first.assert_code(0);
        assert_eq!(first.json()["status"], "rotated", "{}", target.name);
        let live = target.live(&env);
        assert_ne!(live, target.initial, "{}", target.name);
        assert_eq!(stored(&env, target, ""), live, "{}", target.name);

        target.rotate(&env, &[]).assert_code(0);
        let newer = target.live(&env);
        assert_ne!(newer, live, "{}", target.name);
        assert_eq!(stored(&env, target, ""), newer, "{}", target.name);
        assert_eq!(stored(&env, target, "--previous"), live, "{}", target.name);
        let none = secret(&env, target, "--pending");
        assert_ne!(none.code, 0, "{}: a #pending entry is left", target.name);
        assert!(none.stdout.is_empty(), "{}", none.stdout);
    }
    // The audit log is in the state directory siprot was given (by its Z: name).
    let rotated = env
        .audit_lines()
        .iter()
        .filter(|l| l["outcome"] == "rotated")
        .count();
    assert_eq!(rotated, 2 * Target::ALL.len(), "{:?}", env.audit_lines());

    let path = inventory(&env, &Target::ALL);
    let status = env.run(&["status", "--inventory", &path, "--json"], None);
    status.assert_code(0);
    let json = status.json();
    let rows = json["credentials"].as_array().unwrap();
    assert_eq!(rows.len(), Target::ALL.len(), "{json}");
    for row in rows {
        assert_eq!(row["last_outcome"], "rotated", "{row}");
        assert_eq!(row["pending"], false, "{row}: the keyring was listed");
        assert_eq!(row["overdue"], false, "{row}");
    }
}

#[test]
fn a_rotation_whose_answer_was_lost_is_listed_and_finished_by_recover() {
    let env = world(&Target::CLIENT_SET);
    for target in Target::CLIENT_SET {
        target.rotate(&env, &[]).assert_code(0);
    }
    let before: Vec<String> = Target::CLIENT_SET
        .iter()
        .map(|t| stored(&env, *t, ""))
        .collect();
    for target in Target::CLIENT_SET {
        // The provider applies the new password, then the connection is reset.
        env.fake.push_fault(target.provider, Fault::CommitThenDrop);
        target
            .rotate(&env, &["--retries", "0"])
            .assert_code(9)
            .assert_one_line_error("#pending");
        let live = target.live(&env);
        assert_eq!(stored(&env, target, "--pending"), live, "{}", target.name);
    }

    let path = inventory(&env, &Target::CLIENT_SET);
    let status = env.run(&["status", "--inventory", &path, "--json"], None);
    status.assert_code(0);
    for row in status.json()["credentials"].as_array().unwrap() {
        assert_eq!(row["pending"], true, "{row}");
        assert_eq!(row["next_step"], "siprot recover", "{row}");
    }

    let dry = env.run(&["recover", "--dry-run", "--json"], None);
    dry.assert_code(9);
    assert_eq!(
        dry.json()["remaining"],
        Target::CLIENT_SET.len(),
        "{}",
        dry.stdout
    );
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), Target::CLIENT_SET.len(), "{json}");
    assert!(items.iter().all(|i| i["outcome"] == "finished"), "{json}");
    for (target, before) in Target::CLIENT_SET.iter().zip(&before) {
        let live = target.live(&env);
        assert_eq!(stored(&env, *target, ""), live, "{}", target.name);
        assert_eq!(
            &stored(&env, *target, "--previous"),
            before,
            "{}",
            target.name
        );
        assert_ne!(
            secret(&env, *target, "--pending").code,
            0,
            "{}",
            target.name
        );
    }
    env.run(&["recover"], None).assert_code(0);
}

#[test]
fn a_rotation_killed_after_the_provider_answered_is_finished_by_recover() {
    let target = Target::VOBIZ;
    let env = world(&[target]);
    // Killed at the riskiest point: the provider holds the new password, only #pending has it.
    let paused = env.spawn_paused(&target.rotate_args(&[]), "response-received");
    let killed = env.kill(paused);
    assert_ne!(killed.code, 0);
    let live = target.live(&env);
    assert_ne!(live, target.initial);
    assert_eq!(stored(&env, target, "--pending"), live);

    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(
        run.json()["items"][0]["outcome"],
        "finished",
        "{}",
        run.stdout
    );
    assert_eq!(stored(&env, target, ""), target.live(&env));
    assert_ne!(secret(&env, target, "--pending").code, 0);
}

#[test]
fn check_password_and_generate_run_under_windows() {
    let env = TestEnv::under_wine();
    env.remember_secret("abcdefg");
    let weak = env.run(
        &["check-password", "--provider", "exotel", "--json"],
        Some(b"abcdefg\r\n"),
    );
    weak.assert_code(3);
    assert_eq!(weak.json()["ok"], false);
    env.remember_secret("Str0ng-Exotel");
    env.run(
        &["check-password", "--provider", "exotel"],
        Some(b"Str0ng-Exotel\r\n"),
    )
    .assert_code(0);

    for provider in ["exotel", "vobiz"] {
        let run = env.run(&["generate", "--provider", provider], None);
        run.assert_code(0);
        let password = run.stdout.trim_end().to_owned();
        assert!(password.len() >= 12, "{provider}: {password:?}");
        env.remember_secret(&password);
        let check = env.run(
            &["check-password", "--provider", provider],
            Some(format!("{password}\n").as_bytes()),
        );
        check.assert_code(0);
    }
    let a = env.run(&["generate", "--provider", "vobiz"], None);
    let b = env.run(&["generate", "--provider", "vobiz"], None);
    assert_ne!(a.stdout, b.stdout, "random passwords (ProcessPrng)");
}

#[test]
fn exec_hooks_are_refused_on_windows_before_anything_is_sent() {
    let target = Target::EXOTEL;
    let env = world(&[target]);
    let run = target.rotate(&env, &["--exec", "echo done"]);
    run.assert_code(2)
        .assert_one_line_error("--exec (the post-rotation hook) is only supported on Unix");
    // An inventory's `exec` too, and `siprot exec`.
    let path = env.state.path().join("hooks.toml");
    std::fs::write(
        &path,
        format!(
            "exec = \"echo done\"\n[[credential]]\nprovider = \"exotel\"\nid = \"{}\"\n\
             device = \"{}\"\n",
            target.id,
            target.device.unwrap()
        ),
    )
    .unwrap();
    env.run(&["rotate", "--inventory", &env.host_path(&path)], None)
        .assert_code(2)
        .assert_one_line_error("only supported on Unix");
    let mut exec = vec!["exec", "--provider", target.name, target.id];
    exec.extend(["--device", target.device.unwrap(), "--exec", "echo done"]);
    env.run(&exec, None)
        .assert_code(2)
        .assert_one_line_error("only supported on Unix");
    assert!(env.fake.requests().is_empty());
    assert_eq!(target.live(&env), target.initial);
}

#[test]
fn without_xdg_state_home_the_state_is_in_local_app_data() {
    let target = Target::TELEPATH;
    let mut env = world(&[target]);
    env.remove_env("XDG_STATE_HOME");
    target.rotate(&env, &[]).assert_code(0);
    assert!(env.all_audit_lines().is_empty(), "not in XDG_STATE_HOME");
    let users = env.wine_prefix().unwrap().join("drive_c/users");
    let logs: Vec<_> = std::fs::read_dir(&users)
        .unwrap()
        .flatten()
        .map(|user| user.path().join("AppData/Local/siprot/audit.jsonl"))
        .filter(|log| log.is_file())
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(&env.service) && l.contains("\"rotated\"")),
        "{text}"
    );
    assert!(
        !text.contains(&target.live(&env)),
        "a secret leaked to the audit log"
    );
}

#[test]
fn ctrl_c_during_a_slow_telepath_post_stores_the_answer_and_exits_130() {
    let target = Target::TELEPATH;
    let env = world(&[target]);
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(std::time::Duration::from_secs(2)),
    );
    let running = env.spawn_running(&target.rotate_args(&["--json"]));
    env.wait_for_requests(1);
    // Wine turns SIGINT into the console's Ctrl+C event (CTRL_C_EVENT).
    env.send_signal(&running, "INT");
    let run = env.wait_exit(running);
    run.assert_code(130);
    let json = run.json();
    assert_eq!(json["status"], "rotated", "{json}");
    assert_eq!(json["interrupted_by"], "SIGINT", "{json}");
    assert_eq!(stored(&env, target, ""), target.live(&env));
}

#[test]
fn doctor_lists_the_credential_manager_and_claims_no_unix_modes() {
    let target = Target::VOBIZ;
    let env = world(&[target]);
    env.fake.push_fault(target.provider, Fault::CommitThenDrop);
    target.rotate(&env, &["--retries", "0"]).assert_code(9);
    let run = env.run(&["doctor"], None);
    let pending = format!("{}#pending", target.entry(&env));
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("pending entries") && l.contains(&pending)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("a real directory (its access list is not checked)"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("private"), "{}", run.stdout);
}

#[test]
fn a_fleet_from_an_inventory_is_rotated_into_the_credential_manager() {
    let env = world(&Target::ALL);
    let path = inventory(&env, &Target::ALL);
    let run = env.run(&["rotate", "--inventory", &path, "--yes", "--json"], None);
    run.assert_code(0);
    for target in Target::ALL {
        let live = target.live(&env);
        assert_ne!(live, target.initial, "{}", target.name);
        assert_eq!(stored(&env, target, ""), live, "{}", target.name);
    }
}
