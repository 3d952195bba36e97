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
            if let Some((flag, _, value)) = target.part() {
                args.extend([flag, value]);
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

/// Issue 23 item 6: `config show` shows a base URL that every command refuses as refused,
/// with why, and without its user info, query or fragment (which may hold a key).
#[test]
fn config_show_shows_a_refused_base_url_without_its_secret_parts() {
    let mut env = TestEnv::without_keyring();
    let url = "https://user:url-SECRET-1@api.example.com/v1?key=url-SECRET-2#url-SECRET-3";
    for secret in ["url-SECRET-1", "url-SECRET-2", "url-SECRET-3"] {
        env.remember_secret(secret);
    }
    env.set_env("SIPROT_TELEPATH_BASE_URL", url);
    let run = env.run(&["config", "show", "--provider", "telepath"], None);
    run.assert_code(0);
    let line = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("base_url"))
        .unwrap_or_else(|| panic!("no base_url line: {}", run.stdout));
    assert!(
        line.contains("https://***@api.example.com/v1?***#***")
            && line.contains("(refused: must not contain user info"),
        "{line}"
    );
    assert!(!run.stdout.contains("SECRET"), "{}", run.stdout);

    let json = env
        .run(
            &["config", "show", "--provider", "telepath", "--json"],
            None,
        )
        .json();
    let settings = json["providers"][0]["settings"].as_array().unwrap().clone();
    let base = settings.iter().find(|s| s["key"] == "base_url").unwrap();
    assert_eq!(base["value"], "https://***@api.example.com/v1?***#***");
    assert_eq!(base["source"], "environment");
    assert!(base["refused"].as_str().unwrap().contains("user info"));
    assert!(!json.to_string().contains("SECRET"), "{json}");

    // A query alone is refused the same way; a good URL is shown as it is.
    env.set_env(
        "SIPROT_TELEPATH_BASE_URL",
        "https://api.example.com/v1?key=url-SECRET-2",
    );
    let run = env.run(&["config", "show", "--provider", "telepath"], None);
    assert!(
        run.stdout
            .contains("https://api.example.com/v1?*** (refused: must not contain a query"),
        "{}",
        run.stdout
    );
    env.set_env("SIPROT_TELEPATH_BASE_URL", "https://api.example.com/v1");
    let run = env.run(&["config", "show", "--provider", "telepath"], None);
    assert!(
        run.stdout.contains("https://api.example.com/v1\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("refused"), "{}", run.stdout);
}

/// Issue 23 item 11: an inventory's `vault_mount`/`secret_prefix` with the keyring store
/// is exit 2, as the flags are, nothing sent; a flag or variable that overrides the
/// inventory's `store` is warned about, naming both.
#[test]
fn an_inventorys_vault_settings_with_the_keyring_store_are_exit_2_and_an_overridden_store_is_warned_about()
 {
    let mut env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    let entry = format!(
        "\n[[credential]]\nprovider = \"telepath\"\nid = \"{}\"\n",
        target.id
    );
    let write = |name: &str, head: &str| {
        let path = env.state.path().join(name);
        std::fs::write(&path, format!("{head}{entry}")).unwrap();
        path.display().to_string()
    };
    let mount = write("mount.toml", "vault_mount = \"team/kv\"\n");
    let prefix = write(
        "prefix.toml",
        "store = \"vault\"\nsecret_prefix = \"fleet/\"\n",
    );
    let vault = write("vault.toml", "store = \"vault\"\n");
    let keyring = write("keyring.toml", "store = \"keyring\"\n");

    for command in ["rotate", "status"] {
        env.run(&[command, "--inventory", &mount], None)
            .assert_code(2)
            .assert_one_line_error(&format!(
                "{mount} sets vault_mount, which is for the vault store, but the store is keyring"
            ));
        env.run(
            &[command, "--inventory", &prefix, "--store", "keyring"],
            None,
        )
        .assert_code(2)
        .assert_one_line_error(&format!(
            "{prefix} sets secret_prefix, which is for the vault store, but the store is \
                 keyring (--store keyring overrides its store = \"vault\")"
        ));
    }
    assert!(env.fake.requests().is_empty());

    // --store overriding the inventory's store: warned once, then used.
    let run = env.run(
        &["rotate", "--inventory", &vault, "--store", "keyring"],
        None,
    );
    run.assert_code(0);
    let warning = format!(
        "siprot: warning: --store keyring overrides store = \"vault\" of the inventory {vault}"
    );
    assert_eq!(
        run.stderr.lines().filter(|l| *l == warning).count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        env.lookup(&target.entry(&env)),
        Some(target.live(&env)),
        "rotated into the keyring"
    );
    // SIPROT_STORE the same way (here the vault store, which is not set up: exit 4).
    env.set_env("SIPROT_STORE", "vault");
    let run = env.run(&["status", "--inventory", &keyring], None);
    assert!(
        run.stderr.contains(&format!(
            "siprot: warning: SIPROT_STORE vault overrides store = \"keyring\" of the inventory {keyring}"
        )),
        "{}",
        run.stderr
    );
    // No warning when nothing is overridden.
    let run = env.run(&["status", "--inventory", &vault], None);
    assert!(!run.stderr.contains("overrides"), "{}", run.stderr);
}
