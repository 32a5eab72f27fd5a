#!/usr/bin/env bash
# A real sync end to end, offline: the test registry serves a generated
# catalogue on loopback, and the real `skillsmith` binary (running the real
# WebAssembly component) syncs it into a fresh SQLite file.
#   scripts/demo.sh [SKILLS]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/wasm-target.sh
skills="${1:-20000}"

cargo build --locked --bins -p skillsmith-cli -p skillsmith-testkit
bin=target/debug
work=$(mktemp -d)
trap 'kill "$registry_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin/skillsmith-registry" --skills "$skills" >"$work/registry.out" 2>"$work/registry.log" &
registry_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/registry.out" 2>/dev/null && break
  sleep 0.1
done
url=$(sed -n 's/^listening on //p' "$work/registry.out")
[ -n "$url" ] || { echo "test registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }
echo "test registry with $skills skills at $url"

export SKILLSMITH_DB="$work/skills.db" SKILLSMITH_API_URL="$url"
echo; echo "\$ skillsmith sync";            "$bin/skillsmith" sync
echo; echo "\$ skillsmith sync   (again: differential, nothing changed)"; "$bin/skillsmith" sync
echo; echo "\$ skillsmith sync status";     "$bin/skillsmith" sync status
echo; echo "\$ skillsmith search 'pdf' --limit 3"; "$bin/skillsmith" search pdf --limit 3
