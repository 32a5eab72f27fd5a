//! The sync algorithm of `docs/registry-protocol.md` ("What a client must
//! do"): discover the protocol, page through the changes feed or the search
//! partitions, diff against the store, write pages atomically with their
//! checkpoints, prune what a complete enumeration did not see, and record
//! the run in history. This module holds the run's entry point, discovery
//! and the HTTP helpers; each job has a module of its own: `feed`, `search`,
//! `prune`, `bookkeeping` (store calls, pages, closing the run) and its
//! data, `ledger`.

use std::mem;

use crate::cover::Reach;
use crate::cursor::{FeedCursor, KeyedHash, SeenSet};
use crate::diff::{self, Diff, Rule, UpsertKind};
use crate::domain::{
    Checkpoint, Coverage, Directive, FailureKind, Host, HttpError, HttpRequest, HttpResponse,
    Level, LocalVersion, Page, Phase, Progress, RunCounts, RunOutcome, RunStatus, Skill,
    StoreError, SyncError, SyncMode, SyncOptions, SyncReport, SyncState, WaitReason,
};
use crate::protocol::{self, Entry, ProtocolError};
use crate::retry::{Client, Halt, InFlight};
use crate::url::Registry;
use crate::warnings::Warnings;

/// Rows per store transaction. Bigger transactions amortise what each
/// commit rewrites (index pages with random keys, the FTS5 segment): 5,000
/// rows cost 30% less than 500 over 100,000 skills here. Search mode has no
/// resumable cursor, so nothing is lost by letting one store page span
/// several HTTP pages; feed mode writes whole feed pages together with the
/// last one's cursor, so a killed sync fetches at most this many rows again.
/// 5,000 rows are about 3 MB of memory.
pub const STORE_PAGE_ROWS: usize = 5_000;
/// Ids fetched per `registry_ids` call while pruning.
pub const PRUNE_ID_PAGE: u32 = 1000;
/// The largest `limit` `/skills-changes` accepts.
pub const FEED_MAX_LIMIT: u32 = 1000;

mod bookkeeping;
mod feed;
mod ledger;
mod prune;
mod search;

use ledger::{Buffer, Ledger, add_counts};

const HEALTH_PATH: &str = "/health";
const FEED_PATH: &str = "/skills-changes";

/// Runs one sync to completion, cancellation (`Ok` with `cancelled`) or
/// failure. Outside a dry run the run is recorded in history: success,
/// `partial` when some pages were applied before it stopped, else `failed`.
pub fn run<H: Host>(host: &mut H, opts: SyncOptions) -> Result<SyncReport, SyncError> {
    // A URL the host would refuse anyway: report it the way the host would.
    let registry = Registry::parse(&opts.registry)
        .map_err(|e| SyncError::Unreachable(HttpError::Denied(e.to_string())))?;
    let state = host.read_state().map_err(SyncError::Store)?;
    let mut sync = Sync::new(host, &opts, registry, &state);
    let mode = match opts.mode.or(state.mode) {
        Some(mode) => mode,
        None => match sync.discover() {
            Ok(mode) => mode,
            Err(halt) => {
                // Every failure belongs in history, even one before the
                // protocol is known; it is filed under the fallback protocol.
                if !opts.dry_run {
                    sync.ledger.run = sync.host.begin_run(SyncMode::Search).ok();
                }
                return sync.finish(Err(halt));
            }
        },
    };
    sync.mode = mode;
    if !opts.dry_run {
        sync.ledger.run = Some(sync.host.begin_run(mode).map_err(begin_error)?);
    }
    let result = match mode {
        SyncMode::ChangesFeed => sync.feed(&state),
        SyncMode::Search => sync.search(),
    };
    sync.finish(result)
}

fn begin_error(e: StoreError) -> SyncError {
    match e {
        StoreError::RunOpen(_) => SyncError::Busy,
        e => SyncError::Store(e),
    }
}

struct Sync<'h, H: Host> {
    host: &'h mut H,
    registry: Registry,
    force: bool,
    page_size: u32,
    mode: SyncMode,
    client: Client,
    warnings: Warnings,
    /// Where the run is: phase, skills done of the total, pages (the
    /// waiting fields stay zero; the retry client fills them in).
    at: Progress,
    ledger: Ledger,
    first_date: Option<String>,
    warned_no_date: bool,
    hasher: KeyedHash,
    /// Search mode: how much of the registry the listings reached.
    coverage: Option<Coverage>,
}

impl<'h, H: Host> Sync<'h, H> {
    fn new(host: &'h mut H, opts: &SyncOptions, registry: Registry, state: &SyncState) -> Self {
        let at = Progress {
            phase: Phase::Discover,
            done: 0,
            total: None,
            pages: 0,
            waiting_ms: 0,
            waiting_for: WaitReason::None,
        };
        let hasher = KeyedHash::new(host.random(), host.random());
        Sync {
            host,
            registry,
            force: opts.force,
            page_size: opts.page_size,
            mode: opts.mode.or(state.mode).unwrap_or(SyncMode::Search),
            client: Client::new(opts.retry_budget_ms, at),
            warnings: Warnings::new(),
            at,
            ledger: Ledger::new(state),
            first_date: None,
            warned_no_date: false,
            hasher,
            coverage: None,
        }
    }

    // --- discovery -----------------------------------------------------

    fn discover(&mut self) -> Result<SyncMode, Halt> {
        self.at.phase = Phase::Discover;
        let url = self.registry.endpoint(HEALTH_PATH, &[]);
        // 503 is how /health says "unhealthy": an answer, not a hiccup.
        let flight = self.send(url, Vec::new(), &[503])?;
        let resp = self.wait(flight)?;
        match resp.status {
            200 => {
                expect_api(&resp, HEALTH_PATH)?;
                let health = protocol::decode_health(&resp.body).map_err(protocol_error)?;
                match health.status.as_deref() {
                    Some("unhealthy") => return Err(unhealthy().into()),
                    Some("degraded") => self
                        .warnings
                        .push("the registry reports degraded health; syncing anyway".into()),
                    _ => {}
                }
                Ok(if health.has_feed() {
                    SyncMode::ChangesFeed
                } else {
                    SyncMode::Search
                })
            }
            503 => Err(unhealthy().into()),
            404 if !protocol::is_web_page(&resp) => {
                self.warnings
                    .push("the registry has no /health endpoint; using /skills-search".into());
                Ok(SyncMode::Search)
            }
            _ => Err(unexpected(&resp, HEALTH_PATH).into()),
        }
    }

    // --- HTTP, progress ------------------------------------------------

    fn snapshot(&self) -> Progress {
        self.at
    }

    fn send(
        &mut self,
        url: String,
        headers: Vec<(String, String)>,
        final_statuses: &'static [u16],
    ) -> Result<InFlight<H::Pending>, Halt> {
        self.client.set_progress(self.snapshot());
        let request = HttpRequest {
            url,
            headers,
            timeout_ms: 0,
        };
        self.client.send(self.host, request, final_statuses)
    }

    fn wait(&mut self, flight: InFlight<H::Pending>) -> Result<HttpResponse, Halt> {
        self.client.set_progress(self.snapshot());
        let resp = self.client.wait(self.host, flight, &mut self.warnings)?;
        if self.first_date.is_none() {
            self.first_date =
                protocol::response_date(&resp).and_then(|d| protocol::format_millis(&d));
        }
        Ok(resp)
    }

    fn date_or_warn(&mut self, resp: &HttpResponse) -> Option<String> {
        let date = protocol::response_date(resp).and_then(|d| protocol::format_millis(&d));
        if date.is_none() {
            self.warnings.push(
                "the registry's response has no Date header; last_sync_at is not advanced".into(),
            );
        }
        date
    }

    fn last_sync_at_from_first_date(&mut self) -> Result<Option<String>, Halt> {
        if self.first_date.is_none() && !self.warned_no_date {
            self.warned_no_date = true;
            self.warnings
                .push("the registry sent no Date header; last_sync_at is not advanced".into());
        }
        Ok(self.first_date.clone())
    }

    fn progress(&mut self) -> Result<(), Halt> {
        self.log_warnings();
        let report = self.snapshot();
        match self.host.progress(report) {
            Directive::Proceed => Ok(()),
            Directive::Stop => Err(Halt::Cancelled),
        }
    }

    fn log_warnings(&mut self) {
        for line in self.warnings.take_unlogged() {
            self.host.log(Level::Warn, line);
        }
    }
}

fn protocol_error(e: ProtocolError) -> SyncError {
    SyncError::Protocol(e.0)
}

fn unhealthy() -> SyncError {
    SyncError::Registry("the registry reports itself unhealthy".into())
}

/// A web page where the API should answer, as an error.
fn web_page(path: &str) -> SyncError {
    SyncError::NotARegistry(format!(
        "{path} answered with a web page, not the registry API: a captive portal or a wrong URL?"
    ))
}

/// Fails on a web page where a JSON answer is due.
fn expect_api(resp: &HttpResponse, path: &str) -> Result<(), SyncError> {
    if protocol::is_web_page(resp) {
        return Err(web_page(path));
    }
    Ok(())
}

/// A status no step expected, as an error of the kind it shows.
fn unexpected(resp: &HttpResponse, path: &str) -> SyncError {
    let status = resp.status;
    if (300..=399).contains(&status) {
        return SyncError::Redirected(
            resp.header("location")
                .unwrap_or("a location it did not name")
                .to_owned(),
        );
    }
    if protocol::is_web_page(resp) {
        return web_page(path);
    }
    let detail = protocol::error_code(&resp.body)
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    match status {
        404 => SyncError::NotARegistry(format!(
            "{path} answered HTTP 404{detail}: there is no Skillsmith registry API at this URL"
        )),
        400..=499 => SyncError::Protocol(format!(
            "{path} refused the request with HTTP {status}{detail}"
        )),
        _ => SyncError::Registry(format!("{path} answered HTTP {status}{detail}")),
    }
}

#[cfg(test)]
mod tests;
