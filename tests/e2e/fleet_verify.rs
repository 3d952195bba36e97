//! Verification beyond one `rotate --verify`: a fleet verified per inventory entry against
//! real Kamailio registrars (`rotate --inventory --verify`), the outcome remembered in the
//! audit log and shown by `status`, and `--verify-wait` for a registrar that learns the
//! new password late (or never).

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::support::kamailio::{Algorithm, Kamailio};
use crate::support::{Run, Target, TestEnv};

/// Copies the SIP user table at `from` to `to` with a modification time a few seconds
/// ahead of anything written before, so that Kamailio (which rereads a db_text table when
/// its mtime, in whole seconds, changes) takes it at once.
fn copy_table(from: &Path, to: &Path) {
    let text = std::fs::read(from).expect("the fake's SIP user table");
    let temporary = to.with_extension("test-tmp");
    std::fs::write(&temporary, text).unwrap();
    let mtime = SystemTime::now() + Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&temporary)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&temporary, to).unwrap();
}

/// What a fleet entry's verification should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Verified,
    Rejected,
    Unreachable,
    NoRegistrar,
}

/// The `(line, expectation)` of each entry, by credential id.
type Expectations = HashMap<String, Expect>;

/// 10 credentials per provider: per provider, 6 verify at the live registrar, 1 at a
/// registrar that never learned the new password, 1 at the live one as a SIP user it does
/// not know (wrong username), 1 at a registrar that never answers, 1 without a registrar.
fn verified_fleet(env: &TestEnv, live: &str, stale: &str, silent: &str) -> (PathBuf, Expectations) {
    let mut toml = String::from("# a fleet verified per entry\n");
    let mut expected = Expectations::new();
    for i in 0..10 {
        let (registrar, wrong_user, expect) = match i {
            0..=5 => (Some(live), false, Expect::Verified),
            6 => (Some(stale), false, Expect::Rejected),
            7 => (Some(live), true, Expect::Rejected),
            8 => (Some(silent), false, Expect::Unreachable),
            _ => (None, false, Expect::NoRegistrar),
        };
        let keys = |sip_username: Option<String>| {
            let mut keys = String::new();
            if let Some(registrar) = registrar {
                keys.push_str(&format!("registrar = \"{registrar}\"\n"));
            }
            let user = if wrong_user {
                Some(format!("nobody-{i}"))
            } else {
                sip_username
            };
            if let Some(user) = user.filter(|_| registrar.is_some()) {
                keys.push_str(&format!("sip_username = \"{user}\"\n"));
            }
            keys
        };

        let trunk = format!("conn_verify{i:02}");
        env.fake.add_telepath_trunk(
            &trunk,
            &format!("tp-user-{i:02}"),
            &format!("Fleet-Telepath-Pass-{i:02}"),
        );
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"telepath\"\nid = \"{trunk}\"\n{}",
            keys(None)
        ));
        expected.insert(trunk, expect);

        let user = format!("ex-user-{i:02}");
        env.fake
            .add_exotel_device(&user, "dev", &format!("Fleet-Exotel-Pass-{i:02}"));
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"exotel\"\nid = \"{user}\"\ndevice = \"dev\"\n{}",
            keys(Some(format!("{user}-dev")))
        ));
        expected.insert(user, expect);

        let cred = format!("cred-verify-{i:02}");
        env.fake.add_vobiz_credential(
            &cred,
            &format!("vz-user-{i:02}"),
            &format!("Fleet-Vobiz-Pass-{i:02}"),
        );
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"vobiz\"\nid = \"{cred}\"\n{}",
            keys(None)
        ));
        expected.insert(cred, expect);
    }
    let path = env.state.path().join("verified-fleet.toml");
    std::fs::write(&path, toml).unwrap();
    (path, expected)
}

/// The JSON Lines of a fleet run: the credential objects, then the summary.
fn lines(run: &Run) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut objects: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    let summary = objects.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary");
    (objects, summary)
}

fn result_name(expect: Expect) -> &'static str {
    match expect {
        Expect::Verified => "verified",
        Expect::Rejected => "rejected",
        Expect::Unreachable => "unreachable",
        Expect::NoRegistrar => "no-registrar",
    }
}

#[test]
fn a_fleet_of_30_is_verified_per_entry_and_status_shows_each_last_verification() {
    let env = TestEnv::start();
    let live = Kamailio::start(Algorithm::Md5);
    let stale = Kamailio::start(Algorithm::Md5);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_uri = format!("sip:127.0.0.1:{}", silent.local_addr().unwrap().port());
    let (live_uri, stale_uri) = (live.registrar("udp"), stale.registrar("tcp"));
    let (path, expected) = verified_fleet(&env, &live_uri, &stale_uri, &silent_uri);
    // The stale registrar knows the seeded passwords and never hears of the new ones.
    let staging = tempfile::tempdir().unwrap();
    let staged = staging.path().join("subscriber");
    env.fake.share_sip_users(&staged);
    copy_table(&staged, &stale.subscriber_table());
    env.fake.share_sip_users(&live.subscriber_table());
    let path_arg = path.display().to_string();

    let started = Instant::now();
    let run = env.run(
        &[
            "rotate",
            "--inventory",
            &path_arg,
            "--verify",
            "--verify-timeout",
            "2",
            "--concurrency",
            "4",
            "--json",
        ],
        None,
    );
    let took = started.elapsed();
    run.assert_code(10);
    let (objects, summary) = lines(&run);
    assert_eq!(objects.len(), 30);
    let log = || format!("{}\n{}", live.log(), stale.log());
    for object in &objects {
        let id = object["credential"].as_str().unwrap();
        let expect = expected[id];
        assert_eq!(object["status"], "rotated", "{object}");
        assert_eq!(
            object["verification_result"],
            result_name(expect),
            "{object}\n{}",
            log()
        );
        match expect {
            Expect::NoRegistrar => assert!(object.get("verification").is_none(), "{object}"),
            _ => assert_eq!(object["verification"]["tries"], 1, "{object}"),
        }
        if expect == Expect::Verified {
            assert_eq!(object["verification"]["status"], 200, "{object}");
            assert!(object.get("verification_problem").is_none(), "{object}");
        } else {
            assert!(object["verification_problem"].is_string(), "{object}");
        }
    }
    let exotel = objects
        .iter()
        .find(|o| o["credential"] == "ex-user-00")
        .unwrap();
    assert_eq!(exotel["verification"]["username"], "ex-user-00-dev");
    let telepath = objects
        .iter()
        .find(|o| o["credential"] == "conn_verify00")
        .unwrap();
    assert_eq!(
        telepath["verification"]["username"], "tp-user-00",
        "the SIP username Telepath returned"
    );
    for (key, value) in [
        ("total", 30),
        ("rotated", 30),
        ("failed", 0),
        ("verified", 18),
        ("rejected", 6),
        ("unreachable", 3),
        ("not_verified", 0),
        ("no_registrar", 3),
        ("exit_code", 10),
    ] {
        assert_eq!(summary[key], value, "{key}: {summary}");
    }
    // Three unreachable registrars with a 2 s timeout each, 4 providers' workers apart:
    // the verifications ran side by side, not one after another.
    assert!(took < Duration::from_secs(20), "took {took:?}");

    let verify_lines: Vec<serde_json::Value> = env
        .audit_lines()
        .into_iter()
        .filter(|l| l["action"] == "verify")
        .collect();
    assert_eq!(verify_lines.len(), 27, "one per entry with a registrar");
    assert!(verify_lines.iter().all(|l| {
        l["registrar"]
            .as_str()
            .unwrap()
            .starts_with("sip:127.0.0.1:")
    }));

    let status = env.run(&["status", "--inventory", &path_arg, "--json"], None);
    status.assert_code(0);
    let json = status.json();
    assert_eq!(json["unverified"], 12, "{json}");
    let rows = json["credentials"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    for row in rows {
        let expect = expected[row["credential"].as_str().unwrap()];
        match expect {
            Expect::NoRegistrar => {
                assert!(row["last_verification"].is_null(), "{row}");
                assert!(row["last_verified"].is_null(), "{row}");
            }
            _ => {
                assert_eq!(row["last_verification"], result_name(expect), "{row}");
                assert!(row["last_verified"].is_string(), "{row}");
                assert!(row["last_verification_registrar"].is_string(), "{row}");
            }
        }
        assert_eq!(row["unverified"], expect != Expect::Verified, "{row}");
    }
    let table = env.run(&["status", "--inventory", &path_arg], None);
    table.assert_code(0);
    assert!(table.stdout.contains("LAST VERIFIED"), "{}", table.stdout);
    let row_of = |id: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap()
            .to_owned()
    };
    assert!(row_of("conn_verify00").contains(" verified 20"));
    assert!(!row_of("conn_verify00").contains("not verified since"));
    assert!(row_of("conn_verify06").contains(" rejected 20"));
    assert!(row_of("conn_verify09").contains(" never "));
    assert!(row_of("conn_verify09").contains("not verified since its rotation"));
    assert!(
        table
            .stdout
            .contains("12 not verified since their last rotation"),
        "{}",
        table.stdout
    );

    // The human summary counts the same; a verified credential stays verified in status
    // until its next rotation.
    let human = env.run(
        &[
            "rotate",
            "--inventory",
            &path_arg,
            "--verify",
            "--verify-timeout",
            "2",
        ],
        None,
    );
    human.assert_code(10);
    for (label, count) in [
        ("verified", 18),
        ("rejected by the registrar", 6),
        ("registrar unreachable", 3),
        ("no registrar (not verified)", 3),
    ] {
        assert!(
            human
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(label)
                    && l.trim_end().ends_with(&format!(" {count}"))),
            "{label} {count}:\n{}",
            human.stdout
        );
    }
    assert!(
        human.stdout.contains("conn_verify09 (line ")
            && human.stdout.contains("entry names no registrar"),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stderr
            .contains("12 of 30 rotated credential(s) were not verified (exit 10)"),
        "{}",
        human.stderr
    );
    drop(silent);
}

/// With one worker per provider, a registrar that never answers would hold each rotation
/// up by its timeout if the worker verified: every rotation is done (audited) before the
/// first verification ends.
#[test]
fn a_slow_registrar_never_holds_up_the_next_rotation() {
    let env = TestEnv::start();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let registrar = format!("sip:127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut toml = format!("registrar = \"{registrar}\"\n");
    for i in 0..5 {
        let cred = format!("cred-slow-{i}");
        env.fake
            .add_vobiz_credential(&cred, &format!("slow-{i}"), &format!("Slow-Vobiz-Pass-{i}"));
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"vobiz\"\nid = \"{cred}\"\n"
        ));
    }
    let path = env.state.path().join("slow.toml");
    std::fs::write(&path, toml).unwrap();
    let started = Instant::now();
    let run = env.run(
        &[
            "rotate",
            "--inventory",
            &path.display().to_string(),
            "--verify",
            "--verify-timeout",
            "3",
            "--concurrency",
            "1",
            "--json",
        ],
        None,
    );
    let took = started.elapsed();
    run.assert_code(10);
    let (_, summary) = lines(&run);
    assert_eq!(summary["rotated"], 5, "{summary}");
    assert_eq!(summary["unreachable"], 5, "{summary}");
    let actions: Vec<String> = env
        .audit_lines()
        .iter()
        .map(|l| l["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["rotate"; 5]
            .into_iter()
            .chain(["verify"; 5])
            .collect::<Vec<_>>(),
        "rotations waited for verifications"
    );
    assert!(
        took < Duration::from_secs(10),
        "verified one after another: {took:?}"
    );
    drop(silent);
}

#[test]
fn a_fleet_without_verify_is_unchanged_and_verify_options_are_checked_first() {
    let env = TestEnv::start();
    let live = Kamailio::start(Algorithm::Md5);
    env.fake.share_sip_users(&live.subscriber_table());
    let (path, _) = verified_fleet(
        &env,
        &live.registrar("udp"),
        "sip:127.0.0.1:9",
        "sip:127.0.0.1:9",
    );
    let path_arg = path.display().to_string();
    let rotate = |extra: &[&str]| {
        let mut args = vec!["rotate", "--inventory", path_arg.as_str()];
        args.extend_from_slice(extra);
        env.run(&args, None)
    };
    for (extra, fragment) in [
        (
            vec!["--verify", "sip:127.0.0.1:5999"],
            "with --inventory, --verify takes no URI",
        ),
        (vec!["--verify", "--username", "u"], "give `sip_username`"),
        (vec!["--verify-wait", "5s"], "go with --verify"),
        (
            vec!["--verify", "--rollback-on-verify-failure"],
            "--rollback-on-verify-failure is for one credential",
        ),
    ] {
        rotate(&extra)
            .assert_code(2)
            .assert_one_line_error(fragment);
    }
    Target::VOBIZ.seed(&env);
    Target::VOBIZ
        .rotate(&env, &["--verify"])
        .assert_code(2)
        .assert_one_line_error("--verify needs the registrar's URI for one credential");
    assert!(
        env.fake.requests().is_empty(),
        "a refused command reached a provider"
    );
    // Without --verify, registrars in the inventory change nothing: exit 0, no verify.
    let run = rotate(&["--json", "--provider", "vobiz"]);
    run.assert_code(0);
    let (objects, summary) = lines(&run);
    assert!(
        objects
            .iter()
            .all(|o| o.get("verification_result").is_none())
    );
    assert!(summary.get("verified").is_none(), "{summary}");
    assert!(env.audit_lines().iter().all(|l| l["action"] != "verify"));
}

/// A registrar that learns new passwords `delay` after the provider changed them: the
/// fake shares its SIP users with a staging file, and a thread copies it to Kamailio's
/// table `delay` after each change. Stops when the returned flag is set.
fn lagging_registrar(
    env: &TestEnv,
    delay: Duration,
) -> (Kamailio, Arc<AtomicBool>, tempfile::TempDir) {
    let kamailio = Kamailio::start(Algorithm::Md5);
    let staging = tempfile::tempdir().unwrap();
    let staged = staging.path().join("subscriber");
    env.fake.share_sip_users(&staged);
    let table = kamailio.subscriber_table();
    copy_table(&staged, &table);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let mut seen = std::fs::read(&staged).unwrap();
    std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            let now = std::fs::read(&staged).unwrap_or_default();
            if now.is_empty() || now == seen {
                continue;
            }
            seen = now;
            std::thread::sleep(delay);
            if !stopped.load(Ordering::Relaxed) {
                copy_table(&staged, &table);
            }
        }
    });
    (kamailio, stop, staging)
}

#[test]
fn a_registrar_that_learns_the_password_late_is_asked_again_within_verify_wait() {
    let env = TestEnv::start();
    let target = Target::VOBIZ;
    target.seed(&env);
    let (kamailio, stop, _staging) = lagging_registrar(&env, Duration::from_secs(3));
    let registrar = kamailio.registrar("udp");
    let started = Instant::now();
    let run = target.rotate(
        &env,
        &["--verify", &registrar, "--verify-wait", "30s", "--json"],
    );
    let took = started.elapsed();
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["verified"], true, "{json}\n{}", kamailio.log());
    let tries = json["verification"]["tries"].as_u64().unwrap();
    assert!(
        tries >= 2,
        "the first REGISTER came before the registrar knew: {json}"
    );
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    target.assert_consistent(&env);
    let last = env.audit_lines().pop().unwrap();
    assert_eq!(last["action"], "verify");
    assert_eq!(last["outcome"], "verified");

    // Without a wait the same lag is a rejection (exit 10); `verify --wait` then waits.
    let run = target.rotate(&env, &["--verify", &registrar, "--json"]);
    run.assert_code(10);
    assert_eq!(run.json()["verification"]["result"], "rejected");
    assert_eq!(run.json()["verification"]["tries"], 1);
    let id = target.id;
    let run = env.run(
        &[
            "verify",
            "--registrar",
            &registrar,
            "-p",
            "vobiz",
            id,
            "--wait",
            "30s",
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.json()["result"], "ok", "{}", kamailio.log());
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<String> = env
        .audit_lines()
        .iter()
        .filter(|l| l["action"] == "verify")
        .map(|l| l["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["verified", "rejected", "verified"]);
}

#[test]
fn a_registrar_that_never_learns_within_verify_wait_is_exit_10_and_status_flags_it() {
    let env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    // It would learn after a minute: far beyond the wait.
    let (kamailio, stop, _staging) = lagging_registrar(&env, Duration::from_secs(60));
    let registrar = kamailio.registrar("tcp");
    let started = Instant::now();
    let run = target.rotate(
        &env,
        &["--verify", &registrar, "--verify-wait", "3s", "--json"],
    );
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    run.assert_code(10);
    let json = run.json();
    assert_eq!(json["verified"], false);
    assert_eq!(json["verification"]["result"], "rejected");
    let tries = json["verification"]["tries"].as_u64().unwrap();
    assert!(tries >= 3, "asked again while waiting: {json}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    target.assert_consistent(&env);
    let human = target.rotate(&env, &["--verify", &registrar, "--verify-wait", "2s"]);
    human.assert_code(10);
    assert!(
        human
            .stdout
            .contains("times: the registrar rejected the first"),
        "{}",
        human.stdout
    );

    let inventory = env.state.path().join("one.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[credential]]\nprovider = \"telepath\"\nid = \"{}\"\n",
            target.id
        ),
    )
    .unwrap();
    let status = env.run(
        &[
            "status",
            "--inventory",
            &inventory.display().to_string(),
            "--json",
        ],
        None,
    );
    status.assert_code(0);
    let row = &status.json()["credentials"][0];
    assert_eq!(row["last_verification"], "rejected", "{row}");
    assert_eq!(row["unverified"], true, "{row}");
    assert_eq!(row["last_verification_registrar"], registrar.as_str());
}
