//! Proxies: a plain `http://` base URL is never proxied, whatever proxy variables are
//! set; an `https://` one goes through `HTTPS_PROXY`/`ALL_PROXY` as a CONNECT tunnel
//! (the proxy sees a host and port, nothing else), unless `NO_PROXY` covers the host;
//! `-v` names the proxy without its credentials. The proxy here is a logging TCP
//! listener on another loopback address that records every byte and refuses every
//! tunnel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Target, TestEnv};

/// A proxy that records what each connection sent (up to the end of its headers) and
/// answers 403 to anything.
struct LoggingProxy {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl LoggingProxy {
    fn start() -> Self {
        // Another loopback address than the fake providers' 127.0.0.1, so that a request
        // meant for them cannot be mistaken for one to the proxy.
        let listener = TcpListener::bind("127.0.0.3:0").expect("bind the logging proxy");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let log = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let log = log.clone();
                std::thread::spawn(move || record(stream, &log));
            }
        });
        Self { addr, connections }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What each connection sent, as text.
    fn received(&self) -> Vec<String> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    }
}

fn record(mut stream: TcpStream, log: &Mutex<Vec<Vec<u8>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Vec::new());
        log.len() - 1
    };
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut log = log.lock().unwrap();
                log[index].extend_from_slice(&chunk[..n]);
                if log[index].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    // Whatever comes after the refusal is recorded too (there must be nothing).
    while let Ok(n) = stream.read(&mut chunk) {
        if n == 0 {
            break;
        }
        log.lock().unwrap()[index].extend_from_slice(&chunk[..n]);
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn https_base(target: Target, port: u16) -> String {
    let path = match target.name {
        "telepath" => "telepath/v1",
        "exotel" => "exotel/v2",
        "plivo" => "plivo/v1",
        _ => "vobiz/api/v1",
    };
    format!("https://127.0.0.1:{port}/{path}")
}

const EVERY_PROXY_VAR: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
];

#[test]
fn an_http_base_url_is_never_proxied() {
    let proxy = LoggingProxy::start();
    for target in Target::ALL {
        let mut env = TestEnv::start();
        target.seed(&env);
        for var in EVERY_PROXY_VAR {
            env.set_env(var, &proxy.url());
        }
        let run = target.rotate(&env, &["--json", "-v"]);
        run.assert_code(0);
        assert_eq!(run.json()["status"], "rotated", "{}", target.name);
        // One update (plivo then reads its SIP username back with a GET).
        let updates = env.fake.requests();
        let updates = updates.iter().filter(|r| r.method != "GET").count();
        assert_eq!(updates, 1, "{}", target.name);
        target.assert_consistent(&env);
        assert!(
            !run.stderr.contains("via the proxy"),
            "{}: {}",
            target.name,
            run.stderr
        );
        assert!(
            run.stderr
                .contains("HTTP_PROXY is ignored: plain http:// requests never use a proxy"),
            "{}: {}",
            target.name,
            run.stderr
        );
    }
    assert_eq!(
        proxy.received(),
        Vec::<String>::new(),
        "the proxy must receive no connection at all"
    );
}

#[test]
fn an_https_base_url_goes_through_the_proxy_as_a_connect_only() {
    let proxy = LoggingProxy::start();
    let port = closed_port();
    for target in Target::ALL {
        let mut env = TestEnv::start();
        target.seed(&env);
        env.set_env("HTTPS_PROXY", &proxy.url());
        let before = proxy.received().len();
        let base = https_base(target, port);
        let run = target.rotate(&env, &["--json", "--retries", "0", "--base-url", &base]);
        // The proxy refuses the tunnel: nothing reached the provider, nothing changed,
        // and the error says which proxy was used.
        run.assert_code(7)
            .assert_one_line_error("could not connect");
        let through = format!(
            "(through the proxy http://{} (from HTTPS_PROXY))",
            proxy.addr
        );
        assert!(run.stderr.contains(&through), "{}", run.stderr);
        assert_eq!(run.json()["attempts"], 1);
        assert!(env.fake.requests().is_empty());
        assert_eq!(target.live(&env), target.initial);
        assert_eq!(
            env.lookup(&target.entry(&env)).as_deref(),
            Some(target.initial)
        );
        let received = proxy.received();
        assert_eq!(received.len(), before + 1, "{}: one tunnel", target.name);
        let request = &received[before];
        let connect = format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n");
        assert!(request.starts_with(&connect), "{}: {request}", target.name);
        assert!(
            request.ends_with("\r\n\r\n") && request.matches("\r\n\r\n").count() == 1,
            "{}: nothing but the CONNECT's headers: {request}",
            target.name
        );
        let lower = request.to_ascii_lowercase();
        for header in ["authorization", "x-auth", "bearer", "basic", "password"] {
            assert!(!lower.contains(header), "{}: {request}", target.name);
        }
        for secret in env.known_secrets() {
            assert!(!request.contains(&secret), "{}: {request}", target.name);
        }
    }
}

#[test]
fn no_proxy_hosts_are_reached_directly() {
    let proxy = LoggingProxy::start();
    let port = closed_port();
    for (proxy_var, no_proxy_var, list) in [
        ("HTTPS_PROXY", "NO_PROXY", "127.0.0.1"),
        ("ALL_PROXY", "no_proxy", "example.org, 127.0.0.0/8"),
        ("https_proxy", "NO_PROXY", "*"),
    ] {
        let target = Target::VOBIZ;
        let mut env = TestEnv::start();
        target.seed(&env);
        env.set_env(proxy_var, &proxy.url());
        env.set_env(no_proxy_var, list);
        let base = https_base(target, port);
        let run = target.rotate(&env, &["--json", "--retries", "0", "--base-url", &base]);
        // Straight to the closed port: refused.
        run.assert_code(7)
            .assert_one_line_error("could not connect");
        assert!(!run.stderr.contains("proxy"), "{}", run.stderr);
    }
    assert_eq!(proxy.received(), Vec::<String>::new());
}

#[test]
fn verbose_output_names_the_proxy_without_its_credentials() {
    let proxy = LoggingProxy::start();
    let port = closed_port();
    let target = Target::TELEPATH;
    let mut env = TestEnv::start();
    target.seed(&env);
    let with_credentials = format!("http://proxyuser:secretpw@{}", proxy.addr);
    env.set_env("HTTPS_PROXY", &with_credentials);
    let base = https_base(target, port);
    let run = target.rotate(&env, &["-v", "--retries", "0", "--base-url", &base]);
    run.assert_code(7);
    let named = format!("via the proxy http://{} (from HTTPS_PROXY)", proxy.addr);
    assert!(run.stderr.contains(&named), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "https:// requests go through the proxy http://{} (from HTTPS_PROXY)",
            proxy.addr
        )),
        "{}",
        run.stderr
    );
    for secret in ["secretpw", "proxyuser"] {
        assert!(!run.stderr.contains(secret), "{}", run.stderr);
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
    }
    // The credentials went where they belong: to the proxy, in Proxy-Authorization.
    let received = proxy.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0].contains("\r\nproxy-authorization: Basic ")
            || received[0].contains("\r\nProxy-Authorization: Basic "),
        "{}",
        received[0]
    );
}

#[test]
fn an_unusable_proxy_variable_is_exit_4_naming_it_and_nothing_is_sent() {
    let target = Target::EXOTEL;
    for (var, value) in [
        ("HTTPS_PROXY", "socks5://proxyuser:secretpw@127.0.0.3:1080"),
        ("all_proxy", "http://proxyuser:secretpw@"),
        ("https_proxy", "ftp://proxyuser:secretpw@127.0.0.3:21"),
    ] {
        let mut env = TestEnv::start();
        target.seed(&env);
        env.set_env(var, value);
        let run = target.rotate(&env, &[]);
        run.assert_code(4)
            .assert_one_line_error(&format!("{var} is not a usable proxy"));
        assert!(
            !run.stderr.contains("secretpw") && !run.stderr.contains("proxyuser"),
            "{}",
            run.stderr
        );
        assert!(env.fake.requests().is_empty());
        assert_eq!(env.lookup(&target.slot(&env, "#pending")), None);
        assert_eq!(target.live(&env), target.initial);
    }
}
