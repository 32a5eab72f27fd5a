//! The run's bookkeeping: store calls and the pages written behind (a
//! success confirms the last page, a failure takes it back), store pages
//! built from buffered upserts, and the closing of the run in history with
//! its report.

use super::ledger::{Stored, sub_counts};
use super::*;

impl<'h, H: Host> Sync<'h, H> {
    /// Ends a listing: writes what it fetched and buffered with `flush`,
    /// also when it stopped or failed at a page boundary (those pages are
    /// valid and would only be fetched again), but not after a store failure,
    /// which the write would most likely repeat.
    pub(super) fn keep_fetched<T>(
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
    pub(super) fn flush(
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
            add_counts(&mut self.ledger.counts, mem::take(&mut buffer.pending));
        }
        Ok(())
    }

    /// A store call, with the accounting for pages written behind: success
    /// confirms the last page; a failure may be that page's, so its counts
    /// and the page are taken back (the store holds whole pages only).
    pub(super) fn settled<T>(
        &mut self,
        call: impl FnOnce(&mut H) -> Result<T, StoreError>,
    ) -> Result<T, SyncError> {
        let result = call(self.host);
        match &result {
            Ok(_) => self.ledger.unconfirmed = None,
            Err(_) => self.take_back_unconfirmed(),
        }
        result.map_err(SyncError::Store)
    }

    /// `local-versions`, which a store writing behind may answer before the
    /// last page is written (for ids that page does not touch): its success
    /// confirms nothing, its failure may still be the page's.
    pub(super) fn lookup(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<LocalVersion>>, SyncError> {
        let result = self.host.local_versions(ids);
        if result.is_err() {
            self.take_back_unconfirmed();
        }
        result.map_err(SyncError::Store)
    }

    pub(super) fn take_back_unconfirmed(&mut self) {
        if let Some(counts) = self.ledger.unconfirmed.take() {
            sub_counts(&mut self.ledger.counts, counts);
            self.ledger.applied_pages -= 1;
        }
    }

    pub(super) fn diff(&mut self, entries: Vec<Entry>, rule: Rule) -> Result<Diff, Halt> {
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
    pub(super) fn apply(&mut self, page: Page, counts: RunCounts) -> Result<(), Halt> {
        let empty = page.upserts.is_empty() && page.removals.is_empty();
        if !(empty && self.ledger.stored.matches(&page.checkpoint)) {
            let checkpoint = page.checkpoint.clone();
            if let Some(run) = self.ledger.run {
                self.settled(|h| h.apply_page(run, page))?;
            }
            self.ledger.stored = Stored {
                mode: Some(checkpoint.mode),
                cursor: checkpoint.cursor,
                etag: checkpoint.etag,
                resync_pending: checkpoint.resync_pending,
            };
            self.ledger.applied_pages += 1;
            if self.ledger.run.is_some() {
                self.ledger.unconfirmed = Some(counts);
            }
        }
        add_counts(&mut self.ledger.counts, counts);
        Ok(())
    }

    pub(super) fn finish(
        mut self,
        result: Result<Option<String>, Halt>,
    ) -> Result<SyncReport, SyncError> {
        self.log_warnings();
        match result {
            Ok(last_sync_at) => {
                if let Some(run) = self.ledger.run {
                    let outcome = RunOutcome {
                        status: RunStatus::Success,
                        counts: self.ledger.counts,
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
    pub(super) fn failure_text(&self, e: &SyncError) -> String {
        if self.ledger.applied_pages > 0 {
            format!(
                "{e} (the {} store pages applied before are kept; the catalogue is not fully \
                 current); {}",
                self.ledger.applied_pages,
                e.kind().action()
            )
        } else {
            e.describe()
        }
    }

    /// Learns whether the last page handed to the store was written, so that
    /// an unsuccessful run's counts are exact (see `settled`).
    pub(super) fn confirm_last_page(&mut self) {
        if self.ledger.run.is_some() && self.ledger.unconfirmed.is_some() {
            let _ = self.settled(|h| h.read_state());
        }
    }

    /// Ends an unsuccessful run in history; a failure to do so is logged,
    /// not returned, so the original cause is what the caller sees.
    pub(super) fn close(&mut self, error: String, kind: FailureKind) {
        let Some(run) = self.ledger.run else { return };
        let outcome = RunOutcome {
            // A stopped run did not fail: `partial` (of however much), with
            // the kind saying why it ended.
            status: if self.ledger.applied_pages > 0 || kind == FailureKind::Cancelled {
                RunStatus::Partial
            } else {
                RunStatus::Failed
            },
            counts: self.ledger.counts,
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

    pub(super) fn report(&mut self, last_sync_at: Option<String>, cancelled: bool) -> SyncReport {
        SyncReport {
            mode: self.mode,
            added: self.ledger.counts.added,
            updated: self.ledger.counts.updated,
            unchanged: self.ledger.counts.unchanged,
            removed: self.ledger.counts.removed,
            skipped: self.ledger.counts.skipped,
            pages: self.at.pages,
            requests: self.client.requests(),
            warnings: mem::take(&mut self.warnings).into_lines(),
            last_sync_at,
            cancelled,
            coverage: self.coverage.take(),
        }
    }
}
