//! Retries: idempotent PUTs (Exotel, Vobiz) are resent after transient failures within
//! `--retries` and `--deadline`, honouring `Retry-After`; Telepath's POST only when it
//! provably never left. `attempts` in the JSON output counts the requests.

use std::time::{Duration, Instant};

use crate::support::{Fault, Target, TestEnv};

/// The password field of every update the fake received, in order (not of a GET that
/// reads the credential back, which has no body): a JSON body's `password`, or a form's
/// `Password` (Twilio).
fn sent_passwords(env: &TestEnv) -> Vec<String> {
    env.fake
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(
            |r| match serde_json::from_slice::<serde_json::Value>(&r.body) {
                Ok(body) => body["password"].as_str().unwrap().to_owned(),
                Err(_) => url::form_urlencoded::parse(&r.body)
                    .find(|(name, _)| name == "Password")
                    .map(|(_, value)| value.into_owned())
                    .expect("a JSON or form body with the password"),
            },
        )
        .collect()
}

#[test]
fn transient_answers_to_a_put_are_retried_with_the_same_password() {
    for target in Target::CLIENT_SET {
        let env = target.seeded();
        env.fake.push_fault(target.provider, Fault::Status(503));
        env.fake.push_fault(target.provider, Fault::Status(502));
        env.fake.push_fault(target.provider, Fault::Status(504));
        let run = target.rotate(&env, &["--json"]);
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["attempts"], 4, "{}", target.name);
        assert_eq!(json["status"], "rotated");
        let sent = sent_passwords(&env);
        assert_eq!(sent.len(), 4);
        assert!(sent.iter().all(|p| p == &sent[0]), "one password, resent");
        target.assert_consistent(&env);
        assert_eq!(env.audit_lines()[0]["attempts"], 4);
    }
}

#[test]
fn a_connection_reset_after_commit_is_retried_for_a_put() {
    for target in Target::CLIENT_SET {
        let env = target.seeded();
        env.fake.push_fault(target.provider, Fault::CommitThenDrop);
        let run = target.rotate(&env, &["--json"]);
        run.assert_code(0);
        assert_eq!(run.json()["attempts"], 2);
        let sent = sent_passwords(&env);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], sent[1]);
        target.assert_consistent(&env);
    }
}

#[test]
fn retry_after_in_seconds_and_as_an_http_date_is_honoured() {
    let http_date = || {
        (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2))
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    };
    for (target, date) in [(Target::EXOTEL, false), (Target::VOBIZ, true)] {
        let env = target.seeded();
        let retry_after = if date { http_date() } else { "1".to_owned() };
        env.fake.push_fault(
            target.provider,
            Fault::RateLimited(Some(retry_after.clone())),
        );
        let started = Instant::now();
        let run = target.rotate(&env, &["--json"]);
        let took = started.elapsed();
        run.assert_code(0);
        assert_eq!(run.json()["attempts"], 2);
        // A lower bound only: siprot waited as asked instead of its own short backoff.
        assert!(
            took >= Duration::from_millis(900),
            "Retry-After {retry_after:?} not honoured: retried after {took:?}"
        );
        target.assert_consistent(&env);
    }
}

#[test]
fn exhausted_retries_are_exit_7_and_remove_the_fresh_pending_entry() {
    for target in Target::CLIENT_SET {
        let env = target.seeded();
        for _ in 0..3 {
            env.fake.push_fault(target.provider, Fault::Status(503));
        }
        let run = target.rotate(&env, &["--json", "--retries", "2"]);
        run.assert_code(7).assert_one_line_error("after 3 tries");
        let json = run.json();
        assert_eq!(json["status"], "error");
        assert_eq!(json["attempts"], 3);
        assert_eq!(target.live(&env), target.initial, "nothing changed");
        assert_eq!(env.lookup(&target.slot(&env, "#pending")), None);
        assert_eq!(
            env.lookup(&target.entry(&env)).as_deref(),
            Some(target.initial)
        );
    }
}

#[test]
fn a_failure_after_a_try_that_may_have_landed_is_exit_9_and_keeps_pending() {
    for target in Target::CLIENT_SET {
        let env = target.seeded();
        env.fake.push_fault(target.provider, Fault::CommitThenDrop);
        env.fake
            .push_fault(target.provider, Fault::RateLimited(None));
        let run = target.rotate(&env, &["--retries", "1"]);
        run.assert_code(9)
            .assert_one_line_error("an earlier try may have reached the provider");
        let live = target.live(&env);
        assert_ne!(live, target.initial, "the first try committed");
        assert_eq!(
            env.lookup(&target.slot(&env, "#pending")).as_deref(),
            Some(live.as_str()),
            "the live password must be kept"
        );
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);
    }
}

#[test]
fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    let target = Target::VOBIZ;
    let env = target.seeded();
    env.fake
        .push_fault(target.provider, Fault::RateLimited(Some("3600".into())));
    let run = target.rotate(&env, &["--json", "--deadline", "60"]);
    run.assert_code(7)
        .assert_one_line_error("would pass the --deadline of 60s");
    assert_eq!(run.json()["attempts"], 1);
    assert_eq!(env.lookup(&target.slot(&env, "#pending")), None);
}

#[test]
fn retries_zero_sends_once() {
    let target = Target::EXOTEL;
    let env = target.seeded();
    env.fake.push_fault(target.provider, Fault::Status(503));
    let run = target.rotate(&env, &["--json", "--retries", "0"]);
    run.assert_code(7);
    assert_eq!(run.json()["attempts"], 1);
    assert_eq!(env.fake.requests().len(), 1);
}

#[test]
fn telepath_never_resends_a_post_that_reached_it() {
    for fault in [
        Fault::Status(503),
        Fault::RateLimited(Some("0".into())),
        Fault::Status(502),
        Fault::CommitThenDrop,
    ] {
        let target = Target::TELEPATH;
        let env = target.seeded();
        env.fake.push_fault(target.provider, fault.clone());
        let run = target.rotate(&env, &["--json"]);
        assert!(run.code == 7 || run.code == 9, "{fault:?}: {}", run.stderr);
        assert_eq!(run.json()["attempts"], 1, "{fault:?}");
        assert_eq!(env.fake.requests().len(), 1, "{fault:?} was resent");
    }
}

#[test]
fn telepath_retries_a_refused_connection_and_changes_nothing() {
    let target = Target::TELEPATH;
    let mut env = target.seeded();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let base = format!("http://127.0.0.1:{port}/telepath/v1");
    env.set_env("SIPROT_TELEPATH_BASE_URL", &base);
    let run = target.rotate(&env, &["--json", "--retries", "2"]);
    run.assert_code(7).assert_one_line_error("after 3 tries");
    assert_eq!(run.json()["attempts"], 3);
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
    assert_eq!(target.live(&env), target.initial);
}

#[test]
fn telepath_retries_dns_and_tls_failures_that_never_reached_it() {
    let target = Target::TELEPATH;
    let env = target.seeded();
    // `.invalid` never resolves (RFC 6761).
    let dns = target.rotate(
        &env,
        &[
            "--json",
            "--retries",
            "1",
            "--connect-timeout",
            "3",
            "--base-url",
            "https://telepath.invalid/v1",
        ],
    );
    dns.assert_code(7)
        .assert_one_line_error("could not connect");
    assert_eq!(dns.json()["attempts"], 2);
    // TLS to the fake's plain-HTTP port: the handshake fails, no request is ever made.
    let base = format!("https://{}/telepath/v1", env.addr);
    let tls = target.rotate(&env, &["--json", "--retries", "1", "--base-url", &base]);
    tls.assert_code(7)
        .assert_one_line_error("could not connect");
    assert_eq!(tls.json()["attempts"], 2);
    assert!(
        env.fake.requests().is_empty(),
        "nothing reached the provider"
    );
    assert_eq!(target.live(&env), target.initial);
    assert_eq!(
        env.lookup(&target.entry(&env)).as_deref(),
        Some(target.initial)
    );
}
