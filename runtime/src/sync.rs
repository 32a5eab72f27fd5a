//! The entry point of a sync for the CLI and the MCP server: [`SyncRunner`].
//!
//! It opens the catalogue (read-only for a dry run: no lease, no history, no
//! writes at all), takes the sync lease, runs the engine through the chosen
//! backend, closes any run the engine left open, releases the lease and
//! returns the report, or a [`SyncFailure`] whose text says what happened
//! and what to do.
//!
//! Every failure has one [`FailureKind`] ([`SyncFailure::kind`]): the CLI's
//! exit code, the MCP tool error and the scheduler's retry policy derive
//! from it. The texts here say what happened and where; the thing to do is
//! the kind's ([`FailureKind::action`]), and each program adds its own
//! hints (flags, tools).
//!
//! A cancelled sync (a signal, Ctrl-C, the session ending) is not a
//! failure: it returns a report with `cancelled = true`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use skillsmith_guest::domain::{
    Decision, FailureKind, ScheduleConfig, SyncError, SyncMode, SyncOptions, SyncReport,
};

use crate::component::{ComponentError, ComponentLimits, GuestStats};
use crate::host::{HostStats, SyncHost, TracingObserver};
use crate::http::{HttpBackend, HttpInitError};
use crate::policy::{Policy, PolicyError};
use skillsmith_catalogue::db::{CoverageView, Database, DbError};
use skillsmith_catalogue::lock::LockError;
use skillsmith_catalogue::store::Store;

pub use crate::host::SyncObserver;

/// Which implementation of the engine runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The WebAssembly component, confined by the host (the default).
    #[default]
    Component,
    /// The same engine compiled into this binary (comparison, fallback).
    Native,
}

/// Why a sync did not complete. The texts are for users.
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    /// The registry URL is unusable.
    #[error(transparent)]
    InvalidRegistry(#[from] PolicyError),
    /// Another process is syncing this catalogue.
    #[error("another sync of this catalogue is in progress (process {pid}, since {since})")]
    Busy {
        /// The holder's process id.
        pid: u32,
        /// Host time it started.
        since: String,
    },
    /// A scheduled sync found, once it held the lease, that another process
    /// had synced since it was scheduled (see
    /// [`SyncRunner::scheduled_after`]); nothing ran.
    #[error("another process synced this catalogue at {at}, after this sync was scheduled")]
    Superseded {
        /// When that sync ended.
        at: String,
    },
    /// The engine reported a failure (recorded in history).
    #[error("{0}")]
    Sync(SyncError),
    /// The catalogue could not be opened or written.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The HTTP client could not start.
    #[error(transparent)]
    Http(#[from] HttpInitError),
    /// The component could not be loaded, or trapped (recorded in history).
    #[error(transparent)]
    Component(#[from] ComponentError),
}

impl From<LockError> for SyncFailure {
    fn from(e: LockError) -> SyncFailure {
        match e {
            LockError::Busy { pid, since } => SyncFailure::Busy { pid, since },
            LockError::Database(d) => SyncFailure::Database(d),
            LockError::Lost | LockError::NoFile => SyncFailure::Sync(SyncError::Busy),
        }
    }
}

impl SyncFailure {
    /// The kind of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            SyncFailure::InvalidRegistry(_) => FailureKind::Usage,
            SyncFailure::Busy { .. } => FailureKind::Busy,
            SyncFailure::Superseded { .. } => FailureKind::Superseded,
            SyncFailure::Sync(e) => e.kind(),
            SyncFailure::Database(e) => e.kind(),
            SyncFailure::Http(_) => FailureKind::Internal,
            SyncFailure::Component(_) => FailureKind::Component,
        }
    }
}

/// A completed (or cancelled) sync. Dereferences to its [`SyncReport`].
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// What the engine did.
    pub report: SyncReport,
    /// Which backend ran.
    pub backend: Backend,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Wall time, opening the database to releasing the lease.
    pub duration: Duration,
    /// What the host did.
    pub host: HostStats,
    /// Component timings (component backend only).
    pub guest: Option<GuestStats>,
}

impl std::ops::Deref for SyncOutcome {
    type Target = SyncReport;

    fn deref(&self) -> &SyncReport {
        &self.report
    }
}

/// A sync's report as the programs print it: the CLI's `--json` and the
/// MCP `sync` tool's structured result.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReportView {
    /// `success`, or `cancelled` when it was stopped (what it applied is kept).
    pub status: &'static str,
    /// Which implementation of the engine ran: `component` or `native`.
    pub backend: Backend,
    /// Nothing was written.
    pub dry_run: bool,
    /// What the engine did.
    #[serde(flatten)]
    pub report: SyncReport,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Search mode: how much of the registry the listings reached.
    pub coverage: Option<CoverageView>,
}

impl From<&SyncOutcome> for ReportView {
    fn from(o: &SyncOutcome) -> ReportView {
        let r = &o.report;
        ReportView {
            status: if r.cancelled { "cancelled" } else { "success" },
            backend: o.backend,
            dry_run: o.dry_run,
            report: r.clone(),
            duration_ms: o.duration.as_millis().min(u128::from(u64::MAX)) as u64,
            coverage: r.coverage.as_ref().map(CoverageView::from),
        }
    }
}

impl Serialize for SyncOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ReportView::from(self).serialize(s)
    }
}

/// Configures and runs one sync.
pub struct SyncRunner {
    db_path: PathBuf,
    registry: String,
    api_key: Option<String>,
    force: bool,
    dry_run: bool,
    page_size: u32,
    mode: Option<SyncMode>,
    backend: Backend,
    retry_budget: Duration,
    observer: Box<dyn SyncObserver>,
    wait_for_lease: Option<Duration>,
    scheduled_after: Option<Option<String>>,
    limits: Option<ComponentLimits>,
    max_body_bytes: Option<u64>,
    http_timeout: Option<Duration>,
}

impl std::fmt::Debug for SyncRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRunner")
            .field("db_path", &self.db_path)
            .field("registry", &self.registry)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("force", &self.force)
            .field("dry_run", &self.dry_run)
            .field("page_size", &self.page_size)
            .field("mode", &self.mode)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SyncRunner {
    /// A differential sync of the catalogue at `db_path` from the registry
    /// at `registry_url` (e.g. [`crate::DEFAULT_REGISTRY_URL`]), through the
    /// component, 100 skills per request, 120 s retry budget.
    pub fn new(db_path: impl Into<PathBuf>, registry_url: impl Into<String>) -> SyncRunner {
        SyncRunner {
            db_path: db_path.into(),
            registry: registry_url.into(),
            api_key: None,
            force: false,
            dry_run: false,
            page_size: 0,
            mode: None,
            backend: Backend::Component,
            retry_budget: Duration::from_secs(120),
            observer: Box::new(TracingObserver),
            wait_for_lease: None,
            scheduled_after: None,
            limits: None,
            max_body_bytes: None,
            http_timeout: None,
        }
    }

    /// The API key, sent as `X-API-Key` to the registry's origin only.
    pub fn api_key(mut self, key: Option<String>) -> SyncRunner {
        self.api_key = key.filter(|k| !k.is_empty());
        self
    }

    /// Full resync: refetch everything, remove what the registry dropped.
    pub fn force(mut self, force: bool) -> SyncRunner {
        self.force = force;
        self
    }

    /// Report what would change; write nothing, not even history.
    pub fn dry_run(mut self, dry_run: bool) -> SyncRunner {
        self.dry_run = dry_run;
        self
    }

    /// Skills per request (the engine clamps it per endpoint); 0, the
    /// default, is the most each endpoint accepts.
    pub fn page_size(mut self, n: u32) -> SyncRunner {
        self.page_size = n;
        self
    }

    /// Force a protocol instead of discovering it.
    pub fn mode(mut self, mode: Option<SyncMode>) -> SyncRunner {
        self.mode = mode;
        self
    }

    /// Component (default) or native.
    pub fn backend(mut self, backend: Backend) -> SyncRunner {
        self.backend = backend;
        self
    }

    /// Most total waiting on retries of a failing request.
    pub fn retry_budget(mut self, budget: Duration) -> SyncRunner {
        self.retry_budget = budget;
        self
    }

    /// Receives progress and logs, and can stop the sync.
    pub fn observer(mut self, observer: Box<dyn SyncObserver>) -> SyncRunner {
        self.observer = observer;
        self
    }

    /// Wait up to `timeout` for another process's sync instead of failing
    /// with [`SyncFailure::Busy`].
    pub fn wait_for_lease(mut self, timeout: Duration) -> SyncRunner {
        self.wait_for_lease = Some(timeout);
        self
    }

    /// A scheduled sync, decided when the catalogue's last attempt was
    /// `last_attempt_at`: once it holds the lease it re-reads that, and if
    /// another process has synced since, it stops with
    /// [`SyncFailure::Superseded`] instead of syncing again.
    pub fn scheduled_after(mut self, last_attempt_at: Option<String>) -> SyncRunner {
        self.scheduled_after = Some(last_attempt_at);
        self
    }

    /// Limits for the component (memory, guest run time).
    pub fn component_limits(mut self, limits: ComponentLimits) -> SyncRunner {
        self.limits = Some(limits);
        self
    }

    /// Cap on one response body (default 16 MiB).
    pub fn max_body_bytes(mut self, bytes: u64) -> SyncRunner {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Most time any one request may take, body included (default 30 s,
    /// or less when the engine asks for less).
    pub fn http_timeout(mut self, timeout: Duration) -> SyncRunner {
        self.http_timeout = Some(timeout);
        self
    }

    /// Runs the sync.
    pub fn run(self) -> Result<SyncOutcome, SyncFailure> {
        let started = Instant::now();
        let registry = self.registry.trim().trim_end_matches('/').to_owned();
        let mut policy = Policy::for_registry(&registry)?;
        if let Some(cap) = self.max_body_bytes {
            policy = policy.with_max_body_bytes(cap);
        }
        if let Some(t) = self.http_timeout {
            // The user's limit is both the default and the cap.
            policy = policy.with_timeouts(t, t);
        }
        // Load the component before touching the catalogue: a component that
        // cannot load must not take the lease or leave a history row.
        let component = match self.backend {
            Backend::Component => Some(crate::component::embedded()?),
            Backend::Native => None,
        };
        let http = HttpBackend::new(policy, self.api_key)?;
        let (db, lease) = if self.dry_run {
            (Database::open_read_only(&self.db_path)?, None)
        } else {
            let db = Database::open(&self.db_path)?;
            let lease = match self.wait_for_lease {
                Some(t) => db.lease_wait(t)?,
                None => db.lease()?,
            };
            // The schedule was decided before the lease was ours; another
            // process may have synced in between.
            if let Some(decided) = &self.scheduled_after {
                let now = db.config()?.last_attempt_at;
                if now != *decided {
                    return Err(SyncFailure::Superseded {
                        at: now.unwrap_or_default(),
                    });
                }
            }
            (db, Some(lease))
        };
        let clock = db.clock();
        let store = Store::new(db, lease.as_ref().map(|l| l.holder().to_owned()));
        let host = SyncHost::new(http, store, self.observer);
        let options = SyncOptions {
            registry,
            force: self.force,
            dry_run: self.dry_run,
            page_size: self.page_size,
            mode: self.mode,
            now_ms: clock.now_ms(),
            retry_budget_ms: self.retry_budget.as_millis().min(u128::from(u64::MAX)) as u64,
        };

        let (result, mut host, guest) = match component {
            None => {
                let mut host = host;
                let r = skillsmith_guest::engine::run(&mut host, options);
                (Ok(r), host, None)
            }
            Some(c) => {
                // Limits are per run: the loaded component is shared.
                let limits = self.limits.unwrap_or_else(|| c.limits());
                let run = c.run_limited(host, options, limits);
                (run.result, run.host, Some(run.stats))
            }
        };

        if let Err(ComponentError::Trap { backtrace, .. }) = &result
            && !backtrace.is_empty()
        {
            tracing::debug!("sync component backtrace:\n{backtrace}");
        }
        // The engine closes its run itself; if it could not (trap, a bug),
        // close it here so history never shows a dead run as `running`.
        if host.open_run().is_some() {
            let (why, kind) = match &result {
                Err(trap) => (trap.to_string(), FailureKind::Component),
                Ok(Err(e)) => (e.describe(), e.kind()),
                Ok(Ok(_)) => (
                    "the sync engine returned without closing its run".to_owned(),
                    FailureKind::Component,
                ),
            };
            if let Err(e) = host.abandon_open_run(&why, kind) {
                tracing::warn!("could not close the interrupted sync run: {e}");
            }
        }
        let stats = host.stats();
        drop(host);
        if let Some(lease) = lease
            && let Err(e) = lease.release()
        {
            tracing::warn!("could not release the sync lease (it expires by itself): {e}");
        }
        let report = result?.map_err(SyncFailure::Sync)?;
        Ok(SyncOutcome {
            report,
            backend: self.backend,
            dry_run: self.dry_run,
            duration: started.elapsed(),
            host: stats,
            guest,
        })
    }
}

/// Whether a background sync is due, decided by the component's `schedule`
/// export (the same code the store uses natively after each run).
///
/// `jitter_seed` spreads clients' retries: keep one per process (or per
/// client) and pass it at every check. A fresh seed per check would redraw
/// the jitter each time and let the earliest draw win, shrinking the spread.
pub fn decide_schedule(
    config: ScheduleConfig,
    now_ms: i64,
    jitter_seed: u64,
) -> Result<Decision, ComponentError> {
    crate::component::embedded()?.decide(config, now_ms, jitter_seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        use skillsmith_guest::domain::{HttpError, StoreError};
        let s = |e| SyncFailure::Sync(e).kind();
        assert_eq!(
            s(SyncError::Unreachable(HttpError::Timeout)),
            FailureKind::Unreachable
        );
        assert_eq!(
            s(SyncError::Unreachable(HttpError::Tls("x".into()))),
            FailureKind::Tls
        );
        assert_eq!(
            s(SyncError::Unreachable(HttpError::TooLarge(9))),
            FailureKind::TooLarge
        );
        assert_eq!(
            s(SyncError::Registry("503".into())),
            FailureKind::Unreachable
        );
        assert_eq!(
            s(SyncError::Redirected("x".into())),
            FailureKind::Redirected
        );
        assert_eq!(
            s(SyncError::NotARegistry("x".into())),
            FailureKind::NotARegistry
        );
        assert_eq!(
            s(SyncError::Unauthorized("401".into())),
            FailureKind::Unauthorised
        );
        assert_eq!(s(SyncError::QuotaExceeded("q".into())), FailureKind::Quota);
        assert_eq!(
            s(SyncError::RateLimited("r".into())),
            FailureKind::RateLimited
        );
        assert_eq!(s(SyncError::Protocol("p".into())), FailureKind::Protocol);
        assert_eq!(
            s(SyncError::Store(StoreError::NoSpace)),
            FailureKind::NoSpace
        );
        assert_eq!(
            s(SyncError::Store(StoreError::ReadOnly)),
            FailureKind::ReadOnly
        );
        assert_eq!(
            s(SyncError::Store(StoreError::Busy)),
            FailureKind::StoreBusy
        );
        assert_eq!(s(SyncError::Busy), FailureKind::Busy);
        let busy = SyncFailure::Busy {
            pid: 1,
            since: "x".into(),
        };
        assert_eq!(busy.kind(), FailureKind::Busy);
        assert_eq!(
            SyncFailure::Superseded { at: "x".into() }.kind(),
            FailureKind::Superseded
        );
        assert_eq!(
            SyncFailure::InvalidRegistry(Policy::for_registry("x").unwrap_err()).kind(),
            FailureKind::Usage
        );
        assert_eq!(
            SyncFailure::Component(ComponentError::Engine("x".into())).kind(),
            FailureKind::Component
        );
    }

    #[test]
    fn failure_texts_name_no_flags_and_the_kind_says_what_to_do() {
        let f = SyncFailure::Sync(SyncError::Unauthorized("401 Unauthorized".into()));
        assert!(f.kind().action().contains("SKILLSMITH_API_KEY"));
        let t = SyncFailure::Busy {
            pid: 42,
            since: "2026-01-01T00:00:00.000Z".into(),
        }
        .to_string();
        assert!(t.contains("42") && !t.contains("--"), "{t}");
    }
}
