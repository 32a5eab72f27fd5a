-- Converts a catalogue of this project's schema v9 (PRAGMA user_version,
-- migrations 001-009) to the shared layout, before `layout.sql` runs.
-- These files are this project's own, so they may be rebuilt.

-- ADR-018's history with upstream's text ids; this project's columns move
-- to `sync_run`.
CREATE TABLE sync_run (
    history_id         TEXT PRIMARY KEY NOT NULL,
    mode               TEXT,
    pid                INTEGER,
    skills_removed     INTEGER NOT NULL DEFAULT 0,
    skills_skipped     INTEGER NOT NULL DEFAULT 0,
    registry_total     INTEGER,
    skills_reached     INTEGER,
    unfilterable_tiers TEXT,
    failure_kind       TEXT
);
INSERT INTO sync_run (history_id, mode, pid, skills_removed, skills_skipped,
        registry_total, skills_reached, unfilterable_tiers, failure_kind)
    SELECT CAST(id AS TEXT), mode, pid, skills_removed, skills_skipped,
        registry_total, skills_reached, unfilterable_tiers, failure_kind
    FROM sync_history;
ALTER TABLE sync_history RENAME TO sync_history_v9;
DROP INDEX IF EXISTS idx_sync_history_started;
CREATE TABLE sync_history (
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
-- In id order, so that the rowids (the runs' order) are kept.
INSERT INTO sync_history (id, started_at, completed_at, status, skills_added,
        skills_updated, skills_unchanged, error_message, duration_ms, created_at)
    SELECT CAST(id AS TEXT), started_at, completed_at, status, skills_added,
        skills_updated, skills_unchanged, error_message, duration_ms, created_at
    FROM sync_history_v9 ORDER BY id;
DROP TABLE sync_history_v9;

-- Scheduling facts move from `sync_config` to `sync_schedule`.
CREATE TABLE sync_schedule (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    last_attempt_at      TEXT,
    last_success_at      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sync_schedule (id, last_attempt_at, last_success_at, consecutive_failures)
    SELECT 1, last_attempt_at, last_success_at, consecutive_failures
    FROM sync_config WHERE id = 'default';
ALTER TABLE sync_config DROP COLUMN last_attempt_at;
ALTER TABLE sync_config DROP COLUMN last_success_at;
ALTER TABLE sync_config DROP COLUMN consecutive_failures;

-- The full-text triggers take upstream's names (`fts_triggers.sql`).
DROP TRIGGER skills_fts_insert;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_update;

-- `repo_url` becomes unique, as upstream declares it (`schema.rs` settles
-- duplicates first); `idx_skills_repo_url` is created again, unique.
DROP INDEX IF EXISTS idx_skills_repo_url;
DELETE FROM deferred_index WHERE name = 'idx_skills_repo_url';
