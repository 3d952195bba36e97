//! Hostile answers and input: redirects, oversized and slow bodies, invalid UTF-8, and
//! awkward passwords on standard input.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::{Fault, Target};

#[test]
fn a_redirect_is_refused_and_no_key_reaches_the_second_host() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let location = format!("http://{}/steal", elsewhere.local_addr().unwrap());
    for (target, status) in Target::ALL.into_iter().zip([301, 303, 308]).chain([
        (Target::TELEPATH, 307),
        (Target::EXOTEL, 302),
        (Target::VOBIZ, 307),
        (Target::PLIVO, 302),
    ]) {
        let env = target.seeded();
        env.fake
            .push_fault(target.provider, Fault::Redirect(status, location.clone()));
        let run = target.rotate(&env, &["--json"]);
        run.assert_code(4).assert_one_line_error("redirect refused");
        assert_eq!(run.json()["attempts"], 1, "a redirect is not retried");
        assert_eq!(env.fake.requests().len(), 1);
        assert_eq!(target.live(&env), target.initial);
        assert_eq!(
            env.lookup(&target.entry(&env)).as_deref(),
            Some(target.initial)
        );
        assert_eq!(env.lookup(&target.slot(&env, "#pending")), None);
    }
    match elsewhere.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("siprot connected to the redirect target: {other:?}"),
    }
}

#[test]
fn a_body_over_1_mib_is_refused_without_reading_it_all() {
    let target = Target::TELEPATH;
    let env = target.seeded();
    env.fake
        .push_fault(target.provider, Fault::CommitThenHugeBody(8 * 1024 * 1024));
    let run = target.rotate(&env, &[]);
    run.assert_code(9)
        .assert_one_line_error("larger than 1048576 bytes");
    // Client-set: the password is kept pending, and the retry (fault used up) finishes it.
    let target = Target::VOBIZ;
    let env = target.seeded();
    env.fake
        .push_fault(target.provider, Fault::CommitThenHugeBody(8 * 1024 * 1024));
    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["attempts"], 2);
    target.assert_consistent(&env);
}

#[test]
fn a_slow_drip_body_is_cut_off_by_the_timeout() {
    for target in [Target::TELEPATH, Target::EXOTEL] {
        let env = target.seeded();
        env.fake.push_fault(
            target.provider,
            Fault::CommitThenSlowDrip(Duration::from_millis(200)),
        );
        let started = Instant::now();
        let run = target.rotate(&env, &["--timeout", "2", "--retries", "0"]);
        let took = started.elapsed();
        run.assert_code(9);
        // Bounded: the 2 s timeout ends it, not the 10-minute drip.
        assert!(took < Duration::from_secs(60), "took {took:?}");
        if target.provider != crate::support::FakeProvider::Telepath {
            assert_eq!(
                env.lookup(&target.slot(&env, "#pending")),
                Some(target.live(&env))
            );
        }
    }
}

#[test]
fn invalid_utf8_bodies_are_clear_errors() {
    let target = Target::TELEPATH;
    let env = target.seeded();
    env.fake.push_fault(
        target.provider,
        Fault::CommitThenRawBody(b"{\"sip_password\":\"\xff\xfe\"}".to_vec()),
    );
    target
        .rotate(&env, &[])
        .assert_code(9)
        .assert_one_line_error("could not be read");
    for target in Target::ALL {
        let env = target.seeded();
        env.fake.push_fault(
            target.provider,
            Fault::StatusWithRawBody(400, b"\xc3\x28 not utf-8 \xff".to_vec()),
        );
        target
            .rotate(&env, &[])
            .assert_code(1)
            .assert_one_line_error("(HTTP 400): bad request");
    }
}

#[test]
fn passwords_on_stdin_are_handled_as_documented() {
    let target = Target::EXOTEL;
    // (input, what the provider must end up with, or the exit code)
    let cases: [(&[u8], Result<&str, i32>); 8] = [
        (b"Stdin-Exotel-Pass-1\n", Ok("Stdin-Exotel-Pass-1")),
        (b"Stdin-Exotel-Pass-2\r\n", Ok("Stdin-Exotel-Pass-2")),
        (b"Stdin-Exotel-Pass-3", Ok("Stdin-Exotel-Pass-3")),
        (b"Stdin-Exotel-Pass-4\n\n", Err(3)),
        (b"Stdin-Exo\0tel-Pass-5\n", Err(3)),
        (b"", Err(3)),
        (b"\n", Err(3)),
        (b"Stdin-\xff-Exotel-Pass-6\n", Err(2)),
    ];
    for (input, expected) in cases {
        let env = target.seeded();
        if let Ok(text) = std::str::from_utf8(input) {
            env.remember_secret(text.trim_end());
        }
        let run = env.run(&target.rotate_args(&["--password-stdin"]), Some(input));
        match expected {
            Ok(password) => {
                run.assert_code(0);
                assert_eq!(target.live(&env), password);
                target.assert_consistent(&env);
            }
            Err(code) => {
                run.assert_code(code);
                assert!(env.fake.requests().is_empty(), "{input:?} was sent");
                assert_eq!(env.lookup(&target.slot(&env, "#pending")), None);
            }
        }
    }
    let env = target.seeded();
    let huge = vec![b'a'; 5000];
    env.run(&target.rotate_args(&["--password-stdin"]), Some(&huge))
        .assert_code(2)
        .assert_one_line_error("longer than 4096 bytes");
}
