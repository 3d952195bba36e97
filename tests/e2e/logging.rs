//! Logging at every verbosity never shows a secret: every command and fault runs with
//! `-vv` and with `RUST_LOG=trace`, and the harness checks standard output, standard
//! error, the audit log and argv of each run for every password and API key.

use crate::support::{Fault, Target, TestEnv};

/// The ways of turning logging on: `-vv`, or `RUST_LOG=trace` (libraries included).
const MODES: [&str; 2] = ["-vv", "RUST_LOG=trace"];

fn env_in(mode: &str) -> TestEnv {
    let mut env = TestEnv::start();
    if mode == "RUST_LOG=trace" {
        env.set_env("RUST_LOG", "trace");
    }
    for target in Target::ALL {
        target.seed(&env);
    }
    env
}

fn args<'a>(mode: &str, base: Vec<&'a str>) -> Vec<&'a str> {
    let mut args = base;
    if mode == "-vv" {
        args.push("-vv");
    }
    args
}

#[track_caller]
fn assert_logged(run: &crate::support::Run, mode: &str) {
    assert!(
        run.stderr.contains("siprot: debug: [siprot::"),
        "{mode}: no siprot log lines: {}",
        run.stderr
    );
    if mode == "RUST_LOG=trace" {
        assert!(
            run.stderr.contains("trace: [hyper_util") || run.stderr.contains("trace: [zbus"),
            "{mode}: library trace output is missing"
        );
    }
}

#[test]
fn rotations_and_recovery_log_without_leaking() {
    for mode in MODES {
        let env = env_in(mode);
        for target in Target::ALL {
            let run = env.run(&args(mode, target.rotate_args(&["--json"])), None);
            run.assert_code(0);
            assert_logged(&run, mode);
            target.assert_consistent(&env);
        }
        // A rotation killed after the provider took the password, then recovered.
        let target = Target::VOBIZ;
        let paused = env.spawn_paused(&args(mode, target.rotate_args(&[])), "response-received");
        env.kill(paused);
        let run = env.run(&args(mode, vec!["recover", "--json"]), None);
        run.assert_code(0);
        assert_logged(&run, mode);
        target.assert_consistent(&env);
    }
}

#[test]
fn faults_log_without_leaking() {
    let faults = [
        Fault::Status(401),
        Fault::Status(400),
        Fault::RateLimited(Some("0".into())),
        Fault::CommitThenDrop,
        Fault::CommitThenStatus(500),
        Fault::CommitThenRawBody(b"\xff\xfe{\"sip_password\":".to_vec()),
        Fault::Redirect(307, "http://127.0.0.1:9/elsewhere".into()),
    ];
    for mode in MODES {
        let env = env_in(mode);
        for target in Target::ALL {
            for fault in &faults {
                env.fake.push_fault(target.provider, fault.clone());
                let run = env.run(
                    &args(mode, target.rotate_args(&["--retries", "0", "--json"])),
                    None,
                );
                assert_ne!(run.code, 0, "{mode} {} {fault:?}", target.name);
                assert_logged(&run, mode);
                // Leave no pending password behind for the next fault.
                env.run(&args(mode, vec!["recover"]), None);
            }
        }
    }
}

#[test]
fn wrong_api_keys_and_stdin_passwords_log_without_leaking() {
    for mode in MODES {
        let mut env = env_in(mode);
        let chosen = "Typed-On-Stdin-Pass-77";
        env.remember_secret(chosen);
        let run = env.run(
            &args(mode, Target::EXOTEL.rotate_args(&["--password-stdin"])),
            Some(format!("{chosen}\n").as_bytes()),
        );
        run.assert_code(0);
        assert_logged(&run, mode);
        env.remember_secret("Typed-Check-Pass-88");
        let run = env.run(
            &args(mode, vec!["check-password", "--provider", "vobiz"]),
            Some(b"Typed-Check-Pass-88\n"),
        );
        run.assert_code(0);
        env.set_env("TELEPATH_API_KEY", "sk_live_wrong_key_for_log_test");
        env.set_env("VOBIZ_AUTH_TOKEN", "wrong-vobiz-token-for-log-test");
        for target in [Target::TELEPATH, Target::VOBIZ] {
            let run = env.run(&args(mode, target.rotate_args(&[])), None);
            run.assert_code(5);
            assert_logged(&run, mode);
        }
    }
}
