use crate::support::{Run, TestEnv};

#[test]
fn a_weak_exotel_password_fails_with_each_rule_reported() {
    let env = TestEnv::without_keyring();
    env.remember_secret("abcdefg");
    let run = env.run(
        &["check-password", "--provider", "exotel", "--json"],
        Some(b"abcdefg\n"),
    );
    run.assert_code(3);
    let json = run.json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["provider"], "exotel");
    let rules = json["rules"].as_array().unwrap();
    let by_name = |name: &str| rules.iter().find(|r| r["rule"] == name).unwrap().clone();
    assert_eq!(by_name("min_length")["ok"], false);
    assert_eq!(by_name("character_classes")["ok"], false);
    assert_eq!(by_name("no_control_characters")["ok"], true);
    assert!(json["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn a_strong_password_passes_and_one_trailing_newline_is_ignored() {
    let env = TestEnv::without_keyring();
    env.remember_secret("Str0ng-Exotel");
    for input in [
        &b"Str0ng-Exotel"[..],
        b"Str0ng-Exotel\n",
        b"Str0ng-Exotel\r\n",
    ] {
        let run = env.run(
            &["check-password", "--provider", "exotel", "-"],
            Some(input),
        );
        run.assert_code(0);
        assert!(run.stdout.contains("pass  min_length"));
        assert!(run.stdout.contains("passes the exotel policy"));
    }
}

#[test]
fn vobiz_short_passwords_pass_with_warnings() {
    let env = TestEnv::without_keyring();
    env.remember_secret("lowercase");
    let run = env.run(
        &["check-password", "--provider", "vobiz", "--json"],
        Some(b"lowercase"),
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert!(json["warnings"].as_array().unwrap().len() >= 2);
}

#[test]
fn telepath_says_its_policy_is_generic() {
    let env = TestEnv::without_keyring();
    env.remember_secret("Short-1a");
    let run = env.run(
        &["check-password", "--provider", "telepath"],
        Some(b"Short-1a"),
    );
    run.assert_code(3);
    assert!(run.stdout.contains("generates passwords on its server"));
}

#[test]
fn nul_and_empty_input_fail_deliberately() {
    let env = TestEnv::without_keyring();
    env.remember_secret("Abcdef-12345\0x");
    env.run(
        &["check-password", "--provider", "exotel"],
        Some(b"Abcdef-12345\0x\n"),
    )
    .assert_code(3);
    env.run(&["check-password", "--provider", "exotel"], Some(b""))
        .assert_code(3);
}

#[test]
fn the_password_is_never_an_argument() {
    let env = TestEnv::without_keyring();
    let run = env.run(&["check-password", "Hunter2-password"], None);
    run.assert_code(2);
}

/// A password given as an argument (to check-password, generate or any command) is never
/// repeated on standard error or standard output: one error line, exit 2.
#[test]
fn a_password_given_as_an_argument_is_never_echoed() {
    let env = TestEnv::without_keyring();
    let password = "MyPass123!-argv";
    env.remember_secret(password);
    let cases: [(&[&str], &str); 5] = [
        (
            &["check-password", password],
            "check-password reads the password from standard input, never from the command line",
        ),
        (
            &["check-password", "--provider", "vobiz", "--json", password],
            "check-password reads the password from standard input, never from the command line",
        ),
        (
            &["check-password", "-", password],
            "check-password reads the password from standard input, never from the command line",
        ),
        (&["generate", password], "unexpected argument to generate"),
        (
            &["secret", "get", "--provider", "vobiz", "cred", password],
            "unexpected argument to secret get",
        ),
    ];
    for (args, expected) in cases {
        let output = env
            .command()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run siprot");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        run.assert_code(2).assert_one_line_error(expected);
        // The harness's leak check, without its argv check (the argument is the point).
        env.find_leak(&run, false, &[])
            .unwrap_or_else(|leak| panic!("{args:?}: {leak}"));
    }
}
