#!/usr/bin/env bash
# The same component in its three hosts: a full feed sync of one registry
# (the test registry, release build, on loopback) into a fresh catalogue by
# `skillsmith` (Rust, wasmtime), `python -m skillsmith_host` (wasmtime-py)
# and `node host-node/cli.mjs` (jco), with wall time and peak RSS from
# /usr/bin/time, the median of REPEAT runs each, after one untimed run that
# fills each host's component cache. Each run's catalogue is
# checked against the registry's own list before its figures count.
#
#   SKILLS=20000 REPEAT=3 scripts/bench-hosts.sh
#
# Needs the Python host's virtualenv and the Node host's packages, which
# host-python/run-tests.sh and host-node's `npm ci` install.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

SKILLS="${SKILLS:-20000}"
REPEAT="${REPEAT:-3}"
PYTHON="${PYTHON:-$repo/target/host-python-venv/bin/python}"

# The same build as scripts/bench.sh, so that neither undoes the other's.
cargo build --release --locked --bins
scripts/build-component.sh >/dev/null
[ -x "$PYTHON" ] || { echo "bench-hosts: no Python host at $PYTHON: run host-python/run-tests.sh once" >&2; exit 1; }
[ -d host-node/node_modules ] || { echo "bench-hosts: run 'npm ci' in host-node/ first" >&2; exit 1; }

scratch="$(mktemp -d)"
target/release/skillsmith-registry --skills "$SKILLS" >"$scratch/registry.log" 2>&1 &
registry=$!
trap 'kill "$registry" 2>/dev/null; rm -rf "$scratch"' EXIT
until url="$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$scratch/registry.log")" && [ -n "$url" ]; do
    kill -0 "$registry" 2>/dev/null || { echo "bench-hosts: the registry did not start" >&2; cat "$scratch/registry.log" >&2; exit 1; }
    sleep 0.1
done
origin="${url%/functions/v1}"

# The registry's ids and timestamps, and a catalogue's registry rows, as
# sorted "id updated_at" lines.
curl -sf "$origin/_admin/snapshot" |
    python3 -c 'import json,sys; [print(s["id"], s["updated_at"]) for s in sorted(json.load(sys.stdin), key=lambda s: s["id"])]' \
    > "$scratch/registry.txt"
rows() {
    python3 -c 'import sqlite3,sys
c = sqlite3.connect(sys.argv[1])
for i, u in c.execute("SELECT id, updated_at FROM skills WHERE sync_origin = '"'registry'"' ORDER BY id"): print(i, u)' "$1"
}

export HOME="$scratch/home" SKILLSMITH_CACHE_DIR="$scratch/cache" NO_COLOR=1
mkdir -p "$HOME"
declare -A cmd=(
    [rust]="target/release/skillsmith --db DB --registry $url sync --json"
    [python]="$PYTHON -m skillsmith_host sync --db DB --registry $url --json"
    [node]="node host-node/cli.mjs sync --db DB --registry $url --json"
)
# One untimed run of each first: each host compiles (Rust, Python) or
# transpiles (Node) the component into its cache, once per machine.
for host in rust python node; do
    # shellcheck disable=SC2086
    ${cmd[$host]//DB/$scratch/warm-$host.db} > /dev/null
done

echo "| host | skills | wall s (median of $REPEAT) | peak RSS MiB (median) | runs |"
echo "|---|---|---|---|---|"
for host in rust python node; do
    : > "$scratch/$host.times"
    for i in $(seq "$REPEAT"); do
        db="$scratch/$host-$i.db"
        # shellcheck disable=SC2086
        /usr/bin/time -f '%e %M' -o "$scratch/time" ${cmd[$host]//DB/$db} > "$scratch/report.json"
        rows "$db" | cmp -s - "$scratch/registry.txt" ||
            { echo "bench-hosts: $host's catalogue differs from the registry" >&2; exit 1; }
        cat "$scratch/time" >> "$scratch/$host.times"
    done
    python3 - "$scratch/$host.times" "$host" "$SKILLS" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1]) if l.strip()]
wall = statistics.median(float(w) for w, _ in runs)
rss = statistics.median(int(r) for _, r in runs) / 1024
print(f"| {sys.argv[2]} | {sys.argv[3]} | {wall:.2f} | {rss:.0f} | "
      + ", ".join(f"{float(w):.2f} s / {int(r) / 1024:.0f} MiB" for w, r in runs) + " |")
PY
done
