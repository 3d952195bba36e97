//! siprot at a terminal: [`TestEnv::run_on_terminal`] gives it a new pseudo-terminal as
//! its standard input and controlling terminal (opened by python3's `pty` module, in a
//! session of its own), as an operator's shell would, and types what the test says;
//! standard output and error stay pipes the test reads, so that a question on standard
//! error can be asserted on. [`TestEnv::run_dialog`] waits for each prompt before typing
//! its answer and returns what the terminal showed, so that a test can tell whether a
//! typed secret was echoed.

use std::process::{Command, Stdio};

use crate::support::{Run, TestEnv};

/// Runs `argv[3:]` with a new pseudo-terminal as its standard input and controlling
/// terminal. `argv[1]` is a JSON list of `[prompt, answer]` pairs: for each, it waits
/// until the terminal has shown `prompt` (at once when empty), then types `answer`.
/// Everything the terminal showed is written to the file `argv[2]` (when not empty).
/// Gives up after 30 s (exit 124). A process killed by a signal exits 128 + the signal.
const ON_A_TERMINAL: &str = r#"
import fcntl, json, os, pty, select, subprocess, sys, termios, time
steps = json.loads(sys.argv[1])
transcript_path = sys.argv[2]
master, slave = pty.openpty()
def controlling():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
child = subprocess.Popen(sys.argv[3:], stdin=slave, start_new_session=True,
                         preexec_fn=controlling)
os.close(slave)
shown = b""
deadline = time.monotonic() + 30
step = 0
def echo_off_or_late(since):
    # A program that reads a secret turns the terminal's echo off after its prompt:
    # wait for that (at most 2 s, so that one that never does is caught by its echo).
    return not (termios.tcgetattr(master)[3] & termios.ECHO) or time.monotonic() - since > 2
prompt_seen_at = None
while True:
    while step < len(steps) and steps[step][0].encode() in shown:
        if steps[step][0]:
            if prompt_seen_at is None:
                prompt_seen_at = time.monotonic()
            if not echo_off_or_late(prompt_seen_at):
                break
            prompt_seen_at = None
            # Later prompts are looked for in what is shown after this answer.
            shown = b""
        os.write(master, steps[step][1].encode())
        step += 1
    if child.poll() is not None:
        break
    if time.monotonic() > deadline:
        child.kill()
        child.wait()
        sys.exit(124)
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        shown += data
        if transcript_path:
            with open(transcript_path, "ab") as f:
                f.write(data)
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"#;

impl TestEnv {
    /// Runs siprot with `args` on a pseudo-terminal (its standard input) on which `typed`
    /// was typed ahead (`b"y\n"`, `b"\x04"` for end of input), then checks its output for
    /// leaks as [`TestEnv::run`] does.
    pub fn run_on_terminal(&self, args: &[&str], typed: &[u8]) -> Run {
        let typed = String::from_utf8(typed.to_vec()).expect("typed text is UTF-8");
        self.terminal(args, &[("", typed.as_str())], None)
    }

    /// Runs siprot with `args` on a pseudo-terminal, answering each `(prompt, answer)` in
    /// turn once the terminal shows the prompt; returns the run and everything the
    /// terminal showed (prompts, and any echo of what was typed).
    pub fn run_dialog(&self, args: &[&str], steps: &[(&str, &str)]) -> (Run, String) {
        let transcript = self.state.path().join("terminal-transcript");
        let _ = std::fs::remove_file(&transcript);
        let run = self.terminal(args, steps, Some(&transcript));
        let shown = std::fs::read(&transcript).unwrap_or_default();
        (run, String::from_utf8_lossy(&shown).into_owned())
    }

    fn terminal(
        &self,
        args: &[&str],
        steps: &[(&str, &str)],
        transcript: Option<&std::path::Path>,
    ) -> Run {
        let siprot = self.command();
        let mut cmd = Command::new("python3");
        cmd.env_clear();
        for (key, value) in siprot.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        let steps: Vec<[&str; 2]> = steps.iter().map(|(p, a)| [*p, *a]).collect();
        cmd.arg("-c")
            .arg(ON_A_TERMINAL)
            .arg(serde_json::to_string(&steps).expect("steps as JSON"))
            .arg(
                transcript
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
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
