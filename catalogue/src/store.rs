//! The `store` imports on SQLite: the guest's only way to read and change
//! the catalogue, at the level of the sync domain (no SQL crosses).
//!
//! This is the hot path of a sync: every skill goes through `apply_page`,
//! and the FTS5 triggers make each row cost several B-tree writes. So: one
//! `IMMEDIATE` transaction per page, cached statements, JSON lists encoded
//! into reused buffers, and nothing else in the transaction but the
//! checkpoint and the lease heartbeat that must commit with the page.

use std::rc::Rc;
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use skillsmith_guest::domain::{
    FailureKind, LocalVersion, Page, RegistryRow, RunOutcome, RunStatus, Skill, StoreError,
    SyncMode, SyncState, TrustTier,
};

use crate::clock::{self, Clock};
use crate::constraints;
use crate::db::{self, Database, ScratchGuard};
use crate::lock;
use crate::row_policy::{self, RowPolicy};

/// Maps a SQLite error onto the closed `store-error` variants.
pub fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::DiskFull) => StoreError::NoSpace,
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            StoreError::Corrupt(e.to_string())
        }
        Some(ErrorCode::ConstraintViolation) => StoreError::Invalid(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy)]
struct OpenRun {
    id: u64,
    started_ms: i64,
    pages: u64,
}

/// The store of one sync, over its own connection.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    clock: Clock,
    read_only: bool,
    lease_holder: Option<String>,
    open_run: Option<OpenRun>,
    /// What the file's `skills` accepts, read when the run began (after its
    /// deferral set indexes aside): nothing else of this run changes it.
    policy: Option<RowPolicy>,
    tags_buf: Vec<u8>,
    categories_buf: Vec<u8>,
    /// The database file, for [`Store::reader`]; `None` in memory.
    path: Option<std::path::PathBuf>,
    _scratch: Option<ScratchGuard>,
}

// An upsert is up to four statements, so that writing a skill touches only
// what changed. One `INSERT .. ON CONFLICT DO UPDATE` of every column would
// rewrite the entries of every index on `skills` and re-index the row for
// search even when only `updated_at` and `stars` moved: for 1,000 updated
// skills that doubled the pages written (13 MB of WAL against 6 MB).
// Every statement leaves `local` rows alone (`row_policy.rs`), and the
// first one to find a row another tool wrote claims it for the registry.

/// A skill not yet stored; an existing id is left to the updates below.
/// `trust_tier` and `repo_url` hold what the file's constraints accept, and
/// `registry_tier` / `registry_repo_url` the registry's value where that
/// differs (`row_policy.rs`).
const INSERT_SQL: &str = "INSERT INTO skills (id, name, description, author, repo_url,
        quality_score, trust_tier, tags, categories, stars, content_hash, license,
        security_score, installable, quarantined, sync_origin, created_at, updated_at,
        registry_tier, registry_repo_url)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 'registry', ?16, ?17,
        ?18, ?19)
    ON CONFLICT(id) DO NOTHING";

/// The columns neither indexed nor searched: always written. It claims a
/// row another tool wrote (`sync_origin` NULL) for the registry.
const UPDATE_PLAIN_SQL: &str = "UPDATE skills SET quality_score = ?2, categories = ?3,
        stars = ?4, content_hash = ?5, license = ?6, security_score = ?7, installable = ?8,
        quarantined = ?9, created_at = ?10, updated_at = ?11, sync_origin = 'registry'
    WHERE id = ?1 AND sync_origin IS NOT 'local'";

/// The searched columns that no index holds: written, and re-indexed for
/// search by the FTS5 trigger, only when they changed.
const UPDATE_TEXT_SQL: &str = "UPDATE skills SET description = ?2, tags = ?3
    WHERE id = ?1 AND sync_origin = 'registry' AND (description IS NOT ?2 OR tags IS NOT ?3)";

/// The indexed columns: written only when they changed, which is rare.
const UPDATE_KEYS_SQL: &str = "UPDATE skills SET name = ?2, author = ?3, repo_url = ?4,
        trust_tier = ?5, registry_tier = ?6, registry_repo_url = ?7
    WHERE id = ?1 AND sync_origin = 'registry'
        AND (name IS NOT ?2 OR author IS NOT ?3 OR repo_url IS NOT ?4 OR trust_tier IS NOT ?5
            OR registry_tier IS NOT ?6 OR registry_repo_url IS NOT ?7)";

/// Starts or keeps an indexing deferral when a run begins on a catalogue
/// without registry rows (migrations 005 and 006): the FTS5 triggers stop,
/// and every named index on `skills` is saved to `deferred_index` and
/// dropped, in the caller's transaction. A deferral left by a killed run is
/// kept, and ends with this run.
fn begin_deferral(conn: &Connection) -> rusqlite::Result<()> {
    // Every row there already (local ones) is indexed: the catch-up starts
    // above them (migration 008).
    // Only this project's triggers can pause (`fts_triggers.sql`); a file
    // that keeps upstream's indexes every row as it is written.
    conn.prepare_cached(
        "UPDATE sync_state SET fts_deferred = 1,
             fts_indexed_upto = (SELECT coalesce(max(rowid), 0) FROM skills)
         WHERE id = 1 AND fts_deferred IS NOT 1
             AND NOT EXISTS (SELECT 1 FROM skills WHERE sync_origin = 'registry')
             AND (SELECT count(*) FROM sqlite_schema
                  WHERE type = 'trigger' AND name IN (SELECT value FROM json_each(?1))
                      AND sql LIKE '%fts_deferred%') = 3",
    )?
    .execute([
        serde_json::to_string(&crate::schema::FTS_TRIGGER_NAMES).expect("strings serialise")
    ])?;
    let deferred = fts_deferred(conn)?;
    if !deferred {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO deferred_index (name, sql)
         SELECT name, sql FROM sqlite_schema
         WHERE type = 'index' AND tbl_name = 'skills' AND sql IS NOT NULL",
    )?
    .execute([])?;
    for name in deferred_index_names(conn)? {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {}", quote_ident(&name)))?;
    }
    Ok(())
}

/// Whether a deferral is on (`sync_state.fts_deferred`).
fn fts_deferred(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT fts_deferred = 1 FROM sync_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(false))
}

/// The indexes a deferral has dropped, by name.
fn deferred_index_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM deferred_index ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get(0))?;
    names.collect()
}

/// `name` as an SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Ends an indexing deferral (see `begin_deferral`): builds the saved
/// indexes and the full-text index from `skills` and turns the triggers back
/// on, in the caller's transaction.
pub(crate) fn end_deferral(conn: &Connection) -> rusqlite::Result<()> {
    let deferred = fts_deferred(conn)?;
    let saved: Vec<(String, String)> = conn
        .prepare_cached("SELECT name, sql FROM deferred_index ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, sql) in &saved {
        // The stored text is the index's own `CREATE INDEX`, as SQLite
        // recorded it; an index already back (restored by hand) is kept.
        let exists: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1)",
            )?
            .query_row([name], |r| r.get(0))?;
        if !exists {
            create_saved_index(conn, sql)?;
        }
    }
    conn.execute_batch("DELETE FROM deferred_index")?;
    if deferred {
        match indexed_upto(conn)? {
            // The rows the catch-up has not reached yet.
            Some(upto) => {
                conn.prepare_cached(INDEX_ROWS_ABOVE)?
                    .execute(params![upto, i64::MAX])?;
            }
            // A deferral of an older binary: nothing is known to be indexed.
            None => conn.execute_batch("INSERT INTO skills_fts(skills_fts) VALUES ('rebuild')")?,
        }
        conn.execute_batch(
            "UPDATE sync_state SET fts_deferred = 0, fts_indexed_upto = NULL WHERE id = 1",
        )?;
    }
    Ok(())
}

/// Builds an index a deferral saved. The unique one on `repo_url` fails
/// where the rows written without it share a repository; they are then
/// settled (`schema::settle_repo_urls`) and it is built again. Trying
/// first costs nothing when no rows share one, which is what a first sync
/// finds, where looking first costs a sort of the table (about 80 ms of
/// 100,000 rows).
fn create_saved_index(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.execute_batch("SAVEPOINT saved_index")?;
    let built = conn.execute_batch(sql);
    let shared = matches!(&built, Err(e)
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation));
    if built.is_err() {
        conn.execute_batch("ROLLBACK TO saved_index")?;
    }
    conn.execute_batch("RELEASE saved_index")?;
    if shared {
        crate::schema::settle_repo_urls(conn)?;
        return conn.execute_batch(sql);
    }
    built
}

/// Indexes for search the rows with a rowid in `(?1, ?2]`, which a deferral
/// has left out of the index (migration 008).
const INDEX_ROWS_ABOVE: &str = "INSERT INTO skills_fts(rowid, name, description, tags, author)
    SELECT rowid, name, description, tags, author FROM skills WHERE rowid > ?1 AND rowid <= ?2";

/// During a deferral, the rowid up to which rows are indexed for search;
/// `None` when no deferral is on or an older binary's deferral knows none.
fn indexed_upto(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT fts_indexed_upto FROM sync_state WHERE id = 1 AND fts_deferred = 1",
        )?
        .query_row([], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The WAL may grow to this size whatever the database's (see
/// `Store::bound_wal`).
const WAL_FLOOR_BYTES: u64 = 4 << 20;

/// `store.registry-ids` after a given id (see `Store::registry_ids`).
const REGISTRY_IDS_AFTER: &str =
    "SELECT id FROM skills WHERE +sync_origin = 'registry' AND id > ?1 ORDER BY id LIMIT ?2";

impl Store {
    /// A store over `db`. `lease_holder` is the holder id of the lease this
    /// sync holds: each page renews it and fails if it was lost. A read-only
    /// database (dry run) refuses every write with `invalid`.
    pub fn new(db: Database, lease_holder: Option<String>) -> Store {
        let clock = db.clock();
        let read_only = db.is_read_only();
        let path = db.path().map(std::path::Path::to_owned);
        let (conn, scratch) = db.into_parts();
        if !read_only {
            // A sync writes pages of hundreds of rows with random keys into
            // three indexes: a 32 MiB cache (SQLite's default is 2 MiB)
            // keeps their pages from being re-read, and checkpointing every
            // 32 MiB of WAL instead of every 4 MiB stops rewriting the same
            // index pages into the file after each page. Per connection.
            let _ = conn.pragma_update(None, "cache_size", -32_768);
            let _ = conn.pragma_update(None, "wal_autocheckpoint", 8_192);
        }
        Store {
            conn,
            clock,
            read_only,
            lease_holder,
            open_run: None,
            policy: None,
            tags_buf: Vec::with_capacity(256),
            categories_buf: Vec::with_capacity(256),
            path,
            _scratch: scratch,
        }
    }

    /// A second, read-only store over the same file, for lookups while
    /// this one writes (WAL readers see the last commit and never wait for
    /// the writer). `None` for a store that is not a writable file.
    pub fn reader(&self) -> Option<Store> {
        let path = self.path.as_ref().filter(|_| !self.read_only)?;
        let db = Database::open_read_only(path).ok()?;
        // Only the file itself will do: not a stand-in copy or memory.
        if db.path() != Some(path.as_path()) {
            return None;
        }
        let reader = Store::new(db, None);
        if reader._scratch.is_some() {
            return None;
        }
        // Its lookups walk the primary-key index; SQLite's default 2 MiB
        // cache would re-read it from the file.
        let _ = reader.conn.pragma_update(None, "cache_size", -8_192);
        Some(reader)
    }

    /// The id of the history run the guest opened and has not closed.
    pub fn open_run(&self) -> Option<u64> {
        self.open_run.map(|r| r.id)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::Invalid(
                "dry run: the store is read-only and a dry run writes nothing".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn check_run(&self, run: u64) -> Result<OpenRun, StoreError> {
        match self.open_run {
            Some(r) if r.id == run => Ok(r),
            Some(r) => Err(StoreError::Invalid(format!(
                "unknown run {run}: the open run is {}",
                r.id
            ))),
            None => Err(StoreError::Invalid(format!(
                "unknown run {run}: no run is open"
            ))),
        }
    }

    /// `store.read-state`.
    pub fn read_state(&mut self) -> Result<SyncState, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(store_error)?;
        let last_sync_at: Option<String> = tx
            .prepare_cached("SELECT last_sync_at FROM sync_config WHERE id = 'default'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .map_err(store_error)?
            .flatten();
        let (mode, cursor, etag, resync_pending) = tx
            .prepare_cached(
                "SELECT mode, cursor, etag, resync_pending FROM sync_state WHERE id = 1",
            )
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                    ))
                })
                .optional()
            })
            .map_err(store_error)?
            .unwrap_or((None, None, None, false));
        let registry_skills: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM skills WHERE sync_origin = 'registry'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(store_error)?;
        tx.finish().map_err(store_error)?;
        Ok(SyncState {
            last_sync_at,
            // An unknown stored mode (newer binary wrote it) means rediscover.
            mode: mode.as_deref().and_then(SyncMode::parse),
            cursor,
            etag,
            resync_pending,
            registry_skills: registry_skills.max(0) as u64,
        })
    }

    /// `store.local-versions`: one query per batch (`rarray`).
    pub fn local_versions(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<LocalVersion>>, StoreError> {
        let mut out = vec![None; ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let array: Rc<Vec<Value>> = Rc::new(ids.iter().map(|id| Value::Text(id.clone())).collect());
        // `rarray`'s rowid is the 1-based position in the array, so results
        // land in their slot whatever order the join produces.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT a.rowid, s.updated_at, s.sync_origin
                 FROM rarray(?1) AS a JOIN skills AS s ON s.id = a.value",
            )
            .map_err(store_error)?;
        let mut rows = stmt.query([array]).map_err(store_error)?;
        while let Some(r) = rows.next().map_err(store_error)? {
            let pos = r.get::<_, i64>(0).map_err(store_error)? - 1;
            let updated_at: String = r.get(1).map_err(store_error)?;
            let origin = r.get_ref(2).map_err(store_error)?;
            let source = row_policy::source_of(origin.as_str_or_null().ok().flatten());
            if let Some(slot) = usize::try_from(pos).ok().and_then(|p| out.get_mut(p)) {
                *slot = Some(LocalVersion { updated_at, source });
            }
        }
        Ok(out)
    }

    /// Whether the catalogue holds no skill at all, local or registry.
    pub fn is_empty(&mut self) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT NOT EXISTS (SELECT 1 FROM skills)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(store_error)
    }

    /// `store.registry-ids`.
    pub fn registry_ids(
        &mut self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        // Two statements rather than `?1 IS NULL OR id > ?1`, which would
        // stop SQLite from seeking the primary-key index; `+sync_origin`
        // keeps it from choosing `idx_skills_origin` (every row matches) and sorting
        // the whole table at each call.
        let mut stmt = match after {
            Some(_) => self.conn.prepare_cached(REGISTRY_IDS_AFTER),
            None => self.conn.prepare_cached(
                "SELECT id FROM skills WHERE +sync_origin = 'registry' ORDER BY id LIMIT ?1",
            ),
        }
        .map_err(store_error)?;
        let mut out = Vec::with_capacity(limit.min(10_000) as usize);
        let mut rows = match after {
            Some(a) => stmt.query(params![a, limit]),
            None => stmt.query([limit]),
        }
        .map_err(store_error)?;
        while let Some(r) = rows.next().map_err(store_error)? {
            out.push(r.get(0).map_err(store_error)?);
        }
        Ok(out)
    }

    /// `store.registry-rows`: the stored copies of skills a sync did not
    /// see, which are few, one lookup each.
    pub fn registry_rows(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<RegistryRow>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT coalesce(registry_tier, trust_tier, 'unknown'), quality_score IS NOT NULL,
                     categories
                 FROM skills WHERE id = ?1 AND sync_origin = 'registry'",
            )
            .map_err(store_error)?;
        ids.iter()
            .map(|id| {
                stmt.query_row([id], |r| {
                    let tier: String = r.get(0)?;
                    let categories: Option<String> = r.get(2)?;
                    Ok(RegistryRow {
                        id: id.clone(),
                        trust_tier: TrustTier::parse(&tier),
                        scored: r.get(1)?,
                        // A column another tool filled with something else
                        // counts as no categories: the row is then kept,
                        // not proved gone.
                        categories: categories
                            .and_then(|c| serde_json::from_str(&c).ok())
                            .unwrap_or_default(),
                    })
                })
                .optional()
                .map_err(store_error)
            })
            .collect()
    }

    /// `store.begin-run`.
    pub fn begin_run(&mut self, mode: SyncMode) -> Result<u64, StoreError> {
        self.writable()?;
        if let Some(r) = self.open_run {
            return Err(StoreError::RunOpen(format!("run {} of this process", r.id)));
        }
        let now = self.clock.now_ms();
        let tx = self.conn.unchecked_transaction().map_err(store_error)?;
        // Only this project's runs count: another client's (upstream's
        // `SyncEngine`, which takes no lease) is none of this sync's business.
        let running: Option<(String, Option<i64>, String)> = tx
            .prepare_cached(
                "SELECT h.id, r.pid, h.started_at
                 FROM sync_history h JOIN sync_run r ON r.history_id = h.id
                 WHERE h.status = 'running' LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(store_error)?;
        if let Some((id, pid, since)) = running {
            return Err(StoreError::RunOpen(format!(
                "run {id} by process {}, since {since}",
                pid.map_or_else(|| "?".to_owned(), |p| p.to_string())
            )));
        }
        // Before anything in this transaction writes to the index: FTS5
        // writes its row count when the transaction commits, so a count
        // read after a write here would not match (and a killed first
        // sync's deferral is ended by a rebuild anyway). An upstream open
        // during a first sync is caught by the next run.
        if !fts_deferred(&tx).map_err(store_error)? {
            crate::fts::rebuild_if_overcounted(&tx).map_err(store_error)?;
        }
        // Upstream's local skills are this project's local skills too.
        crate::schema::mark_upstream_local(&tx).map_err(store_error)?;
        // Upstream's ids: `sync-<time>-<random>`; this project's handle is
        // the row's rowid.
        let history_id = format!(
            "sync-{}-{:08x}",
            clock::format_ms(now),
            crate::random::SplitMix64::from_entropy().next_u64() as u32
        );
        tx.prepare_cached(
            "INSERT INTO sync_history (id, started_at, status) VALUES (?1, ?2, 'running')",
        )
        .and_then(|mut s| s.execute(params![history_id, clock::format_ms(now)]))
        .map_err(store_error)?;
        let id = tx.last_insert_rowid() as u64;
        tx.prepare_cached("INSERT INTO sync_run (history_id, mode, pid) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![history_id, mode.as_str(), std::process::id()]))
            .map_err(store_error)?;
        // A first sync into a catalogue without registry rows builds its
        // indexes once, at its end.
        begin_deferral(&tx).map_err(store_error)?;
        self.policy = Some(RowPolicy::load(&tx).map_err(store_error)?);
        tx.commit().map_err(store_error)?;
        self.open_run = Some(OpenRun {
            id,
            started_ms: now,
            pages: 0,
        });
        Ok(id)
    }

    /// `store.apply-page`: removals, upserts, checkpoint and lease heartbeat
    /// in one transaction.
    pub fn apply_page(&mut self, run: u64, page: &Page) -> Result<(), StoreError> {
        self.writable()?;
        self.check_run(run)?;
        if let Some(s) = page.upserts.iter().find(|s| s.id.is_empty()) {
            return Err(StoreError::Invalid(format!(
                "a skill with an empty id (name {:?}) cannot be stored",
                s.name
            )));
        }
        let now = self.clock.now_ms();
        let tx = self.conn.unchecked_transaction().map_err(store_error)?;
        if !page.removals.is_empty() {
            let mut del = tx
                .prepare_cached("DELETE FROM skills WHERE id = ?1 AND sync_origin = 'registry'")
                .map_err(store_error)?;
            for id in &page.removals {
                del.execute([id]).map_err(store_error)?;
            }
        }
        if !page.upserts.is_empty() {
            if self.policy.is_none() {
                self.policy = Some(RowPolicy::load(&tx).map_err(store_error)?);
            }
            let policy = self.policy.as_ref().expect("loaded above");
            let (tags_buf, categories_buf) = (&mut self.tags_buf, &mut self.categories_buf);
            let mut upsert_all = || {
                let mut stmts = Upsert::prepare(&tx, policy, now).map_err(store_error)?;
                for skill in &page.upserts {
                    stmts
                        .run(skill, tags_buf, categories_buf)
                        .map_err(|e| with_skill(store_error(e), skill))?;
                }
                Ok(())
            };
            if policy.checks_here() {
                // Every row is checked as it is written (`Upsert::run`).
                constraints::without_sqlite_checks(&tx, || Ok(upsert_all()))
                    .map_err(store_error)??;
            } else {
                upsert_all()?;
            }
        }
        let cp = &page.checkpoint;
        tx.prepare_cached(
            "INSERT INTO sync_state (id, mode, cursor, etag, resync_pending, updated_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, cursor = excluded.cursor,
                 etag = excluded.etag, resync_pending = excluded.resync_pending,
                 updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                cp.mode.as_str(),
                cp.cursor,
                cp.etag,
                cp.resync_pending,
                clock::format_ms(now)
            ])
        })
        .map_err(store_error)?;
        if let Some(holder) = &self.lease_holder
            && !lock::renew(&tx, holder, now).map_err(store_error)?
        {
            // Another process took over after our lease expired: writing on
            // would interleave two syncs. Roll the page back.
            return Err(StoreError::Busy);
        }
        tx.commit().map_err(store_error)?;
        if let Some(r) = &mut self.open_run {
            r.pages += 1;
        }
        self.bound_wal();
        Ok(())
    }

    /// Keeps the WAL within half the database file (at least
    /// [`WAL_FLOOR_BYTES`]), so that a sync never needs more than about 1.5
    /// times the catalogue's size on disk: SQLite's own checkpoint (every
    /// 32 MiB here, for speed) would let a 20,000-skill catalogue of 18 MB
    /// peak at 39 MB. A checkpoint that cannot finish (a reader holds an
    /// old snapshot) is simply retried after the next page.
    fn bound_wal(&mut self) {
        let Some(path) = &self.path else { return };
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal_bytes = size(std::path::Path::new(&wal));
        if wal_bytes > WAL_FLOOR_BYTES.max(size(path) / 2) {
            self.truncate_wal();
        }
    }

    /// Checkpoints the WAL and truncates it, if that can be done at once:
    /// with a busy timeout, a `TRUNCATE` checkpoint would hold the writer
    /// lock while it waits for readers, blocking other writers for seconds.
    /// When readers are in the way it does nothing; the next try catches up.
    fn truncate_wal(&self) {
        if self.conn.busy_timeout(Duration::ZERO).is_err() {
            return;
        }
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(db::BUSY_TIMEOUT);
    }

    /// `store.finish-run`: closes the history row and updates the
    /// configuration's sync and scheduling facts, in one transaction.
    pub fn finish_run(&mut self, run: u64, outcome: &RunOutcome) -> Result<(), StoreError> {
        self.writable()?;
        let open = self.check_run(run)?;
        let now = self.clock.now_ms();
        let now_text = clock::format_ms(now);
        let tx = self.conn.unchecked_transaction().map_err(store_error)?;
        let c = &outcome.counts;
        let error = match (outcome.status, &outcome.error) {
            (RunStatus::Success, _) => None,
            (_, Some(e)) => Some(e.clone()),
            (status, None) => Some(format!("the sync ended as {}", status.as_str())),
        };
        let closed = tx
            .prepare_cached(
                "UPDATE sync_history SET completed_at = ?1, status = ?2, skills_added = ?3,
                     skills_updated = ?4, skills_unchanged = ?5, error_message = ?6,
                     duration_ms = ?7
                 WHERE rowid = ?8 AND status = 'running'",
            )
            .and_then(|mut s| {
                s.execute(params![
                    now_text,
                    outcome.status.as_str(),
                    c.added as i64,
                    c.updated as i64,
                    c.unchanged as i64,
                    error,
                    (now - open.started_ms).max(0),
                    run as i64,
                ])
            })
            .map_err(store_error)?;
        tx.prepare_cached(
            "UPDATE sync_run SET skills_removed = ?2, skills_skipped = ?3, registry_total = ?4,
                 skills_reached = ?5, unfilterable_tiers = ?6, failure_kind = ?7
             WHERE history_id = (SELECT id FROM sync_history WHERE rowid = ?1)",
        )
        .and_then(|mut s| {
            let coverage = outcome.coverage.as_ref();
            s.execute(params![
                run as i64,
                c.removed as i64,
                c.skipped as i64,
                coverage.and_then(|c| c.registry_total).map(|n| n as i64),
                coverage.map(|c| c.reached as i64),
                coverage.map(|c| {
                    serde_json::to_string(&c.unfilterable_tiers).expect("strings serialise")
                }),
                outcome.failure.map(FailureKind::as_str),
            ])
        })
        .map_err(store_error)?;
        if closed != 1 {
            return Err(StoreError::Invalid(format!(
                "run {run} is not open in the history (closed by another process?)"
            )));
        }
        end_deferral(&tx).map_err(store_error)?;
        row_policy::give_back_repos(&tx).map_err(store_error)?;
        db::ensure_config_row(&tx).map_err(store_error)?;
        let mut config = db::read_config(&tx).map_err(store_error)?;
        let success = outcome.status == RunStatus::Success;
        // A stopped run (Ctrl-C, a signal, the session ending) neither
        // succeeded nor failed: it leaves the schedule as it was, so that
        // the next session syncs as soon as it would have, with no backoff.
        let stopped = outcome.failure.is_some_and(|k| !k.counts_as_failure());
        if !stopped {
            config.last_attempt_at = Some(now_text.clone());
        }
        if success {
            config.last_success_at = Some(now_text.clone());
            config.consecutive_failures = 0;
            if outcome.last_sync_at.is_some() {
                config.last_sync_at = outcome.last_sync_at.clone();
            }
            config.last_sync_count = (c.added + c.updated) as i64;
            config.last_sync_error = None;
        } else if stopped {
            config.last_sync_error = error;
        } else {
            config.consecutive_failures = config.consecutive_failures.saturating_add(1);
            config.last_sync_error = error;
        }
        let next_sync_at = db::next_sync_at(&config, now);
        db::write_config(&tx, &config, next_sync_at.as_deref(), &now_text).map_err(store_error)?;
        tx.commit().map_err(store_error)?;
        self.open_run = None;
        self.policy = None;
        // The run is over: give the WAL's space back, so that a finished
        // sync leaves only the database file's size on disk.
        self.truncate_wal();
        Ok(())
    }

    /// Closes the open run, if any, when the engine could not (it trapped,
    /// or returned without finishing): `partial` if pages were applied,
    /// else `failed`, with `error`. Scheduling counts it as a failure.
    pub fn abandon_open_run(&mut self, error: &str, kind: FailureKind) -> Result<(), StoreError> {
        let Some(open) = self.open_run else {
            return Ok(());
        };
        // A trap may have struck between statements of a transaction that
        // rusqlite had not yet rolled back; never commit half a page.
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let outcome = RunOutcome {
            status: if open.pages > 0 {
                RunStatus::Partial
            } else {
                RunStatus::Failed
            },
            counts: Default::default(),
            error: Some(error.to_owned()),
            failure: Some(kind),
            last_sync_at: None,
            coverage: None,
        };
        self.finish_run(open.id, &outcome)
    }

    /// Renews the lease between pages (the store thread asks at most every
    /// [`lock::RENEW_EVERY`]). Errors are left for the next page to detect.
    pub fn heartbeat(&mut self) {
        let Some(holder) = &self.lease_holder else {
            return;
        };
        match lock::renew(&self.conn, holder, self.clock.now_ms()) {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the sync lease was taken over by another process"),
            Err(e) => tracing::debug!("lease heartbeat failed: {e}"),
        }
    }

    /// During a first sync's deferral, indexes for search up to `max_rows`
    /// of the rows written so far that are not indexed yet, in one
    /// transaction; returns how many it indexed (0: nothing to do). The
    /// store thread calls it while it waits for the next page, so that the
    /// end of the sync has little left to index (migration 008).
    pub fn index_backlog(&mut self, max_rows: u32) -> Result<u64, StoreError> {
        // Only inside this process's run, which holds the lease.
        if self.read_only || self.open_run.is_none() {
            return Ok(0);
        }
        let tx = self.conn.unchecked_transaction().map_err(store_error)?;
        let Some(upto) = indexed_upto(&tx).map_err(store_error)? else {
            return Ok(0);
        };
        let upper: Option<i64> = tx
            .prepare_cached(
                "SELECT max(rowid) FROM
                     (SELECT rowid FROM skills WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)",
            )
            .and_then(|mut s| s.query_row(params![upto, max_rows], |r| r.get(0)))
            .map_err(store_error)?;
        let Some(upper) = upper else {
            return Ok(0);
        };
        let indexed = tx
            .prepare_cached(INDEX_ROWS_ABOVE)
            .and_then(|mut s| s.execute(params![upto, upper]))
            .map_err(store_error)?;
        tx.prepare_cached("UPDATE sync_state SET fts_indexed_upto = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute([upper]))
            .map_err(store_error)?;
        tx.commit().map_err(store_error)?;
        Ok(indexed as u64)
    }
}

fn with_skill(e: StoreError, skill: &Skill) -> StoreError {
    match e {
        StoreError::Invalid(m) => StoreError::Invalid(format!("skill {:?}: {m}", skill.id)),
        StoreError::Other(m) => StoreError::Other(format!("skill {:?}: {m}", skill.id)),
        other => other,
    }
}

/// Encodes a list as JSON into `buf` (reused across rows) and returns it.
fn json_into<'b>(buf: &'b mut Vec<u8>, list: &[String]) -> &'b str {
    buf.clear();
    serde_json::to_writer(&mut *buf, list).expect("writing strings to a Vec cannot fail");
    // serde_json writes UTF-8.
    std::str::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// The statements of one upsert (see `INSERT_SQL`), prepared once a page.
struct Upsert<'c> {
    conn: &'c Connection,
    policy: &'c RowPolicy,
    now_ms: i64,
    insert: rusqlite::CachedStatement<'c>,
    plain: rusqlite::CachedStatement<'c>,
    text: rusqlite::CachedStatement<'c>,
    keys: rusqlite::CachedStatement<'c>,
}

impl<'c> Upsert<'c> {
    fn prepare(conn: &'c Connection, policy: &'c RowPolicy, now_ms: i64) -> rusqlite::Result<Self> {
        Ok(Upsert {
            conn,
            policy,
            now_ms,
            insert: conn.prepare_cached(INSERT_SQL)?,
            plain: conn.prepare_cached(UPDATE_PLAIN_SQL)?,
            text: conn.prepare_cached(UPDATE_TEXT_SQL)?,
            keys: conn.prepare_cached(UPDATE_KEYS_SQL)?,
        })
    }

    /// Inserts `s`, or updates the registry row with its id.
    fn run(
        &mut self,
        s: &Skill,
        tags_buf: &mut Vec<u8>,
        categories_buf: &mut Vec<u8>,
    ) -> rusqlite::Result<()> {
        let tags = json_into(tags_buf, &s.tags);
        let categories = json_into(categories_buf, &s.categories);
        let (tier, registry_tier) = self.policy.tier(s.trust_tier);
        if self.policy.checks_here() {
            self.policy.admit(tier, s.quality_score)?;
        }
        let (repo, registry_repo) = self.policy.repo(self.conn, s, false)?;
        let inserted = self.insert.execute(params![
            s.id,
            s.name,
            s.description,
            s.author,
            repo,
            s.quality_score,
            tier,
            tags,
            categories,
            s.stars,
            s.content_hash,
            s.license,
            s.security_score,
            s.installable,
            s.quarantined,
            s.created_at,
            s.updated_at,
            registry_tier,
            registry_repo,
        ])?;
        if inserted == 0 {
            let updated = self.plain.execute(params![
                s.id,
                s.quality_score,
                categories,
                s.stars,
                s.content_hash,
                s.license,
                s.security_score,
                s.installable,
                s.quarantined,
                s.created_at,
                s.updated_at,
            ])?;
            if updated == 0 {
                // A local row with this id: left alone.
                return Ok(());
            }
            self.text.execute(params![s.id, s.description, tags])?;
            self.keys.execute(params![
                s.id,
                s.name,
                s.author,
                repo,
                tier,
                registry_tier,
                registry_repo
            ])?;
        }
        self.policy.record_version(self.conn, s, self.now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillsmith_guest::domain::{Checkpoint, RunCounts, Source, TrustTier};

    fn skill(id: &str, updated: &str) -> Skill {
        Skill {
            name: format!("skill {id}"),
            description: Some("does things with git".into()),
            author: Some("alice".into()),
            quality_score: Some(0.5),
            tags: vec!["git".into(), "a \"quoted\" tag".into()],
            categories: vec!["Development".into()],
            stars: Some(1),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            ..Skill::minimal(id, updated)
        }
    }

    fn page(upserts: Vec<Skill>, removals: Vec<&str>, cursor: &str) -> Page {
        Page {
            upserts,
            removals: removals.into_iter().map(String::from).collect(),
            checkpoint: Checkpoint {
                mode: SyncMode::ChangesFeed,
                cursor: Some(cursor.into()),
                etag: None,
                resync_pending: false,
            },
        }
    }

    fn success(added: u64) -> RunOutcome {
        RunOutcome {
            status: RunStatus::Success,
            counts: RunCounts {
                added,
                ..Default::default()
            },
            error: None,
            failure: None,
            last_sync_at: Some("2026-11-20T10:00:00.000Z".into()),
            coverage: None,
        }
    }

    fn file_store() -> (tempfile::TempDir, Store, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        let store = Store::new(Database::open(&path).unwrap(), None);
        let reader = Database::open(&path).unwrap();
        (dir, store, reader)
    }

    #[test]
    fn a_sync_run_end_to_end() {
        let (_dir, mut store, reader) = file_store();
        let state = store.read_state().unwrap();
        assert_eq!(state, SyncState::default());
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        assert!(matches!(
            store.begin_run(SyncMode::ChangesFeed),
            Err(StoreError::RunOpen(_))
        ));
        store
            .apply_page(
                run,
                &page(
                    vec![
                        skill("a", "2026-01-02T00:00:00.000Z"),
                        skill("b", "2026-01-02T00:00:00.000Z"),
                    ],
                    vec![],
                    "c1",
                ),
            )
            .unwrap();
        store
            .apply_page(
                run,
                &page(
                    vec![skill("c", "2026-01-03T00:00:00.000Z")],
                    vec!["a"],
                    "c2",
                ),
            )
            .unwrap();
        assert!(matches!(
            store.apply_page(run + 1, &page(vec![], vec![], "x")),
            Err(StoreError::Invalid(_))
        ));
        store.finish_run(run, &success(3)).unwrap();

        let state = store.read_state().unwrap();
        assert_eq!(state.mode, Some(SyncMode::ChangesFeed));
        assert_eq!(state.cursor.as_deref(), Some("c2"));
        assert_eq!(state.registry_skills, 2);
        assert_eq!(
            state.last_sync_at.as_deref(),
            Some("2026-11-20T10:00:00.000Z")
        );

        let versions = store
            .local_versions(&["c".into(), "a".into(), "b".into(), "c".into()])
            .unwrap();
        assert_eq!(
            versions[0].as_ref().unwrap().updated_at,
            "2026-01-03T00:00:00.000Z"
        );
        assert_eq!(versions[1], None);
        assert_eq!(versions[2].as_ref().unwrap().source, Source::Registry);
        assert_eq!(versions[3], versions[0]);
        assert_eq!(store.registry_ids(None, 10).unwrap(), ["b", "c"]);
        assert_eq!(store.registry_ids(Some("b"), 10).unwrap(), ["c"]);
        assert_eq!(store.registry_ids(None, 1).unwrap(), ["b"]);
        let rows = store.registry_rows(&["c".into(), "nope".into()]).unwrap();
        let c = rows[0].as_ref().unwrap();
        assert_eq!(c.categories, ["Development"]);
        assert!(c.scored);
        assert_eq!(rows[1], None);
        // Paging walks the primary key; the planner must not pick the
        // low-selectivity `idx_skills_source` and sort the table per page.
        let plan: String = store
            .conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {REGISTRY_IDS_AFTER}"),
                params!["b", 10],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("sqlite_autoindex_skills_1"), "{plan}");

        let h = &reader.history(5).unwrap()[0];
        assert_eq!(h.status.as_str(), "success");
        assert_eq!(h.skills_added, 3);
        assert_eq!(h.mode.map(|m| m.as_str()), Some("changes-feed"));
        assert!(h.duration_ms.is_some());
        let c = reader.config().unwrap();
        assert_eq!(c.last_sync_count, 3);
        assert_eq!(c.consecutive_failures, 0);
        assert!(c.last_success_at.is_some() && c.next_sync_at.is_some());
        // Tags survive the JSON round trip and are searchable.
        let hit = reader.get("b").unwrap().unwrap();
        assert_eq!(hit.skill.tags, ["git", "a \"quoted\" tag"]);
        assert_eq!(
            reader.search("quoted", &Default::default()).unwrap().len(),
            2
        );
    }

    #[test]
    fn a_failing_row_leaves_nothing_of_its_page() {
        let (_dir, mut store, reader) = file_store();
        let run = store.begin_run(SyncMode::Search).unwrap();
        store
            .apply_page(
                run,
                &page(
                    vec![skill("keep", "2026-01-02T00:00:00.000Z")],
                    vec![],
                    "c1",
                ),
            )
            .unwrap();
        let mut bad = skill("bad", "2026-01-02T00:00:00.000Z");
        bad.quality_score = Some(7.0); // violates the CHECK constraint
        let err = store
            .apply_page(
                run,
                &page(
                    vec![skill("new", "2026-01-02T00:00:00.000Z"), bad],
                    vec!["keep"],
                    "c2",
                ),
            )
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("\"bad\"")),
            "{err:?}"
        );
        // SQLite's checks are back on after the failed page.
        assert_sqlite_checks(&store.conn);
        // Neither the upsert before it, nor the removal, nor the checkpoint.
        assert!(reader.get("new").unwrap().is_none());
        assert!(reader.get("keep").unwrap().is_some());
        assert_eq!(store.read_state().unwrap().cursor.as_deref(), Some("c1"));
        // The store is usable afterwards.
        store.apply_page(run, &page(vec![], vec![], "c3")).unwrap();
        let mut failed = success(0);
        failed.status = RunStatus::Partial;
        failed.error = Some("registry went away".into());
        failed.last_sync_at = None;
        store.finish_run(run, &failed).unwrap();
        let c = reader.config().unwrap();
        assert_eq!(c.consecutive_failures, 1);
        assert_eq!(c.last_sync_error.as_deref(), Some("registry went away"));
        assert_eq!(c.last_sync_at, None);
    }

    /// SQLite refuses a tier outside the file's list on `conn`.
    fn assert_sqlite_checks(conn: &Connection) {
        let err = conn
            .execute(
                "INSERT INTO skills (id, name, trust_tier) VALUES ('x', 'x', 'bogus')",
                [],
            )
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{err}"
        );
    }

    /// The store checks rows itself only against the CHECKs it knows; a
    /// file that declares another keeps SQLite's, and both refuse the page.
    #[test]
    fn a_check_the_store_does_not_know_is_left_to_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let known = dir.path().join("known.db");
        drop(Database::open(&known).unwrap());
        let policy = |path: &std::path::Path| {
            RowPolicy::load(&Connection::open(path).unwrap())
                .unwrap()
                .checks_here()
        };
        assert!(policy(&known));
        let other = dir.path().join("other.db");
        let script = include_str!("../../migrations/shared/catalogue.sql");
        let name = "name                    TEXT NOT NULL,";
        assert!(script.contains(name));
        Connection::open(&other)
            .unwrap()
            .execute_batch(&script.replace(name, "name TEXT NOT NULL CHECK (length(name) <= 12),"))
            .unwrap();
        assert!(!policy(&other));
        let mut store = Store::new(Database::open(&other).unwrap(), None);
        let run = store.begin_run(SyncMode::Search).unwrap();
        let mut long = skill("long", "2026-01-02T00:00:00.000Z");
        long.name = "a name of twenty chars".into();
        let err = store
            .apply_page(run, &page(vec![long], vec![], "c1"))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("length(name)")),
            "{err:?}"
        );
        let fine = skill("fine", "2026-01-02T00:00:00.000Z");
        store
            .apply_page(run, &page(vec![fine], vec![], "c2"))
            .unwrap();
        // Where the store checked a page itself, SQLite checks again after it.
        let mut store = Store::new(Database::open(&known).unwrap(), None);
        let run = store.begin_run(SyncMode::Search).unwrap();
        let fine = skill("fine", "2026-01-02T00:00:00.000Z");
        store
            .apply_page(run, &page(vec![fine], vec![], "c1"))
            .unwrap();
        assert_sqlite_checks(&store.conn);
    }

    #[test]
    fn a_first_sync_settles_shared_repositories_when_it_builds_the_unique_index() {
        let (_dir, mut store, _reader) = file_store();
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        let with_repo = |id: &str, updated: &str| {
            let mut s = skill(id, updated);
            s.repo_url = Some("https://github.com/o/shared".into());
            s
        };
        let early = with_repo("early", "2026-01-02T00:00:00.000Z");
        let late = with_repo("late", "2026-01-03T00:00:00.000Z");
        store
            .apply_page(run, &page(vec![early], vec![], "c1"))
            .unwrap();
        store
            .apply_page(run, &page(vec![late], vec![], "c2"))
            .unwrap();
        store.finish_run(run, &success(2)).unwrap();
        let repos = |id: &str| -> (Option<String>, Option<String>) {
            store
                .conn
                .query_row(
                    "SELECT repo_url, registry_repo_url FROM skills WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap()
        };
        let shared = Some("https://github.com/o/shared".to_string());
        assert_eq!(
            repos("late"),
            (shared.clone(), None),
            "the later claim keeps it"
        );
        assert_eq!(repos("early"), (None, shared));
        assert!(
            skill_indexes(&store.conn)
                .iter()
                .any(|(name, _)| name == "idx_skills_repo_url")
        );
    }

    /// The `CREATE INDEX` text of each named index on `skills`, by name.
    fn skill_indexes(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare(
            "SELECT name, sql FROM sqlite_schema
             WHERE type = 'index' AND tbl_name = 'skills' AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn a_first_sync_builds_its_indexes_at_the_end_even_after_a_kill() {
        let (_dir, mut store, reader) = file_store();
        let migrated = skill_indexes(reader.conn());
        // trust tier, origin, author and name, the unique repository and
        // the repositories waiting.
        assert_eq!(migrated.len(), 5, "{migrated:?}");

        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        assert!(skill_indexes(reader.conn()).is_empty());
        store
            .apply_page(
                run,
                &page(vec![skill("a", "2026-01-02T00:00:00.000Z")], vec![], "c1"),
            )
            .unwrap();
        // Killed: the run stays open and the indexes stay dropped. The next
        // start closes the stale run (`Database::open`); emulated here.
        drop(store);
        reader
            .conn()
            .execute(
                "UPDATE sync_history SET status = 'failed' WHERE rowid = ?1",
                [run as i64],
            )
            .unwrap();
        assert!(skill_indexes(reader.conn()).is_empty());

        // The next run has registry rows, yet keeps the deferral and ends it.
        let mut store = Store::new(Database::open(_dir.path().join("skills.db")).unwrap(), None);
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        store
            .apply_page(
                run,
                &page(vec![skill("b", "2026-01-02T00:00:00.000Z")], vec![], "c2"),
            )
            .unwrap();
        assert!(skill_indexes(reader.conn()).is_empty());
        store.finish_run(run, &success(1)).unwrap();
        assert_eq!(skill_indexes(reader.conn()), migrated);
        let saved: i64 = reader
            .conn()
            .query_row("SELECT count(*) FROM deferred_index", [], |r| r.get(0))
            .unwrap();
        assert_eq!(saved, 0);
        let check: String = reader
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        assert_eq!(reader.search("git", &Default::default()).unwrap().len(), 2);

        // A catalogue with registry rows is not a first sync: nothing dropped.
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        assert_eq!(skill_indexes(reader.conn()), migrated);
        store.finish_run(run, &success(0)).unwrap();
    }

    /// Runs FTS5's own check that the search index holds exactly the
    /// catalogue's current text (false during a deferral, by design).
    fn assert_search_index_exact(conn: &Connection) {
        conn.execute(
            "INSERT INTO skills_fts(skills_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the search index matches the catalogue");
    }

    #[test]
    fn a_first_sync_indexes_between_pages_and_its_index_stays_exact() {
        const T1: &str = "2026-01-02T00:00:00.000Z";
        const T2: &str = "2026-01-03T00:00:00.000Z";
        let (_dir, mut store, reader) = file_store();
        // A local row is indexed before the sync, and stays so.
        reader
            .conn()
            .execute(
                "INSERT INTO skills (id, name, description, sync_origin, created_at, updated_at)
                 VALUES ('mine', 'my own', 'about zebras', 'local', ?1, ?1)",
                [T1],
            )
            .unwrap();
        let hits = |q: &str| reader.search(q, &Default::default()).unwrap().len();
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        let ids: Vec<String> = (0..8).map(|i| format!("s{i}")).collect();
        let first = ids.iter().map(|id| skill(id, T1)).collect();
        store.apply_page(run, &page(first, vec![], "c1")).unwrap();
        assert_eq!(hits("git"), 0, "a first sync's rows wait for the catch-up");

        // The catch-up indexes rows in rowid order, a step at a time.
        assert_eq!(store.index_backlog(3).unwrap(), 3);
        assert_eq!(hits("git"), 3);

        // Change and remove rows on both sides of the watermark.
        let about = |id: &str, text: &str| {
            let mut s = skill(id, T2);
            s.description = Some(text.into());
            s
        };
        let second = vec![about("s1", "pelicans"), about("s6", "pelicans")];
        store
            .apply_page(run, &page(second, vec!["s2", "s5"], "c2"))
            .unwrap();
        // The indexed row's new text is found, the other's not yet.
        assert_eq!(hits("pelicans"), 1);
        assert_eq!(hits("git"), 2, "s2 left the index with its row");
        assert_eq!(
            store.index_backlog(100).unwrap(),
            4,
            "s3, s4, s6 and s7 are left"
        );
        assert_eq!(store.index_backlog(100).unwrap(), 0);
        assert_eq!(hits("pelicans"), 2);

        // Removing the newest row and adding one reuses its rowid, at or
        // under the watermark: the trigger indexes it.
        let top: i64 = reader
            .conn()
            .query_row("SELECT max(rowid) FROM skills", [], |r| r.get(0))
            .unwrap();
        store
            .apply_page(run, &page(vec![], vec!["s7"], "c3"))
            .unwrap();
        store
            .apply_page(run, &page(vec![about("late", "walruses")], vec![], "c4"))
            .unwrap();
        let reused: i64 = reader
            .conn()
            .query_row("SELECT rowid FROM skills WHERE id = 'late'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(reused, top);
        assert_eq!(hits("walruses"), 1);
        store
            .apply_page(run, &page(vec![about("later", "otters")], vec![], "c5"))
            .unwrap();
        assert_eq!(hits("otters"), 0, "above the watermark: left to the end");

        // The end indexes the rest and ends the deferral.
        store.finish_run(run, &success(8)).unwrap();
        assert_search_index_exact(reader.conn());
        assert_eq!(hits("otters"), 1);
        assert_eq!(hits("zebras"), 1);
        // s0, s1, s3, s4, s6, late and later: every registry row left.
        assert_eq!(hits("git"), 7);
        let (deferred, upto): (bool, Option<i64>) = reader
            .conn()
            .query_row(
                "SELECT fts_deferred = 1, fts_indexed_upto FROM sync_state",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((deferred, upto), (false, None));
        // Outside a deferral there is nothing to catch up.
        assert_eq!(store.index_backlog(100).unwrap(), 0);
    }

    #[test]
    fn a_deferral_without_a_watermark_ends_with_a_rebuild() {
        let (_dir, mut store, reader) = file_store();
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        store
            .apply_page(
                run,
                &page(vec![skill("a", "2026-01-02T00:00:00.000Z")], vec![], "c1"),
            )
            .unwrap();
        // As an older binary's killed deferral leaves it.
        reader
            .conn()
            .execute("UPDATE sync_state SET fts_indexed_upto = NULL", [])
            .unwrap();
        assert_eq!(store.index_backlog(100).unwrap(), 0);
        store
            .apply_page(
                run,
                &page(vec![skill("b", "2026-01-02T00:00:00.000Z")], vec![], "c2"),
            )
            .unwrap();
        store.finish_run(run, &success(2)).unwrap();
        assert_search_index_exact(reader.conn());
        assert_eq!(reader.search("git", &Default::default()).unwrap().len(), 2);
    }

    #[test]
    fn an_update_writes_only_the_columns_that_changed() {
        let (_dir, mut store, reader) = file_store();
        let first = vec![
            skill("a", "2026-01-02T00:00:00.000Z"),
            skill("b", "2026-01-02T00:00:00.000Z"),
            skill("c", "2026-01-02T00:00:00.000Z"),
        ];
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        store.apply_page(run, &page(first, vec![], "c1")).unwrap();
        store.finish_run(run, &success(3)).unwrap();

        // Which rows had their searched or indexed columns written.
        store
            .conn
            .execute_batch(
                "CREATE TEMP TABLE touched (id TEXT, what TEXT);
                 CREATE TEMP TRIGGER touched_text AFTER UPDATE OF description, tags ON main.skills
                 BEGIN INSERT INTO touched VALUES (new.id, 'text'); END;
                 CREATE TEMP TRIGGER touched_keys AFTER UPDATE OF name, author, repo_url, trust_tier
                 ON main.skills BEGIN INSERT INTO touched VALUES (new.id, 'keys'); END;",
            )
            .unwrap();
        let mut a = skill("a", "2026-01-03T00:00:00.000Z");
        a.description = Some("reviews npm lockfiles".into());
        let mut b = skill("b", "2026-01-03T00:00:00.000Z");
        b.name = "renamed".into();
        b.author = Some("bob".into());
        b.trust_tier = TrustTier::Verified;
        b.repo_url = Some("https://example.com/b".into());
        let mut c = skill("c", "2026-01-03T00:00:00.000Z");
        c.stars = Some(99);
        c.quality_score = None;
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        store
            .apply_page(
                run,
                &page(vec![a.clone(), b.clone(), c.clone()], vec![], "c2"),
            )
            .unwrap();
        store.finish_run(run, &success(0)).unwrap();

        let touched: Vec<(String, String)> = store
            .conn
            .prepare("SELECT id, what FROM touched ORDER BY id, what")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            touched,
            [("a".into(), "text".into()), ("b".into(), "keys".into())]
        );
        for want in [&a, &b, &c] {
            let got = reader.get(&want.id).unwrap().unwrap();
            assert_eq!(got.skill.name, want.name);
            assert_eq!(got.skill.description, want.description);
            assert_eq!(got.skill.author, want.author);
            assert_eq!(got.skill.repo_url, want.repo_url);
            assert_eq!(got.skill.trust_tier, want.trust_tier);
            assert_eq!(got.skill.stars, want.stars);
            assert_eq!(got.skill.quality_score, want.quality_score);
            assert_eq!(got.skill.updated_at, want.updated_at);
        }
        store
            .conn
            .execute(
                "INSERT INTO skills_fts(skills_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("the search index matches the catalogue");
        let found = |q: &str| -> Vec<String> {
            reader
                .search(q, &Default::default())
                .unwrap()
                .into_iter()
                .map(|h| h.skill.id)
                .collect()
        };
        assert_eq!(found("lockfiles"), ["a"]);
        assert_eq!(found("renamed"), ["b"]);
        assert_eq!(found("bob"), ["b"]);
        assert!(found("alice").iter().all(|id| id != "b"));
    }

    #[test]
    fn local_rows_are_never_overwritten_or_removed() {
        let (_dir, mut store, reader) = file_store();
        let mut mine = skill("mine", "2026-01-01T00:00:00.000Z");
        mine.name = "my own".into();
        reader.insert_local_skill(&mine).unwrap();
        let run = store.begin_run(SyncMode::Search).unwrap();
        let mut theirs = skill("mine", "2027-01-01T00:00:00.000Z");
        theirs.name = "registry version".into();
        store
            .apply_page(run, &page(vec![theirs], vec![], "c1"))
            .unwrap();
        store
            .apply_page(run, &page(vec![], vec!["mine"], "c2"))
            .unwrap();
        let row = reader.get("mine").unwrap().unwrap();
        assert_eq!(row.skill.name, "my own");
        assert_eq!(row.source.as_str(), "local");
        assert_eq!(row.skill.updated_at, "2026-01-01T00:00:00.000Z");
        assert_eq!(store.registry_ids(None, 10).unwrap(), Vec::<String>::new());
        assert_eq!(store.registry_rows(&["mine".into()]).unwrap(), [None]);
        let v = store.local_versions(&["mine".into()]).unwrap();
        assert_eq!(v[0].as_ref().unwrap().source, Source::Local);
        assert_eq!(store.read_state().unwrap().registry_skills, 0);
    }

    #[test]
    fn a_lost_lease_rolls_the_page_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        let db = Database::open(&path).unwrap();
        let lease = db.lease().unwrap();
        let mut store = Store::new(db, Some(lease.holder().to_owned()));
        let run = store.begin_run(SyncMode::Search).unwrap();
        store
            .apply_page(
                run,
                &page(vec![skill("a", "2026-01-02T00:00:00.000Z")], vec![], "c1"),
            )
            .unwrap();
        lease.release().unwrap();
        assert_eq!(
            store.apply_page(
                run,
                &page(vec![skill("b", "2026-01-02T00:00:00.000Z")], vec![], "c2")
            ),
            Err(StoreError::Busy)
        );
        let reader = Database::open(&path).unwrap();
        assert!(reader.get("b").unwrap().is_none());
        store
            .abandon_open_run("lease lost", FailureKind::Component)
            .unwrap();
        let h = &reader.history(1).unwrap()[0];
        assert_eq!(h.status.as_str(), "partial");
        assert_eq!(h.error_message.as_deref(), Some("lease lost"));
    }

    #[test]
    fn read_only_stores_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        drop(Database::open(&path).unwrap());
        let mut store = Store::new(Database::open_read_only(&path).unwrap(), None);
        assert!(store.read_state().is_ok());
        assert!(matches!(
            store.begin_run(SyncMode::Search),
            Err(StoreError::Invalid(_))
        ));
    }

    /// Throughput of `apply_page`, the sync's bottleneck. Run with
    /// `cargo test -p skillsmith-runtime --release --lib apply_page_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "benchmark"]
    fn apply_page_throughput() {
        let (_dir, mut store, _reader) = file_store();
        let n = 20_000;
        let pages: Vec<Page> = (0..n / 1000)
            .map(|p| {
                let upserts = (0..1000)
                    .map(|i| {
                        let mut s =
                            skill(&format!("{:08}", p * 1000 + i), "2026-01-02T00:00:00.000Z");
                        s.description =
                            Some(format!("skill number {i} helps with git and testing"));
                        s
                    })
                    .collect();
                page(upserts, vec![], &format!("c{p}"))
            })
            .collect();
        let run = store.begin_run(SyncMode::ChangesFeed).unwrap();
        let t = std::time::Instant::now();
        for p in &pages {
            store.apply_page(run, p).unwrap();
        }
        let insert = t.elapsed();
        let t = std::time::Instant::now();
        for p in &pages {
            store.apply_page(run, p).unwrap();
        }
        let update = t.elapsed();
        let ids: Vec<String> = (0..1000).map(|i| format!("{i:08}")).collect();
        let t = std::time::Instant::now();
        for _ in 0..20 {
            store.local_versions(&ids).unwrap();
        }
        let lookup = t.elapsed();
        eprintln!(
            "apply_page: insert {:.0} rows/s, update {:.0} rows/s; local_versions {:.0} ids/s",
            n as f64 / insert.as_secs_f64(),
            n as f64 / update.as_secs_f64(),
            20_000.0 / lookup.as_secs_f64()
        );
    }

    #[test]
    fn error_mapping() {
        let e = |code| {
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("x".into()))
        };
        use rusqlite::ffi;
        assert_eq!(store_error(e(ffi::SQLITE_BUSY)), StoreError::Busy);
        assert_eq!(store_error(e(ffi::SQLITE_LOCKED)), StoreError::Busy);
        assert_eq!(store_error(e(ffi::SQLITE_FULL)), StoreError::NoSpace);
        assert_eq!(store_error(e(ffi::SQLITE_READONLY)), StoreError::ReadOnly);
        assert!(matches!(
            store_error(e(ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            store_error(e(ffi::SQLITE_NOTADB)),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            store_error(e(ffi::SQLITE_IOERR)),
            StoreError::Other(_)
        ));
    }
}
