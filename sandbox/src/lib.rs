//! The sandbox of the `skillsmith:sync` component, for native hosts: loads
//! the component through a compiled-code cache, links only the imports it is
//! granted, and runs it under memory and time budgets on one process-wide
//! engine. Names no database and no HTTP client: a host's backends come in
//! as one [`component::Embedder`], the engine's own import trait.
//!
//! Start with [`component::ComponentRuntime`].

#![deny(missing_docs)]

// Generated from the WIT; documented there. Crate-private: the public API
// speaks domain types, never wasmtime's.
#[allow(missing_docs, dead_code)]
mod bindings;
pub mod budget;
pub mod component;
pub mod grants;
pub mod pending;
