//! `skillsmith-registry`: the test registry as a process, for the Node.js and
//! Python tests and for benchmarks. Prints one line,
//! `listening on http://127.0.0.1:PORT/functions/v1`, when ready.

use std::io::{Read as _, Write as _};

use clap::Parser;
use skillsmith_testkit::{
    RegistryServer, ServerConfig, TierMix,
    server::{RateWindows, UNLIMITED},
};

/// A Skillsmith registry serving generated skills, with admin endpoints
/// under /_admin for mutations, faults and stats.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Skills to generate.
    #[arg(long, default_value_t = 1000)]
    skills: usize,
    /// Seed for the generated skills.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Do not serve /skills-changes (a registry like the live one).
    #[arg(long)]
    no_feed: bool,
    /// Require this X-API-Key.
    #[arg(long)]
    api_key: Option<String>,
    /// Requests per rate window (a minute unless --rate-window-ms) before 429.
    #[arg(long, default_value_t = UNLIMITED)]
    rate_limit: u32,
    /// Registry clock offset from the wall clock, in milliseconds.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    clock_offset_ms: i64,
    /// Tier shares, e.g. `verified=1,community=6,experimental=3`; tiers
    /// outside the OpenAPI enum are served but cannot be filtered on.
    #[arg(long, value_parser = TierMix::parse)]
    tier_mix: Option<TierMix>,
    /// Give every N-th skill a stale copy that search listings serve beside
    /// it (same id, older updated_at); 0 for none.
    #[arg(long, default_value_t = 0)]
    stale_copy_every: usize,
    /// Answer /stats with 404 (a registry that does not say its size).
    #[arg(long)]
    no_stats: bool,
    /// Never compress responses, whatever Accept-Encoding asks.
    #[arg(long)]
    no_compression: bool,
    /// Length of the rate limit's window, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    rate_window_ms: u64,
    /// Where the windows lie: `first-request` (opened by a request, reset
    /// rounded up), `aligned` (back to back from the Unix epoch, reset
    /// exact) or `first-request-rounded-down` (reset up to a second early).
    #[arg(long, value_enum, default_value = "first-request")]
    rate_windows: RateWindows,
    /// Send X-RateLimit-Reset in Unix milliseconds instead of seconds.
    #[arg(long)]
    rate_reset_ms: bool,
    /// Milliseconds added before every API response (a slow network).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Exit when stdin reaches end of file (the parent went away).
    #[arg(long)]
    exit_on_stdin_close: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let config = ServerConfig {
        skills: args.skills,
        seed: args.seed,
        port: args.port,
        feed_enabled: !args.no_feed,
        api_key: args.api_key,
        rate_limit_per_minute: args.rate_limit,
        clock_offset_ms: args.clock_offset_ms,
        tier_mix: args.tier_mix.unwrap_or_default(),
        stale_copy_every: args.stale_copy_every,
        stats_enabled: !args.no_stats,
        compression: !args.no_compression,
        rate_window_ms: args.rate_window_ms,
        rate_windows: args.rate_windows,
        rate_reset_millis: args.rate_reset_ms,
        latency_ms: args.latency_ms,
        ..ServerConfig::default()
    };
    let started = std::time::Instant::now();
    let registry = RegistryServer::start(config)?;
    tracing::info!(
        skills = args.skills,
        seed = args.seed,
        feed = !args.no_feed,
        "ready in {:?}; admin at {}/_admin",
        started.elapsed(),
        registry.origin()
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", registry.base_url())?;
    out.flush()?;
    drop(out);

    // The server runs on its own runtime; this one only waits for the end.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let stdin_closed = async {
            if !args.exit_on_stdin_close {
                return std::future::pending().await;
            }
            // A blocking reader thread: tokio's stdin needs a feature this
            // workspace does not enable, and this is one read loop.
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                let mut sink = [0u8; 256];
                let mut stdin = std::io::stdin().lock();
                while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
                let _ = tx.send(());
            });
            let _ = rx.await;
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
            _ = terminate => tracing::info!("terminated"),
            _ = stdin_closed => tracing::info!("stdin closed"),
        }
    });
    drop(registry);
    Ok(())
}
