# Shell shared by the scripts that run siprot against the fake providers in a private
# keyring session (scripts/demo.sh, scripts/demo-verify.sh, scripts/try-it.sh). Source it
# from the repository's root:
#
#   . scripts/lib/demo.sh
#   demo_enter_keyring "$0" "$@"     # re-runs the script inside scripts/with-keyring.sh
#   demo_work siprot-demo            # $demo_work: a temporary directory, removed at exit
#   trap demo_cleanup EXIT
#   demo_start_fakes [ARGS...]       # the fake providers; their exports in $demo_work/fake.out
#
# SIPROT_DEMO_BIN_DIR: where siprot and examples/fake-providers are (default
# target/debug, built by demo_enter_keyring).

demo_pids=()
demo_work=""

# Outside a private keyring session: installs what is missing (scripts/install-deps.sh),
# builds siprot and the fake providers unless SIPROT_DEMO_BIN_DIR names them, and runs the
# script again (its path, a script in scripts/, and its arguments given) inside
# scripts/with-keyring.sh: a private
# D-Bus session with a throw-away gnome-keyring. Inside one (SIPROT_PRIVATE_KEYRING set,
# as in the tests), returns at once.
demo_enter_keyring() {
    [ -n "${SIPROT_PRIVATE_KEYRING:-}" ] && return 0
    scripts/install-deps.sh
    # shellcheck disable=SC1091
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if [ -z "${SIPROT_DEMO_BIN_DIR:-}" ]; then
        echo "==> building siprot and the fake providers"
        cargo build --locked --quiet --bin siprot --example fake-providers
    fi
    echo "==> starting a private D-Bus session with a throw-away gnome-keyring"
    # The script by its path from the repository's root (where it runs now): "$1" may be
    # relative to the directory it was started from (./try-it.sh).
    local script="scripts/$(basename "$1")"
    shift
    exec scripts/with-keyring.sh "$script" "$@"
}

# The absolute path of the directory holding siprot and examples/fake-providers.
demo_bin_dir() {
    (cd "${SIPROT_DEMO_BIN_DIR:-${CARGO_TARGET_DIR:-target}/debug}" && pwd)
}

# Creates the work directory $demo_work (named after $1), removed by demo_cleanup.
demo_work() {
    demo_work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
}

# Stops every process in demo_pids (and waits for it), then removes $demo_work.
demo_cleanup() {
    local pid
    for pid in "${demo_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${demo_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [ -n "$demo_work" ] && rm -rf "$demo_work"
}

# Starts the fake providers on a free loopback port (extra arguments are theirs), their
# report in $demo_work/fake.out (`export NAME=VALUE` lines included) and their request log
# in $demo_work/fake.log; waits until they listen. Sets demo_fake_pid.
demo_start_fakes() {
    "$(demo_bin_dir)/examples/fake-providers" --port 0 "$@" \
        >"$demo_work/fake.out" 2>"$demo_work/fake.log" &
    demo_fake_pid=$!
    demo_pids+=("$demo_fake_pid")
    for _ in $(seq 100); do
        # The line after the last export: every provider's settings are printed.
        grep -q '^# then, for example:' "$demo_work/fake.out" 2>/dev/null && return 0
        kill -0 "$demo_fake_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$(basename "$0"): the fake providers did not start:" >&2
    cat "$demo_work/fake.log" >&2
    exit 1
}

# Exports what the fake providers printed: each provider's base URL and the API
# credentials they accept (and a keyring service of their own).
demo_export_fakes() {
    eval "$(grep '^export ' "$demo_work/fake.out")"
}
