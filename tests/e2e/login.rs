//! `siprot login`/`logout`, profiles of the config file and `siprot config show`: API keys
//! kept in the real keyring instead of the environment, several accounts per provider, a
//! config file holding a secret refused.

use siprot::providers::{LoginSecrets, ProviderKind};

use crate::support::{Target, TestEnv};

/// The secret variables of `target`'s provider, in the order `login --with-token` reads
/// them, with the values the fake accepts.
fn secrets(env: &TestEnv, target: &Target) -> Vec<(&'static str, String)> {
    let registration = ProviderKind::from_name(target.name)
        .expect("every target is a registered provider")
        .registration();
    // The fake's environment configures no optional setting that would choose another
    // secret (Twilio's API key SID): the secret kept without it.
    let kept = |key: &str| match registration.login {
        LoginSecrets::All => true,
        LoginSecrets::OneOf { otherwise, .. } => key == otherwise,
    };
    let order = registration
        .settings
        .iter()
        .filter(|spec| spec.secret && kept(spec.key))
        .map(|spec| spec.var);
    let all = env.fake.environment(env.addr);
    order
        .map(|var| {
            let value = all
                .iter()
                .find(|(name, _)| *name == var)
                .map(|(_, value)| value.clone())
                .expect("the fake sets it");
            (var, value)
        })
        .collect()
}

/// `siprot login --provider P --with-token` with the fake's secrets on standard input,
/// after removing them from the environment.
fn login(env: &mut TestEnv, target: &Target, extra: &[&str]) -> crate::support::Run {
    let secrets = secrets(env, target);
    for (var, _) in &secrets {
        env.remove_env(var);
    }
    let input: String = secrets.iter().map(|(_, v)| format!("{v}\n")).collect();
    let mut args = vec!["login", "--provider", target.name, "--with-token"];
    args.extend_from_slice(extra);
    env.run(&args, Some(input.as_bytes()))
}

fn write_config(env: &mut TestEnv, text: &str) -> std::path::PathBuf {
    let path = env
        .state
        .path()
        .join("config")
        .join("siprot")
        .join("config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    env.set_env(
        "XDG_CONFIG_HOME",
        &env.state.path().join("config").display().to_string(),
    );
    path
}

#[test]
fn login_through_standard_input_lets_every_provider_rotate_without_a_key_in_the_environment() {
    for target in Target::ALL {
        let mut env = target.seeded();
        let run = login(&mut env, &target, &[]);
        run.assert_code(0);
        assert!(run.stdout.contains("not checked"), "{}", run.stdout);
        for (var, value) in secrets(&env, &target) {
            let key = var.split_once('_').unwrap().1.to_ascii_lowercase();
            let entry = format!("login/{}/default/{key}", target.name);
            assert_eq!(
                env.lookup(&entry).as_deref(),
                Some(value.as_str()),
                "{entry}"
            );
            assert!(run.stdout.contains(&entry), "{}", run.stdout);
        }
        // Nothing was sent by login itself: the providers' APIs have no read-only request.
        assert!(env.fake.requests().is_empty());

        let run = target.rotate(&env, &[]);
        run.assert_code(0);
        target.assert_consistent(&env);
        // One update (plivo then reads its SIP username back with a GET).
        let sent = env.fake.requests();
        assert_eq!(sent.iter().filter(|r| r.method != "GET").count(), 1);

        let run = env.run(&["logout", "--provider", target.name, "--json"], None);
        run.assert_code(0);
        assert_eq!(run.json()["status"], "removed");
        for (var, _) in secrets(&env, &target) {
            let key = var.split_once('_').unwrap().1.to_ascii_lowercase();
            assert!(
                env.lookup(&format!("login/{}/default/{key}", target.name))
                    .is_none()
            );
        }
        let first_secret = &secrets(&env, &target)[0].0;
        let run = target.rotate(&env, &[]);
        run.assert_code(4)
            .assert_one_line_error(first_secret)
            .assert_one_line_error(&format!("siprot login --provider {}", target.name));
        assert_eq!(
            env.fake.requests().len(),
            sent.len(),
            "nothing sent without the key"
        );

        // Logging out twice is not an error.
        let run = env.run(&["logout", "--provider", target.name, "--json"], None);
        run.assert_code(0);
        assert_eq!(run.json()["status"], "nothing-stored");
        assert_eq!(run.json()["removed"].as_array().unwrap().len(), 0);
    }
}

#[test]
fn twilio_login_keeps_the_api_key_secret_when_an_api_key_is_configured() {
    let target = Target::TWILIO;
    let mut env = target.seeded();
    let config = env.fake.config().clone();
    env.remove_env("TWILIO_AUTH_TOKEN");
    env.set_env("TWILIO_API_KEY", &config.twilio_api_key);
    let login = ["login", "--provider", "twilio", "--with-token"];
    // One line only: the API key secret, not the Auth Token as well.
    let two = format!(
        "{}\n{}\n",
        config.twilio_api_secret, config.twilio_auth_token
    );
    env.run(&login, Some(two.as_bytes()))
        .assert_code(2)
        .assert_one_line_error("api_secret");
    let one = format!("{}\n", config.twilio_api_secret);
    let run = env.run(&login, Some(one.as_bytes()));
    run.assert_code(0);
    assert!(run.stdout.contains("twilio's api_secret"), "{}", run.stdout);
    assert_eq!(
        env.lookup("login/twilio/default/api_secret").as_deref(),
        Some(config.twilio_api_secret.as_str())
    );
    assert_eq!(env.lookup("login/twilio/default/auth_token"), None);

    target.rotate(&env, &[]).assert_code(0);
    target.assert_consistent(&env);
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        crate::support::sdk::Shape::of(&requests[0]).auth,
        crate::support::sdk::Auth::Basic(format!(
            "{}:{}",
            config.twilio_api_key, config.twilio_api_secret
        )),
        "the API key and its secret, from the store"
    );
}

#[test]
fn login_refuses_a_pipe_without_with_token_and_the_wrong_number_of_lines() {
    let env = TestEnv::start();
    let run = env.run(
        &["login", "--provider", "telepath"],
        Some(b"sk_live_piped_SECRET_1\n"),
    );
    run.assert_code(2).assert_one_line_error("--with-token");
    assert!(!run.stderr.contains("SECRET"));
    let run = env.run(
        &["login", "--provider", "exotel", "--with-token"],
        Some(b"only_one_SECRET_line\n"),
    );
    run.assert_code(2)
        .assert_one_line_error("reads 2 line(s) from standard input");
    assert!(!run.stderr.contains("SECRET"));
    assert!(env.lookup("login/telepath/default/api_key").is_none());
    assert!(env.lookup("login/exotel/default/api_key").is_none());
}

#[test]
fn the_environment_wins_over_the_login_and_login_says_so() {
    let mut env = Target::TELEPATH.seeded();
    let key = secrets(&env, &Target::TELEPATH)[0].1.clone();
    let run = env.run(
        &["login", "--provider", "telepath", "--with-token"],
        Some(b"sk_live_wrong_key_98765\n"),
    );
    env.remember_secret("sk_live_wrong_key_98765");
    run.assert_code(0);
    assert!(
        run.stderr
            .contains("TELEPATH_API_KEY is set in the environment and wins"),
        "{}",
        run.stderr
    );
    // The environment's (right) key is used, not the stored wrong one.
    Target::TELEPATH.rotate(&env, &[]).assert_code(0);
    let shown = env.run(
        &["config", "show", "--provider", "telepath", "--json"],
        None,
    );
    shown.assert_code(0);
    let api_key = &shown.json()["providers"][0]["settings"][0];
    assert_eq!(api_key["key"], "api_key");
    assert_eq!(api_key["source"], "environment");
    assert!(api_key.get("value").is_none());
    assert!(!shown.stdout.contains(&key));
    // Without the variable the stored (wrong) key is used, and refused by the provider.
    env.remove_env("TELEPATH_API_KEY");
    Target::TELEPATH.rotate(&env, &[]).assert_code(5);
}

#[test]
fn profiles_hold_several_accounts_per_provider_and_their_keys_are_kept_apart() {
    let mut env = Target::VOBIZ.seeded();
    let auth_id = env
        .fake
        .environment(env.addr)
        .into_iter()
        .find(|(var, _)| *var == "VOBIZ_AUTH_ID")
        .unwrap()
        .1;
    env.remove_env("VOBIZ_AUTH_ID");
    write_config(
        &mut env,
        &format!(
            "# two Vobiz accounts\n[vobiz.main]\nauth_id = \"{auth_id}\"\n\n\
             [vobiz.reseller]\nauth_id = \"MA_RESELLER9\"\n\n\
             [exotel.mumbai]\naccount_sid = \"acme_in\"\nregion = \"mumbai\"\n"
        ),
    );
    login(&mut env, &Target::VOBIZ, &["--profile", "main"]).assert_code(0);
    assert!(env.lookup("login/vobiz/main/auth_token").is_some());
    assert!(env.lookup("login/vobiz/default/auth_token").is_none());

    // The default profile has no Auth ID: nothing is sent, and the message says where
    // it could come from.
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(4)
        .assert_one_line_error("VOBIZ_AUTH_ID is not set")
        .assert_one_line_error("[vobiz.default]");
    // --profile main: the Auth ID from the file, the token from the keyring.
    let run = Target::VOBIZ.rotate(&env, &["--profile", "main"]);
    run.assert_code(0);
    Target::VOBIZ.assert_consistent(&env);
    // SIPROT_PROFILE picks the other account: its own entry names, and no token kept.
    env.set_env("SIPROT_PROFILE", "reseller");
    let run = Target::VOBIZ.rotate(&env, &["--dry-run", "--json"]);
    run.assert_code(4)
        .assert_one_line_error("siprot login --provider vobiz --profile reseller");
    let run = env.run(&["config", "show", "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["profile"], "reseller");
    let vobiz = json["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["provider"] == "vobiz")
        .unwrap()
        .clone();
    assert_eq!(vobiz["profiles"], serde_json::json!(["main", "reseller"]));
    let setting = |key: &str| {
        vobiz["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(setting("auth_id")["source"], "profile");
    assert_eq!(setting("auth_id")["value"], "MA_RESELLER9");
    assert_eq!(setting("auth_token")["source"], "missing");
    assert_eq!(setting("base_url")["source"], "environment");
    // With --profile main, the token comes from the keyring, never shown.
    let run = env.run(
        &["config", "show", "--provider", "vobiz", "--profile", "main"],
        None,
    );
    run.assert_code(0);
    assert!(
        run.stdout.lines().any(|l| l.contains("auth_token")
            && l.contains("keyring")
            && l.contains("(secret, set)")),
        "{}",
        run.stdout
    );

    // An inventory entry names its profile.
    let inventory = env.state.path().join("fleet.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[credential]]\nprovider = \"vobiz\"\nid = \"{}\"\nprofile = \"main\"\n",
            Target::VOBIZ.id
        ),
    )
    .unwrap();
    env.remove_env("SIPROT_PROFILE");
    let run = env.run(
        &[
            "rotate",
            "--inventory",
            &inventory.display().to_string(),
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    Target::VOBIZ.assert_consistent(&env);
    assert_eq!(env.fake.requests().len(), 2);
}

#[test]
fn a_config_file_holding_a_secret_is_refused_naming_each_line_and_never_the_secret() {
    let mut env = Target::TELEPATH.seeded();
    let path = write_config(
        &mut env,
        "[telepath.default]\napi_key = \"sk_live_in_FILE_secret1\"\n\
         [exotel.sg]\naccount_sid = \"x\"\napi_token = \"tok_in_FILE_secret2\"\n\
         [vobiz.main]\nauth_id = \"MA_1\"\nauth_token = \"tok_in_FILE_secret3\"\n",
    );
    for args in [Target::TELEPATH.rotate_args(&[]), vec!["config", "show"]] {
        let run = env.run(&args, None);
        run.assert_code(4)
            .assert_one_line_error(&format!(
                "{}:2: [telepath.default] api_key is a secret",
                path.display()
            ))
            .assert_one_line_error(":5: [exotel.sg] api_token is a secret")
            .assert_one_line_error(":8: [vobiz.main] auth_token is a secret")
            .assert_one_line_error("siprot login --provider exotel --profile sg");
        assert!(!run.stderr.contains("FILE_secret"), "{}", run.stderr);
    }
    assert!(env.fake.requests().is_empty());
    let run = env.run(&["doctor", "--json"], None);
    run.assert_code(4);
    let checks = run.json()["checks"].as_array().unwrap().clone();
    let config = checks.iter().find(|c| c["name"] == "config file").unwrap();
    assert_eq!(config["status"], "fail");
    assert!(!run.stdout.contains("FILE_secret"));
}

#[test]
fn doctor_and_config_show_say_where_each_setting_comes_from() {
    let mut env = Target::EXOTEL.seeded();
    login(&mut env, &Target::EXOTEL, &[]).assert_code(0);
    let run = env.run(&["doctor", "--json"], None);
    let checks = run.json()["checks"].as_array().unwrap().clone();
    let exotel = checks
        .iter()
        .find(|c| c["name"] == "provider exotel")
        .unwrap();
    assert_eq!(exotel["status"], "ok", "{exotel}");
    let detail = exotel["detail"].as_str().unwrap();
    for part in [
        "api_key (keyring)",
        "api_token (keyring)",
        "EXOTEL_ACCOUNT_SID (environment)",
    ] {
        assert!(detail.contains(part), "{part} in {detail}");
    }
    let run = env.run(&["config", "show", "--provider", "exotel"], None);
    run.assert_code(0);
    let flagged = env.run(
        &[
            "config",
            "show",
            "-p",
            "exotel",
            "--base-url",
            "https://ex.example/v2",
            "--json",
        ],
        None,
    );
    let base = flagged.json()["providers"][0]["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "base_url")
        .unwrap()
        .clone();
    assert_eq!(base["source"], "flag");
    assert_eq!(base["value"], "https://ex.example/v2");
    assert!(run.stdout.contains("region"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("region") && l.contains("default")),
        "{}",
        run.stdout
    );
}

#[test]
fn login_on_a_terminal_asks_for_each_secret_without_echo() {
    let mut env = Target::EXOTEL.seeded();
    let secrets = secrets(&env, &Target::EXOTEL);
    env.remove_env("EXOTEL_API_KEY");
    env.remove_env("EXOTEL_API_TOKEN");
    let key = format!("{}\n", secrets[0].1);
    let token = format!("{}\n", secrets[1].1);
    let (run, shown) = env.run_dialog(
        &["login", "--provider", "exotel", "--profile", "sg"],
        &[("api_key (", key.as_str()), ("api_token (", token.as_str())],
    );
    run.assert_code(0);
    assert!(shown.contains("exotel api_key ("), "{shown}");
    assert!(shown.contains("exotel api_token ("), "{shown}");
    for (_, secret) in &secrets {
        assert!(
            !shown.contains(secret.as_str()),
            "echoed on the terminal: {shown}"
        );
    }
    assert_eq!(
        env.lookup("login/exotel/sg/api_token").as_deref(),
        Some(secrets[1].1.as_str())
    );
    // The login is used: a rotation with --profile sg needs no key in the environment.
    Target::EXOTEL
        .rotate(&env, &["--profile", "sg"])
        .assert_code(0);
    Target::EXOTEL.assert_consistent(&env);
}

#[test]
fn a_variable_overriding_a_named_profile_is_warned_about_once_per_command() {
    let mut env = Target::VOBIZ.seeded();
    write_config(&mut env, "[vobiz.main]\nauth_id = \"MA_FROM_FILE\"\n");
    let inventory = env.state.path().join("fleet.toml");
    let entry = |id: &str| {
        format!("[[credential]]\nprovider = \"vobiz\"\nid = \"{id}\"\nprofile = \"main\"\n")
    };
    std::fs::write(
        &inventory,
        [
            entry(Target::VOBIZ.id),
            entry("cred-other-0002"),
            entry("cred-other-0003"),
        ]
        .concat(),
    )
    .unwrap();
    let inventory = inventory.display().to_string();
    for args in [
        vec!["rotate", "--inventory", &inventory, "--dry-run", "--json"],
        vec!["status", "--inventory", &inventory],
    ] {
        let run = env.run(&args, None);
        let warned = run
            .stderr
            .matches("VOBIZ_AUTH_ID from the environment overrides auth_id of profile vobiz.main")
            .count();
        assert_eq!(warned, 1, "{args:?}: {}", run.stderr);
    }
}
