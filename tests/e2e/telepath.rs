use crate::support::{FakeProvider, Fault, TestEnv};

const TRUNK: &str = "conn_abc123xyz";
const ENTRY: &str = "telepath/conn_abc123xyz";

fn env_with_trunk() -> TestEnv {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk(TRUNK, "agent-prod-01", "Old-Telepath-Pass-1");
    env
}

#[test]
fn rotation_stores_the_servers_new_password_and_keeps_the_old_one() {
    let env = env_with_trunk();
    env.store(ENTRY, "Old-Telepath-Pass-1");
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK, "--json"], None);
    run.assert_code(0);
    let json = run.json();
    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_ne!(live, "Old-Telepath-Pass-1");
    assert_eq!(env.lookup(ENTRY).as_deref(), Some(live.as_str()));
    assert_eq!(
        env.lookup(&format!("{ENTRY}#previous")).as_deref(),
        Some("Old-Telepath-Pass-1")
    );
    assert_eq!(json["provider"], "telepath");
    assert_eq!(json["credential"], TRUNK);
    assert_eq!(json["username"], "agent-prod-01");
    assert_eq!(json["keyring_entry"], ENTRY);
    assert_eq!(json["status"], "rotated");
    assert_eq!(json["keyring_writes"], 2);
    assert!(json["rotated_at"].as_str().unwrap().contains('T'));
    assert!(json.get("password").is_none());

    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].path,
        "/telepath/v1/trunks/conn_abc123xyz/rotate-password"
    );
    let auth = requests[0].headers.get("authorization").unwrap();
    assert_eq!(
        auth,
        &format!("Bearer {}", env.fake.config().telepath_api_key)
    );

    let audit = env.audit_lines();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["provider"], "telepath");
    assert_eq!(audit[0]["entry"], ENTRY);
    assert_eq!(audit[0]["outcome"], "rotated");
}

#[test]
fn first_rotation_proves_the_keyring_with_a_probe_it_removes() {
    let env = env_with_trunk();
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK, "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["keyring_writes"], 3);
    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_eq!(env.lookup(ENTRY).as_deref(), Some(live.as_str()));
    assert_eq!(env.lookup(&format!("{ENTRY}#probe")), None);
    assert_eq!(env.lookup(&format!("{ENTRY}#previous")), None);
}

#[test]
fn human_output_names_the_entry_and_hides_the_password() {
    let env = env_with_trunk();
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("rotated telepath credential conn_abc123xyz")
    );
    assert!(run.stdout.contains(ENTRY));
    assert!(
        run.stdout
            .contains("siprot secret get --provider telepath conn_abc123xyz")
    );
}

#[test]
fn show_password_is_the_only_way_the_password_reaches_stdout() {
    let env = env_with_trunk();
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "telepath",
            TRUNK,
            "--json",
            "--show-password",
        ],
        None,
    );
    run.assert_code(0);
    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_eq!(run.json()["password"], live.as_str());
    assert!(!run.stderr.contains(&live));
}

#[test]
fn unknown_trunk_is_exit_6_and_leaves_the_keyring_as_it_was() {
    let env = env_with_trunk();
    env.store("telepath/conn_missing", "Kept-Password-9");
    let run = env.run(&["rotate", "--provider", "telepath", "conn_missing"], None);
    run.assert_code(6).assert_one_line_error("not found");
    assert!(run.stderr.contains("Trunk 'conn_missing' not found"));
    assert_eq!(
        env.lookup("telepath/conn_missing").as_deref(),
        Some("Kept-Password-9")
    );
    assert_eq!(env.audit_lines()[0]["outcome"], "failed");
}

#[test]
fn a_wrong_api_key_is_exit_5() {
    let mut env = env_with_trunk();
    env.set_env("TELEPATH_API_KEY", "sk_live_wrong_key_123");
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(5)
        .assert_one_line_error("rejected the API credentials");
    assert_eq!(
        env.fake.telepath_password(TRUNK).unwrap(),
        "Old-Telepath-Pass-1"
    );
}

#[test]
fn a_missing_api_key_is_exit_4_naming_the_variable() {
    let mut env = env_with_trunk();
    env.remove_env("TELEPATH_API_KEY");
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(4).assert_one_line_error("TELEPATH_API_KEY");
    assert!(env.fake.requests().is_empty());
}

#[test]
fn client_side_password_options_are_usage_errors() {
    let env = env_with_trunk();
    env.run(
        &[
            "rotate",
            "--provider",
            "telepath",
            TRUNK,
            "--password-stdin",
        ],
        Some(b"Abcdefgh-12345678\n"),
    )
    .assert_code(2)
    .assert_one_line_error("generates passwords on its server");
    env.run(
        &["rotate", "--provider", "telepath", TRUNK, "--length", "30"],
        None,
    )
    .assert_code(2);
    assert!(env.fake.requests().is_empty());
}

#[test]
fn dry_run_checks_the_keyring_and_sends_nothing() {
    let env = env_with_trunk();
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "telepath",
            TRUNK,
            "--dry-run",
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["status"], "dry-run");
    assert!(
        json["plan"][1]
            .as_str()
            .unwrap()
            .starts_with("POST http://")
    );
    assert!(env.fake.requests().is_empty());
    assert_eq!(env.lookup(ENTRY), None);
    assert!(env.audit_lines().is_empty());
}

#[test]
fn an_unreachable_keyring_is_exit_8_and_nothing_is_sent() {
    let mut env = env_with_trunk();
    env.set_env(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/siprot-bus",
    );
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(8)
        .assert_one_line_error("keyring unavailable");
    assert!(env.fake.requests().is_empty());
    assert_eq!(
        env.fake.telepath_password(TRUNK).unwrap(),
        "Old-Telepath-Pass-1"
    );
}

#[test]
fn a_response_without_the_password_is_exit_9_with_advice() {
    let env = env_with_trunk();
    env.store(ENTRY, "Old-Telepath-Pass-1");
    env.fake.push_fault(
        FakeProvider::Telepath,
        Fault::CommitThenBody("{\"id\":\"conn_abc123xyz\"}".into()),
    );
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(9)
        .assert_one_line_error("missing field `sip_password`");
    assert!(run.stderr.contains("run the same command again"));
    assert_eq!(
        env.lookup(&format!("{ENTRY}#previous")).as_deref(),
        Some("Old-Telepath-Pass-1")
    );
    // The advice works: a second run gets a known password.
    env.run(&["rotate", "--provider", "telepath", TRUNK], None)
        .assert_code(0);
    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_eq!(env.lookup(ENTRY).as_deref(), Some(live.as_str()));
}

#[test]
fn a_server_error_after_commit_is_exit_9() {
    let env = env_with_trunk();
    env.fake
        .push_fault(FakeProvider::Telepath, Fault::CommitThenStatus(500));
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(9).assert_one_line_error("outcome unknown");
    assert_eq!(env.audit_lines()[0]["outcome"], "unconfirmed");
}

#[test]
fn rate_limiting_is_exit_7() {
    let env = env_with_trunk();
    env.fake.push_fault(
        FakeProvider::Telepath,
        Fault::RateLimited(Some("30".into())),
    );
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(7).assert_one_line_error("retry after 30");
    assert_eq!(
        env.fake.telepath_password(TRUNK).unwrap(),
        "Old-Telepath-Pass-1"
    );
}

#[test]
fn telepath_has_no_enable_or_disable() {
    let env = env_with_trunk();
    for op in ["enable", "disable"] {
        env.run(&[op, "--provider", "telepath", TRUNK], None)
            .assert_code(2)
            .assert_one_line_error(&format!("telepath does not support {op}"));
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_connection_reset_after_commit_is_exit_9_never_retried() {
    let env = env_with_trunk();
    env.store(ENTRY, "Old-Telepath-Pass-1");
    env.fake
        .push_fault(FakeProvider::Telepath, Fault::CommitThenDrop);
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(9).assert_one_line_error("outcome unknown");
    assert_eq!(
        env.fake.requests().len(),
        1,
        "a POST that may have landed is never resent"
    );
    assert_eq!(env.lookup(ENTRY).as_deref(), Some("Old-Telepath-Pass-1"));
    assert_eq!(
        env.lookup(&format!("{ENTRY}#previous")).as_deref(),
        Some("Old-Telepath-Pass-1")
    );
}

#[test]
fn a_timeout_after_sending_is_exit_9() {
    let env = env_with_trunk();
    env.fake.push_fault(
        FakeProvider::Telepath,
        Fault::Delay(std::time::Duration::from_secs(3)),
    );
    let run = env.run(
        &["rotate", "--provider", "telepath", TRUNK, "--timeout", "1"],
        None,
    );
    run.assert_code(9).assert_one_line_error("timeout");
    assert_eq!(env.fake.requests().len(), 1);
}

#[test]
fn a_refused_connection_is_exit_7_and_changes_nothing() {
    let mut env = env_with_trunk();
    env.store(ENTRY, "Old-Telepath-Pass-1");
    env.set_env("SIPROT_TELEPATH_BASE_URL", "http://127.0.0.1:9/telepath/v1");
    env.run(&["rotate", "--provider", "telepath", TRUNK], None)
        .assert_code(7)
        .assert_one_line_error("could not connect");
    assert_eq!(env.lookup(ENTRY).as_deref(), Some("Old-Telepath-Pass-1"));
}

#[test]
fn an_unknown_outcome_without_a_current_password_is_one_clean_line() {
    // No current password in the keyring: the first rotation of this trunk.
    let env = env_with_trunk();
    env.fake
        .push_fault(FakeProvider::Telepath, Fault::CommitThenStatus(500));
    let run = env.run(&["rotate", "--provider", "telepath", TRUNK], None);
    run.assert_code(9)
        .assert_one_line_error("receiving it; run the same command again");
    assert!(!run.stderr.contains("  "), "a double space: {}", run.stderr);
    assert!(!run.stderr.contains("#previous"), "{}", run.stderr);
}
