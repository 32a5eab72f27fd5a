//! Syncs that go right: full, differential, forced, dry run, status, history,
//! config, search and get, in both protocols.

use skillsmith_testkit::TrustTier;

use crate::harness::{Env, assert_same_catalogue};

/// The acceptance scenario, for one protocol: 20,000 skills, then 200
/// updates and 50 deletions, then nothing.
fn full_then_differential_then_noop(env: &Env, mode: &str) {
    let first = env.sync(&[]);
    assert_eq!(first["mode"], mode);
    assert_eq!(first["added"], 20_000, "{first}");
    assert_eq!(first["updated"], 0);
    assert_eq!(first["removed"], 0);
    assert_same_catalogue(env);

    env.registry.update(200);
    env.registry.delete(50);
    let second = env.sync(&[]);
    assert_eq!(second["added"], 0, "{second}");
    assert_eq!(second["updated"], 200, "{second}");
    assert_eq!(second["removed"], 50, "{second}");
    assert_same_catalogue(env);

    let third = env.sync(&[]);
    assert_eq!(
        (
            third["added"].as_u64(),
            third["updated"].as_u64(),
            third["removed"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{third}"
    );
    assert_same_catalogue(env);

    let history = env.run(&["sync", "history", "--json"]).ok().json();
    let statuses: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["success", "success", "success"]);
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM skills"), 19_950);
}

#[test]
fn search_api_full_differential_and_noop_sync_of_20000_skills() {
    let env = Env::search_only(20_000);
    full_then_differential_then_noop(&env, "search");
}

#[test]
fn changes_feed_full_differential_and_noop_sync_of_20000_skills() {
    let env = Env::new(20_000);
    full_then_differential_then_noop(&env, "changes-feed");
    // A caught-up feed answers the no-op sync with one conditional request.
    env.registry.reset_stats();
    let noop = env.sync(&[]);
    assert_eq!(noop["requests"], 1, "{noop}");
    assert_eq!(env.registry.stats().total, 1);
}

#[test]
fn skills_no_upstream_search_word_matches_still_arrive() {
    let env = Env::search_only(2_000);
    let unreachable = env.registry.catalogue().unreachable_by_upstream_words();
    assert!(
        unreachable.len() > 10,
        "the generated catalogue must contain such skills"
    );
    env.sync(&[]);
    for id in unreachable.iter().take(25) {
        let got = env.run(&["get", id, "--json"]).ok().json();
        assert_eq!(got["id"], id.as_str());
    }
}

#[test]
fn dry_run_reports_changes_and_writes_nothing() {
    let env = Env::search_only(1_500);
    env.sync(&[]);
    let updated = env.registry.update(30);
    let deleted = env.registry.delete(7);
    env.registry.insert(5);
    // A deletion may pick an updated skill; it then counts as removed only.
    let still_updated = updated.iter().filter(|id| !deleted.contains(id)).count() as u64;
    let before = env.dump();
    let dry = env.sync(&["--dry-run"]);
    assert_eq!(
        (
            dry["added"].as_u64(),
            dry["updated"].as_u64(),
            dry["removed"].as_u64()
        ),
        (Some(5), Some(still_updated), Some(7)),
        "{dry}"
    );
    assert_eq!(
        env.dump(),
        before,
        "a dry run must not write, not even history"
    );
    let real = env.sync(&[]);
    assert_eq!(
        (
            real["added"].as_u64(),
            real["updated"].as_u64(),
            real["removed"].as_u64()
        ),
        (Some(5), Some(still_updated), Some(7))
    );
    assert_same_catalogue(&env);
}

#[test]
fn forced_sync_rewrites_everything_and_removes_what_the_registry_lacks() {
    let env = Env::new(1_000);
    env.sync(&[]);
    // A registry row the feed never told us about (tombstone long gone).
    env.conn_rw().execute(
        "INSERT INTO skills (id, name, trust_tier, created_at, updated_at, sync_origin) \
         VALUES ('stale-1', 'ghost', 'community', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'registry')",
        [],
    ).unwrap();
    let normal = env.sync(&[]);
    assert_eq!(
        normal["removed"], 0,
        "a differential feed sync only follows tombstones"
    );
    let forced = env.sync(&["--force"]);
    assert_eq!(forced["removed"], 1, "{forced}");
    assert_eq!(forced["updated"], 1_000, "{forced}");
    assert_same_catalogue(&env);
}

#[test]
fn local_skills_are_never_overwritten_or_removed() {
    let env = Env::search_only(500);
    let (victim, _) = env.registry.snapshot()[3].clone();
    let conn = env.conn_rw();
    // Apply the schema first, then add a local row that shares a registry id.
    drop(conn);
    env.run(&["sync", "status"]).ok();
    env.conn_rw().execute(
        "INSERT INTO skills (id, name, description, trust_tier, created_at, updated_at, sync_origin) \
         VALUES (?1, 'my-own', 'from disk', 'unknown', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', 'local'), \
                ('local-only', 'mine', 'from disk', 'unknown', '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z', 'local')",
        [&victim],
    ).unwrap();
    let report = env.sync(&["--force"]);
    assert!(report["skipped"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(
        env.scalar::<String>(&format!("SELECT name FROM skills WHERE id = '{victim}'")),
        "my-own"
    );
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM skills WHERE sync_origin = 'local'"),
        2
    );
}

#[test]
fn status_history_and_config_commands() {
    let env = Env::new(300);
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["registry_skills"], 0);
    env.sync(&[]);
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["registry_skills"], 300, "{status}");
    assert!(status["config"]["last_sync_at"].is_string(), "{status}");

    let config = env
        .run(&["sync", "config", "--disable", "--json"])
        .ok()
        .json();
    assert_eq!(config["enabled"], false);
    let config = env
        .run(&["sync", "config", "--frequency", "weekly", "--json"])
        .ok()
        .json();
    assert_eq!(config["frequency"], "weekly");
    assert_eq!(config["interval_ms"], 604_800_000);
    assert_eq!(
        config["enabled"], false,
        "changing the frequency keeps the switch"
    );
    let config = env
        .run(&["sync", "config", "--enable", "--json"])
        .ok()
        .json();
    assert_eq!(config["enabled"], true);
    let shown = env.run(&["sync", "config"]).ok();
    assert!(
        shown.stdout.contains("enabled") && shown.stdout.contains("weekly"),
        "{}",
        shown.stdout
    );

    env.sync(&[]);
    let history = env
        .run(&["sync", "history", "--limit", "1", "--json"])
        .ok()
        .json();
    assert_eq!(history.as_array().unwrap().len(), 1);
    let text = env.run(&["sync", "history"]).ok();
    assert_eq!(text.stdout.matches("success").count(), 2, "{}", text.stdout);
}

#[test]
fn search_and_get_use_the_synced_catalogue() {
    let env = Env::search_only(400);
    env.sync(&[]);
    let (id, _) = env.registry.snapshot()[10].clone();
    let skill = env.registry.skill_json(&id).unwrap();
    let name = skill["name"].as_str().unwrap();
    let hits = env.run(&["search", name, "--json"]).ok().json();
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == id.as_str()),
        "{hits}"
    );
    let got = env.run(&["get", &id, "--json"]).ok().json();
    assert_eq!(got["name"], name);
    if let Some(author) = skill["author"].as_str() {
        let by_name = env
            .run(&["get", &format!("{author}/{name}"), "--json"])
            .ok()
            .json();
        assert_eq!(by_name["id"], id.as_str());
    }
    let missing = env.run(&["get", "no-such-skill"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("skillsmith sync"),
        "{}",
        missing.stderr
    );
    // FTS syntax in user input is not an error.
    env.run(&["search", "\"unbalanced AND (", "--json"]).ok();
}

#[test]
fn unknown_trust_tiers_are_kept_as_unknown() {
    let env = Env::mixed(300, "community=1,preview=1");
    let report = env.sync(&[]);
    let preview = env
        .registry
        .catalogue()
        .skills()
        .iter()
        .filter(|s| s.trust_tier == TrustTier::Preview)
        .count() as i64;
    assert!(preview > 0);
    assert!(env.scalar::<i64>("SELECT count(*) FROM skills WHERE trust_tier = 'unknown'") > 0);
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM skills WHERE trust_tier = 'preview'"),
        0
    );
    assert!(
        report["warnings"].to_string().contains("preview"),
        "{report}"
    );
}

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let env = Env::new(10);
    env.run(&["sync", "status"]).ok();
    env.conn_rw()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let before = std::fs::read(&env.db).unwrap();
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("newer"), "{}", run.stderr);
    assert_eq!(std::fs::read(&env.db).unwrap(), before);
}
