-- v2: full-text search over the catalogue (external content, kept by triggers).
CREATE VIRTUAL TABLE skills_fts USING fts5(
    name, description, tags, author,
    content = 'skills',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER skills_fts_insert AFTER INSERT ON skills BEGIN
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;

CREATE TRIGGER skills_fts_delete AFTER DELETE ON skills BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
END;

-- Only the indexed columns matter: an update that leaves them alone (stars,
-- scores, timestamps) does not touch the index.
CREATE TRIGGER skills_fts_update AFTER UPDATE OF name, description, tags, author ON skills BEGIN
    INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
    VALUES ('delete', old.rowid, old.name, old.description, old.tags, old.author);
    INSERT INTO skills_fts(rowid, name, description, tags, author)
    VALUES (new.rowid, new.name, new.description, new.tags, new.author);
END;
