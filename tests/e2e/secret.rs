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
