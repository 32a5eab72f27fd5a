//! Native runtime of the Skillsmith registry sync: the only crate that names
//! wasmtime. It runs the sync component (or the same engine natively) over
//! a capability-checked HTTP backend and the SQLite catalogue, and offers the
//! read side (status, history, search) the CLI and the MCP server need.
//!
//! Start with [`sync::SyncRunner`] and [`db::Database`].

#![deny(missing_docs)]

// Generated from the WIT; documented there. Crate-private: the public API
// speaks domain types, never wasmtime's.
#[allow(missing_docs, dead_code)]
mod bindings;
pub mod budget;
pub mod clock;
pub mod component;
pub mod db;
pub mod grants;
pub mod host;
pub mod http;
pub mod lock;
pub mod policy;
pub mod random;
pub mod store;
pub mod sync;
pub mod text;
pub mod writer;

use std::path::PathBuf;

pub use skillsmith_guest::domain::{
    Coverage, Decision, Directive, FailureKind, HttpError, Level, Phase, Progress, ScheduleConfig,
    Skill, StoreError, SyncError, SyncMode, SyncReport, TrustTier, WaitReason,
};
pub use sync::{Backend, SyncFailure, SyncObserver, SyncOutcome, SyncRunner};

/// The live registry's API base URL.
pub const DEFAULT_REGISTRY_URL: &str = "https://api.skillsmith.app/functions/v1";

/// Platform directories of skillsmith (`~/.local/share/skillsmith`,
/// `~/Library/Application Support/app.skillsmith.skillsmith`, ...).
pub(crate) fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("app", "skillsmith", "skillsmith")
}

/// The default catalogue: `skills.db` in the platform data directory, or
/// `None` when there is no home directory to put it in.
pub fn default_db_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.data_dir().join("skills.db"))
}

/// The default cache directory for the compiled component (see
/// [`component::default_cache_dir`]).
pub fn default_cache_dir() -> Option<PathBuf> {
    component::default_cache_dir()
}

#[cfg(test)]
mod e2e_tests;
#[cfg(test)]
mod testutil;
