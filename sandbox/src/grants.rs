//! What the sandbox grants a component beyond `skillsmith:sync`: the few WASI
//! interfaces the Rust standard library needs to start (`wasi:io`,
//! `wasi:cli`), each backed by an empty context, and nothing else.
//!
//! Clocks, random, files and sockets are not linked at all, so a component
//! that imports them is refused when it is loaded, with the names of what it
//! asked for ([`ungranted`]). That is stricter than linking interfaces that
//! deny at run time, and it matters: a guest blocked in `wasi:io/poll` on a
//! clock could not be interrupted by epochs, and one that reads the wall
//! clock would no longer be a pure function of its imports and `now`.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::p2::bindings::{cli, sync::io};

/// The WASI interfaces linked, without versions (any `0.2.x` links).
pub const GRANTED_WASI: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// `wasi:io` works on the resource table alone.
struct TableOnly;

impl HasData for TableOnly {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links exactly [`GRANTED_WASI`], synchronous flavour.
pub(crate) fn add_to_linker<T: WasiView + 'static>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    io::error::add_to_linker::<T, TableOnly>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, TableOnly>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, TableOnly>(l, |t| t.ctx().table)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}

/// The imports among `imports` that are neither `skillsmith:*` (checked by
/// the typed link) nor granted WASI, in the order given.
pub fn ungranted<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    imports
        .into_iter()
        .filter(|name| !name.starts_with("skillsmith:"))
        .filter(|name| {
            let unversioned = name.split_once('@').map_or(*name, |(n, _)| n);
            !GRANTED_WASI.contains(&unversioned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_real_guest_imports_is_granted() {
        // `wasm-tools component wit` of the shipped component.
        let guest = [
            "skillsmith:sync/http@0.2.0",
            "skillsmith:sync/store@0.2.0",
            "wasi:io/poll@0.2.6",
            "wasi:io/error@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:cli/environment@0.2.6",
            "wasi:cli/exit@0.2.6",
            "wasi:cli/stderr@0.2.6",
            "wasi:cli/terminal-stderr@0.2.3",
        ];
        assert!(ungranted(guest).is_empty());
    }

    #[test]
    fn ambient_interfaces_are_named() {
        let asks = [
            "wasi:io/poll@0.2.6",
            "wasi:clocks/wall-clock@0.2.6",
            "wasi:clocks/monotonic-clock@0.2.6",
            "wasi:random/random@0.2.6",
            "wasi:filesystem/preopens@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:cli/run@0.2.6",
            "wasi:iox/poll@0.2.6",
            "example:evil/everything",
        ];
        assert_eq!(
            ungranted(asks),
            &asks[1..],
            "everything but wasi:io/poll is refused, including look-alikes"
        );
    }
}
