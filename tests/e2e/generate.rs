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

#[test]
fn generate_json_carries_the_password_its_length_and_policy() {
    let env = TestEnv::without_keyring();
    for (args, policy, length) in [
        (&["generate", "--json"][..], "generic", 24),
        (
            &[
                "generate",
                "--provider",
                "vobiz",
                "--length",
                "30",
                "--json",
            ],
            "vobiz",
            30,
        ),
    ] {
        let run = env.run(args, None);
        run.assert_code(0);
        assert_eq!(run.stderr, "");
        assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
        let json = run.json();
        let password = json["password"].as_str().expect("a password").to_owned();
        env.remember_secret(&password);
        assert_eq!(password.chars().count(), length);
        assert_eq!(json["length"], length);
        assert_eq!(json["policy"], policy);
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), 3, "{json}");
        // No provider's API key comes along with it.
        for secret in env.known_secrets() {
            if secret != password {
                assert!(!run.stdout.contains(&secret), "{}", run.stdout);
            }
        }
    }
    // A failure is the usual JSON error object.
    let run = env.run(
        &[
            "generate",
            "--provider",
            "exotel",
            "--length",
            "4",
            "--json",
        ],
        None,
    );
    run.assert_code(2).assert_one_line_error("minimum");
    assert_eq!(run.json()["status"], "error");
}
