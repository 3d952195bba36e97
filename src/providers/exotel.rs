//! Exotel: the client sets the SIP password of a user's device
//! (`PUT /accounts/{sid}/users/{uuid}/devices/{device}/password`, HTTP Basic auth).
//! Every answer comes in Exotel's envelope (`request_id`, `http_code`, `response`).

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::exchange::{self, Exchange};
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Placement, Provider, ProviderKind, Registration,
    RotateRequest, Rotated, SecondPart, validate_id,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod};
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const API_KEY_VAR: &str = "EXOTEL_API_KEY";
pub const API_TOKEN_VAR: &str = "EXOTEL_API_TOKEN";
pub const ACCOUNT_SID_VAR: &str = "EXOTEL_ACCOUNT_SID";
pub const REGION_VAR: &str = "EXOTEL_REGION";
pub const BASE_URL_VAR: &str = "SIPROT_EXOTEL_BASE_URL";
pub const SINGAPORE_BASE_URL: &str = "https://ccm-api.exotel.com/v2";
pub const MUMBAI_BASE_URL: &str = "https://ccm-api.in.exotel.com/v2";

/// Exotel: at least 8 characters and at least 3 of the 4 character classes.
pub const POLICY: Policy = Policy::new("exotel", 8, 3);

/// A user's device: `--device`, the inventory's `device`, after the user in entry names.
static DEVICE: SecondPart = SecondPart {
    flag: "--device",
    key: "device",
    noun: "device",
    value_name: "DEVICE_ID",
    help: "The device id",
    placement: Placement::AfterId,
    // Any id `validate_id` accepts: Exotel documents no format for device ids.
    validate: |_| Ok(()),
};

pub static REGISTRATION: Registration = Registration {
    name: "exotel",
    summary: "client-set passwords; ID is the user uuid, plus --device <DEVICE_ID>",
    origin: PasswordOrigin::ClientSupplied,
    policy: &POLICY,
    id_is: "user uuid",
    example: "3f2a9c1e-user-uuid --device dev_01",
    second_part: Some(&DEVICE),
    // The same password set twice is the same state: safe to resend.
    resend: Resend::Idempotent,
    takes_description: false,
    can_toggle: false,
    returns_sip_username: false,
    settings: &[
        Spec {
            key: "account_sid",
            var: ACCOUNT_SID_VAR,
            secret: false,
            required: true,
            hint: "the account sid from the Exotel API settings page",
        },
        Spec {
            key: "api_key",
            var: API_KEY_VAR,
            secret: true,
            required: true,
            hint: "the API key from the Exotel API settings page",
        },
        Spec {
            key: "api_token",
            var: API_TOKEN_VAR,
            secret: true,
            required: true,
            hint: "the API token from the Exotel API settings page",
        },
        Spec {
            key: "region",
            var: REGION_VAR,
            secret: false,
            required: false,
            hint: "singapore (the default) or mumbai",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    login: LoginSecrets::All,
    entry_name,
    error_paths: &[
        &["response", "error_data", "description"],
        &["response", "error_data", "message"],
    ],
    connect,
};

fn account_sid(settings: &Settings) -> Result<String> {
    let sid = settings.required("account_sid")?;
    validate_id(ACCOUNT_SID_VAR, sid).map_err(|e| Error::Config(e.to_string()))?;
    Ok(sid.to_owned())
}

fn entry_name(credential: &CredentialRef, settings: &Settings) -> Result<String> {
    Ok(format!(
        "exotel/{}/{}/{}",
        account_sid(settings)?,
        credential.id(),
        credential.require_device()?
    ))
}

/// The regional API cluster (`EXOTEL_REGION` or a profile's `region`, default
/// `singapore`).
fn region_base_url(settings: &Settings) -> Result<&'static str> {
    match settings
        .optional("region")?
        .map(|r| r.trim().to_ascii_lowercase())
    {
        None => Ok(SINGAPORE_BASE_URL),
        Some(region) if region.is_empty() || region == "singapore" => Ok(SINGAPORE_BASE_URL),
        Some(region) if region == "mumbai" => Ok(MUMBAI_BASE_URL),
        Some(_) => Err(Error::Config(format!(
            "{REGION_VAR} must be 'singapore' or 'mumbai'"
        ))),
    }
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    let api_key = settings.secret("api_key")?;
    let api_token = settings.secret("api_token")?;
    let basic = exchange::basic_credentials(api_key.expose_secret(), api_token.expose_secret());
    Ok(Box::new(Exotel {
        api_key,
        api_token,
        basic,
        account_sid: account_sid(settings)?,
        base: settings.base_url(region_base_url(settings)?)?,
        http: options.client()?,
    }))
}

struct Exotel {
    api_key: SecretString,
    api_token: SecretString,
    /// The HTTP Basic credentials as sent (base64 of `key:token`): masked, like the key
    /// and the token, in any message quoted from an answer.
    basic: SecretString,
    account_sid: String,
    base: Url,
    http: HttpClient,
}

#[derive(Serialize)]
struct PasswordBody<'a> {
    password: &'a str,
}

#[derive(Deserialize)]
struct Envelope {
    request_id: Option<String>,
    http_code: Option<u16>,
    response: Option<EnvelopeResponse>,
}

#[derive(Deserialize)]
struct EnvelopeResponse {
    status: Option<String>,
}

impl Exotel {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        http::endpoint(
            &self.base,
            &[
                "accounts",
                &self.account_sid,
                "users",
                credential.id(),
                "devices",
                credential.require_device()?,
                "password",
            ],
        )
    }
}

#[async_trait]
impl Provider for Exotel {
    fn kind(&self) -> ProviderKind {
        ProviderKind(&REGISTRATION)
    }

    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String> {
        Ok(format!("PUT {}", self.url(credential)?))
    }

    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        attempts: &Attempts,
    ) -> Result<Rotated> {
        let RotateRequest::Set { password, .. } = request else {
            return Err(Error::Unexpected("exotel needs the password to set".into()));
        };
        let secrets = [&password, &self.api_key, &self.api_token, &self.basic];
        let builder = self
            .http
            .request(HttpMethod::PUT, self.url(credential)?)
            .basic_auth(
                self.api_key.expose_secret(),
                Some(self.api_token.expose_secret()),
            )
            .json(&PasswordBody {
                password: password.expose_secret(),
            });
        let exchange = Exchange {
            kind: self.kind(),
            http: &self.http,
            secrets: &secrets,
            attempts,
        };
        let (response, envelope): (_, Envelope) =
            exchange.run(builder, "with an unreadable envelope").await?;
        let request_id = envelope
            .request_id
            .clone()
            .or_else(|| response.request_id.clone());
        let succeeded = envelope.http_code.is_none_or(|c| (200..300).contains(&c))
            && envelope
                .response
                .as_ref()
                .and_then(|r| r.status.as_deref())
                .is_none_or(|s| s.eq_ignore_ascii_case("success"));
        if !succeeded {
            return Err(Error::OutcomeUnknown {
                provider: exchange.kind.name(),
                message: format!(
                    "HTTP {} but the envelope reports failure: {}",
                    response.status,
                    exchange.error_message(&response)
                ),
            });
        }
        Ok(Rotated {
            password: None,
            username: None,
            request_id,
            rotated_at: None,
        })
    }
}
