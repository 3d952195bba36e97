//! The question before a step that cannot be undone, asked on a real pseudo-terminal:
//! a Telepath rotation (Telepath generates the password: the old one stops working at
//! once), a fleet that would rotate Telepath credentials (asked once, with the count),
//! and `disable`. A no (or end of input) sends nothing and changes nothing (exit 2);
//! `--yes`, `--dry-run` or a standard input that is not a terminal ask nothing.

use std::path::PathBuf;

use crate::support::{Run, TestEnv};

const TRUNK: &str = "conn_confirm01";
const ENTRY: &str = "telepath/conn_confirm01";
const OLD: &str = "Old-Confirm-Pass-01";
const QUESTION: &str = "siprot: rotate telepath credential conn_confirm01? telepath generates \
                        the new password and the old one stops working at once [y/N] ";

fn env_with_trunk() -> TestEnv {
    let env = TestEnv::start();
    env.fake.add_telepath_trunk(TRUNK, "agent-01", OLD);
    env.store(ENTRY, OLD);
    env
}

/// Nothing was sent and nothing changed: the provider's and the keyring's passwords are
/// the old ones, no `#previous`, no audit line.
#[track_caller]
fn untouched(env: &TestEnv, run: &Run) {
    assert!(env.fake.requests().is_empty(), "{:?}", env.fake.requests());
    assert_eq!(env.fake.telepath_password(TRUNK).as_deref(), Some(OLD));
    assert_eq!(env.lookup(ENTRY).as_deref(), Some(OLD));
    assert_eq!(env.lookup(&format!("{ENTRY}#previous")), None);
    assert!(
        env.all_audit_lines().is_empty(),
        "{:?}",
        env.all_audit_lines()
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn a_telepath_rotation_on_a_terminal_asks_first_and_a_no_sends_nothing() {
    let env = env_with_trunk();
    let rotate = ["rotate", "--provider", "telepath", TRUNK];
    for typed in [&b"n\n"[..], b"\n", b"whatever\n", b"\x04"] {
        let run = env.run_on_terminal(&rotate, typed);
        run.assert_code(2);
        assert!(run.stderr.starts_with(QUESTION), "{:?}", run.stderr);
        let error = run.stderr.lines().last().unwrap_or("");
        assert_eq!(
            error,
            "siprot: error: rotate telepath credential conn_confirm01: not confirmed, nothing \
             was sent (--yes skips the question)",
            "{typed:?}"
        );
        assert_eq!(run.stderr.lines().count(), 2, "{:?}", run.stderr);
        untouched(&env, &run);
    }
    // --json: the error object too.
    let run = env.run_on_terminal(&["rotate", "-p", "telepath", TRUNK, "--json"], b"no\n");
    run.assert_code(2);
    assert_eq!(run.json()["exit_code"], 2);
    assert!(env.fake.requests().is_empty());

    let run = env.run_on_terminal(&rotate, b"y\n");
    run.assert_code(0);
    assert!(run.stderr.starts_with(QUESTION), "{:?}", run.stderr);
    assert!(
        run.stdout
            .contains("rotated telepath credential conn_confirm01")
    );
    let live = env.fake.telepath_password(TRUNK).unwrap();
    assert_ne!(live, OLD);
    assert_eq!(env.lookup(ENTRY).as_deref(), Some(live.as_str()));
    assert_eq!(env.fake.requests().len(), 1);
}

#[test]
fn yes_dry_run_or_no_terminal_ask_nothing() {
    let env = env_with_trunk();
    // A dry run sends nothing anyway: no question.
    let run = env.run_on_terminal(&["rotate", "-p", "telepath", TRUNK, "--dry-run"], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    assert!(env.fake.requests().is_empty());
    // --yes (and -y) on a terminal: rotated without a question.
    for yes in ["--yes", "-y"] {
        let run = env.run_on_terminal(&["rotate", "-p", "telepath", TRUNK, yes], b"n\n");
        run.assert_code(0);
        assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    }
    assert_eq!(env.fake.requests().len(), 2);
    // Standard input a pipe (a script typing "n") or /dev/null (cron): never asked.
    let run = env.run(&["rotate", "-p", "telepath", TRUNK], Some(b"n\n"));
    run.assert_code(0);
    assert_eq!(run.stderr, "");
    env.run(&["rotate", "-p", "telepath", TRUNK], None)
        .assert_code(0);
    assert_eq!(env.fake.requests().len(), 4);
    // A provider that takes the password from siprot is never asked about.
    env.fake
        .add_vobiz_credential("cred-confirm", "u", "Old-Confirm-Vobiz-1");
    let run = env.run_on_terminal(&["rotate", "-p", "vobiz", "cred-confirm"], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
}

#[test]
fn disable_on_a_terminal_asks_first() {
    let env = TestEnv::start();
    env.fake
        .add_vobiz_credential("cred-off", "u", "Old-Confirm-Vobiz-2");
    let disable = ["disable", "--provider", "vobiz", "cred-off"];
    let run = env.run_on_terminal(&disable, b"n\n");
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(
            "siprot: disable vobiz credential cred-off? it stops working (registrations and \
             calls) until `siprot enable --provider vobiz cred-off` [y/N] "
        ),
        "{:?}",
        run.stderr
    );
    assert!(run.stderr.contains("not confirmed, nothing was sent"));
    assert!(env.fake.requests().is_empty());
    assert!(env.fake.vobiz_credential("cred-off").unwrap().enabled);
    assert!(env.all_audit_lines().is_empty());
    let run = env.run_on_terminal(&disable, b"yes\n");
    run.assert_code(0);
    assert!(run.stdout.contains("is now disabled"), "{}", run.stdout);
    assert!(!env.fake.vobiz_credential("cred-off").unwrap().enabled);
    // enable never asks; disable --yes neither.
    let run = env.run_on_terminal(&["enable", "-p", "vobiz", "cred-off"], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    let run = env.run_on_terminal(&["disable", "-p", "vobiz", "cred-off", "-y"], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    assert!(!env.fake.vobiz_credential("cred-off").unwrap().enabled);
}

/// An inventory of two Telepath trunks and a Vobiz credential (or the Vobiz one alone).
fn inventory(env: &TestEnv, telepath: bool) -> PathBuf {
    let mut toml = String::new();
    if telepath {
        for (trunk, pass) in [
            ("conn_inv1", "Old-Confirm-Inv-1"),
            ("conn_inv2", "Old-Confirm-Inv-2"),
        ] {
            env.fake.add_telepath_trunk(trunk, "u", pass);
            toml += &format!("[[credential]]\nprovider = \"telepath\"\nid = \"{trunk}\"\n\n");
        }
    }
    env.fake
        .add_vobiz_credential("cred-inv", "u", "Old-Confirm-Inv-3");
    toml += "[[credential]]\nprovider = \"vobiz\"\nid = \"cred-inv\"\n";
    let path = env
        .state
        .path()
        .join(if telepath { "fleet.toml" } else { "vobiz.toml" });
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn a_fleet_asks_once_with_the_count_of_its_telepath_credentials() {
    let env = TestEnv::start();
    let path = inventory(&env, true);
    let path = path.to_str().unwrap();
    let run = env.run_on_terminal(&["rotate", "--inventory", path], b"n\n");
    run.assert_code(2);
    let question = format!(
        "siprot: rotate 2 telepath credential(s) among the 3 selected in {path}? telepath \
         generates each new password and the old one stops working at once [y/N] "
    );
    assert!(run.stderr.starts_with(&question), "{:?}", run.stderr);
    assert_eq!(run.stderr.matches("[y/N]").count(), 1);
    assert!(env.fake.requests().is_empty());
    assert_eq!(
        env.fake.telepath_password("conn_inv1").as_deref(),
        Some("Old-Confirm-Inv-1")
    );
    assert!(env.all_audit_lines().is_empty());
    // --dry-run asks nothing.
    let run = env.run_on_terminal(&["rotate", "--inventory", path, "--dry-run"], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    assert!(env.fake.requests().is_empty());
    // Yes: all three rotated, asked once.
    let run = env.run_on_terminal(&["rotate", "--inventory", path], b"y\n");
    run.assert_code(0);
    assert_eq!(run.stderr.matches("[y/N]").count(), 1, "{:?}", run.stderr);
    assert_eq!(env.fake.requests().len(), 3);
    assert_ne!(
        env.fake.telepath_password("conn_inv1").as_deref(),
        Some("Old-Confirm-Inv-1")
    );
    // Rotated just now, so --if-older-than skips them all: nothing to ask about.
    let run = env.run_on_terminal(
        &["rotate", "--inventory", path, "--if-older-than", "1d"],
        b"n\n",
    );
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    assert_eq!(env.fake.requests().len(), 3);
    // A fleet of credentials whose passwords siprot sets: nothing to ask about.
    let vobiz = inventory(&env, false);
    let run = env.run_on_terminal(&["rotate", "--inventory", vobiz.to_str().unwrap()], b"n\n");
    run.assert_code(0);
    assert!(!run.stderr.contains("[y/N]"), "{:?}", run.stderr);
    assert_eq!(env.fake.requests().len(), 4);
}
