-- The schema of a fresh Skillsmith catalogue, as one script: what
-- catalogue/src/schema.rs writes to an empty file, recorded as it runs.
-- For hosts without the Rust catalogue, which apply it to an empty file
-- as it is. Generated: do not edit. A test fails when it is out of date;
-- `SKILLSMITH_BLESS=1 cargo test -p skillsmith-catalogue catalogue_sql`
-- writes it again.

-- A fresh catalogue starts as the upstream tools' schema 4 (`@skillsmith/core`
-- 0.4.3, `db/schema.js`), so that their `openDatabase`, `SearchService` and
-- `SyncEngine` can open, search and sync it. `schema_version` says 4, which
-- upstream reads as "nothing to migrate"; a later upstream runs its own
-- migrations 5 and up on it, as on any 0.4.3 catalogue.
--
-- Three differences from upstream's text, none visible to its code (and
-- none in the way of its later migrations, which rebuild `skills` from the
-- columns they know):
-- * `repo_url` is unique through a named index (`idx_skills_repo_url`,
--   created by the shared layout) instead of an inline UNIQUE, whose
--   automatic index could not be set aside while a first sync loads rows;
-- * this project's own columns are declared here rather than added later;
-- * of upstream's indexes on `skills`, only `idx_skills_trust_tier`, which
--   this project's searches use too: each index costs every sync's writes,
--   and upstream's queries are correct without the others.
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT (datetime('now'))
);
INSERT OR IGNORE INTO schema_version (version) VALUES (4);

CREATE TABLE skills (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    description             TEXT,
    author                  TEXT,
    repo_url                TEXT,
    quality_score           REAL CHECK (quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)),
    trust_tier              TEXT CHECK (trust_tier IN ('verified', 'community', 'experimental', 'unknown')) DEFAULT 'unknown',
    tags                    TEXT DEFAULT '[]',
    risk_score              INTEGER CHECK (risk_score IS NULL OR (risk_score >= 0 AND risk_score <= 100)),
    security_findings_count INTEGER DEFAULT 0,
    security_scanned_at     TEXT,
    security_passed         INTEGER,
    created_at              TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at              TEXT NOT NULL DEFAULT (datetime('now')),
    -- This project's columns (`schema.rs`, SKILL_COLUMNS). Not `source`:
    -- upstream's migration 16 adds that column, and skips its whole rebuild
    -- of `skills` when the column is there already.
    stars                   INTEGER,
    sync_origin             TEXT,
    categories              TEXT NOT NULL DEFAULT '[]',
    content_hash            TEXT,
    license                 TEXT,
    security_score          REAL,
    installable             INTEGER,
    quarantined             INTEGER,
    registry_tier           TEXT,
    registry_repo_url       TEXT
);

CREATE TABLE IF NOT EXISTS sources (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('github', 'gitlab', 'local', 'registry')),
    url         TEXT NOT NULL UNIQUE,
    last_sync_at TEXT,
    is_active   INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS categories (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT,
    parent_id   TEXT REFERENCES categories(id) ON DELETE SET NULL,
    skill_count INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS skill_categories (
    skill_id    TEXT NOT NULL REFERENCES skills(id) ON DELETE CASCADE,
    category_id TEXT NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
    PRIMARY KEY (skill_id, category_id)
);

CREATE TABLE IF NOT EXISTS cache (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at INTEGER,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TABLE IF NOT EXISTS audit_logs (
    id         TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    timestamp  TEXT NOT NULL DEFAULT (datetime('now')),
    actor      TEXT,
    resource   TEXT,
    action     TEXT,
    result     TEXT,
    metadata   TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE INDEX IF NOT EXISTS idx_skills_trust_tier ON skills(trust_tier);
CREATE INDEX IF NOT EXISTS idx_sources_type ON sources(type);
CREATE INDEX IF NOT EXISTS idx_sources_is_active ON sources(is_active);
CREATE INDEX IF NOT EXISTS idx_categories_parent ON categories(parent_id);
CREATE INDEX IF NOT EXISTS idx_cache_expires ON cache(expires_at);
CREATE INDEX IF NOT EXISTS idx_audit_event_type ON audit_logs(event_type);
CREATE INDEX IF NOT EXISTS idx_audit_timestamp ON audit_logs(timestamp);
CREATE INDEX IF NOT EXISTS idx_audit_resource ON audit_logs(resource);
CREATE INDEX IF NOT EXISTS idx_audit_result ON audit_logs(result);
CREATE INDEX IF NOT EXISTS idx_audit_actor ON audit_logs(actor);

-- ADR-018's sync tables exactly as upstream's migration 3 declares them
-- (`sync_history.id` is text: upstream inserts its own ids). Created only
-- where missing; everything this project adds lives in its own tables
-- (`layout.sql`).
CREATE TABLE IF NOT EXISTS sync_config (
    id              TEXT PRIMARY KEY DEFAULT 'default',
    enabled         INTEGER NOT NULL DEFAULT 1,
    frequency       TEXT NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
    interval_ms     INTEGER NOT NULL DEFAULT 86400000,
    last_sync_at    TEXT,
    next_sync_at    TEXT,
    last_sync_count INTEGER DEFAULT 0,
    last_sync_error TEXT,
    created_at      TEXT NOT NULL DEFAULT (datetime('now')),
    updated_at      TEXT NOT NULL DEFAULT (datetime('now'))
);
INSERT OR IGNORE INTO sync_config (id) VALUES ('default');

CREATE TABLE IF NOT EXISTS sync_history (
    id               TEXT PRIMARY KEY,
    started_at       TEXT NOT NULL,
    completed_at     TEXT,
    status           TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'success', 'failed', 'partial')),
    skills_added     INTEGER DEFAULT 0,
    skills_updated   INTEGER DEFAULT 0,
    skills_unchanged INTEGER DEFAULT 0,
    error_message    TEXT,
    duration_ms      INTEGER,
    created_at       TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_sync_history_started ON sync_history(started_at DESC);
CREATE INDEX IF NOT EXISTS idx_sync_history_status ON sync_history(status);

-- This project's own tables, beside whatever created the catalogue (this
-- project or the upstream tools). Idempotent: applied to fresh, adopted and
-- upgraded catalogues alike. Upstream's tables hold only what upstream
-- declares; every fact of this project's own lives here.

-- The migrations of this project, one row each (upstream's own version is
-- `schema_version`, which this project never writes after creating it).
CREATE TABLE IF NOT EXISTS skillsmith_migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row: the checkpoint written in the same transaction as each page, and
-- the full-text indexing deferral of a first sync (`store.rs`).
CREATE TABLE IF NOT EXISTS sync_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    mode             TEXT,
    cursor           TEXT,
    etag             TEXT,
    resync_pending   INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT,
    fts_deferred     INTEGER NOT NULL DEFAULT 0,
    fts_indexed_upto INTEGER
);
INSERT OR IGNORE INTO sync_state (id) VALUES (1);

-- One row while a sync of this project runs (`lock.rs`).
CREATE TABLE IF NOT EXISTS sync_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  INTEGER NOT NULL          -- Unix ms
);

-- The indexes of `skills` a first sync has set aside (`store.rs`).
CREATE TABLE IF NOT EXISTS deferred_index (
    name TEXT PRIMARY KEY NOT NULL,
    sql  TEXT NOT NULL
);

-- What this project records of each of its runs beyond ADR-018's
-- `sync_history` columns, by history id. A history row without one was
-- written by another client.
CREATE TABLE IF NOT EXISTS sync_run (
    history_id         TEXT PRIMARY KEY NOT NULL,
    mode               TEXT,             -- 'changes-feed' | 'search'
    pid                INTEGER,          -- process that opened the run
    skills_removed     INTEGER NOT NULL DEFAULT 0,
    skills_skipped     INTEGER NOT NULL DEFAULT 0,
    registry_total     INTEGER,          -- the registry's own count (/stats)
    skills_reached     INTEGER,          -- distinct skills a search-mode run listed
    unfilterable_tiers TEXT,             -- JSON array of strings
    failure_kind       TEXT              -- FailureKind::as_str
);

-- Scheduling facts on the host clock, beside `sync_config`.
CREATE TABLE IF NOT EXISTS sync_schedule (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    last_attempt_at      TEXT,           -- host time the last attempt ended
    last_success_at      TEXT,           -- host time the last success ended
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO sync_schedule (id) VALUES (1);

-- Full-text search over the catalogue, exactly as upstream declares it, so
-- that one index serves both clients. Created only where missing.
CREATE VIRTUAL TABLE IF NOT EXISTS skills_fts USING fts5(
    name, description, tags, author,
    content = 'skills',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);
-- Up to 64 segments on a level before a "crisis" merge of all of them
-- (FTS5's default is 16): the catch-up of a first sync leaves many, and the
-- first small write after it would otherwise merge the whole index
-- (docs/PERFORMANCE.md).
INSERT INTO skills_fts(skills_fts, rank) VALUES ('crisismerge', 64);
INSERT INTO skills_fts(skills_fts) VALUES ('rebuild');

DROP TRIGGER IF EXISTS skills_ai;

DROP TRIGGER IF EXISTS skills_ad;

DROP TRIGGER IF EXISTS skills_au;

-- The triggers that keep `skills_fts` current, under upstream's names, so
-- that upstream's `CREATE TRIGGER IF NOT EXISTS skills_ai ..` never adds a
-- second set. Created only where none of the three exists; a catalogue that
-- has upstream's own keeps them (and then indexes every row as it is
-- written: no first-sync deferral).
--
-- While `sync_state.fts_deferred` is 1 (a first sync), the index holds
-- exactly the rows whose rowid is at most `fts_indexed_upto`: these
-- triggers keep those rows current and leave every row above it to the
-- store's catch-up (`Store::index_backlog`). Outside a deferral they do what
-- upstream's do. A deferral with `fts_indexed_upto` NULL is ended by a full
-- rebuild.
CREATE TRIGGER skills_ai AFTER INSERT ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(new.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE TRIGGER skills_ad AFTER DELETE ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
END;

-- Only the indexed columns matter: an update that leaves them alone (stars,
-- scores, timestamps) does not touch the index.
CREATE TRIGGER skills_au AFTER UPDATE OF name, description, tags, author ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE INDEX IF NOT EXISTS idx_skills_origin ON skills(sync_origin);

CREATE INDEX IF NOT EXISTS idx_skills_author_name ON skills(author, name);

CREATE INDEX IF NOT EXISTS idx_skills_registry_repo ON skills(registry_repo_url)
         WHERE registry_repo_url IS NOT NULL;

CREATE UNIQUE INDEX IF NOT EXISTS idx_skills_repo_url ON skills(repo_url);

INSERT OR IGNORE INTO skillsmith_migrations (version, description) VALUES (10, 'the shared layout: upstream''s tables as upstream declares them, this project''s beside them');

PRAGMA user_version = 10;

