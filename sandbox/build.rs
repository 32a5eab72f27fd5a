//! Builds the guest component (`skillsmith-guest` for `wasm32-wasip2`, profile
//! `guest`) so that the sandbox can embed it with `include_bytes!`.
//!
//! The nested cargo gets its own target directory (`target/guest-wasm`): it
//! must not wait for the lock the outer build holds on `target/`, and its
//! artifacts must not churn the host build's. Flags meant for the outer build
//! (RUSTFLAGS for the host target, clippy's wrapper, the jobserver) are
//! stripped so the guest build is the same whatever started it.
//!
//! Escape hatches:
//! - `SKILLSMITH_GUEST_WASM=/path/to/component.wasm` embeds a prebuilt
//!   component instead of building one (CI caches, cross builds).
//! - If the guest does not build, the sandbox is still built, with an empty
//!   component and a warning; the component backend then reports the build
//!   failure at run time, and the native backend keeps working. Set
//!   `SKILLSMITH_REQUIRE_GUEST=1` (release pipelines) to make that an error.

use std::path::{Path, PathBuf};
use std::process::Command;

include!("guest_build_env.rs");

const ENV_PREBUILT: &str = "SKILLSMITH_GUEST_WASM";
const ENV_REQUIRE: &str = "SKILLSMITH_REQUIRE_GUEST";

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("sandbox/ lives in the workspace")
        .to_owned();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));

    println!("cargo:rerun-if-env-changed={ENV_PREBUILT}");
    println!("cargo:rerun-if-env-changed={ENV_REQUIRE}");
    for p in [
        "guest/src",
        "guest/Cargo.toml",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(p).display());
    }

    if let Some(prebuilt) = std::env::var_os(ENV_PREBUILT) {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        assert!(
            prebuilt.is_file(),
            "{ENV_PREBUILT}={} is not a file",
            prebuilt.display()
        );
        export(&prebuilt, "prebuilt");
        return;
    }

    match build_guest(&workspace) {
        Ok(wasm) => export(&wasm, "built"),
        Err(why) => {
            if std::env::var_os(ENV_REQUIRE).is_some_and(|v| v != "0") {
                panic!("the guest component did not build:\n{why}");
            }
            // Rebuild once the target is installed: cargo reruns a build
            // script whose `rerun-if-changed` path appears or changes.
            if let Some(dir) = wasm_target_dir() {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
            for line in why.lines().take(40) {
                println!("cargo:warning=guest component: {line}");
            }
            println!(
                "cargo:warning=the sandbox is built WITHOUT the sync component; \
                 `--native` works, the component backend reports this error; \
                 if the target is missing: rustup target add wasm32-wasip2 \
                 (scripts/wasm-target.sh)"
            );
            let empty = out_dir.join("skillsmith-sync-missing.wasm");
            std::fs::write(&empty, b"").expect("write to OUT_DIR");
            // The reason, for the run-time error message.
            let reason = why
                .lines()
                .filter(|l| l.trim_start().starts_with("error"))
                .take(3)
                .collect::<Vec<_>>()
                .join(" / ");
            println!("cargo:rustc-env=SKILLSMITH_GUEST_BUILD_ERROR={reason}");
            export(&empty, "missing");
        }
    }
}

/// Where the toolchain keeps the wasm32-wasip2 standard library (there or
/// not): `rustup target add wasm32-wasip2` creates it.
fn wasm_target_dir() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    Some(
        Path::new(sysroot.trim())
            .join("lib")
            .join("rustlib")
            .join("wasm32-wasip2"),
    )
}

fn export(wasm: &Path, how: &str) {
    println!("cargo:rustc-env=SKILLSMITH_GUEST_WASM={}", wasm.display());
    println!("cargo:rustc-env=SKILLSMITH_GUEST_ORIGIN={how}");
}

/// Runs the same command as `scripts/build-component.sh`.
fn build_guest(workspace: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = workspace.join("target").join("guest-wasm");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "-p",
            "skillsmith-guest",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "--target-dir",
        ])
        .arg(&target_dir);
    for var in HOST_BUILD_ENV {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("could not run cargo: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The interesting part of a failed build is at the end.
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        return Err(format!(
            "`cargo build -p skillsmith-guest --target wasm32-wasip2 --profile guest` failed ({}):\n{}",
            out.status,
            tail.join("\n")
        ));
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("guest")
        .join("skillsmith_guest.wasm");
    if !wasm.is_file() {
        return Err(format!(
            "the guest build succeeded but {} is missing",
            wasm.display()
        ));
    }
    Ok(wasm)
}
