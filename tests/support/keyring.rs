//! A Secret Service of one test's own: a private `dbus-daemon` (without service
//! activation, so nothing restarts a keyring behind the test's back) and a gnome-keyring
//! in a throw-away directory. Tests use it to kill or freeze the keyring mid-run without
//! disturbing the shared one the other tests use.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateKeyring {
    pub bus_address: String,
    bus: Child,
    keyring: Option<Child>,
    dir: tempfile::TempDir,
}

impl PrivateKeyring {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().display()
            ),
        )
        .expect("bus config");
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus)");
        let mut line = String::new();
        BufReader::new(bus.stdout.take().expect("bus stdout"))
            .read_line(&mut line)
            .expect("bus address");
        let bus_address = line.trim().to_owned();
        assert!(
            bus_address.starts_with("unix:"),
            "bus address: {bus_address:?}"
        );
        let mut keyring = Self {
            bus_address,
            bus,
            keyring: None,
            dir,
        };
        keyring.start_keyring();
        keyring
    }

    /// Starts the Secret Service again on the same data (after [`PrivateKeyring::kill`]).
    pub fn restart(&mut self) {
        assert!(self.keyring.is_none(), "still running");
        self.start_keyring();
    }

    fn start_keyring(&mut self) {
        std::fs::create_dir_all(self.dir.path().join("data")).unwrap();
        std::fs::create_dir_all(self.dir.path().join("run")).unwrap();
        self.spawn_daemon(&[]);
        self.await_secret_service("the private keyring did not start");
    }

    /// Starts `gnome-keyring-daemon --foreground --unlock --components=secrets` (plus
    /// `extra` options) on this keyring's bus and data, unlocked with the throw-away
    /// password on its standard input, as the running keyring.
    fn spawn_daemon(&mut self, extra: &[&str]) {
        let mut child = Command::new("gnome-keyring-daemon")
            .arg("--foreground")
            .args(extra)
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            // The test session's own daemon is named here (scripts/with-keyring.sh exports
            // it): a `--replace` must never find and stop that one.
            .env_remove("GNOME_KEYRING_CONTROL")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (package gnome-keyring)");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"throwaway").unwrap();
        drop(stdin);
        self.keyring = Some(child);
    }

    /// Waits (at most 15 s) until a Secret Service owns its name on this keyring's bus.
    fn await_secret_service(&self, failure: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.secrets_owned() {
            assert!(Instant::now() < deadline, "{failure}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn secrets_owned(&self) -> bool {
        let output = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .output()
            .expect("dbus-send");
        String::from_utf8_lossy(&output.stdout).contains("boolean true")
    }

    fn keyring_pid(&self) -> String {
        self.keyring
            .as_ref()
            .expect("keyring running")
            .id()
            .to_string()
    }

    /// The keyring's data directory (its `XDG_DATA_HOME`) and runtime directory (its
    /// `XDG_RUNTIME_DIR`), for a test that starts a `gnome-keyring-daemon` on it itself.
    pub fn dirs(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        (self.dir.path().join("data"), self.dir.path().join("run"))
    }

    /// Kills the Secret Service (SIGKILL); the bus stays up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.keyring.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Locks the default collection, as a screen lock or `Lock` call would. With no
    /// prompter on this bus, every later access to its secrets is refused at once.
    /// [`PrivateKeyring::kill`] then [`PrivateKeyring::restart`] unlocks it.
    pub fn lock(&self) {
        let status = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.Lock",
                "array:objpath:/org/freedesktop/secrets/collection/login",
            ])
            .stdout(Stdio::null())
            .status()
            .expect("dbus-send (package dbus)");
        assert!(status.success(), "locking the collection failed");
    }

    /// Unlocks the collection as `siprot doctor` tells an operator to:
    /// `gnome-keyring-daemon --replace --unlock --components=secrets` with the password on
    /// standard input (in the foreground here, so that this keyring still owns and stops it).
    pub fn unlock_by_replacing(&mut self) {
        let mut old = self.keyring.take().expect("keyring running");
        self.spawn_daemon(&["--replace"]);
        // The replaced daemon exits once the new one owns the name.
        let _ = old.wait();
        self.await_secret_service("the replacing keyring did not start");
    }

    /// Stops the Secret Service without killing it: calls to it hang.
    pub fn freeze(&self) {
        signal("STOP", &self.keyring_pid());
    }

    pub fn thaw(&self) {
        signal("CONT", &self.keyring_pid());
    }
}

fn signal(name: &str, pid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

impl Drop for PrivateKeyring {
    fn drop(&mut self) {
        if let Some(child) = &self.keyring {
            signal("CONT", &child.id().to_string());
        }
        self.kill();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
