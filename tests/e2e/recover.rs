//! `siprot recover`: pending entries are finished, recovery files installed only when
//! safe, everything reported, exit 0 only when nothing is left.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::openbao::{Bao, ROOT_TOKEN, unique_prefix};
use crate::support::{Fault, Target, TestEnv};

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
    let entry = target.entry(env);
    let name = format!("{}-{minutes_ago}.json", entry.replace('/', "_"));
    let contents = serde_json::json!({
        "service": env.service,
        "entry": entry,
        "provider": target.name,
        "created_at": created(minutes_ago),
        "password": password,
    });
    plant(env, &name, &contents, password)
}

fn created(minutes_ago: i64) -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_mins(minutes_ago)).to_string()
}

/// Writes `contents` as recovery file `name`.
fn plant(env: &TestEnv, name: &str, contents: &serde_json::Value, password: &str) -> PathBuf {
    let path = env.recovery_dir().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(contents).unwrap()).unwrap();
    env.remember_secret(password);
    path
}

/// Appends an audit record as siprot (or a forger) would have.
fn audit_rotated(env: &TestEnv, target: Target, time: &str) {
    audit(env, target, (time, "rotated"), Some(1), 0);
}

/// Appends an audit record of a rotation of `target` with this time and outcome.
fn audit(
    env: &TestEnv,
    target: Target,
    (time, outcome): (&str, &str),
    attempts: Option<u32>,
    exit_code: i32,
) {
    use std::io::Write;
    let line = serde_json::json!({
        "time": time, "service": env.service, "provider": target.name,
        "entry": target.entry(env), "action": "rotate", "outcome": outcome,
        "request_id": null, "attempts": attempts, "exit_code": exit_code,
    });
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.state_root().join("audit.jsonl"))
        .unwrap();
    writeln!(log, "{line}").unwrap();
}

fn outcomes(run: &crate::support::Run) -> Vec<String> {
    run.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap().to_owned())
        .collect()
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
    let pending = Target::CLIENT_SET.len();
    assert_eq!(json["remaining"], pending);
    assert!(
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["outcome"] == "would-recover" && i["type"] == "pending")
    );
    // The updates sent (plivo also reads its SIP username back with a GET).
    let updates = || {
        let requests = env.fake.requests();
        requests.iter().filter(|r| r.method != "GET").count()
    };
    let sent_before = updates();

    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["status"], "ok");
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), pending);
    for item in items {
        assert_eq!(item["outcome"], "finished", "{item}");
        assert_eq!(item["attempts"], 1);
    }
    assert_eq!(updates(), sent_before + pending);
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
fn several_unresolved_files_of_one_entry_are_a_conflict_and_all_kept() {
    // Which of two files is live cannot be proven from the keyring (their times prove
    // nothing): both stay, nothing is stored.
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    env.store(&target.slot(&env, "#previous"), target.initial);
    let old = recovery_file(&env, target, "Older-Telepath-Pass-1", 30);
    let new = recovery_file(&env, target, "Newer-Telepath-Pass-2", 10);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(9);
    assert_eq!(outcomes(&run), ["conflict", "conflict"]);
    assert!(
        run.json()["items"][0]["message"]
            .as_str()
            .unwrap()
            .contains("2 recovery files")
    );
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
    assert!(old.exists() && new.exists());
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_file_whose_password_a_later_rotation_moved_to_previous_is_superseded() {
    // The keyring itself proves it: a rotation copied the file's password to #previous
    // and stored another as current, so the file holds nothing the keyring lacks.
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    env.store(&target.slot(&env, "#previous"), "Dead-Telepath-Pass-1");
    let path = recovery_file(&env, target, "Dead-Telepath-Pass-1", 60);
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(outcomes(&run), ["superseded"]);
    assert!(!path.exists());
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
    assert_eq!(
        env.lookup(&target.slot(&env, "#previous")).as_deref(),
        Some("Dead-Telepath-Pass-1")
    );
}

#[test]
fn a_later_rotated_record_never_gets_the_file_of_an_untouched_entry_deleted() {
    // Issue 12 item 3: the clock was stepped back (or the line forged), so the audit log
    // has a "rotated" record later than the file, but the keyring is untouched (current
    // equal to #previous): the file's password is the live one and must be stored.
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    env.store(&target.slot(&env, "#previous"), target.initial);
    let path = recovery_file(&env, target, "Live-Telepath-Pass-4", 60);
    audit_rotated(&env, target, &created(0));
    let dry = env.run(&["recover", "--dry-run", "--json"], None);
    dry.assert_code(9);
    assert_eq!(outcomes(&dry), ["would-recover"]);
    assert!(path.exists());
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(0);
    assert_eq!(outcomes(&run), ["stored"]);
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some("Live-Telepath-Pass-4")
    );
    assert!(!path.exists());
}

#[test]
fn a_telepath_rotation_is_refused_while_a_recovery_file_of_its_entry_exists() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    env.store(&target.slot(&env, "#previous"), target.initial);
    let path = recovery_file(&env, target, "Waiting-Telepath-Pass-5", 5);
    let run = target.rotate(&env, &[]);
    run.assert_code(9)
        .assert_one_line_error("run siprot recover first");
    assert!(run.stderr.contains(&path.display().to_string()));
    assert!(env.fake.requests().is_empty(), "nothing was sent");
    assert_eq!(target.live(&env), target.initial);
    assert!(path.exists());
    // Once recover has settled it, rotations go on.
    env.run(&["recover"], None).assert_code(0);
    target.rotate(&env, &[]).assert_code(0);
    target.assert_consistent(&env);
}

#[test]
fn recovery_files_siprot_would_not_have_written_are_refused_and_nothing_is_stored() {
    let target = Target::TELEPATH;
    let env = seeded(&Target::ALL);
    env.store(&target.slot(&env, "#previous"), target.initial);
    let other_service = format!("{}-elsewhere", env.service);
    let telepath_entry = target.entry(&env);
    let exotel_entry = Target::EXOTEL.entry(&env);
    let file = |service: &str, entry: &str, provider: &str, password: &str| {
        serde_json::json!({
            "service": service, "entry": entry, "provider": provider,
            "created_at": created(5), "password": password,
        })
    };
    let planted = [
        // Another keyring service.
        plant(
            &env,
            "telepath_conn_target01-1.json",
            &file(
                &other_service,
                &telepath_entry,
                "telepath",
                "Planted-Pass-One-1",
            ),
            "Planted-Pass-One-1",
        ),
        // A provider siprot does not know.
        plant(
            &env,
            "acme_x-1.json",
            &file(&env.service, "acme/x", "acme", "Planted-Pass-Two-2"),
            "Planted-Pass-Two-2",
        ),
        // A client-set provider: siprot never writes a recovery file for it.
        plant(
            &env,
            &format!("{}-1.json", exotel_entry.replace('/', "_")),
            &file(
                &env.service,
                &exotel_entry,
                "exotel",
                "Planted-Pass-Three-3",
            ),
            "Planted-Pass-Three-3",
        ),
        // A provider that does not match the entry.
        plant(
            &env,
            "telepath_conn_target01-2.json",
            &file(
                &env.service,
                &telepath_entry,
                "exotel",
                "Planted-Pass-Four-4",
            ),
            "Planted-Pass-Four-4",
        ),
        // A file name that is not the entry's.
        plant(
            &env,
            "telepath_conn_other-1.json",
            &file(
                &env.service,
                &telepath_entry,
                "telepath",
                "Planted-Pass-Five-5",
            ),
            "Planted-Pass-Five-5",
        ),
    ];
    let run = env.run(&["recover", "--json"], None);
    run.assert_code(9);
    let json = run.json();
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), planted.len(), "{json}");
    for item in items {
        assert_eq!(item["outcome"], "refused", "{item}");
        assert_eq!(item["exit_code"], 9);
        assert!(
            item["message"]
                .as_str()
                .unwrap()
                .contains("inspect it by hand"),
            "{item}"
        );
    }
    for path in &planted {
        assert!(path.exists(), "{} was kept", path.display());
    }
    assert_eq!(env.lookup_in(&other_service, &telepath_entry), None);
    for target in Target::ALL {
        assert_eq!(
            env.lookup(&target.entry(&env)).as_deref(),
            Some(target.initial)
        );
    }
    assert_eq!(env.lookup("acme/x"), None);
    assert!(env.fake.requests().is_empty());
    let human = env.run(&["recover"], None);
    human.assert_code(9);
    assert!(human.stdout.contains("NOT RECOVERED"), "{}", human.stdout);
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
    let path = env.recovery_dir().join("broken.json");
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

/// Runs `args` (a rotation of `target`) and kills it with its request in flight, after
/// the provider took the change: the answer is lost, as after kill -9 or a power loss.
fn lose_the_answer(env: &TestEnv, target: Target, args: &[&str]) {
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(Duration::from_secs(30)),
    );
    let sent = env.fake.requests().len();
    let running = env.spawn_running(args);
    env.wait_for_requests(sent + 1);
    env.kill(running);
}

/// An inventory holding `target` alone, with a maximum age that a rotation a moment ago
/// is far from.
fn one_entry_inventory(env: &TestEnv, target: Target) -> String {
    let path = env.state.path().join("lost.toml");
    std::fs::write(
        &path,
        format!(
            "[[credential]]\nprovider = \"{}\"\nid = \"{}\"\nmax_age = \"30d\"\n{}",
            target.name,
            target.id,
            target.id_toml()
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The one `outcome_unknown` item of a `recover --json`, checked.
#[track_caller]
fn assert_outcome_unknown_item(run: &crate::support::Run, next_step: &str) {
    run.assert_code(9);
    let json = run.json();
    assert_eq!(json["status"], "incomplete", "{json}");
    let items = json["items"].as_array().unwrap();
    let unknown: Vec<_> = items
        .iter()
        .filter(|i| i["type"] == "outcome_unknown")
        .collect();
    assert_eq!(unknown.len(), 1, "{json}");
    assert_eq!(unknown[0]["outcome"], "rotate-again", "{json}");
    assert_eq!(unknown[0]["exit_code"], 9, "{json}");
    assert_eq!(unknown[0]["next_step"], next_step, "{json}");
    assert!(
        unknown[0]["message"]
            .as_str()
            .unwrap()
            .contains("outcome unknown"),
        "{json}"
    );
}

/// Issue 23 item 3: after a lost Telepath answer the store holds a dead password. `recover`
/// exits 9 naming the `rotate` that restores service (it cannot get the password back),
/// and a fleet rotates the credential whatever `--if-older-than` or `max_age` say, saying
/// why.
#[test]
fn a_lost_telepath_answer_makes_recover_exit_9_and_the_fleet_rotate_it_whatever_its_age() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    let path = one_entry_inventory(&env, target);
    let next_step = "siprot rotate --provider telepath conn_target01";
    // Rotated a moment ago: recent by any age.
    target.rotate(&env, &[]).assert_code(0);

    // --if-older-than, human output.
    let stored = target.live(&env);
    lose_the_answer(&env, target, &target.rotate_args(&[]));
    assert_ne!(target.live(&env), stored, "the provider replaced it");
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(stored.as_str())
    );
    let sent = env.fake.requests().len();
    assert_outcome_unknown_item(&env.run(&["recover", "--json"], None), next_step);
    let human = env.run(&["recover"], None);
    human.assert_code(9);
    assert!(
        human.stdout.contains("NOT RECOVERED") && human.stdout.contains(next_step),
        "{}",
        human.stdout
    );
    assert!(human.stderr.contains(next_step), "{}", human.stderr);
    assert_eq!(env.fake.requests().len(), sent, "recover sent nothing");
    let dry = env.run(
        &[
            "rotate",
            "--inventory",
            &path,
            "--if-older-than",
            "25d",
            "--dry-run",
        ],
        None,
    );
    dry.assert_code(0);
    assert!(
        dry.stdout.contains("would be rotated (1)") && dry.stdout.contains("outcome unknown"),
        "{}",
        dry.stdout
    );
    let run = env.run(
        &["rotate", "--inventory", &path, "--if-older-than", "25d"],
        None,
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("rotated (1)")
            && run.stdout.contains("outcome unknown")
            && run.stdout.contains("was cut off"),
        "{}",
        run.stdout
    );
    target.assert_consistent(&env);
    env.run(&["recover"], None).assert_code(0);

    // max_age, JSON output.
    let stored = target.live(&env);
    lose_the_answer(&env, target, &target.rotate_args(&[]));
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(stored.as_str())
    );
    let run = env.run(&["rotate", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let line: serde_json::Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "rotated", "{line}");
    assert_eq!(line["outcome_unknown"], true, "{line}");
    assert!(line["last_attempt"].is_string(), "{line}");
    target.assert_consistent(&env);
    assert_ne!(target.live(&env), stored);
    // Settled: the next run skips it as rotated recently, and recover has nothing left.
    let run = env.run(&["rotate", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let line: serde_json::Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "skipped", "{line}");
    assert_eq!(line.get("outcome_unknown"), None, "{line}");
    env.run(&["recover"], None).assert_code(0);
}

/// As above with the vault store (a real OpenBao): the lost answer also leaves this
/// host's claim, which `recover` clears, and still exits 9 naming the `rotate` (with the
/// store options it was given); the fleet then rotates the credential into the store.
#[test]
fn a_lost_telepath_answer_with_the_vault_store_makes_recover_exit_9_and_the_fleet_rotate_it() {
    let bao = Bao::shared();
    let target = Target::TELEPATH;
    let mut env = TestEnv::without_keyring();
    let prefix = unique_prefix("lost-answer");
    env.set_env("VAULT_ADDR", &bao.addr);
    env.set_env("VAULT_TOKEN", ROOT_TOKEN);
    env.set_env("SIPROT_STORE", "vault");
    (target.create)(&target, &env);
    let path = one_entry_inventory(&env, target);
    let with_prefix = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| (*a).to_owned())
            .chain(["--secret-prefix".to_owned(), prefix.clone()])
            .collect()
    };
    let run = |args: &[&str]| {
        let args = with_prefix(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args, None)
    };
    let current = format!("secret/{prefix}telepath/conn_target01");
    run(&target.rotate_args(&[])).assert_code(0);

    let stored = target.live(&env);
    let args = with_prefix(&target.rotate_args(&[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lose_the_answer(&env, target, &args);
    assert_ne!(target.live(&env), stored, "the provider replaced it");
    assert_eq!(
        bao.kv_get(&current, "password").as_deref(),
        Some(stored.as_str())
    );
    let next_step =
        format!("siprot rotate --provider telepath conn_target01 --secret-prefix {prefix}");
    let recovered = run(&["recover", "--json"]);
    assert_outcome_unknown_item(&recovered, &next_step);
    let json = recovered.json();
    let claim = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "claim")
        .cloned();
    assert_eq!(
        claim.map(|c| c["outcome"].clone()),
        Some("cleared".into()),
        "{json}"
    );
    // Cleared, but still exit 9 until a rotation restores service.
    assert_outcome_unknown_item(&run(&["recover", "--json"]), &next_step);

    let fleet = run(&[
        "rotate",
        "--inventory",
        &path,
        "--if-older-than",
        "25d",
        "--json",
    ]);
    fleet.assert_code(0);
    let line: serde_json::Value =
        serde_json::from_str(fleet.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(line["status"], "rotated", "{line}");
    assert_eq!(line["outcome_unknown"], true, "{line}");
    let live = target.live(&env);
    assert_ne!(live, stored);
    assert_eq!(
        bao.kv_get(&current, "password").as_deref(),
        Some(live.as_str())
    );
    run(&["recover"]).assert_code(0);
}

/// Runs a fleet of `path` with `--if-older-than 25d` and `--json`, and returns its one
/// credential's line.
fn fleet_line(env: &TestEnv, path: &str) -> (i32, serde_json::Value) {
    let run = env.run(
        &[
            "rotate",
            "--inventory",
            path,
            "--if-older-than",
            "25d",
            "--json",
        ],
        None,
    );
    let line = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    (run.code, line)
}

/// Issue 23 item 3, the lost answer siprot lived through: Telepath answers 500 after
/// replacing the password (or siprot times out after sending), so the rotation ends
/// `unconfirmed` (exit 9) with no recovery file, and the store keeps a dead password.
/// `recover` exits 9 naming the `rotate`, also after a later attempt that changed nothing
/// (a 503); a fleet rotates the credential whatever its age and says why; after that
/// rotation `recover` exits 0 and the fleet skips it again.
#[test]
fn a_telepath_500_makes_recover_exit_9_and_the_fleet_rotate_it_until_a_rotation_settles_it() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    let path = one_entry_inventory(&env, target);
    let next_step = "siprot rotate --provider telepath conn_target01";
    target.rotate(&env, &[]).assert_code(0);
    env.run(&["recover"], None).assert_code(0);
    let stored = target.live(&env);

    env.fake
        .push_fault(target.provider, Fault::CommitThenStatus(500));
    target.rotate(&env, &[]).assert_code(9);
    assert_ne!(target.live(&env), stored, "Telepath replaced the password");
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(stored.as_str()),
        "the store keeps the dead one"
    );
    assert!(
        std::fs::read_dir(env.recovery_dir())
            .unwrap()
            .next()
            .is_none(),
        "no recovery file"
    );
    let sent = env.fake.requests().len();
    assert_outcome_unknown_item(&env.run(&["recover", "--json"], None), next_step);
    let human = env.run(&["recover"], None);
    human.assert_code(9);
    assert!(
        human.stdout.contains("NOT RECOVERED")
            && human.stdout.contains(next_step)
            && human.stdout.contains("ended unconfirmed"),
        "{}",
        human.stdout
    );
    assert!(human.stderr.contains(next_step), "{}", human.stderr);
    assert_eq!(env.fake.requests().len(), sent, "recover sent nothing");
    // A later attempt that changed nothing for sure leaves it unknown.
    env.fake.push_fault(target.provider, Fault::Status(503));
    target.rotate(&env, &[]).assert_code(7);
    assert_outcome_unknown_item(&env.run(&["recover", "--json"], None), next_step);
    let status = env.run(&["status", "--inventory", &path, "--json"], None);
    status.assert_code(0);
    let row = &status.json()["credentials"][0];
    assert_eq!(row["outcome_unknown"], true, "{row}");
    assert_eq!(row["next_step"], next_step, "{row}");

    let run = env.run(
        &["rotate", "--inventory", &path, "--if-older-than", "25d"],
        None,
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("rotated (1)")
            && run.stdout.contains("outcome unknown")
            && run.stdout.contains("ended unconfirmed"),
        "{}",
        run.stdout
    );
    target.assert_consistent(&env);
    env.run(&["recover"], None).assert_code(0);
    let (code, line) = fleet_line(&env, &path);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["status"], "skipped", "{line}");
    assert_eq!(line.get("outcome_unknown"), None, "{line}");

    // A timeout after sending, JSON: the same.
    let stored = target.live(&env);
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(Duration::from_secs(5)),
    );
    target.rotate(&env, &["--timeout", "1"]).assert_code(9);
    assert_ne!(target.live(&env), stored, "Telepath replaced the password");
    assert_outcome_unknown_item(&env.run(&["recover", "--json"], None), next_step);
    let (code, line) = fleet_line(&env, &path);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["status"], "rotated", "{line}");
    assert_eq!(line["outcome_unknown"], true, "{line}");
    assert!(line["last_attempt"].is_string(), "{line}");
    target.assert_consistent(&env);
    env.run(&["recover"], None).assert_code(0);
    assert_eq!(fleet_line(&env, &path).1["status"], "skipped");
}

/// A Telepath rotation left `unconfirmed` with its password in a recovery file (as when the
/// keyring failed after the POST: its records are planted with the file): a fleet
/// does not skip it as recent (the rotation is refused until `recover`, exit 9), and once
/// `recover` has stored the file's password (recording the rotation as `resumed`) the
/// credential is settled: `recover` exits 0 again and the fleet skips it.
#[test]
fn a_recovery_file_recover_stores_ends_the_unknown_outcome_of_its_rotation() {
    let target = Target::TELEPATH;
    let env = seeded(&[target]);
    let path = one_entry_inventory(&env, target);
    target.rotate(&env, &[]).assert_code(0);
    // As after a POST whose answer the keyring could not take: Telepath holds the new
    // password, the recovery file too, and the keyring is as the rotation left it.
    let stored = target.live(&env);
    env.store(&target.slot(&env, "#previous"), &stored);
    let password = "Recovered-Telepath-Pass-7";
    env.fake
        .add_telepath_trunk(target.id, "sipuser01", password);
    let file = recovery_file(&env, target, password, 1);
    let now = jiff::Timestamp::now().to_string();
    audit(&env, target, (&now, "in-progress"), None, 9);
    audit(&env, target, (&now, "unconfirmed"), Some(1), 9);
    // A rerun is refused (and sends nothing) while the file waits.
    target
        .rotate(&env, &[])
        .assert_code(9)
        .assert_one_line_error("run siprot recover first");

    let (code, line) = fleet_line(&env, &path);
    assert_eq!(code, 9, "not skipped as rotated recently: {line}");
    assert_eq!(line["outcome_unknown"], true, "{line}");
    assert!(file.exists());
    let recovered = env.run(&["recover", "--json"], None);
    recovered.assert_code(0);
    assert_eq!(recovered.json()["items"][0]["outcome"], "stored");
    target.assert_consistent(&env);
    let audit = std::fs::read_to_string(env.state_root().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .last()
            .unwrap()
            .contains(r#""outcome":"resumed""#),
        "{audit}"
    );
    env.run(&["recover"], None).assert_code(0);
    let (code, line) = fleet_line(&env, &path);
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["status"], "skipped", "{line}");
    target.assert_consistent(&env);
}

/// Exotel and Vobiz: a rotation left unconfirmed (a 500 after the change) or cut off
/// (killed mid-PUT) keeps its password in `#pending`, which `recover` resends. Once it has,
/// nothing stays flagged: `recover` exits 0 again, `status` shows no outcome unknown and a
/// fleet skips the credential as rotated recently.
#[test]
fn a_client_set_rotation_recover_finishes_is_not_flagged_afterwards() {
    for target in Target::CLIENT_SET {
        let env = seeded(&[target]);
        let path = one_entry_inventory(&env, target);
        target.rotate(&env, &[]).assert_code(0);
        env.fake
            .push_fault(target.provider, Fault::CommitThenStatus(500));
        target.rotate(&env, &["--retries", "0"]).assert_code(9);
        lose_the_answer(&env, target, &target.rotate_args(&[]));
        let status = env.run(&["status", "--inventory", &path, "--json"], None);
        let row = &status.json()["credentials"][0];
        assert_eq!(row["pending"], true, "{}: {row}", target.name);
        assert_eq!(row["outcome_unknown"], true, "{}: {row}", target.name);
        let recovered = env.run(&["recover", "--json"], None);
        recovered.assert_code(0);
        assert_eq!(outcomes(&recovered), ["finished"], "{}", target.name);
        target.assert_consistent(&env);
        env.run(&["recover"], None).assert_code(0);
        let status = env.run(&["status", "--inventory", &path, "--json"], None);
        let row = &status.json()["credentials"][0];
        assert_eq!(row["outcome_unknown"], false, "{}: {row}", target.name);
        assert_eq!(row["next_step"], serde_json::Value::Null, "{row}");
        let (code, line) = fleet_line(&env, &path);
        assert_eq!(code, 0, "{line}");
        assert_eq!(line["status"], "skipped", "{}: {line}", target.name);
    }
}
