//! `skillsmith`: sync the local skill catalogue with the registry, and search it.
//!
//! `main` parses flags and maps the result of [`run`] to an exit code; the work
//! is done by `skillsmith-runtime`, which runs the sync component.

mod cli;
mod commands;
mod failure;
mod progress;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return failure::usage(e),
    };
    init_logging(cli.verbose);
    let json = cli.wants_json();
    match commands::run(cli) {
        Ok(code) => code,
        // The reader of stdout (`| head -1`) has what it wanted.
        Err(err) if failure::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(failure::report(&err, json)),
    }
}

/// Logs go to stderr so that `--json` output on stdout stays parseable.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`2>&1 | head`) must not panic the process:
        // the subscriber would report its failed write with `eprintln!`.
        .log_internal_errors(false)
        .with_ansi(render::color_enabled())
        .with_target(false)
        .init();
}
