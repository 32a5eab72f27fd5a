-- Converts a catalogue of this project's schema v9, second half (see
-- `legacy.sql`): the rows move into the shared layout's tables.

-- ADR-018's history with upstream's text ids, in id order so that the rowids
-- keep the runs' order; this project's columns move to `sync_run`.
INSERT INTO sync_history (id, started_at, completed_at, status, skills_added,
        skills_updated, skills_unchanged, error_message, duration_ms, created_at)
    SELECT CAST(id AS TEXT), started_at, completed_at, status, skills_added,
        skills_updated, skills_unchanged, error_message, duration_ms, created_at
    FROM sync_history_v9 ORDER BY id;
INSERT INTO sync_run (history_id, mode, pid, skills_removed, skills_skipped,
        registry_total, skills_reached, unfilterable_tiers, failure_kind)
    SELECT CAST(id AS TEXT), mode, pid, skills_removed, skills_skipped,
        registry_total, skills_reached, unfilterable_tiers, failure_kind
    FROM sync_history_v9;
DROP TABLE sync_history_v9;

-- Scheduling facts move from `sync_config` to `sync_schedule`.
INSERT OR REPLACE INTO sync_schedule (id, last_attempt_at, last_success_at, consecutive_failures)
    SELECT 1, last_attempt_at, last_success_at, consecutive_failures
    FROM sync_config WHERE id = 'default';
ALTER TABLE sync_config DROP COLUMN last_attempt_at;
ALTER TABLE sync_config DROP COLUMN last_success_at;
ALTER TABLE sync_config DROP COLUMN consecutive_failures;

UPDATE skills SET sync_origin = source;
