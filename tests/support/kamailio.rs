//! A real SIP registrar for the tests: Kamailio on loopback, with digest authentication
//! against a db_text `subscriber` table in the test's own directory.
//!
//! The table is a plain file that the fake providers rewrite after every rotation
//! (`FakeProviders::share_sip_users`), so a rotation at the fake changes what Kamailio
//! accepts, end to end. Kamailio rereads it when its modification time changes.
//!
//! Bindings live in memory (usrloc `db_mode` 0); [`Kamailio::bindings`] lists them with
//! `kamcmd ul.dump` over the control socket in the same directory, so a test can tell a
//! phone's registration (its contact, Call-ID, User-Agent, last change) from siprot's
//! REGISTER, which never adds one.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fake::SUBSCRIBER_TABLE_HEADER;

/// The configuration, shared with `scripts/demo-verify.sh`: `@PORT@`, `@DB@`, `@CTL@` and
/// `@ALGORITHM@` are filled in.
const CONFIG: &str = include_str!("kamailio.cfg");

/// A running Kamailio, stopped when dropped.
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The digest algorithm Kamailio challenges with.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Kamailio {
    /// Starts Kamailio on a free loopback port (UDP and TCP), challenging with
    /// `algorithm` and `qop=auth`.
    pub fn start(algorithm: Algorithm) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            write_files(dir.path(), port, algorithm);
            let log = std::fs::File::create(dir.path().join("kamailio.log")).expect("log file");
            let child = Command::new(binary())
                .args(["-DD", "-E", "-m", "32", "-M", "4", "-f"])
                .arg(dir.path().join("kamailio.cfg"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("kamailio (Debian package kamailio) must be installed");
            let mut kamailio = Self { child, dir, port };
            if kamailio.wait_ready() {
                return kamailio;
            }
            // Another process took the port between our probe and Kamailio's bind: retry.
            last_log = kamailio.log();
        }
        panic!("kamailio did not start; its last log:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Something listens; make sure it is ours and not another test's Kamailio
                // that drew the same port (ours would exit on the failed bind).
                std::thread::sleep(Duration::from_millis(200));
                return matches!(self.child.try_wait(), Ok(None));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `sip:127.0.0.1:PORT;transport=udp|tcp`.
    pub fn registrar(&self, transport: &str) -> String {
        format!("sip:127.0.0.1:{};transport={transport}", self.port)
    }

    /// The db_text subscriber table, for `FakeProviders::share_sip_users`.
    pub fn subscriber_table(&self) -> PathBuf {
        self.dir.path().join("db").join("subscriber")
    }

    /// Every binding in Kamailio's location table now (`kamcmd ul.dump`), in dump order.
    pub fn bindings(&self) -> Vec<Binding> {
        let output = Command::new(kamcmd())
            .arg("-s")
            .arg(format!(
                "unix:{}",
                self.dir.path().join("kamailio.ctl").display()
            ))
            .arg("ul.dump")
            .stdin(Stdio::null())
            .output()
            .expect("kamcmd (Debian package kamailio) must be installed");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kamcmd ul.dump failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        parse_ul_dump(&text)
    }

    /// What Kamailio has logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets Kamailio stop its worker processes too.
        super::terminate(&mut self.child, Duration::from_secs(5));
    }
}

/// One contact of Kamailio's location table, as `ul.dump` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The address-of-record (the SIP username: `use_domain` is off).
    pub aor: String,
    pub contact: String,
    pub call_id: String,
    pub cseq: u64,
    pub user_agent: String,
    /// Seconds since the epoch of the REGISTER that last created or refreshed it.
    pub last_modified: u64,
    /// Seconds left.
    pub expires: u64,
}

/// The contacts in `kamcmd ul.dump`'s output: `AoR: ...` opens a record, `Address: ...`
/// one of its contacts, whose `Name: value` lines follow.
fn parse_ul_dump(text: &str) -> Vec<Binding> {
    let mut bindings: Vec<Binding> = Vec::new();
    let mut aor = String::new();
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once(": ") else {
            continue;
        };
        let value = value.trim().to_owned();
        if name == "AoR" {
            aor = value;
            continue;
        }
        if name == "Address" {
            bindings.push(Binding {
                aor: aor.clone(),
                contact: value,
                call_id: String::new(),
                cseq: 0,
                user_agent: String::new(),
                last_modified: 0,
                expires: 0,
            });
            continue;
        }
        let Some(binding) = bindings.last_mut() else {
            continue;
        };
        match name {
            "Call-ID" => binding.call_id = value,
            "CSeq" => binding.cseq = value.parse().unwrap_or(0),
            "User-Agent" => binding.user_agent = value,
            "Last-Modified" => binding.last_modified = value.parse().unwrap_or(0),
            "Expires" => binding.expires = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    bindings
}

fn kamcmd() -> PathBuf {
    ["/usr/sbin/kamcmd", "/usr/local/sbin/kamcmd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kamcmd"))
}

fn binary() -> PathBuf {
    ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kamailio"))
}

/// A port free for both UDP and TCP on loopback right now.
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn write_files(dir: &Path, port: u16, algorithm: Algorithm) {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).expect("db dir");
    std::fs::write(
        db.join("version"),
        "table_name(string) table_version(int)\nsubscriber:7\n",
    )
    .expect("version table");
    std::fs::write(db.join("subscriber"), SUBSCRIBER_TABLE_HEADER).expect("subscriber table");
    let algorithm = match algorithm {
        Algorithm::Md5 => "MD5",
        Algorithm::Sha256 => "SHA-256",
    };
    let config = CONFIG
        .replace("@PORT@", &port.to_string())
        .replace("@DB@", &db.display().to_string())
        .replace("@CTL@", &dir.join("kamailio.ctl").display().to_string())
        .replace("@ALGORITHM@", algorithm);
    std::fs::write(dir.join("kamailio.cfg"), config).expect("kamailio.cfg");
}
