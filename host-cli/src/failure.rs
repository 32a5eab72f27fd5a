//! How a failed command ends: its exit code, derived from the failure's
//! kind (the table in the README), and what it prints: one line saying what
//! happened and one saying what to do, or one JSON document on stdout with
//! `--json`. A closed stdout (`| head`) is not a failure at all.

use std::io::Write as _;

use serde_json::json;
use skillsmith_runtime::FailureKind;
use skillsmith_runtime::db::DbError;
use skillsmith_runtime::sync::SyncFailure;
use skillsmith_runtime::text::printable;

/// Exit code of a command that failed without a more precise kind.
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a sync stopped by a signal or Ctrl-C (its committed pages
/// are kept).
pub const EXIT_CANCELLED: u8 = 9;

/// The documented exit code of a failure of this kind.
pub fn exit_code(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Usage => 2,
        FailureKind::Unreachable
        | FailureKind::Tls
        | FailureKind::Redirected
        | FailureKind::NotARegistry => 3,
        FailureKind::Unauthorised | FailureKind::Quota | FailureKind::RateLimited => 4,
        FailureKind::Protocol | FailureKind::TooLarge => 5,
        FailureKind::StoreCorrupt | FailureKind::NoSpace | FailureKind::ReadOnly => 6,
        FailureKind::StoreBusy | FailureKind::Busy | FailureKind::Superseded => 7,
        FailureKind::Component => 8,
        FailureKind::Cancelled => EXIT_CANCELLED,
        FailureKind::Internal => EXIT_OTHER,
    }
}

/// The kind of the first typed failure in `err`'s chain.
pub fn kind_of(err: &anyhow::Error) -> Option<FailureKind> {
    err.chain().find_map(|cause| {
        if let Some(f) = cause.downcast_ref::<SyncFailure>() {
            return Some(f.kind());
        }
        cause.downcast_ref::<DbError>().map(DbError::kind)
    })
}

/// Whether `err` is a write to a closed stdout: the reader (`head`) has
/// what it wanted.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The CLI's own hint for a kind, where one of its flags is the way out.
fn flag_hint(kind: FailureKind) -> Option<&'static str> {
    match kind {
        FailureKind::Busy => Some("`skillsmith sync --wait SECONDS` waits for it"),
        FailureKind::RateLimited => Some("`--retry-budget SECONDS` waits longer"),
        FailureKind::StoreCorrupt | FailureKind::ReadOnly => {
            Some("`--db PATH` uses another catalogue")
        }
        _ => None,
    }
}

/// Ends a command line clap refused: its usual text (help and version
/// included), and with `--json` among the arguments, the JSON document too.
pub fn usage(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if !informational && std::env::args().any(|a| a == "--json") {
        let doc = json!({"error": {
            "kind": FailureKind::Usage.as_str(),
            "message": e
                .to_string()
                .lines()
                .next()
                .unwrap_or("the command line is not valid")
                .trim_start_matches("error: "),
            "action": "run with --help to see the flags",
            "exit_code": exit_code(FailureKind::Usage),
        }});
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &doc);
        let _ = writeln!(out);
    }
    let _ = e.print();
    if informational {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(exit_code(FailureKind::Usage))
    }
}

/// Prints `err` and returns the exit code. Never panics, whatever state
/// stdout and stderr are in.
pub fn report(err: &anyhow::Error, json: bool) -> u8 {
    let kind = kind_of(err);
    let code = kind.map_or(EXIT_OTHER, exit_code);
    let message = crate::render::error_chain(err);
    let action = kind.map(|k| {
        let mut action = k.action().to_owned();
        if let Some(hint) = flag_hint(k) {
            action.push_str(", or ");
            action.push_str(hint);
        }
        action
    });
    if json {
        let doc = json!({"error": {
            "kind": kind.map(FailureKind::as_str),
            "message": message,
            "action": action,
            "exit_code": code,
        }});
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, &doc);
        let _ = writeln!(out);
    }
    let mut err_out = std::io::stderr().lock();
    let _ = writeln!(err_out, "error: {}", printable(&message));
    if let Some(action) = action {
        let _ = writeln!(err_out, "  to fix: {action}");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_code_and_an_action() {
        for kind in FailureKind::ALL {
            let code = exit_code(kind);
            assert!((1..=9).contains(&code), "{kind:?}");
            assert!(!kind.action().is_empty());
            assert!(
                !kind.action().contains("--"),
                "library actions name no flags: {kind:?}"
            );
        }
    }

    #[test]
    fn a_broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::new(io).context("printing results");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }
}
