//! The local catalogue database: opening, migrations, and the read-side API
//! of the CLI and the MCP server (configuration, history, status, search).
//!
//! Every connection uses WAL, `synchronous = NORMAL` and a 5 s busy timeout,
//! and starts its write transactions `IMMEDIATE`: in WAL mode a deferred
//! transaction that later writes can fail with `SQLITE_BUSY` at once (the
//! busy handler cannot help a stale snapshot), which is how "database is
//! locked" reaches users. A database written by a newer skillsmith is refused
//! before anything is written to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use serde::Serialize;
use skillsmith_guest::domain::{FailureKind, ScheduleConfig, Skill};

use crate::clock::{self, Clock};

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, in order; `user_version` counts how many were applied.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/001_skills.sql")),
    M::up(include_str!("../../migrations/002_skills_fts.sql")),
    M::up(include_str!("../../migrations/003_sync.sql")),
    M::up(include_str!("../../migrations/004_sync_state.sql")),
    M::up(include_str!("../../migrations/005_deferred_fts.sql")),
    M::up(include_str!("../../migrations/006_deferred_indexes.sql")),
    M::up(include_str!("../../migrations/007_fts_crisismerge.sql")),
    M::up(include_str!("../../migrations/008_fts_catch_up.sql")),
    M::up(include_str!("../../migrations/009_search_coverage.sql")),
];

/// The schema version this binary creates and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Why the database could not be used. The texts say what to do.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The directory for the database could not be created.
    #[error("cannot create the directory for {path}: {source}")]
    CreateDir {
        /// The database path.
        path: PathBuf,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite could not open the file.
    #[error("cannot open the database {path}: {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The path is a directory, not a database file.
    #[error("the catalogue path {path} is a directory, not a database file")]
    IsDirectory {
        /// The database path.
        path: PathBuf,
    },
    /// The schema is newer than this binary; the file was left untouched.
    #[error(
        "{path} was written by a newer skillsmith (schema v{found}, this binary knows v{known}), and is left untouched"
    )]
    NewerSchema {
        /// The database path.
        path: PathBuf,
        /// `user_version` found in the file.
        found: u32,
        /// [`SCHEMA_VERSION`].
        known: u32,
    },
    /// The file is not a SQLite database.
    #[error(
        "{path} is not a skillsmith database (not SQLite, or encrypted), and is left untouched"
    )]
    NotADatabase {
        /// The database path.
        path: PathBuf,
    },
    /// Applying the migrations failed; the database was rolled back.
    #[error("cannot upgrade the database {path} to schema v{SCHEMA_VERSION}: {detail}")]
    Migration {
        /// The database path.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// Another process held the database for longer than [`BUSY_TIMEOUT`].
    #[error(
        "the database {path} stayed locked by another process for {} s",
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        /// The database path.
        path: PathBuf,
    },
    /// The disk is full.
    #[error("cannot write the database {path}: the disk is full")]
    NoSpace {
        /// The database path.
        path: PathBuf,
    },
    /// The file or its folder cannot be written.
    #[error("cannot write the database {path}: the file or its folder is read-only")]
    ReadOnly {
        /// The database path.
        path: PathBuf,
    },
    /// The file is damaged.
    #[error("the database {path} is damaged ({detail})")]
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// SQLite's description.
        detail: String,
    },
    /// A caller passed something unusable.
    #[error("{0}")]
    Invalid(String),
    /// A search query with no letters or digits, which would match nothing
    /// (rather than everything).
    #[error("the query {0:?} has no searchable words: search for letters or digits")]
    NoSearchableWords(String),
    /// Any other SQLite failure.
    #[error("database error on {path}: {source}")]
    Sqlite {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl DbError {
    /// The kind of this failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            DbError::CreateDir { source, .. } => io_kind(source),
            DbError::Open { source, .. } | DbError::Sqlite { source, .. } => {
                match source.sqlite_error_code() {
                    Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) => FailureKind::ReadOnly,
                    Some(ErrorCode::DiskFull) => FailureKind::NoSpace,
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                        FailureKind::StoreBusy
                    }
                    _ => FailureKind::StoreCorrupt,
                }
            }
            DbError::Busy { .. } => FailureKind::StoreBusy,
            DbError::NoSpace { .. } => FailureKind::NoSpace,
            DbError::ReadOnly { .. } => FailureKind::ReadOnly,
            DbError::IsDirectory { .. }
            | DbError::NewerSchema { .. }
            | DbError::NotADatabase { .. }
            | DbError::Migration { .. }
            | DbError::Corrupt { .. } => FailureKind::StoreCorrupt,
            DbError::Invalid(_) | DbError::NoSearchableWords(_) => FailureKind::Usage,
        }
    }

    /// Classifies a SQLite error on `path` into the variants users can act on.
    pub(crate) fn from_sqlite(path: &Path, e: rusqlite::Error) -> DbError {
        let path = path.to_owned();
        if path.is_dir() {
            return DbError::IsDirectory { path };
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => DbError::Busy { path },
            Some(ErrorCode::DiskFull) => DbError::NoSpace { path },
            Some(ErrorCode::ReadOnly) => DbError::ReadOnly { path },
            // WAL mode creates `-wal` and `-shm` files beside the database.
            Some(ErrorCode::CannotOpen) if !folder_is_writable(&path) => DbError::ReadOnly { path },
            // The shared-memory file of WAL mode cannot be mapped: on Linux
            // that is a full disk (the file cannot grow) or a read-only folder.
            Some(ErrorCode::SystemIoFailure) if is_shm_failure(&e) => {
                if folder_is_writable(&path) {
                    DbError::NoSpace { path }
                } else {
                    DbError::ReadOnly { path }
                }
            }
            Some(ErrorCode::NotADatabase) => DbError::NotADatabase { path },
            Some(ErrorCode::DatabaseCorrupt) => DbError::Corrupt {
                path,
                detail: e.to_string(),
            },
            _ => DbError::Sqlite { path, source: e },
        }
    }
}

/// `path` for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Whether SQLite failed on the WAL shared-memory file (`xShmMap`,
/// `SQLITE_IOERR_SHMOPEN` / `SHMSIZE` / `SHMMAP`).
fn is_shm_failure(e: &rusqlite::Error) -> bool {
    const SHMOPEN: i32 = 4618;
    const SHMSIZE: i32 = 4874;
    const SHMMAP: i32 = 5386;
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.extended_code, SHMOPEN | SHMSIZE | SHMMAP))
}

/// Whether a file could be created beside `path` (its folder is writable).
fn folder_is_writable(path: &Path) -> bool {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".skillsmith-write-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .is_ok();
    if created {
        let _ = std::fs::remove_file(&probe);
    }
    created
}

fn io_kind(e: &std::io::Error) -> FailureKind {
    match e.kind() {
        std::io::ErrorKind::StorageFull => FailureKind::NoSpace,
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            FailureKind::ReadOnly
        }
        _ => FailureKind::StoreCorrupt,
    }
}

/// Background-sync frequency (`sync_config.frequency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
        f.write_str(self.as_str())
    }
}

/// The `sync_config` row (ADR-018 columns plus the v4 scheduling facts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncConfigView {
    /// Background sync on.
    pub enabled: bool,
    /// Daily or weekly.
    pub frequency: Frequency,
    /// The interval in milliseconds.
    pub interval_ms: i64,
    /// Registry time of the last fully successful sync.
    pub last_sync_at: Option<String>,
    /// Host time the next background sync is due; `None` when disabled.
    pub next_sync_at: Option<String>,
    /// Skills written (added + updated) by the last successful sync.
    pub last_sync_count: i64,
    /// Why the last attempt failed; cleared by a success.
    pub last_sync_error: Option<String>,
    /// Host time the last attempt ended.
    pub last_attempt_at: Option<String>,
    /// Host time the last success ended.
    pub last_success_at: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Row creation time.
    pub created_at: String,
    /// Last change to the row.
    pub updated_at: String,
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

/// One `sync_history` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Run id.
    pub id: i64,
    /// Host time the run started.
    pub started_at: String,
    /// Host time the run ended; `None` while running.
    pub completed_at: Option<String>,
    /// `running`, `success`, `partial` or `failed`.
    pub status: String,
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
    /// Its kind (`FailureKind::as_str`), for `partial` and `failed`.
    pub failure_kind: Option<String>,
    /// Wall time of the run on the host clock.
    pub duration_ms: Option<i64>,
    /// `changes-feed` or `search`.
    pub mode: Option<String>,
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
}

impl HistoryEntry {
    /// Search mode: what the run's listings reached.
    pub fn coverage(&self) -> Option<skillsmith_guest::domain::Coverage> {
        Some(skillsmith_guest::domain::Coverage {
            registry_total: self.registry_total,
            reached: self.skills_reached?,
            unfilterable_tiers: self.unfilterable_tiers.clone(),
        })
    }
}

/// `sync status`: the configuration, the catalogue and the sync state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The database file, or `:memory:`.
    pub path: String,
    /// Schema version of the file.
    pub schema_version: u32,
    /// The `sync_config` row.
    pub config: SyncConfigView,
    /// Skills written by syncs.
    pub registry_skills: u64,
    /// Skills imported from disk.
    pub local_skills: u64,
    /// Protocol of the stored checkpoint.
    pub mode: Option<String>,
    /// A changes-feed cursor is stored (the next sync resumes from it).
    pub has_cursor: bool,
    /// A full resync started and has not finished yet.
    pub resync_pending: bool,
    /// The first sync is indexing for search at its end (migration 005);
    /// until it finishes, `search` does not see the skills it added.
    pub search_index_pending: bool,
    /// Process holding the sync lease, when a sync is running.
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

/// One skill as stored locally.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillRecord {
    /// Registry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Source repository.
    pub repo_url: Option<String>,
    /// 0..=1.
    pub quality_score: Option<f64>,
    /// Trust tier as stored.
    pub trust_tier: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// GitHub stars.
    pub stars: Option<i64>,
    /// Content hash.
    pub content_hash: Option<String>,
    /// Licence.
    pub license: Option<String>,
    /// Security score.
    pub security_score: Option<f64>,
    /// Installable flag.
    pub installable: Option<bool>,
    /// Quarantined flag.
    pub quarantined: Option<bool>,
    /// `registry` or `local`.
    pub source: String,
    /// Creation time (registry's).
    pub created_at: String,
    /// Last change (registry's).
    pub updated_at: String,
    /// Search relevance (bm25; lower is better), only in search results.
    #[serde(skip_serializing_if = "Option::is_none")]
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

/// Applies the per-connection settings (none of them changes the file).
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The statement cache is sized for the store's page statements plus the
    // read API's; evictions would re-prepare on every page.
    conn.set_prepared_statement_cache_capacity(32);
    rusqlite::vtab::array::load_module(conn)?;
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32)
}

/// Opens `path` read-write (creating it), checks the schema is not newer than
/// this binary's, and applies pending migrations. Used by the lease too.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, DbError> {
    if path.is_dir() {
        return Err(DbError::IsDirectory {
            path: path.to_owned(),
        });
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| match DbError::from_sqlite(path, source) {
        DbError::Sqlite { path, source } => DbError::Open { path, source },
        typed => typed,
    })?;
    let err = |e| DbError::from_sqlite(path, e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
    // Read the version before anything that writes (the WAL switch persists
    // in the file header): a newer database must be left exactly as it was.
    let found = user_version(&conn).map_err(err)?;
    if found > SCHEMA_VERSION {
        return Err(DbError::NewerSchema {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("{}: journal mode is {mode}, not WAL", path.display());
    }
    configure(&mut conn).map_err(err)?;
    if found < SCHEMA_VERSION {
        migrate(&mut conn, path)?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    match Migrations::from_slice(MIGRATIONS).to_latest(conn) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Two processes opening a new database at once both see v0; the
            // second one's migration fails on existing tables after waiting
            // for the first. The database is fine then.
            if user_version(conn).ok() == Some(SCHEMA_VERSION) {
                return Ok(());
            }
            if let rusqlite_migration::Error::RusqliteError { err, .. } = e {
                return Err(match DbError::from_sqlite(path, err) {
                    DbError::Sqlite { source, .. } => DbError::Migration {
                        path: path.to_owned(),
                        detail: source.to_string(),
                    },
                    other => other,
                });
            }
            if let rusqlite_migration::Error::MigrationDefinition(
                rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
            ) = e
            {
                return Err(DbError::NewerSchema {
                    path: path.to_owned(),
                    found: user_version(conn).unwrap_or(0),
                    known: SCHEMA_VERSION,
                });
            }
            Err(DbError::Migration {
                path: path.to_owned(),
                detail: e.to_string(),
            })
        }
    }
}

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
        migrate(&mut conn, mem)?;
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
        let readable = |conn: Connection| -> Option<Database> {
            let found = user_version(&conn).ok()?;
            if found != SCHEMA_VERSION {
                return None;
            }
            conn.query_row("SELECT count(*) FROM skills", [], |r| r.get::<_, i64>(0))
                .ok()?;
            Some(Database {
                conn,
                path: Some(path.to_owned()),
                read_only: true,
                clock: Clock::from_env(),
                scratch: None,
            })
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if let Some(db) = Connection::open_with_flags(path, flags)
            .ok()
            .and_then(readable)
        {
            return Ok(db);
        }
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let db = Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
            .ok()
            .and_then(readable)
            .ok_or(first)?;
        tracing::warn!(
            "{} cannot be written now (a read-only or full file system); reading it as it is \
             on disk, without pages a crashed sync may have left in its journal",
            path.display()
        );
        Ok(db)
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
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| DbError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        let found = user_version(&conn).map_err(err)?;
        if found > SCHEMA_VERSION {
            return Err(DbError::NewerSchema {
                path: path.to_owned(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
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
            crate::random::SplitMix64::from_entropy().next_u64()
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

    /// Schema version of the file (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, DbError> {
        user_version(&self.conn).map_err(|e| self.err(e))
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
            let decision =
                skillsmith_guest::schedule::decide(config.schedule_config(), now, jitter_seed(now));
            config.next_sync_at = decision.next_ms.map(clock::format_ms);
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
            .prepare_cached(&format!(
                "SELECT {HISTORY_COLUMNS} FROM sync_history ORDER BY id DESC LIMIT ?1"
            ))
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
            let (mut registry, mut local) = (0u64, 0u64);
            {
                let mut stmt =
                    tx.prepare_cached("SELECT source, COUNT(*) FROM skills GROUP BY source")?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let n = r.get::<_, i64>(1)? as u64;
                    match r.get_ref(0)?.as_str()? {
                        "local" => local += n,
                        _ => registry += n,
                    }
                }
            }
            let (mode, has_cursor, resync_pending, search_index_pending) = tx
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
                .query_row(
                    &format!("SELECT {HISTORY_COLUMNS} FROM sync_history ORDER BY id DESC LIMIT 1"),
                    [],
                    history_row,
                )
                .optional()?;
            Ok(Status {
                path: self.display_path().display().to_string(),
                schema_version: user_version(&tx)?,
                config,
                registry_skills: registry,
                local_skills: local,
                mode,
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
                           AND (?2 IS NULL OR s.trust_tier = ?2)
                           AND (?3 IS NULL OR s.quality_score >= ?3)
                         ORDER BY rank, s.id LIMIT ?4"
                    ))?;
                    stmt.query_map(params![expr, tier, min_quality, limit], skill_row)?
                        .collect()
                }
                None => {
                    let mut stmt = self.conn.prepare_cached(&format!(
                        "SELECT {SKILL_COLUMNS_S}, NULL FROM skills s
                         WHERE (?1 IS NULL OR s.trust_tier = ?1)
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
                         ORDER BY s.source = 'local' DESC, s.quality_score DESC LIMIT 1"
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

    /// Inserts or replaces a skill imported from disk (`source = 'local'`):
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
        self.conn
            .prepare_cached(
                "INSERT INTO skills (id, name, description, author, repo_url, quality_score,
                     trust_tier, tags, categories, stars, content_hash, license, security_score,
                     installable, quarantined, source, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                     'local', ?16, ?17)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name,
                     description = excluded.description, author = excluded.author,
                     repo_url = excluded.repo_url, quality_score = excluded.quality_score,
                     trust_tier = excluded.trust_tier, tags = excluded.tags,
                     categories = excluded.categories, stars = excluded.stars,
                     content_hash = excluded.content_hash, license = excluded.license,
                     security_score = excluded.security_score,
                     installable = excluded.installable, quarantined = excluded.quarantined,
                     source = 'local', created_at = excluded.created_at,
                     updated_at = excluded.updated_at",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    skill.id,
                    skill.name,
                    skill.description,
                    skill.author,
                    skill.repo_url,
                    skill.quality_score,
                    skill.trust_tier.as_str(),
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
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }
}

/// Keeps a dry run's scratch copy alive as long as the connection using it.
#[derive(Debug)]
pub(crate) struct ScratchGuard(#[allow(dead_code)] ScratchCopy);

/// A seed for schedule jitter. Not reproducible on purpose: spreading many
/// clients' retries is its whole point.
pub(crate) fn jitter_seed(now_ms: i64) -> u64 {
    crate::random::SplitMix64::from_entropy().next_u64() ^ now_ms as u64
}

pub(crate) fn ensure_config_row(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO sync_config (id) VALUES ('default')")?
        .execute([])
        .map(drop)
}

pub(crate) fn read_config(conn: &Connection) -> rusqlite::Result<SyncConfigView> {
    let row = conn
        .prepare_cached(
            "SELECT enabled, frequency, interval_ms, last_sync_at, next_sync_at,
                    last_sync_count, last_sync_error, last_attempt_at, last_success_at,
                    consecutive_failures, created_at, updated_at
             FROM sync_config WHERE id = 'default'",
        )?
        .query_row([], |r| {
            let frequency = Frequency::parse(r.get_ref(1)?.as_str()?).unwrap_or(Frequency::Daily);
            Ok(SyncConfigView {
                enabled: r.get(0)?,
                frequency,
                interval_ms: r
                    .get::<_, Option<i64>>(2)?
                    .filter(|ms| *ms > 0)
                    .unwrap_or(frequency.interval_ms()),
                last_sync_at: r.get(3)?,
                next_sync_at: r.get(4)?,
                last_sync_count: r.get(5)?,
                last_sync_error: r.get(6)?,
                last_attempt_at: r.get(7)?,
                last_success_at: r.get(8)?,
                consecutive_failures: r.get::<_, i64>(9)?.clamp(0, i64::from(u32::MAX)) as u32,
                created_at: r.get(10)?,
                updated_at: r.get(11)?,
            })
        })
        .optional()?;
    // The row is created by migration v3; a database edited by hand may have
    // lost it. Reads then show the defaults; writes recreate it.
    Ok(row.unwrap_or_else(|| SyncConfigView {
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
    }))
}

const HISTORY_COLUMNS: &str = "id, started_at, completed_at, status, skills_added, skills_updated,
    skills_unchanged, skills_removed, skills_skipped, error_message, duration_ms, mode, pid,
    registry_total, skills_reached, unfilterable_tiers, failure_kind";

fn history_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryEntry> {
    let count = |i| r.get::<_, i64>(i).map(|n| n.max(0) as u64);
    let maybe_count = |i| {
        r.get::<_, Option<i64>>(i)
            .map(|n| n.map(|n| n.max(0) as u64))
    };
    let registry_total = maybe_count(13)?;
    let skills_reached = maybe_count(14)?;
    Ok(HistoryEntry {
        id: r.get(0)?,
        started_at: r.get(1)?,
        completed_at: r.get(2)?,
        status: r.get(3)?,
        skills_added: count(4)?,
        skills_updated: count(5)?,
        skills_unchanged: count(6)?,
        skills_removed: count(7)?,
        skills_skipped: count(8)?,
        error_message: r.get(9)?,
        failure_kind: r.get(16)?,
        duration_ms: r.get(10)?,
        mode: r.get(11)?,
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
    })
}

/// `bm25` weights of the FTS5 columns name, description, tags, author: a hit
/// in the name counts most, then tags, then author, then description.
const FTS_WEIGHTS: &str = "10.0, 2.0, 4.0, 3.0";

const SKILL_COLUMNS_S: &str = "s.id, s.name, s.description, s.author, s.repo_url, s.quality_score,
    s.trust_tier, s.tags, s.categories, s.stars, s.content_hash, s.license, s.security_score,
    s.installable, s.quarantined, s.source, s.created_at, s.updated_at";

fn json_list(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    // A malformed list (hand-edited row) reads as empty rather than failing
    // the whole search.
    Ok(match r.get_ref(i)?.as_str_or_null()? {
        Some(text) => serde_json::from_str(text).unwrap_or_default(),
        None => Vec::new(),
    })
}

fn skill_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SkillRecord> {
    Ok(SkillRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        author: r.get(3)?,
        repo_url: r.get(4)?,
        quality_score: r.get(5)?,
        trust_tier: r.get(6)?,
        tags: json_list(r, 7)?,
        categories: json_list(r, 8)?,
        stars: r.get(9)?,
        content_hash: r.get(10)?,
        license: r.get(11)?,
        security_score: r.get(12)?,
        installable: r.get(13)?,
        quarantined: r.get(14)?,
        source: r.get(15)?,
        created_at: r.get(16)?,
        updated_at: r.get(17)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use skillsmith_guest::domain::TrustTier;

    pub(crate) fn skill(id: &str, name: &str, desc: &str) -> Skill {
        Skill {
            id: id.into(),
            name: name.into(),
            description: Some(desc.into()),
            author: Some("alice".into()),
            repo_url: None,
            quality_score: Some(0.5),
            trust_tier: TrustTier::Community,
            tags: vec!["git".into()],
            categories: vec![],
            stars: Some(3),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-02T00:00:00.000Z".into(),
            content_hash: None,
            license: None,
            security_score: None,
            installable: Some(true),
            quarantined: None,
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
            Migrations::from_slice(&MIGRATIONS[..2])
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
                        .map(|h| (h.id, h.rank.map(|r| (r * 1e9) as i64)))
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
        let ids = |hits: Vec<SkillRecord>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();

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
        assert_eq!(hit.tags, ["devops"]);
        assert_eq!(hit.source, "local");
        assert!(hit.rank.is_some());

        assert_eq!(db.get("id-b").unwrap().unwrap().name, "docker-runner");
        assert_eq!(db.get("bob/docker-runner").unwrap().unwrap().id, "id-b");
        assert_eq!(db.get("test-writer").unwrap().unwrap().id, "id-c");
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
