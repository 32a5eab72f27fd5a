//! Running one sync for a tool call or the background scheduler: on the
//! blocking pool (wasmtime and SQLite block), with an observer that forwards
//! progress and stops the engine when the process shuts down or the client
//! cancels the request.

use std::sync::Arc;
use std::time::Duration;

use skillsmith_runtime::{
    FailureKind, Level, Progress, SyncFailure, SyncObserver, SyncOutcome, SyncRunner,
};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio_util::sync::CancellationToken;

use crate::shutdown::Shutdown;
use crate::state::Shared;

/// Who asked for a sync (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `sync` tool.
    Tool,
    /// The background scheduler.
    Background,
}

/// One sync to run.
#[derive(Debug)]
pub struct SyncRequest {
    /// Full resync.
    pub force: bool,
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// Who asked.
    pub origin: Origin,
    /// Receives each progress report.
    pub progress: Option<watch::Sender<Option<Progress>>>,
    /// The client cancelled the request.
    pub cancel: Option<CancellationToken>,
    /// For a scheduled sync: the catalogue's last attempt when it was found
    /// due (see `SyncRunner::scheduled_after`).
    pub scheduled_after: Option<Option<String>>,
}

/// Why a sync did not run or did not complete. The texts are for users.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// There is no catalogue path.
    #[error("{0}")]
    NoCatalogue(String),
    /// The process is shutting down.
    #[error("the server is shutting down; no new sync is started")]
    ShuttingDown,
    /// The runtime reported a failure.
    #[error("{}", describe_failure(.0))]
    Failed(SyncFailure),
    /// The sync thread panicked (a bug).
    #[error("the sync stopped unexpectedly ({0}); this is a bug, please report it")]
    Crashed(String),
}

impl RunError {
    /// Another process holds the database lease: not a failure of this
    /// process, nothing was recorded.
    pub fn is_busy(&self) -> bool {
        self.kind() == Some(FailureKind::Busy)
    }

    /// The kind of the failure, when the runtime reported one.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            RunError::Failed(f) => Some(f.kind()),
            _ => None,
        }
    }
}

/// What happened, and the one thing to do, as the MCP client reads it.
fn describe_failure(f: &SyncFailure) -> String {
    let kind = f.kind();
    let hint = match kind {
        FailureKind::Busy => " (`sync_status` shows it), then call `sync` again",
        _ => "",
    };
    format!("{f}; to fix: {}{hint}", kind.action())
}

/// Forwards what the engine reports to tracing, to a progress channel, and
/// stops it on shutdown or cancellation.
struct Observer {
    shutdown: Arc<Shutdown>,
    cancel: Option<CancellationToken>,
    progress: Option<watch::Sender<Option<Progress>>>,
    origin: Origin,
}

impl SyncObserver for Observer {
    fn progress(&mut self, p: &Progress) {
        tracing::debug!(origin = ?self.origin, phase = ?p.phase, done = p.done, total = ?p.total, pages = p.pages, "sync progress");
        if let Some(tx) = &self.progress {
            // Only the newest report matters; a slow client sees fewer.
            let _ = tx.send(Some(*p));
        }
    }

    fn log(&mut self, level: Level, msg: &str) {
        let origin = self.origin;
        match level {
            Level::Trace => tracing::trace!(?origin, "sync: {msg}"),
            Level::Debug => tracing::debug!(?origin, "sync: {msg}"),
            Level::Info => tracing::info!(?origin, "sync: {msg}"),
            Level::Warn => tracing::warn!(?origin, "sync: {msg}"),
            Level::Error => tracing::error!(?origin, "sync: {msg}"),
        }
    }

    fn should_stop(&self) -> bool {
        self.shutdown.is_stopping() || self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }
}

/// Runs one sync. `lock` is the in-process sync lock (none for a dry run,
/// which writes nothing); it is held, with the shutdown registration, until
/// the blocking work ends, even if the caller stops waiting.
pub async fn run(
    shared: &Arc<Shared>,
    request: SyncRequest,
    lock: Option<OwnedMutexGuard<()>>,
) -> Result<SyncOutcome, RunError> {
    if shared.shutdown.is_stopping() {
        return Err(RunError::ShuttingDown);
    }
    let path = shared.db_path.clone().map_err(RunError::NoCatalogue)?;
    let settings = &shared.settings;
    let observer = Observer {
        shutdown: shared.shutdown.clone(),
        cancel: request.cancel,
        progress: request.progress,
        origin: request.origin,
    };
    let runner = SyncRunner::new(path, settings.registry.clone())
        .api_key(settings.api_key.clone())
        .force(request.force)
        .dry_run(request.dry_run)
        .retry_budget(Duration::from_secs(settings.retry_budget))
        .observer(Box::new(observer));
    let runner = match request.scheduled_after {
        Some(last_attempt_at) => runner.scheduled_after(last_attempt_at),
        None => runner,
    };
    let active = shared.shutdown.track();
    let origin = request.origin;
    tracing::debug!(
        ?origin,
        force = request.force,
        dry_run = request.dry_run,
        "sync starting"
    );
    let task = tokio::task::spawn_blocking(move || {
        let result = runner.run();
        drop(lock);
        drop(active);
        result
    });
    match task.await {
        Ok(Ok(outcome)) => {
            tracing::info!(
                ?origin,
                added = outcome.added,
                updated = outcome.updated,
                removed = outcome.removed,
                cancelled = outcome.cancelled,
                "sync finished in {:?}",
                outcome.duration
            );
            Ok(outcome)
        }
        Ok(Err(failure)) => Err(RunError::Failed(failure)),
        Err(e) => Err(RunError::Crashed(e.to_string())),
    }
}
