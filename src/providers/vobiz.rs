//! Vobiz: the client sets the password of a SIP credential and can enable or disable it
//! (`PUT /account/{auth_id}/credentials/{id}`, `X-Auth-ID`/`X-Auth-Token`). The answer is
//! the credential object without its password: the password siprot sent is the secret.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::exchange::Exchange;
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Provider, ProviderKind, Registration,
    RotateRequest, Rotated, Toggled, validate_id,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod, Response};
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const AUTH_ID_VAR: &str = "VOBIZ_AUTH_ID";
pub const AUTH_TOKEN_VAR: &str = "VOBIZ_AUTH_TOKEN";
pub const BASE_URL_VAR: &str = "SIPROT_VOBIZ_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.vobiz.ai/api/v1";

/// Vobiz: at least 8 characters; 12+ characters with all four classes recommended
/// (warnings, not failures).
pub const POLICY: Policy = Policy::new("vobiz", 8, 0).recommending(12, true);

pub static REGISTRATION: Registration = Registration {
    name: "vobiz",
    summary: "client-set passwords, enable/disable; ID is the credential id",
    origin: PasswordOrigin::ClientSupplied,
    policy: &POLICY,
    id_is: "credential id",
    example: "aabbccdd-1234-5678-90ab-cdef12345678",
    second_part: None,
    // A PUT of the same fields is the same state: safe to resend.
    resend: Resend::Idempotent,
    takes_description: true,
    can_toggle: true,
    returns_sip_username: true,
    settings: &[
        Spec {
            key: "auth_id",
            var: AUTH_ID_VAR,
            secret: false,
            required: true,
            hint: "the Auth ID of the Vobiz account, e.g. MA_XXXXXXXX",
        },
        Spec {
            key: "auth_token",
            var: AUTH_TOKEN_VAR,
            secret: true,
            required: true,
            hint: "the Auth Token of the Vobiz account",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    login: LoginSecrets::All,
    entry_name,
    error_paths: &[&["message"], &["error"]],
    connect,
};

fn auth_id(settings: &Settings) -> Result<String> {
    let id = settings.required("auth_id")?;
    validate_id(AUTH_ID_VAR, id).map_err(|e| Error::Config(e.to_string()))?;
    Ok(id.to_owned())
}

fn entry_name(credential: &CredentialRef, settings: &Settings) -> Result<String> {
    Ok(format!("vobiz/{}/{}", auth_id(settings)?, credential.id()))
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    Ok(Box::new(Vobiz {
        auth_id: auth_id(settings)?,
        auth_token: settings.secret("auth_token")?,
        base: settings.base_url(DEFAULT_BASE_URL)?,
        http: options.client()?,
    }))
}

/// The description sent with a rotation when the operator gives none.
pub fn default_description() -> String {
    format!(
        "Rotated by siprot on {}",
        jiff::Timestamp::now().strftime("%Y-%m-%d")
    )
}

struct Vobiz {
    auth_id: String,
    auth_token: SecretString,
    base: Url,
    http: HttpClient,
}

#[derive(Serialize, Default)]
struct UpdateBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

#[derive(Deserialize)]
struct Credential {
    username: Option<String>,
    enabled: Option<bool>,
    updated_at: Option<String>,
}

impl Vobiz {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        http::endpoint(
            &self.base,
            &["account", &self.auth_id, "credentials", credential.id()],
        )
    }

    /// Sends one update and returns the credential object of a successful answer.
    async fn update(
        &self,
        credential: &CredentialRef,
        body: &UpdateBody<'_>,
        secrets: &[&SecretString],
        attempts: &Attempts,
    ) -> Result<(Response, Credential)> {
        let builder = self
            .http
            .request(HttpMethod::PUT, self.url(credential)?)
            .header("X-Auth-ID", &self.auth_id)
            .header("X-Auth-Token", sensitive(&self.auth_token)?)
            .json(body);
        Exchange {
            kind: self.kind(),
            http: &self.http,
            secrets,
            attempts,
        }
        .run(builder, "with an unreadable credential object")
        .await
    }
}

/// A header value marked sensitive, so that it is never printed by the HTTP stack.
fn sensitive(secret: &SecretString) -> Result<http::header::HeaderValue> {
    let mut value = http::header::HeaderValue::from_str(secret.expose_secret()).map_err(|_| {
        Error::Config(format!(
            "{AUTH_TOKEN_VAR} contains characters not allowed in an HTTP header"
        ))
    })?;
    value.set_sensitive(true);
    Ok(value)
}

#[async_trait]
impl Provider for Vobiz {
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
        let RotateRequest::Set {
            password,
            description,
        } = request
        else {
            return Err(Error::Unexpected("vobiz needs the password to set".into()));
        };
        let description = description.unwrap_or_else(default_description);
        let body = UpdateBody {
            password: Some(password.expose_secret()),
            description: Some(&description),
            ..UpdateBody::default()
        };
        let (response, parsed) = self
            .update(credential, &body, &[&password, &self.auth_token], attempts)
            .await?;
        Ok(Rotated {
            password: None,
            username: parsed.username,
            request_id: response.request_id.clone(),
            rotated_at: parsed.updated_at,
        })
    }

    async fn set_enabled(
        &self,
        credential: &CredentialRef,
        enabled: bool,
        attempts: &Attempts,
    ) -> Result<Toggled> {
        let body = UpdateBody {
            enabled: Some(enabled),
            ..UpdateBody::default()
        };
        let (response, parsed) = self
            .update(credential, &body, &[&self.auth_token], attempts)
            .await
            .map_err(Error::of_toggle)?;
        Ok(Toggled {
            enabled: parsed.enabled.unwrap_or(enabled),
            username: parsed.username,
            request_id: response.request_id.clone(),
        })
    }
}
