#!/usr/bin/env bash
# Runs siprot's whole test suite inside a private D-Bus session with a throw-away
# gnome-keyring (never your own keyring). Extra arguments go to `cargo test`.
#
#   scripts/test.sh
#   scripts/test.sh telepath      # only tests whose name contains "telepath"
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
exec scripts/with-keyring.sh cargo test --locked "$@"
