//! Twilio: a SIP credential named by its SID and its credential list (`--credential-list`,
//! the inventory's `credential_list`), a form-encoded `Password` over HTTP Basic, Twilio's
//! password policy, and a fake that, as Twilio does, changes nothing for a body it does
//! not read.

use crate::support::{Target, TestEnv, sdk};

const TARGET: Target = Target::TWILIO;

#[test]
fn a_rotation_posts_the_form_and_keeps_the_password_under_the_account_list_and_sid() {
    let env = TARGET.seeded();
    let list = TARGET.device.unwrap_or_default();
    let account = env.fake.config().twilio_account_sid.clone();
    let path = format!(
        "/twilio/2010-04-01/Accounts/{account}/SIP/CredentialLists/{list}/Credentials/{}.json",
        TARGET.id
    );

    let dry = TARGET.rotate(&env, &["--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout
            .contains(&format!("POST http://{}{path}", env.addr)),
        "{}",
        dry.stdout
    );
    assert!(env.fake.requests().is_empty());

    let run = TARGET.rotate(&env, &["--json"]);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["username"], "sipuser01");
    assert_eq!(
        json["keyring_entry"].as_str(),
        Some(format!("twilio/{account}/{list}/{}", TARGET.id).as_str()),
        "{json}"
    );
    TARGET.assert_consistent(&env);
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, path);
    assert_eq!(
        request.headers.get("accept").map(String::as_str),
        Some("application/json")
    );
    let shape = sdk::Shape::of(request);
    assert_eq!(
        shape.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        shape.parameters.keys().collect::<Vec<_>>(),
        ["Password"],
        "the one parameter Twilio reads"
    );
    let token = &env.fake.config().twilio_auth_token;
    assert_eq!(shape.auth, sdk::Auth::Basic(format!("{account}:{token}")));
}

/// Sends `body` with `content_type` to the fake's credential resource as Twilio's API
/// would receive it, with the Auth Token; returns the status and the body.
fn post_raw(env: &TestEnv, content_type: &str, body: &str) -> (u16, serde_json::Value) {
    const SCRIPT: &str = r#"
import base64, json, os, urllib.error, urllib.request
env = os.environ
auth = base64.b64encode((env["U"] + ":" + env["P"]).encode()).decode()
request = urllib.request.Request(env["URL"], data=env["BODY"].encode(), method="POST",
    headers={"Authorization": "Basic " + auth, "Content-Type": env["TYPE"]})
try:
    with urllib.request.urlopen(request) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"#;
    let config = env.fake.config();
    let url = format!(
        "http://{}/twilio/2010-04-01/Accounts/{}/SIP/CredentialLists/{}/Credentials/{}.json",
        env.addr,
        config.twilio_account_sid,
        TARGET.device.unwrap_or_default(),
        TARGET.id
    );
    let output = sdk::run(
        SCRIPT,
        &[
            ("U", config.twilio_account_sid.as_str()),
            ("P", config.twilio_auth_token.as_str()),
            ("URL", url.as_str()),
            ("BODY", body),
            ("TYPE", content_type),
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, body) = text.trim().split_once(' ').expect("status and body");
    (
        status.parse().expect("a status"),
        serde_json::from_str(body).expect("a JSON body"),
    )
}

#[test]
fn the_fake_changes_nothing_for_a_body_twilio_does_not_read() {
    let env = TARGET.seeded();
    let other = "Other-Twilio-Pass-77";
    env.remember_secret(other);
    for (content_type, body) in [
        ("application/json", format!("{{\"password\":\"{other}\"}}")),
        ("application/json", format!("{{\"Password\":\"{other}\"}}")),
        (
            "application/x-www-form-urlencoded",
            format!("password={other}"),
        ),
        (
            "application/x-www-form-urlencoded",
            format!("Secret={other}"),
        ),
    ] {
        let (status, answer) = post_raw(&env, content_type, &body);
        assert_eq!(status, 200, "{content_type} {answer}");
        assert_eq!(answer["sid"], TARGET.id);
        assert_eq!(answer["username"], "sipuser01");
        assert!(answer.get("password").is_none() && answer.get("Password").is_none());
        assert_eq!(
            TARGET.live(&env),
            TARGET.initial,
            "{content_type}: nothing changed"
        );
    }
    // The parameter Twilio reads, with a password its rule refuses: 400 in its format.
    let (status, answer) = post_raw(
        &env,
        "application/x-www-form-urlencoded",
        "Password=alllowercase2024",
    );
    env.remember_secret("alllowercase2024");
    assert_eq!(status, 400);
    assert_eq!(answer["status"], 400);
    assert!(answer["code"].is_number() && answer["more_info"].is_string());
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or("")
            .contains("mixed case")
    );
    assert_eq!(TARGET.live(&env), TARGET.initial);
    // And the one that works.
    let (status, _) = post_raw(
        &env,
        "application/x-www-form-urlencoded",
        &format!("Password={other}"),
    );
    assert_eq!(status, 200);
    assert_eq!(TARGET.live(&env), other);
}

#[test]
fn the_policy_wants_twelve_characters_a_digit_and_mixed_case() {
    let env = TARGET.seeded();
    for (password, code) in [
        ("IWasAtSignal2018", 0),
        ("IWasAtSig18", 3),
        ("iwasatsignal2018", 3),
        ("IWASATSIGNAL2018", 3),
        ("IWasAtSignalX", 3),
    ] {
        env.remember_secret(password);
        let stdin = format!("{password}\n");
        let run = env.run(
            &["check-password", "--provider", "twilio", "--json"],
            Some(stdin.as_bytes()),
        );
        run.assert_code(code);
        let rules = run.json()["rules"].to_string();
        assert!(rules.contains("required_classes"), "{rules}");
    }
    // A weak password is refused before anything is sent.
    let run = env.run(
        &TARGET.rotate_args(&["--password-stdin"]),
        Some(b"iwasatsignal2018\n"),
    );
    run.assert_code(3);
    assert!(env.fake.requests().is_empty());
    TARGET.assert_consistent(&env);
}

#[test]
fn ids_that_are_not_twilio_sids_are_refused_before_anything_is_sent() {
    let env = TARGET.seeded();
    let list = TARGET.device.unwrap_or_default();
    for (id, list, fragment) in [
        ("CR123", list, "invalid credential SID"),
        ("conn_abc123xyz", list, "invalid credential SID"),
        (TARGET.id, "CL123", "invalid credential list SID"),
        (TARGET.id, TARGET.id, "invalid credential list SID"),
    ] {
        let run = env.run(
            &[
                "rotate",
                "--provider",
                "twilio",
                id,
                "--credential-list",
                list,
            ],
            None,
        );
        run.assert_code(2).assert_one_line_error(fragment);
    }
    env.run(&["rotate", "--provider", "twilio", TARGET.id], None)
        .assert_code(2)
        .assert_one_line_error("--credential-list <CREDENTIAL_LIST_SID>");
    let mut env = env;
    env.set_env("TWILIO_ACCOUNT_SID", "ACnot-a-sid");
    TARGET
        .rotate(&env, &[])
        .assert_code(4)
        .assert_one_line_error("TWILIO_ACCOUNT_SID must be a Twilio SID");
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_fleet_names_each_credential_list_with_credential_list() {
    let env = TestEnv::start();
    let lists = [
        "CL0000000000000000000000000000c001",
        "CL0000000000000000000000000000c002",
    ];
    let mut inventory = String::new();
    let mut members = Vec::new();
    for (i, list) in lists.iter().enumerate() {
        for j in 0..2 {
            let sid = format!("CR00000000000000000000000000000{i}{j}a");
            let initial = format!("Fleet-Twilio-Pass-{i}{j}");
            env.fake
                .add_twilio_credential(list, &sid, &format!("fleet{i}{j}"), &initial);
            inventory.push_str(&format!(
                "[[credential]]\nprovider = \"twilio\"\nid = \"{sid}\"\ncredential_list = \
                 \"{list}\"\n\n"
            ));
            members.push((*list, sid, initial));
        }
    }
    let path = env.state.path().join("fleet.toml");
    std::fs::write(&path, inventory).unwrap();
    let path = path.display().to_string();
    let run = env.run(&["rotate", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let account = &env.fake.config().twilio_account_sid;
    for (list, sid, initial) in &members {
        let live = env.fake.twilio_credential(list, sid).unwrap().password;
        assert_ne!(&live, initial, "{sid} rotated");
        let entry = format!("twilio/{account}/{list}/{sid}");
        assert_eq!(env.lookup(&entry), Some(live), "{entry}");
    }
    let run = env.run(&["status", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    assert_eq!(run.json()["total"], members.len(), "{}", run.stdout);

    // The key is the registration's: `device` is Exotel's, not Twilio's.
    let wrong = env.state.path().join("wrong.toml");
    std::fs::write(
        &wrong,
        format!(
            "[[credential]]\nprovider = \"twilio\"\nid = \"{}\"\ndevice = \"{}\"\n",
            members[0].1, members[0].0
        ),
    )
    .unwrap();
    env.run(
        &["rotate", "--inventory", &wrong.display().to_string()],
        None,
    )
    .assert_code(4)
    .assert_one_line_error("twilio does not take `device`");
}
