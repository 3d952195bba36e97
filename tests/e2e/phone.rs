//! A real phone kept registering through a rotation: baresip registered to the tests'
//! Kamailio as a phone registers to its provider (Telepath's SIP user), its password
//! rotated by siprot with a hook that rewrites baresip's `accounts` file and makes it
//! re-register, then verified; and the same with a hook that fails, mended by
//! `siprot exec`.
//!
//! The hook reloads baresip through its `cons` control socket (`/uadel` the account, then
//! `/uanew` with the rewritten line) rather than restarting it: baresip keeps running under
//! the test's control, and the hook waits until baresip reports the new registration.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::baresip::Baresip;
use crate::support::kamailio::{Algorithm, Binding, Kamailio};
use crate::support::{Target, TestEnv};

/// The phone's first password: it has every special character Telepath generates
/// (`@!#%^*`), so the accounts file and the control socket are shown to carry them.
const INITIAL: &str = "Init@!#%^*-Phone-1";
const USER: &str = "sipuser01";
const T: Target = Target::TELEPATH;

/// The hook: `reload-baresip DIR CONS_PORT`. Reads the new password from standard input
/// (nowhere else), writes it into DIR/accounts as `auth_pass` with shell builtins only (no
/// child process sees it), makes baresip re-register through its cons socket and waits
/// (at most 10 s) until baresip reports the registration OK; exits 1 if it reports ERR.
/// Records its argv (and its parent's) and environment in DIR for the leak checks.
/// Never prints what the socket answers: baresip echoes the typed line, password included.
const RELOAD_HOOK: &str = r#"#!/bin/bash
set -eu
dir=$1 port=$2
{ printf '%s\n' "$0" "$@"; tr '\0' '\n' < "/proc/$PPID/cmdline"; echo; } > "$dir/hook.argv"
env > "$dir/hook.env"
IFS= read -r password
line=$(cat "$dir/accounts")
aor=${line#<}; aor=${aor%%>*}
head=${line%%;auth_pass=*}
tail=${line#*;auth_pass=}
case $tail in *\;*) tail=";${tail#*;}" ;; *) tail= ;; esac
umask 077
printf '%s;auth_pass=%s%s\n' "$head" "$password" "$tail" > "$dir/accounts.new"
mv "$dir/accounts.new" "$dir/accounts"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '/uadel %s\n' "$aor" >&3
printf '/uanew %s\n' "$(cat "$dir/accounts")" >&3
tries=0
while [ "$tries" -lt 50 ]; do
    tries=$((tries + 1))
    sleep 0.2
    printf '/reginfo\n' >&3
    state=
    while IFS= read -r -t 0.3 reply <&3; do
        case $reply in
            *"$aor "*OK*) state=OK ;;
            *"$aor "*ERR*) state=ERR ;;
        esac
    done
    if [ "$state" = OK ]; then
        echo "baresip registered $aor again"
        exit 0
    fi
    if [ "$state" = ERR ]; then
        echo "baresip could not register $aor" >&2
        exit 1
    fi
done
echo "baresip did not answer the registration of $aor in time" >&2
exit 1
"#;

/// A hook that cannot update the phone: it takes the password and fails before touching
/// baresip, as when the phone's configuration cannot be written.
const FAILING_HOOK: &str =
    "#!/bin/sh\ncat > /dev/null\necho 'cannot write the phone configuration' >&2\nexit 1\n";

/// A test world: the fake providers sharing their SIP users with a fresh Kamailio, the
/// Telepath trunk at the fake and in the keyring with [`INITIAL`], and baresip registered
/// with it. Fields drop in order: baresip before the registrar it unregisters from.
struct Phone {
    baresip: Baresip,
    kamailio: Kamailio,
    env: TestEnv,
}

impl Phone {
    fn start() -> Self {
        let env = TestEnv::start();
        let kamailio = Kamailio::start(Algorithm::Md5);
        env.fake.share_sip_users(&kamailio.subscriber_table());
        env.fake.add_telepath_trunk(T.id, USER, INITIAL);
        env.store(&T.entry(&env), INITIAL);
        let baresip = Baresip::start(&kamailio, USER, INITIAL);
        Self {
            baresip,
            kamailio,
            env,
        }
    }

    /// Kamailio's bindings of the phone's SIP user.
    fn bindings(&self) -> Vec<Binding> {
        self.kamailio
            .bindings()
            .into_iter()
            .filter(|b| b.aor == USER)
            .collect()
    }

    /// The phone's one binding before the rotation (a registration by baresip).
    fn first_binding(&self) -> Binding {
        let bindings = self.bindings();
        assert_eq!(bindings.len(), 1, "{bindings:?}");
        assert!(
            bindings[0].user_agent.starts_with("baresip"),
            "{bindings:?}"
        );
        bindings[0].clone()
    }

    /// Writes an executable script into the test's directory.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.env.state.path().join(name);
        std::fs::write(&path, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The `--exec` command of the reload hook for this phone.
    fn reload_hook(&self) -> String {
        let hook = self.script("reload-baresip", RELOAD_HOOK);
        format!(
            "'{}' '{}' {}",
            hook.display(),
            self.baresip.dir().display(),
            self.baresip.cons_port
        )
    }

    /// `siprot verify` of the stored password, with the previous one expected rejected.
    fn verify(&self) -> crate::support::Run {
        self.env.run(
            &[
                "verify",
                "--registrar",
                &self.kamailio.registrar("udp"),
                "-p",
                T.name,
                T.id,
                "--expect-rejected-previous",
                "--json",
            ],
            None,
        )
    }

    /// Asserts that baresip registered again after `since` (a new Call-ID, a later
    /// change than `first`), which Kamailio accepted only with the password the provider
    /// holds now (its user table has no other), and returns that binding.
    #[track_caller]
    fn assert_registered_again(&self, first: &Binding, since: u64) -> Binding {
        assert!(
            self.baresip
                .wait_for_registration("OK", Duration::from_secs(10)),
            "baresip is not registered: {}",
            self.baresip.registration()
        );
        let bindings = self.bindings();
        let fresh = bindings
            .iter()
            .find(|b| b.call_id != first.call_id)
            .unwrap_or_else(|| panic!("no new registration of baresip: {bindings:?}"));
        assert!(fresh.user_agent.starts_with("baresip"), "{bindings:?}");
        assert!(
            fresh.last_modified >= since,
            "{fresh:?} is older than {since}"
        );
        assert_eq!(
            self.baresip.configured_password(),
            T.live(&self.env),
            "baresip's accounts file holds the provider's password"
        );
        fresh.clone()
    }

    /// No secret the test knows of (API keys, old and new passwords) is in the reload
    /// hook's argv (nor its parent's) or environment, and no API key variable reached it.
    #[track_caller]
    fn assert_hook_saw_no_secret(&self) {
        let read = |name: &str| {
            let path = self.baresip.dir().join(name);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let (argv, environment) = (read("hook.argv"), read("hook.env"));
        assert!(argv.contains("reload-baresip"), "{argv}");
        assert!(environment.contains("SIPROT_PROVIDER=telepath"));
        let mut secrets = self.env.known_secrets();
        secrets.push(T.live(&self.env));
        assert!(secrets.contains(&INITIAL.to_owned()), "{secrets:?}");
        assert!(secrets.len() > 3, "the leak check knows the API keys");
        for secret in &secrets {
            assert!(!argv.contains(secret), "a secret is in the hook's argv");
            assert!(
                !environment.contains(secret),
                "a secret is in the hook's environment"
            );
        }
        for var in ["TELEPATH_API_KEY", "EXOTEL_API_KEY", "VOBIZ_AUTH_TOKEN"] {
            assert!(
                !environment.contains(&format!("{var}=")),
                "{var} reached the hook"
            );
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Asserts that siprot's verification REGISTER changed none of the phone's bindings.
#[track_caller]
fn assert_same_bindings(before: &[Binding], after: &[Binding]) {
    let key = |b: &Binding| {
        (
            b.contact.clone(),
            b.call_id.clone(),
            b.cseq,
            b.last_modified,
            b.user_agent.clone(),
        )
    };
    assert_eq!(
        before.iter().map(key).collect::<Vec<_>>(),
        after.iter().map(key).collect::<Vec<_>>(),
        "siprot's REGISTER changed the phone's bindings"
    );
}

#[test]
fn the_hook_re_registers_the_phone_with_the_new_password_and_verify_leaves_its_binding_alone() {
    let phone = Phone::start();
    let first = phone.first_binding();
    let since = now();
    let exec = phone.reload_hook();
    let run = phone.env.run(
        &T.rotate_args(&[
            "--exec",
            &exec,
            "--verify",
            &phone.kamailio.registrar("udp"),
            "--expect-rejected-previous",
            "--json",
        ]),
        None,
    );
    run.assert_code(0);
    let json = run.json();
    assert_eq!(json["hook"]["status"], "ok", "{json}");
    assert_eq!(
        json["hook"]["output_tail"],
        "baresip registered sip:sipuser01@127.0.0.1 again"
    );
    assert_eq!(json["verified"], true, "{json}");
    let verification = &json["verification"];
    assert_eq!(verification["result"], "ok", "{}", phone.kamailio.log());
    assert_eq!(verification["username"], USER);
    // The old password, the one baresip had, is dead at the registrar.
    assert_eq!(verification["previous"]["result"], "rejected");
    assert_eq!(verification["previous"]["status"], 401);
    // siprot's REGISTER saw the phone's binding, which the hook had renewed, and kept it.
    assert!(
        verification["bindings"].as_u64().unwrap_or(0) >= 1,
        "{json}"
    );
    let live = T.live(&phone.env);
    assert_ne!(live, INITIAL);
    T.assert_consistent(&phone.env);
    let fresh = phone.assert_registered_again(&first, since);
    phone.assert_hook_saw_no_secret();

    // The hook and verification done, siprot's REGISTER left the phone registered as it
    // was: a verify now changes no binding and adds none of its own.
    let before = phone.bindings();
    assert!(
        before.iter().any(|b| b.call_id == fresh.call_id),
        "{before:?}"
    );
    let run = phone.verify();
    run.assert_code(0);
    assert_eq!(run.json()["bindings"], before.len());
    assert_eq!(run.json()["previous"]["result"], "rejected");
    let after = phone.bindings();
    assert_same_bindings(&before, &after);
    assert!(after.iter().all(|b| b.user_agent.starts_with("baresip")));
    assert_eq!(phone.baresip.registration(), "OK");
}

#[test]
fn a_failing_hook_leaves_the_phone_on_the_old_password_until_siprot_exec_updates_it() {
    let phone = Phone::start();
    let first = phone.first_binding();
    let since = now();
    let failing = phone.script("phone-hook-fails", FAILING_HOOK);
    let run = phone.env.run(
        &T.rotate_args(&[
            "--exec",
            &format!("'{}'", failing.display()),
            "--verify",
            &phone.kamailio.registrar("udp"),
            "--json",
        ]),
        None,
    );
    run.assert_code(11);
    let json = run.json();
    assert_eq!(json["hook"]["status"], "failed", "{json}");
    assert_eq!(json["hook"]["exit_code"], 1);
    assert_eq!(json["verify_skipped"], "the hook failed", "{json}");
    assert!(
        run.stderr
            .contains("stored, but the hook failed (exit 1): run it again with `siprot exec"),
        "{}",
        run.stderr
    );

    // The new password is stored all the same: `secret get` prints the provider's.
    let live = T.live(&phone.env);
    assert_ne!(live, INITIAL);
    T.assert_consistent(&phone.env);
    let get = phone
        .env
        .run(&["secret", "get", "--provider", T.name, T.id], None);
    get.assert_code(0);
    assert_eq!(get.stdout.trim_end(), live);

    // The phone still has the old password: registering again with it (as at its next
    // refresh) is refused, and Kamailio holds no registration of it since the rotation.
    assert_eq!(phone.baresip.configured_password(), INITIAL);
    phone.baresip.reload();
    assert!(
        phone
            .baresip
            .wait_for_registration("ERR", Duration::from_secs(10)),
        "baresip registered with the old password: {}",
        phone.baresip.registration()
    );
    let bindings = phone.bindings();
    assert!(
        bindings.iter().all(|b| b.call_id == first.call_id),
        "{bindings:?}"
    );

    // `siprot exec` with the working hook gives the phone the stored password.
    let exec = phone.reload_hook();
    let again = phone.env.run(
        &[
            "exec",
            "--provider",
            T.name,
            T.id,
            "--exec",
            &exec,
            "--json",
        ],
        None,
    );
    again.assert_code(0);
    assert_eq!(again.json()["hook"]["status"], "ok", "{}", again.stdout);
    assert_eq!(T.live(&phone.env), live, "exec rotated nothing");
    phone.assert_registered_again(&first, since);
    phone.assert_hook_saw_no_secret();
    let run = phone.verify();
    run.assert_code(0);
    assert_eq!(run.json()["previous"]["result"], "rejected");
}

/// The hook's script handles an `accounts` line whose `auth_pass` is the last parameter,
/// and never passes the password to a child process: checked without siprot or baresip.
#[test]
fn the_reload_hook_rewrites_only_the_password_of_the_accounts_line() {
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("reload-baresip");
    std::fs::write(&hook, RELOAD_HOOK).unwrap();
    for (line, expected) in [
        (
            "<sip:u@127.0.0.1>;auth_pass=old;regint=60",
            "<sip:u@127.0.0.1>;auth_pass=N3w@!#%^*;regint=60",
        ),
        (
            "<sip:u@127.0.0.1>;regint=60;auth_pass=old",
            "<sip:u@127.0.0.1>;regint=60;auth_pass=N3w@!#%^*",
        ),
    ] {
        std::fs::write(dir.path().join("accounts"), format!("{line}\n")).unwrap();
        // No control socket listens on port 1: the hook fails after writing the file.
        let mut child = std::process::Command::new("bash")
            .arg(&hook)
            .arg(dir.path())
            .arg("1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"N3w@!#%^*\n")
            .unwrap();
        assert!(!child.wait().unwrap().success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("accounts")).unwrap(),
            format!("{expected}\n")
        );
        assert!(!Path::new(&dir.path().join("accounts.new")).exists());
    }
}
