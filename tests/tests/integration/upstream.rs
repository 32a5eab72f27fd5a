//! Catalogues shared with the upstream TypeScript tools: files at their
//! schemas 4 (`@skillsmith/core` 0.4.3) and 17, built from the documented
//! schemas (`tests/fixtures/`), adopted in place and synced to equality with
//! the registry; this project's own older files upgraded; files that are not
//! catalogues refused untouched.

use rusqlite::{Connection, params};
use skillsmith_testkit::{ServerConfig, TierMix};

use crate::harness::{Env, assert_same_catalogue};

const SCHEMA_4: &str = include_str!("../../fixtures/upstream-schema-4.sql");
const SCHEMA_17: &str = include_str!("../../fixtures/upstream-schema-17.sql");

/// Tiers in the OpenAPI enum (so that a search-mode sync reaches them all),
/// three of which upstream 0.4.3's CHECK refuses and two schema 17's.
const TIERS: &str = "official=1,verified=2,curated=1,community=3,unverified=1";

fn schema_17_env() -> Env {
    Env::with(ServerConfig {
        tier_mix: TierMix::parse(TIERS).unwrap(),
        ..ServerConfig::new(300, 7)
    })
}

/// Creates the catalogue file of `env` from an upstream schema.
fn create(env: &Env, schema: &str) -> Connection {
    let conn = Connection::open(&env.db).unwrap();
    conn.execute_batch(schema).unwrap();
    conn
}

/// The registry's skill of tier `tier`, first by id.
fn skill_of_tier(env: &Env, tier: &str) -> skillsmith_testkit::Skill {
    let mut all = env.registry.catalogue().skills().to_vec();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    all.into_iter()
        .find(|s| s.trust_tier.as_str() == tier && s.repo_url.is_some())
        .unwrap_or_else(|| panic!("no {tier} skill"))
}

fn fts_is_exact(env: &Env) {
    env.conn_rw()
        .execute(
            "INSERT INTO skills_fts(skills_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the search index matches the table");
}

#[test]
fn an_upstream_0_4_3_catalogue_is_adopted_in_place_and_synced_to_equality() {
    let env = Env::mixed(300, TIERS);
    let official = skill_of_tier(&env, "official");
    let community = skill_of_tier(&env, "community");
    let repo = official.repo_url.clone().unwrap();
    {
        let conn = create(&env, SCHEMA_4);
        // Rows upstream wrote, stamped with its own clock as it does: one
        // its sync brought, out of date; one the registry does not list
        // (its GitHub indexer's, say), which holds the repository the
        // registry gives `official`; and upstream's other tables.
        conn.execute(
            "INSERT INTO skills (id, name, repo_url, trust_tier, tags, created_at, updated_at)
             VALUES (?1, 'an old name', NULL, 'community', '[\"old\"]', datetime('now'),
                 datetime('now'))",
            [&community.id],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO skills (id, name, repo_url, trust_tier, created_at, updated_at)
             VALUES ('indexed-from-github', 'indexed', ?1, 'verified', datetime('now'),
                 datetime('now'))",
            [&repo],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO cache (key, value) VALUES ('search:git', '{}');
             INSERT INTO categories (id, name) VALUES ('c1', 'Development');",
        )
        .unwrap();
    }

    let report = env.sync(&[]);
    assert_eq!(report["status"], "success", "{report}");
    assert_same_catalogue(&env);
    fts_is_exact(&env);
    // Upstream's migration 16 rebuilds `skills` unless it finds `source`:
    // the adoption must not add it.
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM pragma_table_info('skills') WHERE name = 'source'"),
        0
    );
    // The row no listing showed is not the registry's to remove, even by a
    // full resync; it gave up the repository the registry says is
    // `official`'s, and keeps it where this project reads it.
    env.sync(&["--force"]);
    let (held, kept): (Option<String>, Option<String>) = env
        .conn()
        .query_row(
            "SELECT repo_url, registry_repo_url FROM skills WHERE id = 'indexed-from-github'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((held, kept.as_deref()), (None, Some(repo.as_str())));
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["other_skills"], 1, "{status}");

    // Upstream's version and other tables are as they were.
    assert_eq!(
        env.scalar::<i64>("SELECT max(version) FROM schema_version"),
        4
    );
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM cache"), 1);
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM categories"), 1);
    // The tier 0.4.3's CHECK refuses is stored as one it accepts, and read
    // as the registry's.
    let conn = env.conn();
    let (stored, kept, stored_repo): (String, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT trust_tier, registry_tier, repo_url FROM skills WHERE id = ?1",
            [&official.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (stored.as_str(), kept.as_deref()),
        ("unknown", Some("official"))
    );
    // The registry gave the repository to `official`.
    assert_eq!(stored_repo.as_deref(), Some(repo.as_str()));
    let got = env.run(&["get", &official.id, "--json"]).ok().json();
    assert_eq!(got["trust_tier"], "official", "{got}");
    let listed = env
        .run(&[
            "search",
            "",
            "--trust-tier",
            "official",
            "--limit",
            "1000",
            "--json",
        ])
        .ok()
        .json();
    let want = env
        .registry
        .catalogue()
        .skills()
        .iter()
        .filter(|s| s.trust_tier.as_str() == "official")
        .count();
    assert_eq!(listed.as_array().unwrap().len(), want);

    // Every upstream CHECK still holds, so upstream can write the file and
    // copy its rows into a table with its constraints.
    let conn = Connection::open(&env.db).unwrap();
    assert_eq!(
        conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "ok"
    );
    conn.execute(
        "UPDATE skills SET updated_at = updated_at, trust_tier = trust_tier",
        [],
    )
    .expect("every row passes upstream's CHECK constraints");

    // Upstream, on every open, adds every row to the search index again
    // (`INSERT OR IGNORE`, which FTS5 does not ignore). The next sync finds
    // the index counting twice and rebuilds it, with nothing else to do.
    conn.execute_batch(
        "INSERT OR IGNORE INTO skills_fts(rowid, name, description, tags, author)
         SELECT rowid, name, description, tags, author FROM skills",
    )
    .unwrap();
    drop(conn);
    let again = env.sync(&[]);
    assert_eq!(again["added"], 0, "{again}");
    assert_eq!(again["updated"], 0, "{again}");
    fts_is_exact(&env);
}

#[test]
fn an_upstream_schema_17_catalogue_keeps_its_local_rows_and_records_versions() {
    let env = schema_17_env();
    let official = skill_of_tier(&env, "official");
    let curated = skill_of_tier(&env, "curated");
    let claimed = skill_of_tier(&env, "verified");
    let repo = claimed.repo_url.clone().unwrap();
    let local_row = "SELECT id, name, repo_url, trust_tier, source, updated_at FROM skills
                     WHERE id = 'my-own-skill'";
    let before: Vec<String> = {
        let conn = create(&env, SCHEMA_17);
        // A local skill of the user's, holding a repository the registry
        // gives to one of its skills.
        conn.execute(
            "INSERT INTO skills (id, name, repo_url, trust_tier, source, created_at, updated_at)
             VALUES ('my-own-skill', 'mine', ?1, 'local', 'local', '2020-01-01 00:00:00',
                 '2020-01-01 00:00:00')",
            [&repo],
        )
        .unwrap();
        row_text(&conn, local_row)
    };

    let report = env.sync(&[]);
    assert_eq!(report["status"], "success", "{report}");
    assert_same_catalogue(&env);
    fts_is_exact(&env);
    let conn = env.conn();
    assert_eq!(
        row_text(&conn, local_row),
        before,
        "the local row is untouched"
    );
    assert_eq!(
        env.scalar::<i64>("SELECT max(version) FROM schema_version"),
        17
    );

    // Schema 17 allows `curated`, not `official`.
    let tier = |id: &str| -> (String, Option<String>) {
        conn.query_row(
            "SELECT trust_tier, registry_tier FROM skills WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(tier(&curated.id), ("curated".into(), None));
    assert_eq!(
        tier(&official.id),
        ("unknown".into(), Some("official".into()))
    );
    // The local row keeps the repository; the registry skill keeps it where
    // this project reads it.
    let (stored, kept): (Option<String>, Option<String>) = conn
        .query_row(
            "SELECT repo_url, registry_repo_url FROM skills WHERE id = ?1",
            [&claimed.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((stored, kept.as_deref()), (None, Some(repo.as_str())));
    let got = env.run(&["get", &claimed.id, "--json"]).ok().json();
    assert_eq!(got["repo_url"], repo.as_str(), "{got}");

    // One version per skill written, as upstream's sync records them.
    let versions = |env: &Env| env.scalar::<i64>("SELECT count(*) FROM skill_versions");
    assert_eq!(versions(&env), report["added"].as_i64().unwrap());
    let changed = env.registry.update(5);
    let second = env.sync(&[]);
    assert_eq!(second["updated"], 5, "{second}");
    assert_eq!(
        versions(&env),
        report["added"].as_i64().unwrap() + 5,
        "a version for each of {changed:?}"
    );
    let hashes: i64 = env.scalar(&format!(
        "SELECT count(DISTINCT content_hash) FROM skill_versions WHERE skill_id = '{}'",
        changed[0]
    ));
    assert_eq!(hashes, 2);
}

/// Each column of the first row of `sql`, as text.
fn row_text(conn: &Connection, sql: &str) -> Vec<String> {
    conn.query_row(sql, [], |r| {
        (0..r.as_ref().column_count())
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect()
    })
    .unwrap()
}

#[test]
fn a_catalogue_of_this_projects_previous_schema_is_upgraded_with_its_history() {
    let env = Env::new(200);
    let first = {
        let mut all = env.registry.catalogue().skills().to_vec();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all.swap_remove(0)
    };
    {
        // Schema v9 exactly as the previous release left it.
        let conn = Connection::open(&env.db).unwrap();
        for sql in LEGACY {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 9).unwrap();
        conn.execute_batch(
            "INSERT INTO sync_history (started_at, completed_at, status, skills_added, mode, pid)
                 VALUES ('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 'failed', 0,
                     'changes-feed', 1);
             UPDATE sync_config SET consecutive_failures = 1,
                 last_attempt_at = '2026-01-01T00:00:01.000Z';",
        )
        .unwrap();
        // A tier only the domain knows, and a repository two rows share.
        conn.execute(
            "INSERT INTO skills (id, name, repo_url, trust_tier, created_at, updated_at)
             VALUES (?1, 'old', 'https://example.com/shared', 'curated',
                 '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'),
                 ('twin', 'twin', 'https://example.com/shared', 'official',
                 '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')",
            params![first.id],
        )
        .unwrap();
    }
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["schema_version"], 10, "{status}");
    assert_eq!(status["config"]["consecutive_failures"], 1, "{status}");
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    assert_eq!(history[0]["id"], "1", "{history}");
    assert_eq!(history[0]["mode"], "changes-feed", "{history}");
    let (tier, kept): (String, Option<String>) = env
        .conn()
        .query_row(
            "SELECT trust_tier, registry_tier FROM skills WHERE id = 'twin'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (tier.as_str(), kept.as_deref()),
        ("unknown", Some("official"))
    );
    assert_eq!(
        env.scalar::<i64>(&format!(
            "SELECT count(repo_url) FROM skills WHERE id IN ('{}', 'twin')",
            first.id
        )),
        1,
        "one of the two keeps the repository"
    );

    let report = env.sync(&["--force"]);
    assert_eq!(report["status"], "success", "{report}");
    env.conn_rw()
        .execute("DELETE FROM skills WHERE id = 'twin'", [])
        .unwrap();
    assert_same_catalogue(&env);
    fts_is_exact(&env);
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}

/// This project's migrations 001-009, which wrote the previous schema.
const LEGACY: [&str; 9] = [
    include_str!("../../../migrations/001_skills.sql"),
    include_str!("../../../migrations/002_skills_fts.sql"),
    include_str!("../../../migrations/003_sync.sql"),
    include_str!("../../../migrations/004_sync_state.sql"),
    include_str!("../../../migrations/005_deferred_fts.sql"),
    include_str!("../../../migrations/006_deferred_indexes.sql"),
    include_str!("../../../migrations/007_fts_crisismerge.sql"),
    include_str!("../../../migrations/008_fts_catch_up.sql"),
    include_str!("../../../migrations/009_search_coverage.sql"),
];

#[test]
fn a_sqlite_file_that_is_no_catalogue_is_refused_and_left_untouched() {
    let env = Env::new(10);
    Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let before = std::fs::read(&env.db).unwrap();
    let run = env.run(&["sync"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("is not a Skillsmith catalogue (it has tables (notes) but no skills table)"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&env.db).unwrap(), before);
    assert!(!env.db.with_extension("db-wal").exists());
}

#[test]
fn a_catalogue_this_project_creates_has_what_upstream_expects() {
    let env = Env::new(20);
    env.sync(&[]);
    let conn = env.conn();
    for table in [
        "schema_version",
        "skills",
        "skills_fts",
        "sources",
        "categories",
        "skill_categories",
        "cache",
        "audit_logs",
        "sync_config",
        "sync_history",
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    assert_eq!(
        env.scalar::<i64>("SELECT max(version) FROM schema_version"),
        4
    );
    // Upstream inserts its own text ids.
    assert_eq!(
        env.scalar::<String>(
            "SELECT type FROM pragma_table_info('sync_history') WHERE name = 'id'"
        ),
        "TEXT"
    );
    assert!(
        env.scalar::<String>("SELECT id FROM sync_history")
            .starts_with("sync-")
    );
    // Upstream's insert: only the columns 0.4.3 knows.
    env.conn_rw()
        .execute(
            "INSERT INTO skills (id, name, description, author, repo_url, quality_score,
                 trust_tier, tags, risk_score, security_findings_count, security_scanned_at,
                 security_passed, created_at, updated_at)
             VALUES ('upstream-1', 'n', NULL, NULL, NULL, NULL, 'unknown', '[]', NULL, 0, NULL,
                 NULL, datetime('now'), datetime('now'))",
            [],
        )
        .unwrap();
    env.conn_rw()
        .execute(
            "INSERT INTO sync_history (id, started_at, status) VALUES ('sync-x', 'now', 'running')",
            [],
        )
        .unwrap();
}

/// `skillsmith` with only `HOME` (and the registry) set.
fn with_home_only(env: &Env, args: &[&str]) -> crate::harness::Run {
    let mut cmd = env.cmd();
    cmd.env_remove("SKILLSMITH_DB").args(args);
    crate::harness::Run::from(cmd.output().unwrap())
}

#[test]
fn with_only_home_set_the_default_is_the_upstream_catalogue() {
    let env = Env::search_only(120);
    let home = env.dir.path();
    let shared = home.join(".skillsmith/skills.db");
    std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
    create_at(&shared, SCHEMA_4);
    let run = with_home_only(&env, &["sync", "--json"]).ok();
    assert_eq!(run.json()["added"], 120, "{}", run.stdout);
    let n: i64 = Connection::open(&shared)
        .unwrap()
        .query_row("SELECT count(*) FROM skills", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 120);
    assert!(!run.stderr.contains("earlier versions"), "{}", run.stderr);
}

#[test]
fn a_catalogue_at_the_previous_default_is_used_with_a_notice_until_moved() {
    let env = Env::new(50);
    let home = env.dir.path();
    // Where earlier versions kept it (the XDG data directory on Linux).
    let previous = home.join(".local/share/skillsmith/skills.db");
    let shared = home.join(".skillsmith/skills.db");
    let mut first = env.cmd();
    first
        .env("SKILLSMITH_DB", &previous)
        .args(["sync", "--json"]);
    crate::harness::Run::from(first.output().unwrap()).ok();

    let status = with_home_only(&env, &["sync", "status", "--json"]).ok();
    assert_eq!(status.json()["registry_skills"], 50, "{}", status.stdout);
    assert_eq!(status.json()["path"], previous.display().to_string());
    assert!(
        status
            .stderr
            .contains("where earlier versions of skillsmith kept it")
            && status
                .stderr
                .contains(&format!("mv {}* ", previous.display())),
        "{}",
        status.stderr
    );
    assert!(
        !shared.exists(),
        "nothing is created at the new default meanwhile"
    );

    // Once the shared catalogue exists, it is the one used, and the old
    // one is named as no longer read.
    let synced = with_home_only(&env, &["sync", "--json"]);
    assert!(
        synced.stderr.contains("where earlier versions"),
        "{}",
        synced.stderr
    );
    std::fs::create_dir_all(shared.parent().unwrap()).unwrap();
    create_at(&shared, SCHEMA_4);
    let status = with_home_only(&env, &["sync", "status", "--json"]).ok();
    assert_eq!(status.json()["path"], shared.display().to_string());
    assert!(
        status.stderr.contains("is no longer read")
            && status
                .stderr
                .contains(&format!("--db {}", previous.display())),
        "{}",
        status.stderr
    );
}

fn create_at(path: &std::path::Path, schema: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(schema)
        .unwrap();
}

/// Upstream's migrations 16 and 17 rebuild `skills`: a new table of the
/// columns upstream knows, the rows copied, the old table dropped, the new
/// one renamed, upstream's triggers created again.
const UPSTREAM_REBUILD: &str = "
    CREATE TABLE skills_v17 (
      id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, author TEXT,
      repo_url TEXT UNIQUE,
      quality_score REAL CHECK(quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)),
      trust_tier TEXT CHECK(trust_tier IN ('verified', 'curated', 'community', 'experimental', 'unknown', 'local')) DEFAULT 'unknown',
      tags TEXT DEFAULT '[]',
      risk_score INTEGER CHECK(risk_score IS NULL OR (risk_score >= 0 AND risk_score <= 100)),
      security_findings_count INTEGER DEFAULT 0, security_scanned_at TEXT, security_passed INTEGER,
      compatibility TEXT DEFAULT '[]', content_hash TEXT, visibility TEXT NOT NULL DEFAULT 'public',
      team_id TEXT,
      source TEXT NOT NULL DEFAULT 'registry' CHECK (source IN ('registry', 'local')),
      created_at TEXT NOT NULL DEFAULT (datetime('now')),
      updated_at TEXT NOT NULL DEFAULT (datetime('now')));
    INSERT INTO skills_v17 (id, name, description, author, repo_url, quality_score, trust_tier,
        tags, risk_score, security_findings_count, security_scanned_at, security_passed,
        compatibility, content_hash, visibility, team_id, source, created_at, updated_at)
      SELECT id, name, description, author, repo_url, quality_score, trust_tier, tags, risk_score,
        security_findings_count, security_scanned_at, security_passed, compatibility,
        content_hash, visibility, team_id, source, created_at, updated_at FROM skills;
    DROP TABLE skills;
    ALTER TABLE skills_v17 RENAME TO skills;
    CREATE INDEX IF NOT EXISTS idx_skills_source ON skills(source);
    CREATE TRIGGER IF NOT EXISTS skills_ai AFTER INSERT ON skills BEGIN
      INSERT INTO skills_fts(rowid, name, description, tags, author)
      VALUES (NEW.rowid, NEW.name, NEW.description, NEW.tags, NEW.author);
    END;
    CREATE TRIGGER IF NOT EXISTS skills_ad AFTER DELETE ON skills BEGIN
      INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
      VALUES ('delete', OLD.rowid, OLD.name, OLD.description, OLD.tags, OLD.author);
    END;
    CREATE TRIGGER IF NOT EXISTS skills_au AFTER UPDATE ON skills BEGIN
      INSERT INTO skills_fts(skills_fts, rowid, name, description, tags, author)
      VALUES ('delete', OLD.rowid, OLD.name, OLD.description, OLD.tags, OLD.author);
      INSERT INTO skills_fts(rowid, name, description, tags, author)
      VALUES (NEW.rowid, NEW.name, NEW.description, NEW.tags, NEW.author);
    END;
    INSERT INTO skills_fts(skills_fts) VALUES ('rebuild');";

#[test]
fn after_an_upstream_migration_rebuilds_skills_a_forced_sync_restores_what_it_dropped() {
    let env = schema_17_env();
    let official = skill_of_tier(&env, "official");
    create(&env, SCHEMA_17);
    env.sync(&[]);
    env.conn_rw().execute_batch(UPSTREAM_REBUILD).unwrap();

    // The next open adds this project's columns back and says what to do.
    let status = env.run(&["sync", "status", "--json"]).ok();
    assert!(
        status.stderr.contains("lost this project's columns")
            && status.stderr.contains("skillsmith sync --force"),
        "{}",
        status.stderr
    );
    let forced = env.sync(&["--force"]);
    assert_eq!(forced["status"], "success", "{forced}");
    assert_same_catalogue(&env);
    fts_is_exact(&env);
    let got = env.run(&["get", &official.id, "--json"]).ok().json();
    assert_eq!(got["trust_tier"], "official", "{got}");
    // And the file stays one upstream's migrations accept.
    env.conn_rw()
        .execute(
            "UPDATE skills SET trust_tier = trust_tier, source = source",
            [],
        )
        .unwrap();
}
