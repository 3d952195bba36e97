//! siprot's requests held against the providers' official Python SDKs
//! (`tests/support/sdk.rs`): the SDK's own update call and siprot's rotation of the same
//! credential, both against the fake, must both be accepted and agree on method, path,
//! authentication, content type and parameters.

use crate::support::{Target, sdk};

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
