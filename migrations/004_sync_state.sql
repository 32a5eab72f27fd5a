-- v4: what this implementation adds to ADR-018's tables: resumable
-- checkpoints, removal counts, scheduling facts on the host clock, and the
-- cross-process sync lease.
ALTER TABLE sync_history ADD COLUMN skills_removed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_history ADD COLUMN skills_skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_history ADD COLUMN mode TEXT;          -- 'changes-feed' | 'search'
ALTER TABLE sync_history ADD COLUMN pid INTEGER;        -- process that opened the run

ALTER TABLE sync_config ADD COLUMN last_attempt_at TEXT;          -- host time the last attempt ended
ALTER TABLE sync_config ADD COLUMN last_success_at TEXT;          -- host time the last success ended
ALTER TABLE sync_config ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;

-- One row: the checkpoint written in the same transaction as each page.
CREATE TABLE sync_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    mode           TEXT,
    cursor         TEXT,
    etag           TEXT,
    resync_pending INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT
);
INSERT INTO sync_state (id) VALUES (1);

-- One row while a sync runs: taken in an IMMEDIATE transaction, released at
-- the end, and ignored once expired so that a crashed holder blocks no one.
CREATE TABLE sync_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    expires_at  INTEGER NOT NULL          -- Unix ms
);
