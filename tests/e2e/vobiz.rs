use crate::support::{FakeProvider, Fault, TestEnv};

const CRED: &str = "aabbccdd-1234-5678-90ab-cdef12345678";

fn entry(env: &TestEnv) -> String {
    format!("vobiz/{}/{CRED}", env.fake.config().vobiz_auth_id)
}

fn env_with_credential() -> TestEnv {
    let env = TestEnv::start();
    env.fake
        .add_vobiz_credential(CRED, "acme_sip_user_01", "Old-Vobiz-Pass-1");
    env
}

#[test]
fn rotation_sets_the_password_with_the_default_description() {
    let env = env_with_credential();
    let run = env.run(&["rotate", "--provider", "vobiz", CRED, "--json"], None);
    run.assert_code(0);
    let cred = env.fake.vobiz_credential(CRED).unwrap();
    assert_ne!(cred.password, "Old-Vobiz-Pass-1");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    assert_eq!(
        cred.description.as_deref(),
        Some(format!("Rotated by siprot on {today}").as_str())
    );
    assert_eq!(
        env.lookup(&entry(&env)).as_deref(),
        Some(cred.password.as_str())
    );
    let json = run.json();
    assert_eq!(json["username"], "acme_sip_user_01");
    assert_eq!(
        json["keyring_writes"], 3,
        "no current before: pending, current, delete pending"
    );
    let request = &env.fake.requests()[0];
    assert_eq!(
        request.headers.get("x-auth-id").unwrap(),
        &env.fake.config().vobiz_auth_id
    );
}

#[test]
fn a_custom_description_is_sent() {
    let env = env_with_credential();
    env.run(
        &[
            "rotate",
            "--provider",
            "vobiz",
            CRED,
            "--description",
            "Q3 rotation",
        ],
        None,
    )
    .assert_code(0);
    assert_eq!(
        env.fake
            .vobiz_credential(CRED)
            .unwrap()
            .description
            .as_deref(),
        Some("Q3 rotation")
    );
}

#[test]
fn description_is_refused_for_providers_without_one() {
    let env = TestEnv::start();
    env.run(
        &[
            "rotate",
            "--provider",
            "telepath",
            "conn_x",
            "--description",
            "x",
        ],
        None,
    )
    .assert_code(2)
    .assert_one_line_error("--description");
}

#[test]
fn disable_and_enable_flip_the_flag() {
    let env = env_with_credential();
    let run = env.run(&["disable", "--provider", "vobiz", CRED, "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["enabled"], false);
    assert!(!env.fake.vobiz_credential(CRED).unwrap().enabled);
    let run = env.run(&["enable", "--provider", "vobiz", CRED], None);
    run.assert_code(0);
    assert!(run.stdout.contains("is now enabled"));
    assert!(env.fake.vobiz_credential(CRED).unwrap().enabled);
    assert_eq!(
        env.fake.vobiz_credential(CRED).unwrap().password,
        "Old-Vobiz-Pass-1"
    );
    let audit = env.audit_lines();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["action"], "disable");
}

#[test]
fn a_wrong_token_is_exit_5_and_nothing_is_kept() {
    let mut env = env_with_credential();
    env.set_env("VOBIZ_AUTH_TOKEN", "wrong-token-123456");
    env.run(&["rotate", "--provider", "vobiz", CRED], None)
        .assert_code(5)
        .assert_one_line_error("invalid auth id or token");
    assert_eq!(env.lookup(&format!("{}#pending", entry(&env))), None);
    assert_eq!(
        env.fake.vobiz_credential(CRED).unwrap().password,
        "Old-Vobiz-Pass-1"
    );
}

#[test]
fn rate_limiting_without_retries_is_exit_7_with_nothing_changed() {
    let env = env_with_credential();
    env.fake
        .push_fault(FakeProvider::Vobiz, Fault::RateLimited(None));
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "vobiz",
            CRED,
            "--json",
            "--retries",
            "0",
        ],
        None,
    );
    run.assert_code(7);
    assert_eq!(run.json()["attempts"], 1);
    assert_eq!(env.lookup(&format!("{}#pending", entry(&env))), None);
    assert_eq!(env.lookup(&entry(&env)), None);
    assert_eq!(
        env.fake.vobiz_credential(CRED).unwrap().password,
        "Old-Vobiz-Pass-1"
    );
}

#[test]
fn json_errors_are_one_object_on_stdout() {
    let env = env_with_credential();
    let run = env.run(
        &["rotate", "--provider", "vobiz", "nope-credential", "--json"],
        None,
    );
    run.assert_code(6);
    let json = run.json();
    assert_eq!(json["status"], "error");
    assert_eq!(json["exit_code"], 6);
}

#[test]
fn an_unreadable_answer_to_disable_is_exit_1_not_9() {
    let env = env_with_credential();
    env.fake.push_fault(
        FakeProvider::Vobiz,
        Fault::CommitThenBody("<html>ok</html>".into()),
    );
    env.run(&["disable", "--provider", "vobiz", CRED], None)
        .assert_code(1)
        .assert_one_line_error("unusable response");
}
