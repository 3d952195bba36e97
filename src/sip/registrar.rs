//! The registrar to verify against, from a `sip:HOST[:PORT][;transport=udp|tcp]` URI.

use std::fmt;
use std::str::FromStr;

/// How SIP messages travel to the registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// A registrar: host, port and transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// A name, an IPv4 address, or an IPv6 address in brackets.
    host: String,
    port: u16,
    transport: Transport,
}

/// The port of `sip:` when the URI names none.
pub const DEFAULT_PORT: u16 = 5060;

impl Registrar {
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The host as written in SIP URIs (IPv6 in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` for name resolution.
    pub fn socket_address(&self) -> String {
        format!("{}:{}", self.host.trim_matches(['[', ']']), self.port)
    }

    /// The Request-URI of a REGISTER: `sip:host[:port]`.
    pub fn request_uri(&self) -> String {
        if self.port == DEFAULT_PORT {
            format!("sip:{}", self.host)
        } else {
            format!("sip:{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Registrar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sip:{}:{};transport={}",
            self.host,
            self.port,
            self.transport.name()
        )
    }
}

impl FromStr for Registrar {
    type Err = String;

    fn from_str(uri: &str) -> Result<Self, String> {
        let scheme_end = uri.find(':').ok_or_else(|| {
            format!(
                "registrar '{uri}' is not a SIP URI (expected sip:HOST[:PORT][;transport=udp|tcp])"
            )
        })?;
        let (scheme, rest) = (&uri[..scheme_end], &uri[scheme_end + 1..]);
        if scheme.eq_ignore_ascii_case("sips") {
            return Err(
                "sips: (SIP over TLS) is not supported; use sip: with transport=udp or tcp".into(),
            );
        }
        if !scheme.eq_ignore_ascii_case("sip") {
            return Err(format!(
                "registrar '{uri}' is not a SIP URI (expected sip:HOST[:PORT][;transport=udp|tcp])"
            ));
        }
        if rest.contains('@') {
            return Err(
                "the registrar URI names a host only: give the user with --username".into(),
            );
        }
        if rest.contains('?') {
            return Err("the registrar URI cannot carry headers ('?')".into());
        }
        let mut parts = rest.split(';');
        let host_port = parts.next().unwrap_or_default();
        let (host, port) = split_host_port(host_port)?;
        let mut transport = Transport::Udp;
        for param in parts {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            if !name.eq_ignore_ascii_case("transport") {
                return Err(format!(
                    "unknown registrar URI parameter '{name}' (only transport=udp|tcp)"
                ));
            }
            transport = if value.eq_ignore_ascii_case("udp") {
                Transport::Udp
            } else if value.eq_ignore_ascii_case("tcp") {
                Transport::Tcp
            } else {
                return Err(format!(
                    "unsupported transport '{value}' (udp or tcp; tls and ws are not supported)"
                ));
            };
        }
        Ok(Self {
            host,
            port,
            transport,
        })
    }
}

fn split_host_port(input: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = input.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("unclosed '[' in registrar host '{input}'"))?;
        let address = &v6[..end];
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{address}' is not an IPv6 address"));
        }
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected '{after}' after the registrar host")),
        };
        (format!("[{address}]"), port)
    } else {
        match input.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (input.to_owned(), None),
        }
    };
    let valid_host = host.starts_with('[')
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !valid_host {
        return Err(format!("'{host}' is not a host name or address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("'{port}' is not a port (1 to 65535)"))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrar_uris_parse() {
        let r: Registrar = "sip:127.0.0.1:5080;transport=tcp".parse().unwrap();
        assert_eq!(
            (r.host(), r.port(), r.transport()),
            ("127.0.0.1", 5080, Transport::Tcp)
        );
        assert_eq!(r.request_uri(), "sip:127.0.0.1:5080");
        assert_eq!(r.socket_address(), "127.0.0.1:5080");

        let r: Registrar = "SIP:sip.example.org".parse().unwrap();
        assert_eq!((r.port(), r.transport()), (5060, Transport::Udp));
        assert_eq!(r.request_uri(), "sip:sip.example.org");
        assert_eq!(r.to_string(), "sip:sip.example.org:5060;transport=udp");

        let r: Registrar = "sip:[::1]:5062;TRANSPORT=UDP".parse().unwrap();
        assert_eq!(
            (r.host(), r.socket_address()),
            ("[::1]", "::1:5062".to_owned())
        );
        assert_eq!(r.request_uri(), "sip:[::1]:5062");
    }

    #[test]
    fn bad_registrar_uris_are_refused_with_a_reason() {
        for (uri, expected) in [
            ("127.0.0.1:5060", "not a SIP URI"),
            ("http://x", "not a SIP URI"),
            ("sips:x", "TLS"),
            ("sip:alice@x", "--username"),
            ("sip:x;transport=tls", "unsupported transport"),
            ("sip:x;lr", "unknown registrar URI parameter"),
            ("sip:x:0", "not a port"),
            ("sip:x:99999", "not a port"),
            ("sip:", "not a host"),
            ("sip:a b", "not a host"),
            ("sip:[::1", "unclosed"),
            ("sip:[nope]:1", "not an IPv6"),
            ("sip:x?h=v", "headers"),
        ] {
            let error = uri.parse::<Registrar>().unwrap_err();
            assert!(error.contains(expected), "{uri}: {error}");
        }
    }
}
