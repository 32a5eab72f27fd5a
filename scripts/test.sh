#!/usr/bin/env bash
# The whole test suite: builds every binary (the integration tests run the real
# `skillsmith`, `skillsmith-mcp` and `skillsmith-registry` executables), then runs
# unit, property and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/wasm-target.sh
cargo build --workspace --locked --bins
cargo test --workspace --locked
