//! siprot's requests held against the ones the providers' official Python SDKs send for
//! the same update (`tests/support/sdk.rs`): each test drives the SDK's own update call
//! against the fake, then siprot's rotation of the same credential, checks that the fake
//! accepted both and that the two requests agree ([`sdk::assert_same_request`]). A
//! provider whose API changes nothing on a request of another shape (Twilio answers 200 to
//! a body it does not read) is proven only this way.

use crate::support::fake::FakeConfig;
use crate::support::fake::RecordedRequest;
use crate::support::sdk::{self, Shape};
use crate::support::{FakeProviders, Target, TestEnv};

/// Telnyx 4.189.0: `Telnyx(api_key=..., base_url=..., max_retries=0)` (no retry of its
/// own on a 5xx), then `credential_connections.update(id, password=...)`.
#[test]
fn telnyx_rotation_sends_what_the_telnyx_sdk_sends() {
    let target = Target::TELNYX;
    let env = target.seeded();
    let sdk_password = "Sdk-Telnyx-Pass-0123456789";
    env.remember_secret(sdk_password);
    let api_key = env.fake.config().telnyx_api_key.clone();
    let base = crate::support::FakeProviders::telnyx_base(env.addr);
    let script = r#"
import os
import telnyx

client = telnyx.Telnyx(
    api_key=os.environ["SDK_API_KEY"],
    base_url=os.environ["SDK_BASE_URL"],
    max_retries=0,
)
answer = client.credential_connections.update(
    os.environ["SDK_ID"], password=os.environ["SDK_PASSWORD"]
)
print(answer.data.user_name)
# The answer echoes the new password (siprot must never show it): say so, not what it is.
print("echoed" if answer.data.password == os.environ["SDK_PASSWORD"] else "not echoed")
"#;
    let output = sdk::run(
        script,
        &[
            ("SDK_API_KEY", api_key.as_str()),
            ("SDK_BASE_URL", base.as_str()),
            ("SDK_ID", target.id),
            ("SDK_PASSWORD", sdk_password),
            // The fake is on loopback: never through a proxy the machine may set.
            ("NO_PROXY", "*"),
        ],
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(
        printed,
        ["sipuser01", "echoed"],
        "the SDK read the fake's answer, which echoes the password as Telnyx's does"
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(sdk_password),
        "the SDK script printed the password"
    );
    assert_eq!(
        target.live(&env),
        sdk_password,
        "the fake took the SDK's update"
    );

    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["username"], "sipuser01");
    target.assert_consistent(&env);
    assert_ne!(
        target.live(&env),
        sdk_password,
        "the fake took siprot's update"
    );

    let requests = env.fake.requests();
    assert_eq!(requests.len(), 2, "one request each");
    let shape = sdk::Shape::of(&requests[0]);
    assert_eq!(shape.method, "PATCH");
    assert_eq!(
        shape.path,
        format!("/telnyx/v2/credential_connections/{}", target.id)
    );
    assert_eq!(shape.auth, sdk::Auth::Bearer(api_key));
    assert_eq!(shape.content_type.as_deref(), Some("application/json"));
    sdk::assert_same_request(&requests[0], &requests[1]);
}

/// Plivo's SDK has no base-URL option: the script points the module's base URI constants
/// (the voice API's and the fallbacks it retries a 5xx against) at the fake before it
/// creates the client, then updates the endpoint's password and reads the endpoint back.
const PLIVO_SCRIPT: &str = r#"
import os
import plivo
import plivo.rest.client as rest

base = os.environ["SDK_BASE_URL"] + "/Account"
for name in ("PLIVO_API_BASE_URI", "API_VOICE_BASE_URI",
             "API_VOICE_BASE_URI_FALLBACK_1", "API_VOICE_BASE_URI_FALLBACK_2"):
    setattr(rest, name, base)
client = plivo.RestClient(os.environ["PLIVO_AUTH_ID"], os.environ["PLIVO_AUTH_TOKEN"])
endpoint_id = os.environ["SDK_ENDPOINT_ID"]
updated = client.endpoints.update(endpoint_id, password=os.environ["SDK_PASSWORD"])
print("update:", updated.message)
print("username:", client.endpoints.get(endpoint_id).username)
"#;

/// The fake's requests with `method`, in arrival order.
fn requests_with(env: &TestEnv, method: &str) -> Vec<RecordedRequest> {
    env.fake
        .requests()
        .into_iter()
        .filter(|request| request.method == method)
        .collect()
}

#[test]
fn plivo_sdk_and_siprot_send_the_same_endpoint_update() {
    let target = Target::PLIVO;
    let env = target.seeded();
    let config = env.fake.config().clone();
    let sdk_password = "Sdk-Plivo-Pass-42";
    env.remember_secret(sdk_password);

    let base = FakeProviders::plivo_base(env.addr);
    let output = sdk::run(
        PLIVO_SCRIPT,
        &[
            ("SDK_BASE_URL", &base),
            ("PLIVO_AUTH_ID", &config.plivo_auth_id),
            ("PLIVO_AUTH_TOKEN", &config.plivo_auth_token),
            ("SDK_ENDPOINT_ID", target.id),
            ("SDK_PASSWORD", sdk_password),
        ],
    );
    let said = String::from_utf8_lossy(&output.stdout);
    let username = env.fake.plivo_endpoint(target.id).unwrap().username;
    assert!(said.contains("update: changed"), "{said}");
    assert!(said.contains(&format!("username: {username}")), "{said}");
    assert_eq!(target.live(&env), sdk_password, "the fake took the SDK's");

    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["username"], username.as_str());
    let live = target.live(&env);
    assert_ne!(live, sdk_password, "the fake took siprot's");
    target.assert_consistent(&env);

    let updates = requests_with(&env, "POST");
    assert_eq!(updates.len(), 2, "one update each");
    sdk::assert_same_request(&updates[0], &updates[1]);
    assert!(String::from_utf8_lossy(&updates[1].body).contains(&live));

    // The read-back too, but for two things of the SDK's own: its session sends
    // `Content-Type: application/json` on every request, a GET without a body included,
    // and its `get` puts its own argument in the query (`?endpoint_id=…`), where the
    // reference passes no argument.
    let reads = requests_with(&env, "GET");
    assert_eq!(reads.len(), 2, "one read each");
    let (sdk_read, our_read) = (Shape::of(&reads[0]), Shape::of(&reads[1]));
    assert_eq!(
        sdk_read.path,
        format!("{}?endpoint_id={}", our_read.path, target.id)
    );
    assert_eq!(
        (&our_read.method, &our_read.auth),
        (&sdk_read.method, &sdk_read.auth)
    );
    assert!(our_read.parameters.is_empty() && reads[1].body.is_empty());
}

/// Twilio's SDK (`twilio` 9.13.0) updating one SIP credential's password, with the Auth
/// Token or, when `SDK_API_KEY` is set, an API key and its secret (the Account SID still
/// in the path); prints the credential's SIP username.
const TWILIO_UPDATE: &str = r#"
import os
from twilio.rest import Client

env = os.environ
account = env["SDK_ACCOUNT_SID"]
if env.get("SDK_API_KEY"):
    client = Client(env["SDK_API_KEY"], env["SDK_API_SECRET"], account_sid=account)
else:
    client = Client(account, env["SDK_AUTH_TOKEN"])
client.api.base_url = env["SDK_BASE_URL"]
credential = (
    client.api.v2010.accounts(account)
    .sip.credential_lists(env["SDK_LIST"])
    .credentials(env["SDK_SID"])
    .update(password=env["SDK_PASSWORD"])
)
print(credential.username)
"#;

/// The password the SDK sets (Twilio's policy: 12+ characters, a digit, mixed case).
const SDK_PASSWORD: &str = "Sdk-Chosen-Twilio-Pass-42";

/// Runs the SDK's update of `target`'s credential, then siprot's rotation of it, with
/// `api_key` (the API key SID and secret) or the Auth Token, and compares the requests.
fn twilio_against_the_sdk(api_key: Option<(&str, &str)>) {
    let target = Target::TWILIO;
    let mut env = target.seeded();
    let config = env.fake.config().clone();
    let list = target.device.expect("a credential list");
    let base = format!("http://{}/twilio", env.addr);
    let mut script_env = vec![
        ("SDK_BASE_URL", base.as_str()),
        ("SDK_ACCOUNT_SID", config.twilio_account_sid.as_str()),
        ("SDK_LIST", list),
        ("SDK_SID", target.id),
        ("SDK_PASSWORD", SDK_PASSWORD),
    ];
    match api_key {
        Some((key, secret)) => {
            script_env.extend([("SDK_API_KEY", key), ("SDK_API_SECRET", secret)]);
            env.set_env("TWILIO_API_KEY", key);
            env.set_env("TWILIO_API_SECRET", secret);
        }
        None => script_env.push(("SDK_AUTH_TOKEN", config.twilio_auth_token.as_str())),
    }
    env.remember_secret(SDK_PASSWORD);

    let output = sdk::run(TWILIO_UPDATE, &script_env);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "sipuser01",
        "the SDK read the credential's username from the fake's answer"
    );
    assert_eq!(
        target.live(&env),
        SDK_PASSWORD,
        "the fake took the SDK's update"
    );

    let run = target.rotate(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["username"], "sipuser01");
    assert_ne!(
        target.live(&env),
        SDK_PASSWORD,
        "the fake took siprot's update"
    );
    target.assert_consistent(&env);

    let requests = env.fake.requests();
    assert_eq!(requests.len(), 2, "one request each");
    sdk::assert_same_request(&requests[0], &requests[1]);
    let shape = sdk::Shape::of(&requests[1]);
    let user = api_key.map_or(config.twilio_account_sid.as_str(), |(key, _)| key);
    assert!(
        matches!(&shape.auth, sdk::Auth::Basic(pair) if pair.starts_with(&format!("{user}:"))),
        "HTTP Basic as {user}"
    );
}

#[test]
fn twilio_sends_what_its_sdk_sends_with_the_auth_token() {
    twilio_against_the_sdk(None);
}

#[test]
fn twilio_sends_what_its_sdk_sends_with_an_api_key() {
    let config = FakeConfig::default();
    twilio_against_the_sdk(Some((&config.twilio_api_key, &config.twilio_api_secret)));
}
