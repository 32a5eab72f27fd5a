// Included (`include!`) by `sandbox/build.rs` and by the hostile-guest tests
// (`tests/tests/integration/sandbox.rs`), which build components the same way.

/// Variables meant for the outer, host-target build (flags, the jobserver,
/// clippy's wrapper, the outer target directory): removed from the nested
/// `cargo build --target wasm32-wasip2`, so that the guest builds the same
/// whatever started it.
const HOST_BUILD_ENV: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_PROFILE",
];
