//! The end-to-end harness: an in-process fake of the three providers, a unique keyring
//! service per test in the private gnome-keyring that `scripts/with-keyring.sh` starts,
//! a private state directory, and `siprot` run as a real process.
//!
//! [`TestEnv::start`] requires that keyring session and fails without it; tests that
//! never touch a keyring use [`TestEnv::without_keyring`] instead, which runs siprot with
//! no reachable session bus (so a keyring access would fail them) and so passes under a
//! plain `cargo test`.
//!
//! Every run goes through [`TestEnv::run`], which checks that no password or API key the
//! test used appears on standard output (unless `--show-password` was given), standard
//! error or in the audit log.
//!
//! [`TestEnv::under_wine`] runs a Windows build of siprot (`siprot.exe`) under Wine
//! instead, with the Windows paths of the test's files (`tests/wine.rs`, run by
//! `scripts/windows.sh`).

#![allow(dead_code)]

pub mod baresip;
#[path = "../../examples/fake-providers/server.rs"]
pub mod fake;
pub mod kamailio;
pub mod keyring;
pub mod openbao;
pub mod pty;
pub mod sdk;
pub mod targets;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use fake::{FakeConfig, FakeProvider, FakeProviders, Fault};
pub use targets::Target;

pub const EXOTEL_SID: &str = "exotel_sid_test";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: fake providers, a keyring service of its own, a state directory.
pub struct TestEnv {
    pub fake: FakeProviders,
    pub addr: SocketAddr,
    pub service: String,
    pub state: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
    removed_env: Vec<String>,
    extra_secrets: Mutex<BTreeSet<String>>,
    /// Whether siprot's runs get the keyring session's bus.
    keyring: bool,
    /// siprot.exe run by Wine instead of the host's binary ([`TestEnv::under_wine`]).
    wine: Option<Wine>,
    _runtime: tokio::runtime::Runtime,
}

/// A Windows build of siprot and the Wine that runs it.
#[derive(Debug, Clone)]
struct Wine {
    /// The Wine loader (`/usr/lib/wine/wine64`).
    loader: PathBuf,
    /// siprot.exe.
    exe: PathBuf,
    /// The Wine prefix (its Credential Manager holds the test's secrets).
    prefix: PathBuf,
}

/// Where [`TestEnv::run_to`] sends a standard output or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// A pipe the test reads, as [`TestEnv::run`] does.
    Captured,
    /// `/dev/full`: every write fails with "no space left on device".
    Full,
    /// A pipe whose read end the test closes before siprot writes: every write fails
    /// with a broken pipe, as after `siprot ... | head -1` has read its line.
    Closed,
}

/// What one run of siprot did.
#[derive(Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Errors are one line on standard error.
    #[track_caller]
    pub fn assert_one_line_error(&self, fragment: &str) -> &Self {
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "stderr should be one line: {:?}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("siprot: error: "),
            "not an error line: {}",
            lines[0]
        );
        assert!(
            self.stderr.contains(fragment),
            "stderr lacks {fragment:?}: {}",
            self.stderr
        );
        self
    }
}

/// Drops log lines from standard error (after the leak check has seen them), so that
/// tests asserting on error lines hold whatever logging `SIPROT_TEST_LOG` adds.
fn without_log_lines(run: Run) -> Run {
    if std::env::var_os("SIPROT_TEST_LOG").is_none() {
        return run;
    }
    let is_log = |line: &str| {
        ["trace", "debug", "info", "warn"]
            .iter()
            .any(|level| line.starts_with(&format!("siprot: {level}: [")))
            || line.trim().is_empty()
    };
    let stderr: String = run
        .stderr
        .lines()
        .filter(|line| !is_log(line))
        .map(|line| format!("{line}\n"))
        .collect();
    Run { stderr, ..run }
}

/// A siprot process the test will kill; its standard error is read in the background.
pub struct Paused {
    child: Option<std::process::Child>,
    args: Vec<String>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Standard output, read as it comes (a full pipe would stop siprot mid-run).
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Paused {
    fn new(child: &mut std::process::Child, args: &[&str]) -> Self {
        use std::io::BufRead;
        let stderr = child.stderr.take().expect("stderr");
        let stdout = child.stdout.take().map(|mut out| {
            std::thread::spawn(move || {
                use std::io::Read;
                let mut text = String::new();
                let _ = out.read_to_string(&mut text);
                text
            })
        });
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child: None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            lines,
            seen: Vec::new(),
            stdout,
        }
    }

    fn wait_for(mut self, marker: &str, child: std::process::Child) -> Self {
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(marker);
                    self.seen.push(line);
                    if found {
                        return self;
                    }
                }
                Err(_) => {
                    if let Some(child) = self.child.as_mut() {
                        let _ = child.kill();
                    }
                    panic!(
                        "siprot never reached {marker:?}; stderr so far: {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    fn stderr_so_far(&mut self) -> String {
        while let Ok(line) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestEnv {
    /// Starts the fake providers on a free loopback port and sets up the environment,
    /// with the keyring session of `scripts/with-keyring.sh`; fails without one.
    pub fn start() -> Self {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "no D-Bus session: run the tests with scripts/test.sh (a private keyring session)"
        );
        Self::new(true)
    }

    /// As [`TestEnv::start`] for a test that never touches a keyring: no session is
    /// needed, and siprot runs with a session bus address where no bus is (and without
    /// `XDG_RUNTIME_DIR` or `XDG_DATA_HOME`), so that a keyring access fails the test
    /// instead of passing unseen.
    pub fn without_keyring() -> Self {
        Self::new(false)
    }

    /// As [`TestEnv::without_keyring`], but siprot is the Windows build named by
    /// `SIPROT_TEST_WINE_EXE`, run by the Wine loader `SIPROT_TEST_WINE` in the prefix
    /// `WINEPREFIX` (its Credential Manager is the keyring), as `scripts/windows.sh` sets
    /// them; fails without them. Paths siprot gets (`XDG_STATE_HOME`) are Wine's `Z:`
    /// names of the test's directories.
    pub fn under_wine() -> Self {
        let var = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    panic!("{key} is not set: run the Windows subset with scripts/windows.sh")
                })
        };
        let wine = Wine {
            loader: var("SIPROT_TEST_WINE"),
            exe: var("SIPROT_TEST_WINE_EXE"),
            prefix: var("WINEPREFIX"),
        };
        assert!(
            wine.exe.is_file(),
            "no siprot.exe at {}",
            wine.exe.display()
        );
        let mut env = Self::new(false);
        env.wine = Some(wine);
        env
    }

    /// Whether siprot runs under Wine ([`TestEnv::under_wine`]).
    pub fn is_wine(&self) -> bool {
        self.wine.is_some()
    }

    /// The Wine prefix of a [`TestEnv::under_wine`] world.
    pub fn wine_prefix(&self) -> Option<&std::path::Path> {
        self.wine.as_ref().map(|w| w.prefix.as_path())
    }

    /// `path` as siprot names it: under Wine, its `Z:` drive name (`Z:\tmp\x`).
    pub fn host_path(&self, path: &std::path::Path) -> String {
        let path = path.display().to_string();
        if self.wine.is_some() {
            format!("Z:{}", path.replace('/', "\\"))
        } else {
            path
        }
    }

    fn new(keyring: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = FakeConfig {
            exotel_account_sid: EXOTEL_SID.to_owned(),
            ..FakeConfig::default()
        };
        let fake = FakeProviders::new(config);
        let addr = runtime
            .block_on(fake.start(0))
            .expect("fake providers start");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let service = format!("siprot-test-{}-{n}", std::process::id());
        Self {
            fake,
            addr,
            service,
            state: tempfile::tempdir().expect("tempdir"),
            extra_env: Vec::new(),
            removed_env: Vec::new(),
            extra_secrets: Mutex::new(BTreeSet::new()),
            keyring,
            wine: None,
            _runtime: runtime,
        }
    }

    pub fn telepath_base(&self) -> String {
        FakeProviders::telepath_base(self.addr)
    }

    pub fn exotel_base(&self) -> String {
        FakeProviders::exotel_base(self.addr)
    }

    pub fn vobiz_base(&self) -> String {
        FakeProviders::vobiz_base(self.addr)
    }

    /// Overrides or adds an environment variable for later runs.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.removed_env.retain(|k| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// Removes a variable the harness would otherwise set.
    pub fn remove_env(&mut self, key: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.removed_env.push(key.to_owned());
    }

    /// A secret the test itself introduced (e.g. typed on stdin), to be checked for leaks.
    pub fn remember_secret(&self, secret: &str) {
        self.extra_secrets.lock().unwrap().insert(secret.to_owned());
    }

    pub fn state_root(&self) -> PathBuf {
        self.state.path().join("siprot")
    }

    /// The state directory's `recovery/`, created as siprot would (mode 0700, whatever the
    /// umask: siprot refuses one writable by group or others).
    pub fn recovery_dir(&self) -> PathBuf {
        let dir = self.state_root().join("recovery");
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).expect("create the recovery directory");
        dir
    }

    /// The audit log's final records: without the `in-progress` line a rotation writes
    /// before its request (see [`TestEnv::all_audit_lines`]).
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        self.all_audit_lines()
            .into_iter()
            .filter(|l| l["outcome"] != "in-progress")
            .collect()
    }

    /// Every line of the audit log, in order.
    pub fn all_audit_lines(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(self.state_root().join("audit.jsonl")) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = match &self.wine {
            Some(wine) => {
                let mut cmd = Command::new(&wine.loader);
                cmd.arg(&wine.exe);
                cmd
            }
            None => Command::new(env!("CARGO_BIN_EXE_siprot")),
        };
        cmd.env_clear();
        if let Some(wine) = &self.wine {
            // Wine's own messages (fixme:...) would be mistaken for siprot's; a crash
            // must fail the run, not start Wine's debugger and wait for it.
            cmd.env("WINEPREFIX", &wine.prefix)
                .env("WINEDEBUG", "-all")
                .env("WINEDLLOVERRIDES", "winedbg.exe=d");
        }
        for key in [
            "PATH",
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
            "XDG_DATA_HOME",
        ] {
            if !self.keyring && key != "PATH" {
                continue;
            }
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
        if !self.keyring {
            // A bus that does not exist: no fallback to a desktop session's bus (zbus
            // would try `$XDG_RUNTIME_DIR/bus`), so a keyring access fails the test.
            let nowhere = self.state.path().join("no-session-bus");
            cmd.env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", nowhere.display()),
            );
        }
        let mut defaults: Vec<(&str, String)> = vec![
            ("HOME", self.state.path().display().to_string()),
            ("XDG_STATE_HOME", self.host_path(self.state.path())),
            ("SIPROT_KEYRING_SERVICE", self.service.clone()),
            ("RUST_BACKTRACE", "0".to_owned()),
        ];
        // Every provider's base URL and credentials, from its fake.
        defaults.extend(self.fake.environment(self.addr));
        for (key, value) in defaults {
            if !self.removed_env.iter().any(|k| k == key) {
                cmd.env(key, value);
            }
        }
        // `SIPROT_TEST_LOG=trace scripts/test.sh` reruns every test with that much logging;
        // the leak check then covers all the log output too.
        if let Some(level) = std::env::var_os("SIPROT_TEST_LOG") {
            cmd.env("RUST_LOG", level);
        }
        for (key, value) in &self.extra_env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs siprot with `args` and optional standard input, then checks for leaks.
    pub fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let child = self.spawn(args, stdin);
        self.finish(child, args)
    }

    /// Runs siprot with its standard output and error sent where `stdout` and `stderr`
    /// say (`/dev/full`, or a pipe closed before siprot writes), then checks what could be
    /// read for leaks as [`TestEnv::run`] does.
    pub fn run_to(&self, args: &[&str], stdout: Sink, stderr: Sink) -> Run {
        self.run_sinks(args, stdout, stderr, true)
    }

    /// Like [`TestEnv::run_to`], but siprot cannot write a byte to any file (`ulimit -f 0`,
    /// SIGXFSZ ignored): every write under the state directory fails while the keyring (in
    /// its own process) works, so a successful rotation warns that its audit log was not
    /// written, past every check of the state directory.
    pub fn run_to_without_file_writes(&self, args: &[&str], stdout: Sink, stderr: Sink) -> Run {
        self.run_sinks(args, stdout, stderr, false)
    }

    fn run_sinks(&self, args: &[&str], stdout: Sink, stderr: Sink, file_writes: bool) -> Run {
        let stdio = |sink: Sink| match sink {
            Sink::Captured => Stdio::piped(),
            // A pipe whose read end is closed before siprot starts: its first write fails.
            Sink::Closed => {
                let (reader, writer) = std::io::pipe().expect("pipe");
                drop(reader);
                Stdio::from(writer)
            }
            Sink::Full => Stdio::from(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .expect("/dev/full"),
            ),
        };
        let mut cmd = self.command();
        if !file_writes {
            let siprot = cmd;
            cmd = Command::new("/bin/sh");
            cmd.env_clear();
            for (key, value) in siprot.get_envs() {
                if let Some(value) = value {
                    cmd.env(key, value);
                }
            }
            cmd.arg("-c")
                .arg(r#"trap '' XFSZ; ulimit -f 0 && exec "$0" "$@""#)
                .arg(siprot.get_program());
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdio(stdout))
            .stderr(stdio(stderr));
        let child = cmd.spawn().expect("spawn siprot");
        self.finish(child, args)
    }

    /// Starts siprot without waiting for it (see [`TestEnv::finish`]).
    pub fn spawn(&self, args: &[&str], stdin: Option<&[u8]>) -> std::process::Child {
        let mut cmd = self.command();
        cmd.args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn siprot");
        if let Some(input) = stdin {
            use std::io::Write;
            let mut pipe = child.stdin.take().expect("stdin");
            // siprot may exit before reading (e.g. a usage error): that is not a test failure.
            if let Err(e) = pipe.write_all(input) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
            }
        }
        child
    }

    /// Waits for a spawned siprot and checks its output for leaks.
    pub fn finish(&self, child: std::process::Child, args: &[&str]) -> Run {
        let output: Output = child.wait_with_output().expect("wait siprot");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let shows = args.contains(&"--show-password")
            || args.first() == Some(&"secret")
            || args.first() == Some(&"generate");
        self.assert_no_leak(&run, shows, args);
        let own_logging = args.iter().any(|a| a.starts_with("-v"))
            || self.extra_env.iter().any(|(k, _)| k == "RUST_LOG");
        if own_logging {
            run
        } else {
            without_log_lines(run)
        }
    }

    /// Every secret this test knows of: the fake's passwords and API keys, and the
    /// passwords the test typed.
    pub fn known_secrets(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.fake.secrets_seen().into_iter().collect();
        all.extend(self.extra_secrets.lock().unwrap().iter().cloned());
        for (slot, value) in &self.extra_env {
            if slot.ends_with("_KEY") || slot.ends_with("_TOKEN") {
                all.insert(value.clone());
            }
        }
        all.into_iter().filter(|s| s.len() >= 6).collect()
    }

    #[track_caller]
    fn assert_no_leak(&self, run: &Run, stdout_may_show: bool, args: &[&str]) {
        if let Err(leak) = self.find_leak(run, stdout_may_show, args) {
            panic!("{leak}");
        }
    }

    /// Looks for any known secret where it must never appear.
    pub fn find_leak(&self, run: &Run, stdout_may_show: bool, args: &[&str]) -> Result<(), String> {
        let audit =
            std::fs::read_to_string(self.state_root().join("audit.jsonl")).unwrap_or_default();
        for secret in self.known_secrets() {
            if run.stderr.contains(&secret) {
                return Err(format!(
                    "a secret leaked to stderr in {args:?}: {}",
                    run.stderr
                ));
            }
            if !stdout_may_show && run.stdout.contains(&secret) {
                return Err(format!(
                    "a secret leaked to stdout in {args:?}: {}",
                    run.stdout
                ));
            }
            if audit.contains(&secret) {
                return Err("a secret leaked to the audit log".into());
            }
            if args.iter().any(|arg| arg.contains(&secret)) {
                return Err(format!("a secret was passed in argv: {args:?}"));
            }
        }
        Ok(())
    }

    /// Starts siprot with the debug-build pause point `point` armed and returns once it
    /// has stopped there (see `src/checkpoint.rs`).
    pub fn spawn_paused(&self, args: &[&str], point: &str) -> Paused {
        let mut cmd = self.command();
        cmd.env("SIPROT_TEST_PAUSE_AT", point);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn siprot");
        let paused = Paused::new(&mut child, args);
        paused.wait_for(&format!("test pause at {point}"), child)
    }

    /// Starts siprot and returns it running, for a test that decides itself when to kill.
    pub fn spawn_running(&self, args: &[&str]) -> Paused {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn siprot");
        let mut paused = Paused::new(&mut child, args);
        paused.child = Some(child);
        paused
    }

    /// Kills a paused or running siprot with SIGKILL and checks what it printed for leaks.
    pub fn kill(&self, mut paused: Paused) -> Run {
        let mut child = paused.child.take().expect("a running child");
        child.kill().expect("SIGKILL siprot");
        let status = child.wait().expect("wait siprot");
        let stderr = paused.stderr_so_far();
        self.collected(&mut paused, child, status, stderr)
    }

    /// Sends `signal` (a `kill -s` name such as `INT`, `TERM`, `HUP`) to a running siprot.
    pub fn send_signal(&self, paused: &Paused, signal: &str) {
        let pid = paused.child.as_ref().expect("a running child").id();
        let status = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {signal} {pid} failed");
    }

    /// Waits (at most 60 s) for a running siprot to exit by itself, then checks what it
    /// printed for leaks.
    pub fn wait_exit(&self, mut paused: Paused) -> Run {
        let mut child = paused.child.take().expect("a running child");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait siprot") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("siprot did not exit; stderr: {}", paused.stderr_so_far());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        self.exited(paused, child, status)
    }

    /// Lets a siprot paused with `SIPROT_TEST_RESUME_FILE=file` set (see
    /// `src/checkpoint.rs`) carry on, waits for it and checks what it printed for leaks.
    pub fn resume(&self, paused: Paused, file: &std::path::Path) -> Run {
        std::fs::write(file, b"").expect("resume file");
        self.wait_exit(paused)
    }

    /// What a siprot that exited by itself printed (without the test-pause lines), checked
    /// for leaks.
    fn exited(
        &self,
        mut paused: Paused,
        child: std::process::Child,
        status: std::process::ExitStatus,
    ) -> Run {
        while let Ok(line) = paused.lines.recv_timeout(std::time::Duration::from_secs(5)) {
            paused.seen.push(line);
        }
        let stderr: String = paused
            .seen
            .iter()
            .filter(|l| !l.starts_with("siprot: test pause at "))
            .map(|l| format!("{l}\n"))
            .collect();
        without_log_lines(self.collected(&mut paused, child, status, stderr))
    }

    /// The run of a paused siprot that has ended: its standard output read to the end,
    /// checked for leaks together with `stderr`.
    fn collected(
        &self,
        paused: &mut Paused,
        child: std::process::Child,
        status: std::process::ExitStatus,
        stderr: String,
    ) -> Run {
        drop(child);
        let stdout = paused
            .stdout
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        };
        let args: Vec<&str> = paused.args.iter().map(String::as_str).collect();
        self.assert_no_leak(&run, false, &args);
        run
    }

    /// `secret-tool` on the same bus as siprot's runs.
    fn secret_tool(&self) -> Command {
        assert!(
            self.keyring,
            "this test uses the keyring: start it with TestEnv::start, not without_keyring"
        );
        let mut cmd = Command::new("secret-tool");
        if let Some((_, bus)) = self
            .extra_env
            .iter()
            .rev()
            .find(|(k, _)| k == "DBUS_SESSION_BUS_ADDRESS")
        {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        cmd
    }

    /// What `secret-tool lookup service <service> username <entry>` prints, if anything.
    pub fn lookup(&self, entry: &str) -> Option<String> {
        self.lookup_in(&self.service, entry)
    }

    /// As [`TestEnv::lookup`], in another keyring service.
    pub fn lookup_in(&self, service: &str, entry: &str) -> Option<String> {
        let output = self
            .secret_tool()
            .args(["lookup", "service", service, "username", entry])
            .stdin(Stdio::null())
            .output()
            .expect("secret-tool (package libsecret-tools) must be installed");
        if !output.status.success() || output.stdout.is_empty() {
            return None;
        }
        let text = String::from_utf8(output.stdout).expect("utf-8 secret");
        Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
    }

    /// Stores a secret as another program would (`secret-tool store`).
    pub fn store(&self, entry: &str, secret: &str) {
        self.store_item(entry, secret, "siprot test", &[]);
    }

    /// Stores a keyring item with `label` and, beside `service` and `username`, the
    /// attributes `extra` (as python-keyring adds `application`): `secret-tool store`.
    pub fn store_item(&self, entry: &str, secret: &str, label: &str, extra: &[(&str, &str)]) {
        use std::io::Write;
        let mut cmd = self.secret_tool();
        cmd.args(["store", "--label", label, "service", &self.service])
            .args(["username", entry]);
        for (key, value) in extra {
            cmd.args([key, value]);
        }
        let mut child = cmd.stdin(Stdio::piped()).spawn().expect("secret-tool");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "secret-tool store failed");
        self.remember_secret(secret);
    }

    /// Waits (at most 20 s) until the fake providers have received `n` requests.
    pub fn wait_for_requests(&self, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.fake.requests().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "siprot never sent its request"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Stops a server the tests started: SIGTERM, then SIGKILL if it has not exited within
/// `grace`.
pub fn terminate(child: &mut std::process::Child, grace: std::time::Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let until = std::time::Instant::now() + grace;
    while std::time::Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
