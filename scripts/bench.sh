#!/usr/bin/env bash
# The fleet benchmark (see docs/performance.md): builds release binaries,
# then rotates fleets against the fake providers with 50 ms of latency per request:
#   network mode, N = 1000 and 4000, keyring-core's in-memory mock store;
#   keyring mode, N = 200, a real gnome-keyring in a private session;
#   vault mode, N = 4000, the vault store on a real OpenBao dev server (target: wall within
#   1.2 x network mode's at N = 4000, measured here in the same run; peak RSS < 60 MiB);
# times `siprot check-password`, which must start no runtime, client or keyring;
# validates a 100,000-entry inventory (examples/inventory-bench.rs); and times one
# Telepath rotation into a real keyring beside its shell peer (scripts/bench-one.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked --bin siprot --example fake-providers --example fleet-bench --example inventory-bench >&2
bench=target/release/examples/fleet-bench

table=$(mktemp)
trap 'rm -f "$table"' EXIT
echo "| mode | N | concurrency per provider | wall | network floor | keyring floor | store writes per rotation | wall / max(floors) | requests/s | RSS before the run | peak RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
"$bench" --mode network --n 1000 --concurrency 32 --latency-ms 50 --later-runs 3
"$bench" --mode network --n 4000 --concurrency 32 --latency-ms 50 --later-runs 3 | tee -a "$table"
"$bench" --mode vault --n 4000 --concurrency 32 --latency-ms 50 --later-runs 3 | tee -a "$table"
scripts/with-keyring.sh "$bench" --mode keyring --n 200 --concurrency 32 --latency-ms 50 --later-runs 3 \
    2> >(grep -v "fd limit" >&2)

# Vault mode against network mode at N = 4000: the median wall of each mode's runs.
awk -F'|' '
    { gsub(/ s/, "", $5); mode = ($2 ~ /vault/) ? "vault" : "network"; walls[mode] = walls[mode] " " $5 + 0 }
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        v = median(walls["vault"]); n = median(walls["network"])
        printf "\nvault store at N = 4000: median wall %.2f s against network mode %.2f s: %.2f x (target 1.2 x)\n", v, n, v / n
    }' "$table"

runs=200
start=$(date +%s%N)
for _ in $(seq $runs); do
    printf 'Correct-Horse-9-Battery' | target/release/siprot check-password >/dev/null
done
end=$(date +%s%N)
echo
echo "siprot check-password: $(( (end - start) / runs / 1000 )) µs per run (mean of $runs, process start included)"
echo
target/release/examples/inventory-bench --n 100000
echo
scripts/bench-one.sh 100 2> >(grep -v "fd limit" >&2)
