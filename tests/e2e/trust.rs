//! Files read as settings (issue 23, items 2 and 5). The inventory (whose `exec` gets every
//! new password) and the config file (whose `base_url` gets the API key) are refused with
//! exit 4 and the `chown`/`chmod` that fixes them when they, their symbolic link's target
//! or a directory between them and `$HOME` (or `$XDG_CONFIG_HOME`) is owned by another
//! user or writable by group or others; sticky directories and those above `$HOME` are
//! not judged. A FIFO or a device as the config file, `~/.vault-token`, `VAULT_CACERT`,
//! `VAULT_CLIENT_CERT` or `VAULT_CLIENT_KEY` is exit 4 naming it (`doctor`: its vault
//! store check fails), never a hang; a token file others may read gets a warning.
//!
//! The tests run as root: another user's file is one chowned to 65534 (nobody).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Run, Target, TestEnv};

const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

fn dir(path: PathBuf, mode: u32) -> PathBuf {
    std::fs::create_dir_all(&path).unwrap();
    chmod(&path, mode);
    path
}

fn file(path: PathBuf, text: &str) -> PathBuf {
    std::fs::write(&path, text).unwrap();
    chmod(&path, 0o644);
    path
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(made.expect("mkfifo").success());
}

/// Runs siprot, killing it (and failing the test) if it has not exited within 10 s: a
/// FIFO read would wait for a writer forever.
fn run_within_10s(env: &TestEnv, args: &[&str]) -> Run {
    run_with(env, args, &[])
}

/// [`run_within_10s`] with `paths` added to the environment. The harness takes any
/// `*_KEY` variable it is given for a secret, but `VAULT_CLIENT_KEY` names a file, which
/// the error must name; the leak check still covers every other secret.
fn run_with(env: &TestEnv, args: &[&str], paths: &[(&str, &str)]) -> Run {
    let mut command = env.command();
    command
        .args(args)
        .envs(paths.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn siprot");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait siprot").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("siprot {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("wait siprot");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    if let Err(leak) = env.find_leak(&run, false, args) {
        panic!("{leak}");
    }
    run
}

/// An inventory of the Telepath target whose `exec` hook leaves `marker` behind.
fn inventory_text(marker: &Path) -> String {
    format!(
        "exec = \"cat > /dev/null; touch {}\"\n\n[[credential]]\nprovider = \"telepath\"\nid = \"{}\"\n",
        marker.display(),
        Target::TELEPATH.id
    )
}

#[test]
fn an_inventory_someone_else_may_change_is_exit_4_and_its_hook_never_runs() {
    let env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    let home = env.state.path();
    let marker = home.join("hook-ran");
    let text = inventory_text(&marker);

    let others = file(home.join("others.toml"), &text);
    chown_nobody(&others);
    let writable = file(home.join("writable.toml"), &text);
    chmod(&writable, 0o664);
    let world = file(home.join("world.toml"), &text);
    chmod(&world, 0o646);
    // A link of ours to a file of another user's: judged by its target.
    let elsewhere = tempfile::tempdir().unwrap();
    let theirs = file(elsewhere.path().join("theirs.toml"), &text);
    chown_nobody(&theirs);
    let link = home.join("link.toml");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    // Directories between $HOME and the file.
    let open_dir = dir(home.join("shared"), 0o777);
    let in_open_dir = file(open_dir.join("fleet.toml"), &text);
    let their_dir = dir(home.join("theirs"), 0o755);
    let in_their_dir = file(their_dir.join("fleet.toml"), &text);
    chown_nobody(&their_dir);

    let cases = [
        (
            &others,
            format!(
                "it is owned by uid {NOBODY}, not by you (uid 0) or root: check it, then chown 0 {}",
                others.display()
            ),
        ),
        (
            &writable,
            format!(
                "it is writable by group or others (mode 664): check it, then chmod go-w {}",
                writable.display()
            ),
        ),
        (
            &world,
            format!("(mode 646): check it, then chmod go-w {}", world.display()),
        ),
        (
            &link,
            format!(
                "it is a link to {}, which is owned by uid {NOBODY}",
                theirs.display()
            ),
        ),
        (
            &in_open_dir,
            format!(
                "its directory {} is writable by group or others (mode 777): check it, then chmod go-w {}",
                open_dir.display(),
                open_dir.display()
            ),
        ),
        (
            &in_their_dir,
            format!(
                "its directory {} is owned by uid {NOBODY}",
                their_dir.display()
            ),
        ),
    ];
    for (path, why) in cases {
        let path = path.display().to_string();
        for command in ["rotate", "status"] {
            env.run(&[command, "--inventory", &path], None)
                .assert_code(4)
                .assert_one_line_error(&format!("the inventory {path} is not trusted: "))
                .assert_one_line_error(&why);
        }
    }
    assert!(env.fake.requests().is_empty(), "nothing was sent");
    assert!(!marker.exists(), "the hook never ran");
    assert_eq!(target.live(&env), target.initial);

    // A sticky directory (as /tmp) is not judged, nor are those above $HOME: an
    // inventory of ours in a world-writable sticky directory, or in another temporary
    // directory under /tmp, is used.
    let sticky = dir(home.join("sticky"), 0o1777);
    let ours = file(sticky.join("fleet.toml"), &text);
    env.run(
        &["rotate", "--inventory", &ours.display().to_string()],
        None,
    )
    .assert_code(0);
    assert!(marker.exists(), "the hook ran");
    std::fs::remove_file(&marker).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let ours = file(outside.path().join("fleet.toml"), &text);
    env.run(
        &["rotate", "--inventory", &ours.display().to_string()],
        None,
    )
    .assert_code(0);
    assert!(marker.exists(), "the hook ran");
}

#[test]
fn a_config_file_someone_else_may_change_is_exit_4_and_no_key_is_sent() {
    let mut env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    let home = env.state.path().to_owned();
    // The profile sends the key to the fake itself, so that a request that should not
    // have been sent is seen.
    env.remove_env("SIPROT_TELEPATH_BASE_URL");
    let text = format!(
        "[telepath.default]\nbase_url = \"{}\"\n",
        env.telepath_base()
    );
    let config_home = dir(home.join("config"), 0o755);
    env.set_env("XDG_CONFIG_HOME", &config_home.display().to_string());
    let siprot_dir = dir(config_home.join("siprot"), 0o755);
    let config = file(siprot_dir.join("config.toml"), &text);
    let rotate = ["rotate", "--provider", "telepath", target.id];
    let refused = |env: &TestEnv, shown: &Path, why: &str| {
        for args in [&rotate[..], &["config", "show", "--provider", "telepath"]] {
            env.run(args, None)
                .assert_code(4)
                .assert_one_line_error(&format!(
                    "the config file {} is not trusted: {why}",
                    shown.display()
                ));
        }
    };

    chown_nobody(&config);
    refused(&env, &config, "it is owned by uid 65534");
    let doctor = env.run(&["doctor"], None);
    doctor.assert_code(4);
    let failed = format!(
        "the config file {} is not trusted: it is owned by uid 65534",
        config.display()
    );
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("fail  config file: ") && l.contains(&failed)),
        "{}",
        doctor.stdout
    );
    std::os::unix::fs::lchown(&config, Some(0), Some(0)).unwrap();
    chmod(&config, 0o666);
    refused(
        &env,
        &config,
        "it is writable by group or others (mode 666)",
    );
    chmod(&config, 0o644);
    chmod(&siprot_dir, 0o775);
    refused(
        &env,
        &config,
        &format!("its directory {} is writable", siprot_dir.display()),
    );
    chmod(&siprot_dir, 0o755);
    // $XDG_CONFIG_HOME is judged too, as the top.
    chmod(&config_home, 0o757);
    refused(
        &env,
        &config,
        &format!("its directory {} is writable", config_home.display()),
    );
    chmod(&config_home, 0o755);

    // SIPROT_CONFIG naming a link to another user's file.
    let elsewhere = tempfile::tempdir().unwrap();
    let theirs = file(elsewhere.path().join("theirs.toml"), &text);
    chown_nobody(&theirs);
    let link = home.join("config.toml");
    std::os::unix::fs::symlink(&theirs, &link).unwrap();
    env.set_env("SIPROT_CONFIG", &link.display().to_string());
    refused(
        &env,
        &link,
        &format!(
            "it is a link to {}, which is owned by uid 65534",
            theirs.display()
        ),
    );
    env.remove_env("SIPROT_CONFIG");
    assert!(env.fake.requests().is_empty(), "no key was sent");
    assert_eq!(target.live(&env), target.initial);

    // The user's own file, writable by the user alone, is used.
    target.rotate(&env, &[]).assert_code(0);
    assert_eq!(env.fake.requests().len(), 1);
}

#[test]
fn a_fifo_or_device_as_a_settings_file_is_exit_4_naming_it_and_never_waited_on() {
    let mut env = TestEnv::without_keyring();
    let home = env.state.path().to_owned();
    let fifo = home.join("fifo");
    mkfifo(&fifo);
    let fifo_path = fifo.display().to_string();
    // FIFOs first: the old code waited on them, so a device (read without end) is never
    // reached there.
    let specials = [
        (fifo_path.as_str(), "it is a FIFO, not a regular file"),
        ("/dev/zero", "it is a character device, not a regular file"),
    ];

    for (path, why) in specials {
        env.set_env("SIPROT_CONFIG", path);
        for args in [
            &["config", "show"][..],
            &["rotate", "--provider", "telepath", "conn_1"],
        ] {
            run_within_10s(&env, args)
                .assert_code(4)
                .assert_one_line_error(&format!("cannot read the config file {path}: {why}"));
        }
    }
    env.remove_env("SIPROT_CONFIG");

    // The vault store's files.
    env.set_env("VAULT_ADDR", "http://127.0.0.1:1");
    let secret_get = [
        "secret",
        "get",
        "--store",
        "vault",
        "--provider",
        "telepath",
        "conn_1",
    ];
    let token_file = home.join(".vault-token");
    mkfifo(&token_file);
    run_within_10s(&env, &secret_get)
        .assert_code(4)
        .assert_one_line_error(&format!(
            "cannot read the token file {}: it is a FIFO, not a regular file",
            token_file.display()
        ));
    let doctor = run_within_10s(&env, &["doctor", "--store", "vault"]);
    doctor.assert_code(8);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("fail  vault store: ")
                && l.contains(&format!(
                    "cannot read the token file {}",
                    token_file.display()
                ))),
        "{}",
        doctor.stdout
    );
    assert!(
        !doctor.stdout.contains("readable by group"),
        "a FIFO is refused, not warned about: {}",
        doctor.stdout
    );
    std::fs::remove_file(&token_file).unwrap();

    env.set_env("VAULT_TOKEN", "fifo-test-token-1");
    let pem = file(home.join("client.pem"), "not used");
    let pem = pem.display().to_string();
    for var in ["VAULT_CACERT", "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY"] {
        for (path, why) in specials {
            let mut paths = vec![
                ("VAULT_CLIENT_CERT", pem.as_str()),
                ("VAULT_CLIENT_KEY", pem.as_str()),
            ];
            paths.retain(|(name, _)| *name != var);
            paths.push((var, path));
            run_with(&env, &secret_get, &paths)
                .assert_code(4)
                .assert_one_line_error(&format!("cannot read {var} '{path}': {why}"));
            let doctor = run_with(&env, &["doctor", "--store", "vault"], &paths);
            assert!(
                doctor
                    .stdout
                    .lines()
                    .any(|l| l.starts_with("fail  vault store: ")
                        && l.contains(&format!("{var} '{path}'"))),
                "{}",
                doctor.stdout
            );
        }
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn a_token_file_others_may_read_is_warned_about_by_doctor_and_the_commands_that_read_it() {
    let mut env = TestEnv::without_keyring();
    let token_file = file(env.state.path().join(".vault-token"), "readable-token-1\n");
    env.remember_secret("readable-token-1");
    env.set_env("VAULT_ADDR", "http://127.0.0.1:1");
    let warning = format!(
        "siprot: warning: the token file {} is readable by group or others (mode 644): chmod 600 {}",
        token_file.display(),
        token_file.display()
    );
    // Nothing listens there: a second is enough to find that out.
    let secret_get = [
        "secret",
        "get",
        "--store",
        "vault",
        "--keyring-timeout",
        "1",
        "--provider",
        "telepath",
        "conn_1",
    ];
    let run = env.run(&secret_get, None);
    assert_eq!(
        run.stderr.lines().filter(|l| *l == warning).count(),
        1,
        "one warning: {}",
        run.stderr
    );
    let doctor = env.run(&["doctor", "--store", "vault"], None);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("warn  vault token: ")
                && l.contains("readable by group or others (mode 644)")),
        "{}",
        doctor.stdout
    );

    // Only the user may read it: no warning.
    chmod(&token_file, 0o600);
    let run = env.run(&secret_get, None);
    assert!(!run.stderr.contains("readable by group"), "{}", run.stderr);
    let doctor = env.run(&["doctor", "--store", "vault"], None);
    assert!(
        !doctor.stdout.contains("readable by group"),
        "{}",
        doctor.stdout
    );
}
