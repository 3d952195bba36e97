//! SIGKILL at every step of the rotation protocol, and two runs on one credential.
//!
//! A debug-build pause point (`SIPROT_TEST_PAUSE_AT`, see `src/checkpoint.rs`) stops
//! siprot at a named step; the fake holding its answer stops it while the request is in
//! flight. After each kill the provider's password must be in some local store, and a
//! second run must end with the keyring holding exactly the provider's password.

use std::time::Duration;

use crate::support::{Fault, Target, TestEnv};

/// The steps of the client-set protocol, in order.
const CLIENT_SET_POINTS: [&str; 4] = [
    "pending-written",
    "response-received",
    "previous-written",
    "current-written",
];

/// Never "the provider holds a password that no local store has" (for client-set
/// providers, which always stage the password before sending it).
#[track_caller]
fn assert_some_local_store_has_the_live_password(env: &TestEnv, target: Target) {
    let live = target.live(env);
    let held = ["", "#pending"]
        .iter()
        .any(|slot| env.lookup(&target.slot(env, slot)).as_deref() == Some(live.as_str()));
    assert!(
        held,
        "{}: the provider's password is in no local store",
        target.name
    );
}

#[test]
fn a_client_set_rotation_killed_at_any_step_is_finished_by_a_rerun() {
    for target in Target::CLIENT_SET {
        for point in CLIENT_SET_POINTS {
            let env = target.seeded();
            let paused = env.spawn_paused(&target.rotate_args(&[]), point);
            let killed = env.kill(paused);
            assert_ne!(killed.code, 0);
            let pending = env
                .lookup(&target.slot(&env, "#pending"))
                .unwrap_or_else(|| panic!("{} {point}: #pending is gone", target.name));
            if point == "pending-written" {
                assert_eq!(target.live(&env), target.initial, "nothing was sent yet");
            } else {
                assert_eq!(target.live(&env), pending, "{} {point}", target.name);
            }
            assert_some_local_store_has_the_live_password(&env, target);

            let rerun = target.rotate(&env, &["--json"]);
            rerun.assert_code(0);
            target.assert_consistent(&env);
            if point == "current-written" {
                // That rotation had finished but for removing #pending: the rerun does not
                // resend the password in use, it rotates anew.
                assert_eq!(rerun.json()["status"], "rotated", "{} {point}", target.name);
                assert_ne!(
                    target.live(&env),
                    pending,
                    "{}: a new password",
                    target.name
                );
                assert_eq!(
                    env.lookup(&target.slot(&env, "#previous")).as_deref(),
                    Some(pending.as_str()),
                    "{}: the finished rotation's password is the previous one",
                    target.name
                );
                continue;
            }
            assert_eq!(rerun.json()["status"], "resumed", "{} {point}", target.name);
            assert_eq!(
                target.live(&env),
                pending,
                "the staged password was finished"
            );
            assert_eq!(
                env.lookup(&target.slot(&env, "#previous")).as_deref(),
                Some(target.initial),
                "{} {point}: the password before is kept",
                target.name
            );
        }
    }
}

#[test]
fn a_client_set_rotation_killed_with_its_request_in_flight_is_finished_by_a_rerun() {
    for target in Target::CLIENT_SET {
        let env = target.seeded();
        env.fake.push_fault(
            target.provider,
            Fault::CommitThenDelay(Duration::from_secs(30)),
        );
        let running = env.spawn_running(&target.rotate_args(&[]));
        env.wait_for_requests(1);
        env.kill(running);
        let live = target.live(&env);
        assert_ne!(live, target.initial, "the provider committed");
        assert_eq!(
            env.lookup(&target.slot(&env, "#pending")).as_deref(),
            Some(live.as_str())
        );
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);
    }
}

#[test]
fn a_telepath_rotation_killed_at_any_step_is_made_good_by_a_rerun() {
    // "previous-written": before the POST; "response-received": the new password was
    // received but not yet stored (it dies with the process: only a new rotation helps).
    for point in ["previous-written", "in-flight", "response-received"] {
        let target = Target::TELEPATH;
        let env = target.seeded();
        let killed = if point == "in-flight" {
            env.fake.push_fault(
                target.provider,
                Fault::CommitThenDelay(Duration::from_secs(30)),
            );
            let running = env.spawn_running(&target.rotate_args(&[]));
            env.wait_for_requests(1);
            env.kill(running)
        } else {
            let paused = env.spawn_paused(&target.rotate_args(&[]), point);
            env.kill(paused)
        };
        assert_ne!(killed.code, 0);
        assert_eq!(
            env.lookup(&target.slot(&env, "#previous")).as_deref(),
            Some(target.initial),
            "{point}: the old password is backed up before the POST"
        );
        if point == "previous-written" {
            assert_eq!(target.live(&env), target.initial, "nothing was sent");
        }
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);
        assert_ne!(target.live(&env), target.initial);
    }
}

#[test]
fn a_second_run_on_the_same_credential_is_refused_while_the_first_runs() {
    let target = Target::EXOTEL;
    let env = target.seeded();
    Target::VOBIZ.seed(&env);
    let first = env.spawn_paused(&target.rotate_args(&[]), "pending-written");

    let second = target.rotate(&env, &["--json"]);
    second
        .assert_code(7)
        .assert_one_line_error("is being rotated by another siprot");
    assert_eq!(second.json()["exit_code"], 7);
    assert!(
        env.fake.requests().is_empty(),
        "the second run sent nothing"
    );
    let dry = target.rotate(&env, &["--dry-run"]);
    dry.assert_code(0);

    // Another credential is not held up.
    Target::VOBIZ.rotate(&env, &[]).assert_code(0);
    Target::VOBIZ.assert_consistent(&env);

    // The OS drops the lock with the process: the next run goes ahead and finishes.
    env.kill(first);
    target.rotate(&env, &[]).assert_code(0);
    target.assert_consistent(&env);
}
