#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with a fresh, unlocked gnome-keyring, so
# that nothing touches the keyring of the person or machine running it.
#
#   scripts/with-keyring.sh cargo test
#
# The keyring is deleted when the command exits: never rotate a real credential in it
# (the provider would keep a password nobody has).
#
# Needs the Debian/Ubuntu packages dbus, gnome-keyring and libsecret-tools (secret-tool).
set -euo pipefail

if [ -z "${SIPROT_PRIVATE_KEYRING:-}" ]; then
    for tool in dbus-run-session gnome-keyring-daemon; do
        command -v "$tool" >/dev/null || {
            echo "with-keyring: $tool not found; install: sudo apt-get install dbus gnome-keyring libsecret-tools" >&2
            exit 127
        }
    done
    SIPROT_PRIVATE_KEYRING=$(mktemp -d "${TMPDIR:-/tmp}/siprot-keyring.XXXXXX")
    export SIPROT_PRIVATE_KEYRING
    trap 'rm -rf "$SIPROT_PRIVATE_KEYRING"' EXIT
    status=0
    dbus-run-session -- "$0" "$@" || status=$?
    exit "$status"
fi

# Inside the private bus: keyring files live in a throw-away directory.
export XDG_DATA_HOME="$SIPROT_PRIVATE_KEYRING/data"
mkdir -p "$XDG_DATA_HOME"
# An empty unlock password does not work; any throw-away one does.
eval "$(printf %s throwaway | gnome-keyring-daemon --unlock --components=secrets)"
# The daemon started here: the one whose environment names this session's directory (the
# newest gnome-keyring-daemon may be another session's, such as a test's own).
daemon_pid=""
for pid in $(pgrep -u "$(id -u)" -f gnome-keyring-daemon || true); do
    environ=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)
    case $'\n'"$environ"$'\n' in
        *$'\n'"SIPROT_PRIVATE_KEYRING=$SIPROT_PRIVATE_KEYRING"$'\n'*) daemon_pid=$pid ;;
    esac
done
cleanup() { [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true; }
trap cleanup EXIT
"$@"
