use crate::support::TestEnv;

#[test]
fn unsafe_base_urls_are_exit_4() {
    let env = TestEnv::start();
    for url in [
        "http://api.telepathvoice.com/v1",
        "https://user:secret-in-url@api.telepathvoice.com/v1",
        "ftp://api.telepathvoice.com/v1",
    ] {
        let run = env.run(
            &[
                "rotate",
                "--provider",
                "telepath",
                "conn_1",
                "--base-url",
                url,
            ],
            None,
        );
        run.assert_code(4).assert_one_line_error("--base-url");
        assert!(!run.stderr.contains("secret-in-url"));
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn ids_that_would_escape_their_path_segment_are_refused() {
    let env = TestEnv::start();
    for id in ["a/b", "..", ".", "a#b", "a b"] {
        env.run(&["rotate", "--provider", "telepath", id], None)
            .assert_code(2);
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn other_ids_are_sent_as_one_encoded_segment() {
    let env = TestEnv::start();
    let run = env.run(&["rotate", "--provider", "telepath", "a%2Fb?x"], None);
    run.assert_code(6);
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path,
        "/telepath/v1/trunks/a%252Fb%3Fx/rotate-password"
    );
}

#[test]
fn the_keyring_service_can_be_chosen() {
    let mut env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_svc", "u", "Old-Pass-Svc-1");
    let custom = format!("{}-custom", env.service);
    env.set_env("SIPROT_KEYRING_SERVICE", &custom);
    env.run(&["rotate", "--provider", "telepath", "conn_svc"], None)
        .assert_code(0);
    assert_eq!(env.lookup("telepath/conn_svc"), None);
    let live = env.fake.telepath_password("conn_svc").unwrap();
    env.service = custom;
    assert_eq!(
        env.lookup("telepath/conn_svc").as_deref(),
        Some(live.as_str())
    );
}

#[test]
fn help_teaches_the_exit_codes() {
    let env = TestEnv::start();
    let run = env.run(&["--help"], None);
    run.assert_code(0);
    assert!(run.stdout.contains("8 keyring unusable"));
    let run = env.run(&["rotate", "--help"], None);
    assert!(
        run.stdout
            .contains("siprot rotate --provider telepath conn_abc123xyz")
    );
}
