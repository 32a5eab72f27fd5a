//! The catalogue as its readers see it: [`Database`] opens a file (for
//! syncing, for reading only, or for a dry run) and answers the CLI's and
//! the MCP server's questions (configuration, history, status, search).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use skillsmith_guest::domain::{
    Coverage, FailureKind, ScheduleConfig, Skill, Source, SyncMode, TrustTier,
};

use crate::clock::{self, Clock};
pub use crate::connection::{BUSY_TIMEOUT, DbError, SCHEMA_VERSION};
use crate::connection::{configure, known_version, open_connection, uri_path};
use crate::lock::{Lease, LockError};
use crate::random;

/// Background-sync frequency (`sync_config.frequency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
}

impl Frequency {
    /// The interval in milliseconds (upstream's values).
    pub fn interval_ms(self) -> i64 {
        match self {
            Frequency::Daily => 86_400_000,
            Frequency::Weekly => 604_800_000,
        }
    }

    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
        }
    }

    /// Inverse of [`Frequency::as_str`].
    pub fn parse(s: &str) -> Option<Frequency> {
        match s {
            "daily" => Some(Frequency::Daily),
            "weekly" => Some(Frequency::Weekly),
            _ => None,
        }
    }
}

impl std::fmt::Display for Frequency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The background-sync settings: the `sync_config` row (ADR-018 columns
/// plus the v4 scheduling facts).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SyncConfigView {
    /// Background sync on.
    pub enabled: bool,
    /// Daily or weekly.
    pub frequency: Frequency,
    /// The interval in milliseconds.
    pub interval_ms: i64,
    /// Registry time of the last fully successful sync.
    pub last_sync_at: Option<String>,
    /// When the next background sync is due; null when disabled.
    pub next_sync_at: Option<String>,
    /// Skills written (added + updated) by the last successful sync.
    pub last_sync_count: i64,
    /// Why the last attempt failed; cleared by a success.
    pub last_sync_error: Option<String>,
    /// Host time the last attempt ended.
    pub last_attempt_at: Option<String>,
    /// Host time the last success ended.
    pub last_success_at: Option<String>,
    /// Failed attempts since the last success (drives the backoff).
    pub consecutive_failures: u32,
    /// Row creation time.
    pub created_at: String,
    /// Last change to the row.
    pub updated_at: String,
}

/// The settings of a fresh catalogue (migration v3's defaults): enabled,
/// daily, never synced.
impl Default for SyncConfigView {
    fn default() -> SyncConfigView {
        SyncConfigView {
            enabled: true,
            frequency: Frequency::Daily,
            interval_ms: Frequency::Daily.interval_ms(),
            last_sync_at: None,
            next_sync_at: None,
            last_sync_count: 0,
            last_sync_error: None,
            last_attempt_at: None,
            last_success_at: None,
            consecutive_failures: 0,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
}

impl SyncConfigView {
    /// The scheduler's view of this configuration.
    pub fn schedule_config(&self) -> ScheduleConfig {
        ScheduleConfig {
            enabled: self.enabled,
            interval_ms: self.interval_ms,
            last_attempt_ms: self.last_attempt_at.as_deref().and_then(clock::parse_ms),
            last_success_ms: self.last_success_at.as_deref().and_then(clock::parse_ms),
            consecutive_failures: self.consecutive_failures,
        }
    }
}

/// One sync run: a `sync_history` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct HistoryEntry {
    /// Run id: this project's `sync-<time>-<random>`, upstream's own, or
    /// the number of a run recorded before the catalogue was shared.
    pub id: String,
    /// Host time the run started.
    pub started_at: String,
    /// Host time the run ended; `None` while running.
    pub completed_at: Option<String>,
    /// `running`, `success`, `partial` or `failed`.
    pub status: RunState,
    /// New skills.
    pub skills_added: u64,
    /// Changed skills.
    pub skills_updated: u64,
    /// Skills already current.
    pub skills_unchanged: u64,
    /// Skills removed.
    pub skills_removed: u64,
    /// Records skipped.
    pub skills_skipped: u64,
    /// What went wrong, for `partial` and `failed`.
    pub error_message: Option<String>,
    /// Its kind, for `partial` and `failed`.
    pub failure_kind: Option<FailureKind>,
    /// Wall time of the run on the host clock.
    pub duration_ms: Option<i64>,
    /// `changes-feed` or `search`.
    pub mode: Option<SyncMode>,
    /// Process that ran it.
    pub pid: Option<u32>,
    /// Search mode: skills the registry counted (`/stats`), when it said.
    pub registry_total: Option<u64>,
    /// Search mode: distinct skills the listings reached.
    pub skills_reached: Option<u64>,
    /// Search mode: skills the registry counts that no listing reached;
    /// `None` when it gave no count to check against.
    pub skills_unreachable: Option<u64>,
    /// Search mode: trust tiers the search API refused as filters.
    pub unfilterable_tiers: Vec<String>,
    /// Search mode: the four facts above together, with a sentence.
    pub coverage: Option<CoverageView>,
}

/// Where a history run stands (`sync_history.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum RunState {
    /// Not finished (or its process died; the next lease closes it).
    Running,
    /// Finished.
    Success,
    /// Stopped or failed after applying some pages, which are kept.
    Partial,
    /// Failed before applying anything.
    Failed,
}

impl RunState {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Success => "success",
            RunState::Partial => "partial",
            RunState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<RunState> {
        [
            RunState::Running,
            RunState::Success,
            RunState::Partial,
            RunState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How much of the registry a search-mode run reached. The search API lists
/// only what its filters match: a skill in a tier it cannot filter on, with
/// neither a quality score nor a category, is in no listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct CoverageView {
    /// Skills the registry says it has; null when it does not say, so
    /// completeness was not checked.
    pub registry_total: Option<u64>,
    /// Distinct skills the listings reached.
    pub reached: u64,
    /// Skills the registry counts that the search API cannot reach; null
    /// when completeness was not checked.
    pub unreachable: Option<u64>,
    /// Trust tiers the search API cannot filter on.
    pub unfilterable_tiers: Vec<String>,
    /// The same in one sentence.
    pub summary: String,
}

impl From<&Coverage> for CoverageView {
    fn from(c: &Coverage) -> CoverageView {
        CoverageView {
            registry_total: c.registry_total,
            reached: c.reached,
            unreachable: c.unreachable(),
            unfilterable_tiers: c.unfilterable_tiers.clone(),
            summary: c.summary(),
        }
    }
}

impl HistoryEntry {
    /// Search mode: what the run's listings reached.
    pub fn coverage(&self) -> Option<Coverage> {
        Some(Coverage {
            registry_total: self.registry_total,
            reached: self.skills_reached?,
            unfilterable_tiers: self.unfilterable_tiers.clone(),
        })
    }
}

/// `sync status`: the configuration, the catalogue and the sync state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Status {
    /// The database file, or `:memory:`.
    pub path: String,
    /// Schema version of the file.
    pub schema_version: u32,
    /// The `sync_config` row.
    pub config: SyncConfigView,
    /// Skills written by syncs.
    pub registry_skills: u64,
    /// Skills imported from disk (this project's or the upstream tools').
    pub local_skills: u64,
    /// Rows another tool wrote that no sync of this project has listed yet:
    /// never updated blindly or removed (`sync_origin` NULL).
    pub other_skills: u64,
    /// Protocol of the stored checkpoint.
    pub mode: Option<SyncMode>,
    /// A changes-feed cursor is stored (the next sync resumes from it).
    pub has_cursor: bool,
    /// A full resync started and has not finished yet.
    pub resync_pending: bool,
    /// The first sync builds the search index at its end (migration 005);
    /// until then `search` does not see the skills it added.
    pub search_index_pending: bool,
    /// Process running a sync of this catalogue now, if any (any process).
    pub running_pid: Option<u32>,
    /// Host time that process took the lease.
    pub running_since: Option<String>,
    /// The newest history row.
    pub last_run: Option<HistoryEntry>,
}

/// Filters of [`Database::search`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchFilter {
    /// Only this trust tier (exact, e.g. `verified`).
    pub trust_tier: Option<String>,
    /// Only skills with at least this quality score (0..=1).
    pub min_quality: Option<f64>,
    /// At most this many results; 0 means 20. Capped at 1,000.
    pub limit: u32,
}

/// One skill in the local catalogue: the skill as the registry sent it
/// (or as it was imported), where it came from, and its search relevance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct SkillRecord {
    /// The skill.
    #[serde(flatten)]
    pub skill: Skill,
    /// `registry` (synced) or `local` (imported from disk).
    pub source: Source,
    /// Search relevance (bm25; lower is better) in search results with a
    /// query; null otherwise.
    pub rank: Option<f64>,
}

/// A copy of an old-schema database made for a dry run, deleted on drop.
#[derive(Debug)]
struct ScratchCopy(PathBuf);

impl Drop for ScratchCopy {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// An open, migrated catalogue database.
#[derive(Debug)]
pub struct Database {
    // Declared before `scratch` so the connection closes before the scratch
    // file is deleted.
    conn: Connection,
    path: Option<PathBuf>,
    read_only: bool,
    clock: Clock,
    scratch: Option<ScratchCopy>,
}

const MEMORY: &str = ":memory:";

impl Database {
    /// Opens (creating parent directories and the file) and migrates the
    /// catalogue at `path`. Refuses, without modifying it, a database whose
    /// schema is newer than [`SCHEMA_VERSION`].
    pub fn open(path: impl AsRef<Path>) -> Result<Database, DbError> {
        let path = path.as_ref();
        let conn = open_connection(path)?;
        Ok(Database {
            conn,
            path: Some(path.to_owned()),
            read_only: false,
            clock: Clock::from_env(),
            scratch: None,
        })
    }

    /// A fresh, migrated database in memory (tests, dry runs without a file).
    pub fn open_in_memory() -> Result<Database, DbError> {
        let mem = Path::new(MEMORY);
        let mut conn = Connection::open_in_memory().map_err(|e| DbError::from_sqlite(mem, e))?;
        configure(&mut conn).map_err(|e| DbError::from_sqlite(mem, e))?;
        crate::schema::prepare(&mut conn, mem)?;
        Ok(Database {
            conn,
            path: None,
            read_only: false,
            clock: Clock::from_env(),
            scratch: None,
        })
    }

    /// Opens `path` for reading only (search, get, status, history), also
    /// where it cannot be written: a read-only file or folder, or a full
    /// disk on which WAL mode cannot map its shared-memory file. Tries a
    /// normal open first (which migrates an older file); then read-only;
    /// then `immutable`, which needs no `-shm` file at all (and so does not
    /// see pages a crashed writer left in the `-wal`; a finished sync
    /// leaves none).
    pub fn open_for_reading(path: impl AsRef<Path>) -> Result<Database, DbError> {
        let path = path.as_ref();
        let first = match Database::open(path) {
            Ok(db) => return Ok(db),
            Err(e) => e,
        };
        let unwritable = matches!(first.kind(), FailureKind::ReadOnly | FailureKind::NoSpace);
        if !unwritable || !path.is_file() {
            return Err(first);
        }
        let conn = open_unwritable(path, |conn| {
            crate::schema::is_current(conn).unwrap_or(false)
                && conn
                    .query_row("SELECT count(*) FROM skills", [], |r| r.get::<_, i64>(0))
                    .is_ok()
        })
        .ok_or(first)?;
        Ok(Database {
            conn,
            path: Some(path.to_owned()),
            read_only: true,
            clock: Clock::from_env(),
            scratch: None,
        })
    }

    /// Opens `path` for a dry run: nothing is ever written to it. A missing
    /// file gives an empty in-memory catalogue; a file with an older schema
    /// is copied (`VACUUM INTO`) to a temporary file that is migrated and
    /// deleted on drop; a current one is opened read-only.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Database, DbError> {
        let path = path.as_ref();
        if !path.exists() {
            return Database::open_in_memory();
        }
        let err = |e| DbError::from_sqlite(path, e);
        // A file on a read-only or full file system too: a dry run writes
        // nothing, so it needs no more than a search does.
        let readable = |conn: &Connection| {
            conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok()
        };
        let mut conn = match open_unwritable(path, readable) {
            Some(conn) => conn,
            // Neither way reads it: open it plainly, and let the first
            // query say why.
            None => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|source| DbError::Open {
                path: path.to_owned(),
                source,
            })?,
        };
        known_version(&conn, path)?;
        if crate::schema::is_current(&conn).map_err(err)? {
            configure(&mut conn).map_err(err)?;
            return Ok(Database {
                conn,
                path: Some(path.to_owned()),
                read_only: true,
                clock: Clock::from_env(),
                scratch: None,
            });
        }
        let copy = std::env::temp_dir().join(format!(
            "skillsmith-dry-run-{}-{:x}.db",
            std::process::id(),
            random::SplitMix64::from_entropy().next_u64()
        ));
        let scratch = ScratchCopy(copy.clone());
        conn.execute("VACUUM INTO ?1", [copy.to_string_lossy().as_ref()])
            .map_err(err)?;
        drop(conn);
        let conn = open_connection(&copy)?;
        Ok(Database {
            conn,
            path: Some(path.to_owned()),
            read_only: true,
            clock: Clock::from_env(),
            scratch: Some(scratch),
        })
    }

    /// Uses `clock` for host times instead of the environment's.
    pub fn with_clock(mut self, clock: Clock) -> Database {
        self.clock = clock;
        self
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// True when opened by [`Database::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The clock host times are taken from.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Takes the sync lease of this catalogue ([`Lease::acquire`]); an
    /// in-memory catalogue has none.
    pub fn lease(&self) -> Result<Lease, LockError> {
        Lease::acquire(self.path().ok_or(LockError::NoFile)?, self.clock)
    }

    /// Like [`Database::lease`], waiting up to `timeout` for a holder.
    pub fn lease_wait(&self, timeout: std::time::Duration) -> Result<Lease, LockError> {
        Lease::acquire_wait(self.path().ok_or(LockError::NoFile)?, self.clock, timeout)
    }

    fn display_path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(MEMORY))
    }

    fn err(&self, e: rusqlite::Error) -> DbError {
        DbError::from_sqlite(self.display_path(), e)
    }

    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn into_parts(self) -> (Connection, Option<ScratchGuard>) {
        (self.conn, self.scratch.map(ScratchGuard))
    }

    /// This project's schema version of the file (`skillsmith_migrations`).
    pub fn schema_version(&self) -> Result<u32, DbError> {
        crate::schema::version(&self.conn).map_err(|e| self.err(e))
    }

    /// Runs `PRAGMA integrity_check` (slow on big catalogues: not done on
    /// open). Returns the problems found; empty means the file is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>, DbError> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// The `sync_config` row.
    pub fn config(&self) -> Result<SyncConfigView, DbError> {
        read_config(&self.conn).map_err(|e| self.err(e))
    }

    /// Turns background sync on or off and recomputes `next_sync_at`.
    pub fn set_enabled(&self, enabled: bool) -> Result<SyncConfigView, DbError> {
        self.update_config(|tx| {
            tx.execute(
                "UPDATE sync_config SET enabled = ?1 WHERE id = 'default'",
                [enabled],
            )
            .map(drop)
        })
    }

    /// Sets the frequency (and `interval_ms`) and recomputes `next_sync_at`.
    pub fn set_frequency(&self, frequency: Frequency) -> Result<SyncConfigView, DbError> {
        self.update_config(|tx| {
            tx.execute(
                "UPDATE sync_config SET frequency = ?1, interval_ms = ?2 WHERE id = 'default'",
                params![frequency.as_str(), frequency.interval_ms()],
            )
            .map(drop)
        })
    }

    fn update_config(
        &self,
        change: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<SyncConfigView, DbError> {
        if self.read_only {
            return Err(DbError::Invalid(
                "this database was opened read-only (dry run)".into(),
            ));
        }
        let run = || -> rusqlite::Result<SyncConfigView> {
            let tx = self.conn.unchecked_transaction()?;
            ensure_config_row(&tx)?;
            change(&tx)?;
            let now = self.clock.now_ms();
            let mut config = read_config(&tx)?;
            config.next_sync_at = next_sync_at(&config, now);
            config.updated_at = clock::format_ms(now);
            tx.execute(
                "UPDATE sync_config SET next_sync_at = ?1, updated_at = ?2 WHERE id = 'default'",
                params![config.next_sync_at, config.updated_at],
            )?;
            tx.commit()?;
            Ok(config)
        };
        run().map_err(|e| self.err(e))
    }

    /// The newest `limit` history rows, newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<HistoryEntry>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("{HISTORY_SELECT} LIMIT ?1"))
            .map_err(|e| self.err(e))?;
        stmt.query_map([limit], history_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Configuration, catalogue counts, checkpoint and lease state, last run.
    pub fn status(&self) -> Result<Status, DbError> {
        let run = || -> rusqlite::Result<Status> {
            // One read transaction, so that counts and state are consistent.
            let tx =
                rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
            let config = read_config(&tx)?;
            let (mut registry, mut local, mut other) = (0u64, 0u64, 0u64);
            {
                let mut stmt =
                    tx.prepare_cached("SELECT sync_origin, COUNT(*) FROM skills GROUP BY 1")?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let n = r.get::<_, i64>(1)? as u64;
                    match r.get_ref(0)?.as_str_or_null()? {
                        Some("registry") => registry += n,
                        Some("local") => local += n,
                        _ => other += n,
                    }
                }
            }
            let (mode, has_cursor, resync_pending, search_index_pending): (
                Option<String>,
                _,
                _,
                _,
            ) = tx
                .query_row(
                    "SELECT mode, cursor IS NOT NULL, resync_pending, fts_deferred = 1
                     FROM sync_state WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?
                .unwrap_or((None, false, false, false));
            let lease = crate::lock::live_lease(&tx, self.clock.now_ms())?;
            let last_run = tx
                .query_row(&format!("{HISTORY_SELECT} LIMIT 1"), [], history_row)
                .optional()?;
            Ok(Status {
                path: self.display_path().display().to_string(),
                schema_version: crate::schema::version(&tx)?,
                config,
                registry_skills: registry,
                local_skills: local,
                other_skills: other,
                mode: mode.as_deref().and_then(SyncMode::parse),
                has_cursor,
                resync_pending,
                search_index_pending,
                running_pid: lease.as_ref().map(|l| l.pid),
                running_since: lease.map(|l| l.acquired_at),
                last_run,
            })
        };
        run().map_err(|e| self.err(e))
    }

    /// Full-text search (bm25-ranked) over names, descriptions, tags and
    /// authors. Any user text is safe: it is split into words, each quoted,
    /// the last one matched as a prefix (search-as-you-type). An empty query
    /// lists skills by quality; one of only punctuation or symbols is
    /// [`DbError::NoSearchableWords`].
    pub fn search(&self, query: &str, filter: &SearchFilter) -> Result<Vec<SkillRecord>, DbError> {
        if fts_query(query).is_none() && !query.trim().is_empty() {
            return Err(DbError::NoSearchableWords(query.to_owned()));
        }
        let limit = match filter.limit {
            0 => 20,
            n => n.min(1000),
        };
        let tier = filter.trust_tier.as_deref();
        let min_quality = filter.min_quality;
        let run = || -> rusqlite::Result<Vec<SkillRecord>> {
            match fts_query(query) {
                // Without filters, rank inside FTS5 and join only the top
                // `limit` hits: a common word matches tens of thousands of
                // rows, and joining each to `skills` is what costs (9.9 ms
                // median instead of 3.8 ms over 100,000 skills).
                Some(expr) if tier.is_none() && min_quality.is_none() => {
                    let mut stmt = self.conn.prepare_cached(&format!(
                        "WITH hits AS (
                           SELECT rowid, bm25(skills_fts, {FTS_WEIGHTS}) AS rank
                           FROM skills_fts WHERE skills_fts MATCH ?1
                           ORDER BY rank, rowid LIMIT ?2)
                         SELECT {SKILL_COLUMNS_S}, hits.rank
                         FROM hits JOIN skills s ON s.rowid = hits.rowid
                         ORDER BY hits.rank, s.id"
                    ))?;
                    stmt.query_map(params![expr, limit], skill_row)?.collect()
                }
                Some(expr) => {
                    let mut stmt = self.conn.prepare_cached(&format!(
                        "SELECT {SKILL_COLUMNS_S}, bm25(skills_fts, {FTS_WEIGHTS}) AS rank
                         FROM skills_fts JOIN skills s ON s.rowid = skills_fts.rowid
                         WHERE skills_fts MATCH ?1
                           AND (?2 IS NULL OR coalesce(s.registry_tier, s.trust_tier) = ?2)
                           AND (?3 IS NULL OR s.quality_score >= ?3)
                         ORDER BY rank, s.id LIMIT ?4"
                    ))?;
                    stmt.query_map(params![expr, tier, min_quality, limit], skill_row)?
                        .collect()
                }
                None => {
                    let mut stmt = self.conn.prepare_cached(&format!(
                        "SELECT {SKILL_COLUMNS_S}, NULL FROM skills s
                         WHERE (?1 IS NULL OR coalesce(s.registry_tier, s.trust_tier) = ?1)
                           AND (?2 IS NULL OR s.quality_score >= ?2)
                         ORDER BY s.quality_score IS NULL, s.quality_score DESC, s.id LIMIT ?3"
                    ))?;
                    stmt.query_map(params![tier, min_quality, limit], skill_row)?
                        .collect()
                }
            }
        };
        run().map_err(|e| self.err(e))
    }

    /// One skill by id, else by `author/name`, else by exact name (the best
    /// by quality when several share it), like the registry's `/skills-get`.
    pub fn get(&self, id_or_author_slash_name: &str) -> Result<Option<SkillRecord>, DbError> {
        let key = id_or_author_slash_name.trim();
        let run = || -> rusqlite::Result<Option<SkillRecord>> {
            let by_id = self
                .conn
                .prepare_cached(&format!(
                    "SELECT {SKILL_COLUMNS_S}, NULL FROM skills s WHERE s.id = ?1"
                ))?
                .query_row([key], skill_row)
                .optional()?;
            if by_id.is_some() {
                return Ok(by_id);
            }
            if let Some((author, name)) = key.split_once('/') {
                let hit = self
                    .conn
                    .prepare_cached(&format!(
                        "SELECT {SKILL_COLUMNS_S}, NULL FROM skills s
                         WHERE s.author = ?1 AND s.name = ?2
                         ORDER BY s.sync_origin IS 'local' DESC, s.quality_score DESC LIMIT 1"
                    ))?
                    .query_row([author, name], skill_row)
                    .optional()?;
                if hit.is_some() {
                    return Ok(hit);
                }
            }
            self.conn
                .prepare_cached(&format!(
                    "SELECT {SKILL_COLUMNS_S}, NULL FROM skills s WHERE s.name = ?1
                     ORDER BY s.quality_score IS NULL, s.quality_score DESC, s.id LIMIT 1"
                ))?
                .query_row([key], skill_row)
                .optional()
        };
        run().map_err(|e| self.err(e))
    }

    /// Inserts or replaces a skill imported from disk (a `local` row):
    /// syncs never overwrite or remove it.
    pub fn insert_local_skill(&self, skill: &Skill) -> Result<(), DbError> {
        if self.read_only {
            return Err(DbError::Invalid(
                "this database was opened read-only (dry run)".into(),
            ));
        }
        if skill.id.trim().is_empty() {
            return Err(DbError::Invalid(
                "a local skill needs a non-empty id".into(),
            ));
        }
        let tags = serde_json::to_string(&skill.tags).expect("strings serialise");
        let categories = serde_json::to_string(&skill.categories).expect("strings serialise");
        let run = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            let policy = crate::row_policy::RowPolicy::load(&tx)?;
            let (tier, registry_tier) = policy.tier(skill.trust_tier);
            let (repo, registry_repo) = policy.repo(&tx, skill, true)?;
            tx.prepare_cached(
                "INSERT INTO skills (id, name, description, author, repo_url, quality_score,
                     trust_tier, tags, categories, stars, content_hash, license, security_score,
                     installable, quarantined, sync_origin, created_at, updated_at, registry_tier,
                     registry_repo_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     'local', ?16, ?17, ?18, ?19)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name,
                     description = excluded.description, author = excluded.author,
                     repo_url = excluded.repo_url, quality_score = excluded.quality_score,
                     trust_tier = excluded.trust_tier, tags = excluded.tags,
                     categories = excluded.categories, stars = excluded.stars,
                     content_hash = excluded.content_hash, license = excluded.license,
                     security_score = excluded.security_score,
                     installable = excluded.installable, quarantined = excluded.quarantined,
                     sync_origin = 'local', created_at = excluded.created_at,
                     updated_at = excluded.updated_at, registry_tier = excluded.registry_tier,
                     registry_repo_url = excluded.registry_repo_url",
            )?
            .execute(params![
                skill.id,
                skill.name,
                skill.description,
                skill.author,
                repo,
                skill.quality_score,
                tier,
                tags,
                categories,
                skill.stars,
                skill.content_hash,
                skill.license,
                skill.security_score,
                skill.installable,
                skill.quarantined,
                skill.created_at,
                skill.updated_at,
                registry_tier,
                registry_repo,
            ])?;
            policy.mark_local(&tx, &skill.id)?;
            tx.commit()
        };
        run().map_err(|e| self.err(e))
    }
}

/// Keeps a dry run's scratch copy alive as long as the connection using it.
#[derive(Debug)]
pub(crate) struct ScratchGuard(#[allow(dead_code)] ScratchCopy);

/// When the next background sync of `config` is due, as decided at `now`
/// with the process's seed: the scheduler's one rule
/// ([`skillsmith_guest::schedule::decide`]), for every writer of
/// `next_sync_at`.
pub(crate) fn next_sync_at(config: &SyncConfigView, now_ms: i64) -> Option<String> {
    skillsmith_guest::schedule::decide(config.schedule_config(), now_ms, random::jitter_seed())
        .next_ms
        .map(clock::format_ms)
}

pub(crate) fn ensure_config_row(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO sync_config (id) VALUES ('default')")?
        .execute([])
        .map(drop)
}

pub(crate) fn read_config(conn: &Connection) -> rusqlite::Result<SyncConfigView> {
    let row = conn
        .prepare_cached(
            "SELECT c.enabled, c.frequency, c.interval_ms, c.last_sync_at, c.next_sync_at,
                    c.last_sync_count, c.last_sync_error, s.last_attempt_at, s.last_success_at,
                    s.consecutive_failures, c.created_at, c.updated_at
             FROM sync_config c LEFT JOIN sync_schedule s ON s.id = 1
             WHERE c.id = 'default'",
        )?
        .query_row([], |r| {
            // Upstream writes these columns too; a value it never would
            // (NULL, a word) reads as the default.
            let frequency = r
                .get_ref(1)?
                .as_str_or_null()?
                .and_then(Frequency::parse)
                .unwrap_or(Frequency::Daily);
            Ok(SyncConfigView {
                enabled: r.get::<_, Option<bool>>(0)?.unwrap_or(true),
                frequency,
                interval_ms: r
                    .get::<_, Option<i64>>(2)?
                    .filter(|ms| *ms > 0)
                    .unwrap_or(frequency.interval_ms()),
                last_sync_at: r.get(3)?,
                next_sync_at: r.get(4)?,
                last_sync_count: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                last_sync_error: r.get(6)?,
                last_attempt_at: r.get(7)?,
                last_success_at: r.get(8)?,
                consecutive_failures: r
                    .get::<_, Option<i64>>(9)?
                    .unwrap_or(0)
                    .clamp(0, i64::from(u32::MAX)) as u32,
                created_at: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                updated_at: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            })
        })
        .optional()?;
    // The row is created with the table; a database edited by hand may have
    // lost it. Reads then show the defaults; writes recreate it.
    Ok(row.unwrap_or_default())
}

/// Writes what a finished run changed of `config`: ADR-018's columns in
/// `sync_config`, the scheduling facts in `sync_schedule`.
pub(crate) fn write_config(
    conn: &Connection,
    config: &SyncConfigView,
    next_sync_at: Option<&str>,
    now_text: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE sync_config SET last_sync_at = ?1, last_sync_count = ?2, last_sync_error = ?3,
             next_sync_at = ?4, updated_at = ?5
         WHERE id = 'default'",
    )?
    .execute(params![
        config.last_sync_at,
        config.last_sync_count,
        config.last_sync_error,
        next_sync_at,
        now_text,
    ])?;
    conn.prepare_cached(
        "INSERT INTO sync_schedule (id, last_attempt_at, last_success_at, consecutive_failures)
         VALUES (1, ?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET last_attempt_at = excluded.last_attempt_at,
             last_success_at = excluded.last_success_at,
             consecutive_failures = excluded.consecutive_failures",
    )?
    .execute(params![
        config.last_attempt_at,
        config.last_success_at,
        config.consecutive_failures,
    ])?;
    Ok(())
}

/// A history row with this project's facts about it (none for another
/// client's runs), newest first by insertion.
const HISTORY_SELECT: &str = "SELECT h.id, h.started_at, h.completed_at, h.status,
        h.skills_added, h.skills_updated, h.skills_unchanged, r.skills_removed,
        r.skills_skipped, h.error_message, h.duration_ms, r.mode, r.pid, r.registry_total,
        r.skills_reached, r.unfilterable_tiers, r.failure_kind
    FROM sync_history h LEFT JOIN sync_run r ON r.history_id = h.id
    ORDER BY h.started_at DESC, h.rowid DESC";

fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryEntry> {
    let count = |i| {
        r.get::<_, Option<i64>>(i)
            .map(|n| n.unwrap_or(0).max(0) as u64)
    };
    let maybe_count = |i| {
        r.get::<_, Option<i64>>(i)
            .map(|n| n.map(|n| n.max(0) as u64))
    };
    let registry_total = maybe_count(13)?;
    let skills_reached = maybe_count(14)?;
    let mut entry = HistoryEntry {
        id: r.get(0)?,
        started_at: r.get(1)?,
        completed_at: r.get(2)?,
        // Only this crate writes statuses; another's reads as a failure.
        status: r
            .get_ref(3)?
            .as_str_or_null()?
            .and_then(RunState::parse)
            .unwrap_or(RunState::Failed),
        skills_added: count(4)?,
        skills_updated: count(5)?,
        skills_unchanged: count(6)?,
        skills_removed: count(7)?,
        skills_skipped: count(8)?,
        error_message: r.get(9)?,
        failure_kind: r
            .get::<_, Option<String>>(16)?
            .as_deref()
            .and_then(FailureKind::parse),
        duration_ms: r.get(10)?,
        mode: r
            .get::<_, Option<String>>(11)?
            .as_deref()
            .and_then(SyncMode::parse),
        pid: r
            .get::<_, Option<i64>>(12)?
            .and_then(|p| u32::try_from(p).ok()),
        registry_total,
        skills_reached,
        skills_unreachable: registry_total
            .zip(skills_reached)
            .map(|(total, reached)| total.saturating_sub(reached)),
        unfilterable_tiers: r
            .get::<_, Option<String>>(15)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        coverage: None,
    };
    entry.coverage = entry.coverage().as_ref().map(CoverageView::from);
    Ok(entry)
}

/// `bm25` weights of the FTS5 columns name, description, tags, author: a hit
/// in the name counts most, then tags, then author, then description.
const FTS_WEIGHTS: &str = "10.0, 2.0, 4.0, 3.0";

/// A skill as this project reads it: the registry's tier and repository
/// where the upstream-readable columns could not hold them (`row_policy.rs`).
const SKILL_COLUMNS_S: &str = "s.id, s.name, s.description, s.author,
    coalesce(s.registry_repo_url, s.repo_url), s.quality_score,
    coalesce(s.registry_tier, s.trust_tier, 'unknown'), s.tags, s.categories, s.stars, s.content_hash, s.license, s.security_score,
    s.installable, s.quarantined, s.sync_origin, s.created_at, s.updated_at";

fn json_list(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    // A malformed list (hand-edited row) reads as empty rather than failing
    // the whole search.
    Ok(match r.get_ref(i)?.as_str_or_null()? {
        Some(text) => serde_json::from_str(text).unwrap_or_default(),
        None => Vec::new(),
    })
}

fn skill_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SkillRecord> {
    let tier: String = r.get(6)?;
    let source: Option<String> = r.get(15)?;
    Ok(SkillRecord {
        skill: Skill {
            id: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            author: r.get(3)?,
            repo_url: r.get(4)?,
            quality_score: r.get(5)?,
            // The store writes only the domain's tiers; anything else was
            // written by another tool and reads as unknown.
            trust_tier: TrustTier::parse(&tier),
            tags: json_list(r, 7)?,
            categories: json_list(r, 8)?,
            stars: r.get(9)?,
            created_at: r.get(16)?,
            updated_at: r.get(17)?,
            content_hash: r.get(10)?,
            license: r.get(11)?,
            security_score: r.get(12)?,
            installable: r.get(13)?,
            quarantined: r.get(14)?,
        },
        source: crate::row_policy::source_of(source.as_deref()),
        rank: r.get(18)?,
    })
}

/// Most words a query may have; more only slows the search down.
const MAX_QUERY_TERMS: usize = 16;

/// Builds a safe FTS5 MATCH expression from user text: the words (runs of
/// letters and digits, as the `unicode61` tokenizer sees them), each in
/// double quotes so that no FTS5 syntax (`AND`, `-`, `:`, `"`, `*`, `^`) can
/// be injected, all required, the last one as a prefix. `None` when the text
/// has no words.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .take(MAX_QUERY_TERMS)
        .collect();
    let (last, rest) = terms.split_last()?;
    let mut expr = String::with_capacity(text.len() + 4 * terms.len());
    for t in rest {
        // Words never contain `"`: they are runs of alphanumerics.
        expr.push('"');
        expr.push_str(t);
        expr.push_str("\" ");
    }
    expr.push('"');
    expr.push_str(last);
    expr.push_str("\"*");
    Some(expr)
}

/// Opens `path` read-only, where `usable` says the connection reads it;
/// failing that, `immutable`, which needs no `-shm` file, so that a WAL file
/// on a read-only or full file system (where SQLite cannot map one) is read
/// still, as it is on disk: without pages a crashed writer left in the
/// `-wal` (a finished sync leaves none). Says so when it comes to that.
fn open_unwritable(path: &Path, usable: impl Fn(&Connection) -> bool) -> Option<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if let Some(conn) = Connection::open_with_flags(path, flags)
        .ok()
        .filter(|c| usable(c))
    {
        return Some(conn);
    }
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let conn = Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
        .ok()
        .filter(|c| usable(c))?;
    tracing::warn!(
        "{} cannot be written now (a read-only or full file system); reading it as it is \
         on disk, without pages a crashed sync may have left in its journal",
        path.display()
    );
    Some(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skillsmith_guest::domain::TrustTier;

    pub(crate) fn skill(id: &str, name: &str, desc: &str) -> Skill {
        Skill {
            name: name.into(),
            description: Some(desc.into()),
            author: Some("alice".into()),
            quality_score: Some(0.5),
            tags: vec!["git".into()],
            stars: Some(3),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            installable: Some(true),
            ..Skill::minimal(id, "2026-01-02T00:00:00.000Z")
        }
    }

    #[test]
    fn fts_query_quotes_everything() {
        assert_eq!(fts_query(""), None);
        assert_eq!(fts_query("  -:*\"  "), None);
        assert_eq!(fts_query("git"), Some("\"git\"*".into()));
        assert_eq!(
            fts_query("code AND \"review\" -x NEAR("),
            Some("\"code\" \"AND\" \"review\" \"x\" \"NEAR\"*".into())
        );
    }

    #[test]
    fn migrates_from_empty_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/skills.db");
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(db.integrity_check().unwrap().is_empty());
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let c = db.config().unwrap();
        assert!(c.enabled);
        assert_eq!(c.frequency, Frequency::Daily);
        assert_eq!(c.interval_ms, 86_400_000);
        drop(db);
        // Reopening applies nothing and keeps the data.
        let db = Database::open(&path).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(db.history(10).unwrap().is_empty());
    }

    #[test]
    fn refuses_a_newer_schema_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let e = Database::open(&path).unwrap_err();
        assert!(
            matches!(
                e,
                DbError::NewerSchema {
                    found: 999,
                    known: SCHEMA_VERSION,
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "newer skillsmith (schema v999, this binary knows v{SCHEMA_VERSION})"
            )),
            "{text}"
        );
        assert!(text.contains("left untouched"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(!dir.path().join("skills.db-wal").exists());
        assert!(matches!(
            Database::open_read_only(&path),
            Err(DbError::NewerSchema { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn not_a_database_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let e = Database::open(&path).unwrap_err();
        assert!(matches!(e, DbError::NotADatabase { .. }), "{e:?}");
    }

    #[test]
    fn read_only_open_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.db");
        let db = Database::open_read_only(&missing).unwrap();
        assert!(db.path().is_none());
        assert!(!missing.exists());

        // An old-schema file is copied, not migrated in place.
        let old = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&old).unwrap();
            rusqlite_migration::Migrations::from_slice(&crate::schema::LEGACY_MIGRATIONS[..2])
                .to_latest(&mut conn)
                .unwrap();
        }
        let before = std::fs::read(&old).unwrap();
        let db = Database::open_read_only(&old).unwrap();
        assert!(db.is_read_only());
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(db.set_enabled(false).is_err());
        drop(db);
        assert_eq!(std::fs::read(&old).unwrap(), before);
    }

    #[test]
    fn config_changes_recompute_next_sync() {
        let db = Database::open_in_memory().unwrap();
        let c = db.set_frequency(Frequency::Weekly).unwrap();
        assert_eq!(c.frequency, Frequency::Weekly);
        assert_eq!(c.interval_ms, 604_800_000);
        assert_eq!(db.config().unwrap(), c);
        let c = db.set_enabled(false).unwrap();
        assert!(!c.enabled);
        assert_eq!(c.next_sync_at, None);
        let c = db.set_enabled(true).unwrap();
        assert!(c.enabled);
        assert!(c.next_sync_at.is_some());
        assert_eq!(db.config().unwrap().frequency, Frequency::Weekly);
    }

    #[test]
    fn unfiltered_search_ranks_like_the_filtered_path() {
        // The unfiltered query ranks inside FTS5 before joining; a filter
        // that excludes nothing takes the join-first path. Same answers,
        // limits included (ids in insertion order, so ties break alike).
        let db = Database::open_in_memory().unwrap();
        let words = ["git", "code", "test", "docker", "review", "lint", "api"];
        for i in 0..400usize {
            let pick = |k: usize| words[(i * 7 + k * 3 + i / 5) % words.len()];
            let mut s = skill(
                &format!("id-{i:04}"),
                &format!("{}-{}", pick(0), pick(1)),
                &format!("{} {} {}", pick(2), pick(3), pick(i % 4)),
            );
            s.tags = vec![pick(5).into()];
            s.quality_score = Some((i % 10) as f64 / 10.0);
            db.insert_local_skill(&s).unwrap();
        }
        for q in ["git", "test review", "do", "api lint code", "nothing"] {
            for limit in [1, 10, 1000] {
                let fast = SearchFilter {
                    limit,
                    ..Default::default()
                };
                let joined = SearchFilter {
                    min_quality: Some(-1.0),
                    ..fast.clone()
                };
                let key = |hits: Vec<SkillRecord>| {
                    hits.into_iter()
                        .map(|h| (h.skill.id, h.rank.map(|r| (r * 1e9) as i64)))
                        .collect::<Vec<_>>()
                };
                let a = key(db.search(q, &fast).unwrap());
                assert_eq!(
                    a,
                    key(db.search(q, &joined).unwrap()),
                    "{q:?} limit {limit}"
                );
                assert_eq!(a.is_empty(), q == "nothing", "{q:?}");
            }
        }
    }

    #[test]
    fn search_and_get() {
        let db = Database::open_in_memory().unwrap();
        let mut a = skill("id-a", "git-helper", "Helps with git commits and testing");
        a.quality_score = Some(0.9);
        a.trust_tier = TrustTier::Verified;
        let mut b = skill("id-b", "docker-runner", "Runs containers");
        b.author = Some("bob".into());
        b.tags = vec!["devops".into()];
        let mut c = skill("id-c", "test-writer", "Writes tests for git repositories");
        c.quality_score = None;
        for s in [&a, &b, &c] {
            db.insert_local_skill(s).unwrap();
        }
        let all = SearchFilter::default();
        let ids = |hits: Vec<SkillRecord>| hits.into_iter().map(|h| h.skill.id).collect::<Vec<_>>();

        // The name hit ranks first.
        assert_eq!(ids(db.search("git", &all).unwrap()), ["id-a", "id-c"]);
        // Prefix on the last word, porter stemming.
        assert_eq!(ids(db.search("contain", &all).unwrap()), ["id-b"]);
        assert_eq!(ids(db.search("test", &all).unwrap()).len(), 2);
        // Hostile syntax is just words.
        assert!(db.search("\"git AND (", &all).is_ok());
        assert!(db.search("NEAR(a b", &all).is_ok());
        // No searchable word at all: refused, not answered with everything.
        assert!(matches!(
            db.search("*", &all),
            Err(DbError::NoSearchableWords(_))
        ));
        // Filters.
        let verified = SearchFilter {
            trust_tier: Some("verified".into()),
            ..Default::default()
        };
        assert_eq!(ids(db.search("git", &verified).unwrap()), ["id-a"]);
        let good = SearchFilter {
            min_quality: Some(0.8),
            ..Default::default()
        };
        assert_eq!(ids(db.search("", &good).unwrap()), ["id-a"]);
        // Empty query lists by quality, nulls last.
        assert_eq!(ids(db.search("", &all).unwrap()), ["id-a", "id-b", "id-c"]);
        let hit = &db.search("docker", &all).unwrap()[0];
        assert_eq!(hit.skill.tags, ["devops"]);
        assert_eq!(hit.source.as_str(), "local");
        assert!(hit.rank.is_some());

        assert_eq!(db.get("id-b").unwrap().unwrap().skill.name, "docker-runner");
        assert_eq!(
            db.get("bob/docker-runner").unwrap().unwrap().skill.id,
            "id-b"
        );
        assert_eq!(db.get("test-writer").unwrap().unwrap().skill.id, "id-c");
        assert!(db.get("nobody/nothing").unwrap().is_none());
    }

    #[test]
    fn status_of_a_fresh_database() {
        let db = Database::open_in_memory().unwrap();
        db.insert_local_skill(&skill("l1", "x", "y")).unwrap();
        let s = db.status().unwrap();
        assert_eq!(s.local_skills, 1);
        assert_eq!(s.registry_skills, 0);
        assert_eq!(s.mode, None);
        assert!(!s.has_cursor);
        assert_eq!(s.running_pid, None);
        assert_eq!(s.last_run, None);
        assert_eq!(s.schema_version, SCHEMA_VERSION);
        serde_json::to_string(&s).unwrap();
    }
}

#[cfg(test)]
mod lease_tests {
    //! The lease as the catalogue's readers and writers see it.

    use std::time::{Duration, Instant};

    use rusqlite::params;

    use super::*;
    use crate::lock::{INTERRUPTED_MESSAGE, LEASE_TTL, this_host};

    #[test]
    fn opening_a_current_catalogue_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        drop(Database::open(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        for _ in 0..2 {
            let db = Database::open(&path).unwrap();
            assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
            drop(db);
        }
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    fn open_twice() -> (tempfile::TempDir, Database, Database) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        let a = Database::open(&path).unwrap();
        let b = Database::open(&path).unwrap();
        (dir, a, b)
    }

    #[test]
    fn leases_exclude_each_other_and_release_on_drop() {
        let (_dir, a, b) = open_twice();
        let lease = a.lease().unwrap();
        match b.lease() {
            Err(LockError::Busy { pid, since }) => {
                assert_eq!(pid, std::process::id());
                assert!(since.ends_with('Z'));
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        assert_eq!(b.status().unwrap().running_pid, Some(std::process::id()));
        lease.renew().unwrap();
        drop(lease);
        assert_eq!(b.status().unwrap().running_pid, None);
        let again = b.lease().unwrap();
        again.release().unwrap();
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_its_runs_closed() {
        let (_dir, a, b) = open_twice();
        let stale = a.lease().unwrap();
        a.conn()
            .execute_batch(
                "INSERT INTO sync_history (id, started_at, status)
                     VALUES ('ours', '2026-01-01T00:00:00.000Z', 'running');
                 INSERT INTO sync_run (history_id, pid) VALUES ('ours', 1);
                 -- Upstream's SyncEngine takes no lease: its run is not ours to close.
                 INSERT INTO sync_history (id, started_at, status)
                     VALUES ('sync-upstream', '2026-01-01T00:00:01.000Z', 'running');",
            )
            .unwrap();
        // Seen from a clock past the TTL, the lease has expired.
        let later = b.with_clock(Clock::with_offset(LEASE_TTL.as_millis() as i64 + 1_000));
        let fresh = later.lease().unwrap();
        let runs = later.history(2).unwrap();
        assert_eq!(runs[0].id, "sync-upstream");
        assert_eq!(runs[0].status.as_str(), "running");
        assert_eq!(runs[1].status.as_str(), "failed");
        assert_eq!(runs[1].error_message.as_deref(), Some(INTERRUPTED_MESSAGE));
        // The old holder finds out at its next heartbeat, and its drop does
        // not release the new holder's lease.
        assert!(matches!(stale.renew(), Err(LockError::Lost)));
        drop(stale);
        assert!(fresh.renew().is_ok());
    }

    #[test]
    fn a_dead_holder_on_this_machine_is_taken_over_at_once() {
        let (_dir, a, b) = open_twice();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let insert = |holder: &str| {
            a.conn()
                .execute(
                    "INSERT OR REPLACE INTO sync_lease (id, holder, pid, acquired_at, expires_at)
                     VALUES (1, ?1, ?2, '2026-01-01T00:00:00.000Z', ?3)",
                    params![holder, dead_pid, Clock::default().now_ms() + 60_000],
                )
                .unwrap();
        };
        // Another machine's holder, or one in the old format: wait.
        for holder in [
            format!("pid {dead_pid} on some-other-host #0000000000000001"),
            format!("pid {dead_pid} #0000000000000001"),
        ] {
            insert(&holder);
            assert!(matches!(b.lease(), Err(LockError::Busy { .. })), "{holder}");
        }
        // Gone from this machine: taken over.
        insert(&format!(
            "pid {dead_pid} on {} #0000000000000001",
            this_host()
        ));
        let lease = b.lease().expect("the dead holder's lease is taken over");
        // A live holder (this test process, as seen from a lease of its own
        // held through another connection) is respected.
        assert!(matches!(a.lease(), Err(LockError::Busy { .. })));
        drop(lease);
    }

    #[test]
    fn acquire_wait_waits_for_release() {
        let (_dir, a, b) = open_twice();
        let lease = a.lease().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(lease);
        });
        let started = Instant::now();
        let got = b.lease_wait(Duration::from_secs(5)).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        drop(got);
        t.join().unwrap();
        let _held = a.lease().unwrap();
        assert!(matches!(
            b.lease_wait(Duration::from_millis(300)),
            Err(LockError::Busy { .. })
        ));
    }

    #[test]
    fn in_memory_databases_have_no_lease() {
        let db = Database::open_in_memory().unwrap();
        assert!(matches!(db.lease(), Err(LockError::NoFile)));
    }
}
