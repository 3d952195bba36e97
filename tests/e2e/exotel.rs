use crate::support::{EXOTEL_SID, FakeProvider, Fault, TestEnv};

const USER: &str = "6f1c2d3e-aaaa-bbbb-cccc-0123456789ab";
const DEVICE: &str = "dev_01";

fn entry() -> String {
    format!("exotel/{EXOTEL_SID}/{USER}/{DEVICE}")
}

fn env_with_device() -> TestEnv {
    let env = TestEnv::start();
    env.fake
        .add_exotel_device(USER, DEVICE, "Old-Exotel-Pass-1");
    env
}

fn rotate_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec!["rotate", "--provider", "exotel", USER, "--device", DEVICE];
    args.extend_from_slice(extra);
    args
}

#[test]
fn rotation_sets_a_generated_password_and_promotes_it() {
    let env = env_with_device();
    env.store(&entry(), "Old-Exotel-Pass-1");
    let run = env.run(&rotate_args(&["--json"]), None);
    run.assert_code(0);
    let live = env.fake.exotel_password(USER, DEVICE).unwrap();
    assert_ne!(live, "Old-Exotel-Pass-1");
    assert_eq!(live.chars().count(), 24);
    assert_eq!(env.lookup(&entry()).as_deref(), Some(live.as_str()));
    assert_eq!(
        env.lookup(&format!("{}#previous", entry())).as_deref(),
        Some("Old-Exotel-Pass-1")
    );
    assert_eq!(env.lookup(&format!("{}#pending", entry())), None);
    let json = run.json();
    assert_eq!(json["keyring_entry"], entry());
    assert_eq!(json["device"], DEVICE);
    assert_eq!(json["keyring_writes"], 4);
    assert_eq!(json["request_id"].as_str().unwrap().len(), 32);

    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(
        request.path,
        format!("/exotel/v2/accounts/{EXOTEL_SID}/users/{USER}/devices/{DEVICE}/password")
    );
    assert!(
        request
            .headers
            .get("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["password"], live.as_str());
}

#[test]
fn a_password_from_stdin_is_checked_then_set() {
    let env = env_with_device();
    let chosen = "Chosen-Exotel-Pass-42";
    env.remember_secret(chosen);
    let input = format!("{chosen}\n");
    env.run(&rotate_args(&["--password-stdin"]), Some(input.as_bytes()))
        .assert_code(0);
    assert_eq!(
        env.fake.exotel_password(USER, DEVICE).as_deref(),
        Some(chosen)
    );
    assert_eq!(env.lookup(&entry()).as_deref(), Some(chosen));
}

#[test]
fn a_weak_password_from_stdin_is_exit_3_and_nothing_happens() {
    let env = env_with_device();
    env.remember_secret("weakpass");
    env.run(&rotate_args(&["--password-stdin"]), Some(b"weakpass\n"))
        .assert_code(3)
        .assert_one_line_error("fails the exotel policy");
    assert!(env.fake.requests().is_empty());
    assert_eq!(env.lookup(&format!("{}#pending", entry())), None);
}

#[test]
fn an_unknown_device_is_exit_6_and_the_pending_entry_is_removed() {
    let env = env_with_device();
    let run = env.run(
        &[
            "rotate",
            "--provider",
            "exotel",
            USER,
            "--device",
            "dev_missing",
        ],
        None,
    );
    run.assert_code(6).assert_one_line_error("not found");
    let pending = format!("exotel/{EXOTEL_SID}/{USER}/dev_missing#pending");
    assert_eq!(env.lookup(&pending), None);
}

#[test]
fn an_unknown_outcome_keeps_pending_and_a_rerun_resends_the_same_password() {
    let env = env_with_device();
    env.store(&entry(), "Old-Exotel-Pass-1");
    env.fake
        .push_fault(FakeProvider::Exotel, Fault::CommitThenStatus(500));
    let first = env.run(&rotate_args(&["--retries", "0"]), None);
    first
        .assert_code(9)
        .assert_one_line_error("run the same command again");
    let live = env.fake.exotel_password(USER, DEVICE).unwrap();
    assert_ne!(live, "Old-Exotel-Pass-1");
    assert_eq!(
        env.lookup(&format!("{}#pending", entry())).as_deref(),
        Some(live.as_str())
    );
    assert_eq!(env.lookup(&entry()).as_deref(), Some("Old-Exotel-Pass-1"));

    let second = env.run(&rotate_args(&["--json"]), None);
    second.assert_code(0);
    assert_eq!(second.json()["status"], "resumed");
    assert_eq!(env.fake.exotel_password(USER, DEVICE).unwrap(), live);
    assert_eq!(env.lookup(&entry()).as_deref(), Some(live.as_str()));
    assert_eq!(
        env.lookup(&format!("{}#previous", entry())).as_deref(),
        Some("Old-Exotel-Pass-1")
    );
    assert_eq!(env.lookup(&format!("{}#pending", entry())), None);
    let requests = env.fake.requests();
    let sent: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["password"], sent[1]["password"]);
}

#[test]
fn a_device_is_required() {
    let env = env_with_device();
    env.run(&["rotate", "--provider", "exotel", USER], None)
        .assert_code(2)
        .assert_one_line_error("--device");
}

#[test]
fn region_and_credentials_come_from_the_environment() {
    let mut env = env_with_device();
    env.set_env("EXOTEL_REGION", "atlantis");
    env.run(&rotate_args(&[]), None)
        .assert_code(4)
        .assert_one_line_error("EXOTEL_REGION");
    env.set_env("EXOTEL_REGION", "mumbai");
    env.remove_env("EXOTEL_API_TOKEN");
    env.run(&rotate_args(&[]), None)
        .assert_code(4)
        .assert_one_line_error("EXOTEL_API_TOKEN");
    assert!(env.fake.requests().is_empty());
}

#[test]
fn the_region_picks_the_default_base_url() {
    let mut env = env_with_device();
    env.remove_env("SIPROT_EXOTEL_BASE_URL");
    env.set_env("EXOTEL_REGION", "mumbai");
    let run = env.run(&rotate_args(&["--dry-run", "--json"]), None);
    run.assert_code(0);
    assert!(
        run.json()["plan"][1]
            .as_str()
            .unwrap()
            .starts_with("PUT https://ccm-api.in.exotel.com/v2/accounts/")
    );
    env.set_env("EXOTEL_REGION", "singapore");
    let run = env.run(&rotate_args(&["--dry-run", "--json"]), None);
    assert!(
        run.json()["plan"][1]
            .as_str()
            .unwrap()
            .starts_with("PUT https://ccm-api.exotel.com/v2/accounts/")
    );
}

#[test]
fn a_reset_connection_without_retries_keeps_pending_for_the_rerun() {
    let env = env_with_device();
    env.fake
        .push_fault(FakeProvider::Exotel, Fault::CommitThenDrop);
    env.run(&rotate_args(&["--retries", "0"]), None)
        .assert_code(9)
        .assert_one_line_error("#pending");
    let live = env.fake.exotel_password(USER, DEVICE).unwrap();
    assert_eq!(
        env.lookup(&format!("{}#pending", entry())).as_deref(),
        Some(live.as_str())
    );
    env.run(&rotate_args(&[]), None).assert_code(0);
    assert_eq!(env.lookup(&entry()).as_deref(), Some(live.as_str()));
}

#[test]
fn a_request_the_provider_refuses_removes_the_fresh_pending_entry() {
    let env = env_with_device();
    env.fake
        .push_fault(FakeProvider::Exotel, Fault::Status(400));
    env.run(&rotate_args(&[]), None)
        .assert_code(1)
        .assert_one_line_error("refused the request (HTTP 400)");
    assert_eq!(env.lookup(&format!("{}#pending", entry())), None);
    assert_eq!(env.lookup(&entry()), None);
    assert_eq!(
        env.fake.exotel_password(USER, DEVICE).as_deref(),
        Some("Old-Exotel-Pass-1")
    );
}

#[test]
fn a_stdin_password_that_differs_from_a_pending_one_is_refused() {
    let env = env_with_device();
    env.store(&format!("{}#pending", entry()), "Staged-Earlier-Pass-1");
    env.remember_secret("Other-Chosen-Pass-2");
    env.run(
        &rotate_args(&["--password-stdin"]),
        Some(b"Other-Chosen-Pass-2\n"),
    )
    .assert_code(9)
    .assert_one_line_error("without --password-stdin");
    assert!(env.fake.requests().is_empty());
    assert_eq!(
        env.lookup(&format!("{}#pending", entry())).as_deref(),
        Some("Staged-Earlier-Pass-1")
    );
}
