//! The repository around the code: the licence files agree with `Cargo.toml`, and the
//! GitHub workflows pass the checks `.ci/run` runs on them (the workflow schema and
//! zizmor), which do catch an unsafe workflow.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/check-workflows.sh` on `dir`. Its tools must already be installed: the
/// README's test command (`scripts/test.sh`) installs them through `scripts/install-deps.sh`
/// before any test starts, since two tests here run the script at the same moment and two
/// installs into one directory break each other.
fn check_workflows(dir: &Path) -> std::process::Output {
    for tool in ["zizmor", "check-jsonschema"] {
        assert!(
            root().join("target/lint-venv/bin").join(tool).is_file(),
            "{tool} is not in target/lint-venv: scripts/install-deps.sh (run by scripts/test.sh) \
             installs it before the tests start, so that no test installs it"
        );
    }
    Command::new(root().join("scripts/check-workflows.sh"))
        .arg(dir)
        .output()
        .expect("scripts/check-workflows.sh runs")
}

#[test]
fn the_top_level_licence_is_the_one_cargo_toml_declares() {
    let licence = std::fs::read_to_string(root().join("LICENSE")).expect("a top-level LICENSE");
    let declared = env!("CARGO_PKG_LICENSE");
    assert_eq!(declared, "MIT OR Apache-2.0");
    assert!(
        licence.contains(&format!("SPDX-License-Identifier: {declared}")),
        "{licence}"
    );
    for file in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(licence.contains(file), "LICENSE names {file}");
        assert!(root().join(file).is_file(), "{file} exists");
    }
}

#[test]
fn our_workflows_pass_the_schema_and_zizmor_and_an_unsafe_one_does_not() {
    let ours = check_workflows(&root().join(".github/workflows"));
    assert!(
        ours.status.success(),
        "{}{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );
    let names: Vec<String> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for expected in ["ci.yml", "release.yml"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }

    // An unpinned action, a checkout that keeps its credentials and a title expanded
    // into a shell command: each is a finding at medium or above.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("unsafe.yml"),
        "name: unsafe\non: pull_request\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    \
         steps:\n      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
    )
    .unwrap();
    let unsafe_one = check_workflows(dir.path());
    let report = String::from_utf8_lossy(&unsafe_one.stdout).into_owned()
        + &String::from_utf8_lossy(&unsafe_one.stderr);
    assert!(!unsafe_one.status.success(), "{report}");
    for finding in ["unpinned-uses", "template-injection"] {
        assert!(report.contains(finding), "{finding} in {report}");
    }

    // Not a workflow at all: the schema check refuses it.
    std::fs::write(
        dir.path().join("unsafe.yml"),
        "name: broken\non: push\njobs: 5\n",
    )
    .unwrap();
    assert!(!check_workflows(dir.path()).status.success());
}

#[test]
fn a_release_archive_holds_the_binary_and_licences_with_a_checksum_that_verifies() {
    // The release workflow's packaging step, on this test run's own build of siprot.
    let target = "x86_64-unknown-linux-gnu";
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(root().join("scripts/package-release.sh"))
        .arg(target)
        .arg(out.path())
        .env("SIPROT_BINARY", env!("CARGO_BIN_EXE_siprot"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let archive = format!("siprot-{version}-{target}.tar.gz");
    let check = Command::new("sha256sum")
        .arg("--check")
        .arg(format!("{archive}.sha256"))
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(out.path().join(&archive))
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for file in [
        "siprot",
        "README.md",
        "LICENSE",
        "LICENSE-MIT",
        "LICENSE-APACHE",
    ] {
        assert!(
            list.lines()
                .any(|l| l == format!("siprot-{version}-{target}/{file}")),
            "{file} in {list}"
        );
    }
}

#[test]
fn the_readme_s_scheduled_rotation_workflow_passes_the_same_checks() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\nname: rotate SIP passwords")
        .expect("the README's CI example")
        + "```yaml\n".len();
    let end = start + readme[start..].find("```\n").expect("its end");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rotate.yml"), &readme[start..end]).unwrap();
    let checked = check_workflows(dir.path());
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
