//! The one implementation of the engine's imports, shared by both backends.
//!
//! [`SyncHost`] implements the guest's `domain::Host` trait natively over the
//! HTTP backend, the store, an observer and a random source. The native
//! backend hands it straight to `skillsmith_guest::engine::run`; the
//! component backend's import traits convert WIT types and delegate to it.
//! Comparing the two therefore measures exactly what the WebAssembly
//! boundary costs.

use std::time::{Duration, Instant};

use skillsmith_guest::domain::{
    Directive, FailureKind, Host, HttpError, HttpRequest, HttpResponse, Level, LocalVersion, Page,
    Progress, RegistryRow, RunOutcome, StoreError, SyncMode, SyncState,
};

use skillsmith_catalogue::random::SplitMix64;
use skillsmith_catalogue::store::Store;
use skillsmith_catalogue::writer::StoreThread;
use skillsmith_sandbox::component::Embedder;

use crate::http::{HttpBackend, Pending};

/// How often blocking waits (`sleep`, `http.wait`) check
/// [`SyncObserver::should_stop`].
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// What a sync tells the program running it, and how that program stops it.
pub trait SyncObserver: Send {
    /// A progress report, at page boundaries.
    fn progress(&mut self, p: &Progress);
    /// A log line from the engine.
    fn log(&mut self, level: Level, msg: &str);
    /// True once the program wants the sync to stop (Ctrl-C, shutdown). The
    /// engine stops at the next page boundary; waits return early.
    fn should_stop(&self) -> bool;
}

/// The default observer: logs through `tracing`, never stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingObserver;

impl SyncObserver for TracingObserver {
    fn progress(&mut self, p: &Progress) {
        tracing::debug!(
            phase = ?p.phase,
            done = p.done,
            total = ?p.total,
            pages = p.pages,
            waiting_ms = p.waiting_ms,
            "sync progress"
        );
    }

    fn log(&mut self, level: Level, msg: &str) {
        match level {
            Level::Trace => tracing::trace!("{msg}"),
            Level::Debug => tracing::debug!("{msg}"),
            Level::Info => tracing::info!("{msg}"),
            Level::Warn => tracing::warn!("{msg}"),
            Level::Error => tracing::error!("{msg}"),
        }
    }

    fn should_stop(&self) -> bool {
        false
    }
}

/// Counts of what the host did for the guest, for reports and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Import calls made (all interfaces).
    pub imports: u64,
    /// Pages applied.
    pub pages: u64,
    /// Skills upserted (before the `local` filter).
    pub upserts: u64,
    /// HTTP requests started.
    pub requests: u64,
    /// Time spent inside store calls.
    pub store_time: Duration,
    /// Time spent blocked in `http.wait`.
    pub http_wait_time: Duration,
}

/// The host side of one sync: HTTP, store, observer, randomness.
pub struct SyncHost {
    http: HttpBackend,
    store: StoreThread,
    observer: Box<dyn SyncObserver>,
    rng: SplitMix64,
    stats: HostStats,
}

impl std::fmt::Debug for SyncHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncHost")
            .field("http", &self.http)
            .field("store", &self.store)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SyncHost {
    /// Assembles a host. The store moves to a thread of its own, which
    /// writes pages behind the engine (see [`StoreThread`]).
    pub fn new(http: HttpBackend, store: Store, observer: Box<dyn SyncObserver>) -> SyncHost {
        SyncHost {
            http,
            store: StoreThread::spawn(store),
            observer,
            rng: SplitMix64::from_entropy(),
            stats: HostStats::default(),
        }
    }

    /// The history run the engine opened and did not close, once every page
    /// it handed over is written.
    pub fn open_run(&mut self) -> Option<u64> {
        self.store.open_run()
    }

    /// Closes the run the engine left open (it trapped, or returned without
    /// finishing), after the pages it handed over.
    pub fn abandon_open_run(&mut self, error: &str, kind: FailureKind) -> Result<(), StoreError> {
        self.store.abandon_open_run(error, kind)
    }

    /// What the host did so far.
    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// Whether the observer asked to stop.
    pub fn should_stop(&self) -> bool {
        self.observer.should_stop()
    }

    /// Logs through the observer (host-side messages, e.g. a trap).
    pub fn log(&mut self, level: Level, msg: &str) {
        self.observer.log(level, msg);
    }

    fn timed_store<T>(&mut self, f: impl FnOnce(&mut StoreThread) -> T) -> T {
        self.stats.imports += 1;
        let started = Instant::now();
        let out = f(&mut self.store);
        self.stats.store_time += started.elapsed();
        out
    }
}

impl Host for SyncHost {
    type Pending = Pending;

    fn http_send(&mut self, request: HttpRequest) -> Pending {
        self.stats.imports += 1;
        self.stats.requests += 1;
        self.http.send(request)
    }

    fn http_wait(&mut self, pending: Pending) -> Result<HttpResponse, HttpError> {
        self.stats.imports += 1;
        let started = Instant::now();
        let observer = &self.observer;
        let result = pending.wait_or_stop(STOP_POLL, || observer.should_stop());
        self.stats.http_wait_time += started.elapsed();
        self.store.heartbeat();
        result
    }

    fn read_state(&mut self) -> Result<SyncState, StoreError> {
        self.timed_store(|s| s.read_state())
    }

    fn local_versions(&mut self, ids: &[String]) -> Result<Vec<Option<LocalVersion>>, StoreError> {
        self.timed_store(|s| s.local_versions(ids))
    }

    fn registry_ids(&mut self, after: Option<&str>, limit: u32) -> Result<Vec<String>, StoreError> {
        self.timed_store(|s| s.registry_ids(after, limit))
    }

    fn registry_rows(&mut self, ids: &[String]) -> Result<Vec<Option<RegistryRow>>, StoreError> {
        self.timed_store(|s| s.registry_rows(ids))
    }

    fn begin_run(&mut self, mode: SyncMode) -> Result<u64, StoreError> {
        self.timed_store(|s| s.begin_run(mode))
    }

    fn apply_page(&mut self, run: u64, page: Page) -> Result<(), StoreError> {
        self.stats.pages += 1;
        self.stats.upserts += page.upserts.len() as u64;
        self.timed_store(|s| s.apply_page(run, page))
    }

    fn finish_run(&mut self, run: u64, outcome: RunOutcome) -> Result<(), StoreError> {
        self.timed_store(|s| s.finish_run(run, outcome))
    }

    fn log(&mut self, level: Level, message: &str) {
        self.stats.imports += 1;
        self.observer.log(level, message);
    }

    fn progress(&mut self, report: Progress) -> Directive {
        self.stats.imports += 1;
        self.observer.progress(&report);
        self.store.heartbeat();
        if self.observer.should_stop() {
            Directive::Stop
        } else {
            Directive::Proceed
        }
    }

    fn sleep(&mut self, ms: u64) -> Directive {
        self.stats.imports += 1;
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            if self.observer.should_stop() {
                return Directive::Stop;
            }
            let now = Instant::now();
            if now >= deadline {
                return Directive::Proceed;
            }
            std::thread::sleep((deadline - now).min(STOP_POLL));
            // Rate-limit waits can outlast the lease; keep it alive.
            self.store.heartbeat();
        }
    }

    fn random(&mut self) -> u64 {
        self.stats.imports += 1;
        self.rng.next_u64()
    }
}

impl Embedder for SyncHost {
    fn should_stop(&self) -> bool {
        self.observer.should_stop()
    }
}
