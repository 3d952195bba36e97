use crate::support::TestEnv;

#[test]
fn generated_passwords_pass_their_providers_policy() {
    let env = TestEnv::without_keyring();
    for provider in ["exotel", "vobiz", "telepath"] {
        let run = env.run(&["generate", "--provider", provider], None);
        run.assert_code(0);
        let password = run.stdout.strip_suffix('\n').unwrap().to_owned();
        assert_eq!(password.chars().count(), 24);
        env.remember_secret(&password);
        let check = env.run(
            &["check-password", "--provider", provider, "--json"],
            Some(password.as_bytes()),
        );
        check.assert_code(0);
        assert!(check.json()["warnings"].as_array().unwrap().is_empty());
    }
}

#[test]
fn length_is_honoured_and_bounded() {
    let env = TestEnv::without_keyring();
    let run = env.run(
        &["generate", "--provider", "exotel", "--length", "40"],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.stdout.trim_end().chars().count(), 40);
    env.run(&["generate", "--provider", "exotel", "--length", "4"], None)
        .assert_code(2)
        .assert_one_line_error("minimum");
}
