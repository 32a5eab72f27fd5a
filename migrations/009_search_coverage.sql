-- v9: why a run failed, as one kind, and how much of the registry a
-- search-mode run reached. The search API
-- lists only what its filters match, so a run records the registry's own
-- count (`/stats`), the distinct skills its listings reached, and the trust
-- tiers the API refused as filters; the difference is what no listing could
-- reach. All NULL for feed runs, and registry_total NULL when the registry
-- gave no count.
ALTER TABLE sync_history ADD COLUMN registry_total INTEGER;
ALTER TABLE sync_history ADD COLUMN skills_reached INTEGER;
ALTER TABLE sync_history ADD COLUMN unfilterable_tiers TEXT;  -- JSON array of strings
ALTER TABLE sync_history ADD COLUMN failure_kind TEXT;       -- FailureKind::as_str, for partial and failed runs
