-- The triggers that keep `skills_fts` current, under upstream's names, so
-- that upstream's `CREATE TRIGGER IF NOT EXISTS skills_ai ..` never adds a
-- second set. Created only where none of the three exists; a catalogue that
-- has upstream's own keeps them (and then indexes every row as it is
-- written: no first-sync deferral).
--
-- While `sync_state.fts_deferred` is 1 (a first sync), the index holds
-- exactly the rows whose rowid is at most `fts_indexed_upto`: these
-- triggers keep those rows current and leave every row above it to the
-- store's catch-up (`Store::index_backlog`). Outside a deferral they do what
-- upstream's do. A deferral with `fts_indexed_upto` NULL is ended by a full
-- rebuild.
CREATE TRIGGER skills_ai AFTER INSERT ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(new.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE TRIGGER skills_ad AFTER DELETE ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
END;

-- Only the indexed columns matter: an update that leaves them alone (stars,
-- scores, timestamps) does not touch the index.
CREATE TRIGGER skills_au AFTER UPDATE OF name, description, tags, author ON skills
WHEN (SELECT fts_deferred IS NOT 1 OR coalesce(old.rowid <= fts_indexed_upto, 0)
      FROM sync_state WHERE id = 1) IS NOT 0
BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;
