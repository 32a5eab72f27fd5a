#!/usr/bin/env bash
# The whole test suite: builds every binary (the integration tests run the real
# `skillsmith`, `skillsmith-mcp` and `skillsmith-registry` executables), then runs
# unit, property and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/wasm-target.sh
# A build without the component would run the component tests against an
# empty one or skip them: fail the build instead (sandbox/build.rs).
export SKILLSMITH_REQUIRE_GUEST=1
cargo build --workspace --locked --bins
cargo test --workspace --locked
