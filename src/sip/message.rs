//! The two SIP messages verification needs: a REGISTER that queries bindings (built) and
//! the registrar's response (parsed).
//!
//! The REGISTER carries no `Contact` header, so it asks for the address-of-record's
//! bindings without adding, refreshing or removing any (RFC 3261 section 10.2.3): the
//! live phone keeps its registration whatever verification does.

use std::fmt::Write;

/// What a REGISTER needs besides its credentials.
#[derive(Debug, Clone)]
pub struct Register<'a> {
    /// `sip:host[:port]`, the Request-URI (and the digest `uri`).
    pub request_uri: &'a str,
    /// `UDP` or `TCP`, as in the Via header.
    pub transport: &'a str,
    /// The local address the registrar answers to, `host:port`.
    pub local: &'a str,
    pub username: &'a str,
    pub domain: &'a str,
    pub call_id: &'a str,
    pub from_tag: &'a str,
    pub branch: &'a str,
    pub cseq: u32,
    /// `("Authorization", value)` or `("Proxy-Authorization", value)`.
    pub authorization: Option<(&'a str, &'a str)>,
}

impl Register<'_> {
    /// What identifies this request's answers.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            call_id: self.call_id,
            cseq: self.cseq,
            method: "REGISTER",
            branch: self.branch,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = String::new();
        let _ = write!(
            m,
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             User-Agent: siprot/{version}\r\n",
            uri = self.request_uri,
            transport = self.transport,
            local = self.local,
            branch = self.branch,
            user = self.username,
            domain = self.domain,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
            version = env!("CARGO_PKG_VERSION"),
        );
        if let Some((name, value)) = self.authorization {
            let _ = write!(m, "{name}: {value}\r\n");
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    }
}

/// What a response must echo to be the answer to one request: the Call-ID, the CSeq
/// (number and method) and the top Via's branch (RFC 3261 section 17.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transaction<'a> {
    pub call_id: &'a str,
    pub cseq: u32,
    pub method: &'a str,
    pub branch: &'a str,
}

/// A parsed SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names in their full lower-case form (compact forms expanded), in order.
    headers: Vec<(String, String)>,
}

/// Why bytes are not a SIP response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SIP response: {0}")]
pub struct ParseError(pub &'static str);

impl Response {
    /// Parses one complete response (header section, blank line, body).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let head_end = find_head_end(bytes).ok_or(ParseError("no end of headers"))?;
        let head = std::str::from_utf8(&bytes[..head_end])
            .map_err(|_| ParseError("headers are not UTF-8"))?;
        let mut lines = unfold(head).into_iter();
        let status_line = lines.next().ok_or(ParseError("empty"))?;
        let mut parts = status_line.splitn(3, ' ');
        if parts.next() != Some("SIP/2.0") {
            return Err(ParseError("no SIP/2.0 status line"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..700).contains(s))
            .ok_or(ParseError("bad status code"))?;
        let reason = parts.next().unwrap_or("").trim().to_owned();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or(ParseError("a header line without ':'"))?;
            headers.push((full_name(name.trim()), value.trim().to_owned()));
        }
        Ok(Self {
            status,
            reason,
            headers,
        })
    }

    /// Every value of a header (by full name, any case), comma-joined lines split apart
    /// where the header is a list.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// The number of bindings a 200 to a REGISTER lists (its Contact entries).
    pub fn contact_count(&self) -> usize {
        self.header_values("contact")
            .iter()
            .map(|v| split_list(v).len())
            .sum()
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (number, method) = self.header("cseq")?.split_once(char::is_whitespace)?;
        Some((number.parse().ok()?, method.trim()))
    }

    /// The Call-ID (compared byte for byte, RFC 3261 section 20.8).
    pub fn call_id(&self) -> Option<&str> {
        self.header("call-id")
    }

    /// The `branch` parameter of the top Via (the first value of the first Via line).
    pub fn top_via_branch(&self) -> Option<&str> {
        let top = split_list(self.header("via")?).into_iter().next()?;
        top.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("branch")
                .then(|| value.trim())
        })
    }

    /// Why this is not an answer to `transaction`, or `None` when it is one: Call-ID,
    /// CSeq number and method, and top Via branch must all be the request's. The Call-ID
    /// and method compare byte for byte; the branch, a token, ignoring case (RFC 3261
    /// section 7.3.1).
    pub fn mismatch(&self, transaction: &Transaction<'_>) -> Option<&'static str> {
        if self.call_id() != Some(transaction.call_id) {
            Some("another Call-ID")
        } else if self.cseq() != Some((transaction.cseq, transaction.method)) {
            Some("another CSeq")
        } else if !self
            .top_via_branch()
            .is_some_and(|branch| branch.eq_ignore_ascii_case(transaction.branch))
        {
            Some("another Via branch")
        } else {
            None
        }
    }
}

/// Where the header section ends (the index of the blank line's CRLF CRLF), if it does.
pub fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The Content-Length of a header section, for framing on a stream transport.
pub fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    unfold(head).iter().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        (full_name(name.trim()) == "content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Header lines with continuation lines (starting with space or tab) joined.
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// RFC 3261 section 7.3.3 compact forms, and lower case.
fn full_name(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    let full = match name.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "e" => "content-encoding",
        "l" => "content-length",
        "c" => "content-type",
        "f" => "from",
        "s" => "subject",
        "k" => "supported",
        "t" => "to",
        "v" => "via",
        _ => return name,
    };
    full.to_owned()
}

/// Splits a header value at commas outside quotes and angle brackets.
fn split_list(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(value[start..].trim());
    items.retain(|item| !item.is_empty());
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_query_has_no_contact_and_no_expires() {
        let register = Register {
            request_uri: "sip:127.0.0.1:5060",
            transport: "UDP",
            local: "127.0.0.1:40000",
            username: "alice",
            domain: "example.org",
            call_id: "c1@siprot",
            from_tag: "t1",
            branch: "z9hG4bKb1",
            cseq: 2,
            authorization: Some(("Authorization", "Digest x")),
        };
        let text = String::from_utf8(register.to_bytes()).unwrap();
        assert!(text.starts_with("REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(text.contains("\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKb1;rport\r\n"));
        assert!(text.contains("\r\nTo: <sip:alice@example.org>\r\n"));
        assert!(text.contains("\r\nCSeq: 2 REGISTER\r\n"));
        assert!(text.contains("\r\nAuthorization: Digest x\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let lower = text.to_ascii_lowercase();
        assert!(!lower.contains("contact") && !lower.contains("expires"));
    }

    #[test]
    fn responses_parse_with_compact_folded_and_listed_headers() {
        let raw = b"SIP/2.0 200 OK\r\n\
            v: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKb1\r\n\
            CSeq: 2 REGISTER\r\n\
            m: <sip:alice@10.0.0.1:5060>;expires=300,\r\n \"A, B\" <sip:alice@10.0.0.2>\r\n\
            Contact: <sip:alice@10.0.0.3;x=a,b>\r\n\
            WWW-Authenticate: Digest realm=\"r\"\r\n\
            l: 0\r\n\r\n";
        let response = Response::parse(raw).unwrap();
        assert_eq!((response.status, response.reason.as_str()), (200, "OK"));
        assert_eq!(response.contact_count(), 3);
        assert_eq!(response.cseq(), Some((2, "REGISTER")));
        assert_eq!(
            response.header("www-authenticate"),
            Some("Digest realm=\"r\"")
        );
        assert_eq!(response.header_values("via").len(), 1);
        assert_eq!(content_length(&raw[..]), Some(0));
    }

    #[test]
    fn non_responses_are_refused() {
        for raw in [
            &b"REGISTER sip:x SIP/2.0\r\n\r\n"[..],
            b"SIP/2.0 99 Too Low\r\n\r\n",
            b"SIP/2.0 200 OK\r\nno colon\r\n\r\n",
            b"SIP/2.0 200 OK\r\n",
            b"SIP/2.0 200 OK\r\nX: \xff\r\n\r\n",
        ] {
            assert!(Response::parse(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn an_answer_matches_its_request_by_call_id_cseq_and_top_via_branch() {
        let transaction = Transaction {
            call_id: "c1@siprot",
            cseq: 2,
            method: "REGISTER",
            branch: "z9hG4bKb1",
        };
        let answer = |via: &str, call_id: &str, cseq: &str| {
            let raw = format!("SIP/2.0 200 OK\r\n{via}i: {call_id}\r\nCSeq: {cseq}\r\n\r\n");
            Response::parse(raw.as_bytes()).unwrap()
        };
        let top = "v: SIP/2.0/UDP 127.0.0.1:40000 ; rport=40000 ; Branch = z9hG4bKb1 ;received=1.2.3.4\r\n\
                   Via: SIP/2.0/UDP proxy;branch=z9hG4bKother\r\n";
        assert_eq!(
            answer(top, "c1@siprot", "2 REGISTER").mismatch(&transaction),
            None
        );
        let upper = "Via: SIP/2.0/TCP h;BRANCH=Z9HG4BKB1\r\n";
        assert_eq!(
            answer(upper, "c1@siprot", "2 REGISTER").mismatch(&transaction),
            None
        );
        // The branch of a lower Via, or of a second value on the top line, is not ours.
        let lower =
            "Via: SIP/2.0/UDP proxy;branch=z9hG4bKother, SIP/2.0/UDP h;branch=z9hG4bKb1\r\n";
        for (via, call_id, cseq, why) in [
            (top, "C1@siprot", "2 REGISTER", "another Call-ID"),
            (top, "c1@siprot", "1 REGISTER", "another CSeq"),
            (top, "c1@siprot", "2 INVITE", "another CSeq"),
            (lower, "c1@siprot", "2 REGISTER", "another Via branch"),
            ("", "c1@siprot", "2 REGISTER", "another Via branch"),
            (
                "Via: SIP/2.0/UDP h;branch=z9hG4bKb10\r\n",
                "c1@siprot",
                "2 REGISTER",
                "another Via branch",
            ),
        ] {
            let response = answer(via, call_id, cseq);
            assert_eq!(
                response.mismatch(&transaction),
                Some(why),
                "{via} {call_id} {cseq}"
            );
        }
    }
}
