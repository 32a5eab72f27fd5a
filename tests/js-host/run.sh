#!/usr/bin/env bash
# The JavaScript host test (tests/js-host): installs the pinned npm packages,
# builds the component and the binaries it is compared with, transpiles the
# component with jco, and runs test.mjs against the test registry. Exits
# non-zero on any failure; the last line is `N passed, M failed`.
#
# Needs Node 20+, npm and python3 (to read the Rust host's SQLite file).
# SKIP_CARGO_BUILD=1 uses the binaries already in target/debug as they are.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

echo "== js-host: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== js-host: component and binaries"
# Both are no-ops when up to date. The component script is run every time
# rather than only when the file is missing, so a stale one is never tested.
"$repo/scripts/build-component.sh"
if [ "${SKIP_CARGO_BUILD:-0}" != 1 ]; then
    (cd "$repo" && cargo build --locked -p skillsmith-cli -p skillsmith-testkit --bins)
fi

echo "== js-host: jco transpile"
rm -rf generated
npx --no-install jco transpile "$repo/target/skillsmith-sync.wasm" \
    --instantiation sync --name skillsmith-sync --no-typescript --quiet --out-dir generated

echo "== js-host: test"
# stdin from /dev/null: the WASI shim's stdin is this process's.
node test.mjs < /dev/null
