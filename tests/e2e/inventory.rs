//! The inventory file is read only when it is a regular file of at most 16 MiB: a FIFO,
//! a device (a symlink to `/dev/zero`), a directory or a larger file is refused at once
//! with exit 4, naming the file, and nothing is sent; a missing one (the default
//! `siprot.toml` too) names `--inventory PATH`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{Run, TestEnv};

/// Runs siprot, killing it (and failing the test) if it has not exited within 10 s.
fn run_within_10s(env: &TestEnv, args: &[&str]) -> Run {
    let mut child = env.spawn(args, None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait siprot").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("siprot {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    env.finish(child, args)
}

/// A FIFO and a device in `dir` (Unix's), each with why it is refused.
#[cfg(unix)]
fn special_files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let fifo = dir.join("fifo.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let zero = dir.join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    vec![
        (fifo, "a FIFO, not a regular file"),
        (zero, "a character device, not a regular file"),
    ]
}

#[cfg(not(unix))]
fn special_files(_dir: &Path) -> Vec<(PathBuf, &'static str)> {
    Vec::new()
}

#[test]
fn an_inventory_that_is_not_a_small_regular_file_is_exit_4_and_nothing_is_sent() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_inv01", "u", "Inventory-Telepath-Pass-1");
    let dir = env.state.path();
    let directory = dir.join("directory.toml");
    std::fs::create_dir(&directory).unwrap();
    // One valid entry, then comments up to just over the limit.
    let big = dir.join("big.toml");
    let mut text = String::from("[[credential]]\nprovider = \"telepath\"\nid = \"conn_inv01\"\n");
    let comment = format!("# {}\n", "x".repeat(1021));
    while text.len() <= 16 * 1024 * 1024 {
        text.push_str(&comment);
    }
    std::fs::write(&big, text).unwrap();
    let cases = special_files(dir).into_iter().chain([
        (directory, "a directory, not a regular file"),
        (big, "bytes, over the limit of 16 MiB"),
    ]);
    for (path, why) in cases {
        let path = path.display().to_string();
        for command in ["rotate", "status"] {
            let run = run_within_10s(&env, &[command, "--inventory", &path]);
            run.assert_code(4)
                .assert_one_line_error(&format!("cannot read the inventory {path}: it is "))
                .assert_one_line_error(why);
        }
    }
    assert!(env.fake.requests().is_empty());
}

/// An empty inventory, or a `--provider`/`--tag` that selects nothing, is exit 4 naming
/// the selection for `rotate --inventory` (dry run or not) and `status`, unless
/// `--allow-empty` is given; nothing is sent either way.
#[test]
fn an_empty_selection_is_exit_4_unless_allow_empty() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_sel01", "u", "Selection-Telepath-Pass-1");
    let dir = env.state.path();
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let one = dir.join("one.toml");
    std::fs::write(
        &one,
        "[[credential]]\nprovider = \"telepath\"\nid = \"conn_sel01\"\ntags = [\"prod\"]\n",
    )
    .unwrap();
    let (empty, one) = (empty.display().to_string(), one.display().to_string());
    let cases: [(&str, &[&str], String); 4] = [
        (
            &empty,
            &[],
            format!("{empty} lists no credentials: nothing to do"),
        ),
        (
            &one,
            &["--tag", "nowhere"],
            format!("--tag nowhere matches none of the 1 credential in {one}"),
        ),
        (
            &one,
            &["--provider", "vobiz"],
            format!("--provider vobiz matches none of the 1 credential in {one}"),
        ),
        (
            &one,
            &["--provider", "telepath", "--tag", "prod", "--tag", "eu"],
            format!(
                "--provider telepath --tag prod --tag eu matches none of the 1 credential in {one}"
            ),
        ),
    ];
    for (path, selection, message) in &cases {
        for command in [&["rotate"][..], &["rotate", "--dry-run"], &["status"]] {
            let mut args = command.to_vec();
            args.extend(["--inventory", path]);
            args.extend_from_slice(selection);
            env.run(&args, None)
                .assert_code(4)
                .assert_one_line_error(message)
                .assert_one_line_error("--allow-empty");
            args.push("--allow-empty");
            env.run(&args, None).assert_code(0);
        }
    }
    assert!(env.fake.requests().is_empty());
}

/// Three mistakes in three entries (around good ones) are all reported in one run, each
/// as `file:line: message`, on one error line with exit 4, and nothing is sent.
#[test]
fn every_mistake_of_an_inventory_is_reported_in_one_run() {
    let env = TestEnv::start();
    env.fake
        .add_telepath_trunk("conn_mis01", "u", "Mistakes-Telepath-Pass-1");
    let path = env.state.path().join("fleet.toml");
    std::fs::write(
        &path,
        "# three mistakes\n\
         [[credential]]\nprovider = \"telepath\"\nid = \"conn_mis01\"\n\
         \n[[credential]]\nprovider = \"telepath\"\nid = \"conn_mis02\"\nmax_age = \"30\"\n\
         \n[[credential]]\nprovider = \"exotel\"\nid = \"user\"\n\
         \n[[credential]]\nprovider = \"vobiz\"\nid = \"cred\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let path = path.display().to_string();
    for command in ["rotate", "status"] {
        let run = env.run(&[command, "--inventory", &path], None);
        run.assert_code(4)
            .assert_one_line_error(&format!("{path} has 3 mistakes: "))
            .assert_one_line_error(&format!("{path}:6: age \"30\" needs a unit"))
            .assert_one_line_error(&format!("{path}:11: exotel needs a `device` key"))
            .assert_one_line_error(&format!("{path}:18: unknown field `colour`"));
    }
    assert!(env.fake.requests().is_empty());
}

#[test]
fn status_without_an_inventory_file_names_the_inventory_option() {
    let env = TestEnv::without_keyring();
    let args = ["status"];
    let mut cmd = env.command();
    // A directory without siprot.toml, the default inventory.
    cmd.current_dir(env.state.path())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = env.finish(cmd.spawn().expect("spawn siprot"), &args);
    run.assert_code(4)
        .assert_one_line_error("cannot read the inventory siprot.toml: ")
        .assert_one_line_error("--inventory PATH");
    assert!(env.fake.requests().is_empty());
}
