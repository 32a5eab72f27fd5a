//! Skillsmith registry sync logic. Pure: everything it learns comes through the
//! [`domain::Host`] trait and its arguments. Built as the `skillsmith:sync`
//! WIT component for `wasm32-wasip2`, and as a native library for tests and
//! for measuring what the WebAssembly boundary costs.

pub mod domain;
