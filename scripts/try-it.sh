#!/usr/bin/env bash
# Try siprot by hand without any provider account and without touching your own keyring,
# state or configuration: starts the fake providers (examples/fake-providers), a private
# D-Bus session with a throw-away gnome-keyring, a private state directory
# (XDG_STATE_HOME) and configuration directory (XDG_CONFIG_HOME), exports the fake
# providers' base URLs and the API credentials they accept, puts siprot on PATH and opens
# your $SHELL there with a banner of commands to try. Leaving the shell stops the fakes and
# the keyring and deletes everything: every password rotated in it is gone with it.
#
#   scripts/try-it.sh           # interactive: a shell in the practice session
#   scripts/try-it.sh --check   # runs the banner's commands without a shell; fails if one fails
#
# SIPROT_DEMO_BIN_DIR: where siprot and examples/fake-providers are (default target/debug,
# built here).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=interactive
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: scripts/try-it.sh [--check]" >&2; exit 2 ;;
esac

. scripts/lib/demo.sh
demo_enter_keyring "$0" "$@"

bin_dir="$(demo_bin_dir)"
demo_work siprot-try-it
work=$demo_work
trap demo_cleanup EXIT
demo_start_fakes
demo_export_fakes
# A keyring service of this session's own (the keyring is private already; this keeps a
# run inside another private session, such as the tests', apart from the rest).
export SIPROT_KEYRING_SERVICE="siprot-try-it-$$"
export XDG_STATE_HOME="$work/state"
export XDG_CONFIG_HOME="$work/config"
mkdir -p "$XDG_STATE_HOME" "$XDG_CONFIG_HOME"
export PATH="$bin_dir:$PATH"

telepath=conn_abc123xyz
exotel=6f1c2d3e-aaaa-bbbb-cccc-0123456789ab
vobiz=aabbccdd-1234-5678-90ab-cdef12345678
# The three demo credentials as a fleet: siprot.toml in the shell's directory, where
# `--inventory` and `status` look by default.
cat >"$work/siprot.toml" <<TOML
[[credential]]
provider = "telepath"
id = "$telepath"
max_age = "30d"

[[credential]]
provider = "exotel"
id = "$exotel"
device = "dev_01"

[[credential]]
provider = "vobiz"
id = "$vobiz"
description = "Rotated by siprot on {date}"
TOML

# The banner's commands: printed as they are, and run one by one by --check. A line
# starting with '#' is a comment.
commands=(
    "# is everything in place? (keyring, state directory, providers' settings)"
    "siprot doctor"
    "# Telepath makes the new password itself; siprot stores it in the keyring"
    "siprot rotate --provider telepath $telepath"
    "siprot secret get --provider telepath $telepath"
    "secret-tool lookup service \"\$SIPROT_KEYRING_SERVICE\" username telepath/$telepath; echo"
    "# API keys can live in the keyring instead of the environment (typed without echo, or --with-token)"
    "printf '%s\\n' \"\$TELEPATH_API_KEY\" | siprot login --provider telepath --with-token"
    "env -u TELEPATH_API_KEY siprot config show --provider telepath"
    "# Exotel and Vobiz: siprot generates a password that passes the provider's policy"
    "siprot rotate --provider exotel $exotel --device dev_01 --json"
    "siprot rotate --provider vobiz $vobiz --description 'my first rotation'"
    "siprot disable --provider vobiz $vobiz && siprot enable --provider vobiz $vobiz"
    "siprot generate --provider exotel | siprot check-password --provider exotel"
    "# a post-rotation hook gets the new password on its standard input"
    "siprot rotate --provider telepath $telepath --exec 'wc -c'"
    "siprot secret get --provider telepath $telepath --previous"
    "# the three as a fleet (siprot.toml here), then their ages and what is left to recover"
    "siprot rotate --inventory --dry-run"
    "siprot rotate --inventory"
    "siprot status"
    "siprot recover --dry-run"
    "siprot rotate --inventory --if-older-than 1d"
)

echo "==> fake providers: $(head -n 1 "$work/fake.out")"
echo "==> files (removed at the end): $work"

if [ "$mode" = check ]; then
    cd "$work"
    for command in "${commands[@]}"; do
        case "$command" in "#"*) continue ;; esac
        echo "\$ $command"
        status=0
        # Never a terminal question (Telepath rotation, disable): --check runs unattended.
        bash -o pipefail -c "$command" </dev/null || status=$?
        if [ "$status" -ne 0 ]; then
            echo "try-it: failed (exit $status): $command" >&2
            exit 1
        fi
    done
    echo "try-it: ok"
    exit 0
fi

banner() {
    cat <<TEXT

This is a practice session: siprot talks to fake Telepath, Exotel and Vobiz APIs on
127.0.0.1, whose settings and API keys are exported here (env | grep -e SIPROT_ -e _API_
-e EXOTEL_ -e VOBIZ_). The keyring is a throw-away one: every password rotated into it is
gone when you leave this shell (exit or Ctrl-D), with the fakes, the state directory
($XDG_STATE_HOME) and the configuration directory ($XDG_CONFIG_HOME).
Your own keyring, ~/.local/state/siprot and ~/.config/siprot are never touched.

Try:

TEXT
    local command
    for command in "${commands[@]}"; do
        echo "  $command"
    done
    echo
}
banner

shell="${SHELL:-/bin/bash}"
status=0
cd "$work"
if [ "$(basename "$shell")" = bash ]; then
    # bash: the user's ~/.bashrc, then siprot first on PATH (a .bashrc may reset it).
    rc="$work/bashrc"
    {
        [ -f "$HOME/.bashrc" ] && echo ". '$HOME/.bashrc'"
        echo "export PATH='$bin_dir':\"\$PATH\""
        echo "PS1='(siprot try-it) \\w\\$ '"
    } >"$rc"
    "$shell" --rcfile "$rc" -i || status=$?
else
    "$shell" -i || status=$?
fi
echo "==> stopping the fake providers and the throw-away keyring"
exit "$status"
