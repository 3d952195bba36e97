#!/usr/bin/env bash
# One rotation, by hand: the time of `siprot rotate --provider telepath` into a real
# gnome-keyring (a private session), against the fake providers with no added latency,
# process start included; beside it the shell peer the README compares it with (curl's
# POST, then `secret-tool store` of the answer's password), and the keyring calls of one
# rotation with their times (`-v` trace). Run by scripts/bench.sh; alone:
#
#   scripts/bench-one.sh [RUNS]        # default 100 of each
#
# SIPROT_DEMO_BIN_DIR: the directory of release binaries to time (default target/release,
# built by scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export SIPROT_DEMO_BIN_DIR="${SIPROT_DEMO_BIN_DIR:-$PWD/target/release}"
. scripts/lib/demo.sh
demo_enter_keyring "$0" "$@"

runs="${1:-100}"
demo_work siprot-bench-one
work=$demo_work
trap demo_cleanup EXIT
demo_start_fakes --quiet
demo_export_fakes
export XDG_STATE_HOME="$work/state"
siprot="$(demo_bin_dir)/siprot"
trunk=conn_abc123xyz

# The mean and median of the per-run times (ms) in a file, one per line.
summary() {
    sort -n "$1" | awk '{ t[NR] = $1; s += $1 } END {
        m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
        printf "mean %.1f ms, median %.1f ms (%d runs)", s / NR, m, NR }'
}

# Runs "$@" $runs times, one time in ms per line of $work/times.
time_runs() {
    : >"$work/times"
    local start end
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        "$@" >/dev/null
        end=$(date +%s%N)
        echo "$(( (end - start) / 1000 ))" | awk '{ printf "%.3f\n", $1 / 1000 }' >>"$work/times"
    done
}

"$siprot" rotate --provider telepath "$trunk" >/dev/null # the first rotation: 3 writes, not timed
time_runs "$siprot" rotate --provider telepath "$trunk"
echo "siprot rotate --provider telepath (keyring, no latency): $(summary "$work/times")"

shell_peer() {
    curl -sS --fail -X POST -H "Authorization: Bearer $TELEPATH_API_KEY" \
        "$SIPROT_TELEPATH_BASE_URL/trunks/$trunk/rotate-password" \
        | sed -n 's/.*"sip_password":"\([^"]*\)".*/\1/p' | tr -d '\n' \
        | secret-tool store --label=peer service siprot-peer username "telepath/$trunk"
}
time_runs shell_peer
echo "shell peer (curl, then secret-tool store):            $(summary "$work/times")"

echo "keyring calls of one rotation (siprot -v trace):"
RUST_LOG=siprot=trace "$siprot" rotate --provider telepath "$trunk" 2>&1 >/dev/null \
    | grep -E "keyring call|keyring: " | sed 's/^/    /'
