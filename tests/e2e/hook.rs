//! The post-rotation hook (`rotate --exec`, an inventory's `exec`, `siprot exec`) end to
//! end: real `sh` hooks that record their argv, environment and standard input, fail,
//! hang with a sleeping child, or echo the password, run by the real `siprot` binary
//! against the fake providers, the keyring, and (for `SIPROT_STORE=vault`) OpenBao.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::openbao::{Bao, ROOT_TOKEN, unique_prefix};
use crate::support::{Run, Target, TestEnv};

/// A hook script that records, per provider, its argv (and its parent's), environment
/// and standard input under OUT, prints one line, and exits with CODE:
/// `record.sh OUT CODE`.
const RECORD: &str = r#"#!/bin/sh
out="$1"; p="${SIPROT_PROVIDER:-none}"
{ printf '%s\n' "$0" "$@"; tr '\0' '\n' < "/proc/$PPID/cmdline"; echo; } > "$out/$p.argv"
env > "$out/$p.env"
cat > "$out/$p.stdin"
echo "hook for $SIPROT_PROVIDER $SIPROT_CREDENTIAL"
exit "${2:-0}"
"#;

/// Writes `body` as an executable script `name` in the test's directory.
fn script(env: &TestEnv, name: &str, body: &str) -> PathBuf {
    let path = env.state.path().join(name);
    std::fs::write(&path, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// The directory the recording hook writes to, and the `--exec` command that records
/// there and exits `code`.
fn recorder(env: &TestEnv, code: i32) -> (PathBuf, String) {
    let out = env.state.path().join("hook-out");
    std::fs::create_dir_all(&out).unwrap();
    let record = script(env, "record.sh", RECORD);
    (
        out.clone(),
        format!("{} {} {code}", record.display(), out.display()),
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The hook's environment as recorded, `NAME=value` lines.
fn env_var<'a>(recorded: &'a str, name: &str) -> Option<&'a str> {
    recorded
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
}

/// No secret the test knows of (API keys, tokens, old and new passwords) is in the
/// hook's argv or environment, and no variable siprot reads a secret from is there.
#[track_caller]
fn assert_no_secret_in_argv_or_env(env: &TestEnv, out: &Path, provider: &str, live: &str) {
    let argv = read(&out.join(format!("{provider}.argv")));
    let environment = read(&out.join(format!("{provider}.env")));
    let mut secrets = env.known_secrets();
    secrets.push(live.to_owned());
    assert!(
        secrets.len() > 3,
        "the leak check knows the API keys: {secrets:?}"
    );
    for secret in &secrets {
        assert!(
            !argv.contains(secret),
            "a secret is in the hook's argv: {argv}"
        );
        assert!(
            !environment.contains(secret),
            "a secret is in the hook's environment"
        );
    }
    for var in [
        "TELEPATH_API_KEY",
        "EXOTEL_API_KEY",
        "EXOTEL_API_TOKEN",
        "VOBIZ_AUTH_TOKEN",
        "PLIVO_AUTH_TOKEN",
        "VAULT_TOKEN",
        "BAO_TOKEN",
    ] {
        assert_eq!(env_var(&environment, var), None, "{var} reached the hook");
    }
}

#[test]
fn every_provider_hands_the_hook_the_new_password_on_stdin_and_nowhere_else() {
    for target in Target::ALL {
        let mut env = target.seeded();
        // A token siprot's environment holds: the hook must not get it.
        env.set_env("VAULT_TOKEN", "hvs.not-for-the-hook-0123456789");
        let (out, exec) = recorder(&env, 0);
        let run = target.rotate(&env, &["--exec", &exec, "--json"]);
        run.assert_code(0);
        let live = target.live(&env);
        assert_ne!(live, target.initial);
        assert_eq!(
            read(&out.join(format!("{}.stdin", target.name))),
            format!("{live}\n"),
            "{}: the hook's stdin is the new password and a newline",
            target.name
        );
        assert_no_secret_in_argv_or_env(&env, &out, target.name, &live);
        let recorded = read(&out.join(format!("{}.env", target.name)));
        assert_eq!(env_var(&recorded, "SIPROT_PROVIDER"), Some(target.name));
        assert_eq!(env_var(&recorded, "SIPROT_CREDENTIAL"), Some(target.id));
        assert_eq!(
            env_var(&recorded, "SIPROT_DEVICE"),
            Some(target.device.unwrap_or(""))
        );
        assert_eq!(
            env_var(&recorded, "SIPROT_ENTRY"),
            Some(target.entry(&env).as_str())
        );
        assert_eq!(env_var(&recorded, "SIPROT_STORE"), Some("keyring"));
        let username = run.json()["username"].as_str().unwrap_or("").to_owned();
        assert_eq!(
            env_var(&recorded, "SIPROT_USERNAME"),
            Some(username.as_str())
        );
        // What a hook needs from siprot's environment is still there.
        assert!(env_var(&recorded, "PATH").is_some());

        let json = run.json();
        assert_eq!(json["hook"]["status"], "ok", "{json}");
        assert_eq!(json["hook"]["exit_code"], 0);
        assert_eq!(json["hook"]["timed_out"], false);
        assert_eq!(
            json["hook"]["output_tail"],
            format!("hook for {} {}", target.name, target.id)
        );
        assert!(json["hook"]["duration_ms"].is_u64());
        assert_eq!(json["exit_code"], 0);
        target.assert_consistent(&env);
        let audit = env.audit_lines();
        let hook = audit.last().unwrap();
        assert_eq!(hook["action"], "hook", "{audit:?}");
        assert_eq!(hook["outcome"], "ok");
        assert_eq!(hook["hook_exit_code"], 0);
        assert_eq!(hook["entry"], target.entry(&env));
        assert!(hook.get("output_tail").is_none());
        assert_eq!(audit[audit.len() - 2]["action"], "rotate");
    }
}

#[test]
fn human_output_shows_the_hooks_result_and_a_dry_run_only_plans_it() {
    let env = Target::VOBIZ.seeded();
    let (out, exec) = recorder(&env, 0);
    let run = Target::VOBIZ.rotate(&env, &["--exec", &exec, "--dry-run"]);
    run.assert_code(0);
    assert!(run.stdout.contains("run the hook `sh -c"), "{}", run.stdout);
    assert!(!out.join("vobiz.stdin").exists(), "a dry run ran the hook");
    let run = Target::VOBIZ.rotate(&env, &["--exec", &exec]);
    run.assert_code(0);
    assert!(run.stdout.contains("hook ok: exit 0"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  | hook for vobiz cred-target-0001"),
        "{}",
        run.stdout
    );
}

/// The words of the `siprot exec ...` command in `stderr`, split by a real shell.
fn rerun_words(stderr: &str) -> Vec<String> {
    let start = stderr.find("`siprot exec ").expect("a siprot exec command") + 8;
    let end = start + stderr[start..].find('`').expect("closing backtick");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {}", &stderr[start..end]))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_failing_hook_exits_11_keeps_the_secret_and_the_printed_siprot_exec_reruns_it() {
    for target in Target::ALL {
        let env = target.seeded();
        let (out, _) = recorder(&env, 0);
        // Fails until the file `fixed` exists, as a PBX that was down until fixed.
        let flaky = script(
            &env,
            "flaky hook.sh",
            &format!(
                "#!/bin/sh\ncat > '{0}/stdin'\n[ -e '{0}/fixed' ] || {{ echo 'pbx down' >&2; exit 3; }}\necho reloaded\n",
                out.display()
            ),
        );
        let exec = format!("'{}'", flaky.display());
        let run = target.rotate(&env, &["--exec", &exec]);
        run.assert_code(11);
        run.assert_one_line_error(
            "stored, but the hook failed (exit 3): run it again with `siprot exec --provider",
        );
        assert!(run.stdout.contains("hook failed: exit 3"), "{}", run.stdout);
        assert!(run.stdout.contains("  | pbx down"), "{}", run.stdout);
        let live = target.live(&env);
        assert_ne!(live, target.initial);
        target.assert_consistent(&env);
        let audit = env.audit_lines();
        assert_eq!(audit[audit.len() - 2]["outcome"], "rotated");
        let hook = audit.last().unwrap();
        assert_eq!(hook["action"], "hook");
        assert_eq!(hook["outcome"], "failed");
        assert_eq!(hook["hook_exit_code"], 3);
        assert_eq!(hook["exit_code"], 11);

        // The printed command, as the operator would paste it, once the PBX is back.
        std::fs::write(out.join("fixed"), "").unwrap();
        let words = rerun_words(&run.stderr);
        assert_eq!(words[..4], ["exec", "--provider", target.name, target.id]);
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let again = env.run(&args, None);
        again.assert_code(0);
        assert!(again.stdout.contains("hook ok: exit 0"), "{}", again.stdout);
        assert_eq!(read(&out.join("stdin")), format!("{live}\n"));
        assert_eq!(target.live(&env), live, "exec rotated nothing");
        let hook = env.audit_lines().last().cloned().unwrap();
        assert_eq!(hook["action"], "hook");
        assert_eq!(hook["outcome"], "ok");
    }
}

#[test]
fn siprot_exec_reports_json_needs_a_hook_and_a_stored_password() {
    let env = Target::TELEPATH.seeded();
    let (out, exec) = recorder(&env, 0);
    let t = Target::TELEPATH;
    let run = env.run(
        &[
            "exec",
            "--provider",
            t.name,
            t.id,
            "--exec",
            &exec,
            "--json",
        ],
        None,
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["hook"]["exit_code"], 0);
    assert_eq!(json["keyring_entry"], t.entry(&env));
    assert_eq!(json["exit_code"], 0);
    assert_eq!(
        read(&out.join("telepath.stdin")),
        format!("{}\n", t.initial)
    );
    assert_no_secret_in_argv_or_env(&env, &out, "telepath", t.initial);

    let (_, failing) = recorder(&env, 5);
    let run = env.run(
        &[
            "exec",
            "--provider",
            t.name,
            t.id,
            "--exec",
            &failing,
            "--json",
        ],
        None,
    );
    run.assert_code(11);
    assert_eq!(run.json()["hook"]["exit_code"], 5);

    env.run(&["exec", "--provider", t.name, t.id], None)
        .assert_code(2)
        .assert_one_line_error("--exec CMD, or --inventory PATH");
    env.run(
        &[
            "exec",
            "--provider",
            t.name,
            "conn_nothing_stored",
            "--exec",
            &exec,
        ],
        None,
    )
    .assert_code(6);
}

#[test]
fn a_hung_hook_and_its_sleeping_child_are_killed_at_the_exec_timeout() {
    let env = Target::EXOTEL.seeded();
    let out = env.state.path().join("hung");
    std::fs::create_dir_all(&out).unwrap();
    let hung = script(
        &env,
        "hung.sh",
        &format!(
            "#!/bin/sh\nsleep 300 &\necho $! > '{}/child'\necho started\nsleep 300\n",
            out.display()
        ),
    );
    let started = Instant::now();
    let run = Target::EXOTEL.rotate(
        &env,
        &[
            "--exec",
            hung.to_str().unwrap(),
            "--exec-timeout",
            "1",
            "--json",
        ],
    );
    let took = started.elapsed();
    run.assert_code(11);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let json = run.json();
    assert_eq!(json["hook"]["status"], "timed-out");
    assert_eq!(json["hook"]["timed_out"], true);
    assert_eq!(json["hook"]["exit_code"], serde_json::Value::Null);
    assert_eq!(json["hook"]["output_tail"], "started");
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    Target::EXOTEL.assert_consistent(&env);
    assert_eq!(env.audit_lines().last().unwrap()["outcome"], "timed-out");

    let child = read(&out.join("child")).trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for a reaper: either way no longer running.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        if stat.is_empty() || state == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hook's child {child} still runs: {stat}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_hook_that_echoes_the_password_does_not_leak_it_into_siprots_output() {
    for json in [true, false] {
        let env = Target::TELEPATH.seeded();
        let echo = script(
            &env,
            "echo.sh",
            "#!/bin/sh\nIFS= read -r pw\necho \"the password is $pw\"\necho \"$pw\" >&2\necho done\nexit 1\n",
        );
        let mut args = vec!["--exec", echo.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        // `TestEnv::run` fails the test if the live password is in either output.
        let run = Target::TELEPATH.rotate(&env, &args);
        run.assert_code(11);
        let live = Target::TELEPATH.live(&env);
        assert!(!run.stdout.contains(&live) && !run.stderr.contains(&live));
        assert!(
            run.stdout.contains("not shown: it contained the password"),
            "{}",
            run.stdout
        );
        if json {
            assert_eq!(run.json()["hook"]["output_withheld"], true);
        }
    }
}

/// Hooks that print the password in another form than byte for byte: each ends with a
/// line that would be shown if the output were not withheld.
const PRINTED_FORMS: [(&str, &str); 7] = [
    ("fold", r#"printf '%s\n' "$pw" | fold -w 5"#),
    ("rev", r#"printf '%s\n' "$pw" | rev"#),
    ("base64", r#"printf '%s' "$pw" | base64"#),
    (
        "base64 after a prefix",
        r#"printf 'user:%s' "$pw" | base64"#,
    ),
    (
        "a prefix of it",
        r#"printf 'starts with %s...\n' "$(printf '%s' "$pw" | cut -c1-10)""#,
    ),
    (
        "URL-escaped",
        r#"printf 'url=%s\n' "$(printf '%s' "$pw" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')""#,
    ),
    (
        "backslash-escaped",
        r#"printf '%s\n' "$pw" | sed 's/./\\&/g'"#,
    ),
];

#[test]
fn a_hook_that_prints_the_password_folded_reversed_encoded_or_escaped_does_not_show_it() {
    let env = Target::TELEPATH.seeded();
    // Every form in every output, so that a failure names all the forms shown.
    let mut shown = Vec::new();
    for (form, print) in PRINTED_FORMS {
        for json in [true, false] {
            let hook = script(
                &env,
                "forms.sh",
                &format!("#!/bin/sh\nIFS= read -r pw\n{print}\necho visible-marker\n"),
            );
            let mut args = vec!["--exec", hook.to_str().unwrap()];
            if json {
                args.push("--json");
            }
            let run = Target::TELEPATH.rotate(&env, &args);
            run.assert_code(0);
            let withheld = if json {
                let hook = &run.json()["hook"];
                hook["output_withheld"] == true && hook["output_tail"] == siprot::hook::WITHHELD
            } else {
                run.stdout.contains("not shown: it contained the password")
            };
            if run.stdout.contains("visible-marker") || !withheld {
                shown.push(format!("{form} (json: {json}): {}", run.stdout));
            }
        }
    }
    assert!(shown.is_empty(), "the output was shown: {shown:#?}");
    // Output that does not hold the password is still shown.
    let hook = script(
        &env,
        "plain.sh",
        "#!/bin/sh\nIFS= read -r pw\necho \"reloaded $SIPROT_CREDENTIAL\"\n",
    );
    let run = Target::TELEPATH.rotate(&env, &["--exec", hook.to_str().unwrap(), "--json"]);
    run.assert_code(0);
    assert_eq!(
        run.json()["hook"]["output_tail"],
        format!("reloaded {}", Target::TELEPATH.id)
    );
}

#[test]
fn proxy_passwords_and_the_vault_client_key_never_reach_the_hook() {
    let mut env = Target::VOBIZ.seeded();
    let vars = [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "FTP_PROXY",
    ];
    for (i, var) in vars.iter().enumerate() {
        let password = format!("proxy-secret-{i}-8Zq4");
        env.remember_secret(&password);
        env.set_env(
            var,
            &format!("http://alice{i}:{password}@127.0.0.1:{}", 3100 + i),
        );
    }
    env.set_env("NO_PROXY", "localhost,.example.com");
    env.set_env("VAULT_CLIENT_KEY", "/etc/siprot/vault-client-key.pem");
    env.set_env("BAO_CLIENT_KEY", "/etc/siprot/bao-client-key.pem");
    let (out, exec) = recorder(&env, 0);
    Target::VOBIZ
        .rotate(&env, &["--exec", &exec])
        .assert_code(0);
    let recorded = read(&out.join("vobiz.env"));
    for (i, var) in vars.iter().enumerate() {
        assert_eq!(
            env_var(&recorded, var),
            Some(format!("http://127.0.0.1:{}/", 3100 + i).as_str()),
            "{var} keeps its proxy without the user info"
        );
    }
    assert!(!recorded.contains("proxy-secret"), "{recorded}");
    assert!(!recorded.contains("alice"), "{recorded}");
    assert_eq!(
        env_var(&recorded, "NO_PROXY"),
        Some("localhost,.example.com")
    );
    assert_eq!(env_var(&recorded, "VAULT_CLIENT_KEY"), None);
    assert_eq!(env_var(&recorded, "BAO_CLIENT_KEY"), None);
    let live = Target::VOBIZ.live(&env);
    assert_no_secret_in_argv_or_env(&env, &out, "vobiz", &live);
}

#[test]
fn a_fleet_runs_the_inventorys_hook_per_credential_and_reports_one_entrys_failure() {
    let env = TestEnv::start();
    for target in Target::ALL {
        target.seed(&env);
    }
    let (out, exec) = recorder(&env, 0);
    let (_, failing) = recorder(&env, 4);
    let inventory = env.state.path().join("fleet.toml");
    // Every target, Vobiz's with a hook of its own that fails.
    let mut text = format!("exec = {exec:?}\n");
    for target in Target::ALL {
        text.push_str(&format!(
            "\n[[credential]]\nprovider = \"{}\"\nid = \"{}\"\n{}",
            target.name,
            target.id,
            target.id_toml()
        ));
        if target.name == "vobiz" {
            text.push_str(&format!("exec = {failing:?}\n"));
        }
    }
    std::fs::write(&inventory, text).unwrap();
    let path = inventory.to_str().unwrap();
    let run = env.run(&["rotate", "--inventory", path, "--json"], None);
    run.assert_code(11);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["rotated"], Target::ALL.len());
    assert_eq!(summary["hook_failed"], 1);
    assert_eq!(summary["exit_code"], 11);
    for target in Target::ALL {
        target.assert_consistent(&env);
        let line = lines.iter().find(|l| l["provider"] == target.name).unwrap();
        assert_eq!(line["status"], "rotated");
        let live = target.live(&env);
        assert_eq!(
            read(&out.join(format!("{}.stdin", target.name))),
            format!("{live}\n")
        );
        assert_no_secret_in_argv_or_env(&env, &out, target.name, &live);
        if target.name == "vobiz" {
            assert_eq!(line["exit_code"], 11);
            assert_eq!(line["hook"]["exit_code"], 4);
            assert_eq!(
                line["hook_rerun"],
                format!(
                    "siprot exec --provider vobiz {} --inventory {path}",
                    target.id
                )
            );
        } else {
            assert_eq!(line["exit_code"], 0, "{line}");
            assert_eq!(line["hook"]["exit_code"], 0);
            assert!(line.get("hook_rerun").is_none());
        }
    }
    let hooks: Vec<_> = env
        .audit_lines()
        .into_iter()
        .filter(|l| l["action"] == "hook")
        .collect();
    assert_eq!(hooks.len(), Target::ALL.len());
    assert_eq!(hooks.iter().filter(|l| l["outcome"] == "failed").count(), 1);
    // A hook's record is not a rotation attempt: `status` still shows the rotation.
    let status = env.run(&["status", "--inventory", path, "--json"], None);
    status.assert_code(0);
    for row in status.json()["credentials"].as_array().unwrap() {
        assert_eq!(row["last_outcome"], "rotated", "{row}");
        assert_eq!(row["last_exit_code"], 0, "{row}");
    }

    // `siprot exec --inventory` finds the entry's own hook (which still fails), and the
    // file's for the others; the human summary names the failed one with its rerun.
    let t = Target::VOBIZ;
    env.run(
        &["exec", "--provider", t.name, t.id, "--inventory", path],
        None,
    )
    .assert_code(11);
    let e = Target::EXOTEL;
    env.run(
        &[
            "exec",
            "--provider",
            e.name,
            e.id,
            "--device",
            e.device.unwrap(),
            "--inventory",
            path,
        ],
        None,
    )
    .assert_code(0);
    let run = env.run(&["rotate", "--inventory", path], None);
    run.assert_code(11);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("  hook failed (exit 11) "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(row.split_whitespace().last(), Some("1"), "{row}");
    assert!(
        run.stdout.contains(&format!("vobiz {} (line 12): exit 11: stored, but the hook failed (exit 4): run it again with `siprot exec --provider vobiz", t.id)),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("their hook failed (exit 11)"),
        "{}",
        run.stderr
    );
    // --exec on the command line beats the inventory's.
    let run = env.run(&["rotate", "--inventory", path, "--exec", &exec], None);
    run.assert_code(0);
}

#[test]
fn a_failed_hook_skips_verify_and_says_so() {
    let env = Target::TELEPATH.seeded();
    let (_, failing) = recorder(&env, 2);
    let run = Target::TELEPATH.rotate(
        &env,
        &["--exec", &failing, "--verify", "sip:127.0.0.1:9", "--json"],
    );
    run.assert_code(11);
    let json = run.json();
    assert_eq!(json["verify_skipped"], "the hook failed");
    assert!(json.get("verified").is_none(), "{json}");
    Target::TELEPATH.assert_consistent(&env);
}

#[test]
fn the_vault_store_hands_the_hook_siprot_store_vault() {
    let bao = Bao::shared();
    let mut env = TestEnv::without_keyring();
    let out = bao.cli(ROOT_TOKEN, &["token", "create", "-field=token"]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    env.set_env("VAULT_ADDR", &bao.addr);
    env.set_env("VAULT_TOKEN", &token);
    env.set_env("SIPROT_STORE", "vault");
    let prefix = unique_prefix("hook");
    let target = Target::VOBIZ;
    (target.create)(&target, &env);
    let (out, exec) = recorder(&env, 0);
    let mut args = target.rotate_args(&["--exec", &exec, "--secret-prefix", &prefix]);
    args.push("--json");
    let run: Run = env.run(&args, None);
    run.assert_code(0);
    let live = target.live(&env);
    assert_eq!(
        bao.kv_get(
            &format!("secret/{prefix}{}", target.entry(&env)),
            "password"
        )
        .as_deref(),
        Some(live.as_str())
    );
    assert_eq!(read(&out.join("vobiz.stdin")), format!("{live}\n"));
    let recorded = read(&out.join("vobiz.env"));
    assert_eq!(env_var(&recorded, "SIPROT_STORE"), Some("vault"));
    assert!(recorded.contains("VAULT_ADDR="), "non-secret settings stay");
    assert!(!recorded.contains(&token));
    assert_no_secret_in_argv_or_env(&env, &out, "vobiz", &live);
}

#[test]
fn a_blank_hook_is_refused_before_anything_is_sent() {
    let env = TestEnv::without_keyring();
    let t = Target::TELEPATH;
    (t.create)(&t, &env);
    t.rotate(&env, &["--exec", "  "])
        .assert_code(2)
        .assert_one_line_error("--exec needs a command");
    let inventory = env.state.path().join("blank.toml");
    std::fs::write(
        &inventory,
        format!(
            "[[credential]]\nprovider = \"telepath\"\nid = \"{}\"\nexec = \"\"\n",
            t.id
        ),
    )
    .unwrap();
    env.run(
        &["rotate", "--inventory", inventory.to_str().unwrap()],
        None,
    )
    .assert_code(4)
    .assert_one_line_error("blank.toml:1: `exec` is empty");
    assert!(env.fake.requests().is_empty(), "something was sent");
    assert_eq!(t.live(&env), t.initial);
}
