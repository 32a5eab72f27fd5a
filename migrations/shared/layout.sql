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
