//! A real SIP phone for the tests: baresip (Debian package `baresip`), headless, with one
//! account that registers to the test's Kamailio as a phone registers to its provider.
//!
//! Each baresip has its own configuration directory (`baresip -f DIR`): a `config` with
//! no audio device (the `ausine` source, the `aunull` player), `sip_listen` on a free
//! loopback port, and the `cons` module, a text control socket on another free loopback
//! port that takes the same commands as baresip's keyboard menu (`/reginfo`, `/uadel`,
//! `/uanew`); and an `accounts` file with the one account, its password in `auth_pass`.
//! baresip reads `accounts` only at start; [`Baresip::reload`] makes it re-register with
//! what the file holds now, as the tests' hook does after a rotation. Stopped when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::kamailio::{Kamailio, free_port};

/// A running baresip, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    /// The cons control socket's TCP port on 127.0.0.1.
    pub cons_port: u16,
    /// The account's address-of-record, `sip:USER@127.0.0.1`.
    pub aor: String,
}

impl Baresip {
    /// Starts baresip with the account `username`/`password` registering to `kamailio`
    /// over UDP, and waits (at most 15 s) until it reports the registration OK.
    pub fn start(kamailio: &Kamailio, username: &str, password: &str) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let (sip_port, cons_port) = (free_port(), free_port());
            let aor = format!("sip:{username}@127.0.0.1");
            write_files(
                dir.path(),
                sip_port,
                cons_port,
                &aor,
                password,
                kamailio.port,
            );
            let log = std::fs::File::create(dir.path().join("baresip.log")).expect("log file");
            let child = Command::new("baresip")
                .arg("-f")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("baresip (Debian package baresip) must be installed");
            let mut baresip = Self {
                child,
                dir,
                cons_port,
                aor,
            };
            if baresip.wait_ready() {
                assert!(
                    baresip.wait_for_registration("OK", Duration::from_secs(15)),
                    "baresip did not register; its log:\n{}\nKamailio's log:\n{}",
                    baresip.log(),
                    kamailio.log()
                );
                return baresip;
            }
            // A port was taken between our probe and baresip's bind: retry.
            last_log = baresip.log();
        }
        panic!("baresip did not start; its last log:\n{last_log}");
    }

    /// Waits until baresip says it is ready and its control socket answers.
    fn wait_ready(&mut self) -> bool {
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.log().contains("baresip is ready.")
                && TcpStream::connect(("127.0.0.1", self.cons_port)).is_ok()
            {
                // Ours, and not another test's baresip on the same port: ours would
                // have exited on the failed bind.
                std::thread::sleep(Duration::from_millis(100));
                return matches!(self.child.try_wait(), Ok(None));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The configuration directory (`config`, `accounts`, `baresip.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `accounts` file.
    pub fn accounts(&self) -> PathBuf {
        self.dir.path().join("accounts")
    }

    /// The password the `accounts` file holds now (its `auth_pass`).
    pub fn configured_password(&self) -> String {
        let line = std::fs::read_to_string(self.accounts()).expect("accounts");
        let rest = line
            .split_once(";auth_pass=")
            .map(|(_, rest)| rest)
            .expect("an auth_pass parameter");
        rest.split([';', '\n']).next().unwrap_or("").to_owned()
    }

    /// What baresip has printed so far (for failure messages; it may hold the password).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Sends one command line to the cons control socket and returns what baresip
    /// answered within 300 ms of quiet (its echo of the typed line included).
    pub fn command(&self, line: &str) -> String {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.cons_port)).expect("baresip's cons socket");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("read timeout");
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to cons");
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The account's registration state in `/reginfo`: `OK`, `ERR`, `zzz` (not yet
    /// answered), or empty when baresip has no such user agent.
    pub fn registration(&self) -> String {
        let answer = strip_ansi(&self.command("/reginfo"));
        answer
            .lines()
            .find_map(|line| {
                let (_, rest) = line.split_once(&format!("{} ", self.aor))?;
                rest.split_whitespace().next().map(str::to_owned)
            })
            .unwrap_or_default()
    }

    /// Waits until `/reginfo` shows `state` for the account.
    pub fn wait_for_registration(&self, state: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            if self.registration() == state {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Makes baresip register again with what `accounts` holds now, as a phone restarted
    /// by hand would: `/uadel` the account (its unREGISTER, answered with the password it
    /// had), then `/uanew` with the file's line (a new user agent, a new Call-ID).
    pub fn reload(&self) {
        let line = std::fs::read_to_string(self.accounts()).expect("accounts");
        self.command(&format!("/uadel {}", self.aor));
        self.command(&format!("/uanew {}", line.trim()));
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // SIGTERM makes baresip unregister; a second signal (here SIGKILL) stops waiting.
        super::terminate(&mut self.child, Duration::from_secs(2));
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), which baresip puts around states.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The directory of baresip's modules (Debian's, else a local build's).
fn module_path() -> &'static str {
    [
        "/usr/lib/baresip/modules",
        "/usr/local/lib/baresip/modules",
        "/usr/lib/x86_64-linux-gnu/baresip/modules",
    ]
    .into_iter()
    .find(|p| Path::new(p).join("cons.so").exists())
    .unwrap_or("/usr/lib/baresip/modules")
}

fn write_files(
    dir: &Path,
    sip_port: u16,
    cons_port: u16,
    aor: &str,
    password: &str,
    registrar_port: u16,
) {
    let config = format!(
        "# baresip for siprot's phone tests: no audio device, a text control socket\n\
         poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         audio_player\t\taunull\n\
         audio_source\t\tausine\n\
         module_path\t\t{modules}\n\
         module\t\t\tg711.so\n\
         module\t\t\tausine.so\n\
         module\t\t\tcons.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         cons_listen\t\t127.0.0.1:{cons_port}\n",
        modules = module_path(),
    );
    std::fs::write(dir.join("config"), config).expect("baresip config");
    // regint=60: Kamailio's registrar raises shorter intervals to its min_expires (60 s).
    let account = format!(
        "<{aor}>;auth_pass={password};outbound=\"sip:127.0.0.1:{registrar_port}\";regint=60\n"
    );
    std::fs::write(dir.join("accounts"), account).expect("baresip accounts");
}
