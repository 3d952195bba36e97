//! siprot at a terminal: [`TestEnv::run_on_terminal`] gives it a new pseudo-terminal as
//! its standard input (opened by python3's `pty` module), as an operator's shell would,
//! and types ahead what the test says; standard output and error stay pipes the test
//! reads, so that a question on standard error can be asserted on.

use std::process::{Command, Stdio};

use crate::support::{Run, TestEnv};

/// Runs `argv[2:]` with a new pseudo-terminal as its standard input and the hex bytes of
/// `argv[1]` typed on it, reading the terminal's echo so that it never fills; gives up
/// after 30 s (exit 124). A process killed by a signal exits 128 + the signal.
const ON_A_TERMINAL: &str = r#"
import os, pty, select, subprocess, sys, time
typed = bytes.fromhex(sys.argv[1])
master, slave = pty.openpty()
child = subprocess.Popen(sys.argv[2:], stdin=slave)
os.close(slave)
os.write(master, typed)
deadline = time.monotonic() + 30
while child.poll() is None:
    if time.monotonic() > deadline:
        child.kill()
        child.wait()
        sys.exit(124)
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        try:
            os.read(master, 4096)
        except OSError:
            pass
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"#;

impl TestEnv {
    /// Runs siprot with `args` on a pseudo-terminal (its standard input) on which `typed`
    /// was typed ahead (`b"y\n"`, `b"\x04"` for end of input), then checks its output for
    /// leaks as [`TestEnv::run`] does.
    pub fn run_on_terminal(&self, args: &[&str], typed: &[u8]) -> Run {
        let siprot = self.command();
        let mut cmd = Command::new("python3");
        cmd.env_clear();
        for (key, value) in siprot.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        let hex: String = typed.iter().map(|b| format!("{b:02x}")).collect();
        cmd.arg("-c")
            .arg(ON_A_TERMINAL)
            .arg(hex)
            .arg(siprot.get_program())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("python3 must be installed");
        let run = self.finish(child, args);
        assert_ne!(
            run.code, 124,
            "siprot did not exit within 30 s: {}",
            run.stderr
        );
        run
    }
}
