//! Faults of the Secret Service itself, each on a private keyring of the test's own.

use std::time::{Duration, Instant};

use crate::support::keyring::PrivateKeyring;
use crate::support::{FakeProvider, Fault, Target, TestEnv};

const TRUNK: &str = "conn_fault1";

/// A test environment whose siprot runs (and `lookup`s) use a Secret Service of their own.
fn env_on_private_keyring() -> (TestEnv, PrivateKeyring) {
    let mut env = TestEnv::start();
    let keyring = PrivateKeyring::start();
    env.set_env("DBUS_SESSION_BUS_ADDRESS", &keyring.bus_address);
    (env, keyring)
}

/// Rotates while the provider holds its answer, and does `to_keyring` once the request
/// has arrived: the provider applies the change, the keyring fails when siprot stores it.
fn rotate_while_the_keyring_fails(
    env: &TestEnv,
    keyring: &mut PrivateKeyring,
    args: &[&str],
    provider: FakeProvider,
    to_keyring: impl FnOnce(&mut PrivateKeyring),
) -> crate::support::Run {
    let sent_before = env.fake.requests().len();
    env.fake
        .push_fault(provider, Fault::Delay(Duration::from_millis(1500)));
    let mut args = args.to_vec();
    args.extend(["--keyring-timeout", "5"]);
    let child = env.spawn(&args, None);
    env.wait_for_requests(sent_before + 1);
    to_keyring(keyring);
    env.finish(child, &args)
}

fn rotate_while_the_keyring_dies(
    env: &TestEnv,
    keyring: &mut PrivateKeyring,
    provider: FakeProvider,
    name: &str,
    id: &str,
) -> crate::support::Run {
    let args = ["rotate", "--provider", name, id];
    rotate_while_the_keyring_fails(env, keyring, &args, provider, PrivateKeyring::kill)
}

#[test]
fn keyring_dying_after_the_request_puts_the_password_in_a_recovery_file() {
    let (env, mut keyring) = env_on_private_keyring();
    env.fake
        .add_telepath_trunk(TRUNK, "agent-7", "Old-Fault-Pass-1");
    let run = rotate_while_the_keyring_dies(
        &env,
        &mut keyring,
        FakeProvider::Telepath,
        "telepath",
        TRUNK,
    );
    run.assert_code(9).assert_one_line_error("recovery");

    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_ne!(live, "Old-Fault-Pass-1", "the provider rotated");
    let dir = env.state_root().join("recovery");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(
        run.stderr.contains(&files[0].display().to_string()),
        "{}",
        run.stderr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(saved["password"], live.as_str());
    assert_eq!(saved["entry"], "telepath/conn_fault1");
    assert_eq!(saved["service"], env.service.as_str());
    assert_eq!(env.audit_lines()[0]["outcome"], "unconfirmed");

    // Once the keyring is back, `recover` stores the file's password and removes the file.
    keyring.restart();
    let recovered = env.run(&["recover", "--json"], None);
    recovered.assert_code(0);
    let json = recovered.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["items"][0]["type"], "recovery_file");
    assert_eq!(json["items"][0]["outcome"], "stored");
    assert_eq!(
        env.lookup("telepath/conn_fault1").as_deref(),
        Some(live.as_str())
    );
    assert!(
        !files[0].exists(),
        "the recovery file is removed once stored"
    );
    env.run(&["recover"], None).assert_code(0);
}

#[test]
fn a_keyring_that_never_answers_is_exit_8_within_the_timeout() {
    let (env, keyring) = env_on_private_keyring();
    env.fake
        .add_vobiz_credential("cred-frozen", "u", "Old-Frozen-Pass-1");
    keyring.freeze();
    let started = Instant::now();
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "vobiz",
            "cred-frozen",
            "--keyring-timeout",
            "1",
        ],
        None,
    );
    let took = started.elapsed();
    keyring.thaw();
    run.assert_code(8).assert_one_line_error("did not answer");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(env.fake.requests().is_empty());
    assert_eq!(
        env.fake.vobiz_credential("cred-frozen").unwrap().password,
        "Old-Frozen-Pass-1"
    );
}

#[test]
fn keyring_dying_mid_rotation_keeps_the_client_set_password_pending() {
    let (env, mut keyring) = env_on_private_keyring();
    env.fake
        .add_vobiz_credential("cred-dying", "u", "Old-Dying-Pass-1");
    let run = rotate_while_the_keyring_dies(
        &env,
        &mut keyring,
        FakeProvider::Vobiz,
        "vobiz",
        "cred-dying",
    );
    run.assert_code(9).assert_one_line_error("#pending");
    assert_ne!(
        env.fake.vobiz_credential("cred-dying").unwrap().password,
        "Old-Dying-Pass-1",
        "the provider took the new password"
    );
    let live = env.fake.vobiz_credential("cred-dying").unwrap().password;
    let entry = format!("vobiz/{}/cred-dying", env.fake.config().vobiz_auth_id);

    // Once the keyring is back, the same command finishes the rotation with the same password.
    keyring.restart();
    assert_eq!(
        env.lookup(&format!("{entry}#pending")).as_deref(),
        Some(live.as_str())
    );
    let rerun = env.run(
        &["rotate", "--provider", "vobiz", "cred-dying", "--json"],
        None,
    );
    rerun.assert_code(0);
    assert_eq!(rerun.json()["status"], "resumed");
    assert_eq!(
        env.fake.vobiz_credential("cred-dying").unwrap().password,
        live
    );
    assert_eq!(env.lookup(&entry).as_deref(), Some(live.as_str()));
    assert_eq!(env.lookup(&format!("{entry}#pending")), None);
}

#[test]
fn a_locked_collection_is_exit_8_and_nothing_is_sent() {
    let (env, mut keyring) = env_on_private_keyring();
    for target in Target::ALL {
        target.seed(&env);
    }
    env.fake
        .add_vobiz_credential("cred-never-stored", "u", "Fresh-Vobiz-Pass-1");
    keyring.lock();
    for target in Target::ALL {
        target
            .rotate(&env, &[])
            .assert_code(8)
            .assert_one_line_error("keyring unavailable");
    }
    // No entry yet: reading finds nothing, but staging the new password is refused.
    env.run(
        &["rotate", "--provider", "vobiz", "cred-never-stored"],
        None,
    )
    .assert_code(8)
    .assert_one_line_error("nothing was sent");
    assert!(env.fake.requests().is_empty());

    keyring.kill();
    keyring.restart();
    for target in Target::ALL {
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);
    }
}

#[test]
fn a_collection_locked_mid_rotation_loses_nothing_and_recover_finishes() {
    let (env, mut keyring) = env_on_private_keyring();
    for target in Target::ALL {
        target.seed(&env);
    }
    for target in Target::ALL {
        let run = rotate_while_the_keyring_fails(
            &env,
            &mut keyring,
            &target.rotate_args(&[]),
            target.provider,
            |k| k.lock(),
        );
        run.assert_code(9);
        assert_ne!(target.live(&env), target.initial, "{} rotated", target.name);
        keyring.kill();
        keyring.restart();
    }
    let recovered = env.run(&["recover", "--json"], None);
    recovered.assert_code(0);
    let outcomes: Vec<String> = recovered.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i["type"].as_str().unwrap(),
                i["outcome"].as_str().unwrap()
            )
        })
        .collect();
    // Client-set providers leave a #pending (finished first), server-generated ones a
    // recovery file.
    let client_set = |t: &&Target| {
        siprot::providers::ProviderKind::from_name(t.name)
            .expect("every target is a registered provider")
            .origin()
            == siprot::providers::PasswordOrigin::ClientSupplied
    };
    let pending = Target::ALL.iter().filter(client_set).count();
    let mut expected = vec!["pending finished"; pending];
    expected.resize(Target::ALL.len(), "recovery_file stored");
    assert_eq!(outcomes, expected);
    for target in Target::ALL {
        target.assert_consistent(&env);
    }
}
