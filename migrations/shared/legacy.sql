-- Converts a catalogue of this project's schema v9 (PRAGMA user_version,
-- migrations 001-009) to the shared layout, in two halves around
-- `sync_tables.sql` and `layout.sql`, which create the new tables. These
-- files are this project's own, so they may be rebuilt.

-- Before: the tables that change shape step aside.
ALTER TABLE sync_history RENAME TO sync_history_v9;
DROP INDEX IF EXISTS idx_sync_history_started;

-- The full-text triggers take upstream's names (`fts_triggers.sql`).
DROP TRIGGER skills_fts_insert;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_update;

-- `repo_url` becomes unique, as upstream declares it: `schema.rs` settles
-- duplicates and builds `idx_skills_repo_url` again, unique. A first sync
-- killed while it had set the index aside builds the unique one at its end.
DROP INDEX IF EXISTS idx_skills_repo_url;
UPDATE deferred_index SET sql = 'CREATE UNIQUE INDEX idx_skills_repo_url ON skills(repo_url)'
WHERE name = 'idx_skills_repo_url';
-- `source` said whose a row is; `sync_origin` says it now (`row_policy.rs`).
DROP INDEX IF EXISTS idx_skills_source;
