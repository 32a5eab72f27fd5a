-- Full-text search over the catalogue, exactly as upstream declares it, so
-- that one index serves both clients. Created only where missing.
CREATE VIRTUAL TABLE IF NOT EXISTS skills_fts USING fts5(
    name, description, tags, author,
    content = 'skills',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61'
);
-- Up to 64 segments on a level before a "crisis" merge of all of them
-- (FTS5's default is 16): the catch-up of a first sync leaves many, and the
-- first small write after it would otherwise merge the whole index
-- (docs/PERFORMANCE.md).
INSERT INTO skills_fts(skills_fts, rank) VALUES ('crisismerge', 64);
INSERT INTO skills_fts(skills_fts) VALUES ('rebuild');
