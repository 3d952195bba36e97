//! The vault store end to end: the real `siprot` binary with `--store vault` (or
//! `SIPROT_STORE`, or an inventory's `store`) against the fake providers and real OpenBao
//! servers ([`crate::support::openbao`]). Every test runs without any Secret Service (as on
//! a CI runner: a keyring access would fail it), with a token of docs/vault.md's
//! least-privilege policy for a prefix of the test's own, and reads back what a PBX would
//! read, through the `bao` CLI. The leak checks of every run cover that token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use siprot::store::vault::VaultStore;
use siprot::store::{EntryName, Facts, Precondition, Record, SecretStore, Slot};

use crate::support::openbao::{Bao, Cluster, ROOT_TOKEN, unique_prefix};
use crate::support::{EXOTEL_SID, Run, Target, TestEnv};

/// docs/vault.md's policy for siprot's own token, for `prefix` under the mount `secret`.
fn rotator_policy(prefix: &str) -> String {
    format!(
        "path \"secret/data/{prefix}*\" {{\n  capabilities = [\"create\", \"read\", \"update\"]\n}}\n\
         path \"secret/metadata/{prefix}*\" {{\n  capabilities = [\"read\", \"list\", \"delete\"]\n}}\n"
    )
}

/// A token with [`rotator_policy`] for `prefix`, made with `admin` (a root token).
fn rotator_token(
    cli: impl Fn(&[&str]) -> std::process::Output,
    dir: &Path,
    prefix: &str,
) -> String {
    let name = format!("siprot-{}", prefix.trim_end_matches('/'));
    let file = dir.join(format!("{name}.hcl"));
    std::fs::write(&file, rotator_policy(prefix)).unwrap();
    let out = cli(&["policy", "write", &name, file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["token", "create", "-policy", &name, "-field=token"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Fake providers, no keyring, and the vault store at `addr` under a prefix of its own.
pub(crate) struct World {
    pub(crate) env: TestEnv,
    pub(crate) prefix: String,
}

impl World {
    /// On the shared dev server.
    pub(crate) fn shared(tag: &str) -> Self {
        let bao = Bao::shared();
        Self::on(bao, tag)
    }

    fn on(bao: &Bao, tag: &str) -> Self {
        let env = TestEnv::without_keyring();
        let prefix = unique_prefix(tag);
        let token = rotator_token(|args| bao.cli(ROOT_TOKEN, args), env.state.path(), &prefix);
        Self::with(env, &bao.addr, &token, prefix)
    }

    fn with(mut env: TestEnv, addr: &str, token: &str, prefix: String) -> Self {
        env.set_env("VAULT_ADDR", addr);
        env.set_env("VAULT_TOKEN", token);
        env.set_env("SIPROT_STORE", "vault");
        Self { env, prefix }
    }

    /// `siprot <args> --secret-prefix <prefix>`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--secret-prefix", &self.prefix]);
        self.env.run(&all, None)
    }

    fn rotate(&self, target: &Target, extra: &[&str]) -> Run {
        self.run(&target.rotate_args(extra))
    }

    /// The KV path (under the mount) of a slot of `target`'s credential.
    pub(crate) fn path(&self, entry: &str, folder: &str) -> String {
        format!("secret/{}{folder}{entry}", self.prefix)
    }

    pub(crate) fn current(&self, entry: &str) -> String {
        self.path(entry, "")
    }
}

/// `bao kv put` as root: the current secret of `entry` holds `password`, as after an
/// earlier rotation.
pub(crate) fn seed(
    bao_cli: impl Fn(&[&str]) -> std::process::Output,
    path: &str,
    target: &Target,
    password: &str,
) {
    let mut args = vec![
        "kv".to_owned(),
        "put".to_owned(),
        path.to_owned(),
        format!("password={password}"),
        format!("provider={}", target.name),
        format!("credential={}", target.id),
    ];
    if let Some(device) = target.device {
        args.push(format!("device={device}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = bao_cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn secret_get(world: &World, target: &Target, extra: &[&str]) -> Run {
    let mut args = vec!["secret", "get", "--provider", target.name, target.id];
    if let Some((flag, _, value)) = target.part() {
        args.extend([flag, value]);
    }
    args.extend_from_slice(extra);
    world.run(&args)
}

#[test]
fn every_provider_rotates_into_the_vault_store_where_a_pbx_reads_it_without_any_keyring() {
    let bao = Bao::shared();
    for target in Target::ALL {
        let world = World::shared(target.name);
        let env = &world.env;
        (target.create)(&target, env);
        let entry = target.entry(env);
        seed(
            |a| bao.cli(ROOT_TOKEN, a),
            &world.current(&entry),
            &target,
            target.initial,
        );

        let run = world.rotate(&target, &["--json"]);
        run.assert_code(0);
        let json = run.json();
        assert_eq!(json["store"], "vault", "{}", run.stdout);
        assert_eq!(json["status"], "rotated");
        let live = target.live(env);
        assert_ne!(
            live, target.initial,
            "{}: the provider's password changed",
            target.name
        );

        // What a PBX reads: `bao kv get -field=password secret/<prefix><entry>`.
        let current = world.current(&entry);
        assert_eq!(
            bao.kv_get(&current, "password").as_deref(),
            Some(live.as_str())
        );
        let data = bao.kv_data(&current).expect("the current secret");
        assert_eq!(data["provider"], target.name);
        assert_eq!(data["credential"], target.id);
        match target.device {
            Some(device) => assert_eq!(data["device"], device),
            None => assert!(data.get("device").is_none(), "{data}"),
        }
        assert!(
            data["rotated_at"]
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
            "{data}"
        );
        if target.name != "exotel" {
            assert!(
                data["username"].as_str().is_some(),
                "{}: {data}",
                target.name
            );
        }
        assert!(
            data.get("holder").is_none(),
            "no claim data in the current secret: {data}"
        );

        // The slots a consumer never sees beside the current secret.
        assert_eq!(
            bao.kv_get(&world.path(&entry, ".previous/"), "password")
                .as_deref(),
            Some(target.initial)
        );
        assert_eq!(
            bao.kv_data(&world.path(&entry, ".pending/")),
            None,
            "nothing pending"
        );

        let run = secret_get(&world, &target, &[]);
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{live}\n"));
        let run = secret_get(&world, &target, &["--previous"]);
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{}\n", target.initial));

        // The audit log names the vault store, never a keyring service.
        let audit = env.audit_lines();
        let last = audit.last().expect("an audit line");
        assert_eq!(last["service"], format!("vault:secret/{}", world.prefix));
        assert_eq!(last["outcome"], "rotated");
    }
}

#[test]
fn a_first_rotation_creates_the_secret_and_a_second_keeps_the_first_in_previous() {
    let bao = Bao::shared();
    for target in [Target::TELEPATH, Target::VOBIZ] {
        let world = World::shared("first");
        (target.create)(&target, &world.env);
        let entry = target.entry(&world.env);
        world.rotate(&target, &[]).assert_code(0);
        let first = target.live(&world.env);
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(first.as_str())
        );
        assert_eq!(bao.kv_data(&world.path(&entry, ".previous/")), None);

        world.rotate(&target, &[]).assert_code(0);
        let second = target.live(&world.env);
        assert_ne!(first, second);
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(second.as_str())
        );
        let run = secret_get(&world, &target, &["--previous"]);
        assert_eq!(run.stdout, format!("{first}\n"));
    }
}

/// A world whose store is node 0 of `cluster`, with its root token (random: the leak
/// checks cover it).
fn on_cluster(cluster: &Cluster, node: usize, tag: &str) -> World {
    World::with(
        TestEnv::without_keyring(),
        &cluster.addr(node),
        &cluster.root_token,
        unique_prefix(tag),
    )
}

/// `args` with the world's prefix, paused at `point` (see `src/checkpoint.rs`); resumed
/// by [`resume`].
fn spawn_paused(
    world: &mut World,
    args: &[&str],
    point: &str,
) -> (crate::support::Paused, PathBuf) {
    let resume = world.env.state.path().join(format!("resume-{point}"));
    world
        .env
        .set_env("SIPROT_TEST_RESUME_FILE", resume.to_str().unwrap());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--secret-prefix", &world.prefix]);
    let paused = world.env.spawn_paused(&all, point);
    (paused, resume)
}

fn resume(world: &mut World, paused: crate::support::Paused, file: &Path) -> Run {
    let run = world.env.resume(paused, file);
    world.env.remove_env("SIPROT_TEST_RESUME_FILE");
    run
}

#[test]
fn the_store_killed_after_the_provider_answered_loses_no_password() {
    for target in Target::ALL {
        // A single server on Raft storage: killed, it comes back with its data.
        let cluster = Cluster::of(1);
        let mut world = on_cluster(&cluster, 0, target.name);
        (target.create)(&target, &world.env);
        let entry = target.entry(&world.env);
        let cli = |args: &[&str]| cluster.cli(0, args);
        seed(cli, &world.current(&entry), &target, target.initial);

        let args = target.rotate_args(&["--keyring-timeout", "2"]);
        let (paused, file) = spawn_paused(&mut world, &args, "response-received");
        let live = target.live(&world.env);
        assert_ne!(
            live, target.initial,
            "{}: the provider accepted",
            target.name
        );
        cluster.kill(0);
        let run = resume(&mut world, paused, &file);
        run.assert_code(9);
        let recovery: Vec<_> = std::fs::read_dir(world.env.state_root().join("recovery"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        let requests = world.env.fake.requests().len();

        cluster.restart(0);
        let kv = |path: &str| {
            let out = cluster.cli(0, &["kv", "get", "-field=password", path]);
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        };
        if target.name == "telepath" {
            // Telepath: the answer went to a recovery file; the claim stays with it.
            assert_eq!(recovery.len(), 1, "{}", run.stderr);
            assert!(run.stderr.contains("recovery"), "{}", run.stderr);
            let run = world.run(&["recover", "--json"]);
            run.assert_code(0);
            assert_eq!(
                world.env.fake.requests().len(),
                requests,
                "recover sent nothing"
            );
        } else {
            // Client-set: the password waits in the store's #pending; a rerun resends it.
            assert!(recovery.is_empty(), "{recovery:?}");
            assert_eq!(
                kv(&world.path(&entry, ".pending/")).as_deref(),
                Some(live.as_str()),
                "{}",
                target.name
            );
            world.rotate(&target, &[]).assert_code(0);
            assert_eq!(
                target.live(&world.env),
                live,
                "the same password was resent"
            );
        }
        assert_eq!(
            kv(&world.current(&entry)).as_deref(),
            Some(live.as_str()),
            "{}",
            target.name
        );
        assert_eq!(
            kv(&world.path(&entry, ".pending/")),
            None,
            "{}: nothing pending",
            target.name
        );
        assert_eq!(
            kv(&world.path(&entry, ".previous/")).as_deref(),
            Some(target.initial),
            "{}",
            target.name
        );
    }
}

/// siprot as another host would run it: the same fake providers and store, another state
/// directory (so another lock file), with the leak checks of [`TestEnv::run`].
pub(crate) fn run_elsewhere(world: &World, state: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--secret-prefix", &world.prefix]);
    let output = world
        .env
        .command()
        .env("XDG_STATE_HOME", state)
        .args(&all)
        .stdin(Stdio::null())
        .output()
        .expect("siprot");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    world.env.find_leak(&run, false, &all).unwrap();
    run
}

#[test]
fn of_two_hosts_rotating_one_credential_exactly_one_proceeds() {
    let bao = Bao::shared();
    for (target, point) in [
        (Target::TELEPATH, "previous-written"),
        (Target::VOBIZ, "pending-written"),
        (Target::EXOTEL, "pending-written"),
    ] {
        let mut world = World::shared("twohosts");
        (target.create)(&target, &world.env);
        let entry = target.entry(&world.env);
        seed(
            |a| bao.cli(ROOT_TOKEN, a),
            &world.current(&entry),
            &target,
            target.initial,
        );
        let other = tempfile::tempdir().unwrap();

        // Host A holds the claim; host B (another state directory) tries the same.
        let (paused, file) = spawn_paused(&mut world, &target.rotate_args(&[]), point);
        let second = run_elsewhere(&world, other.path(), &target.rotate_args(&[]));
        second.assert_code(7);
        assert!(
            second.stderr.contains("is being rotated by host"),
            "{}",
            second.stderr
        );
        assert!(
            second
                .stderr
                .contains(&world.env.state_root().display().to_string()),
            "names the holder's state directory: {}",
            second.stderr
        );
        assert!(
            second.stderr.contains("nothing was sent"),
            "{}",
            second.stderr
        );
        assert!(
            world.env.fake.requests().is_empty(),
            "{}: B sent a request",
            target.name
        );

        resume(&mut world, paused, &file).assert_code(0);
        let live = target.live(&world.env);
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(live.as_str())
        );
        assert_eq!(
            world.env.fake.requests().len(),
            1,
            "{}: one rotation in all",
            target.name
        );

        // Once A is done, B may rotate.
        run_elsewhere(&world, other.path(), &target.rotate_args(&[])).assert_code(0);
        let newer = target.live(&world.env);
        assert_ne!(newer, live);
        assert_eq!(
            bao.kv_get(&world.current(&entry), "password").as_deref(),
            Some(newer.as_str())
        );
        assert_eq!(
            bao.kv_get(&world.path(&entry, ".previous/"), "password")
                .as_deref(),
            Some(live.as_str())
        );
    }
}

#[test]
fn an_unreachable_or_sealed_store_stops_the_rotation_before_anything_is_sent() {
    // Nothing listens on the address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let world = World::with(
        TestEnv::without_keyring(),
        &format!("http://127.0.0.1:{port}"),
        "s.unreachable-store-token-0123",
        unique_prefix("down"),
    );
    for target in Target::ALL {
        (target.create)(&target, &world.env);
        let run = world.rotate(&target, &["--keyring-timeout", "2"]);
        run.assert_code(8);
        run.assert_one_line_error("vault store unavailable");
        assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    }
    assert!(world.env.fake.requests().is_empty());

    let bao = Bao::start();
    let world = World::on(&bao, "sealed");
    bao.seal();
    for target in Target::ALL {
        (target.create)(&target, &world.env);
        let run = world.rotate(&target, &["--keyring-timeout", "5"]);
        run.assert_code(8);
        assert!(run.stderr.contains("sealed"), "{}", run.stderr);
    }
    assert!(world.env.fake.requests().is_empty());
}

#[test]
fn a_token_that_may_only_read_is_refused_before_anything_is_sent() {
    let bao = Bao::shared();
    let reader = bao.read_only_token("siprot-e2e-reader");
    let world = World::with(
        TestEnv::without_keyring(),
        &bao.addr,
        &reader,
        unique_prefix("readonly"),
    );
    for target in Target::ALL {
        (target.create)(&target, &world.env);
        let run = world.rotate(&target, &[]);
        run.assert_code(4);
        let entry = target.entry(&world.env);
        assert!(
            run.stderr
                .contains(&format!("secret/data/{}", world.prefix))
                && run.stderr.contains(&entry),
            "names the path: {}",
            run.stderr
        );
        assert!(
            ["create", "update"].iter().any(|c| run.stderr.contains(c)),
            "names the capability: {}",
            run.stderr
        );
        assert_eq!(target.live(&world.env), target.initial);
    }
    assert!(world.env.fake.requests().is_empty());
}

/// A fleet of `per_provider` credentials at each provider, each seeded in the store, and
/// an inventory choosing the vault store and the world's prefix itself.
fn vault_fleet(
    world: &World,
    per_provider: usize,
    store: &VaultStore,
) -> (PathBuf, Vec<(Target, String, String)>) {
    let env = &world.env;
    let mut toml = format!("store = \"vault\"\nsecret_prefix = \"{}\"\n", world.prefix);
    let mut members = Vec::new();
    for i in 0..per_provider {
        let trunk = format!("conn_vf{i:03}");
        let pass = format!("Vault-Fleet-Telepath-{i:03}");
        env.fake
            .add_telepath_trunk(&trunk, &format!("sip{i:03}"), &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"telepath\"\nid = \"{trunk}\"\n"
        ));
        members.push((
            "telepath",
            trunk.clone(),
            None,
            format!("telepath/{trunk}"),
            pass,
        ));

        let user = format!("user-vf-{i:03}");
        let pass = format!("Vault-Fleet-Exotel-{i:03}");
        env.fake.add_exotel_device(&user, "dev", &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"exotel\"\nid = \"{user}\"\ndevice = \"dev\"\n"
        ));
        members.push((
            "exotel",
            user.clone(),
            Some("dev"),
            format!("exotel/{EXOTEL_SID}/{user}/dev"),
            pass,
        ));

        let cred = format!("cred-vf-{i:03}");
        let pass = format!("Vault-Fleet-Vobiz-{i:03}");
        env.fake
            .add_vobiz_credential(&cred, &format!("sip{i:03}"), &pass);
        toml.push_str(&format!(
            "\n[[credential]]\nprovider = \"vobiz\"\nid = \"{cred}\"\n"
        ));
        let auth = env.fake.config().vobiz_auth_id.clone();
        members.push((
            "vobiz",
            cred.clone(),
            None,
            format!("vobiz/{auth}/{cred}"),
            pass,
        ));
    }
    let mut out = Vec::new();
    for (provider, id, device, entry, pass) in members {
        let target = match provider {
            "telepath" => Target::TELEPATH,
            "exotel" => Target::EXOTEL,
            _ => Target::VOBIZ,
        };
        let seeded = Target {
            id: Box::leak(id.clone().into_boxed_str()),
            device,
            ..target
        };
        out.push((seeded, entry, pass));
    }
    // Through the library (a `bao kv put` per credential would take a process each).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for (target, entry, pass) in &out {
            let facts = Facts {
                provider: target.name.to_owned(),
                credential: target.id.to_owned(),
                device: target.device.map(str::to_owned),
                ..Facts::default()
            };
            let secret = secrecy::SecretString::from(pass.clone());
            let record = Record {
                secret: Some(&secret),
                facts: &facts,
            };
            store
                .write(
                    &EntryName::new(entry.as_str()),
                    Slot::Current,
                    record,
                    Precondition::Any,
                )
                .await
                .unwrap();
        }
    });
    let path = env.state.path().join("fleet.toml");
    std::fs::write(&path, toml).unwrap();
    (path, out)
}

#[test]
fn a_fleet_rotates_into_the_vault_store_its_inventory_names_and_status_reads_it() {
    let bao = Bao::shared();
    let mut world = World::shared("fleet");
    // The inventory alone chooses the store and the prefix.
    world.env.remove_env("SIPROT_STORE");
    let store = bao.store(&world.prefix, Duration::from_secs(10));
    let (path, members) = vault_fleet(&world, 10, &store);
    let path = path.display().to_string();
    let run = world
        .env
        .run(&["rotate", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    for (target, entry, initial) in &members {
        let live = target.live(&world.env);
        assert_ne!(&live, initial, "{entry} was rotated");
        assert_eq!(
            bao.kv_get(&world.current(entry), "password").as_deref(),
            Some(live.as_str()),
            "{entry}"
        );
        let run = world.env.run(
            &[
                "secret",
                "get",
                "--previous",
                "--provider",
                target.name,
                target.id,
                "--secret-prefix",
                &world.prefix,
                "--store",
                "vault",
            ]
            .into_iter()
            .chain(
                target
                    .part()
                    .map(|(flag, _, value)| [flag, value])
                    .into_iter()
                    .flatten(),
            )
            .collect::<Vec<_>>(),
            None,
        );
        run.assert_code(0);
        assert_eq!(run.stdout, format!("{initial}\n"), "{entry}");
    }
    let run = world
        .env
        .run(&["status", "--inventory", &path, "--json"], None);
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["total"], 30);
    assert_eq!(json["needs_recovery"], 0, "{}", run.stdout);
    assert_eq!(
        json["keyring_service"],
        format!("vault:secret/{}", world.prefix)
    );
    assert!(
        json["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["pending"] == false),
        "{}",
        run.stdout
    );
}

#[test]
fn a_fleet_survives_the_leader_of_a_raft_cluster_killed_in_its_middle() {
    let cluster = Cluster::start();
    // siprot talks to a standby, which forwards to the leader and survives it.
    let node = cluster.standby();
    let mut world = on_cluster(&cluster, node, "raft");
    world.env.remove_env("SIPROT_STORE");
    let store = cluster.store(node, &world.prefix, Duration::from_secs(30));
    let (path, members) = vault_fleet(&world, 100, &store);
    let path = path.display().to_string();
    let args = [
        "rotate",
        "--inventory",
        &path,
        "--json",
        "--concurrency",
        "4",
        "--keyring-timeout",
        "30",
    ];
    let running = world.env.spawn_running(&args);
    world.env.wait_for_requests(60);
    let killed = cluster.kill_leader();
    assert_ne!(killed, node);
    let at_kill = world.env.fake.requests().len();
    let first = world.env.wait_exit(running);
    eprintln!(
        "raft fleet: leader killed after {at_kill} provider requests; first run exit {}",
        first.code
    );
    assert!(
        [0, 7, 8, 9].contains(&first.code),
        "exit {}: {}",
        first.code,
        first.stderr
    );
    let rotated_first = world.env.fake.requests().len();
    assert!(
        rotated_first > 60,
        "the fleet went on after the kill: {rotated_first}"
    );
    // At most one rerun or recover: recover settles what may be live (a #pending, a
    // recovery file); what failed before its request never changed.
    let run = world.env.run(
        &[
            "recover",
            "--json",
            "--store",
            "vault",
            "--secret-prefix",
            &world.prefix,
        ],
        None,
    );
    run.assert_code(0);
    let kv = |path: &str| {
        let out = cluster.cli(node, &["kv", "get", "-field=password", path]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let mut rotated = 0;
    for (target, entry, initial) in &members {
        let live = target.live(&world.env);
        assert_eq!(
            kv(&world.current(entry)).as_deref(),
            Some(live.as_str()),
            "{entry}"
        );
        assert_eq!(kv(&world.path(entry, ".pending/")), None, "{entry}");
        if &live != initial {
            rotated += 1;
        }
    }
    eprintln!("raft fleet: {rotated} of 300 rotated, every current equal to the provider's");
    assert!(
        rotated >= 200,
        "most of the fleet rotated: {rotated} of 300"
    );
}

#[test]
fn store_settings_that_cannot_be_used_are_refused_before_anything_is_sent() {
    let mut env = TestEnv::without_keyring();
    (Target::VOBIZ.create)(&Target::VOBIZ, &env);
    env.set_env("SIPROT_STORE", "consul");
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(4);
    run.assert_one_line_error("SIPROT_STORE is 'consul', not one of keyring, vault");

    env.set_env("SIPROT_STORE", "keyring");
    let run = Target::VOBIZ.rotate(&env, &["--vault-mount", "kv"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--store vault"), "{}", run.stderr);

    let run = Target::VOBIZ.rotate(&env, &["--store", "etcd"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("unknown store 'etcd'"),
        "{}",
        run.stderr
    );

    // The vault store without an address or a token: exit 4, naming what to set.
    env.set_env("SIPROT_STORE", "vault");
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(4);
    assert!(run.stderr.contains("VAULT_ADDR"), "{}", run.stderr);
    env.set_env("VAULT_ADDR", "http://127.0.0.1:1");
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(4);
    assert!(run.stderr.contains("VAULT_TOKEN"), "{}", run.stderr);
    // Plain http:// only to a loopback address.
    env.set_env("VAULT_ADDR", "http://vault.example.com:8200");
    env.set_env("VAULT_TOKEN", "s.some-token-0123456789");
    let run = Target::VOBIZ.rotate(&env, &[]);
    run.assert_code(4);
    assert!(run.stderr.contains("VAULT_ADDR"), "{}", run.stderr);
    assert!(env.fake.requests().is_empty());
}

/// `siprot doctor` with the vault store: ok against the dev server (the token never
/// shown), exit 8 with a next step on a sealed one or with a token it refuses.
#[test]
fn doctor_checks_the_vault_store_without_showing_the_token() {
    let bao = Bao::shared();
    let env = TestEnv::without_keyring();
    let prefix = unique_prefix("doctor");
    let token = rotator_token(|args| bao.cli(ROOT_TOKEN, args), env.state.path(), &prefix);
    let world = World::with(env, &bao.addr, &token, prefix);
    let run = world.run(&["doctor"]);
    run.assert_code(0);
    assert!(!run.stdout.contains(&token), "{}", run.stdout);
    assert!(!run.stdout.contains("session bus"), "{}", run.stdout);
    let store = run
        .stdout
        .lines()
        .find(|l| l.contains("vault store:"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(store.starts_with("ok "), "{store}");
    assert!(store.contains("unsealed"), "{store}");
    assert!(
        run.stdout
            .contains("vault token: from VAULT_TOKEN (not shown)"),
        "{}",
        run.stdout
    );
    let json = world.run(&["doctor", "--json"]);
    json.assert_code(0);
    assert!(!json.stdout.contains(&token));
    assert_eq!(json.json()["ok"], true);

    let refused = World::with(
        TestEnv::without_keyring(),
        &bao.addr,
        "s.doctor-bogus-token-0123",
        unique_prefix("doctor-bad"),
    );
    let run = refused.run(&["doctor", "--keyring-timeout", "3"]);
    run.assert_code(8);
    let store = run
        .stdout
        .lines()
        .find(|l| l.contains("vault store:"))
        .unwrap();
    assert!(store.starts_with("fail  vault store:"), "{store}");
    assert!(store.contains("check the token"), "{store}");
    assert!(!run.stdout.contains("s.doctor-bogus-token-0123"));

    let sealed_bao = Bao::start();
    let world = World::on(&sealed_bao, "doctor-sealed");
    sealed_bao.seal();
    let run = world.run(&["doctor", "--keyring-timeout", "3"]);
    run.assert_code(8);
    let store = run
        .stdout
        .lines()
        .find(|l| l.contains("vault store:"))
        .unwrap();
    assert!(store.starts_with("fail  vault store:"), "{store}");
    assert!(store.contains("sealed"), "{store}");
    assert!(store.contains("unseal"), "{store}");
}

#[test]
fn login_keeps_api_keys_in_the_vault_store_for_a_runner_without_a_keyring() {
    let bao = Bao::shared();
    let target = Target::EXOTEL;
    let mut world = World::shared("login");
    (target.create)(&target, &world.env);
    let entry = target.entry(&world.env);
    seed(
        |args| bao.cli(ROOT_TOKEN, args),
        &world.current(&entry),
        &target,
        target.initial,
    );
    let all = world.env.fake.environment(world.env.addr);
    let value = |var: &str| {
        all.iter()
            .find(|(name, _)| *name == var)
            .map(|(_, value)| value.clone())
            .unwrap()
    };
    let (key, token) = (value("EXOTEL_API_KEY"), value("EXOTEL_API_TOKEN"));
    world.env.remove_env("EXOTEL_API_KEY");
    world.env.remove_env("EXOTEL_API_TOKEN");
    let prefix = world.prefix.clone();
    let run = world.env.run(
        &[
            "login",
            "--provider",
            "exotel",
            "--with-token",
            "--json",
            "--secret-prefix",
            &prefix,
        ],
        Some(format!("{key}\n{token}\n").as_bytes()),
    );
    run.assert_code(0);
    assert_eq!(run.json()["store"], "vault");
    let kept = world.path("login/exotel/default/api_token", "");
    assert_eq!(
        bao.kv_get(&kept, "password").as_deref(),
        Some(token.as_str())
    );
    // A rotation finds the keys in the vault store: no keyring, no key in the environment.
    world.rotate(&target, &[]).assert_code(0);
    assert_eq!(
        bao.kv_get(&world.current(&entry), "password").as_deref(),
        Some(target.live(&world.env).as_str())
    );
    let run = world.run(&["logout", "--provider", "exotel", "--json"]);
    run.assert_code(0);
    assert_eq!(run.json()["removed"].as_array().unwrap().len(), 2);
    assert_eq!(bao.kv_get(&kept, "password"), None);
}

/// A token (random, so the leak checks cover it) whose policy allows everything on every
/// path, as an operator's own token might.
fn broad_token(bao: &Bao, dir: &Path) -> String {
    let file = dir.join("broad.hcl");
    std::fs::write(
        &file,
        "path \"*\" {\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}\n",
    )
    .unwrap();
    let out = bao.cli(
        ROOT_TOKEN,
        &["policy", "write", "siprot-broad", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bao.cli(
        ROOT_TOKEN,
        &["token", "create", "-policy", "siprot-broad", "-field=token"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_vault_mount_that_is_not_the_root_of_a_kv_version_2_mount_is_refused_before_anything_is_sent() {
    let bao = Bao::shared();
    // docs/vault.md's narrow policy, and one that allows everything: both pass the mount
    // check of `secret` (every rotation test here uses the narrow one), and each wrong
    // mount below is refused with exit 4 before anything is written or sent.
    let narrow = World::shared("mount");
    let env = TestEnv::without_keyring();
    let token = broad_token(bao, env.state.path());
    let broad = World::with(env, &bao.addr, &token, unique_prefix("mount-broad"));
    for world in [&broad, &narrow] {
        for target in [Target::TELEPATH, Target::VOBIZ] {
            (target.create)(&target, &world.env);
            let entry = target.entry(&world.env);
            let run = world.rotate(&target, &["--vault-mount", "secret/data"]);
            run.assert_code(4);
            run.assert_one_line_error("the vault mount 'secret/data' is not the root of a mount");
            assert!(
                run.stderr.contains("--vault-mount secret)"),
                "{}",
                run.stderr
            );
            // Where a write to the mount `secret/data` would have gone, as the CLI names it.
            for folder in ["", ".pending/", ".previous/"] {
                let path = format!("secret/data/{}{folder}{entry}", world.prefix);
                assert_eq!(bao.kv_data(&path), None, "{path} was written");
            }

            let run = world.rotate(&target, &["--vault-mount", "cubbyhole"]);
            run.assert_code(4);
            run.assert_one_line_error(
                "the vault mount 'cubbyhole' is a cubbyhole mount, not a KV version 2 mount",
            );
            assert_eq!(target.live(&world.env), target.initial);
        }
        assert!(world.env.fake.requests().is_empty(), "something was sent");
    }

    // A KV version 1 mount; and one the token may not use (or that does not exist).
    let v1 = format!("kv1-{}", std::process::id());
    let out = bao.cli(
        ROOT_TOKEN,
        &[
            "secrets",
            "enable",
            &format!("-path={v1}"),
            "-version=1",
            "kv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = Target::VOBIZ;
    let run = broad.rotate(&target, &["--vault-mount", &v1]);
    run.assert_code(4);
    run.assert_one_line_error(&format!(
        "the vault mount '{v1}' is a KV version 1 mount; siprot needs version 2"
    ));
    let run = narrow.rotate(&target, &["--vault-mount", &v1]);
    run.assert_code(4);
    run.assert_one_line_error(&format!("there is no mount at '{v1}'"));
    assert!(broad.env.fake.requests().is_empty(), "something was sent");
    assert!(narrow.env.fake.requests().is_empty(), "something was sent");
    let out = bao.cli(ROOT_TOKEN, &["kv", "list", &format!("{v1}/")]);
    assert!(!out.status.success(), "the v1 mount holds something");
}

/// An HTTP proxy in front of `upstream` that answers every DELETE with 204 and passes
/// nothing of it on (as a broken proxy might), and every other request as it is. Its
/// address; it serves until the test process ends.
fn deaf_to_deletes(upstream: &str) -> String {
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};

    async fn forward(client: reqwest::Client, upstream: String, request: Request) -> Response {
        if request.method() == axum::http::Method::DELETE {
            return StatusCode::NO_CONTENT.into_response();
        }
        let (parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let body = to_bytes(body, usize::MAX).await.unwrap();
        let mut outgoing = client.request(parts.method.clone(), format!("{upstream}{path}"));
        for (name, value) in &parts.headers {
            if name != axum::http::header::HOST {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing.body(body).send().await.unwrap();
        let mut response = Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            response = response.header(name, value);
        }
        response
            .body(Body::from(answer.bytes().await.unwrap()))
            .unwrap()
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let client = reqwest::Client::new();
            let app = axum::Router::new().fallback(move |request: Request| {
                forward(client.clone(), upstream.clone(), request)
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

#[test]
fn a_delete_the_store_answered_without_removing_the_slot_is_reported() {
    let bao = Bao::shared();
    let proxy = deaf_to_deletes(&bao.addr);
    let prefix = unique_prefix("deaf");
    let env = TestEnv::without_keyring();
    let token = rotator_token(|args| bao.cli(ROOT_TOKEN, args), env.state.path(), &prefix);
    let world = World::with(env, &proxy, &token, prefix);
    let target = Target::VOBIZ;
    (target.create)(&target, &world.env);
    let entry = target.entry(&world.env);
    let run = world.rotate(&target, &[]);
    // The rotation itself is done: the provider and current agree.
    run.assert_code(0);
    let live = target.live(&world.env);
    assert_eq!(
        bao.kv_get(&world.current(&entry), "password").as_deref(),
        Some(live.as_str())
    );
    // #pending is still there, and the run says so, naming it.
    let pending = world.path(&entry, ".pending/");
    assert!(
        bao.kv_data(&pending).is_some(),
        "the proxy let a delete through"
    );
    assert!(
        run.stderr.contains(&format!("vault secret '{pending}'"))
            && run.stderr.contains("still there"),
        "{}",
        run.stderr
    );

    // The library's delete, as `recover` and `logout` use it, is an error naming the slot.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = VaultStore::connect(
            siprot::store::vault::VaultConnection::new(
                &proxy,
                "test",
                secrecy::SecretString::from(ROOT_TOKEN.to_owned()),
            )
            .unwrap(),
            &siprot::store::vault::VaultOptions {
                prefix: world.prefix.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        let name = EntryName::new(entry.clone());
        let error = store.delete(&name, Slot::Pending).await.unwrap_err();
        assert!(
            error.to_string().contains(&pending) && error.to_string().contains("still there"),
            "{error}"
        );
        let error = store.remove(&name, Slot::Pending).await.unwrap_err();
        assert!(error.to_string().contains("still there"), "{error}");
    });
}
