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
