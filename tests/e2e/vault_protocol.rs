//! The rotation protocol's safety with the vault store, end to end (the real binary, the
//! fake providers, a real OpenBao): a signal during the provider request still lets the
//! store writes that make an accepted password safe go out.

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
    // A first rotation makes this state directory's id.
    world.run(&target.rotate_args(&[])).assert_code(0);
    let id = std::fs::read_to_string(env.state_root().join("holder-id")).unwrap();
    assert_eq!(id.trim().len(), 32, "{id}");
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
    for (what, holder) in [("a clone's", Some(clone)), ("a holder-less", None)] {
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

        let run = world.run(&target.rotate_args(&[]));
        run.assert_code(7);
        assert!(
            run.stderr.contains("nothing was sent"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(env.fake.requests().len(), requests, "{what}: nothing sent");
        let run = world.run(&["recover", "--json"]);
        run.assert_code(7);
        assert!(run.stdout.contains("\"held\""), "{what}: {}", run.stdout);
        assert_eq!(
            bao.kv_data(&claim),
            Some(data),
            "{what} claim: kept as it was"
        );

        let removed = bao.cli(ROOT_TOKEN, &["kv", "metadata", "delete", &claim]);
        assert!(removed.status.success());
    }
    world.run(&target.rotate_args(&[])).assert_code(0);
}
