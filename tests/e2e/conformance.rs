//! The conformance suite every provider runs, in the manner of object_store's shared tests
//! that every backend runs: each case loops over siprot's registry
//! (`siprot::providers::ALL`) and runs against that provider's fake and its [`Target`], so a
//! new provider is covered as soon as it is registered, and fails here until it has both
//! (see CONTRIBUTING.md).
//!
//! What every provider must show: each error status has its exit code and the provider's
//! message, from the registration's `error_paths`; what is resent after a try that may have
//! landed is what the registration's `resend` says; secrets it was sent never come out, even
//! when it echoes them; and its registration's flags (`origin`, `second_part`,
//! `takes_description`, `returns_sip_username`, `can_toggle`) match what it does.

use std::time::Duration;

use serde_json::{Value, json};
use siprot::providers::{ALL, PasswordOrigin, ProviderKind, Registration, second_parts};
use siprot::retry::Resend;

use crate::support::{FakeProvider, Fault, Target};

/// Every registered provider with its test target; panics, saying what to add, for a
/// provider without a fake or a target.
fn registered() -> Vec<(&'static Registration, Target)> {
    let mut missing = Vec::new();
    let mut found = Vec::new();
    for kind in ALL.iter().copied().map(ProviderKind::registration) {
        let name = kind.name;
        let fake = FakeProvider::from_name(name);
        if fake.is_none() {
            missing.push(format!(
                "provider {name} is registered but has no fake: add \
                 examples/fake-providers/{name}.rs (with its FakeProvider constant) and list \
                 it in FakeProvider::ALL in examples/fake-providers/server.rs"
            ));
        }
        match Target::for_name(name) {
            None => missing.push(format!(
                "provider {name} is registered but has no test target: add a Target for it \
                 to Target::ALL in tests/support/targets.rs"
            )),
            Some(target) if Some(target.provider) != fake => missing.push(format!(
                "the test target of {name} points at the fake {:?}",
                target.provider
            )),
            Some(target) => found.push((kind, target)),
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    found
}

/// `{"a": {"b": message}}` for the path `["a", "b"]`.
fn body_at(path: &[&str], message: Value) -> Value {
    path.iter()
        .rev()
        .fold(message, |inner, key| json!({ (*key): inner }))
}

#[test]
fn every_registered_provider_has_a_fake_and_a_target() {
    let registered = registered();
    assert_eq!(registered.len(), ALL.len());
    // And the other way round: no fake or target for a provider siprot does not know.
    for fake in FakeProvider::ALL {
        assert!(
            ProviderKind::from_name(fake.name()).is_some(),
            "the fake {fake:?} imitates no registered provider"
        );
    }
    for target in Target::ALL {
        assert!(
            ProviderKind::from_name(target.name).is_some(),
            "the target {} names no registered provider",
            target.name
        );
    }
}

#[test]
fn every_error_status_has_its_exit_code() {
    // (status, exit code): 7 = nothing changed, retry later; 9 = may have changed.
    let cases = [
        (400, 1),
        (401, 5),
        (403, 5),
        (404, 6),
        (409, 1),
        (422, 1),
        (429, 7),
        (500, 9),
        (502, 9),
        (503, 7),
        (504, 9),
    ];
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        for (status, code) in cases {
            let current = env.lookup(&target.entry(&env));
            let live = target.live(&env);
            env.fake.push_fault(target.provider, Fault::Status(status));
            let run = target.rotate(&env, &["--retries", "0", "--json"]);
            run.assert_code(code)
                .assert_one_line_error(&format!("HTTP {status}"));
            let json = run.json();
            assert_eq!(json["exit_code"], code, "{name} {status}");
            assert_eq!(json["attempts"], 1, "{name} {status}");
            assert_eq!(target.live(&env), live, "{name} {status} changes nothing");
            let pending = env.lookup(&target.slot(&env, "#pending"));
            match (code, registration.origin) {
                (9, PasswordOrigin::ClientSupplied) => {
                    assert!(
                        pending.is_some(),
                        "{name} {status}: unknown outcome keeps pending"
                    );
                    env.run(&["recover"], None).assert_code(0);
                    target.assert_consistent(&env);
                }
                (9, _) => {
                    assert_eq!(pending, None, "{name} {status}");
                    target.rotate(&env, &[]).assert_code(0);
                    target.assert_consistent(&env);
                }
                _ => {
                    assert_eq!(pending, None, "{name} {status}");
                    assert_eq!(env.lookup(&target.entry(&env)), current, "{name} {status}");
                }
            }
        }
    }
}

#[test]
fn the_providers_own_error_messages_are_shown() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        for (status, code) in [(400, 1), (409, 1), (422, 1), (401, 5), (404, 6), (503, 7)] {
            // In the provider's own error format: its registration's error paths must
            // find it there.
            let marker = format!("conformance says no to {status}");
            env.fake.push_fault(
                target.provider,
                Fault::StatusWithMessage(status, marker.clone()),
            );
            let run = target.rotate(&env, &["--retries", "0"]);
            run.assert_code(code).assert_one_line_error(&marker);
            assert!(
                run.stderr.contains(&format!("HTTP {status}")),
                "{name}: {}",
                run.stderr
            );
            target.assert_consistent(&env);
        }
    }
}

#[test]
fn error_messages_are_read_at_every_registered_path() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        for (i, path) in registration.error_paths.iter().enumerate() {
            for status in [400, 409, 422] {
                let marker = format!("conformance says no {i}-{status}");
                let body = body_at(path, json!(marker));
                env.fake.push_fault(
                    target.provider,
                    Fault::StatusWithRawBody(status, body.to_string().into_bytes()),
                );
                let run = target.rotate(&env, &["--retries", "0"]);
                run.assert_code(1).assert_one_line_error(&marker);
                assert!(
                    run.stderr.contains(&format!("HTTP {status}")),
                    "{name} {path:?}: {}",
                    run.stderr
                );
                target.assert_consistent(&env);
            }
        }
    }
}

#[test]
fn what_is_resent_is_what_the_registration_allows() {
    let faults = [
        ("a reset after commit", Fault::CommitThenDrop, &[][..], 9),
        ("a 503", Fault::Status(503), &[][..], 7),
        (
            "a timeout after commit",
            Fault::CommitThenDelay(Duration::from_secs(4)),
            &["--timeout", "1"][..],
            9,
        ),
    ];
    for (registration, target) in registered() {
        let name = registration.name;
        for (what, fault, extra, code_if_not_resent) in &faults {
            let env = target.seeded();
            env.fake.push_fault(target.provider, fault.clone());
            let mut args = vec!["--json", "--retries", "1"];
            args.extend_from_slice(extra);
            let run = target.rotate(&env, &args);
            // The updates: a provider may read the credential back (plivo's GET of its
            // SIP username), which changes nothing and is no try of the update.
            let requests = env
                .fake
                .requests()
                .iter()
                .filter(|request| request.method != "GET")
                .count();
            match registration.resend {
                Resend::Idempotent => {
                    run.assert_code(0);
                    assert_eq!(run.json()["attempts"], 2, "{name} after {what}");
                    assert_eq!(requests, 2, "{name} resends after {what}");
                }
                Resend::OnlyIfNotSent => {
                    run.assert_code(*code_if_not_resent);
                    assert_eq!(run.json()["attempts"], 1, "{name} after {what}");
                    assert_eq!(requests, 1, "{name} must not resend after {what}");
                    // One rerun makes the keyring right again.
                    target.rotate(&env, &[]).assert_code(0);
                }
                other => panic!("{name}: no conformance case for {other:?} yet"),
            }
            target.assert_consistent(&env);
        }
    }
}

#[test]
fn secrets_a_provider_echoes_never_come_out() {
    for (registration, target) in registered() {
        let name = registration.name;
        let mut env = target.seeded();
        // Every log line too, at its most talkative.
        env.set_env("RUST_LOG", "trace");
        let echo = "you sent {secrets} (end of echo)".to_owned();
        for status in [400, 401, 403, 404, 409, 422, 429, 500, 503] {
            env.fake.push_fault(
                target.provider,
                Fault::StatusWithMessage(status, echo.clone()),
            );
            for json in [false, true] {
                let mut extra = vec!["--retries", "0"];
                if json {
                    extra.push("--json");
                    env.fake.push_fault(
                        target.provider,
                        Fault::StatusWithMessage(status, echo.clone()),
                    );
                }
                // TestEnv::run fails the test if any sent secret is in any output or the
                // audit log; the echo must still be there, masked.
                let run = env.run(&target.rotate_args(&extra), None);
                assert_ne!(run.code, 0, "{name} {status}");
                let output = format!("{}{}", run.stdout, run.stderr);
                assert!(
                    output.contains("you sent ") && output.contains(" (end of echo)"),
                    "{name} {status}: the provider's message is not shown: {output}"
                );
                assert!(
                    output.contains("<redacted>"),
                    "{name} {status}: the echoed secrets are not masked: {output}"
                );
            }
        }
        // A 500 left the outcome unknown. A client-set password waits in `#pending`:
        // recover settles it. A server-generated one may be dead, and a later attempt that
        // changed nothing (the 503) does not make it live: recover exits 9 naming the
        // rotate that restores service, and after it recover has nothing left.
        let recover = env.run(&["recover"], None);
        if registration.origin == PasswordOrigin::ServerGenerated {
            let next_step = format!("siprot {}", target.rotate_args(&[]).join(" "));
            recover.assert_code(9);
            assert!(
                recover.stdout.contains(&next_step) && recover.stderr.contains(&next_step),
                "{name}: recover names {next_step}: {}{}",
                recover.stdout,
                recover.stderr
            );
            target.rotate(&env, &[]).assert_code(0);
            env.run(&["recover"], None).assert_code(0);
        } else {
            recover.assert_code(0);
        }
        target.assert_consistent(&env);
    }
}

#[test]
fn the_origin_says_who_chooses_the_password() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        target.rotate(&env, &[]).assert_code(0);
        let live = target.live(&env);
        assert_ne!(live, target.initial, "{name} rotated");
        target.assert_consistent(&env);
        let sent = env.fake.requests().iter().any(|request| {
            // In a JSON body as it is, in a form percent-encoded.
            String::from_utf8_lossy(&request.body).contains(&live)
                || url::form_urlencoded::parse(&request.body).any(|(_, value)| value == live)
        });
        match registration.origin {
            PasswordOrigin::ServerGenerated => {
                assert!(
                    !sent,
                    "{name} generates the password: siprot must send none"
                )
            }
            PasswordOrigin::ClientSupplied => {
                assert!(sent, "{name} takes siprot's password: it must be sent");
                let report = registration
                    .policy
                    .check(&secrecy::SecretString::from(live.clone()));
                assert!(report.ok, "{name}: the password sent passes its policy");
            }
            other => panic!("{name}: no conformance case for {other:?} yet"),
        }
    }
}

#[test]
fn a_second_part_is_required_exactly_where_the_registration_says() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        let own = registration.second_part.map(|part| part.key);
        assert_eq!(
            target.part().map(|(_, key, _)| key),
            own,
            "{name}: its target's second part is not the registration's"
        );
        // Without its own second part (where it has one).
        if let Some(part) = registration.second_part {
            let run = env.run(&["rotate", "--provider", name, target.id], None);
            run.assert_code(2).assert_one_line_error(part.flag);
        }
        // With any other registered kind of second part.
        for part in second_parts().into_iter().filter(|p| Some(p.key) != own) {
            let mut wrong = target.rotate_args(&[]);
            wrong.extend([part.flag, "conformance_part"]);
            let run = env.run(&wrong, None);
            run.assert_code(2).assert_one_line_error(part.flag);
        }
        assert!(env.fake.requests().is_empty(), "{name}: nothing sent");
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);
    }
}

#[test]
fn a_description_is_sent_exactly_where_the_registration_says() {
    let description = "conformance description 42";
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        let run = target.rotate(&env, &["--description", description]);
        let sent = env
            .fake
            .requests()
            .iter()
            .any(|request| String::from_utf8_lossy(&request.body).contains(description));
        if registration.takes_description {
            run.assert_code(0);
            assert!(sent, "{name} takes a description: it must be sent");
            target.assert_consistent(&env);
        } else {
            run.assert_code(2).assert_one_line_error("--description");
            assert!(env.fake.requests().is_empty(), "{name}: nothing sent");
        }
    }
}

#[test]
fn the_sip_username_is_reported_exactly_where_the_registration_says() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        let run = target.rotate(&env, &["--json"]);
        run.assert_code(0);
        let username = &run.json()["username"];
        assert_eq!(
            username.is_string(),
            registration.returns_sip_username,
            "{name}: username {username}"
        );
    }
}

#[test]
fn toggling_works_exactly_where_the_registration_says() {
    for (registration, target) in registered() {
        let name = registration.name;
        let env = target.seeded();
        let mut args = vec!["disable", "--provider", name, target.id];
        if let Some((flag, _, value)) = target.part() {
            args.extend([flag, value]);
        }
        let run = env.run(&args, None);
        if registration.can_toggle {
            run.assert_code(0);
            assert_eq!(env.fake.requests().len(), 1, "{name}: one request");
            args[0] = "enable";
            env.run(&args, None).assert_code(0);
        } else {
            run.assert_code(2);
            assert!(env.fake.requests().is_empty(), "{name}: nothing sent");
        }
        assert_eq!(
            target.live(&env),
            target.initial,
            "{name}: password unchanged"
        );
    }
}
