//! Telepath: the server generates the new password, returns it once and kills the old
//! one at the same moment (`POST /trunks/{id}/rotate-password`, bearer key).

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::exchange::Exchange;
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Provider, ProviderKind, Registration,
    RotateRequest, Rotated,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod};
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const API_KEY_VAR: &str = "TELEPATH_API_KEY";
pub const BASE_URL_VAR: &str = "SIPROT_TELEPATH_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.telepathvoice.com/v1";

/// Telepath generates passwords server-side: siprot's generic policy, with a note.
pub const POLICY: Policy = Policy::GENERIC.named("telepath").with_note(
    "telepath generates passwords on its server and publishes no rules; \
     this is siprot's generic policy (at least 16 characters, 3 of 4 character classes)",
);

pub static REGISTRATION: Registration = Registration {
    name: "telepath",
    summary: "server-generated passwords; ID is the trunk id (e.g. conn_abc123xyz)",
    origin: PasswordOrigin::ServerGenerated,
    policy: &POLICY,
    id_is: "trunk id",
    example: "conn_abc123xyz",
    second_part: None,
    // A second POST would rotate again: resent only when the first never left.
    resend: Resend::OnlyIfNotSent,
    takes_description: false,
    can_toggle: false,
    returns_sip_username: true,
    settings: &[
        Spec {
            key: "api_key",
            var: API_KEY_VAR,
            secret: true,
            required: true,
            hint: "the Telepath API key, sk_live_...",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    login: LoginSecrets::All,
    entry_name,
    error_paths: &[&["error", "message"], &["error", "code"]],
    connect,
};

fn entry_name(credential: &CredentialRef, _: &Settings) -> Result<String> {
    Ok(format!("telepath/{}", credential.id()))
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    Ok(Box::new(Telepath {
        api_key: settings.secret("api_key")?,
        base: settings.base_url(DEFAULT_BASE_URL)?,
        http: options.client()?,
    }))
}

struct Telepath {
    api_key: SecretString,
    base: Url,
    http: HttpClient,
}

#[derive(Deserialize)]
struct RotateResponse {
    sip_username: Option<String>,
    sip_password: SecretString,
    rotated_at: Option<String>,
}

impl Telepath {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        http::endpoint(&self.base, &["trunks", credential.id(), "rotate-password"])
    }
}

#[async_trait]
impl Provider for Telepath {
    fn kind(&self) -> ProviderKind {
        ProviderKind(&REGISTRATION)
    }

    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String> {
        Ok(format!("POST {}", self.url(credential)?))
    }

    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        attempts: &Attempts,
    ) -> Result<Rotated> {
        if !matches!(request, RotateRequest::Generate) {
            return Err(Error::Unexpected(
                "telepath generates passwords on its server; a password cannot be supplied".into(),
            ));
        }
        let kind = self.kind();
        let builder = self
            .http
            .request(HttpMethod::POST, self.url(credential)?)
            .bearer_auth(self.api_key.expose_secret())
            .header(http::header::ACCEPT, "application/json");
        let (response, parsed): (_, RotateResponse) = Exchange {
            kind,
            http: &self.http,
            secrets: &[&self.api_key],
            attempts,
        }
        .run(builder, "but the new password could not be read")
        .await?;
        if parsed.sip_password.expose_secret().is_empty() {
            return Err(Error::OutcomeUnknown {
                provider: kind.name(),
                message: "the response carries an empty sip_password".into(),
            });
        }
        Ok(Rotated {
            password: Some(parsed.sip_password),
            username: parsed.sip_username,
            request_id: response.request_id.clone(),
            rotated_at: parsed.rotated_at,
        })
    }
}
