//! The Skillsmith catalogue: one SQLite file per user, read by the CLI and
//! the MCP server and written by syncs. This crate owns every SQL statement
//! of the project's Rust, beside the two files it shares with the hosts
//! outside Rust (`migrations/shared/catalogue.sql`, which it records, and
//! `host_store.sql`, which it checks and partly runs), and names no
//! WebAssembly runtime.
//!
//! - [`connection`]: opening a file, typed errors;
//! - [`schema`]: creating, adopting and upgrading catalogues (shared with
//!   the upstream tools);
//! - [`db`]: [`db::Database`], the read API (search, get, status, history)
//!   and the settings;
//! - [`store`]: what a sync writes (pages with their checkpoint, runs);
//! - [`writer`]: the store on a thread of its own, behind the engine;
//! - [`lock`]: the cross-process sync lease;
//! - [`clock`] and [`random`]: host time and the host's random numbers.

#![deny(missing_docs)]

pub mod clock;
pub mod connection;
mod constraints;
pub mod db;
mod fts;
pub mod lock;
pub mod random;
mod row_policy;
pub mod schema;
mod shared_sql;
pub mod store;
pub mod writer;
