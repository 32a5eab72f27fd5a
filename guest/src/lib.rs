//! Skillsmith registry sync logic. Pure: everything it learns comes through the
//! [`domain::Host`] trait and its arguments. Built as the `skillsmith:sync`
//! WIT component for `wasm32-wasip2`, and as a native library for tests and
//! for measuring what the WebAssembly boundary costs.
//!
//! Entry points: [`engine::run`] and [`schedule::decide`].

#![deny(missing_docs)]

pub mod convert;
pub mod cover;
pub mod cursor;
pub mod diff;
pub mod domain;
pub mod engine;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod protocol;
pub mod retry;
pub mod schedule;
pub mod url;
pub mod warnings;

#[cfg(target_arch = "wasm32")]
mod component;

pub use engine::run;
pub use schedule::decide;
