#!/usr/bin/env bash
# Builds the release binaries and runs the sync benchmark; prints Markdown
# tables for docs/PERFORMANCE.md. BENCH_SIZES and BENCH_REPEAT tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/wasm-target.sh
cargo build --release --locked --bins
cargo bench --locked -p skillsmith-testkit --bench sync
