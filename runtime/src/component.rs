//! The sandbox's component runtime bound to this crate's host: what the
//! CLI, the MCP server and the tests load and run. Everything of
//! `skillsmith_sandbox::component`, with [`ComponentRuntime`] and
//! [`ComponentRun`] for [`SyncHost`].

pub use skillsmith_sandbox::component::*;

use crate::host::SyncHost;

/// A compiled, linked component that runs against a [`SyncHost`].
pub type ComponentRuntime = skillsmith_sandbox::component::ComponentRuntime<SyncHost>;

/// One run's result, with the [`SyncHost`] back.
pub type ComponentRun = skillsmith_sandbox::component::ComponentRun<SyncHost>;

/// The component embedded in this build, compiled (or loaded from the
/// cache) once per process.
pub fn embedded() -> Result<&'static ComponentRuntime, ComponentError> {
    static EMBEDDED: std::sync::OnceLock<Result<ComponentRuntime, ComponentError>> =
        std::sync::OnceLock::new();
    EMBEDDED
        .get_or_init(ComponentRuntime::embedded)
        .as_ref()
        .map_err(Clone::clone)
}
