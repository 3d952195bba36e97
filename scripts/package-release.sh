#!/usr/bin/env bash
# Packages a release build: scripts/package-release.sh TARGET OUT_DIR
# Puts target/TARGET/release/siprot(.exe) with README.md, LICENSE, LICENSE-MIT and
# LICENSE-APACHE into OUT_DIR/siprot-VERSION-TARGET.tar.gz (.zip for Windows), and its
# SHA-256 checksum into the same name plus .sha256 (`sha256sum -c` format). The release
# workflow runs it; it also works by hand after `cargo build --release --target TARGET`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/package-release.sh TARGET OUT_DIR}"
out="${2:?usage: scripts/package-release.sh TARGET OUT_DIR}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
exe=siprot
case "$target" in *windows*) exe=siprot.exe ;; esac
# SIPROT_BINARY names another build of it (the tests package their own debug build).
binary="${SIPROT_BINARY:-target/$target/release/$exe}"
[ -f "$binary" ] || { echo "package-release: $binary is missing: build it first" >&2; exit 1; }
name="siprot-$version-$target"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
cp "$binary" "$stage/$name/$exe"
cp README.md LICENSE LICENSE-MIT LICENSE-APACHE "$stage/$name/"
case "$target" in
    *windows*)
        archive="$name.zip"
        (cd "$stage" && 7z a -tzip -bso0 "$archive" "$name" 2>/dev/null || zip -qr "$archive" "$name")
        ;;
    *)
        archive="$name.tar.gz"
        tar -C "$stage" -czf "$stage/$archive" "$name"
        ;;
esac
mv "$stage/$archive" "$out/"
if command -v sha256sum >/dev/null; then
    (cd "$out" && sha256sum "$archive" > "$archive.sha256")
else
    (cd "$out" && shasum -a 256 "$archive" > "$archive.sha256")
fi
echo "$out/$archive"
