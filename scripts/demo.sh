#!/usr/bin/env bash
# The main job, on a fresh Debian/Ubuntu machine, without any provider account:
# builds siprot, starts the fake providers and a private keyring, rotates one credential
# at each provider, and shows `secret-tool lookup` finding the new secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

if [ -z "${SIPROT_PRIVATE_KEYRING:-}" ]; then
    scripts/install-deps.sh
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    echo "==> building siprot and the fake providers"
    cargo build --locked --quiet --bin siprot --example fake-providers
    echo "==> starting a private D-Bus session with a throw-away gnome-keyring"
    exec scripts/with-keyring.sh "$0" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/siprot-demo.XXXXXX")
fake_pid=""
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$target/debug/examples/fake-providers" --port 0 >"$work/fake.out" 2>"$work/fake.log" &
fake_pid=$!
for _ in $(seq 100); do
    grep -q '^export VOBIZ_AUTH_TOKEN=' "$work/fake.out" 2>/dev/null && break
    sleep 0.1
done
grep -q '^export VOBIZ_AUTH_TOKEN=' "$work/fake.out" || {
    echo "demo: the fake providers did not start:" >&2
    cat "$work/fake.log" >&2
    exit 1
}
echo "==> $(head -n 1 "$work/fake.out")"
eval "$(grep '^export ' "$work/fake.out")"
export XDG_STATE_HOME="$work/state"
export PATH="$PWD/$target/debug:$PATH"

show() {
    echo
    echo "\$ $*"
    "$@"
}

show siprot rotate --provider telepath conn_abc123xyz
show secret-tool lookup service "$SIPROT_KEYRING_SERVICE" username telepath/conn_abc123xyz
echo

show siprot rotate --provider exotel 6f1c2d3e-aaaa-bbbb-cccc-0123456789ab --device dev_01
show secret-tool lookup service "$SIPROT_KEYRING_SERVICE" \
    username "exotel/$EXOTEL_ACCOUNT_SID/6f1c2d3e-aaaa-bbbb-cccc-0123456789ab/dev_01"
echo

show siprot rotate --provider vobiz aabbccdd-1234-5678-90ab-cdef12345678 --json
show secret-tool lookup service "$SIPROT_KEYRING_SERVICE" \
    username "vobiz/$VOBIZ_AUTH_ID/aabbccdd-1234-5678-90ab-cdef12345678"
echo

show siprot rotate --provider telepath conn_abc123xyz --json
show siprot secret get --provider telepath conn_abc123xyz --previous
echo "(the password before the second rotation; the current one is in telepath/conn_abc123xyz)"
show siprot check-password --provider exotel <<<"weak" || echo "(exit $?: fails the policy)"
echo
echo "==> the fake providers saw:"
sed 's/^/    /' "$work/fake.log"
echo "==> audit log ($XDG_STATE_HOME/siprot/audit.jsonl):"
sed 's/^/    /' "$XDG_STATE_HOME/siprot/audit.jsonl"
echo
echo "==> done: three credentials rotated; the private keyring and the fake providers are gone."
