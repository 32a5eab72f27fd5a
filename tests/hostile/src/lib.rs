//! Deliberately misbehaving `skillsmith:sync` components, for the sandbox
//! tests in `tests/tests/integration/sandbox.rs`.
//!
//! Built for `wasm32-wasip2` only, by the sandbox tests themselves, in three
//! flavours: the default is a 0.2.0 guest whose `engine.run` misbehaves as
//! its options ask ([`hostile`]); `ambient` adds probes for files, sockets
//! and clocks (so it imports those WASI interfaces); `future-wit` builds a
//! guest for another version of the contract ([`future`]).

#[cfg(not(feature = "future-wit"))]
pub mod hostile;

#[cfg(feature = "future-wit")]
pub mod future;
