use crate::support::{EXOTEL_SID, Target, TestEnv};

#[test]
fn unsafe_base_urls_are_exit_4() {
    let mut env = TestEnv::without_keyring();
    let unsafe_urls = [
        "http://api.telepathvoice.com/v1",
        "http://10.0.0.7/v1",
        "https://user:secret-in-url@api.telepathvoice.com/v1",
        "https://:secret-in-url@api.telepathvoice.com/v1",
        "ftp://api.telepathvoice.com/v1",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://api.telepathvoice.com/v1?key=secret-in-url",
        "https://api.telepathvoice.com/v1#frag",
        "not a url",
    ];
    for url in unsafe_urls {
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
        assert!(!run.stderr.contains("secret-in-url"), "{}", run.stderr);
    }
    // The same rules for the environment variables, at every provider.
    for (var, target) in [
        ("SIPROT_EXOTEL_BASE_URL", Target::EXOTEL),
        ("SIPROT_VOBIZ_BASE_URL", Target::VOBIZ),
    ] {
        for url in unsafe_urls {
            env.set_env(var, url);
            let run = target.rotate(&env, &[]);
            run.assert_code(4).assert_one_line_error(var);
            assert!(!run.stderr.contains("secret-in-url"), "{}", run.stderr);
        }
        env.remove_env(var);
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn ids_that_would_escape_their_path_segment_are_refused_with_exit_2() {
    let env = TestEnv::without_keyring();
    let long = "x".repeat(10 * 1024);
    let hostile = [
        "a/b",
        "/etc",
        "..",
        ".",
        "a#b",
        "a b",
        " lead",
        "tab\there",
        "bell\u{7}",
        "new\nline",
        "esc\u{1b}[31m",
        "nbsp\u{a0}x",
        "",
        long.as_str(),
    ];
    for id in hostile {
        for target in Target::ALL {
            let mut args = vec!["rotate", "--provider", target.name, id];
            if let Some(device) = target.device {
                args.extend(["--device", device]);
            }
            let run = env.run(&args, None);
            run.assert_code(2)
                .assert_one_line_error("invalid credential id");
            assert!(run.stderr.len() < 400, "the error does not echo a 10 kB id");
        }
        // Exotel's device id obeys the same rules.
        env.run(
            &["rotate", "--provider", "exotel", "user-1", "--device", id],
            None,
        )
        .assert_code(2)
        .assert_one_line_error("invalid device id");
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn other_ids_are_sent_as_one_encoded_segment() {
    let env = TestEnv::start();
    let cases = [
        ("a%2Fb?x", "a%252Fb%3Fx"),
        ("%2e%2e", "%252e%252e"),
        ("q?x=1&y=2", "q%3Fx=1&y=2"),
        ("trünk-ü", "tr%C3%BCnk-%C3%BC"),
        ("电话", "%E7%94%B5%E8%AF%9D"),
        ("a\\b", "a%5Cb"),
        ("...", "..."),
    ];
    for (id, encoded) in cases {
        let before = env.fake.requests().len();
        let run = env.run(&["rotate", "--provider", "telepath", id], None);
        run.assert_code(6);
        let requests = env.fake.requests();
        assert_eq!(requests.len(), before + 1, "{id}");
        assert_eq!(
            requests[before].path,
            format!("/telepath/v1/trunks/{encoded}/rotate-password"),
            "{id}"
        );
    }
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "exotel",
            "u?1",
            "--device",
            "d%2F..",
            "--retries",
            "0",
        ],
        None,
    );
    run.assert_code(6);
    let requests = env.fake.requests();
    assert_eq!(
        requests.last().unwrap().path,
        format!("/exotel/v2/accounts/{EXOTEL_SID}/users/u%3F1/devices/d%252F../password")
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
    let env = TestEnv::without_keyring();
    let run = env.run(&["--help"], None);
    run.assert_code(0);
    assert!(run.stdout.contains("8 keyring unusable"));
    let run = env.run(&["rotate", "--help"], None);
    assert!(
        run.stdout
            .contains("siprot rotate --provider telepath conn_abc123xyz")
    );
}

#[test]
fn a_keyring_service_with_control_characters_is_exit_4_and_nothing_is_sent() {
    let mut env = TestEnv::start();
    Target::VOBIZ.seed(&env);
    for service in [
        "siprot\nforged line",
        "siprot\r",
        "si\tprot",
        "siprot\u{1b}[31m",
        "siprot\u{7f}",
        "siprot\u{85}",
    ] {
        env.set_env("SIPROT_KEYRING_SERVICE", service);
        Target::VOBIZ
            .rotate(&env, &[])
            .assert_code(4)
            .assert_one_line_error("SIPROT_KEYRING_SERVICE contains a control character");
        env.run(
            &["secret", "get", "--provider", "vobiz", Target::VOBIZ.id],
            None,
        )
        .assert_code(4);
    }
    assert!(env.fake.requests().is_empty());
    assert_eq!(Target::VOBIZ.live(&env), Target::VOBIZ.initial);
}

#[test]
fn a_keyring_free_environment_reaches_no_keyring() {
    // What lets the keyring-free tests run under a plain `cargo test`, and makes one that
    // touches a keyring fail instead: siprot's runs get no usable session bus.
    let env = TestEnv::without_keyring();
    env.run(
        &["secret", "get", "--provider", "telepath", "conn_no_keyring"],
        None,
    )
    .assert_code(8)
    .assert_one_line_error("keyring");
}
