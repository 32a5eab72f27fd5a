-- v5: an initial sync may defer full-text indexing and rebuild the index once
-- at its end. Indexing row by row costs far more than one `rebuild` (100,000
-- rows in one transaction here: 7.2 s against 5.2 s; docs/PERFORMANCE.md).
--
-- While `sync_state.fts_deferred` is 1 the triggers below do nothing. The
-- store sets it when a run begins on a catalogue without registry rows, and
-- clears it in the transaction that rebuilds the index and closes the run. A
-- process killed in between leaves it set; the next run keeps deferring and
-- rebuilds at its end, so the index is never left behind for good.
ALTER TABLE sync_state ADD COLUMN fts_deferred INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER skills_fts_insert;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_update;

CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills
WHEN (SELECT fts_deferred FROM sync_state WHERE id = 1) IS NOT 1
BEGIN
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills
WHEN (SELECT fts_deferred FROM sync_state WHERE id = 1) IS NOT 1
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
END;

CREATE TRIGGER skills_fts_update AFTER UPDATE OF name, description, tags, author ON skills
WHEN (SELECT fts_deferred FROM sync_state WHERE id = 1) IS NOT 1
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

-- Every sync counts its registry rows (`store.read-state`) and a first sync
-- is recognised by having none: without this index both scan the whole
-- table, about 100 ms of a 100,000-skill no-op sync.
CREATE INDEX idx_skills_source ON skills(source);
