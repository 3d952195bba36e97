//! `siprot recover`: pending entries are finished, recovery files installed only when
//! safe, everything reported, exit 0 only when nothing is left.

use std::path::PathBuf;

use crate::support::{Target, TestEnv};

fn seeded(targets: &[Target]) -> TestEnv {
    let env = TestEnv::start();
    for target in targets {
        target.seed(&env);
    }
    env
}

/// Leaves `target` with a rotation killed after the provider took the new password.
fn interrupted(env: &TestEnv, target: Target) {
    let paused = env.spawn_paused(&target.rotate_args(&[]), "response-received");
    env.kill(paused);
    assert!(env.lookup(&target.slot(env, "#pending")).is_some());
}

/// Writes a recovery file as siprot would have, `minutes_ago` minutes in the past.
fn recovery_file(env: &TestEnv, target: Target, password: &str, minutes_ago: i64) -> PathBuf {
    let dir = env.state_root().join("recovery");
    std::fs::create_dir_all(&dir).unwrap();
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago);
    let path = dir.join(format!("{}-{minutes_ago}.json", target.id));
    let contents = serde_json::json!({
        "service": env.service,
        "entry": target.entry(env),
        "provider": target.name,
        "created_at": created.to_string(),
        "password": password,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&contents).unwrap()).unwrap();
    env.remember_secret(password);
    path
}

#[test]
fn nothing_to_recover_is_exit_0() {
    let env = seeded(&Target::ALL);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["remaining"], 0);
    assert_eq!(json["items"].as_array().unwrap().len(), 0);
    let human = env.run(&["recover"], None);
    human.assert_code(0);
    assert!(
        human.stdout.contains("nothing to recover"),
        "{}",
        human.stdout
    );
    assert!(env.fake.requests().is_empty());
}

#[test]
fn interrupted_rotations_are_finished_and_reported() {
    let env = seeded(&Target::ALL);
    for target in Target::CLIENT_SET {
        interrupted(&env, target);
    }
    let dry = env.run(&["recover", "--dry-run", "--json"], None);
    dry.assert_code(9);
    let json = dry.json();
    assert_eq!(json["remaining"], 2);
    assert!(
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == "would-recover" && i["type"] == "pending")
    );
    let sent_before = env.fake.requests().len();

    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["status"], "ok");
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item["outcome"], "finished", "{item}");
        assert_eq!(item["attempts"], 1);
    }
    assert_eq!(env.fake.requests().len(), sent_before + 2);
    for target in Target::CLIENT_SET {
        target.assert_consistent(&env);
        assert_ne!(target.live(&env), target.initial);
        assert_eq!(
            env.lookup(&target.slot(&env, "#previous")).as_deref(),
            Some(target.initial)
        );
    }
    // Telepath was never touched: recover does not start rotations.
    assert_eq!(Target::TELEPATH.live(&env), Target::TELEPATH.initial);
    env.run(&["recover"], None).assert_code(0);
}

#[test]
fn one_credential_that_cannot_be_finished_does_not_stop_the_others() {
    let mut env = seeded(&Target::CLIENT_SET);
    for target in Target::CLIENT_SET {
        interrupted(&env, target);
    }
    env.remove_env("VOBIZ_AUTH_TOKEN");
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(4);
    let json = run.json();
    assert_eq!(json["status"], "incomplete");
    assert_eq!(json["remaining"], 1);
    let items = json["items"].as_array().unwrap();
    let vobiz = items.iter().find(|i| i["provider"] == "vobiz").unwrap();
    assert_eq!(vobiz["outcome"], "failed");
    assert!(
        vobiz["message"]
            .as_str()
            .unwrap()
            .contains("VOBIZ_AUTH_TOKEN")
    );
    Target::EXOTEL.assert_consistent(&env);
    assert!(env.lookup(&Target::VOBIZ.slot(&env, "#pending")).is_some());
    let human = env.run(&["recover"], None);
    human.assert_code(4);
    assert!(human.stdout.contains("NOT RECOVERED"), "{}", human.stdout);
}

#[test]
fn a_recovery_file_is_stored_read_back_and_removed() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    // As after a failed store: current was copied to #previous before the request.
    env.store(&target.slot(&env, "#previous"), target.initial);
    let path = recovery_file(&env, target, "Recovered-Telepath-Pass-9", 5);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["items"][0]["outcome"], "stored");
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some("Recovered-Telepath-Pass-9")
    );
    assert!(!path.exists());
}

#[test]
fn older_recovery_files_of_the_same_entry_are_superseded_by_the_newest() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    env.store(&target.slot(&env, "#previous"), target.initial);
    let old = recovery_file(&env, target, "Older-Telepath-Pass-1", 30);
    let new = recovery_file(&env, target, "Newer-Telepath-Pass-2", 10);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    let outcomes: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["stored", "superseded"]);
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some("Newer-Telepath-Pass-2")
    );
    assert!(!old.exists() && !new.exists());
}

#[test]
fn a_file_older_than_a_later_successful_rotation_is_removed_untouched() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    let path = recovery_file(&env, target, "Dead-Telepath-Pass-1", 60);
    target.rotate(&env, &[]).assert_code(0);
    let live = target.live(&env);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["items"][0]["outcome"], "superseded");
    assert!(!path.exists());
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(live.as_str())
    );
}

#[test]
fn a_file_that_conflicts_with_the_keyring_is_kept_and_reported() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    // Current differs from #previous and the audit log knows of no rotation: siprot
    // cannot tell which password is live, so it changes nothing.
    env.store(&target.slot(&env, "#previous"), "Some-Other-Pass-7");
    let path = recovery_file(&env, target, "Unclear-Telepath-Pass-3", 5);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(9);
    let item = &run.json()["items"][0];
    assert_eq!(item["outcome"], "conflict");
    assert!(item["message"].as_str().unwrap().contains("changed after"));
    assert!(path.exists());
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
}

#[test]
fn an_unreadable_recovery_file_is_kept_and_reported_without_quoting_it() {
    let env = seeded(&[]);
    let dir = env.state_root().join("recovery");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.json");
    std::fs::write(&path, "{\"password\": \"Half-Written-Pass-5\"").unwrap();
    env.remember_secret("Half-Written-Pass-5");
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(9);
    let item = &run.json()["items"][0];
    assert_eq!(item["outcome"], "failed");
    assert!(path.exists());
}

#[test]
fn a_leftover_probe_is_removed() {
    let target = Target::TELEPATH;
    let env = seeded(&[]);
    env.store(&target.slot(&env, "#probe"), "siprot keyring probe");
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["items"][0]["outcome"], "removed");
    assert_eq!(env.lookup(&target.slot(&env, "#probe")), None);
}
