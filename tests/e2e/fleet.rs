//! `siprot rotate --inventory`: a fleet across the three providers, rotated concurrently,
//! where failures of some credentials never stop or touch the others.

use std::path::{Path, PathBuf};

use crate::support::{EXOTEL_SID, FakeProvider, Fault, Run, TestEnv};

/// One credential of a test fleet: (provider, id, device, initial password).
type Member = (&'static str, String, Option<String>, String);

/// Seeds `per_provider` credentials at each provider and writes an inventory of them.
fn fleet(env: &TestEnv, per_provider: usize) -> (PathBuf, Vec<Member>) {
    let mut members = Vec::new();
    let mut toml = String::from("# test fleet\n");
    for i in 0..per_provider {
        let trunk = format!("conn_fleet{i:03}");
        let pass = format!("Fleet-Telepath-Pass-{i:03}");
        env.fake.add_telepath_trunk(&trunk, "u", &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"telepath\"\nid = \"{trunk}\"\ntags = [\"prod\"]\n"
        ));
        members.push(("telepath", trunk, None, pass));

        let user = format!("user-fleet-{i:03}");
        let pass = format!("Fleet-Exotel-Pass-{i:03}");
        env.fake.add_exotel_device(&user, "dev", &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"exotel\"\nid = \"{user}\"\ndevice = \"dev\"\ntags = [\"prod\", \"eu\"]\n"
        ));
        members.push(("exotel", user, Some("dev".to_owned()), pass));

        let cred = format!("cred-fleet-{i:03}");
        let pass = format!("Fleet-Vobiz-Pass-{i:03}");
        env.fake.add_vobiz_credential(&cred, "u", &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"vobiz\"\nid = \"{cred}\"\ndescription = \"fleet {{date}} {{id}}\"\n"
        ));
        members.push(("vobiz", cred, None, pass));
    }
    let path = env.state.path().join("fleet.toml");
    std::fs::write(&path, toml).unwrap();
    (path, members)
}

fn live(env: &TestEnv, member: &Member) -> String {
    let (provider, id, device, _) = member;
    match *provider {
        "telepath" => env.fake.telepath_password(id),
        "exotel" => env.fake.exotel_password(id, device.as_deref().unwrap()),
        _ => env.fake.vobiz_credential(id).map(|c| c.password),
    }
    .unwrap()
}

fn entry(env: &TestEnv, member: &Member) -> String {
    let (provider, id, device, _) = member;
    match *provider {
        "telepath" => format!("telepath/{id}"),
        "exotel" => format!("exotel/{EXOTEL_SID}/{id}/{}", device.as_deref().unwrap()),
        _ => format!("vobiz/{}/{id}", env.fake.config().vobiz_auth_id),
    }
}

/// The JSON Lines of a run: the credential objects, then the summary.
fn lines(run: &Run) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    let summary = objects.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    assert!(objects.iter().all(|o| o["type"] == "credential"));
    (objects, summary)
}

/// `siprot <command> --inventory <path> <extra>`.
fn with_inventory(env: &TestEnv, command: &str, path: &Path, extra: &[&str]) -> Run {
    let path = path.display().to_string();
    let mut args = vec![command, "--inventory", path.as_str()];
    args.extend_from_slice(extra);
    env.run(&args, None)
}

fn rotate_fleet(env: &TestEnv, path: &Path, extra: &[&str]) -> Run {
    with_inventory(env, "rotate", path, extra)
}

#[test]
fn a_fleet_rotates_concurrently_and_failures_stay_with_their_credential() {
    let env = TestEnv::start();
    let (path, members) = fleet(&env, 4);
    // One credential the provider does not know: 404 for it alone.
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str("\n[[credential]]\nprovider = \"vobiz\"\nid = \"cred-unknown\"\n");
    std::fs::write(&path, toml).unwrap();
    // One 401 at Exotel (not retried) and a storm of 429s at Vobiz (retried).
    env.fake
        .push_fault(FakeProvider::Exotel, Fault::Status(401));
    for _ in 0..6 {
        env.fake
            .push_fault(FakeProvider::Vobiz, Fault::RateLimited(Some("0".into())));
    }
    let run = rotate_fleet(
        &env,
        &path,
        &["--json", "--concurrency", "3", "--retries", "10"],
    );
    run.assert_code(6);
    let (objects, summary) = lines(&run);
    assert_eq!(objects.len(), 13);
    assert_eq!(summary["total"], 13);
    assert_eq!(summary["rotated"], 11);
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["needs_recovery"], 0);
    assert_eq!(summary["exit_code"], 6);

    let unknown = objects
        .iter()
        .find(|o| o["credential"] == "cred-unknown")
        .unwrap();
    assert_eq!(unknown["exit_code"], 6);
    let auth: Vec<_> = objects.iter().filter(|o| o["exit_code"] == 5).collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0]["provider"], "exotel");

    let vobiz_attempts: u64 = objects
        .iter()
        .filter(|o| o["provider"] == "vobiz" && o["credential"] != "cred-unknown")
        .map(|o| o["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(vobiz_attempts, 4 + 6, "every 429 was retried");

    for member in &members {
        let object = objects
            .iter()
            .find(|o| o["credential"] == member.1.as_str())
            .unwrap();
        let now = live(&env, member);
        if object["status"] == "rotated" {
            assert_ne!(now, member.3, "{}", member.1);
            assert_eq!(env.lookup(&entry(&env, member)), Some(now), "{}", member.1);
            assert_eq!(
                env.lookup(&format!("{}#pending", entry(&env, member))),
                None
            );
        } else {
            assert_eq!(object["exit_code"], 5);
            assert_eq!(now, member.3, "a failed credential is unchanged");
            assert_eq!(
                env.lookup(&format!("{}#pending", entry(&env, member))),
                None
            );
        }
    }
    let vobiz = env.fake.vobiz_credential("cred-fleet-000").unwrap();
    assert!(vobiz.description.unwrap().ends_with(" cred-fleet-000"));
}

#[test]
fn recently_rotated_credentials_are_skipped() {
    let env = TestEnv::start();
    let (path, members) = fleet(&env, 2);
    rotate_fleet(&env, &path, &["--json"]).assert_code(0);
    let sent = env.fake.requests().len();
    assert_eq!(sent, members.len());

    let run = rotate_fleet(&env, &path, &["--json", "--if-older-than", "1d"]);
    run.assert_code(0);
    let (objects, summary) = lines(&run);
    assert_eq!(summary["skipped"], members.len());
    assert!(
        objects
            .iter()
            .all(|o| o["status"] == "skipped" && o["last_rotated"].is_string())
    );
    assert_eq!(env.fake.requests().len(), sent, "nothing was sent");

    // max_age in the file does the same per entry; the flag is not needed.
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "tags = [\"prod\"]\n",
        "tags = [\"prod\"]\nmax_age = \"30d\"\n",
    );
    std::fs::write(&path, toml).unwrap();
    let run = rotate_fleet(&env, &path, &["--json"]);
    let (objects, summary) = lines(&run);
    assert_eq!(summary["skipped"], 2, "the two telepath entries");
    assert!(
        objects
            .iter()
            .filter(|o| o["provider"] == "telepath")
            .all(|o| o["status"] == "skipped")
    );
    // And `--if-older-than` shorter than the last rotation's age rotates again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = rotate_fleet(&env, &path, &["--json", "--if-older-than", "1s"]);
    let (_, summary) = lines(&run);
    assert_eq!(summary["rotated"], members.len());
}

#[test]
fn provider_and_tag_select_the_credentials() {
    let env = TestEnv::start();
    let (path, _) = fleet(&env, 2);
    let run = rotate_fleet(&env, &path, &["--json", "--tag", "eu"]);
    let (objects, _) = lines(&run);
    assert_eq!(objects.len(), 2);
    assert!(objects.iter().all(|o| o["provider"] == "exotel"));
    let run = rotate_fleet(
        &env,
        &path,
        &["--json", "--provider", "telepath", "--tag", "prod"],
    );
    let (objects, _) = lines(&run);
    assert_eq!(objects.len(), 2);
    assert!(objects.iter().all(|o| o["provider"] == "telepath"));
    // A selection of nothing is a mistake (exit 4) unless --allow-empty says it is not.
    let run = rotate_fleet(&env, &path, &["--tag", "nowhere"]);
    run.assert_code(4).assert_one_line_error(&format!(
        "--tag nowhere matches none of the 6 credentials in {}",
        path.display()
    ));
    let run = rotate_fleet(
        &env,
        &path,
        &["--json", "--tag", "nowhere", "--allow-empty"],
    );
    let (objects, summary) = lines(&run);
    run.assert_code(0);
    assert!(objects.is_empty());
    assert_eq!(summary["total"], 0);
}

#[test]
fn a_dry_run_sends_nothing_and_the_human_summary_counts() {
    let env = TestEnv::start();
    let (path, members) = fleet(&env, 1);
    let run = rotate_fleet(&env, &path, &["--dry-run", "--json"]);
    run.assert_code(0);
    let (objects, _) = lines(&run);
    assert!(objects.iter().all(|o| o["status"] == "dry-run"));
    assert!(env.fake.requests().is_empty());

    env.fake
        .push_fault(FakeProvider::Telepath, Fault::CommitThenStatus(500));
    let run = rotate_fleet(&env, &path, &[]);
    run.assert_code(9)
        .assert_one_line_error("were not rotated (exit 9)");
    assert!(
        run.stdout
            .contains(&format!("{} credential(s) from", members.len())),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("needs recovery (exit 9)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("siprot recover"), "{}", run.stdout);
}

#[test]
fn inventory_mistakes_are_exit_4_with_file_and_line() {
    let env = TestEnv::start();
    let path = env.state.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n\n[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\n",
    )
    .unwrap();
    rotate_fleet(&env, &path, &[])
        .assert_code(4)
        .assert_one_line_error("bad.toml:5: duplicate of the entry on line 1");
    std::fs::write(
        &path,
        "[[credential]]\nprovider = \"vobiz\"\nid = \"a\"\nsecret = \"x\"\n",
    )
    .unwrap();
    rotate_fleet(&env, &path, &["--json"])
        .assert_code(4)
        .assert_one_line_error("bad.toml:4: unknown field `secret`");
    let missing = env.state.path().join("missing.toml");
    rotate_fleet(&env, &missing, &[])
        .assert_code(4)
        .assert_one_line_error("cannot read the inventory");
    assert!(env.fake.requests().is_empty());
    // One credential or a fleet, not both.
    env.run(&["rotate", "--inventory", "x.toml", "conn_1"], None)
        .assert_code(2);
    env.run(
        &["rotate", "--tag", "prod", "--provider", "vobiz", "a"],
        None,
    )
    .assert_code(2);
    env.run(
        &["rotate", "--allow-empty", "--provider", "vobiz", "a"],
        None,
    )
    .assert_code(2)
    .assert_one_line_error("--allow-empty select and pace a fleet: they need --inventory");
}

fn status(env: &TestEnv, path: &Path, extra: &[&str]) -> Run {
    with_inventory(env, "status", path, extra)
}

#[test]
fn status_shows_age_overdue_pending_and_recovery_files() {
    let env = TestEnv::start();
    let (path, members) = fleet(&env, 1);
    let run = status(&env, &path, &["--json", "--max-age", "30d"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["total"], 3);
    assert_eq!(
        json["overdue"], 3,
        "never rotated, with a max age, is overdue"
    );
    assert_eq!(json["needs_recovery"], 0);
    assert!(
        json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["last_rotated"].is_null())
    );

    rotate_fleet(&env, &path, &[]).assert_code(0);
    // Vobiz killed after the provider took a new password: #pending waits.
    let vobiz = &members[2];
    let paused = env.spawn_paused(
        &["rotate", "--provider", "vobiz", &vobiz.1],
        "response-received",
    );
    env.kill(paused);
    // Telepath: a recovery file waits.
    let dir = env.recovery_dir();
    std::fs::write(
        dir.join("t.json"),
        serde_json::to_vec(&serde_json::json!({
            "service": env.service, "entry": entry(&env, &members[0]), "provider": "telepath",
            "created_at": jiff::Timestamp::now().to_string(), "password": "Waiting-Telepath-Pass-1",
        }))
        .unwrap(),
    )
    .unwrap();
    env.remember_secret("Waiting-Telepath-Pass-1");

    let run = status(&env, &path, &["--json", "--max-age", "30d"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["overdue"], 0);
    assert_eq!(json["needs_recovery"], 2);
    let credentials = json["credentials"].as_array().unwrap();
    let by = |provider: &str| {
        credentials
            .iter()
            .find(|c| c["provider"] == provider)
            .unwrap()
    };
    assert_eq!(by("telepath")["recovery_file"], true);
    assert_eq!(by("telepath")["pending"], false);
    assert_eq!(by("vobiz")["pending"], true);
    assert_eq!(by("exotel")["pending"], false);
    assert_eq!(by("exotel")["last_outcome"], "rotated");
    assert!(by("exotel")["age_seconds"].as_i64().unwrap() < 600);
    assert_eq!(by("exotel")["keyring_entry"], entry(&env, &members[1]));

    let human = status(&env, &path, &[]);
    human.assert_code(0);
    assert!(human.stdout.starts_with("PROVIDER"), "{}", human.stdout);
    assert!(
        human.stdout.contains("pending: run siprot recover"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains("3 credential(s): 0 overdue, 2 need recovery"),
        "{}",
        human.stdout
    );
    // A keyring-free error: the inventory must exist.
    status(&env, &env.state.path().join("none.toml"), &[])
        .assert_code(4)
        .assert_one_line_error("cannot read the inventory");
}

#[test]
fn a_429_pauses_every_request_to_that_provider() {
    let env = TestEnv::start();
    let mut toml = String::new();
    for i in 0..6 {
        let id = format!("cred-pause-{i}");
        env.fake
            .add_vobiz_credential(&id, "u", &format!("Pause-Vobiz-Pass-{i}"));
        toml.push_str(&format!(
            "[[credential]]\nprovider = \"vobiz\"\nid = \"{id}\"\n\n"
        ));
    }
    let path = env.state.path().join("pause.toml");
    std::fs::write(&path, toml).unwrap();
    env.fake
        .push_fault(FakeProvider::Vobiz, Fault::RateLimited(Some("3".into())));
    let path_arg = path.display().to_string();
    let args = [
        "rotate",
        "--inventory",
        path_arg.as_str(),
        "--concurrency",
        "2",
        "--json",
    ];
    let child = env.spawn(&args, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while env.fake.requests().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no request arrived");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Within the 3 s the provider asked for, at most the two requests already in flight
    // reach it: the other worker waits too instead of rotating the rest.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let during_pause = env.fake.requests().len();
    let run = env.finish(child, &args);
    run.assert_code(0);
    assert!(
        during_pause <= 2,
        "{during_pause} requests during the pause"
    );
    let (objects, summary) = lines(&run);
    assert_eq!(summary["rotated"], 6);
    assert_eq!(objects.len(), 6);
    assert_eq!(env.fake.requests().len(), 7);
}

#[test]
fn a_fleet_signalled_mid_run_starts_no_new_credential_and_reports_the_rest_as_not_attempted() {
    for (json, signal, code) in [(true, "TERM", 143), (false, "INT", 130)] {
        let env = TestEnv::start();
        let (path, members) = fleet(&env, 2);
        // One worker per provider; each provider's first request commits and answers late.
        for provider in [
            FakeProvider::Telepath,
            FakeProvider::Exotel,
            FakeProvider::Vobiz,
        ] {
            env.fake.push_fault(
                provider,
                Fault::CommitThenDelay(std::time::Duration::from_secs(2)),
            );
        }
        let path_arg = path.display().to_string();
        let mut args = vec!["rotate", "--inventory", &path_arg, "--concurrency", "1"];
        if json {
            args.push("--json");
        }
        let running = env.spawn_running(&args);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while env.fake.requests().len() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the fleet never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        env.send_signal(&running, signal);
        let run = env.wait_exit(running);
        run.assert_code(code);
        assert_eq!(
            env.fake.requests().len(),
            3,
            "no credential was started after the signal"
        );
        // The three in flight finished; the other three were left alone.
        let changed = members
            .iter()
            .filter(|m| live(&env, m) != m.3)
            .inspect(|m| {
                assert_eq!(
                    env.lookup(&entry(&env, m)).as_deref(),
                    Some(live(&env, m).as_str()),
                    "{m:?}"
                );
            })
            .count();
        assert_eq!(changed, 3);
        if json {
            let (objects, summary) = lines(&run);
            assert_eq!(objects.len(), 6);
            let not_attempted: Vec<_> = objects
                .iter()
                .filter(|o| o["status"] == "not-attempted")
                .collect();
            assert_eq!(not_attempted.len(), 3, "{}", run.stdout);
            assert!(not_attempted.iter().all(|o| o["exit_code"] == code));
            assert_eq!(summary["rotated"], 3);
            assert_eq!(summary["not_attempted"], 3);
            assert_eq!(summary["exit_code"], code);
        } else {
            assert!(
                run.stdout
                    .lines()
                    .any(|l| l.contains("not attempted (interrupted)") && l.ends_with(" 3")),
                "{}",
                run.stdout
            );
            assert!(
                run.stdout.contains(&format!(
                    "interrupted by SIG{signal}: 3 credential(s) not attempted"
                )),
                "{}",
                run.stdout
            );
        }
    }
}

/// Appends a hand-written "rotated" audit record for `entry`, dated `time`.
fn audit_rotated_at(env: &TestEnv, provider: &str, entry: &str, time: jiff::Timestamp) {
    use std::io::Write;
    let root = env.state_root();
    std::fs::create_dir_all(&root).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("audit.jsonl"))
        .unwrap();
    let line = serde_json::json!({
        "time": time.to_string(), "service": env.service, "provider": provider, "entry": entry,
        "action": "rotate", "outcome": "rotated", "request_id": null, "attempts": 1, "exit_code": 0,
    });
    writeln!(file, "{line}").unwrap();
}

fn days(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * n)
}

/// A fleet of one credential per provider whose last rotations are dated: Telepath 400
/// days ahead (a clock that ran ahead, or a forged line), Exotel two minutes ahead
/// (within the 5-minute tolerance), Vobiz a day ago.
fn fleet_with_a_future_record(env: &TestEnv) -> (PathBuf, Vec<Member>, jiff::Timestamp) {
    let (path, members) = fleet(env, 1);
    let now = jiff::Timestamp::now();
    audit_rotated_at(env, "telepath", &entry(env, &members[0]), now + days(400));
    audit_rotated_at(
        env,
        "exotel",
        &entry(env, &members[1]),
        now + jiff::SignedDuration::from_mins(2),
    );
    audit_rotated_at(env, "vobiz", &entry(env, &members[2]), now - days(1));
    (path, members, now)
}

#[test]
fn status_reports_a_last_rotation_dated_in_the_future_as_clock_skew_and_overdue() {
    let env = TestEnv::start();
    let (path, _, _) = fleet_with_a_future_record(&env);

    let run = status(&env, &path, &["--json", "--max-age", "30d"]);
    run.assert_code(0);
    let json = run.json();
    let credentials = json["credentials"].as_array().unwrap();
    let by = |provider: &str| {
        credentials
            .iter()
            .find(|c| c["provider"] == provider)
            .unwrap()
            .clone()
    };
    let telepath = by("telepath");
    let skew = telepath["clock_skew_seconds"].as_i64().unwrap();
    assert!(
        (days(400).as_secs() - 60..=days(400).as_secs()).contains(&skew),
        "{skew}"
    );
    assert_eq!(telepath["age_seconds"], serde_json::Value::Null);
    assert_eq!(telepath["overdue"], true, "an unknown age is overdue");
    let exotel = by("exotel");
    assert_eq!(exotel["clock_skew_seconds"], serde_json::Value::Null);
    assert_eq!(exotel["age_seconds"], 0);
    assert_eq!(exotel["overdue"], false);
    assert_eq!(by("vobiz")["overdue"], false);
    assert_eq!(json["overdue"], 1);
    let human = status(&env, &path, &["--max-age", "30d"]);
    assert!(
        human
            .stdout
            .contains("last rotation dated 399d in the future (clock skew): age unknown, overdue"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_fleet_rotates_a_credential_whose_last_rotation_is_dated_in_the_future() {
    let env = TestEnv::start();
    let (path, members, now) = fleet_with_a_future_record(&env);
    let skew = days(400).as_secs();
    let run = rotate_fleet(&env, &path, &["--json", "--if-older-than", "30d"]);
    run.assert_code(0);
    let (objects, summary) = lines(&run);
    let telepath = objects
        .iter()
        .find(|o| o["provider"] == "telepath")
        .unwrap();
    assert_eq!(telepath["status"], "rotated", "{}", run.stdout);
    assert!(telepath["clock_skew_seconds"].as_i64().unwrap() >= skew - 60);
    assert_eq!(
        telepath["last_rotated"],
        (now + days(400)).to_string(),
        "it says which record was in the future"
    );
    assert_eq!(summary["rotated"], 1);
    assert_eq!(summary["skipped"], 2);
    assert_eq!(
        env.lookup(&entry(&env, &members[0])).as_deref(),
        Some(live(&env, &members[0]).as_str())
    );

    // The new record supersedes the future one: the next run skips it, and says so
    // in the human summary only when it rotates for that reason.
    let run = rotate_fleet(&env, &path, &["--if-older-than", "30d"]);
    run.assert_code(0);
    assert!(!run.stdout.contains("in the future"), "{}", run.stdout);
    assert_eq!(env.fake.requests().len(), 1);
    audit_rotated_at(&env, "vobiz", &entry(&env, &members[2]), now + days(3));
    let run = rotate_fleet(&env, &path, &["--if-older-than", "30d"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("(clock skew): its age is unknown, so it was not skipped"),
        "{}",
        run.stdout
    );
    assert_eq!(env.fake.requests().len(), 2);
}

/// The human summary names the credentials of each group, by inventory line: those that
/// would be rotated (dry run), rotated and skipped; the first 20 of a group, then a count.
#[test]
fn the_human_summary_names_what_was_rotated_and_skipped() {
    let env = TestEnv::start();
    let (path, members) = fleet(&env, 9);
    assert_eq!(members.len(), 27);
    let listed = |run: &Run, header: &str| -> Vec<String> {
        let mut lines = run.stdout.lines().skip_while(|l| *l != header);
        assert_eq!(lines.next(), Some(header), "{}", run.stdout);
        lines
            .take_while(|l| l.starts_with("  "))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let run = rotate_fleet(&env, &path, &["--dry-run"]);
    run.assert_code(0);
    let planned = listed(&run, "would be rotated (27):");
    assert_eq!(planned.len(), 21, "{}", run.stdout);
    assert_eq!(planned[0], "telepath conn_fleet000 (line 3)");
    assert_eq!(planned[1], "exotel user-fleet-000 (device dev) (line 8)");
    assert_eq!(planned[20], "... and 7 more");
    assert!(env.fake.requests().is_empty());

    let run = rotate_fleet(&env, &path, &["--provider", "telepath"]);
    run.assert_code(0);
    let rotated = listed(&run, "rotated (9):");
    let telepath: Vec<String> = members
        .iter()
        .filter(|m| m.0 == "telepath")
        .map(|m| m.1.clone())
        .collect();
    assert_eq!(rotated.len(), 9, "{}", run.stdout);
    for (line, trunk) in rotated.iter().zip(&telepath) {
        assert!(
            line.starts_with(&format!("telepath {trunk} (line ")),
            "{line}"
        );
    }

    let run = rotate_fleet(&env, &path, &["--if-older-than", "1d"]);
    run.assert_code(0);
    let skipped = listed(&run, "skipped (rotated recently) (9):");
    assert!(
        skipped.iter().all(|l| l.starts_with("telepath ")),
        "{skipped:?}"
    );
    let rotated = listed(&run, "rotated (18):");
    assert_eq!(rotated.len(), 18, "{}", run.stdout);
    assert!(rotated.iter().all(|l| !l.starts_with("telepath ")));
}
