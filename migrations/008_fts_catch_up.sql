-- v8: a first sync indexes its rows for search while it waits for the
-- registry, instead of all at once at its end.
--
-- Migration 005 turned the full-text triggers off for a whole first sync and
-- rebuilt the index in the transaction that ends it. That rebuild ran after
-- the last page arrived, with nothing to overlap it. Now the store indexes
-- the rows it has written so far in small transactions whenever it is idle
-- between pages (`Store::index_backlog`), and the end of the sync indexes
-- only what is left (docs/PERFORMANCE.md).
--
-- The invariant, while `fts_deferred` is 1: the index holds exactly the rows
-- whose rowid is at most `fts_indexed_upto`, with their current values. So
-- the triggers keep those rows current (including a new row that reuses a
-- rowid at or below it), and leave every row above it to the catch-up. A
-- deferral with `fts_indexed_upto` NULL (one a killed older binary left) is
-- ended by a full rebuild, as before.
ALTER TABLE sync_state ADD COLUMN fts_indexed_upto INTEGER;

DROP TRIGGER skills_fts_insert;
DROP TRIGGER skills_fts_delete;
DROP TRIGGER skills_fts_update;

CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(new.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
END;

CREATE TRIGGER skills_fts_update AFTER UPDATE OF name, description, tags, author ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;
