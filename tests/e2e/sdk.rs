//! Each provider's request held against the one its official SDK sends for the same
//! update (`tests/support/sdk.rs`): the SDK's own update call against the fake, then
//! siprot's rotation of the same credential; the fake must accept both, and the two
//! recorded requests must agree on method, path, authentication, content type and
//! parameters. A provider whose API changes nothing on a request of another shape (Twilio
//! answers 200 to a body it does not read) is proven only this way.

use crate::support::Target;
use crate::support::fake::FakeConfig;
use crate::support::sdk;

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
