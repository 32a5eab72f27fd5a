-- v3: ADR-018's sync tables, with the upstream column names.
CREATE TABLE sync_config (
    id              TEXT PRIMARY KEY NOT NULL DEFAULT 'default' CHECK (id = 'default'),
    enabled         INTEGER NOT NULL DEFAULT 1,
    frequency       TEXT NOT NULL DEFAULT 'daily' CHECK (frequency IN ('daily', 'weekly')),
    interval_ms     INTEGER NOT NULL DEFAULT 86400000,
    last_sync_at    TEXT,   -- registry time of the last fully successful sync
    next_sync_at    TEXT,   -- host time the next background sync is due
    last_sync_count INTEGER NOT NULL DEFAULT 0,
    last_sync_error TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO sync_config (id) VALUES ('default');

CREATE TABLE sync_history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at       TEXT NOT NULL,
    completed_at     TEXT,
    status           TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'partial')),
    skills_added     INTEGER NOT NULL DEFAULT 0,
    skills_updated   INTEGER NOT NULL DEFAULT 0,
    skills_unchanged INTEGER NOT NULL DEFAULT 0,
    error_message    TEXT,
    duration_ms      INTEGER,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_sync_history_started ON sync_history(started_at);
