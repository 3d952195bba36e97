//! Telnyx: a credential connection's password set with a PATCH whose answer echoes it
//! (never shown nor logged), `enable`/`disable` through its `active` flag, its 8 to 128
//! character policy, its error format, and a fleet of connections.

use crate::support::kamailio::{Algorithm, Kamailio};
use crate::support::{FakeProvider, Fault, Target, TestEnv};

const TARGET: Target = Target::TELNYX;

#[test]
fn rotation_patches_the_password_alone_and_keeps_the_echo_out_of_every_output() {
    let mut env = TARGET.seeded();
    // Every log line too, at its most talkative: the answer carries the new password.
    env.set_env("RUST_LOG", "trace");
    for extra in [&["--json"][..], &["-vv"][..]] {
        let run = TARGET.rotate(&env, extra);
        run.assert_code(0);
        TARGET.assert_consistent(&env);
    }
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 2);
    let live = TARGET.live(&env);
    let request = &requests[1];
    assert_eq!(request.method, "PATCH");
    assert_eq!(
        request.path,
        format!("/telnyx/v2/credential_connections/{}", TARGET.id)
    );
    assert_eq!(
        request.headers.get("authorization"),
        Some(&format!("Bearer {}", env.fake.config().telnyx_api_key))
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, serde_json::json!({ "password": live }));
    let audit = env.audit_lines();
    assert_eq!(audit.last().unwrap()["username"], "sipuser01", "{audit:?}");
}

#[test]
fn disable_and_enable_set_the_connections_active_flag_only() {
    let env = TARGET.seeded();
    let run = env.run(
        &["disable", "--provider", "telnyx", TARGET.id, "--json"],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.json()["enabled"], false);
    let connection = env.fake.telnyx_connection(TARGET.id).unwrap();
    assert!(!connection.active);
    assert_eq!(connection.password, TARGET.initial);
    let body: serde_json::Value = serde_json::from_slice(&env.fake.requests()[0].body).unwrap();
    assert_eq!(body, serde_json::json!({ "active": false }));

    let run = env.run(&["enable", "--provider", "telnyx", TARGET.id], None);
    run.assert_code(0);
    assert!(run.stdout.contains("is now enabled"), "{}", run.stdout);
    let connection = env.fake.telnyx_connection(TARGET.id).unwrap();
    assert!(connection.active);
    assert_eq!(connection.password, TARGET.initial);
    let body: serde_json::Value = serde_json::from_slice(&env.fake.requests()[1].body).unwrap();
    assert_eq!(body, serde_json::json!({ "active": true }));
    let actions: Vec<_> = env
        .audit_lines()
        .iter()
        .map(|line| line["action"].clone())
        .collect();
    assert_eq!(actions, ["disable", "enable"]);
}

#[test]
fn an_inactive_connection_does_not_register_and_an_active_one_does() {
    let env = TestEnv::start();
    let kamailio = Kamailio::start(Algorithm::Md5);
    env.fake.share_sip_users(&kamailio.subscriber_table());
    TARGET.seed(&env);
    let registrar = kamailio.registrar("udp");
    let verify = |env: &TestEnv| {
        env.run(
            &[
                "verify",
                "--registrar",
                &registrar,
                "-p",
                "telnyx",
                TARGET.id,
                "--username",
                "sipuser01",
                "--json",
            ],
            None,
        )
    };
    let run = verify(&env);
    run.assert_code(0);
    assert_eq!(run.json()["result"], "ok", "{}", kamailio.log());

    env.run(&["disable", "--provider", "telnyx", TARGET.id], None)
        .assert_code(0);
    let run = verify(&env);
    run.assert_code(5);
    assert_eq!(run.json()["result"], "rejected", "{}", kamailio.log());

    env.run(&["enable", "--provider", "telnyx", TARGET.id], None)
        .assert_code(0);
    verify(&env).assert_code(0);
}

#[test]
fn the_policy_is_8_to_128_characters() {
    let env = TestEnv::without_keyring();
    let long = "Ab1-".repeat(33);
    env.remember_secret(&long);
    let run = env.run(
        &["check-password", "--provider", "telnyx", "--json"],
        Some(long.as_bytes()),
    );
    run.assert_code(3);
    let json = run.json();
    let rule = |name: &str| {
        json["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(rule("max_length")["ok"], false);
    assert_eq!(
        rule("max_length")["message"],
        "132 characters, at most 128 allowed"
    );
    assert_eq!(rule("min_length")["ok"], true);

    env.run(
        &["generate", "--provider", "telnyx", "--length", "129"],
        None,
    )
    .assert_code(2)
    .assert_one_line_error("above the maximum of 128");
    let run = env.run(
        &[
            "generate",
            "--provider",
            "telnyx",
            "--length",
            "128",
            "--json",
        ],
        None,
    );
    run.assert_code(0);
}

#[test]
fn a_wrong_key_is_exit_5_with_telnyxs_own_words_and_nothing_changed() {
    let mut env = TARGET.seeded();
    env.set_env("TELNYX_API_KEY", "KEYwrong_key_0123456789");
    TARGET
        .rotate(&env, &[])
        .assert_code(5)
        .assert_one_line_error("The required authentication headers were either invalid");
    assert_eq!(TARGET.live(&env), TARGET.initial);
    assert_eq!(env.lookup(&TARGET.slot(&env, "#pending")), None);

    let env = TARGET.seeded();
    let run = env.run(&["rotate", "--provider", "telnyx", "9999", "--json"], None);
    run.assert_code(6);
    assert!(
        run.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("The requested resource or URL could not be found."),
        "{}",
        run.stdout
    );
}

#[test]
fn an_answer_without_the_connection_is_an_unknown_outcome_that_recover_settles() {
    let env = TARGET.seeded();
    env.fake.push_fault(
        FakeProvider::Telnyx,
        Fault::CommitThenBody(r#"{"errors":[]}"#.into()),
    );
    TARGET
        .rotate(&env, &["--retries", "0"])
        .assert_code(9)
        .assert_one_line_error("unreadable credential connection");
    assert!(env.lookup(&TARGET.slot(&env, "#pending")).is_some());
    env.run(&["recover"], None).assert_code(0);
    TARGET.assert_consistent(&env);
}

#[test]
fn a_fleet_of_connections_rotates_and_shows_in_status() {
    let env = TestEnv::start();
    let mut inventory = String::new();
    let ids: Vec<String> = (0..5).map(|i| format!("10000000000000000{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        env.fake.add_telnyx_connection(
            id,
            &format!("fleetuser{i:02}"),
            &format!("Fleet-Telnyx-Pass-{i:02}"),
        );
        inventory.push_str(&format!(
            "[[credential]]\nprovider = \"telnyx\"\nid = \"{id}\"\n\n"
        ));
    }
    let path = env.state.path().join("fleet.toml");
    std::fs::write(&path, inventory).unwrap();
    let path = path.display().to_string();

    let run = env.run(&["rotate", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let summary: serde_json::Value =
        serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["rotated"], 5, "{}", run.stdout);
    for (i, id) in ids.iter().enumerate() {
        let live = env.fake.telnyx_connection(id).unwrap().password;
        assert_ne!(live, format!("Fleet-Telnyx-Pass-{i:02}"));
        assert_eq!(env.lookup(&format!("telnyx/{id}")), Some(live));
    }

    let run = env.run(&["status", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["total"], 5);
    assert!(
        json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["last_rotated"].is_string()),
        "{json}"
    );
}
