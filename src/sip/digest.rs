//! SIP digest authentication, client side: reading a `WWW-Authenticate` or
//! `Proxy-Authenticate` challenge and computing the matching `Authorization` (RFC 3261
//! section 22.4, RFC 7616 for the hash algorithms, RFC 8760 for SHA-256 and SHA-512/256
//! in SIP).
//!
//! The password goes straight from its [`SecretString`] into the hash; it is never
//! copied into a string of its own.

use std::fmt;

use md5::Md5;
use secrecy::{ExposeSecret, SecretString};
use sha2::digest::{Digest, DynDigest};
use sha2::{Sha256, Sha512_256};

/// A hash algorithm a challenge may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algorithm {
    fn hasher(self) -> Box<dyn DynDigest> {
        match self {
            Algorithm::Md5 => Box::new(Md5::new()),
            Algorithm::Sha256 => Box::new(Sha256::new()),
            Algorithm::Sha512_256 => Box::new(Sha512_256::new()),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qop {
    Auth,
    /// Integrity over the body too; a REGISTER query has none, so its hash is that of "".
    AuthInt,
}

/// A parsed digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    nonce: String,
    opaque: Option<String>,
    pub algorithm: Algorithm,
    session: bool,
    qop: Option<Qop>,
    /// The registrar says the nonce, not the credentials, was the problem.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    #[error("the challenge is not a Digest challenge")]
    NotDigest,
    #[error("the challenge has no {0}")]
    Missing(&'static str),
    #[error("the challenge asks for algorithm {0:?}, which siprot does not support")]
    Algorithm(String),
    #[error("the challenge offers only qop {0:?}, which siprot does not support")]
    Qop(String),
    #[error("the challenge is malformed")]
    Malformed,
}

impl Challenge {
    /// Parses the value of a `WWW-Authenticate` or `Proxy-Authenticate` header.
    pub fn parse(value: &str) -> Result<Self, ChallengeError> {
        let value = value.trim_start();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(ChallengeError::NotDigest);
        }
        let params = parse_params(rest).ok_or(ChallengeError::Malformed)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        let realm = get("realm").ok_or(ChallengeError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(ChallengeError::Missing("nonce"))?;
        let (algorithm, session) = match get("algorithm") {
            None => (Algorithm::Md5, false),
            Some(name) => parse_algorithm(&name).ok_or(ChallengeError::Algorithm(name))?,
        };
        let qop = match get("qop") {
            None => None,
            Some(list) => {
                let offered: Vec<&str> = list.split(',').map(str::trim).collect();
                if offered.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
                    Some(Qop::Auth)
                } else if offered.iter().any(|q| q.eq_ignore_ascii_case("auth-int")) {
                    Some(Qop::AuthInt)
                } else {
                    return Err(ChallengeError::Qop(list));
                }
            }
        };
        Ok(Self {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            session,
            qop,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` (or `Proxy-Authorization`) header value answering this
    /// challenge for `method` on `uri`, with nonce count 1 and the given client nonce.
    pub fn answer(
        &self,
        username: &str,
        password: &SecretString,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let nc = "00000001";
        let algorithm = self.algorithm;
        let hash = |parts: &[&[u8]]| {
            let mut hasher = algorithm.hasher();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    hasher.update(b":");
                }
                hasher.update(part);
            }
            hex(&hasher.finalize())
        };
        let mut ha1 = hash(&[
            username.as_bytes(),
            self.realm.as_bytes(),
            password.expose_secret().as_bytes(),
        ]);
        if self.session {
            ha1 = hash(&[ha1.as_bytes(), self.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let empty_body = hash(&[b""]);
                hash(&[method.as_bytes(), uri.as_bytes(), empty_body.as_bytes()])
            }
            _ => hash(&[method.as_bytes(), uri.as_bytes()]),
        };
        let response = match self.qop {
            None => hash(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
            Some(qop) => hash(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop_name(qop).as_bytes(),
                ha2.as_bytes(),
            ]),
        };
        let mut header = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", \
             algorithm={}{}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            response,
            algorithm.name(),
            if self.session { "-sess" } else { "" },
        );
        if let Some(qop) = self.qop {
            header.push_str(&format!(
                ", qop={}, nc={nc}, cnonce=\"{}\"",
                qop_name(qop),
                quote(cnonce)
            ));
        }
        if let Some(opaque) = &self.opaque {
            header.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        header
    }

    /// The algorithm as the challenge named it (`MD5`, `SHA-256-sess`, ...).
    pub fn algorithm_name(&self) -> String {
        format!(
            "{}{}",
            self.algorithm.name(),
            if self.session { "-sess" } else { "" }
        )
    }
}

fn qop_name(qop: Qop) -> &'static str {
    match qop {
        Qop::Auth => "auth",
        Qop::AuthInt => "auth-int",
    }
}

fn parse_algorithm(name: &str) -> Option<(Algorithm, bool)> {
    let (base, session) = match name.len().checked_sub(5) {
        Some(at) if name.is_char_boundary(at) && name[at..].eq_ignore_ascii_case("-sess") => {
            (&name[..at], true)
        }
        _ => (name, false),
    };
    let algorithm = if base.eq_ignore_ascii_case("MD5") {
        Algorithm::Md5
    } else if base.eq_ignore_ascii_case("SHA-256") {
        Algorithm::Sha256
    } else if base.eq_ignore_ascii_case("SHA-512-256") {
        Algorithm::Sha512_256
    } else {
        return None;
    };
    Some((algorithm, session))
}

/// `name=value` or `name="quoted \"value\""`, separated by commas.
fn parse_params(input: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c == ',') {
            return None;
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => out.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => out.push(c),
                }
            };
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        params.push((name.to_owned(), value));
        rest = rest.trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None if rest.is_empty() => {}
            None => return None,
        }
    }
    Some(params)
}

fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_of(header: &str) -> &str {
        let start = header.find("response=\"").unwrap() + "response=\"".len();
        &header[start..start + header[start..].find('"').unwrap()]
    }

    #[test]
    fn rfc_2617_example_with_qop_auth() {
        // RFC 2617 section 3.5 (HTTP, but the computation is the same).
        let challenge = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        let header = challenge.answer(
            "Mufasa",
            &SecretString::from("Circle Of Life"),
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert_eq!(response_of(&header), "6629fae49393a05397450978507c4ef1");
        assert!(header.contains("qop=auth, nc=00000001, cnonce=\"0a4f113b\""));
        assert!(header.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(!header.contains("Circle Of Life"));
    }

    #[test]
    fn rfc_7616_example_with_sha_256() {
        // RFC 7616 section 3.9.1.
        let challenge = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let header = challenge.answer(
            "Mufasa",
            &SecretString::from("Circle of Life"),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(
            response_of(&header),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(header.contains("algorithm=SHA-256"));
    }

    #[test]
    fn rfc_7616_example_with_md5() {
        let challenge = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        let header = challenge.answer(
            "Mufasa",
            &SecretString::from("Circle of Life"),
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(response_of(&header), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn challenges_without_qop_and_with_sess_and_sha_512_256() {
        let plain = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        assert_eq!(plain.algorithm, Algorithm::Md5);
        let header = plain.answer("u", &SecretString::from("p"), "REGISTER", "sip:h", "c");
        // MD5(MD5("u:r:p"):n:MD5("REGISTER:sip:h")), no qop, nc or cnonce.
        let ha1 = hex(&Md5::digest(b"u:r:p"));
        let ha2 = hex(&Md5::digest(b"REGISTER:sip:h"));
        let expected = hex(&Md5::digest(format!("{ha1}:n:{ha2}").as_bytes()));
        assert_eq!(response_of(&header), expected);
        assert!(!header.contains("qop") && !header.contains("cnonce"));

        let sess = Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=MD5-sess, qop=auth"#)
            .unwrap();
        let header = sess.answer("u", &SecretString::from("p"), "REGISTER", "sip:h", "c");
        let ha1 = hex(&Md5::digest(format!("{ha1}:n:c").as_bytes()));
        let expected = hex(&Md5::digest(
            format!("{ha1}:n:00000001:c:auth:{ha2}").as_bytes(),
        ));
        assert_eq!(response_of(&header), expected);
        assert!(header.contains("algorithm=MD5-sess"));

        let sha =
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=sha-512-256"#).unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha512_256);
        let header = sha.answer("u", &SecretString::from("p"), "REGISTER", "sip:h", "c");
        assert_eq!(response_of(&header).len(), 64);
    }

    #[test]
    fn bad_challenges_are_refused() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="r""#),
            Err(ChallengeError::NotDigest)
        );
        assert_eq!(
            Challenge::parse(r#"Digest nonce="n""#),
            Err(ChallengeError::Missing("realm"))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-1"#),
            Err(ChallengeError::Algorithm("SHA-1".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="other""#),
            Err(ChallengeError::Qop("other".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r, nonce="n"#),
            Err(ChallengeError::Malformed)
        );
    }

    #[test]
    fn quoted_values_keep_commas_and_escapes_and_stale_is_read() {
        let challenge =
            Challenge::parse(r#"Digest realm="a, \"b\"", nonce="n", stale=TRUE, qop="auth-int""#)
                .unwrap();
        assert_eq!(challenge.realm, r#"a, "b""#);
        assert!(challenge.stale);
        let header = challenge.answer("u", &SecretString::from("p"), "REGISTER", "sip:h", "c");
        assert!(header.contains(r#"realm="a, \"b\"""#), "{header}");
        assert!(header.contains("qop=auth-int"));
    }
}
