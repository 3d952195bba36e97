//! Settings from the environment and the checks that make them safe to use.
//!
//! Variable names are a contract with operators' scripts (see the README's configuration
//! table). Providers' settings are resolved by [`crate::settings`], which reads their
//! variables through [`optional`].

use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpConfig};

/// Names the keyring service; tests set it so they never touch a person's entries.
pub const KEYRING_SERVICE_VAR: &str = "SIPROT_KEYRING_SERVICE";
pub const DEFAULT_KEYRING_SERVICE: &str = "siprot";

/// What every provider needs to build its client besides its settings.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub http: HttpConfig,
}

impl ConnectOptions {
    pub fn client(&self) -> Result<HttpClient> {
        HttpClient::new(&self.http)
    }
}

/// The keyring service name (`SIPROT_KEYRING_SERVICE`, default `siprot`); empty or with a
/// control character, it is refused (exit 4).
pub fn keyring_service() -> Result<String> {
    match optional(KEYRING_SERVICE_VAR)? {
        Some(service) if service.trim().is_empty() => Err(Error::Config(format!(
            "{KEYRING_SERVICE_VAR} is set but empty"
        ))),
        // It names every keyring item and is part of its label: a newline or an escape
        // sequence there would forge lines in any tool that lists the keyring.
        Some(service) if service.chars().any(char::is_control) => Err(Error::Config(format!(
            "{KEYRING_SERVICE_VAR} contains a control character (newline, tab, escape ...)"
        ))),
        Some(service) => Ok(service),
        None => Ok(DEFAULT_KEYRING_SERVICE.to_owned()),
    }
}

/// The vault store's token variables (secrets, like the providers' keys).
pub const VAULT_TOKEN_VARS: &[&str] = &["VAULT_TOKEN", "BAO_TOKEN"];

/// Every environment variable siprot reads a secret from (the providers' API keys and
/// tokens, from their settings, and the vault store's token): removed from the
/// environment of the post-rotation hook ([`crate::hook`]).
pub fn secret_vars() -> Vec<&'static str> {
    crate::settings::secret_vars()
        .chain(VAULT_TOKEN_VARS.iter().copied())
        .collect()
}

/// A setting that may be absent; present but not UTF-8 is an error naming the variable.
pub fn optional(var: &'static str) -> Result<Option<String>> {
    match std::env::var(var) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::Config(format!("{var} is not valid UTF-8")))
        }
    }
}

/// Parses a base URL and refuses the unsafe ones: anything but `https://`, except
/// `http://` to a loopback host; user info (credentials would leak into logs); query or
/// fragment (they would be dropped or misread when paths are appended).
pub fn parse_base_url(raw: &str, source: &str) -> Result<Url> {
    check_base_url(raw).map_err(|why| Error::Config(format!("{source}: {why}")))
}

/// Why [`parse_base_url`] refuses `raw` (never quoting it), or the URL.
pub fn check_base_url(raw: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a valid URL ({e})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info; credentials come from the environment".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err("plain http:// is only allowed to a loopback host; use https://".into());
        }
        other => return Err(format!("unsupported scheme '{other}', use https://")),
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err("must be an absolute URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query or fragment".into());
    }
    Ok(url)
}

/// A base URL as it may be shown (`config show`): its user info, query and fragment, which
/// may hold a secret, each replaced by `***`; `None` for text that is not a URL at all
/// (nothing of it is shown then).
pub fn masked_base_url(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw.trim()).ok()?;
    let masked_user = !url.username().is_empty() || url.password().is_some();
    let masked_query = url.query().is_some();
    let masked_fragment = url.fragment().is_some();
    url.set_query(None);
    url.set_fragment(None);
    // Fails only for URLs that cannot have user info, which then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut shown = url.to_string();
    if masked_user && let Some(at) = shown.find("://").map(|i| i + 3) {
        shown.insert_str(at, "***@");
    }
    if masked_query {
        shown.push_str("?***");
    }
    if masked_fragment {
        shown.push_str("#***");
    }
    Some(shown)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses a duration given in seconds on the command line (`1.5` allowed).
pub fn parse_seconds(raw: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = raw
        .parse()
        .map_err(|_| format!("'{raw}' is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        return Err(format!("'{raw}' must be between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://api.telepathvoice.com/v1",
            "http://127.0.0.1:8787/telepath/v1",
            "http://127.5.6.7/x",
            "http://localhost:1/x",
            "http://[::1]:8787/x",
        ] {
            parse_base_url(ok, "test").unwrap();
        }
    }

    #[test]
    fn unsafe_base_urls_are_configuration_errors() {
        for bad in [
            "http://api.telepathvoice.com/v1",
            "http://10.0.0.1/v1",
            "https://user:pass@api.example.com/v1",
            "https://user@api.example.com/v1",
            "ftp://api.example.com/v1",
            "file:///etc/passwd",
            "https://api.example.com/v1?x=1",
            "https://api.example.com/v1#frag",
            "not a url",
            "http://localhost.evil.com/x",
        ] {
            let err = parse_base_url(bad, "SIPROT_TELEPATH_BASE_URL").unwrap_err();
            assert_eq!(err.exit_code().code(), 4, "{bad}");
            assert!(err.to_string().contains("SIPROT_TELEPATH_BASE_URL"));
            assert!(!err.to_string().contains("pass@"), "{err}");
        }
    }

    #[test]
    fn a_masked_base_url_keeps_no_user_info_query_or_fragment() {
        for (raw, shown) in [
            (
                "https://user:SECRET@api.example.com/v1?key=SECRET#SECRET",
                Some("https://***@api.example.com/v1?***#***"),
            ),
            (
                "https://:SECRET@api.example.com/v1",
                Some("https://***@api.example.com/v1"),
            ),
            (
                "https://api.example.com/v1?SECRET",
                Some("https://api.example.com/v1?***"),
            ),
            (
                "https://api.example.com/v1",
                Some("https://api.example.com/v1"),
            ),
            ("not a url SECRET", None),
        ] {
            assert_eq!(masked_base_url(raw).as_deref(), shown, "{raw}");
        }
    }

    #[test]
    fn seconds_parse_with_bounds() {
        assert_eq!(parse_seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
        assert!(parse_seconds("abc").is_err());
    }
}
