//! `skillsmith-testkit`: a Skillsmith registry for tests and benchmarks.
//!
//! The server follows `shared/reference/skillsmith-openapi.yaml` (`/health`,
//! `/skills-search`, `/skills-get`) and `docs/registry-protocol.md` (the
//! `/skills-changes` feed), all under `/functions/v1` like the live service.
//! Tests drive it in-process through [`RegistryHandle`] or out-of-process
//! through the `skillsmith-registry` binary and its `/_admin` endpoints:
//! mutations (update, delete, insert), injected [`Fault`]s, settings
//! ([`ConfigUpdate`]) and request [`Stats`].
//!
//! ```no_run
//! use skillsmith_testkit::{RegistryServer, ServerConfig};
//! let registry = RegistryServer::start(ServerConfig::new(1000, 7)).unwrap();
//! let url = registry.base_url(); // http://127.0.0.1:PORT/functions/v1
//! let changed = registry.update(10);
//! # let _ = (url, changed);
//! ```
//!
//! Serving is built for 100,000-skill catalogues: records are rendered to
//! JSON once per change, result orders are computed once per filter set and
//! mutation, and the feed reads a `(updated_at, id)`-keyed index, so a page
//! costs about as much as copying its bytes.
#![deny(missing_docs)]

mod admin;
mod app;
pub mod catalogue;
pub mod config;
pub mod faults;
pub mod feed;
mod reply;
mod search;
pub mod server;
pub mod stats;
mod store;
mod wire;

pub use catalogue::{Catalogue, Category, Skill, TierMix, TrustTier, UPSTREAM_SEARCH_WORDS};
pub use faults::{Fault, FaultKind};
pub use server::{
    ConfigUpdate, ConfigView, HealthStatus, RegistryHandle, RegistryServer, ServerConfig,
};
pub use stats::{RequestRecord, Stats};

#[cfg(test)]
mod tests;
