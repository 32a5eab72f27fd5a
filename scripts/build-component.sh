#!/usr/bin/env sh
# Builds the Skillsmith sync component and copies it to the known path
# `target/skillsmith-sync.wasm`, for hosts other than skillsmith-runtime.
#
# The component targets WASI 0.2 (wasm32-wasip2) and exports
# `skillsmith:sync/engine@0.2.0` and `skillsmith:sync/schedule@0.2.0`; a host
# must provide `skillsmith:sync/{http,store,host}@0.2.0` and the WASI 0.2
# interfaces the Rust standard library imports (only stderr is ever written).
#
# It runs the same command as sandbox/build.rs, with the same separate target
# directory, so either one reuses the other's build.
set -eu

cd "$(dirname "$0")/.."
scripts/wasm-target.sh
# Flags meant for host builds must not leak into the wasm build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR

"${CARGO:-cargo}" build -p skillsmith-guest --target wasm32-wasip2 --profile guest \
    --target-dir target/guest-wasm "$@"

cp target/guest-wasm/wasm32-wasip2/guest/skillsmith_guest.wasm target/skillsmith-sync.wasm
size=$(wc -c < target/skillsmith-sync.wasm | tr -d ' ')
echo "target/skillsmith-sync.wasm ($size bytes)"
