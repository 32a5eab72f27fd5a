//! The integration suite: one test binary (each links a lot), whose helpers run
//! the real `skillsmith` binary, with the real WebAssembly component, in a
//! fresh temporary directory against the test registry on loopback.

mod coverage;
mod faults;
mod hardening;
mod harness;
mod mcp;
mod network;
mod resilience;
mod sandbox;
mod sync;
mod upstream;
