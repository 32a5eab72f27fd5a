-- v7: let the full-text index hold up to 64 segments on a level before a
-- "crisis" merge of all of them (FTS5's default is 16).
--
-- The `rebuild` that ends a first sync (migration 005) leaves more than 16
-- segments on one level, so the first write after it, a daily sync of a few
-- changed skills, paid for merging the whole index: 1,000 updated skills
-- took 0.26 to 0.37 s against 0.195 s with this setting, measured on a
-- synced 100,000-skill catalogue (docs/PERFORMANCE.md). FTS5's incremental
-- `automerge` (4) still merges small segments as writes come.
INSERT INTO skills_fts(skills_fts, rank) VALUES ('crisismerge', 64);
