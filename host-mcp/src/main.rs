//! `skillsmith-mcp`: the Skillsmith MCP server over stdio.
//!
//! stdout carries only JSON-RPC; every log line goes to stderr (`RUST_LOG`
//! filters it). See the crate documentation of `skillsmith_mcp`.

use std::time::Duration;

use anyhow::Context as _;
use skillsmith_mcp::settings::Settings;

fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env_and_args();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("skillsmith-mcp")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(skillsmith_mcp::server::serve(settings));
    // `serve` already waited for syncs as long as it should; a blocking
    // thread still busy (a sync that ignored the stop signal, a stdin read
    // that cannot be cancelled) must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(50));
    Ok(())
}

/// Logs go to stderr: stdout belongs to the protocol.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,skillsmith_mcp=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`2>&1 | head`) must not panic the process:
        // the subscriber would report its failed write with `eprintln!`.
        .log_internal_errors(false)
        .with_ansi(false)
        .with_target(false)
        .init();
}
