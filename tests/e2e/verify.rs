//! `siprot verify` against a real Kamailio registrar whose user table the fake providers
//! keep in step with their passwords.

use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use siprot::sip::digest::Challenge;
use siprot::sip::message::Response;

use crate::support::kamailio::{Algorithm, Kamailio};
use crate::support::{Target, TestEnv};

/// A test world whose fake providers share their SIP users with a fresh Kamailio.
fn with_registrar(algorithm: Algorithm) -> (TestEnv, Kamailio) {
    let env = TestEnv::start();
    let kamailio = Kamailio::start(algorithm);
    env.fake.share_sip_users(&kamailio.subscriber_table());
    (env, kamailio)
}

/// The targets whose provider answers a rotation with the SIP username (`verify` then
/// needs no `--username`), from the registry.
fn with_sip_username() -> Vec<Target> {
    Target::ALL
        .into_iter()
        .filter(|target| {
            siprot::providers::ProviderKind::from_name(target.name)
                .is_some_and(|kind| kind.registration().returns_sip_username)
        })
        .collect()
}

fn verify(env: &TestEnv, registrar: &str, target: Target, extra: &[&str]) -> crate::support::Run {
    let mut args = vec![
        "verify",
        "--registrar",
        registrar,
        "-p",
        target.name,
        target.id,
    ];
    if let Some((flag, _, value)) = target.part() {
        args.extend([flag, value]);
    }
    args.extend(extra);
    env.run(&args, None)
}

#[test]
fn the_stored_password_registers_over_udp_and_tcp_and_a_wrong_one_is_rejected() {
    let (env, kamailio) = with_registrar(Algorithm::Md5);
    Target::VOBIZ.seed(&env);
    for transport in ["udp", "tcp"] {
        let registrar = kamailio.registrar(transport);
        let run = verify(
            &env,
            &registrar,
            Target::VOBIZ,
            &["--username", "sipuser01", "--json"],
        );
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["result"], "ok", "{}", kamailio.log());
        assert_eq!(json["status"], 200);
        assert_eq!(json["transport"], transport);
        assert_eq!(json["algorithm"], "MD5");
        assert_eq!(json["username"], "sipuser01");
        assert_eq!(json["bindings"], 0);
        assert_eq!(json["exit_code"], 0);
    }

    let wrong = "Wrong-Password-4711";
    env.remember_secret(wrong);
    env.store(&Target::VOBIZ.entry(&env), wrong);
    for transport in ["udp", "tcp"] {
        let registrar = kamailio.registrar(transport);
        let run = verify(
            &env,
            &registrar,
            Target::VOBIZ,
            &["--username", "sipuser01", "--json"],
        );
        run.assert_code(5);
        let json = run.json();
        assert_eq!(json["result"], "rejected");
        assert_eq!(json["status"], 401);
        assert!(run.stderr.contains("failed: rejected"), "{}", run.stderr);
        let human = verify(
            &env,
            &registrar,
            Target::VOBIZ,
            &["--username", "sipuser01"],
        );
        human.assert_code(5);
        assert!(
            human.stdout.starts_with("rejected: ") && human.stdout.contains("401 Unauthorized"),
            "{}",
            human.stdout
        );
    }
}

#[test]
fn a_sha_256_challenge_is_answered() {
    let (env, kamailio) = with_registrar(Algorithm::Sha256);
    Target::TELEPATH.seed(&env);
    let run = verify(
        &env,
        &kamailio.registrar("udp"),
        Target::TELEPATH,
        &["--username", "sipuser01", "--json"],
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["result"], "ok", "{}", kamailio.log());
    assert_eq!(json["algorithm"], "SHA-256");
}

/// Rotation at the fake changes Kamailio's table; verify takes the SIP username the
/// provider returned, accepts the new password and sees the old one rejected.
#[test]
fn after_a_rotation_the_new_password_registers_and_the_previous_is_rejected() {
    for target in with_sip_username() {
        let (env, kamailio) = with_registrar(Algorithm::Md5);
        target.seed(&env);
        let registrar = kamailio.registrar("udp");
        target.rotate(&env, &[]).assert_code(0);
        target.assert_consistent(&env);

        let run = verify(
            &env,
            &registrar,
            target,
            &["--expect-rejected-previous", "--json"],
        );
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["username"], "sipuser01", "taken from the audit log");
        assert_eq!(json["result"], "ok", "{}", kamailio.log());
        assert_eq!(json["previous"]["result"], "rejected");
        assert_eq!(json["previous"]["status"], 401);

        let human = verify(&env, &registrar, target, &["--expect-rejected-previous"]);
        human.assert_code(0);
        assert!(
            human
                .stdout
                .contains("ok: the previous password is rejected"),
            "{}",
            human.stdout
        );

        // A provider that did not really change the password: the old one still works.
        let current = env.lookup(&target.entry(&env)).expect("current");
        env.store(&target.slot(&env, "#previous"), &current);
        let run = verify(
            &env,
            &registrar,
            target,
            &["--expect-rejected-previous", "--json"],
        );
        run.assert_code(10);
        assert_eq!(run.json()["previous"]["result"], "ok");
        assert!(
            run.stderr.contains("previous password") && run.stderr.contains("still registers"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn verification_leaves_the_phones_binding_in_place() {
    let (env, kamailio) = with_registrar(Algorithm::Md5);
    Target::VOBIZ.seed(&env);
    register_phone(kamailio.port, "sipuser01", Target::VOBIZ.initial);
    let registrar = kamailio.registrar("udp");
    for _ in 0..3 {
        let run = verify(
            &env,
            &registrar,
            Target::VOBIZ,
            &["--username", "sipuser01", "--json"],
        );
        run.assert_code(0);
        assert_eq!(
            run.json()["bindings"],
            1,
            "the phone's binding is neither removed nor joined by another: {}",
            kamailio.log()
        );
    }
    let log = kamailio.log();
    let siprot_registers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("siprot-test: REGISTER") && !l.contains("phone@"))
        .collect();
    assert!(siprot_registers.len() >= 6, "{log}");
    for line in siprot_registers {
        assert!(
            line.contains("contact '<null>', expires '<null>'"),
            "siprot sent a Contact or Expires: {line}"
        );
    }
}

#[test]
fn a_registrar_that_never_answers_is_exit_7_within_the_timeout() {
    let env = TestEnv::start();
    Target::VOBIZ.seed(&env);
    let silent_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let registrars = [
        format!("sip:127.0.0.1:{}", silent_udp.local_addr().unwrap().port()),
        format!(
            "sip:127.0.0.1:{};transport=tcp",
            silent_tcp.local_addr().unwrap().port()
        ),
    ];
    for registrar in &registrars {
        let started = Instant::now();
        let run = verify(
            &env,
            registrar,
            Target::VOBIZ,
            &["--username", "u1", "--timeout", "2", "--json"],
        );
        let took = started.elapsed();
        run.assert_code(7);
        let json = run.json();
        assert_eq!(json["result"], "unreachable");
        assert!(
            json["problem"]
                .as_str()
                .unwrap()
                .contains("no answer within 2s"),
            "{json}"
        );
        assert!(
            took < Duration::from_secs(10),
            "gave up only after {took:?}"
        );
    }
    // Nothing listens: the ICMP "port unreachable" ends it before the timeout.
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let run = verify(
        &env,
        &format!("sip:127.0.0.1:{port}"),
        Target::VOBIZ,
        &["--username", "u1", "--timeout", "30", "--json"],
    );
    run.assert_code(7);
    assert!(
        run.json()["problem"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    drop(silent_udp);
    drop(silent_tcp);
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let env = TestEnv::start();
    Target::EXOTEL.seed(&env);
    Target::VOBIZ.seed(&env);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.set_nonblocking(true).unwrap();
    let registrar = format!("sip:127.0.0.1:{}", silent.local_addr().unwrap().port());

    // Exotel returns no SIP username and none was given.
    let run = verify(&env, &registrar, Target::EXOTEL, &[]);
    run.assert_code(2).assert_one_line_error("pass --username");

    for username in ["a b", "x@y", "a;b", "a\r\nContact: *", ""] {
        let run = verify(&env, &registrar, Target::VOBIZ, &["--username", username]);
        run.assert_code(2).assert_one_line_error("SIP username");
    }
    let run = verify(
        &env,
        &registrar,
        Target::VOBIZ,
        &["--username", "u1", "--domain", "evil>"],
    );
    run.assert_code(2).assert_one_line_error("SIP domain");
    for bad in [
        "http://127.0.0.1",
        "sips:127.0.0.1",
        "sip:127.0.0.1;transport=tls",
    ] {
        let run = env.run(
            &[
                "verify",
                "--registrar",
                bad,
                "-p",
                "vobiz",
                Target::VOBIZ.id,
                "--username",
                "u1",
            ],
            None,
        );
        run.assert_code(2);
        assert!(run.stderr.contains("--registrar"), "{}", run.stderr);
    }
    // No stored password.
    let run = env.run(
        &[
            "verify",
            "--registrar",
            &registrar,
            "-p",
            "vobiz",
            "cred-none",
            "--username",
            "u1",
        ],
        None,
    );
    run.assert_code(6)
        .assert_one_line_error("no password stored");
    // --expect-rejected-previous with no #previous.
    let run = verify(
        &env,
        &registrar,
        Target::VOBIZ,
        &["--username", "u1", "--expect-rejected-previous"],
    );
    run.assert_code(6).assert_one_line_error("#previous");

    let mut buffer = [0u8; 2048];
    assert!(
        silent.recv(&mut buffer).is_err(),
        "a refused command sent a datagram"
    );
}

/// Registers a binding as the phone would: REGISTER with a Contact for 300 s, answering
/// the digest challenge.
fn register_phone(port: u16, user: &str, password: &str) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let local = socket.local_addr().unwrap();
    let uri = format!("sip:127.0.0.1:{port}");
    let request = |cseq: u32, authorization: Option<&str>| {
        let mut m = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKphone{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=phone\r\n\
             To: <sip:{user}@127.0.0.1>\r\nCall-ID: phone-call@test\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:phone@{local}>\r\nExpires: 300\r\n"
        );
        if let Some(value) = authorization {
            m.push_str(&format!("Authorization: {value}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    };
    let mut buffer = [0u8; 8192];
    socket
        .send_to(request(1, None).as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let n = socket.recv(&mut buffer).unwrap();
    let challenge = Response::parse(&buffer[..n]).unwrap();
    assert_eq!(challenge.status, 401);
    let challenge = Challenge::parse(challenge.header("www-authenticate").unwrap()).unwrap();
    let answer = challenge.answer(
        user,
        &SecretString::from(password),
        "REGISTER",
        &uri,
        "phonecnonce",
    );
    socket
        .send_to(request(2, Some(&answer)).as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let n = socket.recv(&mut buffer).unwrap();
    let ok = Response::parse(&buffer[..n]).unwrap();
    assert_eq!(ok.status, 200, "the phone could not register");
    assert_eq!(ok.contact_count(), 1);
}

/// A registrar that keeps the seeded password whatever the fake does later: the fake's
/// table goes to a decoy path after seeding (a provider whose registrar lags or never
/// learns the new password).
fn with_stale_registrar(target: Target) -> (TestEnv, Kamailio, tempfile::TempDir) {
    let (env, kamailio) = with_registrar(Algorithm::Md5);
    target.seed(&env);
    let decoy = tempfile::tempdir().unwrap();
    env.fake.share_sip_users(&decoy.path().join("subscriber"));
    (env, kamailio, decoy)
}

#[test]
fn rotate_verify_succeeds_when_the_registrar_accepts_the_new_password() {
    for target in with_sip_username() {
        let (env, kamailio) = with_registrar(Algorithm::Md5);
        target.seed(&env);
        let registrar = kamailio.registrar("tcp");
        let run = target.rotate(
            &env,
            &[
                "--verify",
                &registrar,
                "--expect-rejected-previous",
                "--json",
            ],
        );
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["verified"], true, "{json}\n{}", kamailio.log());
        assert_eq!(json["exit_code"], 0);
        assert_eq!(json["verification"]["result"], "ok");
        assert_eq!(json["verification"]["username"], "sipuser01");
        assert_eq!(json["verification"]["previous"]["result"], "rejected");
        assert!(json.get("rollback").is_none());
        target.assert_consistent(&env);

        let human = target.rotate(&env, &["--verify", &registrar]);
        human.assert_code(0);
        assert!(
            human.stdout.contains("ok: sip:127.0.0.1:") && human.stdout.contains("accepted"),
            "{}",
            human.stdout
        );
        assert!(human.stderr.is_empty(), "{}", human.stderr);
        target.assert_consistent(&env);
    }
}

#[test]
fn a_new_password_the_registrar_rejects_is_exit_10_and_stays_stored() {
    for target in with_sip_username() {
        let (env, kamailio, _decoy) = with_stale_registrar(target);
        let registrar = kamailio.registrar("udp");
        let run = target.rotate(&env, &["--verify", &registrar, "--json"]);
        run.assert_code(10);
        let json = run.json();
        assert_eq!(json["verified"], false);
        assert_eq!(json["exit_code"], 10);
        assert_eq!(json["status"], "rotated");
        assert_eq!(json["verification"]["result"], "rejected");
        target.assert_consistent(&env);
        assert_eq!(
            env.lookup(&target.slot(&env, "#previous")).as_deref(),
            Some(target.initial),
            "the old password is kept in #previous"
        );
        run.assert_one_line_error("not verified");

        let human = target.rotate(&env, &["--verify", &registrar]);
        human.assert_code(10);
        assert!(
            human.stdout.contains("rejected: ") && human.stdout.contains("NOT VERIFIED"),
            "{}",
            human.stdout
        );
        target.assert_consistent(&env);
    }
}

#[test]
fn rollback_sets_the_previous_password_back_when_the_registrar_rejects_the_new_one() {
    let target = Target::VOBIZ;
    let (env, kamailio, _decoy) = with_stale_registrar(target);
    let registrar = kamailio.registrar("udp");
    let run = target.rotate(
        &env,
        &[
            "--verify",
            &registrar,
            "--rollback-on-verify-failure",
            "--json",
        ],
    );
    run.assert_code(10);
    let json = run.json();
    assert_eq!(json["verification"]["result"], "rejected");
    assert_eq!(json["rollback"]["status"], "rolled-back", "{json}");
    assert_eq!(json["rollback"]["attempts"], 1);
    assert_eq!(json["rollback"]["verification"]["result"], "ok");

    assert_eq!(
        target.live(&env),
        target.initial,
        "the provider has the old one again"
    );
    target.assert_consistent(&env);
    let unverified = env
        .lookup(&target.slot(&env, "#previous"))
        .expect("#previous");
    assert_ne!(unverified, target.initial);
    let credential = env.fake.vobiz_credential(target.id).unwrap();
    assert!(
        credential
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with("Rolled back by siprot on ")),
        "{credential:?}"
    );
    let rotations = env
        .audit_lines()
        .iter()
        .filter(|l| l["action"] == "rotate" && l["outcome"] == "rotated")
        .count();
    assert_eq!(
        rotations, 2,
        "the rotation and the rollback are both audited"
    );

    // The same in human form, on a fresh world.
    let (env, kamailio, _decoy) = with_stale_registrar(target);
    let human = target.rotate(
        &env,
        &[
            "--verify",
            &kamailio.registrar("udp"),
            "--rollback-on-verify-failure",
        ],
    );
    human.assert_code(10);
    assert!(
        human
            .stdout
            .contains("rolled back: vobiz has the previous password again")
    );
    assert!(
        human.stdout.contains("after the rollback, ok: "),
        "{}",
        human.stdout
    );
    human.assert_one_line_error("rolled back to the previous password");
    target.assert_consistent(&env);
}

#[test]
fn no_rollback_without_a_rejection() {
    let target = Target::VOBIZ;
    let env = TestEnv::start();
    target.seed(&env);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let registrar = format!("sip:127.0.0.1:{}", silent.local_addr().unwrap().port());
    let run = target.rotate(
        &env,
        &[
            "--verify",
            &registrar,
            "--verify-timeout",
            "1",
            "--rollback-on-verify-failure",
            "--json",
        ],
    );
    run.assert_code(10);
    let json = run.json();
    assert_eq!(json["verification"]["result"], "unreachable");
    assert_eq!(json["rollback"]["status"], "not-rolled-back");
    assert_ne!(target.live(&env), target.initial, "the new password stays");
    target.assert_consistent(&env);
}

#[test]
fn rotate_verify_options_are_checked_before_anything_is_sent() {
    let env = TestEnv::start();
    for target in Target::ALL {
        target.seed(&env);
    }
    let registrar = "sip:127.0.0.1:5999";
    let client_set = siprot::providers::names_where(|r| {
        r.origin == siprot::providers::PasswordOrigin::ClientSupplied
    });
    let rollback_is_for = format!("--rollback-on-verify-failure is for {client_set}");
    for (target, extra, fragment) in [
        (
            Target::TELEPATH,
            vec!["--verify", registrar, "--rollback-on-verify-failure"],
            rollback_is_for.as_str(),
        ),
        (
            Target::VOBIZ,
            vec!["--rollback-on-verify-failure"],
            "go with --verify",
        ),
        (Target::VOBIZ, vec!["--username", "u1"], "go with --verify"),
        (
            Target::EXOTEL,
            vec!["--verify", registrar],
            "pass --username",
        ),
        (
            Target::VOBIZ,
            vec!["--verify", registrar, "--username", "a b"],
            "SIP username",
        ),
        (
            Target::VOBIZ,
            vec!["--verify", registrar, "--domain", "x;y"],
            "SIP domain",
        ),
    ] {
        let run = target.rotate(&env, &extra);
        run.assert_code(2).assert_one_line_error(fragment);
    }
    assert!(
        env.fake.requests().is_empty(),
        "a refused command reached a provider"
    );
    for target in Target::ALL {
        target.assert_consistent(&env);
    }

    let run = Target::VOBIZ.rotate(&env, &["--verify", registrar, "--dry-run"]);
    run.assert_code(0);
    assert!(
        run.stdout.contains(
            "verify the new password with a SIP REGISTER to sip:127.0.0.1:5999;transport=udp"
        ),
        "{}",
        run.stdout
    );
    assert!(env.fake.requests().is_empty());
}
