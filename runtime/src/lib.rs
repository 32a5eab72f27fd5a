//! Native runtime of the Skillsmith registry sync: runs the sync component
//! (confined by `skillsmith-sandbox`) or the same engine natively, over a
//! capability-checked HTTP backend ([`http`], [`policy`]) and the SQLite
//! catalogue (`skillsmith-catalogue`), through one host of the engine's
//! imports ([`host`]). The CLI and the MCP server depend on this crate alone:
//! it re-exports the catalogue's read side and the sandbox's limits, so that
//! neither binary names rusqlite or wasmtime.
//!
//! Start with [`sync::SyncRunner`] and [`db::Database`].

#![deny(missing_docs)]

pub mod component;
pub mod eta;
pub mod host;
pub mod http;
pub mod location;
pub mod policy;
pub mod sync;
pub mod text;

pub use skillsmith_catalogue::{clock, db, lock, random, store, writer};
pub use skillsmith_sandbox::{budget, grants};

use std::path::PathBuf;

pub use skillsmith_guest::domain::{
    Coverage, Decision, Directive, FailureKind, HttpError, Level, Phase, Progress, ScheduleConfig,
    Skill, StoreError, SyncError, SyncMode, SyncReport, TrustTier, WaitReason,
};
pub use sync::{Backend, SyncFailure, SyncObserver, SyncOutcome, SyncRunner};

/// The live registry's API base URL.
pub const DEFAULT_REGISTRY_URL: &str = "https://api.skillsmith.app/functions/v1";

/// The default catalogue, `~/.skillsmith/skills.db`, the upstream tools' own
/// (see [`location`]); `None` when there is no home directory.
pub fn default_db_path() -> Option<PathBuf> {
    location::default_catalogue().map(|c| c.path)
}

/// The default cache directory for the compiled component (see
/// [`component::default_cache_dir`]).
pub fn default_cache_dir() -> Option<PathBuf> {
    component::default_cache_dir()
}

#[cfg(test)]
mod e2e_tests;
