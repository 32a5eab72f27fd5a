//! `skillsmith-mcp`: the Skillsmith MCP server. Search and inspect skills in
//! the local catalogue, sync it with the registry, and keep it current in the
//! background while a Claude Code (or any MCP client) session runs.
//!
//! [`server::serve`] runs one session over stdio; the binary's `main` only
//! parses [`settings::Settings`], sets up logging to stderr and calls it.

#![deny(missing_docs)]

pub mod background;
pub mod schema;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod syncing;
pub mod tools;
