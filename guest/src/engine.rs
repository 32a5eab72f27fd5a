//! The sync algorithm of `docs/registry-protocol.md` ("What a client must
//! do"): discover the protocol, page through the changes feed or the search
//! partitions, diff against the store, write pages atomically with their
//! checkpoints, prune what a complete enumeration did not see, and record
//! the run in history.

use std::mem;

use crate::cover::Reach;
use crate::cursor::{FeedCursor, KeyedHash, SeenSet};
use crate::diff::{self, Diff, Rule, Upsert, UpsertKind};
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

mod search;

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
                    sync.run = sync.host.begin_run(SyncMode::Search).ok();
                }
                return sync.finish(Err(halt));
            }
        },
    };
    sync.mode = mode;
    if !opts.dry_run {
        sync.run = Some(sync.host.begin_run(mode).map_err(begin_error)?);
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

/// The checkpoint the store holds, as far as this run knows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    mode: Option<SyncMode>,
    cursor: Option<String>,
    etag: Option<String>,
    resync_pending: bool,
}

impl Stored {
    fn matches(&self, cp: &Checkpoint) -> bool {
        self.mode == Some(cp.mode)
            && self.cursor == cp.cursor
            && self.etag == cp.etag
            && self.resync_pending == cp.resync_pending
    }
}

/// How a pass over the feed ended.
enum PassEnd {
    /// Caught up; the registry time the catalogue is current as of.
    Done(Option<String>),
    /// The registry has no feed.
    NoFeed,
    /// The cursor was refused; why.
    CursorRejected(&'static str),
}

/// Upserts waiting for a full store page, and the counts of records already
/// classified that need no write.
#[derive(Default)]
struct Buffer {
    upserts: Vec<Upsert>,
    pending: RunCounts,
}

impl Buffer {
    fn push(&mut self, diff: Diff) {
        self.upserts.extend(diff.upserts);
        self.pending.unchanged += diff.counts.unchanged;
        self.pending.skipped += diff.counts.skipped;
        self.pending.removed += diff.counts.removed;
    }
}

/// Consecutive feed pages waiting to be written in one store transaction,
/// with the checkpoint of the last. No id is written by two of them: a page
/// that touches an id the batch already writes flushes the batch first, so
/// that page's diff sees the earlier write and one transaction never both
/// removes and re-adds a skill.
struct FeedBatch {
    upserts: Vec<Skill>,
    removals: Vec<String>,
    ids: SeenSet,
    counts: RunCounts,
    checkpoint: Option<Checkpoint>,
}

impl FeedBatch {
    fn new(hasher: KeyedHash) -> FeedBatch {
        FeedBatch {
            upserts: Vec::new(),
            removals: Vec::new(),
            ids: SeenSet::new(hasher),
            counts: RunCounts::default(),
            checkpoint: None,
        }
    }

    /// Whether the batch writes any of `entries`' ids.
    fn touches(&self, entries: &[Entry]) -> bool {
        !self.ids.is_empty() && entries.iter().any(|e| self.ids.contains(e.id()))
    }

    fn push(&mut self, diff: Diff, counts: RunCounts, checkpoint: Checkpoint) {
        for u in &diff.upserts {
            self.ids.insert(&u.skill.id);
        }
        for id in &diff.removals {
            self.ids.insert(id);
        }
        self.upserts
            .extend(diff.upserts.into_iter().map(|u| u.skill));
        self.removals.extend(diff.removals);
        add_counts(&mut self.counts, counts);
        self.checkpoint = Some(checkpoint);
    }

    fn rows(&self) -> usize {
        self.upserts.len() + self.removals.len()
    }

    /// The store page to write, if any page is waiting; empties the batch.
    fn take(&mut self) -> Option<(Page, RunCounts)> {
        let checkpoint = self.checkpoint.take()?;
        self.ids.clear();
        Some((
            Page {
                upserts: mem::take(&mut self.upserts),
                removals: mem::take(&mut self.removals),
                checkpoint,
            },
            mem::take(&mut self.counts),
        ))
    }
}

/// The state of one pass over the feed.
struct FeedPass {
    full: bool,
    limit: u32,
    cursor: FeedCursor,
    /// Ids listed, in a full resync (for its prune).
    seen: Option<SeenSet>,
    /// Ids of malformed records: they exist, so a prune keeps them.
    protected: SeenSet,
    batch: FeedBatch,
    last_sync_at: Option<String>,
    final_etag: Option<String>,
}

struct Sync<'h, H: Host> {
    host: &'h mut H,
    registry: Registry,
    force: bool,
    page_size: u32,
    mode: SyncMode,
    client: Client,
    warnings: Warnings,
    counts: RunCounts,
    pages: u32,
    done: u64,
    total: Option<u64>,
    phase: Phase,
    run: Option<u64>,
    applied_pages: u32,
    /// The counts of the last page the store acknowledged but may not have
    /// committed yet (`apply-page` in `wit/store.wit`): the next store call
    /// confirms it by succeeding, or reports its failure.
    unconfirmed: Option<RunCounts>,
    first_date: Option<String>,
    warned_no_date: bool,
    stored: Stored,
    hasher: KeyedHash,
    /// Search mode: how much of the registry the listings reached.
    coverage: Option<Coverage>,
}

impl<'h, H: Host> Sync<'h, H> {
    fn new(host: &'h mut H, opts: &SyncOptions, registry: Registry, state: &SyncState) -> Self {
        let phase = Phase::Discover;
        let hasher = KeyedHash::new(host.random(), host.random());
        Sync {
            host,
            registry,
            force: opts.force,
            page_size: opts.page_size,
            mode: opts.mode.or(state.mode).unwrap_or(SyncMode::Search),
            client: Client::new(
                opts.retry_budget_ms,
                Progress {
                    phase,
                    done: 0,
                    total: None,
                    pages: 0,
                    waiting_ms: 0,
                    waiting_for: WaitReason::None,
                },
            ),
            warnings: Warnings::new(),
            counts: RunCounts::default(),
            pages: 0,
            done: 0,
            total: None,
            phase,
            run: None,
            applied_pages: 0,
            unconfirmed: None,
            first_date: None,
            warned_no_date: false,
            stored: Stored {
                mode: state.mode,
                cursor: state.cursor.clone(),
                etag: state.etag.clone(),
                resync_pending: state.resync_pending,
            },
            hasher,
            coverage: None,
        }
    }

    // --- discovery -----------------------------------------------------

    fn discover(&mut self) -> Result<SyncMode, Halt> {
        self.phase = Phase::Discover;
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

    /// Ends a listing: writes what it fetched and buffered with `flush`,
    /// also when it stopped or failed at a page boundary (those pages are
    /// valid and would only be fetched again), but not after a store failure,
    /// which the write would most likely repeat.
    fn keep_fetched<T>(
        &mut self,
        listed: Result<T, Halt>,
        flush: impl FnOnce(&mut Self) -> Result<(), Halt>,
    ) -> Result<T, Halt> {
        match listed {
            Ok(value) => {
                flush(self)?;
                Ok(value)
            }
            Err(halt) => {
                if !matches!(halt, Halt::Failed(SyncError::Store(_)))
                    && let Err(Halt::Failed(e)) = flush(self)
                {
                    self.host.log(
                        Level::Error,
                        &format!("could not keep the pages fetched so far: {e}"),
                    );
                }
                Err(halt)
            }
        }
    }

    /// Writes full store pages from the buffer; with `all`, the rest too.
    fn flush(
        &mut self,
        buffer: &mut Buffer,
        checkpoint: &Checkpoint,
        all: bool,
    ) -> Result<(), Halt> {
        while buffer.upserts.len() >= STORE_PAGE_ROWS || (all && !buffer.upserts.is_empty()) {
            let rest = if buffer.upserts.len() > STORE_PAGE_ROWS {
                buffer.upserts.split_off(STORE_PAGE_ROWS)
            } else {
                Vec::new()
            };
            let chunk = mem::replace(&mut buffer.upserts, rest);
            let mut counts = mem::take(&mut buffer.pending);
            let upserts = chunk
                .into_iter()
                .map(|u| {
                    match u.kind {
                        UpsertKind::Added => counts.added += 1,
                        UpsertKind::Updated => counts.updated += 1,
                    }
                    u.skill
                })
                .collect();
            self.apply(
                Page {
                    upserts,
                    removals: Vec::new(),
                    checkpoint: checkpoint.clone(),
                },
                counts,
            )?;
        }
        if all {
            // Records that needed no write are accounted for all the same.
            add_counts(&mut self.counts, mem::take(&mut buffer.pending));
        }
        Ok(())
    }

    // --- changes-feed mode ---------------------------------------------

    fn feed(&mut self, state: &SyncState) -> Result<Option<String>, Halt> {
        self.mode = SyncMode::ChangesFeed;
        self.phase = Phase::Fetch;
        // A full resync lists everything from the beginning and then prunes.
        // Needed when forced, to finish an interrupted one (the seen-set is
        // not persisted, so it restarts), and when switching to the feed with
        // registry rows from another protocol, which the feed cannot prune.
        let mut full = self.force
            || state.resync_pending
            || (state.mode != Some(SyncMode::ChangesFeed) && state.registry_skills > 0);
        let mut restarted = false;
        loop {
            match self.feed_pass(full)? {
                PassEnd::Done(last_sync_at) => return Ok(last_sync_at),
                PassEnd::NoFeed => {
                    self.warnings.push(
                        "the registry has no changes feed (404 from /skills-changes); listing \
                         through /skills-search instead"
                            .into(),
                    );
                    return self.search();
                }
                PassEnd::CursorRejected(why) => {
                    if restarted {
                        // The feed refused the cursors of a resync that began
                        // after its discard (a registry that expires cursors by
                        // position rather than by age does this), so it cannot
                        // list the catalogue at all. Search can, and its prune
                        // finishes the resync.
                        self.warnings.push(format!(
                            "{why} again during the full resync, so the feed cannot list the \
                             whole catalogue; listing through /skills-search instead"
                        ));
                        return self.search();
                    }
                    self.warnings.push(format!(
                        "{why}; running a full resync, which also removes skills deleted from \
                         the registry"
                    ));
                    full = true;
                    restarted = true;
                }
            }
        }
    }

    fn feed_pass(&mut self, full: bool) -> Result<PassEnd, Halt> {
        let mut pass = FeedPass {
            full,
            limit: match self.page_size {
                0 => FEED_MAX_LIMIT,
                n => n.min(FEED_MAX_LIMIT),
            },
            cursor: FeedCursor::new(if full {
                None
            } else {
                self.stored.cursor.clone()
            }),
            seen: full.then(|| SeenSet::new(self.hasher)),
            protected: SeenSet::new(self.hasher),
            batch: FeedBatch::new(self.hasher),
            last_sync_at: None,
            final_etag: None,
        };
        let paged = self.feed_pages(&mut pass);
        let batch = &mut pass.batch;
        if let Some(end) = self.keep_fetched(paged, |s| s.flush_feed(batch))? {
            return Ok(end);
        }
        if pass.last_sync_at.is_none() {
            self.warnings.push(
                "the last feed page had neither meta.server_time nor a Date header; last_sync_at \
                 is not advanced"
                    .into(),
            );
        }
        if let Some(seen) = pass.seen {
            let cursor = pass.cursor.current().map(str::to_owned);
            let during = Checkpoint {
                mode: SyncMode::ChangesFeed,
                cursor: cursor.clone(),
                etag: None,
                resync_pending: true,
            };
            let done = Checkpoint {
                mode: SyncMode::ChangesFeed,
                cursor,
                etag: pass.final_etag,
                resync_pending: false,
            };
            let protected = &pass.protected;
            let listed = |id: &str| seen.contains(id) || protected.contains(id);
            if !self.prune(&listed, None, seen.is_empty(), &during, &done)? {
                // The resync is over even without a prune; the warning says why.
                self.apply(
                    Page {
                        upserts: Vec::new(),
                        removals: Vec::new(),
                        checkpoint: done,
                    },
                    RunCounts::default(),
                )?;
            }
        }
        Ok(PassEnd::Done(pass.last_sync_at))
    }

    /// Pages through the feed into `pass.batch`, writing it whenever it is
    /// full. `Some` when the pass ended early (caught up with a 304, no
    /// feed, cursor refused).
    fn feed_pages(&mut self, pass: &mut FeedPass) -> Result<Option<PassEnd>, Halt> {
        let mut next = Some(self.send_feed(&pass.cursor, pass.limit, pass.full)?);
        while let Some(flight) = next.take() {
            let sent_etag = flight
                .request()
                .headers
                .iter()
                .any(|(name, _)| name == "if-none-match");
            let resp = self.wait(flight)?;
            match resp.status {
                200 => {}
                304 if sent_etag => {
                    // Caught up and nothing new: nothing to write.
                    return Ok(Some(PassEnd::Done(self.date_or_warn(&resp))));
                }
                304 => {
                    return Err(protocol_error(ProtocolError(
                        "304 Not Modified to a request without If-None-Match".into(),
                    ))
                    .into());
                }
                404 if self.pages == 0 && !protocol::is_web_page(&resp) => {
                    return Ok(Some(PassEnd::NoFeed));
                }
                410 => {
                    return Ok(Some(PassEnd::CursorRejected(
                        "the registry no longer has the history behind the stored feed cursor \
                         (410 cursor_expired)",
                    )));
                }
                400 if protocol::error_code(&resp.body).as_deref() == Some("invalid_cursor") => {
                    return Ok(Some(PassEnd::CursorRejected(
                        "the registry could not read the stored feed cursor (400 invalid_cursor)",
                    )));
                }
                _ => return Err(unexpected(&resp, FEED_PATH).into()),
            }
            expect_api(&resp, FEED_PATH)?;
            let etag = resp.header("etag").map(str::to_owned);
            let date = protocol::response_date(&resp).and_then(|d| protocol::format_millis(&d));
            let page = protocol::decode_feed_page(&resp.body, &mut self.warnings)
                .map_err(protocol_error)?;
            drop(resp);
            self.pages += 1;
            pass.cursor
                .advance(page.next_cursor, page.has_more)
                .map_err(protocol_error)?;
            if !pass.cursor.is_done() {
                next = Some(self.send_feed(&pass.cursor, pass.limit, pass.full)?);
            }
            if let Some(seen) = pass.seen.as_mut() {
                for entry in &page.entries {
                    if let Entry::Upsert(skill) = entry {
                        seen.insert(&skill.id);
                    }
                }
            }
            for id in &page.malformed.ids {
                pass.protected.insert(id);
            }
            let mut entries = page.entries;
            diff::dedup(&mut entries);
            if pass.batch.touches(&entries) {
                self.flush_feed(&mut pass.batch)?;
            }
            let diff = self.diff(entries, Rule::Newer)?;
            let etag = if page.has_more { None } else { etag };
            pass.final_etag.clone_from(&etag);
            let mut counts = diff.counts;
            counts.skipped += page.malformed.count;
            pass.batch.push(
                diff,
                counts,
                Checkpoint {
                    mode: SyncMode::ChangesFeed,
                    cursor: pass.cursor.current().map(str::to_owned),
                    etag,
                    resync_pending: pass.full,
                },
            );
            if pass.batch.rows() >= STORE_PAGE_ROWS {
                self.flush_feed(&mut pass.batch)?;
            }
            pass.last_sync_at = page.server_time.or(date);
            self.done += page.raw_len as u64;
            self.progress()?;
        }
        Ok(None)
    }

    /// Writes the feed pages waiting in `batch`.
    fn flush_feed(&mut self, batch: &mut FeedBatch) -> Result<(), Halt> {
        match batch.take() {
            Some((page, counts)) => self.apply(page, counts),
            None => Ok(()),
        }
    }

    fn send_feed(
        &mut self,
        cursor: &FeedCursor,
        limit: u32,
        full: bool,
    ) -> Result<InFlight<H::Pending>, Halt> {
        let limit = limit.to_string();
        let mut query = Vec::with_capacity(2);
        if let Some(since) = cursor.current() {
            query.push(("since", since));
        }
        query.push(("limit", limit.as_str()));
        let url = self.registry.endpoint(FEED_PATH, &query);
        // A full resync must see every entry, so it never asks for a 304.
        let mut headers = Vec::new();
        if !full
            && cursor.current() == self.stored.cursor.as_deref()
            && let Some(etag) = &self.stored.etag
        {
            headers.push(("if-none-match".to_owned(), etag.clone()));
        }
        self.send(url, headers, &[])
    }

    // --- prune -----------------------------------------------------------

    /// Removes the stored registry skills this run proved gone: ids `seen`
    /// does not hold, and, when `proof` is given, only those of them that a
    /// complete listing had to show (by their stored copies). Every store
    /// page but the last carries `during`; the last carries `done`. Returns
    /// `false` when the safety valve refused to prune: `listed_nothing` (the
    /// registry listed no skill at all) while registry rows are stored.
    fn prune(
        &mut self,
        seen: &dyn Fn(&str) -> bool,
        proof: Option<&Reach>,
        listed_nothing: bool,
        during: &Checkpoint,
        done: &Checkpoint,
    ) -> Result<bool, Halt> {
        self.phase = Phase::Prune;
        if listed_nothing {
            let any = self.settled(|h| h.registry_ids(None, 1))?;
            if !any.is_empty() {
                self.warnings.push(
                    "the registry listed no skills at all, yet registry skills are stored; not \
                     removing them (if the registry really is empty, delete the catalogue to start \
                     over)"
                        .into(),
                );
                return Ok(false);
            }
        }
        let mut after: Option<String> = None;
        let mut removals = Vec::new();
        loop {
            let ids = self.settled(|h| h.registry_ids(after.as_deref(), PRUNE_ID_PAGE))?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            if after.as_ref().is_some_and(|a| last <= *a) {
                return Err(SyncError::Store(StoreError::Other(format!(
                    "registry-ids returned {last:?}, not after {after:?}"
                )))
                .into());
            }
            after = Some(last);
            let unseen: Vec<String> = ids.into_iter().filter(|id| !seen(id)).collect();
            match proof {
                None => removals.extend(unseen),
                Some(reach) if !unseen.is_empty() => {
                    // Only skills no listing showed need their stored copies.
                    let rows = self.settled(|h| h.registry_rows(&unseen))?;
                    if rows.len() != unseen.len() {
                        return Err(SyncError::Store(StoreError::Other(format!(
                            "registry-rows answered {} rows for {} ids",
                            rows.len(),
                            unseen.len()
                        )))
                        .into());
                    }
                    removals.extend(
                        rows.into_iter()
                            .flatten()
                            .filter(|row| reach.must_list(row))
                            .map(|row| row.id),
                    );
                }
                Some(_) => {}
            }
            // A feed resync lists everything: what it did not list is gone,
            // and is removed as the scan goes. Search-mode candidates are
            // confirmed first, all together, below.
            while proof.is_none() && removals.len() >= STORE_PAGE_ROWS {
                let rest = removals.split_off(STORE_PAGE_ROWS);
                let chunk = mem::replace(&mut removals, rest);
                self.apply_removals(chunk, during)?;
                self.progress()?;
            }
        }
        if proof.is_some() {
            removals = self.confirm_gone(removals)?;
        }
        while removals.len() > STORE_PAGE_ROWS {
            let rest = removals.split_off(STORE_PAGE_ROWS);
            let chunk = mem::replace(&mut removals, rest);
            self.apply_removals(chunk, during)?;
            self.progress()?;
        }
        self.apply_removals(removals, done)?;
        Ok(true)
    }

    fn apply_removals(
        &mut self,
        removals: Vec<String>,
        checkpoint: &Checkpoint,
    ) -> Result<(), Halt> {
        let counts = RunCounts {
            removed: removals.len() as u64,
            ..RunCounts::default()
        };
        self.apply(
            Page {
                upserts: Vec::new(),
                removals,
                checkpoint: checkpoint.clone(),
            },
            counts,
        )
    }

    // --- store -----------------------------------------------------------

    /// A store call, with the accounting for pages written behind: success
    /// confirms the last page; a failure may be that page's, so its counts
    /// and the page are taken back (the store holds whole pages only).
    fn settled<T>(
        &mut self,
        call: impl FnOnce(&mut H) -> Result<T, StoreError>,
    ) -> Result<T, SyncError> {
        let result = call(self.host);
        match &result {
            Ok(_) => self.unconfirmed = None,
            Err(_) => self.take_back_unconfirmed(),
        }
        result.map_err(SyncError::Store)
    }

    /// `local-versions`, which a store writing behind may answer before the
    /// last page is written (for ids that page does not touch): its success
    /// confirms nothing, its failure may still be the page's.
    fn lookup(&mut self, ids: &[String]) -> Result<Vec<Option<LocalVersion>>, SyncError> {
        let result = self.host.local_versions(ids);
        if result.is_err() {
            self.take_back_unconfirmed();
        }
        result.map_err(SyncError::Store)
    }

    fn take_back_unconfirmed(&mut self) {
        if let Some(counts) = self.unconfirmed.take() {
            sub_counts(&mut self.counts, counts);
            self.applied_pages -= 1;
        }
    }

    fn diff(&mut self, entries: Vec<Entry>, rule: Rule) -> Result<Diff, Halt> {
        if entries.is_empty() {
            return Ok(Diff::default());
        }
        let ids: Vec<String> = entries.iter().map(|e| e.id().to_owned()).collect();
        let local = self.lookup(&ids)?;
        if local.len() != ids.len() {
            return Err(SyncError::Store(StoreError::Other(format!(
                "local-versions answered {} versions for {} ids",
                local.len(),
                ids.len()
            )))
            .into());
        }
        Ok(diff::classify(entries, &local, rule, self.force))
    }

    /// Writes one page (in a dry run, only counts it). A page with no rows
    /// whose checkpoint the store already holds is not written.
    fn apply(&mut self, page: Page, counts: RunCounts) -> Result<(), Halt> {
        let empty = page.upserts.is_empty() && page.removals.is_empty();
        if !(empty && self.stored.matches(&page.checkpoint)) {
            let checkpoint = page.checkpoint.clone();
            if let Some(run) = self.run {
                self.settled(|h| h.apply_page(run, page))?;
            }
            self.stored = Stored {
                mode: Some(checkpoint.mode),
                cursor: checkpoint.cursor,
                etag: checkpoint.etag,
                resync_pending: checkpoint.resync_pending,
            };
            self.applied_pages += 1;
            if self.run.is_some() {
                self.unconfirmed = Some(counts);
            }
        }
        add_counts(&mut self.counts, counts);
        Ok(())
    }

    // --- HTTP, progress, ending ------------------------------------------

    fn snapshot(&self) -> Progress {
        Progress {
            phase: self.phase,
            done: self.done,
            total: self.total,
            pages: self.pages,
            waiting_ms: 0,
            waiting_for: WaitReason::None,
        }
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

    fn finish(mut self, result: Result<Option<String>, Halt>) -> Result<SyncReport, SyncError> {
        self.log_warnings();
        match result {
            Ok(last_sync_at) => {
                if let Some(run) = self.run {
                    let outcome = RunOutcome {
                        status: RunStatus::Success,
                        counts: self.counts,
                        error: None,
                        failure: None,
                        last_sync_at: last_sync_at.clone(),
                        coverage: self.coverage.clone(),
                    };
                    if let Err(e) = self.settled(|h| h.finish_run(run, outcome)) {
                        // Most likely the last page failed; the run did not
                        // close, so close it as the failure it is.
                        self.close(self.failure_text(&e), e.kind());
                        return Err(e);
                    }
                }
                Ok(self.report(last_sync_at, false))
            }
            Err(Halt::Cancelled) => {
                self.confirm_last_page();
                self.close(
                    "cancelled: the sync was stopped before it finished (by a signal, or the end \
                     of the session); what it applied is kept, and the next sync carries on"
                        .into(),
                    FailureKind::Cancelled,
                );
                Ok(self.report(None, true))
            }
            Err(Halt::Failed(e)) => {
                self.confirm_last_page();
                self.close(self.failure_text(&e), e.kind());
                Err(e)
            }
        }
    }

    /// What a failed run's history says.
    fn failure_text(&self, e: &SyncError) -> String {
        if self.applied_pages > 0 {
            format!(
                "{e} (the {} store pages applied before are kept; the catalogue is not fully \
                 current); {}",
                self.applied_pages,
                e.kind().action()
            )
        } else {
            e.describe()
        }
    }

    /// Learns whether the last page handed to the store was written, so that
    /// an unsuccessful run's counts are exact (see `settled`).
    fn confirm_last_page(&mut self) {
        if self.run.is_some() && self.unconfirmed.is_some() {
            let _ = self.settled(|h| h.read_state());
        }
    }

    /// Ends an unsuccessful run in history; a failure to do so is logged,
    /// not returned, so the original cause is what the caller sees.
    fn close(&mut self, error: String, kind: FailureKind) {
        let Some(run) = self.run else { return };
        let outcome = RunOutcome {
            // A stopped run did not fail: `partial` (of however much), with
            // the kind saying why it ended.
            status: if self.applied_pages > 0 || kind == FailureKind::Cancelled {
                RunStatus::Partial
            } else {
                RunStatus::Failed
            },
            counts: self.counts,
            error: Some(error),
            failure: Some(kind),
            last_sync_at: None,
            coverage: self.coverage.clone(),
        };
        if let Err(e) = self.host.finish_run(run, outcome) {
            self.host.log(
                Level::Error,
                &format!("could not record the end of the sync run: {e}"),
            );
        }
    }

    fn report(&mut self, last_sync_at: Option<String>, cancelled: bool) -> SyncReport {
        SyncReport {
            mode: self.mode,
            added: self.counts.added,
            updated: self.counts.updated,
            unchanged: self.counts.unchanged,
            removed: self.counts.removed,
            skipped: self.counts.skipped,
            pages: self.pages,
            requests: self.client.requests(),
            warnings: mem::take(&mut self.warnings).into_lines(),
            last_sync_at,
            cancelled,
            coverage: self.coverage.take(),
        }
    }
}

fn sub_counts(total: &mut RunCounts, less: RunCounts) {
    total.added -= less.added;
    total.updated -= less.updated;
    total.unchanged -= less.unchanged;
    total.removed -= less.removed;
    total.skipped -= less.skipped;
}

fn add_counts(total: &mut RunCounts, more: RunCounts) {
    total.added += more.added;
    total.updated += more.updated;
    total.unchanged += more.unchanged;
    total.removed += more.removed;
    total.skipped += more.skipped;
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
