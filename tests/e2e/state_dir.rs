//! The state directory is trusted as ssh trusts `~/.ssh`: a symbolic link, a directory
//! owned by someone else or writable by group or others, or one siprot cannot write is
//! refused with exit 4 before anything is sent, and nothing is written through a link.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Target, TestEnv};

const PRECIOUS: &str = "precious contents, not siprot's\n";

fn seeded() -> (TestEnv, Target) {
    let env = TestEnv::start();
    let target = Target::TELEPATH;
    target.seed(&env);
    (env, target)
}

fn private_dir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
    chmod(path, 0o700);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A file outside the state directory that a planted link points to.
fn victim(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("victim");
    std::fs::write(&path, PRECIOUS).unwrap();
    path
}

/// A rotation that must be refused with exit 4, nothing sent, `fragment` on stderr.
#[track_caller]
fn assert_refused(env: &TestEnv, target: Target, fragment: &str) {
    let sent = env.fake.requests().len();
    let run = target.rotate(env, &[]);
    run.assert_code(4).assert_one_line_error(fragment);
    assert_eq!(env.fake.requests().len(), sent, "nothing was sent");
    assert_eq!(target.live(env), target.initial);
    assert_eq!(
        env.lookup(&target.entry(env)).as_deref(),
        Some(target.initial)
    );
}

#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
    let (env, target) = seeded();
    target.rotate(&env, &[]).assert_code(0);
    let locks: Vec<_> = std::fs::read_dir(env.state_root().join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(locks.len(), 1);
    assert_eq!(
        std::fs::metadata(&locks[0]).unwrap().permissions().mode() & 0o777,
        0o600,
        "lock files are private"
    );
    let outside = tempfile::tempdir().unwrap();
    let victim = victim(&outside);
    std::fs::remove_file(&locks[0]).unwrap();
    std::os::unix::fs::symlink(&victim, &locks[0]).unwrap();
    let live = target.live(&env);
    let sent = env.fake.requests().len();
    let run = target.rotate(&env, &[]);
    run.assert_code(4).assert_one_line_error("symbolic link");
    assert!(run.stderr.contains(&locks[0].display().to_string()));
    assert_eq!(env.fake.requests().len(), sent, "nothing was sent");
    assert_eq!(target.live(&env), live);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
}

#[test]
fn a_symlinked_audit_log_is_refused_and_its_target_untouched() {
    let (env, target) = seeded();
    private_dir(&env.state_root());
    let outside = tempfile::tempdir().unwrap();
    let victim = victim(&outside);
    std::os::unix::fs::symlink(&victim, env.state_root().join("audit.jsonl")).unwrap();
    assert_refused(&env, target, "audit log");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
}

#[test]
fn a_symlinked_recovery_directory_is_refused() {
    let (env, target) = seeded();
    private_dir(&env.state_root());
    let outside = tempfile::tempdir().unwrap();
    chmod(outside.path(), 0o777);
    std::os::unix::fs::symlink(outside.path(), env.state_root().join("recovery")).unwrap();
    assert_refused(&env, target, "symbolic link");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn state_and_recovery_directories_writable_by_others_are_refused() {
    let (env, target) = seeded();
    let root = env.state_root();
    env.recovery_dir();
    chmod(&root, 0o777);
    assert_refused(&env, target, &format!("chmod 700 {}", root.display()));
    chmod(&root, 0o700);
    chmod(&root.join("recovery"), 0o777);
    assert_refused(
        &env,
        target,
        &format!("chmod 700 {}", root.join("recovery").display()),
    );
    chmod(&root.join("recovery"), 0o700);
    target.rotate(&env, &[]).assert_code(0);
}

#[test]
fn a_state_directory_owned_by_another_user_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let (env, target) = seeded();
    let root = env.state_root();
    private_dir(&root);
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    assert_refused(&env, target, "not by you");
}

#[test]
fn a_read_only_state_directory_is_exit_4_naming_it() {
    let (mut env, target) = seeded();
    let root = env.state_root();
    private_dir(&root);
    // Refused from its mode, so even root (whom 0500 does not stop) is told to fix it.
    chmod(&root, 0o500);
    assert_refused(&env, target, &root.display().to_string());
    chmod(&root, 0o700);
    // A state directory that cannot be created: XDG_STATE_HOME is a file.
    let file = env.state.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();
    env.set_env("XDG_STATE_HOME", &file.display().to_string());
    assert_refused(&env, target, &file.join("siprot").display().to_string());
}
