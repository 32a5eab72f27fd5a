//! Background sync (ADR-018's second tier), better than upstream.
//!
//! Started with the session; checks at once (so a due sync runs at start)
//! and then every check interval (60 s by default). Each check re-reads
//! `sync_config`, so `skillsmith sync config --disable` in a terminal stops
//! it in a running session, and asks the sync component's pure `schedule`
//! export whether a sync is due. The store records every attempt's end
//! (`last_attempt_at`, `consecutive_failures`), so after a failure the
//! decision backs off (1 min, 2, 4, ... capped at the interval, jittered)
//! instead of retrying at every check. A failure the store could not record
//! (no database, component failed to load) is counted here and fed to the
//! same decision.
//!
//! Never two syncs at once: the in-process lock is tried, and a database
//! lease held by another process skips the check quietly. The task holds
//! nothing that keeps the process alive: `main` returns when the MCP session
//! ends, whatever this task is doing.

use std::sync::Arc;

use skillsmith_runtime::clock::{self, Clock};
use skillsmith_runtime::db::SyncConfigView;
use skillsmith_runtime::{ScheduleConfig, SyncFailure, SyncOutcome};
use tokio::sync::OwnedMutexGuard;

use crate::state::Shared;
use crate::syncing::{self, Origin, RunError, SyncRequest};

/// Failures of this session that never reached the history table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Unrecorded {
    /// When the last one happened (host ms).
    last_attempt_ms: i64,
    /// How many in a row.
    failures: u32,
}

/// The scheduler's input: the stored facts, unless this session saw later
/// failures that were never recorded; then those count on top.
fn schedule_input(config: &SyncConfigView, unrecorded: Option<Unrecorded>) -> ScheduleConfig {
    let mut sc = config.schedule_config();
    if let Some(u) = unrecorded
        && sc.last_attempt_ms.is_none_or(|t| t < u.last_attempt_ms)
    {
        sc.last_attempt_ms = Some(u.last_attempt_ms);
        sc.consecutive_failures = sc.consecutive_failures.saturating_add(u.failures);
    }
    sc
}

/// Runs the scheduler until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let clock = Clock::from_env();
    // The process's seed: the same jitter as the due times syncs write.
    let seed = skillsmith_runtime::random::jitter_seed();
    let interval = shared.settings.check_interval();
    shared.background().active = true;
    tracing::info!(
        "background sync scheduler started (checks every {} ms)",
        interval.as_millis()
    );
    let mut unrecorded = None;
    let mut last_error = None;
    loop {
        if shared.shutdown.is_stopping() {
            break;
        }
        check(&shared, clock, seed, &mut unrecorded, &mut last_error).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.wake.notified() => tracing::debug!("early check requested"),
            _ = shared.shutdown.stopping() => break,
        }
    }
    shared.background().active = false;
}

/// Logs a repeated problem once, at warn, and its repeats at debug.
fn warn_once(last: &mut Option<String>, text: String) {
    if last.as_deref() == Some(text.as_str()) {
        tracing::debug!("background sync: {text}");
    } else {
        tracing::warn!("background sync: {text}");
        *last = Some(text);
    }
}

async fn check(
    shared: &Arc<Shared>,
    clock: Clock,
    seed: u64,
    unrecorded: &mut Option<Unrecorded>,
    last_error: &mut Option<String>,
) {
    let now = clock.now_ms();
    {
        let mut b = shared.background();
        b.checks += 1;
        b.last_check_at = Some(clock::format_ms(now));
    }
    let config = match shared.with_db(|db| db.config()).await {
        Ok(c) => c,
        Err(e) => {
            // Without a database nothing can sync, so nothing reaches the
            // registry; say so once, and keep checking (it may come back).
            warn_once(last_error, format!("cannot read sync_config: {e}"));
            return;
        }
    };
    let input = schedule_input(&config, *unrecorded);
    // The component's pure `schedule.decide` export. Loading the component
    // the first time compiles or reads the cache: blocking work.
    let decide = move || skillsmith_runtime::component::embedded()?.decide(input, now, seed);
    let decision = match tokio::task::spawn_blocking(decide).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            warn_once(last_error, format!("the scheduling component failed: {e}"));
            return;
        }
        Err(e) => {
            warn_once(last_error, format!("the scheduling decision panicked: {e}"));
            return;
        }
    };
    {
        let mut b = shared.background();
        b.enabled = Some(config.enabled);
        b.next_sync_at = decision.next_ms.map(clock::format_ms);
    }
    tracing::debug!(
        enabled = config.enabled,
        due = decision.due,
        next = ?decision.next_ms.map(clock::format_ms),
        failures = input.consecutive_failures,
        "background check"
    );
    if !decision.due {
        return;
    }
    let Ok(lock) = shared.sync_lock.clone().try_lock_owned() else {
        tracing::debug!("background sync due, but a sync is already running in this session");
        return;
    };
    let result = run_now(shared, lock, Some(config.last_attempt_at.clone())).await;
    match result {
        Ok(_) => {
            *unrecorded = None;
            *last_error = None;
        }
        // Not a failure of ours: the other process records its own run.
        Err(e) if e.is_busy() => tracing::debug!("background sync skipped: {e}"),
        Err(RunError::ShuttingDown) => {}
        Err(e) => {
            warn_once(last_error, format!("failed: {e}"));
            // Did the store record this attempt? If not, count it here so
            // the next decision still backs off.
            let after = shared.with_db(|db| db.config()).await.ok();
            let recorded = after
                .as_ref()
                .is_some_and(|a| a.last_attempt_at != config.last_attempt_at);
            *unrecorded = if recorded {
                None
            } else {
                let prev = unrecorded.map_or(0, |u| u.failures);
                Some(Unrecorded {
                    last_attempt_ms: clock.now_ms(),
                    failures: prev + 1,
                })
            };
        }
    }
}

/// Runs one background sync now, holding `lock` (the session's sync lock),
/// and records it in the session's background status. `scheduled_after` is
/// the last attempt the decision saw (see `SyncRunner::scheduled_after`);
/// `None` for a sync that was asked for rather than found due.
pub async fn run_now(
    shared: &Arc<Shared>,
    lock: OwnedMutexGuard<()>,
    scheduled_after: Option<Option<String>>,
) -> Result<SyncOutcome, RunError> {
    {
        let mut b = shared.background();
        b.syncs_started += 1;
        b.running = true;
    }
    let request = SyncRequest {
        force: false,
        dry_run: false,
        origin: Origin::Background,
        progress: None,
        cancel: None,
        scheduled_after,
    };
    let result = syncing::run(shared, request, Some(lock)).await;
    let summary = match &result {
        Ok(o) if o.cancelled => "cancelled".to_owned(),
        Ok(o) => format!(
            "success: {} added, {} updated, {} removed",
            o.added, o.updated, o.removed
        ),
        Err(RunError::Failed(SyncFailure::Superseded { .. })) => {
            "skipped: another process has just synced".to_owned()
        }
        Err(e) if e.is_busy() => "skipped: another process is syncing".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    {
        let mut b = shared.background();
        b.running = false;
        b.last_result = Some(summary);
        let skipped = matches!(&result, Err(e) if e.is_busy())
            || matches!(
                &result,
                Err(RunError::Failed(SyncFailure::Superseded { .. }))
            );
        if skipped {
            // The lease was taken, or another process synced while this
            // one was deciding: nothing ran here.
            b.syncs_started -= 1;
            b.skipped_busy += 1;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(last_attempt: Option<&str>, failures: u32) -> SyncConfigView {
        SyncConfigView {
            last_attempt_at: last_attempt.map(str::to_owned),
            consecutive_failures: failures,
            ..SyncConfigView::default()
        }
    }

    #[test]
    fn unrecorded_failures_count_only_when_newer() {
        let stored = config(Some("2026-01-01T00:00:00.000Z"), 2);
        let t = clock::parse_ms("2026-01-01T00:00:00.000Z").unwrap();
        assert_eq!(schedule_input(&stored, None).consecutive_failures, 2);
        let newer = Unrecorded {
            last_attempt_ms: t + 1000,
            failures: 1,
        };
        let sc = schedule_input(&stored, Some(newer));
        assert_eq!(sc.consecutive_failures, 3);
        assert_eq!(sc.last_attempt_ms, Some(t + 1000));
        let older = Unrecorded {
            last_attempt_ms: t - 1000,
            failures: 1,
        };
        assert_eq!(schedule_input(&stored, Some(older)).consecutive_failures, 2);
        let never = config(None, 0);
        assert_eq!(schedule_input(&never, Some(newer)).consecutive_failures, 1);
    }
}
