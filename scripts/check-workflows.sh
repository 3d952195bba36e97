#!/usr/bin/env bash
# Checks every GitHub workflow (of .github/workflows, or of the directory given) offline: zizmor (security audits; no finding at medium or
# above may remain) and check-jsonschema with its vendored GitHub-workflow schema. Both come
# from PyPI into target/lint-venv (pinned versions, reinstalled when they change).
set -euo pipefail
cd "$(dirname "$0")/.."
zizmor_version=1.32.0
check_jsonschema_version=0.39.0
venv="$PWD/target/lint-venv"
stamp="$venv/.versions-$zizmor_version-$check_jsonschema_version"

# Installs the pinned tools once. scripts/install-deps.sh calls this (`--install-only`)
# before any test starts, so the tests never install; the lock makes two checks started
# at the same moment (two tests, or a test and a hand run) install one after the other,
# never into one directory together.
install() {
    [ -f "$stamp" ] && return 0
    mkdir -p "$PWD/target"
    exec 9>"$PWD/target/lint-venv.lock"
    flock 9
    if [ ! -f "$stamp" ]; then
        echo "check-workflows: installing zizmor==$zizmor_version check-jsonschema==$check_jsonschema_version into $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            "zizmor==$zizmor_version" "check-jsonschema==$check_jsonschema_version"
        touch "$stamp"
    fi
    exec 9>&-
}
install
[ "${1:-}" = "--install-only" ] && exit 0
dir="${1:-.github/workflows}"
shopt -s nullglob
workflows=("$dir"/*.yml "$dir"/*.yaml)
[ "${#workflows[@]}" -gt 0 ] || { echo "check-workflows: no workflow in $dir" >&2; exit 1; }
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$venv/bin/zizmor" --offline --min-severity medium --no-progress "${workflows[@]}"
echo "check-workflows: ${#workflows[@]} workflow(s) pass the schema and zizmor"
