//! Unwritable standard output and error: `2>/dev/full`, `>/dev/full` and a closed pipe
//! (`| head -1`) never panic and never change the exit code, which says what the command
//! did; the keyring holds what the provider holds either way.

use crate::support::{FakeProvider, Fault, Sink, Target, TestEnv};

#[test]
fn a_rotation_that_needs_recovery_is_exit_9_when_stderr_cannot_be_written() {
    let target = Target::EXOTEL;
    let env = target.seeded();
    env.fake
        .push_fault(target.provider, Fault::CommitThenStatus(500));
    let run = env.run_to(
        &target.rotate_args(&["--retries", "0"]),
        Sink::Captured,
        Sink::Full,
    );
    run.assert_code(9);
    let live = target.live(&env);
    assert_ne!(live, target.initial);
    assert_eq!(
        env.lookup(&target.slot(&env, "#pending")).as_deref(),
        Some(live.as_str()),
        "the provider's password waits in #pending"
    );
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
}

#[test]
fn a_successful_rotation_with_a_warning_is_exit_0_when_stderr_cannot_be_written() {
    let target = Target::VOBIZ;
    let env = target.seeded();
    // An audit log that cannot be written makes a successful rotation warn.
    let run =
        env.run_to_without_file_writes(&target.rotate_args(&[]), Sink::Captured, Sink::Captured);
    run.assert_code(0);
    assert!(
        run.stderr.contains("warning: audit log not written"),
        "{}",
        run.stderr
    );
    target.assert_consistent(&env);

    // The same with standard error on a full device, and -v logging to it too.
    let run =
        env.run_to_without_file_writes(&target.rotate_args(&["-v"]), Sink::Captured, Sink::Full);
    run.assert_code(0);
    assert!(
        run.stdout.contains("rotated vobiz credential"),
        "{}",
        run.stdout
    );
    target.assert_consistent(&env);
    assert_eq!(env.fake.requests().len(), 2);
}

#[test]
fn a_successful_rotation_is_exit_0_when_stdout_cannot_be_written() {
    for target in [Target::TELEPATH, Target::EXOTEL] {
        let env = target.seeded();
        for extra in [&[][..], &["--json"][..]] {
            let before = target.live(&env);
            let run = env.run_to(&target.rotate_args(extra), Sink::Full, Sink::Captured);
            run.assert_code(0);
            assert_eq!(
                run.stderr.lines().collect::<Vec<_>>(),
                [
                    "siprot: warning: cannot write to standard output: No space left on device (os error 28); the output is incomplete, exit code 0 is the command's own"
                ],
                "{}",
                target.name
            );
            assert_ne!(target.live(&env), before, "rotated");
            target.assert_consistent(&env);
        }
    }
}

#[test]
fn a_successful_rotation_is_exit_0_and_quiet_when_stdout_is_a_closed_pipe() {
    for target in [Target::TELEPATH, Target::VOBIZ] {
        let env = target.seeded();
        for extra in [&[][..], &["--json"][..]] {
            let before = target.live(&env);
            let run = env.run_to(&target.rotate_args(extra), Sink::Closed, Sink::Captured);
            run.assert_code(0);
            assert_eq!(
                run.stderr, "",
                "no noise for a closed pipe ({})",
                target.name
            );
            assert_ne!(target.live(&env), before, "rotated");
            target.assert_consistent(&env);
        }
    }
}

#[test]
fn a_fleet_keeps_its_own_exit_code_when_stdout_is_a_closed_pipe() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_pipe01", "u", "Pipe-Telepath-Pass-1");
    env.store("telepath/conn_pipe01", "Pipe-Telepath-Pass-1");
    env.fake
        .add_vobiz_credential("cred-pipe-01", "u", "Pipe-Vobiz-Pass-01");
    let vobiz_entry = format!("vobiz/{}/cred-pipe-01", env.fake.config().vobiz_auth_id);
    env.store(&vobiz_entry, "Pipe-Vobiz-Pass-01");
    let path = env.state.path().join("fleet.toml");
    std::fs::write(
        &path,
        "[[credential]]\nprovider = \"telepath\"\nid = \"conn_pipe01\"\n\n\
         [[credential]]\nprovider = \"vobiz\"\nid = \"cred-pipe-01\"\n",
    )
    .unwrap();
    let path = path.display().to_string();
    // `siprot rotate --inventory fleet.toml --json | head -1`, and the human summary.
    for extra in [&["--json"][..], &[][..]] {
        env.fake
            .push_fault(FakeProvider::Telepath, Fault::CommitThenStatus(500));
        let mut args = vec!["rotate", "--inventory", path.as_str()];
        args.extend_from_slice(extra);
        let run = env.run_to(&args, Sink::Closed, Sink::Captured);
        run.assert_code(9);
        assert!(
            !run.stderr.contains("cannot write to standard output"),
            "no noise for a closed pipe: {}",
            run.stderr
        );
        let vobiz = env.fake.vobiz_credential("cred-pipe-01").unwrap().password;
        assert_eq!(env.lookup(&vobiz_entry), Some(vobiz), "vobiz was rotated");
    }
    assert_eq!(env.fake.requests().len(), 4);
}

#[test]
fn error_paths_keep_their_exit_code_when_stderr_cannot_be_written() {
    let env = TestEnv::start();
    // --json: the error object still reaches standard output.
    let run = env.run_to(
        &["rotate", "--provider", "vobiz", "cred-missing-01", "--json"],
        Sink::Captured,
        Sink::Full,
    );
    run.assert_code(6);
    let json = run.json();
    assert_eq!(json["status"], "error");
    assert_eq!(json["exit_code"], 6);
    // Without --json, and a missing secret.
    env.run_to(
        &["secret", "get", "--provider", "telepath", "conn_missing"],
        Sink::Captured,
        Sink::Full,
    )
    .assert_code(6);
    // clap's own usage errors ignore a failed write too.
    env.run_to(&["rotate", "--no-such-flag"], Sink::Captured, Sink::Full)
        .assert_code(2);
}

#[test]
fn secret_get_and_generate_fail_when_their_output_cannot_be_written() {
    let target = Target::TELEPATH;
    let env = target.seeded();
    let get = ["secret", "get", "--provider", "telepath", target.id];
    // Their output is the whole product: not delivering it is exit 1.
    let run = env.run_to(&get, Sink::Full, Sink::Captured);
    run.assert_code(1)
        .assert_one_line_error("cannot write to standard output: No space left on device");
    let run = env.run_to(&get, Sink::Full, Sink::Full);
    run.assert_code(1);
    // A reader that closed the pipe chose not to read: exit 1, without noise.
    let run = env.run_to(&get, Sink::Closed, Sink::Captured);
    run.assert_code(1);
    assert_eq!(run.stderr, "");
    let run = env.run_to(&["generate"], Sink::Closed, Sink::Captured);
    run.assert_code(1);
    assert_eq!(run.stderr, "");
    env.run_to(&["generate"], Sink::Full, Sink::Captured)
        .assert_code(1)
        .assert_one_line_error("cannot write to standard output");
}
