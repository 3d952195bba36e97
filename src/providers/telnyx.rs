//! Telnyx: the client sets the password of a credential connection and can make it
//! active or inactive (`PATCH /credential_connections/{id}`, JSON, `Authorization:
//! Bearer`). The answer is the connection in `data`; its `password` echoes the password
//! just set, so it is never read: only `user_name`, `active` and `updated_at` are.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::exchange::Exchange;
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Provider, ProviderKind, Registration,
    RotateRequest, Rotated, Toggled,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod, Response};
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const API_KEY_VAR: &str = "TELNYX_API_KEY";
pub const BASE_URL_VAR: &str = "SIPROT_TELNYX_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.telnyx.com/v2";

/// Telnyx: "Must be 8 to 128 characters long" (the update's `password` parameter).
pub const POLICY: Policy = Policy::new("telnyx", 8, 0).at_most(128);

pub static REGISTRATION: Registration = Registration {
    name: "telnyx",
    summary: "client-set passwords, enable/disable; ID is the credential connection id",
    origin: PasswordOrigin::ClientSupplied,
    policy: &POLICY,
    id_is: "credential connection id",
    example: "1293384261075731499",
    second_part: None,
    login: LoginSecrets::All,
    // The PATCH sets the password (or `active`) to a value fixed in the request: however
    // often it lands, the connection ends in the same state, so resending it after a lost
    // answer or a 5xx is safe.
    resend: Resend::Idempotent,
    // A connection has a `connection_name`, but that is its name, not a note about a
    // rotation: siprot never overwrites it.
    takes_description: false,
    // `active` ("Defaults to true"; an inactive connection cannot be used) is an update
    // parameter of the same PATCH: `enable`/`disable` set it.
    can_toggle: true,
    // The answer's `data.user_name` is the connection's SIP username.
    returns_sip_username: true,
    settings: &[
        Spec {
            key: "api_key",
            var: API_KEY_VAR,
            secret: true,
            required: true,
            hint: "a Telnyx API v2 key (KEY...), from the portal's API Keys page",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    entry_name,
    // `{"errors": [{"code", "title", "detail"}]}`: the first error's detail, else its title.
    error_paths: &[&["errors", "0", "detail"], &["errors", "0", "title"]],
    connect,
};

fn entry_name(credential: &CredentialRef, _: &Settings) -> Result<String> {
    Ok(format!("telnyx/{}", credential.id()))
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    Ok(Box::new(Telnyx {
        api_key: settings.secret("api_key")?,
        base: settings.base_url(DEFAULT_BASE_URL)?,
        http: options.client()?,
    }))
}

struct Telnyx {
    api_key: SecretString,
    base: Url,
    http: HttpClient,
}

/// The update parameters siprot sends: one of them per request.
#[derive(Serialize, Default)]
struct UpdateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<bool>,
}

/// The answer: `{"data": {...}}`.
#[derive(Deserialize)]
struct Answer {
    data: Connection,
}

/// What siprot reads of a credential connection (never its echoed `password`).
#[derive(Deserialize)]
struct Connection {
    user_name: Option<String>,
    active: Option<bool>,
    updated_at: Option<String>,
}

impl Telnyx {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        http::endpoint(&self.base, &["credential_connections", credential.id()])
    }

    /// Sends one update and returns the connection of a successful answer.
    async fn update(
        &self,
        credential: &CredentialRef,
        body: &UpdateBody<'_>,
        secrets: &[&SecretString],
        attempts: &Attempts,
    ) -> Result<(Response, Connection)> {
        let builder = self
            .http
            .request(HttpMethod::PATCH, self.url(credential)?)
            .bearer_auth(self.api_key.expose_secret())
            .header(http::header::ACCEPT, "application/json")
            .json(body);
        let (response, answer): (_, Answer) = Exchange {
            kind: self.kind(),
            http: &self.http,
            secrets,
            attempts,
        }
        .run(builder, "with an unreadable credential connection")
        .await?;
        Ok((response, answer.data))
    }
}

#[async_trait]
impl Provider for Telnyx {
    fn kind(&self) -> ProviderKind {
        ProviderKind(&REGISTRATION)
    }

    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String> {
        Ok(format!("PATCH {}", self.url(credential)?))
    }

    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        attempts: &Attempts,
    ) -> Result<Rotated> {
        let RotateRequest::Set { password, .. } = request else {
            return Err(Error::Unexpected("telnyx needs the password to set".into()));
        };
        let body = UpdateBody {
            password: Some(password.expose_secret()),
            ..UpdateBody::default()
        };
        let (response, connection) = self
            .update(credential, &body, &[&password, &self.api_key], attempts)
            .await?;
        Ok(Rotated {
            password: None,
            username: connection.user_name,
            request_id: response.request_id.clone(),
            rotated_at: connection.updated_at,
        })
    }

    async fn set_enabled(
        &self,
        credential: &CredentialRef,
        enabled: bool,
        attempts: &Attempts,
    ) -> Result<Toggled> {
        let body = UpdateBody {
            active: Some(enabled),
            ..UpdateBody::default()
        };
        let (response, connection) = self
            .update(credential, &body, &[&self.api_key], attempts)
            .await
            .map_err(Error::of_toggle)?;
        Ok(Toggled {
            enabled: connection.active.unwrap_or(enabled),
            username: connection.user_name,
            request_id: response.request_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(id: &str) -> Result<CredentialRef> {
        CredentialRef::new(ProviderKind(&REGISTRATION), id, &[])
    }

    #[test]
    fn the_connection_id_is_one_path_segment_and_the_entry_name() {
        let telnyx = Telnyx {
            api_key: SecretString::from("KEY_unit_test"),
            base: Url::parse(DEFAULT_BASE_URL).unwrap(),
            http: HttpClient::new(&http::HttpConfig::default()).unwrap(),
        };
        let plain = credential("1293384261075731499").unwrap();
        assert_eq!(
            telnyx.describe_rotation(&plain).unwrap(),
            "PATCH https://api.telnyx.com/v2/credential_connections/1293384261075731499"
        );
        let odd = credential("a%2Fb?c").unwrap();
        assert_eq!(
            telnyx.url(&odd).unwrap().path(),
            "/v2/credential_connections/a%252Fb%3Fc"
        );
        let settings = Settings::for_tests(ProviderKind(&REGISTRATION), &[]);
        assert_eq!(
            entry_name(&plain, &settings).unwrap(),
            "telnyx/1293384261075731499"
        );
        for hostile in ["..", ".", "a/b", "a#pending", "a b", ""] {
            let err = credential(hostile).unwrap_err();
            assert_eq!(err.exit_code().code(), 2, "{hostile:?}");
        }
    }

    #[test]
    fn the_body_carries_one_parameter_and_the_answer_its_echo_unread() {
        let body = UpdateBody {
            password: Some("Pw-123456789"),
            ..UpdateBody::default()
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"password":"Pw-123456789"}"#
        );
        let body = UpdateBody {
            active: Some(false),
            ..UpdateBody::default()
        };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"active":false}"#);
        let answer: Answer = serde_json::from_str(
            r#"{"data":{"id":"1","record_type":"credential_connection","active":true,
                "user_name":"sipuser01","password":"Pw-123456789",
                "updated_at":"2026-12-07T14:00:00.000Z"}}"#,
        )
        .unwrap();
        assert_eq!(answer.data.user_name.as_deref(), Some("sipuser01"));
        assert_eq!(answer.data.active, Some(true));
        assert!(serde_json::from_str::<Answer>(r#"{"errors":[]}"#).is_err());
    }

    #[test]
    fn the_policy_is_8_to_128_characters() {
        let check = |n: usize| POLICY.check(&SecretString::from("a".repeat(n))).ok;
        assert!(!check(7));
        assert!(check(8));
        assert!(check(128));
        assert!(!check(129));
        assert!(POLICY.generate(Some(129)).is_err());
        assert_eq!(
            POLICY.generate(Some(128)).unwrap().expose_secret().len(),
            128
        );
    }
}
