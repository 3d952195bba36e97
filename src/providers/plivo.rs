//! Plivo: the client sets the password of an endpoint, a SIP user registered to Plivo
//! (`POST /Account/{auth_id}/Endpoint/{endpoint_id}/`, JSON `{"password": …}`, HTTP Basic
//! with the Auth ID and Auth Token). A success is 202 `{"message": "changed", "api_id": …}`
//! and names no SIP username: siprot then reads the endpoint back
//! (`GET` of the same URL) for its `username`.
//!
//! The read-back is best effort and is not a try of the change: the password is already
//! live when it is sent, so its failure only leaves the username unknown (a warning in the
//! log, shown with `-v`), and it is not counted in the rotation's `attempts` (which count
//! the tries of the update).

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use super::exchange::{self, Exchange};
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Provider, ProviderKind, Registration,
    RotateRequest, Rotated, validate_id,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod, RequestBuilder};
use crate::policy::Policy;
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const AUTH_ID_VAR: &str = "PLIVO_AUTH_ID";
pub const AUTH_TOKEN_VAR: &str = "PLIVO_AUTH_TOKEN";
pub const BASE_URL_VAR: &str = "SIPROT_PLIVO_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.plivo.com/v1";

/// Plivo: "at least five characters long" (the reference's only rule for an endpoint's
/// password, on create and on update).
pub const POLICY: Policy = Policy::new("plivo", 5, 0);

pub static REGISTRATION: Registration = Registration {
    name: "plivo",
    summary: "client-set passwords; ID is the endpoint id",
    origin: PasswordOrigin::ClientSupplied,
    policy: &POLICY,
    id_is: "endpoint id",
    example: "39452475478853",
    second_part: None,
    login: LoginSecrets::All,
    // The update sets the fields it is given to fixed values (Plivo's "Update an
    // endpoint": password, alias, app_id; 202 "changed"): the same password sent twice is
    // the same state, so a resend after a lost answer or a 5xx is safe although the
    // method is POST (it creates nothing: creating is a POST to `Endpoint/` without an id).
    resend: Resend::Idempotent,
    takes_description: false,
    // The endpoint API has no enabled or active field: only delete.
    can_toggle: false,
    // Not in the update's answer: read from the endpoint (`GET`, its `username`).
    returns_sip_username: true,
    settings: &[
        Spec {
            key: "auth_id",
            var: AUTH_ID_VAR,
            secret: false,
            required: true,
            hint: "the Auth ID of the Plivo account (MA… or SA…), on the console's overview page",
        },
        Spec {
            key: "auth_token",
            var: AUTH_TOKEN_VAR,
            secret: true,
            required: true,
            hint: "the Auth Token of the Plivo account, beside its Auth ID",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    entry_name,
    error_paths: &[&["error"]],
    connect,
};

fn auth_id(settings: &Settings) -> Result<String> {
    let id = settings.required("auth_id")?;
    validate_id(AUTH_ID_VAR, id).map_err(|e| Error::Config(e.to_string()))?;
    if id.contains(':') {
        // It is the HTTP Basic user name, which ends at the first colon.
        return Err(Error::Config(format!("{AUTH_ID_VAR} cannot contain ':'")));
    }
    Ok(id.to_owned())
}

fn entry_name(credential: &CredentialRef, settings: &Settings) -> Result<String> {
    Ok(format!("plivo/{}/{}", auth_id(settings)?, credential.id()))
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    let auth_id = auth_id(settings)?;
    let auth_token = settings.secret("auth_token")?;
    let basic = exchange::basic_credentials(&auth_id, auth_token.expose_secret());
    Ok(Box::new(Plivo {
        auth_id,
        auth_token,
        basic,
        base: settings.base_url(DEFAULT_BASE_URL)?,
        http: options.client()?,
    }))
}

struct Plivo {
    auth_id: String,
    auth_token: SecretString,
    /// The HTTP Basic credentials as sent (base64 of `auth_id:auth_token`): masked, like
    /// the token, in any message quoted from an answer.
    basic: SecretString,
    base: Url,
    http: HttpClient,
}

#[derive(Serialize)]
struct PasswordBody<'a> {
    password: &'a str,
}

/// The update's answer, `{"message": "changed", "api_id": …}`: its request id.
#[derive(Deserialize)]
struct Changed {
    api_id: Option<String>,
}

/// The endpoint object, of which siprot reads only the SIP username (its `password` is
/// an MD5 hash of the password, never read).
#[derive(Deserialize)]
struct Endpoint {
    username: Option<String>,
}

/// `{base}/Account/{auth_id}/Endpoint/{endpoint_id}/`: Plivo's URLs end with a slash.
fn endpoint_url(base: &Url, auth_id: &str, credential: &CredentialRef) -> Result<Url> {
    let mut url = http::endpoint(base, &["Account", auth_id, "Endpoint", credential.id()])?;
    url.path_segments_mut()
        .map_err(|()| Error::Config("base URL cannot take a path".into()))?
        .push("");
    Ok(url)
}

impl Plivo {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        endpoint_url(&self.base, &self.auth_id, credential)
    }

    fn request(&self, method: HttpMethod, credential: &CredentialRef) -> Result<RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(credential)?)
            .basic_auth(&self.auth_id, Some(self.auth_token.expose_secret())))
    }

    fn exchange<'a>(
        &'a self,
        secrets: &'a [&'a SecretString],
        attempts: &'a Attempts,
    ) -> Exchange<'a> {
        Exchange {
            kind: self.kind(),
            http: &self.http,
            secrets,
            attempts,
        }
    }

    /// The endpoint's SIP username, read back after the update; `None` (with a warning)
    /// when it cannot be read: the password is set all the same.
    async fn username(
        &self,
        credential: &CredentialRef,
        password: &SecretString,
    ) -> Option<String> {
        let secrets = [password, &self.auth_token, &self.basic];
        // Its own count: a read-back is not a try of the update.
        let reads = Attempts::new();
        let read = async {
            let builder = self.request(HttpMethod::GET, credential)?;
            self.exchange(&secrets, &reads)
                .run::<Endpoint>(builder, "with an unreadable endpoint object")
                .await
        };
        match read.await {
            Ok((_, endpoint)) => endpoint.username,
            Err(error) => {
                log::warn!(
                    "the password of plivo endpoint {} is set, but its SIP username could not \
                     be read: {error}",
                    credential.id()
                );
                None
            }
        }
    }
}

#[async_trait]
impl Provider for Plivo {
    fn kind(&self) -> ProviderKind {
        ProviderKind(&REGISTRATION)
    }

    fn describe_rotation(&self, credential: &CredentialRef) -> Result<String> {
        let url = self.url(credential)?;
        Ok(format!("POST {url}, then GET {url} for the SIP username"))
    }

    async fn rotate(
        &self,
        credential: &CredentialRef,
        request: RotateRequest,
        attempts: &Attempts,
    ) -> Result<Rotated> {
        let RotateRequest::Set { password, .. } = request else {
            return Err(Error::Unexpected("plivo needs the password to set".into()));
        };
        let secrets = [&password, &self.auth_token, &self.basic];
        let builder = self
            .request(HttpMethod::POST, credential)?
            .json(&PasswordBody {
                password: password.expose_secret(),
            });
        let (response, changed): (_, Changed) = self
            .exchange(&secrets, attempts)
            .run(builder, "with an unreadable answer")
            .await?;
        Ok(Rotated {
            password: None,
            username: self.username(credential, &password).await,
            request_id: changed.api_id.or_else(|| response.request_id.clone()),
            rotated_at: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(base: &str, id: &str) -> Url {
        let credential = CredentialRef::new(ProviderKind(&REGISTRATION), id, &[]).unwrap();
        endpoint_url(
            &Url::parse(base).unwrap(),
            "MAXXXXXXXXXXXXXXXXXX",
            &credential,
        )
        .unwrap()
    }

    #[test]
    fn the_url_is_the_references_with_its_trailing_slash() {
        for base in ["https://api.plivo.com/v1", "https://api.plivo.com/v1/"] {
            assert_eq!(
                url(base, "39452475478853").as_str(),
                "https://api.plivo.com/v1/Account/MAXXXXXXXXXXXXXXXXXX/Endpoint/39452475478853/"
            );
        }
        assert_eq!(
            url("https://h/v1", "a?b%c").path(),
            "/v1/Account/MAXXXXXXXXXXXXXXXXXX/Endpoint/a%3Fb%25c/"
        );
    }

    #[test]
    fn the_policy_is_five_characters_at_least() {
        assert!(!POLICY.check(&SecretString::from("abcd")).ok);
        assert!(POLICY.check(&SecretString::from("abcde")).ok);
    }
}
