//! Shell completions, the manual pages, `--quiet` and the exit codes' help: the scripts
//! and pages are generated from the same command tree as `--help` (so CI generates and
//! checks them here), `--quiet` leaves standard output empty but for what was asked for,
//! and `siprot help exit-codes` explains every code `--help` lists.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Target, TestEnv};

/// Every subcommand of `siprot --help` (`help` aside), read from the binary itself so that
/// a new subcommand is checked without an edit here.
fn subcommands(env: &TestEnv) -> Vec<String> {
    let run = env.run(&["--help"], None);
    run.assert_code(0);
    let section = run
        .stdout
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section");
    let names: Vec<String> = section
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in ["rotate", "secret", "exec", "completions", "man"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    names
}

/// Runs `program args` with `input` on its standard input: (exit status, stdout, stderr).
fn pipe_through(program: &str, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (scripts/install-deps.sh installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    let env = TestEnv::without_keyring();
    let names = subcommands(&env);
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = env.run(&["completions", shell], None);
        run.assert_code(0);
        assert_eq!(run.stderr, "", "{shell}");
        for name in &names {
            assert!(run.stdout.contains(name.as_str()), "{shell}: {name}");
        }
        // The flags are completed too (fish names them without their dashes).
        assert!(run.stdout.contains("inventory"), "{shell}");
        assert!(run.stdout.contains("quiet"), "{shell}");
    }
    let bash = env.run(&["completions", "bash"], None);
    let (ok, _, stderr) = pipe_through("bash", &["-n"], &bash.stdout);
    assert!(ok, "bash -n: {stderr}");
    env.run(&["completions", "tcsh"], None).assert_code(2);
}

#[test]
fn the_manual_pages_render_and_name_every_subcommand() {
    let env = TestEnv::without_keyring();
    let names = subcommands(&env);
    // Renders without a warning (-ww: all of them), then as plain text to read.
    let render = |roff: &str| {
        let (ok, _, stderr) = pipe_through("groff", &["-man", "-Tutf8", "-ww", "-z"], roff);
        assert!(ok && stderr.is_empty(), "groff: {stderr}");
        let (ok, text, stderr) = pipe_through("groff", &["-man", "-Tascii", "-P", "-cbou"], roff);
        assert!(ok, "groff: {stderr}");
        text
    };
    let run = env.run(&["man"], None);
    run.assert_code(0);
    assert!(run.stdout.starts_with(".ie"), "roff: {}", run.stdout);
    let page = render(&run.stdout);
    assert!(page.contains("SUBCOMMANDS"), "{page}");
    // The exit codes from the top-level help are on the page too.
    assert!(
        page.contains("NOTES") && page.contains("Exit codes: 0 ok"),
        "{page}"
    );
    let mut examples = 0;
    for name in &names {
        assert!(
            page.contains(&format!("siprot-{name}(1)")),
            "{name} in {page}"
        );
        let sub = env.run(&["man", name], None);
        sub.assert_code(0);
        let sub_page = render(&sub.stdout);
        assert!(sub_page.contains(&format!("siprot-{name}")), "{sub_page}");
        // Each example of `--help` is one line of the page too, not filled into prose.
        let page_lines: Vec<&str> = sub_page.lines().map(str::trim).collect();
        let help = env.run(&[name, "--help"], None);
        for example in help.stdout.lines().filter(|l| l.starts_with("  siprot ")) {
            assert!(
                page_lines.contains(&example.trim()),
                "{name}: {example:?} in {sub_page}"
            );
            examples += 1;
        }
    }
    assert!(examples >= 15, "{examples} examples checked");
    let get = render(&env.run(&["man", "secret", "get"], None).stdout);
    assert!(
        get.contains("siprot-secret-get") && get.contains("--previous"),
        "{get}"
    );
    env.run(&["man", "no-such-command"], None)
        .assert_code(2)
        .assert_one_line_error("no subcommand 'no-such-command'");

    // --dir writes every page as a file and prints its path.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man1");
    let out_str = out.to_str().expect("utf-8 path");
    let run = env.run(&["man", "--dir", out_str], None);
    run.assert_code(0);
    for name in &names {
        let file = out.join(format!("siprot-{name}.1"));
        assert!(file.is_file(), "{}", file.display());
        assert!(
            run.stdout.contains(&file.display().to_string()),
            "{}",
            run.stdout
        );
    }
    assert!(out.join("siprot.1").is_file());
    assert!(out.join("siprot-secret-get.1").is_file());
    // --quiet: the files, without the list.
    let quiet = dir.path().join("quiet");
    let run = env.run(
        &["man", "-q", "--dir", quiet.to_str().expect("utf-8")],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.stdout, "");
    assert!(quiet.join("siprot-rotate.1").is_file());
}

#[test]
fn quiet_rotation_prints_nothing_on_stdout_and_errors_still_on_stderr() {
    let target = Target::VOBIZ;
    let env = target.seeded();
    let before = target.live(&env);
    let run = env.run(&target.rotate_args(&["--quiet"]), None);
    run.assert_code(0);
    assert_eq!(run.stdout, "", "--quiet");
    assert_eq!(run.stderr, "");
    assert_ne!(target.live(&env), before, "rotated");
    target.assert_consistent(&env);

    // Without --quiet the same rotation reports itself (so the test above can fail).
    let run = env.run(&target.rotate_args(&[]), None);
    run.assert_code(0);
    assert!(run.stdout.contains("new password stored"), "{}", run.stdout);

    // -q is global, before or after the subcommand; --json is unaffected.
    let run = env.run(
        &["-q", "rotate", "-p", target.name, target.id, "--json"],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.json()["status"], "rotated", "{}", run.stdout);

    // A failure still says why, on stderr, and keeps its exit code.
    let run = env.run(
        &["rotate", "-q", "--provider", "vobiz", "cred-missing-01"],
        None,
    );
    run.assert_code(6);
    assert_eq!(run.stdout, "");
    run.assert_one_line_error("");

    // Products are printed: `generate` and `secret get`.
    let run = env.run(&["generate", "-q"], None);
    run.assert_code(0);
    assert!(!run.stdout.trim().is_empty());
    env.remember_secret(run.stdout.trim());
    let run = env.run(
        &["secret", "get", "-q", "--provider", target.name, target.id],
        None,
    );
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), target.live(&env));
}

#[test]
fn help_exit_codes_and_exit_codes_json_explain_the_codes_help_lists() {
    let env = TestEnv::without_keyring();
    let top = env.run(&["--help"], None);
    top.assert_code(0);
    let listed = top
        .stdout
        .split("Exit codes: ")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("an Exit codes: paragraph");
    assert!(listed.contains("`siprot help exit-codes`"), "{listed}");
    let json = env.run(&["exit-codes", "--json"], None);
    json.assert_code(0);
    let codes: Vec<u64> = json.json()["exit_codes"]
        .as_array()
        .expect("exit_codes")
        .iter()
        .map(|doc| {
            assert!(
                doc["meaning"].as_str().is_some_and(|m| !m.is_empty()),
                "{doc}"
            );
            assert!(doc["what_to_do"].is_string(), "{doc}");
            doc["code"].as_u64().expect("a code")
        })
        .collect();
    assert!(
        codes.len() >= 15 && codes.contains(&2) && codes.contains(&143),
        "{codes:?}"
    );
    let flat = listed.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut at = 0;
    for code in &codes {
        // In the same order, each followed by its summary.
        let found = flat[at..]
            .find(&format!("{code} "))
            .unwrap_or_else(|| panic!("{code} after {at} in {flat}"));
        at += found + 1;
    }
    // `siprot help exit-codes` shows the table that `siprot exit-codes` prints (also
    // with --quiet: it is what was asked for).
    let help = env.run(&["help", "exit-codes"], None);
    help.assert_code(0);
    let table = env.run(&["-q", "exit-codes"], None);
    table.assert_code(0);
    assert!(
        table
            .stdout
            .starts_with("Exit codes, what each means and what to do:\n"),
        "{}",
        table.stdout
    );
    assert!(help.stdout.contains(&table.stdout), "{}", help.stdout);
    for code in &codes {
        assert!(
            table.stdout.contains(&format!("\n  {code} ")),
            "{code} in {}",
            table.stdout
        );
    }
}
