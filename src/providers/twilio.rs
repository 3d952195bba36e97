//! Twilio: the client sets the password of a SIP credential in a credential list
//! (`POST /2010-04-01/Accounts/{AccountSid}/SIP/CredentialLists/{CL}/Credentials/{CR}.json`,
//! form-encoded `Password`, HTTP Basic with the Account SID and Auth Token, or with an API
//! key SID and secret). The answer is the credential without its password; errors are
//! `{code, message, more_info, status}`.
//!
//! Twilio answers 200 and changes nothing when the body is not form-encoded or its
//! parameter is not `Password`: the request is the one Twilio's own SDK sends
//! (`tests/e2e/sdk.rs` holds it against `twilio` 9.13.0).

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::exchange::{self, Exchange};
use super::{
    CredentialRef, LoginSecrets, PasswordOrigin, Placement, Provider, ProviderKind, Registration,
    RotateRequest, Rotated, SecondPart,
};
use crate::config::ConnectOptions;
use crate::error::{Error, Result};
use crate::http::{self, Attempts, HttpClient, HttpMethod};
use crate::policy::{Policy, class};
use crate::retry::Resend;
use crate::settings::{Settings, Spec};

pub const ACCOUNT_SID_VAR: &str = "TWILIO_ACCOUNT_SID";
pub const AUTH_TOKEN_VAR: &str = "TWILIO_AUTH_TOKEN";
pub const API_KEY_VAR: &str = "TWILIO_API_KEY";
pub const API_SECRET_VAR: &str = "TWILIO_API_SECRET";
pub const BASE_URL_VAR: &str = "SIPROT_TWILIO_BASE_URL";
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Twilio's credential password: "a minimum of 12 characters, contain at least 1 digit,
/// and have mixed case".
pub const POLICY: Policy =
    Policy::new("twilio", 12, 0).requiring_each(class::LOWER | class::UPPER | class::DIGIT);

/// The credential list a credential belongs to: `--credential-list`, the inventory's
/// `credential_list`, before the credential in entry names.
static CREDENTIAL_LIST: SecondPart = SecondPart {
    flag: "--credential-list",
    key: "credential_list",
    noun: "credential list",
    value_name: "CREDENTIAL_LIST_SID",
    help: "The credential list SID, CL + 32 hex",
    placement: Placement::BeforeId,
    validate: |sid| check_sid("credential list SID", "CL", sid),
};

pub static REGISTRATION: Registration = Registration {
    name: "twilio",
    summary: "client-set passwords; ID is the credential SID (CR...), plus --credential-list <CL...>",
    origin: PasswordOrigin::ClientSupplied,
    policy: &POLICY,
    id_is: "credential SID (CR...)",
    // Two lines: the SIDs are 34 characters each, and help lines stay within 100 columns.
    example: "CR0123456789abcdef0123456789abcdef \\\n      --credential-list CL0123456789abcdef0123456789abcdef",
    second_part: Some(&CREDENTIAL_LIST),
    // The update sets the password to the value sent: the same POST again leaves the same
    // state (a fixed value, nothing generated or counted), so a resend after a lost answer
    // or a 5xx is safe.
    resend: Resend::Idempotent,
    takes_description: false,
    // The credential resource has no enabled/active field: only `Password` can be updated.
    can_toggle: false,
    returns_sip_username: true,
    settings: &[
        Spec {
            key: "account_sid",
            var: ACCOUNT_SID_VAR,
            secret: false,
            required: true,
            hint: "the Account SID (AC...) from the Twilio Console",
        },
        Spec {
            key: "auth_token",
            var: AUTH_TOKEN_VAR,
            secret: true,
            required: false,
            hint: "the Auth Token from the Twilio Console (unless an API key is used)",
        },
        Spec {
            key: "api_key",
            var: API_KEY_VAR,
            secret: false,
            required: false,
            hint: "an API key SID (SK...), used with its secret instead of the Auth Token",
        },
        Spec {
            key: "api_secret",
            var: API_SECRET_VAR,
            secret: true,
            required: false,
            hint: "the secret of the API key TWILIO_API_KEY names",
        },
        Spec::base_url(BASE_URL_VAR),
    ],
    login: LoginSecrets::OneOf {
        when_set: "api_key",
        then: "api_secret",
        otherwise: "auth_token",
    },
    entry_name,
    error_paths: &[&["message"]],
    connect,
};

/// Whether `sid` is `prefix` and 32 hex digits (Twilio's SID format).
fn is_sid(prefix: &str, sid: &str) -> bool {
    sid.strip_prefix(prefix)
        .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Refuses an id that is not a Twilio SID of its kind (exit 2).
fn check_sid(what: &str, prefix: &str, sid: &str) -> Result<()> {
    if is_sid(prefix, sid) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid {what}: a Twilio {what} is {prefix} and 32 hex digits"
        )))
    }
}

/// A SID read from a setting: the same format, else a configuration error (exit 4).
fn setting_sid(settings: &Settings, key: &str, var: &str, prefix: &str) -> Result<String> {
    let sid = settings.required(key)?;
    if !is_sid(prefix, sid) {
        return Err(Error::Config(format!(
            "{var} must be a Twilio SID: {prefix} and 32 hex digits"
        )));
    }
    Ok(sid.to_owned())
}

fn account_sid(settings: &Settings) -> Result<String> {
    setting_sid(settings, "account_sid", ACCOUNT_SID_VAR, "AC")
}

/// The credential SID, checked wherever it is used.
fn credential_sid(credential: &CredentialRef) -> Result<&str> {
    check_sid("credential SID", "CR", credential.id())?;
    Ok(credential.id())
}

fn entry_name(credential: &CredentialRef, settings: &Settings) -> Result<String> {
    Ok(format!(
        "twilio/{}/{}/{}",
        account_sid(settings)?,
        credential.require_device()?,
        credential_sid(credential)?
    ))
}

fn connect(settings: &Settings, options: &ConnectOptions) -> Result<Box<dyn Provider>> {
    let (user, password) = match settings.optional("api_key")? {
        Some(_) => (
            setting_sid(settings, "api_key", API_KEY_VAR, "SK")?,
            settings.secret("api_secret")?,
        ),
        None => (account_sid(settings)?, settings.secret("auth_token")?),
    };
    let basic = exchange::basic_credentials(&user, password.expose_secret());
    Ok(Box::new(Twilio {
        account_sid: account_sid(settings)?,
        user,
        password,
        basic,
        base: settings.base_url(DEFAULT_BASE_URL)?,
        http: options.client()?,
    }))
}

struct Twilio {
    account_sid: String,
    /// The HTTP Basic user: the Account SID, or the API key SID.
    user: String,
    /// The Auth Token, or the API key secret.
    password: SecretString,
    /// The HTTP Basic credentials as sent (base64 of `user:password`): masked, like the
    /// password, in any message quoted from an answer.
    basic: SecretString,
    base: Url,
    http: HttpClient,
}

/// The credential resource Twilio answers with (never a password).
#[derive(Deserialize)]
struct Credential {
    username: Option<String>,
    /// RFC 2822, e.g. `Thu, 30 Jul 2015 20:00:00 +0000`.
    date_updated: Option<String>,
}

impl Twilio {
    fn url(&self, credential: &CredentialRef) -> Result<Url> {
        let resource = format!("{}.json", credential_sid(credential)?);
        http::endpoint(
            &self.base,
            &[
                "2010-04-01",
                "Accounts",
                &self.account_sid,
                "SIP",
                "CredentialLists",
                credential.require_device()?,
                "Credentials",
                &resource,
            ],
        )
    }
}

/// The form body `Password=<password>`, encoded as Twilio's SDK encodes it.
fn password_form(password: &SecretString) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Password", password.expose_secret())
            .finish(),
    )
}

/// Twilio's `date_updated` as RFC 3339, when it reads as RFC 2822.
fn rfc3339(date: &str) -> Option<String> {
    jiff::fmt::rfc2822::parse(date)
        .ok()
        .map(|zoned| zoned.timestamp().to_string())
}

#[async_trait]
impl Provider for Twilio {
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
        let RotateRequest::Set { password, .. } = request else {
            return Err(Error::Unexpected("twilio needs the password to set".into()));
        };
        let form = password_form(&password);
        let builder = self
            .http
            .request(HttpMethod::POST, self.url(credential)?)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .header(http::header::ACCEPT, "application/json")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.as_str().to_owned());
        let secrets = [&password, &self.password, &self.basic];
        let (response, parsed): (_, Credential) = Exchange {
            kind: self.kind(),
            http: &self.http,
            secrets: &secrets,
            attempts,
        }
        .run(builder, "with an unreadable credential")
        .await?;
        Ok(Rotated {
            password: None,
            username: parsed.username,
            request_id: response.request_id.clone(),
            rotated_at: parsed.date_updated.as_deref().and_then(rfc3339),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_their_prefix_and_32_hex_digits() {
        let hex = "0123456789abcdef0123456789ABCDEF";
        assert!(check_sid("x", "CR", &format!("CR{hex}")).is_ok());
        for bad in [
            String::new(),
            "CR".to_owned(),
            format!("CL{hex}"),
            format!("CR{hex}0"),
            format!("CR{}", &hex[1..]),
            format!("CR{}g", &hex[1..]),
            format!("cr{hex}"),
            "CR..".to_owned(),
        ] {
            let error = check_sid("credential SID", "CR", &bad).unwrap_err();
            assert_eq!(error.exit_code().code(), 2, "{bad}");
        }
    }

    #[test]
    fn the_policy_wants_twelve_characters_a_digit_and_mixed_case() {
        let check = |p: &str| POLICY.check(&SecretString::from(p.to_owned())).ok;
        assert!(check("IWasAtSignal2018"));
        assert!(!check("IWasAtSig20"));
        assert!(!check("iwasatsignal2018"));
        assert!(!check("IWASATSIGNAL2018"));
        assert!(!check("IWasAtSignalX"));
        let generated = POLICY.generate(None).unwrap();
        assert!(POLICY.check(&generated).ok);
    }

    #[test]
    fn the_form_body_is_the_sdks_encoding() {
        let form = password_form(&SecretString::from("a b+c&d=é"));
        assert_eq!(form.as_str(), "Password=a+b%2Bc%26d%3D%C3%A9");
    }

    #[test]
    fn dates_become_rfc3339() {
        assert_eq!(
            rfc3339("Thu, 30 Jul 2015 20:00:00 +0000").as_deref(),
            Some("2015-07-30T20:00:00Z")
        );
        assert_eq!(rfc3339("yesterday"), None);
    }
}
