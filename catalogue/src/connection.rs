//! Connections to a catalogue file: opening (refusing a newer schema before
//! anything is written), the migrations, the per-connection settings, and
//! the typed errors every part of the catalogue reports.
//!
//! Every connection uses WAL, `synchronous = NORMAL` and a 5 s busy timeout,
//! and starts its write transactions `IMMEDIATE`: in WAL mode a deferred
//! transaction that later writes can fail with `SQLITE_BUSY` at once (the
//! busy handler cannot help a stale snapshot), which is how "database is
//! locked" reaches users.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use skillsmith_guest::domain::FailureKind;

use crate::schema::{self, Found};

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::schema::SCHEMA_VERSION;

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
    /// The file is SQLite but not a catalogue (of this project or of the
    /// upstream tools); it was left untouched.
    #[error(
        "{path} is not a Skillsmith catalogue ({why}), and is left untouched: pass --db with \
         the path of a catalogue, or of a file to create"
    )]
    Foreign {
        /// The database path.
        path: PathBuf,
        /// What it holds instead.
        why: crate::schema::Stranger,
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
            // Another program's file, given as the catalogue by mistake.
            DbError::Invalid(_) | DbError::NoSearchableWords(_) | DbError::Foreign { .. } => {
                FailureKind::Usage
            }
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
pub(crate) fn uri_path(path: &Path) -> String {
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

/// Applies the per-connection settings (none of them changes the file).
pub(crate) fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
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

/// Sets the busy timeout and looks at what `conn`'s file holds, refusing a
/// file newer than this binary, or not a catalogue, before anything is
/// written to it.
pub(crate) fn known_version(conn: &Connection, path: &Path) -> Result<Found, DbError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| DbError::from_sqlite(path, e))?;
    schema::check(conn, path)
}

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32)
}

/// Opens `path` read-write (creating it), checks the schema is not newer than
/// this binary's, and applies pending migrations. The lease opens its own.
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
    // Read the version before anything that writes (the WAL switch persists
    // in the file header): a newer database must be left exactly as it was.
    known_version(&conn, path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("{}: journal mode is {mode}, not WAL", path.display());
    }
    configure(&mut conn).map_err(err)?;
    schema::prepare(&mut conn, path)?;
    Ok(conn)
}
