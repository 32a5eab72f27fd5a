-- v6: a first sync also builds the secondary indexes of `skills` once, at its
-- end, instead of row by row. Inserting 100,000 rows into random places of
-- four B-trees costs about 2.7 s here; building them afterwards about 0.3 s
-- (docs/PERFORMANCE.md).
--
-- When a run begins with `sync_state.fts_deferred` set (migration 005), the
-- store copies the definition of every named index on `skills` here and drops
-- it, in one transaction; the transaction that ends the deferral runs each
-- stored definition again and empties this table. A process killed in between
-- leaves the rows here, and the next run that ends the deferral restores
-- them, exactly as they were. The primary key's index is never dropped.
--
-- A later migration that changes an index on `skills` must first restore the
-- definitions held here, or it may find its index missing.
CREATE TABLE deferred_index (
    name TEXT PRIMARY KEY NOT NULL,
    sql  TEXT NOT NULL
);
