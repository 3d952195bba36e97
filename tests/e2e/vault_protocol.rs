//! The rotation protocol's safety with the vault store, end to end (the real binary, the
//! fake providers, a real OpenBao): a signal during the provider request still lets the
//! store writes that make an accepted password safe go out, and one before it releases
//! the claim; a write of current that a broken proxy answers without storing is caught by
//! the read-back; a claim not provably this host's is held and kept.

use std::time::Duration;

use crate::support::openbao::{Bao, ROOT_TOKEN};
use crate::support::{Fault, Target};
use crate::vault::{World, seed};

/// `kill -s` names and the exit codes they must give.
const SIGNALS: [(&str, i32); 3] = [("INT", 130), ("TERM", 143), ("HUP", 129)];

/// A world on the shared server whose store holds `target`'s initial password as current.
fn seeded_world(bao: &Bao, target: &Target, tag: &str) -> World {
    let world = World::shared(tag);
    (target.create)(target, &world.env);
    let entry = target.entry(&world.env);
    seed(
        |a| bao.cli(ROOT_TOKEN, a),
        &world.current(&entry),
        target,
        target.initial,
    );
    world
}

/// The outcomes of the audit records of `entry`, in order.
fn outcomes(world: &World, entry: &str) -> Vec<String> {
    world
        .env
        .all_audit_lines()
        .iter()
        .filter(|l| l["entry"] == entry)
        .map(|l| l["outcome"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_signal_during_the_provider_request_still_stores_the_password_in_the_vault_store() {
    let bao = Bao::shared();
    for target in Target::ALL {
        for (signal, code) in SIGNALS {
            let what = format!("{} SIG{signal}", target.name);
            let world = seeded_world(bao, &target, "signal");
            let env = &world.env;
            let entry = target.entry(env);
            // The provider changes the password at once and answers 2 s later: the signal
            // comes while the request is in flight.
            env.fake.push_fault(
                target.provider,
                Fault::CommitThenDelay(Duration::from_secs(2)),
            );
            let mut args = target.rotate_args(&["--json"]);
            args.extend(["--secret-prefix", &world.prefix]);
            let running = env.spawn_running(&args);
            env.wait_for_requests(1);
            env.send_signal(&running, signal);
            let run = env.wait_exit(running);

            run.assert_code(code);
            let json = run.json();
            assert_eq!(json["status"], "rotated", "{what}: {}", run.stderr);
            assert_eq!(json["interrupted_by"], format!("SIG{signal}"), "{what}");
            assert!(
                !run.stderr.contains("not sent"),
                "{what}: a store write was held back: {}",
                run.stderr
            );
            let live = target.live(env);
            assert_ne!(live, target.initial, "{what}: the provider rotated");
            assert_eq!(
                bao.kv_get(&world.current(&entry), "password").as_deref(),
                Some(live.as_str()),
                "{what}: the store's current equals the provider's password"
            );
            assert_eq!(
                bao.kv_data(&world.path(&entry, ".pending/")),
                None,
                "{what}: no #pending and no claim left"
            );
            assert_eq!(
                bao.kv_get(&world.path(&entry, ".previous/"), "password")
                    .as_deref(),
                Some(target.initial),
                "{what}"
            );
            let recovery: Vec<_> = std::fs::read_dir(env.recovery_dir())
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            assert!(recovery.is_empty(), "{what}: {recovery:?}");
            assert_eq!(env.fake.requests().len(), 1, "{what}: one request");
            assert_eq!(
                outcomes(&world, &entry),
                ["in-progress", "rotated"],
                "{what}"
            );
            // Nothing is left to recover: another run rotates at once.
            world.run(&target.rotate_args(&[])).assert_code(0);
        }
    }
}

/// A claim of a clone of this host (the same host name and state path, another state
/// directory id) and a claim that names no holder at all: neither is provably this host's,
/// so `rotate` stops with exit 7 and sends nothing, `recover` reports it `held` (exit 7),
/// and the claim stays as it was.
#[test]
fn a_claim_not_provably_this_hosts_is_held_and_kept_in_the_vault_store() {
    let bao = Bao::shared();
    let target = Target::TELEPATH;
    let world = seeded_world(bao, &target, "holder");
    let env = &world.env;
    let entry = target.entry(env);
    // A first rotation makes this state directory's id (checked at the end).
    world.run(&target.rotate_args(&[])).assert_code(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let clone = serde_json::json!({
        "host": host.trim(),
        "state": env.state_root().display().to_string(),
        "id": "0123456789abcdef0123456789abcdef",
        "pid": 4242,
        "since": "2026-12-01T08:00:00Z",
    });
    let requests = env.fake.requests().len();
    let claim = world.path(&entry, ".pending/");
    for (what, holder) in [("a holder-less", None), ("a clone's", Some(clone))] {
        let mut data = serde_json::json!({"provider": target.name, "credential": target.id});
        if let Some(holder) = holder {
            data["holder"] = holder;
        }
        let file = env.state.path().join("claim.json");
        std::fs::write(&file, data.to_string()).unwrap();
        let put = bao.cli(
            ROOT_TOKEN,
            &["kv", "put", &claim, &format!("@{}", file.display())],
        );
        assert!(
            put.status.success(),
            "{}",
            String::from_utf8_lossy(&put.stderr)
        );

        let rotated = world.run(&target.rotate_args(&[]));
        let recovered = world.run(&["recover", "--json"]);
        assert_eq!(
            bao.kv_data(&claim),
            Some(data),
            "{what} claim: kept as it was"
        );
        assert_eq!(env.fake.requests().len(), requests, "{what}: nothing sent");
        recovered.assert_code(7);
        assert!(
            recovered.stdout.contains("\"held\""),
            "{what}: {}",
            recovered.stdout
        );
        rotated.assert_code(7);
        assert!(
            rotated.stderr.contains("nothing was sent"),
            "{what}: {}",
            rotated.stderr
        );

        let removed = bao.cli(ROOT_TOKEN, &["kv", "metadata", "delete", &claim]);
        assert!(removed.status.success());
    }
    world.run(&target.rotate_args(&[])).assert_code(0);
    let id = std::fs::read_to_string(env.state_root().join("holder-id")).unwrap_or_default();
    assert_eq!(
        id.trim().len(),
        32,
        "the state directory keeps its id: {id}"
    );
}

/// A broken proxy in front of a vault server: it forwards every request, one per
/// connection, except the first write to `lie_about` (a path under `/v1/`), which it
/// answers `200` with a version without sending it on.
struct LyingProxy {
    addr: String,
    lied: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LyingProxy {
    fn start(upstream: &str, lie_about: String) -> Self {
        use std::net::TcpListener;
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let lied = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = lied.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, lie_about, flag) =
                    (upstream.clone(), lie_about.clone(), flag.clone());
                std::thread::spawn(move || Self::serve(client, &upstream, &lie_about, &flag));
            }
        });
        Self { addr, lied }
    }

    fn lied(&self) -> bool {
        self.lied.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One request: read it whole, then lie or forward it with `Connection: close`.
    fn serve(
        mut client: std::net::TcpStream,
        upstream: &str,
        lie_about: &str,
        lied: &std::sync::atomic::AtomicBool,
    ) {
        use std::io::{Read, Write};
        let mut request = Vec::new();
        let mut buf = [0u8; 8192];
        let head_end = loop {
            let Ok(n @ 1..) = client.read(&mut buf) else {
                return;
            };
            request.extend_from_slice(&buf[..n]);
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while request.len() < head_end + length {
            let Ok(n @ 1..) = client.read(&mut buf) else {
                return;
            };
            request.extend_from_slice(&buf[..n]);
        }
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        if matches!(method, "POST" | "PUT")
            && path == lie_about
            && !lied.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let body = r#"{"data":{"version":7}}"#;
            let _ = write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
            return;
        };
        let head: String = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
            .map(|l| format!("{l}\r\n"))
            .collect();
        let _ = server.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
        let _ = server.write_all(&request[head_end..]);
        let mut response = Vec::new();
        let _ = server.read_to_end(&mut response);
        let _ = client.write_all(&response);
    }
}

/// A store that answers the write of the new current password without storing it (a
/// broken proxy): `rotate` reads current back, so it never exits 0, and the accepted
/// password stays in `#pending` (Exotel, Vobiz) or a recovery file (Telepath) until the
/// next step, through the same proxy, stores it.
#[test]
fn a_current_write_answered_without_being_stored_never_exits_0() {
    let bao = Bao::shared();
    for target in Target::ALL {
        let mut world = seeded_world(bao, &target, "readback");
        let entry = target.entry(&world.env);
        let proxy = LyingProxy::start(
            &bao.addr,
            format!("/v1/secret/data/{}{entry}", world.prefix),
        );
        world.env.set_env("VAULT_ADDR", &proxy.addr);

        let run = world.run(&target.rotate_args(&[]));
        run.assert_code(9);
        assert!(
            proxy.lied(),
            "{}: the write went through the proxy",
            target.name
        );
        assert!(
            run.stderr.contains("read back"),
            "{}: {}",
            target.name,
            run.stderr
        );
        let live = target.live(&world.env);
        assert_ne!(
            live, target.initial,
            "{}: the provider rotated",
            target.name
        );
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(target.initial),
            "{}: the store never took it",
            target.name
        );
        let recovery: Vec<_> = std::fs::read_dir(world.env.recovery_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if target.name == "telepath" {
            assert_eq!(recovery.len(), 1, "{}", run.stderr);
            let file = std::fs::read_to_string(&recovery[0]).unwrap();
            assert!(file.contains(&live), "the recovery file holds it");
            world.run(&["recover"]).assert_code(0);
        } else {
            assert!(recovery.is_empty(), "{recovery:?}");
            assert_eq!(
                bao.kv_get(&world.path(&entry, ".pending/"), "password")
                    .as_deref(),
                Some(live.as_str()),
                "{}: kept in #pending",
                target.name
            );
            world.run(&target.rotate_args(&[])).assert_code(0);
            assert_eq!(
                target.live(&world.env),
                live,
                "the same password was resent"
            );
        }
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(live.as_str()),
            "{}: stored in the end",
            target.name
        );
        assert_eq!(bao.kv_data(&world.path(&entry, ".pending/")), None);
    }
}

/// A signal before the provider request (Telepath stopped after its claim and its copy to
/// `#previous`; Exotel and Vobiz after staging `#pending`): nothing is sent, and the
/// fresh claim or `#pending` is removed from the vault store, as in the keyring.
#[test]
fn a_signal_before_the_request_sends_nothing_and_releases_the_claim_in_the_vault_store() {
    let bao = Bao::shared();
    let cases = [
        (Target::TELEPATH, "previous-written", SIGNALS[0]),
        (Target::EXOTEL, "pending-written", SIGNALS[1]),
        (Target::VOBIZ, "pending-written", SIGNALS[2]),
    ];
    for (target, point, (signal, code)) in cases {
        let world = seeded_world(bao, &target, "early-signal");
        let env = &world.env;
        let entry = target.entry(env);
        let mut args = target.rotate_args(&[]);
        args.extend(["--secret-prefix", &world.prefix]);
        let paused = env.spawn_paused(&args, point);
        assert!(
            bao.kv_data(&world.path(&entry, ".pending/")).is_some(),
            "{}: claimed",
            target.name
        );
        env.send_signal(&paused, signal);
        let run = env.wait_exit(paused);
        run.assert_code(code);
        assert!(
            run.stderr.contains("before anything was sent"),
            "{}: {}",
            target.name,
            run.stderr
        );
        assert!(env.fake.requests().is_empty(), "{}", target.name);
        assert_eq!(
            bao.kv_data(&world.path(&entry, ".pending/")),
            None,
            "{}: the claim was released: {}",
            target.name,
            run.stderr
        );
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(target.initial)
        );
        world.run(&target.rotate_args(&[])).assert_code(0);
    }
}
