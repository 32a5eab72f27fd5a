//! Changes-feed mode: passes over `/skills-changes` from the stored cursor (or
//! from the start, for a full resync), feed pages batched into store
//! transactions with the cursor of the last, and the fallbacks to search mode.

use super::*;

/// How a pass over the feed ended.
pub(super) enum PassEnd {
    /// Caught up; the registry time the catalogue is current as of.
    Done(Option<String>),
    /// The registry has no feed.
    NoFeed,
    /// The cursor was refused; why.
    CursorRejected(&'static str),
}

/// Consecutive feed pages waiting to be written in one store transaction,
/// with the checkpoint of the last. No id is written by two of them: a page
/// that touches an id the batch already writes flushes the batch first, so
/// that page's diff sees the earlier write and one transaction never both
/// removes and re-adds a skill.
pub(super) struct FeedBatch {
    upserts: Vec<Skill>,
    removals: Vec<String>,
    ids: SeenSet,
    counts: RunCounts,
    checkpoint: Option<Checkpoint>,
}

impl FeedBatch {
    pub(super) fn new(hasher: KeyedHash) -> FeedBatch {
        FeedBatch {
            upserts: Vec::new(),
            removals: Vec::new(),
            ids: SeenSet::new(hasher),
            counts: RunCounts::default(),
            checkpoint: None,
        }
    }

    /// Whether the batch writes any of `entries`' ids.
    pub(super) fn touches(&self, entries: &[Entry]) -> bool {
        !self.ids.is_empty() && entries.iter().any(|e| self.ids.contains(e.id()))
    }

    pub(super) fn push(&mut self, diff: Diff, counts: RunCounts, checkpoint: Checkpoint) {
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

    pub(super) fn rows(&self) -> usize {
        self.upserts.len() + self.removals.len()
    }

    /// The store page to write, if any page is waiting; empties the batch.
    pub(super) fn take(&mut self) -> Option<(Page, RunCounts)> {
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
pub(super) struct FeedPass {
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

impl<'h, H: Host> Sync<'h, H> {
    pub(super) fn feed(&mut self, state: &SyncState) -> Result<Option<String>, Halt> {
        self.mode = SyncMode::ChangesFeed;
        self.at.phase = Phase::Fetch;
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

    pub(super) fn feed_pass(&mut self, full: bool) -> Result<PassEnd, Halt> {
        let mut pass = FeedPass {
            full,
            limit: match self.page_size {
                0 => FEED_MAX_LIMIT,
                n => n.min(FEED_MAX_LIMIT),
            },
            cursor: FeedCursor::new(if full {
                None
            } else {
                self.ledger.stored.cursor.clone()
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
    pub(super) fn feed_pages(&mut self, pass: &mut FeedPass) -> Result<Option<PassEnd>, Halt> {
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
                404 if self.at.pages == 0 && !protocol::is_web_page(&resp) => {
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
            self.at.pages += 1;
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
            self.at.done += page.raw_len as u64;
            self.progress()?;
        }
        Ok(None)
    }

    /// Writes the feed pages waiting in `batch`.
    pub(super) fn flush_feed(&mut self, batch: &mut FeedBatch) -> Result<(), Halt> {
        match batch.take() {
            Some((page, counts)) => self.apply(page, counts),
            None => Ok(()),
        }
    }

    pub(super) fn send_feed(
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
            && cursor.current() == self.ledger.stored.cursor.as_deref()
            && let Some(etag) = &self.ledger.stored.etag
        {
            headers.push(("if-none-match".to_owned(), etag.clone()));
        }
        self.send(url, headers, &[])
    }
}
