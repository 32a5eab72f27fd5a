#!/usr/bin/env sh
# Builds the deliberately misbehaving components of tests/hostile, for the
# hosts outside Rust (host-python/, host-node/) to be tested against:
#   target/hostile-wasm/skillsmith-hostile.wasm          misbehaves on request
#   target/hostile-wasm/skillsmith-hostile-ambient.wasm  imports clocks, files, sockets
#   target/hostile-wasm/skillsmith-hostile-future.wasm   skillsmith:sync@0.3.0
#
# It runs the same commands as the sandbox tests (tests/tests/integration/
# sandbox.rs, `build_hostile`), with the same target directory and names, so
# either one reuses the other's build.
set -eu

cd "$(dirname "$0")/.."
scripts/wasm-target.sh
# Flags meant for host builds must not leak into the wasm build.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR

target="$PWD/target/hostile-wasm"
for flavour in "" ambient future-wit; do
    (cd tests/hostile && "${CARGO:-cargo}" build --locked --release --target wasm32-wasip2 \
        --target-dir "$target" ${flavour:+--features "$flavour"})
    name=skillsmith-hostile${flavour:+-${flavour%-wit}}.wasm
    cp "$target/wasm32-wasip2/release/skillsmith_hostile.wasm" "$target/$name"
    echo "target/hostile-wasm/$name"
done
