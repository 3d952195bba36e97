#!/usr/bin/env bash
# The main job, on a fresh Debian/Ubuntu machine, without any provider account:
# builds siprot, starts the fake providers and a private keyring, rotates one credential
# at each provider, and shows `secret-tool lookup` finding the new secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/demo.sh
demo_enter_keyring "$0" "$@"

demo_work siprot-demo
work=$demo_work
trap demo_cleanup EXIT
demo_start_fakes
echo "==> $(head -n 1 "$work/fake.out")"
demo_export_fakes
export XDG_STATE_HOME="$work/state"
export PATH="$(demo_bin_dir):$PATH"

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
