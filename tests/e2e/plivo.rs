//! Plivo: the update (a `POST` of the password, answered 202 without the SIP username),
//! then the read-back of the endpoint for its `username`, which is best effort: its
//! failure leaves the username unknown and the rotation done.

use crate::support::{Fault, Target};

#[test]
fn the_update_then_the_read_back_of_the_sip_username() {
    let target = Target::PLIVO;
    let env = target.seeded();
    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    target.assert_consistent(&env);
    let json = run.json();
    assert_eq!(json["username"], "sipuser01");
    assert_eq!(json["attempts"], 1, "the read-back is no try of the update");
    let requests = env.fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["POST", "GET"]);
    let path = format!(
        "/plivo/v1/Account/{}/Endpoint/{}/",
        env.fake.config().plivo_auth_id,
        target.id
    );
    assert!(requests.iter().all(|r| r.path == path), "{requests:?}");
    let update: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(update, serde_json::json!({"password": target.live(&env)}));
    assert!(requests[1].body.is_empty());
}

#[test]
fn a_read_back_that_fails_leaves_the_username_unknown_and_the_rotation_done() {
    let target = Target::PLIVO;
    let env = target.seeded();
    // The update is handled as usual; the read-back gets the 500.
    env.fake
        .push_fault(target.provider, Fault::Delay(std::time::Duration::ZERO));
    env.fake.push_fault(target.provider, Fault::Status(500));
    let run = target.rotate(&env, &["--json", "--retries", "0", "-v"]);
    run.assert_code(0);
    assert_eq!(run.json()["status"], "rotated");
    assert_eq!(run.json()["username"], serde_json::Value::Null);
    assert!(
        run.stderr.contains("its SIP username could not be read")
            && run.stderr.contains("HTTP 500")
            && run.stderr.contains("Server error"),
        "{}",
        run.stderr
    );
    assert_ne!(target.live(&env), target.initial);
    target.assert_consistent(&env);

    // A read-back answered 500 once is tried again, as the update would be.
    let before = env.fake.requests().len();
    env.fake
        .push_fault(target.provider, Fault::Delay(std::time::Duration::ZERO));
    env.fake.push_fault(target.provider, Fault::Status(500));
    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["username"], "sipuser01");
    assert_eq!(run.json()["attempts"], 1);
    target.assert_consistent(&env);
    let methods: Vec<String> = env.fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "GET", "GET"]);
}

#[test]
fn the_fake_answers_plivos_error_format() {
    let target = Target::PLIVO;
    let mut env = target.seeded();
    env.set_env("PLIVO_AUTH_TOKEN", "pl_wrong_token_0123456789");
    let run = target.rotate(&env, &["--json"]);
    run.assert_code(5)
        .assert_one_line_error("HTTP 401")
        .assert_one_line_error("Authentication failed");
    target.assert_consistent(&env);

    let env = target.seeded();
    let run = env.run(&["rotate", "--provider", "plivo", "10000000000001"], None);
    run.assert_code(6)
        .assert_one_line_error("HTTP 404")
        .assert_one_line_error("not found");
    let methods: Vec<String> = env.fake.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["POST"], "no read-back after a failed update");
}

#[test]
fn a_password_of_five_characters_is_plivos_minimum() {
    let target = Target::PLIVO;
    let env = target.seeded();
    let run = env.run(&target.rotate_args(&["--password-stdin"]), Some(b"Ab1-x\n"));
    run.assert_code(0);
    assert_eq!(target.live(&env), "Ab1-x");
    target.assert_consistent(&env);

    let env = target.seeded();
    let run = env.run(&target.rotate_args(&["--password-stdin"]), Some(b"Ab1x\n"));
    run.assert_code(3)
        .assert_one_line_error("at least 5 required");
    assert!(
        env.fake.requests().is_empty(),
        "a refused password is not sent"
    );
    assert_eq!(target.live(&env), target.initial);
}
