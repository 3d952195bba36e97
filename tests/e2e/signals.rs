//! SIGINT, SIGTERM and SIGHUP during a rotation (`src/interrupt.rs`): the rotation in
//! flight reaches a safe point within its own deadline, then siprot exits with the
//! signal's code (130, 143, 129), or 9 when something is left to recover. And the
//! `in-progress` audit record that makes a rotation cut off by SIGKILL show in `status`.

use std::time::Duration;

use crate::support::{Fault, Run, Target, TestEnv};

/// `kill -s` names and the exit codes they must give.
const SIGNALS: [(&str, i32); 3] = [("INT", 130), ("TERM", 143), ("HUP", 129)];

/// The outcomes of the audit records of `target`, in order.
fn outcomes(env: &TestEnv, target: Target) -> Vec<String> {
    let entry = target.entry(env);
    env.all_audit_lines()
        .iter()
        .filter(|l| l["entry"] == entry.as_str())
        .map(|l| l["outcome"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Starts `rotate` for `target`, waits until its request has reached the fake (which holds
/// its answer), signals it and waits for it to exit.
fn signal_in_flight(env: &TestEnv, target: Target, extra: &[&str], signal: &str) -> Run {
    let running = env.spawn_running(&target.rotate_args(extra));
    env.wait_for_requests(1);
    env.send_signal(&running, signal);
    env.wait_exit(running)
}

#[test]
fn a_signal_during_a_slow_telepath_post_stores_the_answer_and_exits_with_its_code() {
    for (signal, code) in SIGNALS {
        let target = Target::TELEPATH;
        let env = target.seeded();
        env.fake.push_fault(
            target.provider,
            Fault::CommitThenDelay(Duration::from_secs(2)),
        );
        let run = signal_in_flight(&env, target, &["--json"], signal);
        run.assert_code(code);
        let json = run.json();
        assert_eq!(json["status"], "rotated", "SIG{signal}");
        assert_eq!(json["exit_code"], code);
        assert_eq!(json["interrupted_by"], format!("SIG{signal}"));
        assert!(
            run.stderr.contains(&format!("SIG{signal} received")),
            "{}",
            run.stderr
        );
        target.assert_consistent(&env);
        assert_ne!(target.live(&env), target.initial, "the provider rotated");
        assert_eq!(
            env.lookup(&target.slot(&env, "#previous")).as_deref(),
            Some(target.initial)
        );
        assert_eq!(
            outcomes(&env, target),
            ["in-progress", "rotated"],
            "SIG{signal}: the final record follows the in-progress one"
        );
        assert_eq!(env.fake.requests().len(), 1);
    }
}

#[test]
fn a_second_signal_is_reported_and_the_post_still_finishes() {
    let target = Target::TELEPATH;
    let env = target.seeded();
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(Duration::from_secs(2)),
    );
    let running = env.spawn_running(&target.rotate_args(&[]));
    env.wait_for_requests(1);
    env.send_signal(&running, "INT");
    std::thread::sleep(Duration::from_millis(300));
    env.send_signal(&running, "INT");
    let run = env.wait_exit(running);
    run.assert_code(130);
    assert!(
        run.stderr.contains("SIGINT received again"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("siprot: error: interrupted by SIGINT: the rotation in flight was finished"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("rotated telepath credential"));
    target.assert_consistent(&env);
    assert_ne!(target.live(&env), target.initial);
}

#[test]
fn a_signal_before_the_request_sends_nothing() {
    // Telepath stopped after copying current to #previous; Exotel and Vobiz after staging
    // a fresh #pending: the signal comes during that step.
    let cases = [
        (Target::TELEPATH, "previous-written", SIGNALS[1]),
        (Target::EXOTEL, "pending-written", SIGNALS[0]),
        (Target::VOBIZ, "pending-written", SIGNALS[2]),
    ];
    for (target, point, (signal, code)) in cases {
        let env = target.seeded();
        let paused = env.spawn_paused(&target.rotate_args(&["--json"]), point);
        env.send_signal(&paused, signal);
        let run = env.wait_exit(paused);
        run.assert_code(code);
        assert_eq!(run.json()["exit_code"], code);
        assert!(
            run.stderr.contains("before anything was sent")
                && run.stderr.contains("nothing was changed"),
            "{}: {}",
            target.name,
            run.stderr
        );
        assert!(
            env.fake.requests().is_empty(),
            "{}: a request was sent after SIG{signal}",
            target.name
        );
        assert_eq!(target.live(&env), target.initial);
        target.assert_consistent(&env);
        assert_eq!(
            outcomes(&env, target),
            ["interrupted"],
            "{}: no in-progress record for a request never sent",
            target.name
        );
    }
}

#[test]
fn a_signal_during_a_put_finishes_it_or_keeps_pending_with_exit_9() {
    // Exotel answers within the timeout: promoted as usual, then the signal's code.
    let target = Target::EXOTEL;
    let env = target.seeded();
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(Duration::from_secs(2)),
    );
    let run = signal_in_flight(&env, target, &[], "TERM");
    run.assert_code(143);
    target.assert_consistent(&env);
    assert_ne!(target.live(&env), target.initial);
    assert_eq!(outcomes(&env, target), ["in-progress", "rotated"]);

    // Vobiz answers after --timeout: the PUT may have landed and would be retried, but
    // not after the signal: #pending is kept and the exit is 9.
    let target = Target::VOBIZ;
    let env = target.seeded();
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenDelay(Duration::from_secs(5)),
    );
    let run = signal_in_flight(&env, target, &["--timeout", "2", "--retries", "3"], "HUP");
    run.assert_code(9);
    assert!(
        run.stderr.contains("interrupted by SIGHUP"),
        "{}",
        run.stderr
    );
    assert_eq!(env.fake.requests().len(), 1, "no retry after the signal");
    let live = target.live(&env);
    assert_ne!(live, target.initial, "the provider committed");
    assert_eq!(
        env.lookup(&target.slot(&env, "#pending")).as_deref(),
        Some(live.as_str())
    );
    assert_eq!(outcomes(&env, target), ["in-progress", "unconfirmed"]);
    env.run(&["recover"], None).assert_code(0);
    target.assert_consistent(&env);
}

/// An inventory holding `target` alone.
fn inventory(env: &TestEnv, target: Target) -> String {
    let path = env.state.path().join("one.toml");
    let device = target.id_toml();
    std::fs::write(
        &path,
        format!(
            "[[credential]]\nprovider = \"{}\"\nid = \"{}\"\n{device}max_age = \"30d\"\n",
            target.name, target.id
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn sigkill_during_the_request_leaves_an_in_progress_record_that_status_reports() {
    for (target, next_step) in [
        (
            Target::TELEPATH,
            "siprot rotate --provider telepath conn_target01",
        ),
        (Target::EXOTEL, "siprot recover"),
    ] {
        let env = target.seeded();
        let path = inventory(&env, target);
        env.fake.push_fault(
            target.provider,
            Fault::CommitThenDelay(Duration::from_secs(30)),
        );
        let running = env.spawn_running(&target.rotate_args(&[]));
        env.wait_for_requests(1);
        env.kill(running);
        assert_eq!(outcomes(&env, target), ["in-progress"], "{}", target.name);

        let status = env.run(&["status", "--inventory", &path, "--json"], None);
        status.assert_code(0);
        let json = status.json();
        let row = &json["credentials"][0];
        assert_eq!(row["last_outcome"], "in-progress", "{}", target.name);
        assert_eq!(row["outcome_unknown"], true, "{}", target.name);
        assert_eq!(row["next_step"], next_step, "{}", target.name);
        assert_eq!(json["needs_recovery"], 1);
        let human = env.run(&["status", "--inventory", &path], None);
        assert!(
            human.stdout.contains("outcome unknown") && human.stdout.contains(next_step),
            "{}",
            human.stdout
        );

        // The next step settles it, and its final record supersedes the in-progress one.
        let args: Vec<&str> = next_step.split(' ').skip(1).collect();
        env.run(&args, None).assert_code(0);
        target.assert_consistent(&env);
        let json = env
            .run(&["status", "--inventory", &path, "--json"], None)
            .json();
        let row = &json["credentials"][0];
        assert_eq!(row["outcome_unknown"], false, "{}", target.name);
        assert_eq!(row["next_step"], serde_json::Value::Null);
        assert_eq!(json["needs_recovery"], 0);
    }
}
