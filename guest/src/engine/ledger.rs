//! The run's ledger: what it handed to the store and what the store
//! confirmed (it writes behind), the counts those pages carry, the
//! checkpoint the store holds, and the upserts waiting for a full page.

use crate::diff::{Diff, Upsert};
use crate::domain::{Checkpoint, RunCounts, SyncMode, SyncState};

/// What the run has handed to the store, as far as it knows.
pub(super) struct Ledger {
    /// The history run, outside a dry run.
    pub(super) run: Option<u64>,
    /// The counts of every page applied (or counted, in a dry run).
    pub(super) counts: RunCounts,
    pub(super) applied_pages: u32,
    /// The counts of the last page the store acknowledged but may not have
    /// committed yet (`apply-page` in `wit/store.wit`): the next store call
    /// confirms it by succeeding, or reports its failure.
    pub(super) unconfirmed: Option<RunCounts>,
    pub(super) stored: Stored,
}

impl Ledger {
    pub(super) fn new(state: &SyncState) -> Ledger {
        Ledger {
            run: None,
            counts: RunCounts::default(),
            applied_pages: 0,
            unconfirmed: None,
            stored: Stored {
                mode: state.mode,
                cursor: state.cursor.clone(),
                etag: state.etag.clone(),
                resync_pending: state.resync_pending,
            },
        }
    }
}

/// The checkpoint the store holds, as far as this run knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) mode: Option<SyncMode>,
    pub(super) cursor: Option<String>,
    pub(super) etag: Option<String>,
    pub(super) resync_pending: bool,
}

impl Stored {
    pub(super) fn matches(&self, cp: &Checkpoint) -> bool {
        self.mode == Some(cp.mode)
            && self.cursor == cp.cursor
            && self.etag == cp.etag
            && self.resync_pending == cp.resync_pending
    }
}

/// Upserts waiting for a full store page, and the counts of records already
/// classified that need no write.
#[derive(Default)]
pub(super) struct Buffer {
    pub(super) upserts: Vec<Upsert>,
    pub(super) pending: RunCounts,
}

impl Buffer {
    pub(super) fn push(&mut self, diff: Diff) {
        self.upserts.extend(diff.upserts);
        self.pending.unchanged += diff.counts.unchanged;
        self.pending.skipped += diff.counts.skipped;
        self.pending.removed += diff.counts.removed;
    }
}

pub(super) fn sub_counts(total: &mut RunCounts, less: RunCounts) {
    total.added -= less.added;
    total.updated -= less.updated;
    total.unchanged -= less.unchanged;
    total.removed -= less.removed;
    total.skipped -= less.skipped;
}

pub(super) fn add_counts(total: &mut RunCounts, more: RunCounts) {
    total.added += more.added;
    total.updated += more.updated;
    total.unchanged += more.unchanged;
    total.removed += more.removed;
    total.skipped += more.skipped;
}
