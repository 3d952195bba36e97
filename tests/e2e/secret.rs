use crate::support::TestEnv;

#[test]
fn secret_get_prints_exactly_the_stored_password() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_s1", "u1", "Old-Pass-For-S1");
    env.run(&["rotate", "--provider", "telepath", "conn_s1"], None)
        .assert_code(0);
    let live = env.fake.telepath_password("conn_s1").unwrap();
    let run = env.run(
        &["secret", "get", "--provider", "telepath", "conn_s1"],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{live}\n"));
    assert!(run.stderr.is_empty());
}

#[test]
fn secret_get_reads_what_other_tools_stored_and_the_previous_slot() {
    let mut env = TestEnv::start();
    env.set_env("VOBIZ_AUTH_ID", "MA_TEST_AUTH");
    env.store("vobiz/MA_TEST_AUTH/cred-9", "Stored-By-Hand-1");
    env.store("vobiz/MA_TEST_AUTH/cred-9#previous", "Stored-By-Hand-0");
    let run = env.run(&["secret", "get", "--provider", "vobiz", "cred-9"], None);
    assert_eq!(run.stdout, "Stored-By-Hand-1\n");
    let run = env.run(
        &[
            "secret",
            "get",
            "--provider",
            "vobiz",
            "cred-9",
            "--previous",
        ],
        None,
    );
    assert_eq!(run.stdout, "Stored-By-Hand-0\n");
}

#[test]
fn secret_get_json_carries_that_slots_password_and_no_other_secret() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_j1", "u1", "Old-Pass-For-J1");
    env.store("telepath/conn_j1", "Old-Pass-For-J1");
    env.run(&["rotate", "--provider", "telepath", "conn_j1"], None)
        .assert_code(0);
    let live = env.fake.telepath_password("conn_j1").unwrap();
    let others = |run: &crate::support::Run, shown: &str| {
        for secret in env.known_secrets() {
            if secret != shown {
                assert!(!run.stdout.contains(&secret), "{}", run.stdout);
            }
        }
    };
    let run = env.run(
        &[
            "secret",
            "get",
            "--provider",
            "telepath",
            "conn_j1",
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.stderr, "");
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let json = run.json();
    assert_eq!(json["password"], live.as_str());
    assert_eq!(json["provider"], "telepath");
    assert_eq!(json["credential"], "conn_j1");
    assert_eq!(json["slot"], "current");
    assert_eq!(json["store"], "keyring");
    assert_eq!(json["keyring_service"], env.service.as_str());
    assert_eq!(json["keyring_entry"], "telepath/conn_j1");
    assert!(json.get("device").is_none());
    others(&run, &live);
    let run = env.run(
        &[
            "secret",
            "get",
            "--provider",
            "telepath",
            "conn_j1",
            "--previous",
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["password"], "Old-Pass-For-J1");
    assert_eq!(json["slot"], "previous");
    assert_eq!(json["keyring_entry"], "telepath/conn_j1#previous");
    others(&run, "Old-Pass-For-J1");
    // A missing one is the JSON error object, and exit 6.
    let run = env.run(
        &[
            "secret",
            "get",
            "--provider",
            "telepath",
            "conn_none",
            "--json",
        ],
        None,
    );
    run.assert_code(6);
    assert_eq!(run.json()["status"], "error");
    assert_eq!(run.json()["exit_code"], 6);
}

#[test]
fn a_missing_secret_is_exit_6() {
    let env = TestEnv::start();
    env.run(
        &["secret", "get", "--provider", "telepath", "conn_none"],
        None,
    )
    .assert_code(6)
    .assert_one_line_error("no password stored");
}

#[test]
fn the_leak_checker_catches_secrets_where_they_do_not_belong() {
    use crate::support::Run;
    let env = TestEnv::start();
    env.remember_secret("Typed-Secret-77");
    let api_key = env.fake.config().telepath_api_key.clone();
    let clean = Run {
        code: 0,
        stdout: "rotated".into(),
        stderr: String::new(),
    };
    assert!(env.find_leak(&clean, false, &["rotate"]).is_ok());
    let on_stdout = Run {
        stdout: "password: Typed-Secret-77".into(),
        ..clean.clone()
    };
    assert!(env.find_leak(&on_stdout, false, &["rotate"]).is_err());
    assert!(env.find_leak(&on_stdout, true, &["rotate"]).is_ok());
    let key_on_stderr = Run {
        stderr: format!("siprot: error: bad key {api_key}"),
        ..clean.clone()
    };
    assert!(env.find_leak(&key_on_stderr, true, &["rotate"]).is_err());
    assert!(
        env.find_leak(&clean, false, &["x", "Typed-Secret-77"])
            .is_err()
    );
}
