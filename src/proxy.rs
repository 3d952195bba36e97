//! Which proxy, if any, a provider request goes through.
//!
//! reqwest's own reading of the proxy variables is switched off (the client calls
//! `no_proxy()`): it would send a plain `http://` request, API key and new password
//! included, in cleartext to whatever `http_proxy` or `ALL_PROXY` names. siprot decides
//! itself, in [`HttpsProxy::for_url`], the one place the client asks:
//! - a plain `http://` URL (base URLs allow it only to loopback hosts) never goes through
//!   a proxy, whatever is set; `http_proxy` and `HTTP_PROXY` are never used;
//! - an `https://` URL goes through the first of `HTTPS_PROXY`, `https_proxy`,
//!   `ALL_PROXY`, `all_proxy` that is set and not empty, as a CONNECT tunnel: the proxy
//!   learns the host and port, and the request stays inside TLS end to end;
//! - unless `NO_PROXY` (or `no_proxy`) covers the host, with curl's rules: a comma list of
//!   domains (each covers its subdomains), IP addresses and networks (`10.0.0.0/8`), or
//!   `*` for every host (hyper-util's matcher applies `*` to names only; siprot to
//!   addresses too, as curl does).
//!
//! A proxy variable that is set but unusable (not a URL, a scheme other than `http` or
//! `https`, no host, not UTF-8) is a configuration error that names the variable and
//! never shows its value, which may hold the proxy's password.

use std::ffi::OsString;
use std::fmt;

use hyper_util::client::proxy::matcher::Matcher;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{Error, Result};

/// The variables an `https://` request may take its proxy from, in order of precedence.
pub const HTTPS_PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];
/// The variables listing hosts that are reached directly.
pub const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];
/// Variables other tools use for plain `http://` requests; siprot never does.
pub const IGNORED_PROXY_VARS: [&str; 2] = ["HTTP_PROXY", "http_proxy"];

/// The proxy for `https://` requests, as the environment configures it.
pub struct HttpsProxy {
    /// The variable it came from.
    var: &'static str,
    /// `scheme://host:port`, without user info: what logs show.
    shown: String,
    /// The proxy URL as configured, user info included.
    url: SecretString,
    /// The `NO_PROXY` variable and its value, if one is set.
    no_proxy: Option<(&'static str, String)>,
    /// `NO_PROXY` lists `*`: every host is reached directly.
    direct_for_all: bool,
    /// The proxy and `NO_PROXY` rules, in the matcher reqwest itself uses for its proxies.
    rules: Matcher,
}

impl fmt::Debug for HttpsProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpsProxy")
            .field("var", &self.var)
            .field("proxy", &self.shown)
            .field("no_proxy", &self.no_proxy)
            .finish_non_exhaustive()
    }
}

impl HttpsProxy {
    /// The proxy the process environment sets, if any.
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|var| std::env::var_os(var))
    }

    /// The proxy `lookup` (a variable's value, if set) configures, if any.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Option<Self>> {
        let Some((var, raw)) = first_set(&lookup, &HTTPS_PROXY_VARS)? else {
            return Ok(None);
        };
        let url = parse_proxy_url(var, &raw)?;
        let no_proxy = first_set(&lookup, &NO_PROXY_VARS)?;
        let shown = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let direct_for_all = no_proxy
            .as_ref()
            .is_some_and(|(_, list)| list.split(',').any(|entry| entry.trim() == "*"));
        let rules = Matcher::builder()
            .https(url.as_str())
            .no(no_proxy.as_ref().map_or("", |(_, list)| list.as_str()))
            .build();
        // The matcher parses the URL once more; refuse what it would drop in silence.
        let probe = Matcher::builder().https(url.as_str()).build();
        if probe
            .intercept(&http::Uri::from_static("https://example.com/"))
            .is_none()
        {
            return Err(unusable(var, "the proxy address cannot be used"));
        }
        Ok(Some(Self {
            var,
            shown,
            url: SecretString::from(url.as_str().to_owned()),
            no_proxy,
            direct_for_all,
            rules,
        }))
    }

    /// The proxy `url` goes through, as logs may show it (no user info), or `None` when
    /// it goes direct: always for `http://`, and for hosts `NO_PROXY` covers.
    pub fn for_url(&self, url: &Url) -> Option<&str> {
        if url.scheme() != "https" || self.direct_for_all {
            return None;
        }
        let uri: http::Uri = url.as_str().parse().ok()?;
        self.rules.intercept(&uri).map(|_| self.shown.as_str())
    }

    /// The variable the proxy came from.
    pub fn var(&self) -> &'static str {
        self.var
    }

    /// One line for the debug log: the proxy, where it came from, what goes direct.
    pub fn describe(&self) -> String {
        let except = match &self.no_proxy {
            Some((var, list)) if !list.trim().is_empty() => {
                format!(", except hosts {var} covers ({})", list.trim())
            }
            _ => String::new(),
        };
        format!(
            "https:// requests go through the proxy {} (from {}){except}; plain http:// requests never use a proxy",
            self.shown, self.var
        )
    }

    /// The proxy for reqwest: asks [`HttpsProxy::for_url`] for every request, so that
    /// what is logged and what is done are one decision.
    pub fn to_reqwest(self: &std::sync::Arc<Self>) -> reqwest::Proxy {
        let this = self.clone();
        reqwest::Proxy::custom(move |url| {
            this.for_url(url)?;
            Url::parse(this.url.expose_secret()).ok()
        })
    }
}

/// The first of `vars` that is set and not empty (after trimming), with its value.
fn first_set(
    lookup: &impl Fn(&str) -> Option<OsString>,
    vars: &[&'static str],
) -> Result<Option<(&'static str, String)>> {
    for &var in vars {
        let Some(value) = lookup(var) else { continue };
        let value = value
            .into_string()
            .map_err(|_| Error::Config(format!("{var} is not valid UTF-8")))?;
        if !value.trim().is_empty() {
            return Ok(Some((var, value)));
        }
    }
    Ok(None)
}

fn unusable(var: &str, why: &str) -> Error {
    Error::Config(format!(
        "{var} is not a usable proxy: {why} (expected http://[user:password@]host:port)"
    ))
}

/// Parses a proxy variable's value: `http://` is assumed when it names no scheme (as
/// curl does); only `http` and `https` proxies are supported. Errors never quote it.
fn parse_proxy_url(var: &str, raw: &str) -> Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let url =
        Url::parse(&with_scheme).map_err(|e| unusable(var, &format!("not a valid URL ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        "socks4" | "socks4a" | "socks5" | "socks5h" => {
            return Err(unusable(var, "SOCKS proxies are not supported"));
        }
        _ => return Err(unusable(var, "its scheme is neither http nor https")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(unusable(var, "it names no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxy(vars: &[(&str, &str)]) -> Result<Option<HttpsProxy>> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        HttpsProxy::from_lookup(|var| vars.get(var).cloned())
    }

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn plain_http_urls_never_go_through_a_proxy() {
        assert!(
            proxy(&[("http_proxy", "http://p:1"), ("HTTP_PROXY", "http://p:1")])
                .unwrap()
                .is_none()
        );
        let all = proxy(&[("ALL_PROXY", "http://p:1"), ("all_proxy", "http://p:1")])
            .unwrap()
            .unwrap();
        assert_eq!(all.for_url(&url("http://127.0.0.1:8787/telepath/v1")), None);
        assert_eq!(all.for_url(&url("http://localhost/x")), None);
        assert_eq!(
            all.for_url(&url("https://127.0.0.1:8787/x")),
            Some("http://p:1")
        );
    }

    #[test]
    fn https_urls_use_https_proxy_then_all_proxy() {
        let target = url("https://api.telepathvoice.com/v1/trunks/x");
        for (vars, var, shown) in [
            (
                vec![
                    ("HTTPS_PROXY", "http://a:3128"),
                    ("https_proxy", "http://b:3128"),
                ],
                "HTTPS_PROXY",
                "http://a:3128",
            ),
            (
                vec![("https_proxy", "b:8080"), ("ALL_PROXY", "http://c:1")],
                "https_proxy",
                "http://b:8080",
            ),
            (
                vec![("HTTPS_PROXY", " "), ("all_proxy", "https://d")],
                "all_proxy",
                "https://d:443",
            ),
        ] {
            let proxy = proxy(&vars).unwrap().unwrap();
            assert_eq!(proxy.var(), var);
            assert_eq!(proxy.for_url(&target), Some(shown));
        }
        assert!(proxy(&[]).unwrap().is_none());
    }

    #[test]
    fn no_proxy_hosts_go_direct() {
        let proxy = proxy(&[
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "example.org, 10.0.0.0/8,127.0.0.1"),
            ("no_proxy", "*"),
        ])
        .unwrap()
        .unwrap();
        for direct in [
            "https://example.org/v1",
            "https://api.example.org/v1",
            "https://10.1.2.3:8443/v1",
            "https://127.0.0.1:9/v1",
        ] {
            assert_eq!(proxy.for_url(&url(direct)), None, "{direct}");
        }
        for proxied in ["https://notexample.org/v1", "https://127.0.0.2/v1"] {
            assert_eq!(
                proxy.for_url(&url(proxied)),
                Some("http://p:1"),
                "{proxied}"
            );
        }
        assert!(proxy.describe().contains("NO_PROXY covers (example.org"));
        let everything = super::tests::proxy(&[("ALL_PROXY", "http://p:1"), ("no_proxy", "*")])
            .unwrap()
            .unwrap();
        for direct in [
            "https://example.com/",
            "https://127.0.0.1:8443/",
            "https://[::1]/",
        ] {
            assert_eq!(everything.for_url(&url(direct)), None, "{direct}");
        }
    }

    #[test]
    fn credentials_are_used_but_never_shown() {
        let proxy = proxy(&[("HTTPS_PROXY", "http://user:secretpw@127.0.0.3:3128/")])
            .unwrap()
            .unwrap();
        assert_eq!(
            proxy.for_url(&url("https://h/x")),
            Some("http://127.0.0.3:3128")
        );
        let shown = format!("{} {proxy:?}", proxy.describe());
        assert!(shown.contains("127.0.0.3:3128"), "{shown}");
        assert!(
            !shown.contains("secretpw") && !shown.contains("user"),
            "{shown}"
        );
        assert!(proxy.url.expose_secret().contains("user:secretpw@"));
    }

    #[test]
    fn unusable_proxy_variables_are_configuration_errors_naming_them() {
        for (var, value) in [
            ("HTTPS_PROXY", "socks5://user:secretpw@127.0.0.1:1080"),
            ("https_proxy", "ftp://user:secretpw@proxy:21"),
            ("ALL_PROXY", "http://user:secretpw@"),
            ("all_proxy", "http://user:secretpw@[::1:3128"),
            ("HTTPS_PROXY", "http://user:secretpw@proxy:99999"),
        ] {
            let error = proxy(&[(var, value)]).unwrap_err();
            assert_eq!(error.exit_code().code(), 4, "{value}");
            let text = error.to_string();
            assert!(
                text.contains(&format!("{var} is not a usable proxy")),
                "{text}"
            );
            assert!(!text.contains("secretpw"), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn proxy_variables_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(b"http://p:1/\xff".to_vec());
        let error = HttpsProxy::from_lookup(|var| (var == "https_proxy").then(bad)).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("https_proxy is not valid UTF-8")
        );
        let error = HttpsProxy::from_lookup(|var| match var {
            "ALL_PROXY" => Some(OsString::from("http://p:1")),
            "no_proxy" => Some(bad()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(error.exit_code().code(), 4);
        // NO_PROXY alone is not read: without a proxy there is nothing to except.
        assert!(
            HttpsProxy::from_lookup(|var| (var == "NO_PROXY").then(bad))
                .unwrap()
                .is_none()
        );
    }
}
