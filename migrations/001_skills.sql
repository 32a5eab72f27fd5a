-- v1: the local skill catalogue, with the upstream column names.
CREATE TABLE skills (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    description    TEXT,
    author         TEXT,
    -- Upstream declares repo_url UNIQUE. The registry is the authority on
    -- uniqueness; a UNIQUE here would make one page fail when a repository
    -- moves from one skill to another across pages, so it is only indexed.
    repo_url       TEXT,
    quality_score  REAL CHECK (quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)),
    trust_tier     TEXT NOT NULL DEFAULT 'unknown',
    tags           TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
    categories     TEXT NOT NULL DEFAULT '[]',      -- JSON array of strings
    stars          INTEGER,
    content_hash   TEXT,
    license        TEXT,
    security_score REAL,
    installable    INTEGER,
    quarantined    INTEGER,
    source         TEXT NOT NULL DEFAULT 'registry' CHECK (source IN ('registry', 'local')),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX idx_skills_repo_url ON skills(repo_url);
CREATE INDEX idx_skills_trust_tier ON skills(trust_tier);
CREATE INDEX idx_skills_author_name ON skills(author, name);
