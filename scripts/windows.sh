#!/usr/bin/env bash
# Builds siprot for Windows (x86_64-pc-windows-gnu) on Debian with warnings denied
# (library, binary, tests and examples) and runs clippy on it (warnings denied too); then
# runs its unit tests and the keyring's store conformance suite as Windows programs under
# Wine, and the Windows end-to-end subset (tests/wine.rs) with siprot.exe under Wine
# against the fake providers, which run natively on 127.0.0.1. `.ci/run` calls it after
# the Linux tests; run it by hand too:
#
#   scripts/windows.sh            # install what is missing, build, lint, test under Wine
#   scripts/windows.sh --build    # build and lint only
#
# Everything comes from Debian packages: Debian's rustc/cargo (rustc-web, 1.96) build the
# Windows standard library from its source package (rust-web-src, `-Zbuild-std`, which
# needs RUSTC_BOOTSTRAP=1 on a stable compiler), the mingw-w64 toolchain links, wine64 runs.
# Wine 8 lacks `ProcessPrng` (bcryptprimitives.dll), which Rust's standard library calls
# for random bytes: a shim exporting it over RtlGenRandom (scripts/wine/processprng.c) is
# built with the mingw compiler into the Wine prefix.
#
# Build output goes to target/windows (CARGO_TARGET_DIR), the Wine prefix to
# target/windows/wineprefix; both are reused by later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
triple=x86_64-pc-windows-gnu

build_only=""
case "${1:-}" in
    --build) build_only=1 ;;
    "") ;;
    *) echo "usage: scripts/windows.sh [--build]" >&2; exit 2 ;;
esac

# Debian packages, only those missing.
need=()
for package in rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64 \
    g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64 cmake nasm wine64; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || need+=("$package")
done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "windows.sh: installing ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
fi

windows_dir="$root/target/windows"
wine=/usr/lib/wine/wine64
# Debian's toolchain for the Windows build only (the host's cargo runs the Wine subset);
# Windows test programs run under Wine.
# /usr/bin first in PATH so that `cargo clippy` finds Debian's cargo-clippy, not rustup's.
cargo=(env PATH="/usr/bin:$PATH" CARGO_TARGET_DIR="$windows_dir" RUSTC_BOOTSTRAP=1
    RUSTC=/usr/bin/rustc RUSTFLAGS="-D warnings"
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
    CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine" /usr/bin/cargo)
windows=(--locked -Zbuild-std=std,panic_abort --target "$triple")

started=$(date +%s)
echo "windows.sh: building siprot for $triple with warnings denied (lib, bin, tests, examples)" >&2
"${cargo[@]}" build "${windows[@]}" --all-targets
built=$(date +%s)
echo "windows.sh: Windows build took $((built - started)) s" >&2
echo "windows.sh: clippy for $triple, warnings denied" >&2
"${cargo[@]}" clippy "${windows[@]}" --all-targets -- -D warnings
echo "windows.sh: Windows clippy took $(($(date +%s) - built)) s" >&2
exe="$windows_dir/$triple/debug/siprot.exe"
[ -f "$exe" ] || { echo "windows.sh: $exe was not built" >&2; exit 1; }
[ -n "$build_only" ] && exit 0

# The Wine prefix: created once, with the ProcessPrng shim in its system32.
export WINEPREFIX="$windows_dir/wineprefix"
export WINEDEBUG=-all
# No Mono or Gecko installer dialogs, no debugger waiting after a crash; no display.
export WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d"
unset DISPLAY WAYLAND_DISPLAY
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    echo "windows.sh: creating the Wine prefix $WINEPREFIX" >&2
    mkdir -p "$WINEPREFIX"
    "$wine" wineboot --init >/dev/null 2>&1
    /usr/lib/wine/wineserver -w
fi
if [ ! -f "$shim" ] || [ scripts/wine/processprng.c -nt "$shim" ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -Wall -Werror -Wl,--kill-at \
        -o "$shim" scripts/wine/processprng.c -ladvapi32
fi

# One wineserver for the whole subset (each run would otherwise start and stop one); it
# fails when one already runs for this prefix, which serves as well.
/usr/lib/wine/wineserver -p 2>/dev/null || true
trap '/usr/lib/wine/wineserver -k 2>/dev/null || true' EXIT
# The first Windows process of a session starts Wine's services (services.exe, explorer,
# ...), which keep its standard output and error open until the wineserver ends: start
# them here, with both on /dev/null, not from a test that waits for its pipes to close.
"$wine" "$exe" --version </dev/null >/dev/null 2>&1
"$wine" "$exe" --version
# An empty Credential Manager for every run, as the Linux tests get a fresh keyring (test
# services are named after process ids, which Wine reuses from run to run).
"$wine" reg delete 'HKCU\Software\Wine\Credential Manager' /f >/dev/null 2>&1 || true

started=$(date +%s)
echo "windows.sh: siprot's unit tests and the store conformance suite against the Credential Manager, as Windows programs under Wine" >&2
"${cargo[@]}" test "${windows[@]}" --lib
"${cargo[@]}" test "${windows[@]}" --test e2e -- store_conformance::keyring::
echo "windows.sh: the Windows test programs took $(($(date +%s) - started)) s" >&2

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
echo "windows.sh: the Windows end-to-end subset (tests/wine.rs) with siprot.exe under Wine" >&2
started=$(date +%s)
# One test at a time: Wine's CredEnumerateW sizes its buffer in one pass over the
# registry and fills it in a second, so a credential written by another siprot.exe in
# between overruns it (a page fault in the listing process). Windows has no such race.
SIPROT_TEST_WINE="$wine" SIPROT_TEST_WINE_EXE="$exe" \
    cargo test --locked --test wine -- --test-threads=1
echo "windows.sh: the Wine subset took $(($(date +%s) - started)) s" >&2
