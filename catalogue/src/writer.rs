//! The store on a thread of its own, so that SQLite commits one page while
//! the engine decodes and diffs the next.
//!
//! A sync alternates between engine work (decoding a page, diffing it) and
//! store work (committing it); one after the other they add up, and on a
//! 100,000-skill first sync the engine's share is a third of the time. Here
//! `apply_page` hands the page to the store thread and returns at once.
//! `local_versions` for ids the page in flight does not touch is answered
//! at once, on the caller's thread, from a second, read-only connection (it
//! sees the last commit, which for those ids is the truth); every other
//! call waits for the page
//! and, if it failed, returns that failure without running (the contract in
//! `wit/store.wit`, `apply-page`). At most one page is in flight, so memory
//! stays bounded and a failure is reported at a later call, never lost.
//! On a run that began on an empty catalogue, ids never handed over need no
//! lookup at all. Between pages, the thread indexes a first sync's rows for
//! search (`serve`).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use skillsmith_guest::domain::{
    FailureKind, LocalVersion, Page, RegistryRow, RunOutcome, StoreError, SyncMode, SyncState,
};

use crate::lock;
use crate::store::Store;

type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// A [`Store`] owned by its own thread.
pub struct StoreThread {
    jobs: Option<mpsc::Sender<Job>>,
    in_flight: Option<InFlight>,
    /// Lookups that the page in flight cannot change (see the module doc).
    reader: Option<Store>,
    /// When the run began on an empty catalogue: the ids handed over since.
    /// No other id can be stored, so a lookup of one is answered without
    /// SQLite; on a first sync that is nearly every lookup, and each would
    /// otherwise re-read index pages the writer keeps changing.
    written: Option<IdHashes>,
    last_heartbeat: Option<Instant>,
    thread: Option<JoinHandle<()>>,
}

/// The page being written.
struct InFlight {
    /// Its outcome, when written.
    done: mpsc::Receiver<Result<(), StoreError>>,
    /// The ids it upserts or removes.
    ids: IdHashes,
}

/// A set of ids kept as 64-bit hashes: it may say it holds an id it does
/// not (a collision, which only costs a lookup or a wait), never the
/// reverse.
#[derive(Debug, Default)]
struct IdHashes(HashSet<u64>);

impl IdHashes {
    fn key(id: &str) -> u64 {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        h.finish()
    }

    fn insert(&mut self, id: &str) {
        self.0.insert(Self::key(id));
    }

    fn insert_key(&mut self, key: u64) {
        self.0.insert(key);
    }

    fn may_hold(&self, id: &str) -> bool {
        self.0.contains(&Self::key(id))
    }
}

impl std::fmt::Debug for StoreThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreThread")
            .field("page_in_flight", &self.in_flight.is_some())
            .finish_non_exhaustive()
    }
}

/// Rows the store thread indexes for search in one transaction while it
/// has nothing else to do: about 10 ms of work here, so a page that arrives
/// meanwhile waits little, while each commit still adds a segment of some
/// size to the full-text index (smaller steps cost more merging).
const BACKLOG_STEP: u32 = 2_000;

/// The store thread: runs the jobs in order, and between them, while the
/// queue is empty, works off a first sync's search-index backlog
/// ([`Store::index_backlog`]), which would otherwise all be left for the
/// end of the sync, when nothing else runs beside it.
fn serve(store: &mut Store, queue: &mpsc::Receiver<Job>) {
    let mut backlog = true;
    loop {
        let job = match queue.try_recv() {
            Ok(job) => job,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {
                if backlog {
                    backlog = match store.index_backlog(BACKLOG_STEP) {
                        Ok(indexed) => indexed > 0,
                        Err(e) => {
                            // The end of the sync indexes what is left.
                            tracing::debug!("indexing between pages failed: {e}");
                            false
                        }
                    };
                    continue;
                }
                match queue.recv() {
                    Ok(job) => job,
                    Err(mpsc::RecvError) => break,
                }
            }
        };
        job(store);
        // A page may have added rows to index.
        backlog = true;
    }
    // `store` drops with the thread: the connection closes on it.
}

impl StoreThread {
    /// Moves `store` to a new thread.
    pub fn spawn(mut store: Store) -> StoreThread {
        let reader = store.reader();
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("skillsmith-store".into())
            .spawn(move || serve(&mut store, &queue))
            .expect("spawning the store thread");
        StoreThread {
            jobs: Some(jobs),
            in_flight: None,
            reader,
            written: None,
            last_heartbeat: None,
            thread: Some(thread),
        }
    }

    fn send(&self, job: Job) {
        self.jobs
            .as_ref()
            .expect("the store thread runs until drop")
            .send(job)
            .expect("the store thread outlives its handle");
    }

    /// Waits for the page in flight; its failure, if it failed.
    fn settle(&mut self) -> Result<(), StoreError> {
        match self.in_flight.take() {
            None => Ok(()),
            Some(page) => page.done.recv().unwrap_or_else(|_| {
                Err(StoreError::Other(
                    "the store thread stopped while writing a page".into(),
                ))
            }),
        }
    }

    /// Waits for the page in flight once the engine is done with the store:
    /// the engine has already been told (or never will be) of its failure,
    /// so it is only logged.
    fn settle_after_the_engine(&mut self) {
        if let Err(e) = self.settle() {
            tracing::debug!("the last page was not written: {e}");
        }
    }

    /// Runs `f` on the store once the page in flight is written. If that
    /// page failed, returns its failure and `f` does not run.
    pub fn call<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.settle()?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Box::new(move |s| {
            let _ = tx.send(f(s));
        }));
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Other(
                "the store thread stopped during a call".into(),
            ))
        })
    }

    /// Renews the lease (see [`Store::heartbeat`]) after what is queued,
    /// without waiting; a failure is for the next page to detect. Asked
    /// often (at every HTTP wait), so it passes one on at most every
    /// [`lock::RENEW_EVERY`], the lease's one renewal policy (pages renew it
    /// as they commit).
    pub fn heartbeat(&mut self) {
        if self
            .last_heartbeat
            .is_some_and(|at| at.elapsed() < lock::RENEW_EVERY)
        {
            return;
        }
        self.last_heartbeat = Some(Instant::now());
        self.send(Box::new(Store::heartbeat));
    }

    /// `store.read-state`.
    pub fn read_state(&mut self) -> Result<SyncState, StoreError> {
        self.call(Store::read_state)
    }

    /// `store.local-versions`. Ids that cannot be stored (the run began on
    /// an empty catalogue and never handed them over) are answered at once;
    /// the rest go to [`StoreThread::lookup`].
    pub fn local_versions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<LocalVersion>>, StoreError> {
        let Some(written) = &self.written else {
            return self.lookup(ids);
        };
        let (maybe, unseen): (Vec<usize>, Vec<usize>) =
            (0..ids.len()).partition(|&i| written.may_hold(&ids[i]));
        if unseen.is_empty() {
            return self.lookup(ids);
        }
        let mut out = vec![None; ids.len()];
        if !maybe.is_empty() {
            let asked: Vec<String> = maybe.iter().map(|&i| ids[i].clone()).collect();
            for (i, found) in maybe.into_iter().zip(self.lookup(&asked)?) {
                out[i] = found;
            }
        }
        Ok(out)
    }

    /// Looks `ids` up in SQLite: at once, on this thread, unless the page in
    /// flight touches one of them; then after it (reporting its failure, if
    /// it failed).
    fn lookup(&mut self, ids: &[String]) -> Result<Vec<Option<LocalVersion>>, StoreError> {
        if let Some(reader) = self.reader.as_mut()
            && self
                .in_flight
                .as_ref()
                .is_none_or(|page| !ids.iter().any(|id| page.ids.may_hold(id)))
        {
            // Also with nothing in flight: everything is committed, and the
            // reader answers without a trip to the store thread.
            return reader.local_versions(ids);
        }
        let ids = ids.to_vec();
        self.call(move |s| s.local_versions(&ids))
    }

    /// `store.registry-ids`.
    pub fn registry_ids(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let after = after.map(str::to_owned);
        self.call(move |s| s.registry_ids(after.as_deref(), limit))
    }

    /// `store.registry-rows`.
    pub fn registry_rows(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<RegistryRow>>, StoreError> {
        let ids = ids.to_vec();
        self.call(move |s| s.registry_rows(&ids))
    }

    /// `store.begin-run`.
    pub fn begin_run(&mut self, mode: SyncMode) -> Result<u64, StoreError> {
        let (run, empty) = self.call(move |s| Ok((s.begin_run(mode)?, s.is_empty()?)))?;
        self.written = empty.then(IdHashes::default);
        Ok(run)
    }

    /// `store.apply-page`: hands the page over and returns once the page
    /// before it is written (its failure, if it failed, and then this page
    /// is not taken).
    pub fn apply_page(&mut self, run: u64, page: Page) -> Result<(), StoreError> {
        self.settle()?;
        let mut ids = IdHashes::default();
        for id in page.upserts.iter().map(|s| &s.id) {
            // Hashed once for both sets: this runs for every row synced.
            let key = IdHashes::key(id);
            ids.insert_key(key);
            if let Some(written) = &mut self.written {
                written.insert_key(key);
            }
        }
        for id in &page.removals {
            ids.insert(id);
        }
        let (tx, done) = mpsc::sync_channel(1);
        self.send(Box::new(move |s| {
            let _ = tx.send(s.apply_page(run, &page));
        }));
        self.in_flight = Some(InFlight { done, ids });
        Ok(())
    }

    /// `store.finish-run`.
    pub fn finish_run(&mut self, run: u64, outcome: RunOutcome) -> Result<(), StoreError> {
        self.call(move |s| s.finish_run(run, &outcome))
    }

    /// The history run the engine opened and has not closed, once every
    /// page handed over is written (a failed one is logged).
    pub fn open_run(&mut self) -> Option<u64> {
        self.settle_after_the_engine();
        self.call(|s| Ok(s.open_run())).ok().flatten()
    }

    /// Closes the open run (see [`Store::abandon_open_run`]).
    pub fn abandon_open_run(&mut self, error: &str, kind: FailureKind) -> Result<(), StoreError> {
        let error = error.to_owned();
        self.settle_after_the_engine();
        self.call(move |s| s.abandon_open_run(&error, kind))
    }
}

impl Drop for StoreThread {
    /// Waits for what was handed over and for the store to close, so that
    /// the database is quiet when the sync returns.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use skillsmith_guest::domain::{Checkpoint, RunCounts, RunStatus, Skill, Source};

    fn skill(id: &str) -> Skill {
        Skill {
            name: format!("skill {id}"),
            ..Skill::minimal(id, "2026-01-01T00:00:00.000Z")
        }
    }

    fn page(ids: &[&str], cursor: &str) -> Page {
        Page {
            upserts: ids.iter().map(|id| skill(id)).collect(),
            removals: Vec::new(),
            checkpoint: Checkpoint {
                mode: SyncMode::ChangesFeed,
                cursor: Some(cursor.into()),
                etag: None,
                resync_pending: false,
            },
        }
    }

    fn thread() -> (tempfile::TempDir, StoreThread) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(Database::open(dir.path().join("s.db")).unwrap(), None);
        (dir, StoreThread::spawn(store))
    }

    #[test]
    fn calls_see_the_pages_handed_over_before_them() {
        let (_dir, mut t) = thread();
        let run = t.begin_run(SyncMode::ChangesFeed).unwrap();
        t.apply_page(run, page(&["a", "b"], "c1")).unwrap();
        t.apply_page(run, page(&["c"], "c2")).unwrap();
        let found = t
            .local_versions(&["a".into(), "c".into(), "x".into()])
            .unwrap();
        assert_eq!(
            found.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(t.read_state().unwrap().cursor.as_deref(), Some("c2"));
        let outcome = RunOutcome {
            status: RunStatus::Success,
            counts: RunCounts::default(),
            error: None,
            failure: None,
            last_sync_at: None,
            coverage: None,
        };
        t.finish_run(run, outcome).unwrap();
        assert_eq!(t.open_run(), None);
    }

    #[test]
    fn lookups_the_page_in_flight_cannot_change_do_not_wait_for_it() {
        let (_dir, mut t) = thread();
        assert!(t.reader.is_some(), "a file store gets a reader");
        let run = t.begin_run(SyncMode::ChangesFeed).unwrap();
        t.apply_page(run, page(&["a"], "c1")).unwrap();
        // In flight and doomed: an empty id.
        t.apply_page(run, page(&["", "b"], "c2")).unwrap();
        // Ids the page does not touch: answered from the last commit, and
        // the failure is not this call's to report.
        let found = t.local_versions(&["a".into(), "x".into()]).unwrap();
        assert_eq!(
            found.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false]
        );
        // An id it touches waits for it, and learns that it failed.
        assert!(t.local_versions(&["b".into()]).is_err());
        assert_eq!(t.local_versions(&["b".into()]).unwrap(), [None]);
        t.abandon_open_run("test", FailureKind::Component).unwrap();
    }

    #[test]
    fn a_run_on_an_empty_catalogue_looks_up_only_what_it_handed_over() {
        let (dir, mut t) = thread();
        let run = t.begin_run(SyncMode::ChangesFeed).unwrap();
        t.apply_page(run, page(&["a", "b"], "c1")).unwrap();
        // A row this run did not write (no other writer can, under the
        // lease): its id is answered from the ids handed over, without SQLite.
        let other = Database::open(dir.path().join("s.db")).unwrap();
        other
            .conn()
            .execute(
                "INSERT INTO skills (id, name, created_at, updated_at) VALUES ('x', 'x', 'x', 'x')",
                [],
            )
            .unwrap();
        let found = t
            .local_versions(&["a".into(), "x".into(), "b".into(), "y".into()])
            .unwrap();
        assert_eq!(
            found.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, true, false]
        );
        t.abandon_open_run("test", FailureKind::Component).unwrap();
    }

    #[test]
    fn a_run_on_a_catalogue_with_rows_looks_every_id_up() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("s.db")).unwrap();
        db.conn()
            .execute(
                "INSERT INTO skills (id, name, sync_origin, created_at, updated_at)
                 VALUES ('mine', 'mine', 'local', 'x', 'x')",
                [],
            )
            .unwrap();
        let mut t = StoreThread::spawn(Store::new(db, None));
        let run = t.begin_run(SyncMode::ChangesFeed).unwrap();
        t.apply_page(run, page(&["a"], "c1")).unwrap();
        let found = t
            .local_versions(&["mine".into(), "a".into(), "z".into()])
            .unwrap();
        assert_eq!(found[0].as_ref().map(|v| v.source), Some(Source::Local));
        assert!(found[1].is_some() && found[2].is_none());
        t.abandon_open_run("test", FailureKind::Component).unwrap();
    }

    #[test]
    fn a_failed_page_is_reported_by_the_next_call_which_does_not_run() {
        let (_dir, mut t) = thread();
        let run = t.begin_run(SyncMode::ChangesFeed).unwrap();
        t.apply_page(run, page(&["a"], "c1")).unwrap();
        // Accepted now, refused by the store: an empty id.
        t.apply_page(run, page(&[""], "c2")).unwrap();
        let err = t.registry_ids(None, 10).unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("empty id")),
            "{err:?}"
        );
        // Reported once; the store holds the first page only.
        assert_eq!(t.registry_ids(None, 10).unwrap(), ["a"]);
        assert_eq!(t.read_state().unwrap().cursor.as_deref(), Some("c1"));
        // A failure is also what the next page gets, and that page is not taken.
        t.apply_page(run, page(&[""], "c3")).unwrap();
        assert!(t.apply_page(run, page(&["b"], "c4")).is_err());
        assert_eq!(t.registry_ids(None, 10).unwrap(), ["a"]);
        t.abandon_open_run("test", FailureKind::Component).unwrap();
        assert_eq!(t.open_run(), None);
    }
}
