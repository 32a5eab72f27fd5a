#!/usr/bin/env sh
# Makes sure the compiler can build for wasm32-wasip2, the guest component's
# target. rust-toolchain.toml lists it, but rustup adds a toolchain's targets
# only when it installs that toolchain: on a machine that already had the
# pinned compiler, the target is missing until added, and the runtime would
# be built without its component. Quiet and quick when it is there.
set -eu
command -v rustup >/dev/null 2>&1 || exit 0
cd "$(dirname "$0")/.."
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "adding the wasm32-wasip2 target to the pinned toolchain (rustup target add)" >&2
    rustup target add wasm32-wasip2 >&2
fi
