//! The catalogue's schema: a fresh file in the shape the upstream tools
//! expect, an upstream file adopted in place, this project's older files
//! upgraded, and anything newer or stranger refused untouched.
//!
//! One file can be shared with the upstream TypeScript tools
//! (`@skillsmith/core`), which keep `~/.skillsmith/skills.db` at their own
//! `schema_version` (4 for 0.4.3, 17 later) and migrate it on every open.
//! So this module only ever adds to a file it did not create: columns of its
//! own on `skills`, tables of its own (`migrations/shared/layout.sql`), and
//! the full-text index and triggers where upstream has none. It never writes
//! `schema_version` after creating a file, and tracks its own migrations in
//! `skillsmith_migrations`. `PRAGMA user_version` carries the same number,
//! so that this project's older binaries (which read only that) refuse the
//! file with a clear message instead of trying to create it again.
//!
//! The checks run on every writable open and write only when something is
//! missing, so a file that an upstream migration rebuilt (its migrations 16
//! and 17 copy `skills` into a new table) gets this project's columns,
//! triggers and indexes back.

use rusqlite::{Connection, OptionalExtension};
use rusqlite_migration::{M, Migrations};

use crate::connection::{DbError, user_version};

/// The schema version this binary creates and understands.
pub const SCHEMA_VERSION: u32 = 10;

/// The last version of this project's own migration chain, kept in
/// `PRAGMA user_version` alone (before the catalogue was shared).
const LEGACY_LAST: u32 = 9;

/// Migrations 001-009, which bring an older file of this project to v9; the
/// conversion to the shared layout follows (`migrations/shared/legacy.sql`).
pub(crate) const LEGACY_MIGRATIONS: &[M<'static>] = &[
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

const UPSTREAM_BASE: &str = include_str!("../../migrations/shared/upstream_base.sql");
const SYNC_TABLES: &str = include_str!("../../migrations/shared/sync_tables.sql");
const LAYOUT: &str = include_str!("../../migrations/shared/layout.sql");
const LEGACY: &str = include_str!("../../migrations/shared/legacy.sql");
const LEGACY_AFTER: &str = include_str!("../../migrations/shared/legacy_after.sql");
const FTS: &str = include_str!("../../migrations/shared/fts.sql");
const FTS_TRIGGERS: &str = include_str!("../../migrations/shared/fts_triggers.sql");

/// The columns of `skills` this project reads or writes, with the
/// declaration that adds each where it is missing. Four are upstream's own
/// (its migration 4), for files older than that; never `source`, whose
/// presence makes upstream's migration 16 skip its rebuild of the table
/// (this project's `sync_origin` says whose a row is instead).
pub(crate) const SKILL_COLUMNS: &[(&str, &str)] = &[
    (
        "risk_score",
        "INTEGER CHECK (risk_score IS NULL OR (risk_score >= 0 AND risk_score <= 100))",
    ),
    ("security_findings_count", "INTEGER DEFAULT 0"),
    ("security_scanned_at", "TEXT"),
    ("security_passed", "INTEGER"),
    ("stars", "INTEGER"),
    // `registry` for rows a sync of this project wrote or found listed,
    // `local` for local skills (this project's, or upstream's
    // `source = 'local'`), NULL for rows another tool wrote that no sync of
    // this project has listed: those are never updated blindly or removed.
    ("sync_origin", "TEXT"),
    ("categories", "TEXT NOT NULL DEFAULT '[]'"),
    ("content_hash", "TEXT"),
    ("license", "TEXT"),
    ("security_score", "REAL"),
    ("installable", "INTEGER"),
    ("quarantined", "INTEGER"),
    // The registry's tier when `trust_tier`'s CHECK does not allow it
    // (`trust_tier` then says 'unknown'); NULL when `trust_tier` is it.
    ("registry_tier", "TEXT"),
    // The registry's repository when another row holds it in the unique
    // `repo_url` (which is then NULL here); NULL when `repo_url` is it.
    ("registry_repo_url", "TEXT"),
];

/// Columns upstream's `skills` has had since 0.4.3: a table without them is
/// not upstream's.
const UPSTREAM_COLUMNS: &[&str] = &[
    "id",
    "name",
    "repo_url",
    "trust_tier",
    "tags",
    "created_at",
    "updated_at",
];

/// The indexes of this project's own on `skills`, by name, created where
/// missing.
const OWN_INDEXES: &[(&str, &str)] = &[
    // Every sync counts its registry rows: without this index a scan.
    (
        "idx_skills_origin",
        "CREATE INDEX IF NOT EXISTS idx_skills_origin ON skills(sync_origin)",
    ),
    (
        "idx_skills_author_name",
        "CREATE INDEX IF NOT EXISTS idx_skills_author_name ON skills(author, name)",
    ),
    // The few rows waiting for a repository another row holds.
    (
        "idx_skills_registry_repo",
        "CREATE INDEX IF NOT EXISTS idx_skills_registry_repo ON skills(registry_repo_url)
         WHERE registry_repo_url IS NOT NULL",
    ),
];

/// The full-text triggers, under upstream's names (`fts_triggers.sql`).
pub(crate) const FTS_TRIGGER_NAMES: [&str; 3] = ["skills_ai", "skills_ad", "skills_au"];

/// The tiers upstream 0.4.3's CHECK allows: the narrowest any upstream
/// schema has declared, and so the tiers of a `trust_tier` column that
/// declares none, so that any later upstream migration copying the rows
/// into a table with its CHECK accepts them.
pub(crate) const UPSTREAM_TIERS: [&str; 4] = ["verified", "community", "experimental", "unknown"];

/// What a file holds, before anything is written to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// No tables: a new file.
    Empty,
    /// This project's schema before the shared layout (`user_version`).
    Legacy(u32),
    /// The shared layout at this version (`skillsmith_migrations`).
    Shared(u32),
    /// A catalogue the upstream tools created.
    Upstream,
    /// Something else, and why it is not a catalogue.
    Foreign(Stranger),
}

/// Why a SQLite file is not a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stranger {
    /// It has tables, none of them `skills`.
    #[error("it has tables ({0}) but no skills table")]
    NoSkillsTable(String),
    /// Its `skills` table lacks columns every catalogue has.
    #[error("its skills table has no {0} column")]
    MissingColumns(String),
    /// It has a `skills` table but no upstream `schema_version`.
    #[error("it has a skills table but no schema_version table")]
    NoSchemaVersion,
    /// `user_version` says this project's, but there is no `skills` table.
    #[error("user_version {0} but no skills table")]
    VersionWithoutSkills(u32),
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ?1)",
    )?
    .query_row([name], |r| r.get(0))
}

fn object_exists(conn: &Connection, kind: &str, name: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2)",
    )?
    .query_row([kind, name], |r| r.get(0))
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get(0))?;
    names.collect()
}

/// What `conn`'s file holds (reads only).
pub(crate) fn inspect(conn: &Connection) -> rusqlite::Result<Found> {
    let legacy = user_version(conn)?;
    if table_exists(conn, "skillsmith_migrations")? {
        let v: Option<i64> =
            conn.query_row("SELECT max(version) FROM skillsmith_migrations", [], |r| {
                r.get(0)
            })?;
        let v = v.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
        // `user_version` mirrors it; the higher of the two wins, so that a
        // newer binary's file is refused whichever one it wrote.
        return Ok(Found::Shared(v.max(legacy)));
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if legacy > 0 {
        // A file of this project's newer binaries has `skillsmith_migrations`;
        // one stamped above v9 without it is not ours to upgrade.
        return Ok(
            if legacy > LEGACY_LAST || tables.iter().any(|t| t == "skills") {
                Found::Legacy(legacy)
            } else {
                Found::Foreign(Stranger::VersionWithoutSkills(legacy))
            },
        );
    }
    if tables.is_empty() {
        return Ok(Found::Empty);
    }
    if !tables.iter().any(|t| t == "skills") {
        let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
        return Ok(Found::Foreign(Stranger::NoSkillsTable(shown.join(", "))));
    }
    let have = columns(conn, "skills")?;
    let missing: Vec<&str> = UPSTREAM_COLUMNS
        .iter()
        .copied()
        .filter(|c| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Ok(Found::Foreign(Stranger::MissingColumns(missing.join(", "))));
    }
    if !tables.iter().any(|t| t == "schema_version") {
        return Ok(Found::Foreign(Stranger::NoSchemaVersion));
    }
    Ok(Found::Upstream)
}

/// This project's schema version of `conn`'s file: `skillsmith_migrations`,
/// else `user_version` (an older file), else 0.
pub(crate) fn version(conn: &Connection) -> rusqlite::Result<u32> {
    Ok(match inspect(conn)? {
        Found::Shared(v) | Found::Legacy(v) => v,
        Found::Empty | Found::Upstream | Found::Foreign(_) => 0,
    })
}

/// Refuses, before anything is written, a file this binary must not touch:
/// a newer schema of this project's, or a file that is not a catalogue.
pub(crate) fn check(conn: &Connection, path: &std::path::Path) -> Result<Found, DbError> {
    let found = inspect(conn).map_err(|e| DbError::from_sqlite(path, e))?;
    match found {
        Found::Shared(v) if v > SCHEMA_VERSION => Err(newer(path, v)),
        Found::Legacy(v) if v > LEGACY_LAST => Err(newer(path, v)),
        Found::Foreign(why) => Err(DbError::Foreign {
            path: path.to_owned(),
            why,
        }),
        found => Ok(found),
    }
}

fn newer(path: &std::path::Path, found: u32) -> DbError {
    DbError::NewerSchema {
        path: path.to_owned(),
        found,
        known: SCHEMA_VERSION,
    }
}

/// What [`prepare`] would add to a file at this version.
#[derive(Debug, Default)]
struct Missing {
    columns: Vec<(&'static str, &'static str)>,
    tables: bool,
    fts: bool,
    /// How many of the three full-text triggers exist.
    triggers: usize,
    indexes: bool,
    unique_repo_url: bool,
}

impl Missing {
    fn any(&self) -> bool {
        !self.columns.is_empty()
            || self.tables
            || self.fts
            || self.triggers < FTS_TRIGGER_NAMES.len()
            || self.indexes
            || self.unique_repo_url
    }
}

const OWN_TABLES: &[&str] = &[
    "skillsmith_migrations",
    "sync_state",
    "sync_lease",
    "deferred_index",
    "sync_run",
    "sync_schedule",
    "sync_config",
    "sync_history",
];

fn missing(conn: &Connection) -> rusqlite::Result<Missing> {
    let have = columns(conn, "skills")?;
    let columns = SKILL_COLUMNS
        .iter()
        .copied()
        .filter(|(c, _)| !have.iter().any(|h| h.eq_ignore_ascii_case(c)))
        .collect();
    let mut tables = false;
    for t in OWN_TABLES {
        tables |= !table_exists(conn, t)?;
    }
    let triggers = FTS_TRIGGER_NAMES
        .iter()
        .map(|name| object_exists(conn, "trigger", name))
        .collect::<rusqlite::Result<Vec<bool>>>()?
        .into_iter()
        .filter(|t| *t)
        .count();
    // Indexes set aside by a first sync come back at its end.
    let deferring = table_exists(conn, "sync_state")?
        && conn
            .query_row(
                "SELECT fts_deferred = 1 FROM sync_state WHERE id = 1",
                [],
                |r| r.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false);
    let mut indexes = false;
    for (name, _) in OWN_INDEXES {
        indexes |= !object_exists(conn, "index", name)?;
    }
    Ok(Missing {
        columns,
        tables,
        fts: !table_exists(conn, "skills_fts")?,
        triggers,
        indexes: !deferring && indexes,
        unique_repo_url: !deferring && !repo_url_is_unique(conn)?,
    })
}

/// Whether a unique index covers exactly `skills.repo_url` (upstream's
/// inline UNIQUE, or this project's `idx_skills_repo_url`). A first sync
/// sets the latter aside and settles duplicates at its end.
pub(crate) fn repo_url_is_unique(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM pragma_index_list('skills') AS l
             WHERE l.\"unique\"
                 AND (SELECT group_concat(name) FROM pragma_index_info(l.name)) = 'repo_url')",
    )?
    .query_row([], |r| r.get(0))
}

/// Settles rows that share a `repo_url`, before a unique index is built
/// over it: per repository, a row that is not the registry's keeps it, then
/// the most recently updated, then the smallest id; every other row keeps
/// its repository in `registry_repo_url` and none in `repo_url`.
pub(crate) fn settle_repo_urls(conn: &Connection) -> rusqlite::Result<usize> {
    // Finding none is a third of the cost of ranking every row (44 against
    // 127 ms over 100,000 rows here), and none is what a first sync finds.
    let shared: bool = conn
        .prepare_cached(crate::shared_sql::statement("skills_repo_urls_shared"))?
        .query_row([], |r| r.get(0))?;
    if !shared {
        return Ok(0);
    }
    // Shared with the hosts outside Rust.
    conn.prepare_cached(crate::shared_sql::statement("skills_repo_urls_settle"))?
        .execute([])
}

/// The `CREATE TABLE` statement of `skills`, as the file keeps it.
pub(crate) fn skills_declaration(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'skills'",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// The tiers `skills.trust_tier`'s CHECK allows, read from the table's
/// declaration ([`skills_declaration`]); [`UPSTREAM_TIERS`] when it
/// declares none.
pub(crate) fn allowed_tiers(declaration: Option<&str>) -> Vec<String> {
    declaration
        .and_then(tier_check)
        .unwrap_or_else(|| UPSTREAM_TIERS.map(String::from).to_vec())
}

/// The list of `trust_tier IN ('a', 'b', ..)` in a table's declaration.
fn tier_check(sql: &str) -> Option<Vec<String>> {
    // ASCII lowercasing keeps byte offsets, so `lower` indexes `sql`.
    let lower = sql.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("trust_tier") {
        from += i + "trust_tier".len();
        let rest = sql[from..].trim_start_matches(['"', '`', ']']).trim_start();
        let Some(rest) = rest
            .get(..2)
            .filter(|w| w.eq_ignore_ascii_case("in"))
            .map(|_| rest[2..].trim_start())
        else {
            continue;
        };
        let Some(mut rest) = rest.strip_prefix('(') else {
            continue;
        };
        let mut tiers = Vec::new();
        loop {
            rest = rest.trim_start();
            let body = rest.strip_prefix('\'')?;
            // A quote inside a literal is doubled.
            let mut value = String::new();
            let mut chars = body.char_indices();
            let end = loop {
                let (at, c) = chars.next()?;
                if c != '\'' {
                    value.push(c);
                } else if body[at + 1..].starts_with('\'') {
                    value.push('\'');
                    chars.next();
                } else {
                    break at + 1;
                }
            };
            tiers.push(value);
            rest = body[end..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if rest.starts_with(')') {
                return Some(tiers);
            } else {
                return None;
            }
        }
    }
    None
}

/// Whether `conn`'s file is at [`SCHEMA_VERSION`] with nothing missing, so
/// that it can be read and written as it is.
pub(crate) fn is_current(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(inspect(conn)? == Found::Shared(SCHEMA_VERSION) && !missing(conn)?.any())
}

/// Brings `conn`'s file to [`SCHEMA_VERSION`] in the shared layout, or
/// leaves it alone when nothing is missing. Call [`check`] first.
pub(crate) fn prepare(conn: &mut Connection, path: &std::path::Path) -> Result<(), DbError> {
    let err = |e| migration_error(path, e);
    let found = check(conn, path)?;
    if let Found::Shared(v) = found
        && v == SCHEMA_VERSION
        && !missing(conn).map_err(err)?.any()
    {
        return Ok(());
    }
    if let Found::Legacy(v) = found
        && v < LEGACY_LAST
        && let Err(e) = legacy_chain(conn, path)
    {
        // Two processes opening an older file at once both start the chain;
        // the second fails on what the first added. The file is fine then.
        match inspect(conn).map_err(err)? {
            Found::Legacy(LEGACY_LAST) | Found::Shared(_) => {}
            _ => return Err(e),
        }
    }
    // Another process may have done it meanwhile: look again under the lock.
    let tx = conn.transaction().map_err(err)?;
    let found = check(&tx, path)?;
    apply(&tx, &found).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(())
}

/// How `skillsmith_migrations` names version [`SCHEMA_VERSION`].
const LAYOUT_DESCRIPTION: &str =
    "the shared layout: upstream's tables as upstream declares them, this project's beside them";

fn apply(tx: &Connection, found: &Found) -> rusqlite::Result<()> {
    apply_recorded(
        &mut Script {
            conn: tx,
            record: None,
        },
        found,
    )
}

/// The schema's statements, run on one connection and, when `record` is
/// set, written down as they run: the record of a fresh file's is
/// `migrations/shared/catalogue.sql`, for hosts without this crate
/// (`host-python/`, `host-node/`), which apply it to an empty file as it is.
struct Script<'c> {
    conn: &'c Connection,
    record: Option<String>,
}

impl Script<'_> {
    fn run(&mut self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)?;
        if let Some(record) = &mut self.record {
            let sql = sql.trim_end();
            record.push_str(sql);
            record.push_str(if sql.ends_with(';') { "\n\n" } else { ";\n\n" });
        }
        Ok(())
    }
}

/// What this module writes to an empty file, as one SQL script (see
/// [`Script`]).
pub fn fresh_catalogue_sql() -> rusqlite::Result<String> {
    let conn = Connection::open_in_memory()?;
    let mut script = Script {
        conn: &conn,
        record: Some(String::from(
            "-- The schema of a fresh Skillsmith catalogue, as one script: what\n\
             -- catalogue/src/schema.rs writes to an empty file, recorded as it runs.\n\
             -- For hosts without the Rust catalogue, which apply it to an empty file\n\
             -- as it is. Generated: do not edit. A test fails when it is out of date;\n\
             -- `SKILLSMITH_BLESS=1 cargo test -p skillsmith-catalogue catalogue_sql`\n\
             -- writes it again.\n\n",
        )),
    };
    apply_recorded(&mut script, &Found::Empty)?;
    Ok(script.record.unwrap_or_default())
}

fn apply_recorded(s: &mut Script<'_>, found: &Found) -> rusqlite::Result<()> {
    let tx = s.conn;
    match found {
        Found::Empty => s.run(UPSTREAM_BASE)?,
        Found::Legacy(_) => {
            s.run(LEGACY)?;
            add_columns(s)?;
            // Upstream's other tables, which its code expects; `skills`
            // exists, so its CREATE is skipped.
            s.run(&UPSTREAM_BASE.replacen(
                "CREATE TABLE skills (",
                "CREATE TABLE IF NOT EXISTS skills (",
                1,
            ))?;
        }
        Found::Shared(_) => {
            let readded: Vec<&str> = missing(tx)?.columns.iter().map(|(c, _)| *c).collect();
            if !readded.is_empty() {
                // Upstream's migrations 16 and 17 rebuild `skills` from the
                // columns they know.
                tracing::warn!(
                    "the skills table lost this project's columns ({}), as an upstream \
                     migration that rebuilds it does; they are added again, empty: run \
                     `skillsmith sync --force` to fill them",
                    readded.join(", ")
                );
            }
        }
        Found::Upstream => {}
        Found::Foreign(_) => unreachable!("refused by check"),
    }
    s.run(SYNC_TABLES)?;
    add_columns(s)?;
    s.run(LAYOUT)?;
    if let Found::Legacy(_) = found {
        s.run(LEGACY_AFTER)?;
        // Rows older than the CHECK-respecting store: tiers upstream
        // would refuse move to `registry_tier`.
        tx.execute(
            "UPDATE skills SET registry_tier = trust_tier, trust_tier = 'unknown'
             WHERE trust_tier NOT IN (SELECT value FROM json_each(?1))",
            [serde_json::to_string(&UPSTREAM_TIERS).expect("strings serialise")],
        )?;
    }
    mark_upstream_local(tx)?;
    let missing = missing(tx)?;
    if missing.fts {
        // Indexes every row there already.
        s.run(FTS)?;
    }
    if missing.triggers < FTS_TRIGGER_NAMES.len() {
        for name in FTS_TRIGGER_NAMES {
            s.run(&format!("DROP TRIGGER IF EXISTS {name}"))?;
        }
        s.run(FTS_TRIGGERS)?;
        // This project's older triggers kept the index exact; any other
        // index that lacked a trigger may lack rows.
        if !missing.fts && !matches!(found, Found::Legacy(_)) {
            s.run("INSERT INTO skills_fts(skills_fts) VALUES ('rebuild')")?;
            // A first sync's catch-up starts above what is indexed now.
            s.run(
                "UPDATE sync_state SET fts_indexed_upto = (SELECT coalesce(max(rowid), 0) FROM skills)
                 WHERE id = 1 AND fts_deferred = 1",
            )?;
        }
    }
    if missing.indexes {
        for (_, sql) in OWN_INDEXES {
            s.run(sql)?;
        }
    }
    if missing.unique_repo_url {
        settle_repo_urls(tx)?;
        s.run("CREATE UNIQUE INDEX IF NOT EXISTS idx_skills_repo_url ON skills(repo_url)")?;
    }
    s.run(&format!(
        "INSERT OR IGNORE INTO skillsmith_migrations (version, description) VALUES ({SCHEMA_VERSION}, '{}')",
        LAYOUT_DESCRIPTION.replace('\'', "''")
    ))?;
    s.run(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    Ok(())
}

/// Marks upstream's local skills (`source = 'local'`, a column upstream's
/// migration 16 adds) as local for this project too, so that no sync
/// touches them.
pub(crate) fn mark_upstream_local(conn: &Connection) -> rusqlite::Result<()> {
    if has_source_column(conn)? {
        conn.prepare_cached(
            "UPDATE skills SET sync_origin = 'local'
             WHERE source = 'local' AND sync_origin IS NOT 'local'",
        )?
        .execute([])?;
    }
    Ok(())
}

/// Whether `skills` has upstream's `source` column.
pub(crate) fn has_source_column(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(columns(conn, "skills")?.iter().any(|c| c == "source"))
}

fn add_columns(s: &mut Script<'_>) -> rusqlite::Result<()> {
    let have = columns(s.conn, "skills")?;
    for (name, decl) in SKILL_COLUMNS {
        if !have.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            s.run(&format!("ALTER TABLE skills ADD COLUMN {name} {decl}"))?;
        }
    }
    Ok(())
}

/// Brings an older file of this project to v9 with its own migrations.
fn legacy_chain(conn: &mut Connection, path: &std::path::Path) -> Result<(), DbError> {
    Migrations::from_slice(LEGACY_MIGRATIONS)
        .to_version(conn, LEGACY_LAST as usize)
        .map_err(|e| match e {
            rusqlite_migration::Error::RusqliteError { err, .. } => migration_error(path, err),
            other => DbError::Migration {
                path: path.to_owned(),
                detail: other.to_string(),
            },
        })
}

fn migration_error(path: &std::path::Path, e: rusqlite::Error) -> DbError {
    match DbError::from_sqlite(path, e) {
        DbError::Sqlite { source, .. } => DbError::Migration {
            path: path.to_owned(),
            detail: source.to_string(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `migrations/shared/catalogue.sql` is what a fresh file gets, and an
    /// empty file it is applied to is a current catalogue.
    #[test]
    fn catalogue_sql_is_what_a_fresh_file_gets() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations/shared/catalogue.sql");
        let script = fresh_catalogue_sql().unwrap();
        if std::env::var_os("SKILLSMITH_BLESS").is_some() {
            std::fs::write(&path, &script).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == script,
            "{} is out of date: run `SKILLSMITH_BLESS=1 cargo test -p skillsmith-catalogue \
             catalogue_sql` and commit it",
            path.display()
        );
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&committed).unwrap();
        assert!(is_current(&conn).unwrap());
        assert_eq!(version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn tier_check_reads_the_declared_list() {
        let v043 = "CREATE TABLE skills (id TEXT, trust_tier TEXT CHECK(trust_tier IN ('verified', 'community', 'experimental', 'unknown')) DEFAULT 'unknown')";
        assert_eq!(tier_check(v043).unwrap(), UPSTREAM_TIERS);
        let odd = "CREATE TABLE skills (\"trust_tier\" TEXT, CHECK (\"trust_tier\"  in(  'a' ,'it''s'\n)))";
        assert_eq!(tier_check(odd).unwrap(), ["a", "it's"]);
        assert_eq!(tier_check("CREATE TABLE skills (trust_tier TEXT)"), None);
        assert_eq!(
            tier_check("CREATE TABLE skills (trust_tier TEXT CHECK (trust_tier IN (1, 2)))"),
            None
        );
    }

    fn found(sql: &str) -> Found {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        inspect(&conn).unwrap()
    }

    #[test]
    fn what_a_file_holds() {
        assert_eq!(found(""), Found::Empty);
        assert_eq!(
            found("CREATE TABLE notes (x); CREATE TABLE tags (y);"),
            Found::Foreign(Stranger::NoSkillsTable("notes, tags".into()))
        );
        // Another program's `skills` table is not adopted.
        assert_eq!(
            found("CREATE TABLE skills (id TEXT, name TEXT, created_at TEXT, updated_at TEXT);"),
            Found::Foreign(Stranger::MissingColumns(
                "repo_url, trust_tier, tags".into()
            ))
        );
        let upstream_skills = "CREATE TABLE skills (id TEXT PRIMARY KEY, name TEXT, repo_url TEXT,
            trust_tier TEXT, tags TEXT, created_at TEXT, updated_at TEXT);";
        assert_eq!(
            found(upstream_skills),
            Found::Foreign(Stranger::NoSchemaVersion)
        );
        assert_eq!(
            found(&format!(
                "{upstream_skills} CREATE TABLE schema_version (version INTEGER PRIMARY KEY);"
            )),
            Found::Upstream
        );
        assert_eq!(
            found("CREATE TABLE skills (id); PRAGMA user_version = 9;"),
            Found::Legacy(9)
        );
        assert_eq!(
            found("CREATE TABLE other (id); PRAGMA user_version = 3;"),
            Found::Foreign(Stranger::VersionWithoutSkills(3))
        );
        assert_eq!(found("PRAGMA user_version = 12;"), Found::Legacy(12));
    }
}
