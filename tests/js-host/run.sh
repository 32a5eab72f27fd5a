#!/usr/bin/env bash
# The test of the Node host (host-node/): installs it (`npm ci` from its
# committed lock file, and its SQLite binding), checks that the built
# artifacts it is tested with are there, and runs tests/js-host/test.mjs
# against the test registry. Exits non-zero on any failure; the last line
# is `N passed, M failed`.
#
# Needs Node 20+ and npm. On a Node without `node:sqlite` (before 22.5) the
# host uses better-sqlite3, whose prebuilt download is out of reach, so it is
# built from source as tests/upstream-client/run.sh builds it: g++, make and
# python3, and the node headers under <node prefix>/include/node.
#
# SKIP_CARGO_BUILD=1 uses the artifacts in target/ as they are (CI builds
# them in its test step); otherwise the component, the hostile components
# (scripts/build-hostile.sh) and the binaries are built first. SKILLS
# (default 3000) sizes the registries; KEEP_TMP=1 keeps the scratch folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
host="$repo/host-node"

die() {
    echo "js-host: $*" >&2
    exit 1
}

# ---- the package and its SQLite binding -------------------------------------------

command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"

echo "== js-host: npm ci in host-node"
# better-sqlite3 is built only for a Node without node:sqlite (before 22.5).
if node --input-type=module -e "await import('node:sqlite')" 2>/dev/null; then
    native=""
else
    native=better-sqlite3
fi
"$repo/scripts/npm-install.sh" "$host" \
    "const { openDatabase } = await import('./sqlite.mjs'); (await openDatabase(':memory:')).close();" \
    $native

# ---- what it is tested with ------------------------------------------------------------

echo "== js-host: component and binaries"
bin="$(cd "$repo" && realpath -m "${SKILLSMITH_BIN_DIR:-target/debug}")"
if [ "${SKIP_CARGO_BUILD:-0}" != 1 ]; then
    "$repo/scripts/build-component.sh"
    "$repo/scripts/build-hostile.sh"
    (cd "$repo" && cargo build --locked -p skillsmith-cli -p skillsmith-testkit --bins)
fi
for f in "$repo/target/skillsmith-sync.wasm" "$bin/skillsmith" "$bin/skillsmith-registry"; do
    [ -f "$f" ] || die "$f is missing (build it, or unset SKIP_CARGO_BUILD)"
done
for f in skillsmith-hostile.wasm skillsmith-hostile-ambient.wasm skillsmith-hostile-future.wasm; do
    [ -f "$repo/target/hostile-wasm/$f" ] || die "target/hostile-wasm/$f is missing: run scripts/build-hostile.sh"
done
echo "node $(node --version), $("$bin/skillsmith" --version), $("$bin/skillsmith-registry" --version)"

echo "== js-host: test"
cd "$here"
# stdin from /dev/null: nothing here reads it, and a CI has none.
SKILLSMITH_BIN_DIR="$bin" node test.mjs </dev/null
