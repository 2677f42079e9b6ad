#!/usr/bin/env bash
# Pemba over HTTP beside one thread of Cedar in-process, on the same workload, in one run.
# Not part of CI. See README.md beside this file for what each side includes.
#
# Usage: benches/compare/cedar.sh [SIZE] [SECONDS]
#   SIZE     workload size for `pemba workload` (xs, s, m; default s)
#   SECONDS  length of each measurement (default 10)
# Environment: COMPARE_DIR (scratch directory, default /tmp/pemba-compare),
#   CARGO_TARGET_DIR (as for cargo), CONCURRENCY (HTTP connections, default 64).
set -euo pipefail
size="${1:-s}"
seconds="${2:-10}"
concurrency="${CONCURRENCY:-64}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${COMPARE_DIR:-/tmp/pemba-compare}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"

# 1. Release builds: Pemba, and the Cedar harness (its own workspace, cedar-policy 4).
(cd "$root" && cargo build --release --quiet -p pemba --bin pemba)
(cd "$here/cedar" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
bin="$target/release/pemba"
cedar="$target/release/pemba-cedar-compare"

# 2. The workload, and a fresh Pemba store holding it.
if [ ! -f "$work/$size/checks.txt" ]; then
    "$bin" workload --size "$size" --out "$work/$size"
fi
data="$(mktemp -d "$work/data.XXXXXX")"
server=""
trap '[ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }; rm -rf "$data"' EXIT
"$bin" --data-dir "$data" schema write "$work/$size/schema.zed" >/dev/null
"$bin" --data-dir "$data" import "$work/$size/tuples.txt"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"

# 3. Cedar: one thread, in-process, after verifying every expected answer.
cedar_line="$("$cedar" "$work/$size" "$seconds")"

# 4. Pemba: `pemba serve` on a free loopback port, `pemba bench --verify` against it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="compare-$RANDOM$RANDOM"
RUST_LOG=warn PEMBA_KEY="$key" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 300); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
PEMBA_KEY="$key" "$bin" bench --endpoint "http://127.0.0.1:$port" --workload "$work/$size" \
    --duration "${seconds}s" --concurrency "$concurrency" --verify | tee "$work/pemba-bench.txt"

# 5. The ratio.
cedar_rate="$(sed -n 's/.*checks_per_s=\([0-9.]*\).*/\1/p' <<<"$cedar_line")"
pemba_rate="$(grep -o '[0-9,.]* checks/s' "$work/pemba-bench.txt" | head -1 | tr -d ', ' | sed 's/checks\/s//')"
python3 - "$size" "$cedar_rate" "$pemba_rate" <<'PY'
import sys
size, cedar, pemba = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"{size}: Pemba over HTTP ({pemba:,.0f} checks/s) / Cedar in-process, one thread ({cedar:,.0f} checks/s) = {pemba / cedar:.2f}x")
PY
