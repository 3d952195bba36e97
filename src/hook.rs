//! The post-rotation hook: a command siprot runs after a new password is stored
//! (`rotate --exec`, an inventory's `exec`, `siprot exec`), so that the PBX or phone that
//! registers with the password gets it.
//!
//! The command runs through `sh -c` in a process group of its own, with the password and
//! one newline on its standard input (then closed) and nowhere else: never in its argv,
//! and its environment is siprot's without any variable siprot reads a secret from
//! ([`crate::config::secret_vars`]), plus the `SIPROT_*` variables of [`HookContext`].
//! Its standard output and error are read together; siprot keeps their last lines
//! ([`TAIL_LINES`], [`TAIL_BYTES`], control characters escaped) and withholds them when
//! the password shows anywhere in the output, in the forms a hook is likely to print it
//! ([`Watch`]: any [`SEEN_RUN`] characters in a row of the password, of its reverse, hex
//! or base64, with whitespace, backslashes and `%XX` escapes undone and case ignored).
//! Proxy variables lose their user info, and `VAULT_CLIENT_KEY` (`BAO_CLIENT_KEY`) is
//! removed. At the timeout the whole group is killed
//! (SIGKILL). Running a hook never touches the stored secret: the caller reports a failed
//! hook (exit 11) and leaves the store as it is.
//!
//! The hook needs a Unix `sh` and process groups: elsewhere [`check_supported`] refuses it
//! (exit 2) before anything is sent.

#[cfg(any(unix, test))]
use std::io::Read;
#[cfg(unix)]
use std::io::Write;
#[cfg(unix)]
use std::process::{Command, Stdio};
#[cfg(unix)]
use std::sync::Arc;
#[cfg(any(unix, test))]
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[cfg(unix)]
use secrecy::ExposeSecret;
use secrecy::SecretString;
use serde::Serialize;
#[cfg(any(unix, test))]
use zeroize::Zeroizing;

use crate::audit::{AuditAction, AuditOutcome};
#[cfg(unix)]
use crate::config;
use crate::error::{Error, ExitCode, Result, exit};
use crate::interrupt;
use crate::output;
use crate::rotation::{RotationReport, RotationStatus};
use crate::state::{AuditRecord, StateDir};
use crate::store::StoreKind;

/// The default of `--exec-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// At most this many of the output's last lines are reported.
pub const TAIL_LINES: usize = 10;
/// At most this many bytes of the output's end are reported.
pub const TAIL_BYTES: usize = 2048;
/// What replaces the output when it contained the password.
pub const WITHHELD: &str = "(the hook's output is not shown: it contained the password)";
/// This many characters in a row of the password (or of a form of it, see [`Watch`])
/// in the output count as the password shown; all of it when it is shorter.
pub const SEEN_RUN: usize = 8;
/// Variables removed from the hook's environment besides [`crate::config::secret_vars`]: the
/// vault store's client key (a path, but to a secret).
pub const REMOVED_VARS: [&str; 2] = ["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"];

/// Which command, and how long it may run.
#[derive(Debug, Clone)]
pub struct HookSpec {
    /// Run as `sh -c COMMAND`.
    pub command: String,
    pub timeout: Duration,
}

/// What the hook is told about the credential, as `SIPROT_*` variables.
#[derive(Debug, Clone, Copy)]
pub struct HookContext<'a> {
    pub provider: &'a str,
    pub credential: &'a str,
    pub device: Option<&'a str>,
    pub username: Option<&'a str>,
    /// The store entry of the current password (`telepath/conn_1`).
    pub entry: &'a str,
    pub store: StoreKind,
}

/// How a hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    /// Exit status 0.
    Ok,
    /// A non-zero exit status, killed by a signal, or it could not be started.
    Failed,
    /// Still running at the timeout: its process group was killed.
    TimedOut,
}

impl HookStatus {
    /// `ok`, `failed` or `timed-out`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookStatus::Ok => "ok",
            HookStatus::Failed => "failed",
            HookStatus::TimedOut => "timed-out",
        }
    }
}

/// What one run of a hook did.
#[derive(Debug, Clone, Serialize)]
pub struct HookRun {
    /// `ok`, `failed` or `timed-out`.
    pub status: &'static str,
    /// The hook's exit status; `None` when it was killed or never started.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// The last lines of its standard output and error, or [`WITHHELD`].
    pub output_tail: String,
    /// Whether the output contained the password (and is withheld).
    pub output_withheld: bool,
    pub duration_ms: u128,
    /// Why it could not be started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub outcome: HookStatus,
}

impl HookRun {
    pub fn ok(&self) -> bool {
        self.outcome == HookStatus::Ok
    }

    /// 0, or [`exit::HOOK_FAILED`].
    pub fn exit_code(&self) -> ExitCode {
        if self.ok() {
            exit::SUCCESS
        } else {
            exit::HOOK_FAILED
        }
    }

    /// `exit 0`, `exit 3`, `killed by signal 9`, `timed out after 60s` or why it could
    /// not start.
    pub fn describe(&self, timeout: Duration) -> String {
        if self.timed_out {
            return format!(
                "timed out after {}s (its process group was killed)",
                timeout.as_secs()
            );
        }
        if let Some(error) = &self.error {
            return format!("could not be started: {error}");
        }
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended without an exit status".into(),
        }
    }

    /// The human lines: the result, then the output's tail, indented.
    pub fn human_lines(&self, timeout: Duration) -> Vec<String> {
        let mut lines = vec![format!(
            "hook {}: {}",
            self.outcome.as_str(),
            self.describe(timeout)
        )];
        lines.extend(self.output_tail.lines().map(|line| format!("  | {line}")));
        lines
    }

    /// Writes the hook's audit record: only its outcome and exit status (never its
    /// output, which could hold the password). A failure to write is a warning.
    pub fn audit(&self, state: &StateDir, service: &str, context: &HookContext<'_>) {
        #[derive(Serialize)]
        struct Record<'a> {
            #[serde(flatten)]
            base: AuditRecord<'a>,
            hook_exit_code: Option<i32>,
            duration_ms: u128,
        }
        let outcome = match self.outcome {
            HookStatus::Ok => AuditOutcome::Ok,
            HookStatus::Failed => AuditOutcome::Failed,
            HookStatus::TimedOut => AuditOutcome::TimedOut,
        };
        let record = Record {
            base: AuditRecord {
                time: jiff::Timestamp::now().to_string(),
                service: Some(service),
                provider: context.provider,
                entry: context.entry,
                action: AuditAction::Hook,
                outcome,
                request_id: None,
                attempts: None,
                exit_code: self.exit_code(),
                username: None,
                registrar: None,
            },
            hook_exit_code: self.exit_code,
            duration_ms: self.duration_ms,
        };
        if let Err(e) = state.audit(&record) {
            output::warning(&format!("audit log not written: {e}"));
        }
    }
}

/// A hook that ran, with what it ran.
#[derive(Debug)]
pub struct Hooked {
    pub spec: HookSpec,
    pub run: HookRun,
}

/// Runs `spec` once `report`'s rotation stored a new password (`rotated` or `resumed`),
/// and records it in the audit log. On a dry run it only adds the hook to the plan; after
/// a signal ([`crate::interrupt`]) it starts nothing.
pub async fn after_rotation(
    spec: HookSpec,
    report: &mut RotationReport,
    state: &StateDir,
) -> Option<Hooked> {
    if report.status == RotationStatus::DryRun {
        report.plan.push(format!(
            "run the hook `sh -c {}` with the new password on its standard input \
             (--exec-timeout {}s)",
            shell_quote(&spec.command),
            spec.timeout.as_secs_f64()
        ));
        return None;
    }
    if interrupt::received().is_some()
        || !matches!(
            report.status,
            RotationStatus::Rotated | RotationStatus::Resumed
        )
    {
        return None;
    }
    let password = report.password.as_ref()?;
    let context = HookContext {
        provider: report.provider.name(),
        credential: report.credential.id(),
        device: report.credential.device(),
        username: report.username.as_deref(),
        entry: report.entry.current(),
        store: report.store,
    };
    let run = run(&spec, &context, password).await;
    run.audit(state, &report.service, &context);
    Some(Hooked { spec, run })
}

/// Refuses `--exec` where hooks cannot run (no `sh`, no process groups): exit 2.
pub fn check_supported() -> Result<()> {
    if cfg!(unix) {
        Ok(())
    } else {
        Err(Error::Usage(
            "--exec (the post-rotation hook) is only supported on Unix: it runs through sh -c \
             in a process group of its own"
                .into(),
        ))
    }
}

/// Quotes `text` for a POSIX shell (`'...'`).
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Runs the hook on a thread of the blocking pool (so other rotations of a fleet carry
/// on) and waits for it.
pub async fn run(spec: &HookSpec, context: &HookContext<'_>, password: &SecretString) -> HookRun {
    let spec = spec.clone();
    let env = environment(context);
    let password = password.clone();
    let started = Instant::now();
    log::info!(
        "hook: running for {} (sh -c, timeout {:?})",
        context.entry,
        spec.timeout
    );
    let run = match tokio::task::spawn_blocking(move || run_blocking(&spec, &env, &password)).await
    {
        Ok(run) => run,
        Err(e) => not_started(format!("the hook's thread failed: {e}"), started),
    };
    log::info!(
        "hook: {} for {} after {} ms (exit {:?})",
        run.status,
        context.entry,
        run.duration_ms,
        run.exit_code
    );
    run
}

/// The `SIPROT_*` variables (unknown values are empty).
fn environment(context: &HookContext<'_>) -> Vec<(&'static str, String)> {
    vec![
        ("SIPROT_PROVIDER", context.provider.to_owned()),
        ("SIPROT_CREDENTIAL", context.credential.to_owned()),
        (
            "SIPROT_DEVICE",
            context.device.unwrap_or_default().to_owned(),
        ),
        (
            "SIPROT_USERNAME",
            context.username.unwrap_or_default().to_owned(),
        ),
        ("SIPROT_ENTRY", context.entry.to_owned()),
        ("SIPROT_STORE", context.store.name().to_owned()),
    ]
}

fn not_started(error: String, started: Instant) -> HookRun {
    HookRun {
        status: HookStatus::Failed.as_str(),
        exit_code: None,
        signal: None,
        timed_out: false,
        output_tail: String::new(),
        output_withheld: false,
        duration_ms: started.elapsed().as_millis(),
        error: Some(error),
        outcome: HookStatus::Failed,
    }
}

/// The end of the output, and whether the password was seen anywhere in it.
#[cfg(any(unix, test))]
struct Capture {
    tail: Zeroizing<Vec<u8>>,
    leaked: bool,
}

/// Undoes what a hook is likely to do to a password it prints, one byte at a time: drops
/// whitespace (`fold`, wrapped base64) and backslashes (`\;` escaping), decodes `%XX`
/// (URL encoding, either case) and lowers ASCII letters. The password's forms and the
/// output go through the same steps, so a byte both hold normalises the same way.
#[cfg(any(unix, test))]
#[derive(Default)]
struct Normalise {
    percent: Percent,
}

/// Where [`Normalise`] is in a `%XX` escape.
#[cfg(any(unix, test))]
#[derive(Default, Clone, Copy)]
enum Percent {
    #[default]
    Outside,
    /// After `%`.
    Opened,
    /// After `%` and one hex digit: the digit's byte and value.
    OneDigit { byte: u8, value: u8 },
}

#[cfg(any(unix, test))]
impl Normalise {
    fn feed(&mut self, byte: u8, out: &mut impl FnMut(u8)) {
        match std::mem::take(&mut self.percent) {
            Percent::Outside if byte == b'%' => self.percent = Percent::Opened,
            Percent::Outside => Self::emit(byte, out),
            Percent::Opened => match hex_value(byte) {
                Some(value) => self.percent = Percent::OneDigit { byte, value },
                None => {
                    Self::emit(b'%', out);
                    self.feed(byte, out);
                }
            },
            Percent::OneDigit { byte: first, value } => match hex_value(byte) {
                Some(low) => Self::emit(value << 4 | low, out),
                None => {
                    Self::emit(b'%', out);
                    Self::emit(first, out);
                    self.feed(byte, out);
                }
            },
        }
    }

    /// Emits an escape left open at the end.
    fn finish(&mut self, out: &mut impl FnMut(u8)) {
        match std::mem::take(&mut self.percent) {
            Percent::Outside => {}
            Percent::Opened => Self::emit(b'%', out),
            Percent::OneDigit { byte, .. } => {
                Self::emit(b'%', out);
                Self::emit(byte, out);
            }
        }
    }

    fn emit(byte: u8, out: &mut impl FnMut(u8)) {
        if !byte.is_ascii_whitespace() && byte != b'\\' {
            out(byte.to_ascii_lowercase());
        }
    }

    /// `bytes` normalised.
    fn all(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
        let mut normalise = Normalise::default();
        for &byte in bytes {
            normalise.feed(byte, &mut |b| out.push(b));
        }
        normalise.finish(&mut |b| out.push(b));
        out
    }
}

#[cfg(any(unix, test))]
fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Watches the hook's output for the password in the forms a hook is likely to print:
/// as it is, with a prefix or cut short, folded, escaped with backslashes or `%XX`
/// (these [`Normalise`] undoes), reversed (`rev`), in hex (`od`, `xxd -p`), or in base64
/// (standard or URL-safe alphabet, wrapped or not, at each of the three alignments the
/// password can have in the encoded bytes). Any [`SEEN_RUN`] normalised bytes in a row of
/// one of these forms count as the password shown.
#[cfg(any(unix, test))]
struct Watch {
    /// Every run of [`Watch::width`] bytes of every form, as big-endian numbers, sorted.
    runs: Zeroizing<Vec<u64>>,
    width: usize,
    normalise: Normalise,
    /// The last normalised bytes of the output (at most 8).
    window: u64,
    filled: usize,
    seen: bool,
}

#[cfg(any(unix, test))]
impl Watch {
    fn new(password: &[u8]) -> Watch {
        let forms = password_forms(password);
        let width = Normalise::all(password).len().min(SEEN_RUN);
        let mut runs = Zeroizing::new(Vec::new());
        if width > 0 {
            for form in &forms {
                for run in Normalise::all(form).windows(width) {
                    runs.push(run.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)));
                }
            }
        }
        runs.sort_unstable();
        runs.dedup();
        Watch {
            runs,
            width,
            normalise: Normalise::default(),
            window: 0,
            filled: 0,
            seen: false,
        }
    }

    /// Reads more output; whether the password has been seen so far.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut normalise = std::mem::take(&mut self.normalise);
        for &byte in bytes {
            normalise.feed(byte, &mut |b| self.push(b));
        }
        self.normalise = normalise;
        self.seen
    }

    /// The output ended: whether the password was seen.
    fn finish(&mut self) -> bool {
        let mut normalise = std::mem::take(&mut self.normalise);
        normalise.finish(&mut |b| self.push(b));
        self.seen
    }

    fn push(&mut self, byte: u8) {
        if self.width == 0 {
            return;
        }
        self.window = self.window << 8 | u64::from(byte);
        self.filled += 1;
        if self.filled >= self.width {
            let mask = u64::MAX >> (64 - 8 * self.width);
            self.seen |= self.runs.binary_search(&(self.window & mask)).is_ok();
        }
    }
}

#[cfg(any(unix, test))]
impl Drop for Watch {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.window);
    }
}

/// The password, reversed, in hex, and its base64 (standard and URL-safe) at each
/// alignment: only the characters of whole 3-byte groups, which do not depend on what is
/// around it.
#[cfg(any(unix, test))]
fn password_forms(password: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let mut forms = vec![Zeroizing::new(password.to_vec())];
    let mut reversed = Zeroizing::new(String::with_capacity(password.len() * 3));
    reversed.extend(String::from_utf8_lossy(password).chars().rev());
    forms.push(Zeroizing::new(reversed.as_bytes().to_vec()));
    let mut hex = Zeroizing::new(String::with_capacity(password.len() * 2));
    for byte in password {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
    }
    forms.push(Zeroizing::new(hex.as_bytes().to_vec()));
    for skip in 0..3.min(password.len()) {
        let rest = &password[skip..];
        let whole = &rest[..rest.len() - rest.len() % 3];
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            forms.push(Zeroizing::new(engine.encode(whole).into_bytes()));
        }
    }
    forms
}

#[cfg(unix)]
fn run_blocking(
    spec: &HookSpec,
    env: &[(&'static str, String)],
    password: &SecretString,
) -> HookRun {
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let (mut child, reader) = match spawn(spec, env) {
        Ok(started_hook) => started_hook,
        Err(error) => return not_started(error, started),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let mut line = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
        line.push(b'\n');
        // A hook that does not read its input may have exited: not our failure. The
        // pipe closes when `stdin` is dropped here.
        let _ = stdin.write_all(&line);
    }
    let capture = Arc::new(Mutex::new(Capture {
        tail: Zeroizing::new(Vec::new()),
        leaked: false,
    }));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    {
        let capture = Arc::clone(&capture);
        let needle = Zeroizing::new(password.expose_secret().as_bytes().to_vec());
        std::thread::spawn(move || {
            read_output(reader, &capture, &needle);
            let _ = done_tx.send(());
        });
    }
    let (status, timed_out) = wait(&mut child, &done_rx, deadline);
    let duration_ms = started.elapsed().as_millis();
    let (output_tail, output_withheld) = match capture.lock() {
        Ok(capture) if capture.leaked => (WITHHELD.to_owned(), true),
        Ok(capture) => (render_tail(&capture.tail), false),
        Err(_) => (String::new(), false),
    };
    let exit_code = status.and_then(|s| s.code()).filter(|_| !timed_out);
    let outcome = match (timed_out, exit_code) {
        (true, _) => HookStatus::TimedOut,
        (false, Some(0)) => HookStatus::Ok,
        _ => HookStatus::Failed,
    };
    HookRun {
        status: outcome.as_str(),
        exit_code,
        signal: status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
        timed_out,
        output_tail,
        output_withheld,
        duration_ms,
        error: None,
        outcome,
    }
}

/// Starts `sh -c COMMAND` in a process group of its own, its standard output and error
/// on one pipe whose read end is returned; the environment without siprot's secrets.
#[cfg(unix)]
fn spawn(
    spec: &HookSpec,
    env: &[(&'static str, String)],
) -> std::result::Result<(std::process::Child, std::io::PipeReader), String> {
    use std::os::unix::process::CommandExt;

    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let writer_too = writer
        .try_clone()
        .map_err(|e| format!("cannot make a pipe: {e}"))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&spec.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_too))
        .process_group(0);
    for var in config::secret_vars().into_iter().chain(REMOVED_VARS) {
        command.env_remove(var);
    }
    for (key, value) in std::env::vars_os().filter(|(key, _)| is_proxy_var(key)) {
        match value.to_str().map(without_user_info) {
            Some(Some(clean)) if value.to_str() != Some(clean.as_str()) => {
                command.env(key, clean);
            }
            Some(Some(_)) => {}
            Some(None) | None => {
                command.env_remove(key);
            }
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().map_err(|e| format!("sh: {e}"))?;
    // Dropping `command` closes siprot's copies of the write ends: the output ends when
    // everything in the hook's group has closed its own.
    drop(command);
    Ok((child, reader))
}

/// Waits until the hook's process has exited and its output is closed (`done`), or until
/// `deadline`, when its whole process group is killed. Returns its exit status and
/// whether it timed out.
#[cfg(unix)]
fn wait(
    child: &mut std::process::Child,
    done: &std::sync::mpsc::Receiver<()>,
    deadline: Instant,
) -> (Option<std::process::ExitStatus>, bool) {
    let pid = child.id();
    let kill_group = || {
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    };
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group();
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => {
                kill_group();
                break child.wait().ok();
            }
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if !timed_out && done.recv_timeout(left).is_err() {
        // Something the hook started still holds its output open.
        timed_out = true;
        kill_group();
    }
    if timed_out {
        // Let the reader see the end the kill caused (bounded: a process outside the
        // group may still hold the pipe).
        let _ = done.recv_timeout(Duration::from_secs(1));
    }
    (status, timed_out)
}

/// `HTTPS_PROXY`, `http_proxy`, `ALL_PROXY`, `no_proxy`...: a name ending in `_proxy`,
/// in any case.
#[cfg(any(unix, test))]
fn is_proxy_var(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| name.to_ascii_lowercase().ends_with("_proxy"))
}

/// A proxy variable's value without its user info (`http://user:pass@proxy:3128` becomes
/// `http://proxy:3128/`); `None` (remove it) when it has an `@` that is not plainly user
/// info of a URL.
#[cfg(any(unix, test))]
fn without_user_info(value: &str) -> Option<String> {
    if !value.contains('@') {
        return Some(value.to_owned());
    }
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let mut url = url::Url::parse(&with_scheme).ok()?;
    url.host()?;
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    let clean = url.to_string();
    (!clean.contains('@')).then_some(clean)
}

#[cfg(not(unix))]
fn run_blocking(
    _spec: &HookSpec,
    _env: &[(&'static str, String)],
    _password: &SecretString,
) -> HookRun {
    not_started("the hook is only supported on Unix".into(), Instant::now())
}

/// Reads the output to its end, keeping its last bytes and watching all of it for the
/// password ([`Watch`], also across reads).
#[cfg(any(unix, test))]
fn read_output(mut reader: impl Read, capture: &Mutex<Capture>, password: &[u8]) {
    let mut watch = Watch::new(password);
    let keep = TAIL_BYTES * 2;
    let mut buffer = Zeroizing::new(vec![0u8; 8192]);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let Ok(mut capture) = capture.lock() else {
            return;
        };
        if n == 0 {
            capture.leaked |= watch.finish();
            return;
        }
        capture.tail.extend_from_slice(&buffer[..n]);
        capture.leaked |= watch.feed(&buffer[..n]);
        if capture.tail.len() > keep {
            let cut = capture.tail.len() - keep;
            capture.tail.drain(..cut);
        }
    }
}

/// The last [`TAIL_LINES`] lines of at most [`TAIL_BYTES`] bytes, control characters
/// escaped (`\u{1b}`), invalid UTF-8 replaced.
#[cfg(any(unix, test))]
fn render_tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.len().saturating_sub(TAIL_LINES);
    lines[first..]
        .iter()
        .map(|line| crate::redact::escape_controls(line))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_bounded_and_escaped() {
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str("bell\x07 and \x1b[31mred\r\n");
        let tail = render_tail(text.as_bytes());
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.starts_with("line 41"), "{tail}");
        assert!(tail.ends_with("bell\\u{7} and \\u{1b}[31mred"), "{tail}");
        let long = "x".repeat(10 * TAIL_BYTES);
        assert!(render_tail(long.as_bytes()).len() <= TAIL_BYTES);
    }

    #[test]
    fn the_password_is_found_across_reads() {
        struct Drip(Vec<u8>);
        impl Read for Drip {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let capture = Mutex::new(Capture {
            tail: Zeroizing::new(Vec::new()),
            leaked: false,
        });
        let mut output = "y".repeat(3 * TAIL_BYTES).into_bytes();
        output.extend_from_slice(b"Secret-Pass-1\n");
        output.extend_from_slice("z".repeat(10 * TAIL_BYTES).as_bytes());
        read_output(Drip(output), &capture, b"Secret-Pass-1");
        assert!(capture.lock().unwrap().leaked);
        let clean = Mutex::new(Capture {
            tail: Zeroizing::new(Vec::new()),
            leaked: false,
        });
        read_output(
            Drip(b"Secret-Xass-1 Secre\n".to_vec()),
            &clean,
            b"Secret-Pass-1",
        );
        assert!(!clean.lock().unwrap().leaked);
    }

    /// Whether [`Watch`] sees `password` in `output`, fed in chunks of `chunk` bytes.
    fn seen(password: &str, output: &[u8], chunk: usize) -> bool {
        let mut watch = Watch::new(password.as_bytes());
        for part in output.chunks(chunk) {
            watch.feed(part);
        }
        watch.finish()
    }

    #[test]
    fn the_password_is_seen_in_the_forms_a_hook_prints() {
        use base64::Engine;
        let password = "Pw;7&x=Zq+/9Lm%4kR~t";
        let b64 = |text: &str, url: bool| {
            let engine = if url {
                base64::engine::general_purpose::URL_SAFE
            } else {
                base64::engine::general_purpose::STANDARD
            };
            engine.encode(text)
        };
        let fold = |text: &str, width: usize| {
            text.as_bytes()
                .chunks(width)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let url_all: String = password.bytes().map(|b| format!("%{b:02x}")).collect();
        let url_some: String = password
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u32)
                }
            })
            .collect();
        let mut shown = vec![
            format!("password={password}\n"),
            format!("{}\n", &password[..8]),
            fold(password, 3),
            password.chars().rev().collect(),
            password.replace(';', "\\;"),
            password.chars().map(|c| format!("\\{c}")).collect(),
            url_all,
            url_some,
            password.to_ascii_uppercase(),
            password
                .bytes()
                .map(|b| format!("{b:02x} "))
                .collect::<String>(),
        ];
        for prefix in ["", "u:", "us:", "user:"] {
            for url in [false, true] {
                let encoded = b64(&format!("{prefix}{password}\n"), url);
                shown.push(encoded.clone());
                shown.push(fold(&encoded, 4));
            }
        }
        for output in &shown {
            for chunk in [1, 5, 4096] {
                assert!(seen(password, output.as_bytes(), chunk), "{output:?}");
            }
        }
        let other = "Qx;8&y=Ar+/0Mn%5lS~u";
        for output in [
            "hook for telepath conn_1: reloaded\n".to_owned(),
            format!("{}\n", &password[..7]),
            format!("{}-{}", &password[..6], &password[7..13]),
            b64(other, false),
            other.to_owned(),
        ] {
            assert!(!seen(password, output.as_bytes(), 3), "{output:?}");
        }
        // A password shorter than the run: all of it.
        assert!(seen("abc%", b"xx ABC%25 yy", 2));
        assert!(seen("abcd", b"ab\ncd", 2));
        assert!(!seen("abcd", b"abce", 2));
    }

    #[test]
    fn proxy_variables_lose_their_user_info() {
        for name in [
            "HTTPS_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "no_proxy",
            "Ftp_Proxy",
        ] {
            assert!(is_proxy_var(std::ffi::OsStr::new(name)), "{name}");
        }
        assert!(!is_proxy_var(std::ffi::OsStr::new("PROXY_HOST")));
        assert_eq!(
            without_user_info("http://proxy.example:3128").as_deref(),
            Some("http://proxy.example:3128")
        );
        assert_eq!(
            without_user_info("http://alice:s3cr%40t@proxy.example:3128").as_deref(),
            Some("http://proxy.example:3128/")
        );
        assert_eq!(
            without_user_info("alice:s3cret@proxy.example:3128").as_deref(),
            Some("http://proxy.example:3128/")
        );
        assert_eq!(
            without_user_info("socks5h://alice@proxy.example:1080").as_deref(),
            Some("socks5h://proxy.example:1080")
        );
        assert_eq!(without_user_info("not a url @ all"), None);
        assert_eq!(
            without_user_info("localhost,.example.com").as_deref(),
            Some("localhost,.example.com")
        );
    }

    #[test]
    fn commands_are_quoted_for_the_shell() {
        assert_eq!(
            shell_quote("/usr/local/bin/update"),
            "/usr/local/bin/update"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
