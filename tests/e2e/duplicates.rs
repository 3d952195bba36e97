//! A second keyring item for one entry, as python-keyring's `set_password` makes (it adds
//! its own `application` attribute): nothing is sent while it is there, the error names
//! the items and the `secret-tool clear` command that removes only the extra one, and a
//! duplicate that appears after the provider accepted is resolved when it holds the same
//! password. Items siprot creates carry a readable label.

use std::process::{Command, Stdio};

use siprot::providers::{PasswordOrigin, ProviderKind};

use crate::support::{Run, Target, TestEnv};

const PYTHON_KEYRING: &str = "Python-keyring";

/// Stores a second item for `entry` as python-keyring would: the same `service` and
/// `username`, plus an `application` attribute.
fn store_foreign(env: &TestEnv, entry: &str, secret: &str, application: &str) {
    let label = format!("Password for '{entry}' on '{}'", env.service);
    env.store_item(entry, secret, &label, &[("application", application)]);
}

/// `secret-tool search --all service <service>` (secrets included: test-only output).
fn search_all(env: &TestEnv, entry: Option<&str>) -> String {
    let mut cmd = Command::new("secret-tool");
    cmd.args(["search", "--all", "service", &env.service]);
    if let Some(entry) = entry {
        cmd.args(["username", entry]);
    }
    let output = cmd.stdin(Stdio::null()).output().expect("secret-tool");
    // secret-tool prints the item paths on stderr and the rest on stdout.
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn items_of(env: &TestEnv, entry: &str) -> usize {
    search_all(env, Some(entry))
        .lines()
        .filter(|l| l.starts_with("label = "))
        .count()
}

/// The removal command the error line names, run as the operator would (through a shell).
fn run_removal_command(run: &Run) {
    let start = run
        .stderr
        .find("`secret-tool clear ")
        .unwrap_or_else(|| panic!("no removal command in: {}", run.stderr))
        + 1;
    let end = start + run.stderr[start..].find('`').expect("closing backtick");
    let command = &run.stderr[start..end];
    let status = Command::new("sh")
        .args(["-c", command])
        .status()
        .expect("sh");
    assert!(status.success(), "{command} failed");
}

#[track_caller]
fn assert_names_the_duplicates(run: &Run, env: &TestEnv, entry: &str, application: &str) {
    run.assert_one_line_error(&format!(
        "keyring service '{}' has 2 items for entry '{entry}'",
        env.service
    ));
    for fragment in [
        "'siprot test' (attributes service and username only, as siprot writes them)",
        &format!("'Password for '{entry}' on '{}''", env.service),
        &format!("(also application={application})"),
        &format!(
            "`secret-tool clear service {} username {entry} application ",
            env.service
        ),
    ] {
        assert!(
            run.stderr.contains(fragment),
            "stderr lacks {fragment:?}: {}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("/org/freedesktop"),
        "a D-Bus object path in: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("unlock"),
        "wrong advice: {}",
        run.stderr
    );
}

fn origin(target: &Target) -> PasswordOrigin {
    ProviderKind::from_name(target.name)
        .expect("every target is a registered provider")
        .origin()
}

#[test]
fn a_foreign_duplicate_of_any_slot_is_refused_before_anything_is_sent() {
    for target in Target::ALL {
        // A provider that generates the password never stages one in #pending.
        let slots: &[&str] = match origin(&target) {
            PasswordOrigin::ServerGenerated => &["", "#previous"],
            _ => &["", "#previous", "#pending"],
        };
        for slot in slots {
            let env = TestEnv::start();
            target.seed(&env);
            let entry = target.slot(&env, slot);
            if !slot.is_empty() {
                // A password every provider's policy takes (Twilio's wants a digit).
                env.store(&entry, &format!("Siprot-Slot-Pass-1{slot}"));
            }
            // python-keyring's real attribute value has spaces: the command must quote it.
            let application = if *slot == "#previous" {
                "Python keyring library"
            } else {
                PYTHON_KEYRING
            };
            store_foreign(&env, &entry, "Foreign-Copy-Pass-1", application);
            assert_eq!(items_of(&env, &entry), 2);

            let dry = target.rotate(&env, &["--dry-run"]);
            dry.assert_code(4);
            assert_names_the_duplicates(&dry, &env, &entry, application);
            let run = target.rotate(&env, &["--json"]);
            run.assert_code(4);
            assert_names_the_duplicates(&run, &env, &entry, application);
            assert!(
                run.stderr.contains("nothing was sent to the provider"),
                "{}",
                run.stderr
            );
            assert_eq!(run.json()["exit_code"], 4);
            assert!(
                env.fake.requests().is_empty(),
                "{} {slot}: a request was sent: {:?}",
                target.name,
                env.fake.requests().len()
            );
            assert_eq!(target.live(&env), target.initial, "{} {slot}", target.name);

            // The printed command removes the foreign item and only it.
            run_removal_command(&run);
            assert_eq!(items_of(&env, &entry), 1, "{} {slot}", target.name);
            assert!(
                !search_all(&env, Some(&entry)).contains("application"),
                "{} {slot}: the foreign item is still there",
                target.name
            );
            let after = target.rotate(&env, &["--json"]);
            after.assert_code(0);
            target.assert_consistent(&env);
        }
    }
}

#[test]
fn secret_get_verify_and_recover_name_the_duplicates_instead_of_advising_to_unlock() {
    let env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    let entry = target.entry(&env);
    store_foreign(&env, &entry, "Foreign-Copy-Pass-2", PYTHON_KEYRING);
    let run = env.run(
        &["secret", "get", "--provider", "telepath", target.id],
        None,
    );
    run.assert_code(4);
    assert!(run.stdout.is_empty());
    assert_names_the_duplicates(&run, &env, &entry, PYTHON_KEYRING);

    // verify reads the entry before sending anything to the registrar.
    let registrar = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    registrar.set_nonblocking(true).unwrap();
    let address = format!("sip:127.0.0.1:{}", registrar.local_addr().unwrap().port());
    let run = env.run(
        &[
            "verify",
            "--registrar",
            &address,
            "-p",
            "telepath",
            target.id,
            "--username",
            "sipuser01",
            "--timeout",
            "2",
        ],
        None,
    );
    run.assert_code(4);
    assert_names_the_duplicates(&run, &env, &entry, PYTHON_KEYRING);
    let mut buf = [0u8; 2048];
    assert!(
        registrar.recv(&mut buf).is_err(),
        "a REGISTER was sent to the registrar"
    );

    // recover: a pending Exotel password whose current entry has a duplicate is not resent.
    let exotel = Target::EXOTEL;
    exotel.seed(&env);
    let exotel_entry = exotel.entry(&env);
    env.store(&exotel.slot(&env, "#pending"), "Pending-Exotel-Pass-1");
    store_foreign(&env, &exotel_entry, "Foreign-Copy-Pass-3", PYTHON_KEYRING);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(4);
    let item = &run.json()["items"][0];
    assert_eq!(item["exit_code"], 4, "{item}");
    let message = item["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "`secret-tool clear service {} username {exotel_entry} application {PYTHON_KEYRING}`",
            env.service
        )),
        "{message}"
    );
    assert!(!message.contains("/org/freedesktop"), "{message}");
    assert!(env.fake.requests().is_empty(), "recover sent a request");
}

/// Rotates `target` paused after the provider accepted, adds a foreign duplicate of the
/// current entry holding `secret`, and lets the rotation finish.
fn duplicate_after_the_request(env: &mut TestEnv, target: Target, secret: &str) -> Run {
    let resume = env.state.path().join("resume");
    env.set_env("SIPROT_TEST_RESUME_FILE", resume.to_str().unwrap());
    let args = target.rotate_args(&["--json"]);
    let paused = env.spawn_paused(&args, "response-received");
    assert_ne!(target.live(env), target.initial, "the provider accepted");
    store_foreign(env, &target.entry(env), secret, PYTHON_KEYRING);
    let run = env.resume(paused, &resume);
    env.remove_env("SIPROT_TEST_RESUME_FILE");
    run
}

#[test]
fn a_duplicate_after_the_request_holding_the_same_password_is_removed() {
    for target in Target::ALL {
        let mut env = TestEnv::start();
        target.seed(&env);
        let run = duplicate_after_the_request(&mut env, target, target.initial);
        run.assert_code(0);
        assert!(
            run.stderr
                .contains("removed a duplicate keyring item holding the same password"),
            "{}: {}",
            target.name,
            run.stderr
        );
        assert!(!run.stderr.contains("/org/freedesktop"), "{}", run.stderr);
        target.assert_consistent(&env);
        let entry = target.entry(&env);
        assert_eq!(items_of(&env, &entry), 1, "{}", target.name);
        assert!(!search_all(&env, Some(&entry)).contains("application"));
        assert_eq!(
            env.lookup(&target.slot(&env, "#previous")).as_deref(),
            Some(target.initial)
        );
    }
}

#[test]
fn a_duplicate_after_the_request_holding_another_password_is_exit_9_and_keeps_pending() {
    for target in Target::CLIENT_SET {
        let mut env = TestEnv::start();
        target.seed(&env);
        let run = duplicate_after_the_request(&mut env, target, "Foreign-Other-Pass-9");
        run.assert_code(9);
        let entry = target.entry(&env);
        run.assert_one_line_error(&format!(
            "accepted the new password, which is kept in keyring entry '{entry}#pending', but \
             keyring service '{}' has 2 items for entry '{entry}'",
            env.service
        ));
        assert!(
            run.stderr.contains("they hold different passwords"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("run the same command again to finish"));
        assert!(!run.stderr.contains("/org/freedesktop"), "{}", run.stderr);
        let live = target.live(&env);
        assert_eq!(
            env.lookup(&target.slot(&env, "#pending")).as_deref(),
            Some(live.as_str()),
            "{}: the accepted password is kept in #pending",
            target.name
        );
        assert_eq!(items_of(&env, &entry), 2, "nothing was deleted");

        // A rerun before the foreign item is gone sends nothing.
        let sent = env.fake.requests().len();
        target.rotate(&env, &[]).assert_code(4);
        assert_eq!(env.fake.requests().len(), sent);
        run_removal_command(&run);
        let rerun = target.rotate(&env, &["--json"]);
        rerun.assert_code(0);
        assert_eq!(rerun.json()["status"], "resumed");
        target.assert_consistent(&env);
        assert_eq!(target.live(&env), live);
    }
}

#[test]
fn keyring_items_siprot_creates_carry_a_readable_label() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_label01", "sipuser01", "Old-Telepath-Pass-1");
    let auth_id = env.fake.config().vobiz_auth_id.clone();
    env.fake
        .add_vobiz_credential("cred-label-1", "sipuser01", "Old-Vobiz-Pass-1");
    for _ in 0..2 {
        env.run(&["rotate", "--provider", "telepath", "conn_label01"], None)
            .assert_code(0);
        env.run(&["rotate", "--provider", "vobiz", "cred-label-1"], None)
            .assert_code(0);
    }
    let listing = search_all(&env, None);
    let mut labels: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("label = "))
        .collect();
    labels.sort();
    let service = &env.service;
    assert_eq!(
        labels,
        [
            format!("{service}: telepath conn_label01"),
            format!("{service}: telepath conn_label01 (previous)"),
            format!("{service}: vobiz {auth_id}/cred-label-1"),
            format!("{service}: vobiz {auth_id}/cred-label-1 (previous)"),
        ],
        "{listing}"
    );
}

#[test]
fn a_staged_pending_item_is_labelled_too() {
    let env = TestEnv::start();
    let target = Target::EXOTEL;
    target.seed(&env);
    let paused = env.spawn_paused(&target.rotate_args(&[]), "pending-written");
    let listing = search_all(&env, Some(&target.slot(&env, "#pending")));
    env.kill(paused);
    let entry = target.entry(&env);
    let name = entry.strip_prefix("exotel/").unwrap();
    assert!(
        listing.contains(&format!("label = {}: exotel {name} (pending)", env.service)),
        "{listing}"
    );
}

#[test]
fn telepath_with_a_duplicate_holding_another_password_after_the_post_saves_a_recovery_file() {
    let mut env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    let run = duplicate_after_the_request(&mut env, target, "Foreign-Other-Pass-8");
    run.assert_code(9);
    let entry = target.entry(&env);
    run.assert_one_line_error(&format!(
        "telepath rotated the password but the keyring could not store it (keyring service \
         '{}' has 2 items for entry '{entry}'",
        env.service
    ));
    assert!(run.stderr.contains("they hold different passwords"));
    assert!(run.stderr.contains("(mode 0600)"), "{}", run.stderr);
    assert!(!run.stderr.contains("/org/freedesktop"), "{}", run.stderr);
    let live = target.live(&env);
    env.remember_secret(&live);

    // While the foreign item is there, recover installs nothing; once it is gone, it does.
    env.run(&["recover"], None).assert_code(4);
    run_removal_command(&run);
    env.run(&["recover"], None).assert_code(0);
    target.assert_consistent(&env);
}

/// A fleet checks its credentials' slots for duplicates in one listing of the keyring
/// service (not three searches per rotation), and a credential with a duplicate is still
/// refused with nothing sent, while the others rotate.
#[test]
fn a_fleet_checks_duplicates_in_one_listing_and_still_refuses_a_duplicated_credential() {
    let mut env = TestEnv::start();
    let mut inventory = String::new();
    for target in Target::ALL {
        target.seed(&env);
        inventory.push_str(&format!(
            "[[credential]]\nprovider = \"{}\"\nid = \"{}\"\n",
            target.name, target.id
        ));
        inventory.push_str(&target.id_toml());
        inventory.push('\n');
    }
    let duplicated = Target::ALL[Target::ALL.len() - 1];
    let entry = duplicated.slot(&env, "#previous");
    env.store(&entry, "Siprot-Slot-Pass-previous");
    store_foreign(&env, &entry, "Foreign-Copy-Pass-1", PYTHON_KEYRING);
    let path = env.state.path().join("fleet.toml");
    std::fs::write(&path, inventory).unwrap();

    env.set_env("RUST_LOG", "siprot=debug");
    let path = path.display().to_string();
    let run = env.run(&["rotate", "--inventory", &path, "--json"], None);
    assert!(
        run.stderr.contains(&format!(
            "one listing of {} items checked {} credentials' slots for duplicates",
            Target::ALL.len() + 2,
            Target::ALL.len()
        )),
        "{}",
        run.stderr
    );
    for line in run.stdout.lines() {
        let object: serde_json::Value = serde_json::from_str(line).unwrap();
        if object["type"] != "credential" {
            continue;
        }
        if object["provider"] == duplicated.name {
            assert_eq!(object["exit_code"], 4, "{object}");
            let error = object["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&format!("has 2 items for entry '{entry}'")),
                "{object}"
            );
        } else {
            assert_eq!(object["exit_code"], 0, "{object}");
        }
    }
    assert_eq!(duplicated.live(&env), duplicated.initial);
    for target in Target::ALL {
        if target.name != duplicated.name {
            assert_ne!(target.live(&env), target.initial);
            target.assert_consistent(&env);
        }
    }
}
