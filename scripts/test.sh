#!/usr/bin/env bash
# Runs siprot's whole test suite inside a private D-Bus session with a throw-away
# gnome-keyring (never your own keyring), then the end-to-end tests once more with
# RUST_LOG=trace for every run of siprot, so that the leak checks cover all log output.
# Extra arguments go to `cargo test`.
#
#   scripts/test.sh
#   scripts/test.sh telepath      # only tests whose name contains "telepath"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
scripts/with-keyring.sh cargo test --locked "$@"
echo "test.sh: the end-to-end tests again, every siprot run with RUST_LOG=trace" >&2
SIPROT_TEST_LOG=trace exec scripts/with-keyring.sh cargo test --locked --test e2e "$@"
