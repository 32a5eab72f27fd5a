-- The `store` imports of the sync component as named SQL statements, for
-- hosts without the Rust catalogue (`host-python/`, `host-node/`). Each
-- statement means what the Rust store's does (`catalogue/src/store.rs`,
-- `row_policy.rs`, `lock.rs`, `db.rs`, `schema.rs`), so that these hosts and
-- `skillsmith` can take turns on one catalogue file.
--
-- FORMAT
--   A block starts with a line `-- name: NAME` and holds exactly one SQL
--   statement, up to the next `-- name:` line or the end of the file. Lines
--   before the first block (this header) belong to no statement. Comment
--   lines inside a block are part of its text (SQLite ignores them); the
--   trailing `;` may be kept or stripped. Names are stable: a statement that
--   changes meaning gets a new name.
--
--   Parameters are named, `:name`. Python's `sqlite3` binds them from a
--   dict, Node's better-sqlite3 from an object (keys without the colon);
--   pass every parameter a statement names. Booleans are bound as 0/1 and
--   times as given below (better-sqlite3 refuses JS booleans). Result
--   columns have plain aliases, so better-sqlite3's `.get()`/`.all()`
--   objects and Python's `sqlite3.Row` read them by name.
--
-- LOADING
--   Python:  split on lines matching `^-- name: (\S+)\s*$`; each block's text
--            is the statement (`host-python/skillsmith_host/store.py`).
--   Node:    the same split; `db.prepare(text)` on first use (not all up
--            front: skill_version_* name `skill_versions`, which only a later
--            upstream schema has, and preparing them on a file without it fails).
--
-- HOW THE HOST USES THEM (what the Rust store does, and must be done alike)
--   * Connection: `PRAGMA journal_mode = WAL`, `PRAGMA synchronous = NORMAL`,
--     `PRAGMA foreign_keys = ON` (upstream's `skill_categories` relies on
--     ON DELETE CASCADE: without it skill_delete leaves orphan links), a
--     busy timeout of 5 s (`PRAGMA busy_timeout = 5000`). Every write is
--     in `BEGIN IMMEDIATE` .. `COMMIT` (a deferred transaction that later
--     writes can fail with SQLITE_BUSY at once in WAL mode).
--   * Schema: the file is `migrations/shared/catalogue.sql` applied to an
--     empty file, or a file already in that layout (user_version 10). Any
--     other file is refused untouched.
--   * Times: host times are RFC 3339 UTC with milliseconds and `Z`
--     (`2026-11-20T10:00:00.123Z`, `clock.rs` `format_ms`); `sync_lease`
--     `expires_at` is Unix milliseconds. `SKILLSMITH_CLOCK_OFFSET_MS`, when
--     an integer, is added to the host clock (a testing knob).
--   * Lists (`tags`, `categories`, `unfilterable_tiers`) are JSON arrays of
--     strings as text, compact (`["a","b"]`); a column that does not parse
--     as one reads as empty.
--   * Whose a row is (`sync_origin`): 'registry' rows are the sync's; NULL
--     rows (another tool wrote them) are claimed by the first upsert that
--     lists them; 'local' rows are never changed or removed. `source` in
--     `local-versions` is `local` for 'local', else `registry`.
--   * Tiers: `trust_tier` holds a tier the file's CHECK accepts; any other
--     tier is stored as 'unknown' with the real one in `registry_tier` (else
--     `registry_tier` is NULL). Reads prefer `registry_tier`. The list is
--     the file's own, read once per run from skills_declaration: the first
--     `trust_tier IN ('a', 'b', ...)` in it, parsed as `schema.rs`
--     `tier_check` parses it (the name and `in` in any case, a quote,
--     backtick or bracket after the name skipped, `''` inside a literal;
--     anything else means no list). With no list, upstream 0.4.3's four:
--     'verified', 'community', 'experimental', 'unknown' (catalogue.sql's).
--     A file upstream's schema 17 created, adopted by `skillsmith`, accepts
--     six.
--
-- begin-run (one IMMEDIATE transaction; not in a dry run):
--   1. lease_current; if a row comes back and its holder is not known to be
--      dead, refuse with `store-error.run-open` naming its pid and
--      acquired_at. The holder text is `pid <pid> on <hostname> #<16 hex>`;
--      a holder is dead when its hostname is this machine's, its pid is
--      not this process's, and no such process exists (kill(pid, 0) ->
--      ESRCH). Anything uncertain counts as alive; it expires in 60 s.
--   2. lease_take (expires_at = now + 60000), then runs_close_interrupted.
--   3. run_find_open; a row means another run is open: `run-open`.
--   4. Unless sync_state_fts_deferred says 1: fts_averages and
--      fts_docsize_count; the row count is the varint at the start of the
--      averages block (SQLite varint: big-endian, 7 bits a byte, high bit
--      set on all but the last, the ninth byte whole). If it differs from
--      the docsize count, fts_rebuild (upstream's open doubles the index).
--   5. If skills_has_source_column: skills_mark_upstream_local.
--   6. history_insert (id `sync-<host time>-<8 hex>`), then run_insert;
--      the run's handle, returned to the guest, is the history row's rowid.
--   7. Read the row policy once per run: skills_repo_url_is_unique,
--      skills_has_versions_table.
--   The Rust store also starts a full-text indexing deferral on a first sync
--   (`store.rs` begin_deferral); that is an optimisation these hosts may
--   skip. A deferral another process left (sync_state.fts_deferred = 1)
--   must still be ended by finish-run, as below.
--
-- apply-page (one IMMEDIATE transaction; on any error ROLLBACK):
--   Before the transaction: the run must be the open one, no upsert may have
--   an empty id (`invalid`). Then:
--   1. each removal: skill_delete.
--   2. each upsert, in order:
--      a. tier and registry_tier as above; tags and categories as JSON.
--      b. repository: no repo-url -> repo_url NULL, registry_repo_url NULL.
--         If the policy says repo_url is not unique (a deferral set the index
--         aside): repo_url = the url, registry_repo_url NULL. Otherwise
--         skill_repo_move_losers (:local = 0), then skill_repo_held: held ->
--         repo_url NULL, registry_repo_url = the url; free -> repo_url = the
--         url, registry_repo_url NULL.
--      c. skill_insert; if it changed no row, skill_update_plain; if that
--         changed no row the id is a local row: leave it. Else
--         skill_update_text, then skill_update_keys (they write only what
--         changed, which keeps the full-text index and the indexes still).
--      d. if the file has skill_versions (a later upstream's table):
--         skill_version_record with the SHA-256 hex of the JSON
--         `{"id":..,"name":..,"description":..,"updated_at":..}` exactly as
--         JavaScript's JSON.stringify writes it, recorded_at = now in whole
--         seconds; then skill_version_trim.
--      A CHECK failure (quality_score outside 0..1) is SQLITE_CONSTRAINT:
--      `invalid`, and the whole page rolls back.
--   3. checkpoint_write.
--   4. lease_renew; 0 rows changed means the lease was lost: ROLLBACK and
--      answer `store-error.busy`.
--   5. After COMMIT: when the `-wal` file is larger than half the database
--      file (and at least 4 MiB), `PRAGMA wal_checkpoint(TRUNCATE)` with a
--      zero busy timeout (`store.rs` bound_wal: a sync then needs at most
--      about 1.5 times the catalogue's size on disk; readers in the way
--      make it do nothing, and the next page tries again).
--   Between pages (waiting for the registry, sleeping), renew the lease at
--   least every 15 s with lease_renew in a transaction of its own.
--
-- finish-run (one IMMEDIATE transaction):
--   1. history_close (0 rows: `invalid`, the run is not open) and run_close.
--      error_message: NULL on success, else the outcome's error, else
--      "the sync ended as <status>".
--   2. End a deferral, if deferred_index_list has rows or
--      sync_state_fts_deferred says 1 (`store.rs` end_deferral):
--      - if deferred_index_list has rows: skills_repo_urls_shared, and when
--        it says 1, skills_repo_urls_settle;
--      - for each (name, sql) of deferred_index_list: if index_exists says
--        0, execute its `sql` as stored (the index's own CREATE INDEX);
--      - deferred_index_clear;
--      - if deferred: sync_state_fts_indexed_upto; a number -> fts_index_rows
--        with :above = it and :upto = 9223372036854775807; NULL ->
--        fts_rebuild; then sync_state_end_deferral.
--   3. skills_give_back_repos.
--   4. config_ensure_row; config_read; then in code, with `stopped` = the
--      outcome's failure kind is cancelled, busy or superseded:
--        not stopped -> last_attempt_at = now;
--        success -> last_success_at = now, consecutive_failures = 0,
--          last_sync_at = the outcome's when given, last_sync_count =
--          added + updated, last_sync_error = NULL;
--        stopped -> last_sync_error = error;
--        else -> consecutive_failures + 1, last_sync_error = error.
--      next_sync_at = the component's own `schedule.decide` (config as
--      schedule-config: enabled, interval_ms, last_attempt/success as Unix
--      ms, consecutive_failures; now; one jitter seed per process) ->
--      `next-ms` formatted as a host time, or NULL.
--      config_write and schedule_write.
--   5. After COMMIT: lease_release; `PRAGMA wal_checkpoint(TRUNCATE)` with a
--      zero busy timeout (gives the WAL's space back; skip if busy).
--
-- A trap (the guest never called finish-run): ROLLBACK any open
-- transaction, then finish-run the open run yourself with status `partial`
-- (a page was applied) or `failed`, zero counts, the trap's message and
-- failure kind `component`; then lease_release. If that finish-run fails
-- too (the file is locked, the disk full), leave the run `running` and
-- report the sync's own error: the next lease holder closes it
-- (runs_close_interrupted).

-- name: skills_declaration
-- The `skills` table's CREATE statement, for the tier list of its CHECK.
SELECT sql AS sql FROM sqlite_schema WHERE type = 'table' AND name = 'skills';

-- name: state_last_sync_at
SELECT last_sync_at AS last_sync_at FROM sync_config WHERE id = 'default';

-- name: state_checkpoint
SELECT mode AS mode, cursor AS cursor, etag AS etag, resync_pending AS resync_pending
FROM sync_state WHERE id = 1;

-- name: state_registry_skills
SELECT count(*) AS n FROM skills WHERE sync_origin = 'registry';

-- name: skills_local_versions
-- :ids is a JSON array of strings; `pos` is each id's 0-based index in it.
-- Ids not stored return no row.
SELECT CAST(j.key AS INTEGER) AS pos, s.updated_at AS updated_at, s.sync_origin AS sync_origin
FROM json_each(:ids) AS j JOIN skills AS s ON s.id = j.value;

-- name: skills_registry_ids_first
-- Byte order of the UTF-8 encoding is SQLite's BINARY collation. The `+`
-- keeps SQLite from choosing idx_skills_origin (every row matches) and
-- sorting the whole table.
SELECT id AS id FROM skills WHERE +sync_origin = 'registry' ORDER BY id LIMIT :limit;

-- name: skills_registry_ids_after
SELECT id AS id FROM skills WHERE +sync_origin = 'registry' AND id > :after ORDER BY id LIMIT :limit;

-- name: skills_registry_row
-- `categories` is JSON text; one that does not parse reads as no categories.
SELECT coalesce(registry_tier, trust_tier, 'unknown') AS tier,
       quality_score IS NOT NULL AS scored,
       categories AS categories
FROM skills WHERE id = :id AND sync_origin = 'registry';

-- name: lease_current
-- :now_ms is Unix ms.
SELECT holder AS holder, pid AS pid, acquired_at AS acquired_at, expires_at AS expires_at
FROM sync_lease WHERE id = 1 AND expires_at > :now_ms;

-- name: lease_take
INSERT INTO sync_lease (id, holder, pid, acquired_at, expires_at)
VALUES (1, :holder, :pid, :acquired_at, :expires_at)
ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, pid = excluded.pid,
    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at;

-- name: lease_renew
-- :expires_at = now + 60000 (Unix ms). 0 rows changed: the lease is lost.
UPDATE sync_lease SET expires_at = :expires_at WHERE id = 1 AND holder = :holder;

-- name: lease_release
DELETE FROM sync_lease WHERE id = 1 AND holder = :holder;

-- name: runs_close_interrupted
-- Runs of this project (they have a sync_run row) left `running` by a
-- holder that is gone. :message is lock.rs INTERRUPTED_MESSAGE:
-- "interrupted: the process running this sync stopped before it finished
-- (killed or crashed); the next sync resumes from the last committed page"
UPDATE sync_history SET status = 'failed', completed_at = :now, error_message = :message
WHERE status = 'running' AND id IN (SELECT history_id FROM sync_run);

-- name: run_find_open
SELECT h.id AS id, r.pid AS pid, h.started_at AS started_at
FROM sync_history h JOIN sync_run r ON r.history_id = h.id
WHERE h.status = 'running' LIMIT 1;

-- name: history_insert
INSERT INTO sync_history (id, started_at, status) VALUES (:id, :started_at, 'running');

-- name: run_insert
-- :mode is 'changes-feed' or 'search'; :pid this process's id.
INSERT INTO sync_run (history_id, mode, pid) VALUES (:history_id, :mode, :pid);

-- name: fts_averages
-- One blob (or no row); its leading varint is the index's row count.
SELECT block AS block FROM skills_fts_data WHERE id = 1;

-- name: fts_docsize_count
SELECT count(*) AS n FROM skills_fts_docsize;

-- name: fts_rebuild
INSERT INTO skills_fts(skills_fts) VALUES ('rebuild');

-- name: fts_index_rows
-- Indexes for search the rows with rowid in (:above, :upto], which a
-- deferral left out of the index.
INSERT INTO skills_fts(rowid, name, description, tags, author)
SELECT rowid, name, description, tags, author FROM skills WHERE rowid > :above AND rowid <= :upto;

-- name: skills_has_source_column
SELECT EXISTS (SELECT 1 FROM pragma_table_info('skills') WHERE name = 'source') AS yes;

-- name: skills_mark_upstream_local
-- Only where skills_has_source_column says 1 (upstream's migration 16).
UPDATE skills SET sync_origin = 'local' WHERE source = 'local' AND sync_origin IS NOT 'local';

-- name: skills_repo_url_is_unique
SELECT EXISTS (SELECT 1 FROM pragma_index_list('skills') AS l
    WHERE l."unique"
        AND (SELECT group_concat(name) FROM pragma_index_info(l.name)) = 'repo_url') AS yes;

-- name: skills_has_versions_table
SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'skill_versions') AS yes;

-- name: sync_state_fts_deferred
SELECT coalesce((SELECT fts_deferred = 1 FROM sync_state WHERE id = 1), 0) AS yes;

-- name: sync_state_fts_indexed_upto
SELECT fts_indexed_upto AS upto FROM sync_state WHERE id = 1 AND fts_deferred = 1;

-- name: sync_state_end_deferral
UPDATE sync_state SET fts_deferred = 0, fts_indexed_upto = NULL WHERE id = 1;

-- name: deferred_index_list
SELECT name AS name, sql AS sql FROM deferred_index ORDER BY name;

-- name: deferred_index_clear
DELETE FROM deferred_index;

-- name: index_exists
SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = :name) AS yes;

-- name: skill_delete
DELETE FROM skills WHERE id = :id AND sync_origin = 'registry';

-- name: skill_repo_move_losers
-- Moves aside the rows whose claim to :repo_url loses to skill :id's (updated
-- :updated_at): a row no sync has listed (NULL), or an older registry row
-- (then the larger id). Local rows keep theirs; :local is 0 for a sync.
-- Timestamps compare as times (upstream writes `YYYY-MM-DD HH:MM:SS`).
UPDATE skills SET registry_repo_url = repo_url, repo_url = NULL
WHERE repo_url = :repo_url AND id IS NOT :id AND sync_origin IS NOT 'local'
    AND (:local OR sync_origin IS NULL
        OR julianday(updated_at) < julianday(:updated_at)
        OR (julianday(updated_at) = julianday(:updated_at) AND id > :id))
    -- A registry skill whose id a local row holds is not stored.
    AND (:local OR NOT EXISTS (SELECT 1 FROM skills WHERE id = :id
        AND sync_origin IS 'local'));

-- name: skill_repo_held
SELECT EXISTS (SELECT 1 FROM skills WHERE repo_url = :repo_url AND id IS NOT :id) AS yes;

-- name: skill_insert
-- A skill not yet stored; an existing id is left to the updates below.
-- :repo_url / :registry_repo_url and :trust_tier / :registry_tier as the
-- row policy decided. :installable and :quarantined are 0, 1 or NULL.
INSERT INTO skills (id, name, description, author, repo_url,
        quality_score, trust_tier, tags, categories, stars, content_hash, license,
        security_score, installable, quarantined, sync_origin, created_at, updated_at,
        registry_tier, registry_repo_url)
VALUES (:id, :name, :description, :author, :repo_url, :quality_score, :trust_tier, :tags,
        :categories, :stars, :content_hash, :license, :security_score, :installable,
        :quarantined, 'registry', :created_at, :updated_at, :registry_tier, :registry_repo_url)
ON CONFLICT(id) DO NOTHING;

-- name: skill_update_plain
-- The columns neither indexed nor searched: always written. Claims a row
-- another tool wrote (sync_origin NULL). 0 rows changed: a local row.
UPDATE skills SET quality_score = :quality_score, categories = :categories,
    stars = :stars, content_hash = :content_hash, license = :license,
    security_score = :security_score, installable = :installable,
    quarantined = :quarantined, created_at = :created_at, updated_at = :updated_at,
    sync_origin = 'registry'
WHERE id = :id AND sync_origin IS NOT 'local';

-- name: skill_update_text
-- Searched, not indexed: written (and re-indexed by the trigger) only when
-- changed.
UPDATE skills SET description = :description, tags = :tags
WHERE id = :id AND sync_origin = 'registry'
    AND (description IS NOT :description OR tags IS NOT :tags);

-- name: skill_update_keys
-- The indexed columns: written only when changed, which is rare.
UPDATE skills SET name = :name, author = :author, repo_url = :repo_url,
    trust_tier = :trust_tier, registry_tier = :registry_tier,
    registry_repo_url = :registry_repo_url
WHERE id = :id AND sync_origin = 'registry'
    AND (name IS NOT :name OR author IS NOT :author OR repo_url IS NOT :repo_url
        OR trust_tier IS NOT :trust_tier OR registry_tier IS NOT :registry_tier
        OR registry_repo_url IS NOT :registry_repo_url);

-- name: skill_version_record
-- Only where skills_has_versions_table says 1. :recorded_at in Unix seconds.
INSERT OR IGNORE INTO skill_versions (skill_id, content_hash, recorded_at)
VALUES (:skill_id, :content_hash, :recorded_at);

-- name: skill_version_trim
-- Keeps the newest 50 versions of a skill (upstream's SkillVersionRepository).
DELETE FROM skill_versions WHERE skill_id = :skill_id AND id NOT IN (
    SELECT id FROM skill_versions WHERE skill_id = :skill_id
    ORDER BY recorded_at DESC, id DESC LIMIT 50);

-- name: checkpoint_write
-- :mode, :cursor, :etag exactly as the guest gave them (opaque);
-- :resync_pending 0/1; :updated_at the host time.
INSERT INTO sync_state (id, mode, cursor, etag, resync_pending, updated_at)
VALUES (1, :mode, :cursor, :etag, :resync_pending, :updated_at)
ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, cursor = excluded.cursor,
    etag = excluded.etag, resync_pending = excluded.resync_pending,
    updated_at = excluded.updated_at;

-- name: history_close
-- :run is the run's handle (the history rowid); :duration_ms = now minus
-- the run's start, at least 0. 0 rows changed: not open (`invalid`).
UPDATE sync_history SET completed_at = :completed_at, status = :status,
    skills_added = :added, skills_updated = :updated, skills_unchanged = :unchanged,
    error_message = :error, duration_ms = :duration_ms
WHERE rowid = :run AND status = 'running';

-- name: run_close
-- :registry_total, :skills_reached, :unfilterable_tiers (JSON) from the
-- outcome's coverage, NULL without one; :failure_kind the failure-kind's
-- WIT name (`not-a-registry`) or NULL.
UPDATE sync_run SET skills_removed = :removed, skills_skipped = :skipped,
    registry_total = :registry_total, skills_reached = :skills_reached,
    unfilterable_tiers = :unfilterable_tiers, failure_kind = :failure_kind
WHERE history_id = (SELECT id FROM sync_history WHERE rowid = :run);

-- name: skills_repo_urls_shared
SELECT EXISTS (SELECT 1 FROM skills WHERE repo_url IS NOT NULL
    GROUP BY repo_url HAVING count(*) > 1) AS yes;

-- name: skills_repo_urls_settle
-- Per repository, a row that is not the registry's keeps it, then the most
-- recently updated, then the smallest id; the others move it aside.
UPDATE skills SET registry_repo_url = repo_url, repo_url = NULL
WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, row_number() OVER (
            PARTITION BY repo_url
            ORDER BY sync_origin IS 'registry', julianday(updated_at) DESC, id
        ) AS n
        FROM skills WHERE repo_url IS NOT NULL)
    WHERE n > 1);

-- name: skills_give_back_repos
-- Gives each repository no row holds any more back to one row waiting for it.
UPDATE skills SET repo_url = registry_repo_url, registry_repo_url = NULL
WHERE rowid IN (
    SELECT rowid FROM (
        SELECT rowid, registry_repo_url AS repo, row_number() OVER (
            PARTITION BY registry_repo_url
            ORDER BY sync_origin IS 'registry', julianday(updated_at) DESC, id
        ) AS n
        FROM skills WHERE registry_repo_url IS NOT NULL)
    WHERE n = 1 AND NOT EXISTS (SELECT 1 FROM skills AS o WHERE o.repo_url = repo));

-- name: config_ensure_row
INSERT OR IGNORE INTO sync_config (id) VALUES ('default');

-- name: config_read
-- A NULL or unknown frequency reads as 'daily'; an interval_ms that is NULL
-- or not positive as the frequency's (86400000 daily, 604800000 weekly);
-- NULL enabled as 1; NULL counts as 0.
SELECT c.enabled AS enabled, c.frequency AS frequency, c.interval_ms AS interval_ms,
       c.last_sync_at AS last_sync_at, c.next_sync_at AS next_sync_at,
       c.last_sync_count AS last_sync_count, c.last_sync_error AS last_sync_error,
       s.last_attempt_at AS last_attempt_at, s.last_success_at AS last_success_at,
       s.consecutive_failures AS consecutive_failures
FROM sync_config c LEFT JOIN sync_schedule s ON s.id = 1
WHERE c.id = 'default';

-- name: config_write
UPDATE sync_config SET last_sync_at = :last_sync_at, last_sync_count = :last_sync_count,
    last_sync_error = :last_sync_error, next_sync_at = :next_sync_at, updated_at = :updated_at
WHERE id = 'default';

-- name: schedule_write
INSERT INTO sync_schedule (id, last_attempt_at, last_success_at, consecutive_failures)
VALUES (1, :last_attempt_at, :last_success_at, :consecutive_failures)
ON CONFLICT(id) DO UPDATE SET last_attempt_at = excluded.last_attempt_at,
    last_success_at = excluded.last_success_at,
    consecutive_failures = excluded.consecutive_failures;
