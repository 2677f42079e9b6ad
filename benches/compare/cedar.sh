#!/usr/bin/env bash
# Pemba over HTTP beside one thread of Cedar in-process and beside the ceiling (a trivial
# hyper server answering a fixed check response, driven by the same load generator), on
# the same workload, in one run; then both servers again over h2c and pipelined HTTP/1.1.
# Not part of CI. See README.md beside this file for what each side includes.
#
# Usage: benches/compare/cedar.sh [SIZE] [SECONDS]
#   SIZE     workload size for `pemba workload` (xs, s, m; default s)
#   SECONDS  length of each measurement (default 10)
# Environment: COMPARE_DIR (scratch directory, default /tmp/pemba-compare),
#   CARGO_TARGET_DIR (as for cargo), CONCURRENCY (HTTP connections, default 64),
#   PIPELINE (requests in flight per pipelined connection, default 16),
#   TRANSPORTS (default "http1 h2c pipelined"; "http1" for the headline run alone).
set -euo pipefail
size="${1:-s}"
seconds="${2:-10}"
concurrency="${CONCURRENCY:-64}"
pipeline="${PIPELINE:-16}"
transports="${TRANSPORTS:-http1 h2c pipelined}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${COMPARE_DIR:-/tmp/pemba-compare}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"

# 1. Release builds: Pemba, the Cedar harness (its own workspace, cedar-policy 4) and the
#    ceiling server (its own workspace too).
(cd "$root" && cargo build --release --quiet -p pemba --bin pemba)
(cd "$here/cedar" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
(cd "$here/ceiling" && CARGO_TARGET_DIR="$target" cargo build --release --quiet)
bin="$target/release/pemba"
cedar="$target/release/pemba-cedar-compare"
ceiling_bin="$target/release/pemba-ceiling"

# 2. The workload, and a fresh Pemba store holding it.
if [ ! -f "$work/$size/checks.txt" ]; then
    "$bin" workload --size "$size" --out "$work/$size"
fi
data="$(mktemp -d "$work/data.XXXXXX")"
server=""
ceiling=""
stop() { for pid in "$@"; do [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; done; }
trap 'stop "$server" "$ceiling"; rm -rf "$data"' EXIT
"$bin" --data-dir "$data" schema write "$work/$size/schema.zed" >/dev/null
"$bin" --data-dir "$data" import "$work/$size/tuples.txt"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"

# 3. Cedar: one thread, in-process, after verifying every expected answer.
cedar_line="$("$cedar" "$work/$size" "$seconds")"
echo "cedar: $cedar_line"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 4. Pemba: `pemba serve` on a free loopback port; the ceiling on another.
port="$(free_port)"
key="compare-$RANDOM$RANDOM"
RUST_LOG=warn PEMBA_KEY="$key" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 300); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
ceiling_port="$(free_port)"
"$ceiling_bin" "127.0.0.1:$ceiling_port" >"$work/ceiling.log" &
ceiling=$!
sleep 0.5

# 5. `pemba bench` against each, one after the other, per transport. Pemba's answers are
#    verified; the ceiling's fixed answer is right only half the time, so it is not.
rate() { grep -o '[0-9,.]* checks/s' "$1" | head -1 | tr -d ', ' | sed 's/checks\/s//'; }
cedar_rate="$(sed -n 's/.*checks_per_s=\([0-9.]*\).*/\1/p' <<<"$cedar_line")"
summary=""
for transport in $transports; do
    case "$transport" in
        http1) flags=() ;;
        h2c) flags=(--http2) ;;
        pipelined) flags=(--pipeline "$pipeline") ;;
        *) echo "unknown transport \`$transport\`: use http1, h2c or pipelined" >&2; exit 2 ;;
    esac
    echo "== $transport: Pemba"
    PEMBA_KEY="$key" "$bin" bench --endpoint "http://127.0.0.1:$port" --workload "$work/$size" \
        --duration "${seconds}s" --concurrency "$concurrency" --verify "${flags[@]}" | tee "$work/pemba-$transport.txt"
    echo "== $transport: ceiling (fixed answer, not verified)"
    PEMBA_KEY="$key" "$bin" bench --endpoint "http://127.0.0.1:$ceiling_port" --workload "$work/$size" \
        --duration "${seconds}s" --concurrency "$concurrency" "${flags[@]}" | tee "$work/ceiling-$transport.txt"
    summary+="$transport $(rate "$work/pemba-$transport.txt") $(rate "$work/ceiling-$transport.txt")"$'\n'
done
cp "$work/pemba-${transports%% *}.txt" "$work/pemba-bench.txt"

# 6. The ratios.
python3 - "$size" "$cedar_rate" "$summary" <<'PY'
import sys
size, cedar, rows = sys.argv[1], float(sys.argv[2]), sys.argv[3].split("\n")
print(f"{size}: Cedar in-process, one thread: {cedar:,.0f} checks/s")
for row in filter(None, rows):
    transport, pemba, ceiling = row.split()
    pemba, ceiling = float(pemba), float(ceiling)
    print(f"{size} {transport}: Pemba {pemba:,.0f} checks/s, ceiling {ceiling:,.0f} checks/s: "
          f"Pemba / ceiling = {pemba / ceiling:.2f}x, Pemba / Cedar = {pemba / cedar:.2f}x")
PY
