//! A real SIP registrar for the tests: Kamailio on loopback, with digest authentication
//! against a db_text `subscriber` table in the test's own directory.
//!
//! The table is a plain file that the fake providers rewrite after every rotation
//! (`FakeProviders::share_sip_users`), so a rotation at the fake changes what Kamailio
//! accepts, end to end. Kamailio rereads it when its modification time changes.

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fake::SUBSCRIBER_TABLE_HEADER;

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

    /// What Kamailio has logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets Kamailio stop its worker processes too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kamailio"))
}

/// A port free for both UDP and TCP on loopback right now.
fn free_port() -> u16 {
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
    let config = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
loadmodule "db_text.so"
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "xlog.so"
modparam("db_text", "db_mode", 1)
modparam("usrloc", "db_mode", 0)
modparam("auth_db", "db_url", "text://{db}")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "")
modparam("auth_db", "use_domain", 0)
modparam("auth", "algorithm", "{algorithm}")
request_route {{
    xlog("L_INFO", "siprot-test: $rm $ru from $si:$sp over $pr, contact '$hdr(Contact)', expires '$hdr(Expires)'\n");
    if (!is_method("REGISTER")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    if (!auth_check("$fd", "subscriber", "1")) {{
        auth_challenge("$fd", "1");
        exit;
    }}
    consume_credentials();
    if (!save("location")) {{
        sl_reply_error();
    }}
    exit;
}}
"#,
        db = db.display(),
    );
    std::fs::write(dir.join("kamailio.cfg"), config).expect("kamailio.cfg");
}
