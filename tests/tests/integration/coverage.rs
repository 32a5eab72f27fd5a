//! Search-mode completeness against a registry built to the OpenAPI file
//! with the feed off: tiers outside the enum that `trust_tier=` refuses,
//! unscored and uncategorised skills, stale duplicate copies, and a registry
//! that ignores `offset`.

use std::collections::BTreeSet;

use serde_json::Value;
use skillsmith_testkit::{Catalogue, ServerConfig, Skill, TierMix};

use crate::harness::Env;

/// The tier mix of issue 11: a third of the catalogue in a tier the search
/// API cannot filter on.
const MIX: &str = "verified=1,community=6,experimental=3";

/// Whether any `/skills-search` filter lists this skill: a filterable tier,
/// a quality score (`min_score=0`) or a category.
fn reachable(s: &Skill) -> bool {
    s.trust_tier.is_filterable() || s.quality_score.is_some() || !s.categories.is_empty()
}

fn ids(skills: impl IntoIterator<Item = impl AsRef<str>>) -> BTreeSet<String> {
    skills.into_iter().map(|s| s.as_ref().to_owned()).collect()
}

fn local_ids(env: &Env) -> BTreeSet<String> {
    ids(env.local_registry_rows().into_iter().map(|(id, _)| id))
}

fn reachable_ids(catalogue: &Catalogue) -> BTreeSet<String> {
    ids(catalogue
        .skills()
        .iter()
        .filter(|s| reachable(s))
        .map(|s| &s.id))
}

fn search_requests(env: &Env) -> u64 {
    env.registry.stats().count("/skills-search")
}

#[test]
fn every_reachable_skill_arrives_and_the_unreachable_are_counted_everywhere() {
    let env = Env::mixed(20_000, MIX);
    let catalogue = env.registry.catalogue();
    let reachable = reachable_ids(&catalogue);
    let unreachable = 20_000 - reachable.len();
    assert!(
        unreachable > 50,
        "the mix leaves some unreachable: {unreachable}"
    );

    let report = env.sync(&[]);
    assert_eq!(report["mode"], "search");
    assert_eq!(
        local_ids(&env),
        reachable,
        "every reachable skill, nothing else"
    );
    assert_eq!(report["added"], reachable.len());
    let coverage = &report["coverage"];
    assert_eq!(coverage["registry_total"], 20_000);
    assert_eq!(coverage["reached"], reachable.len());
    assert_eq!(coverage["unreachable"], unreachable);
    assert_eq!(
        coverage["unfilterable_tiers"],
        serde_json::json!(["experimental"])
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains(&format!(
            "{unreachable} of the registry's 20000 skills could not be reached"
        )),
        "{warnings}"
    );

    // The cover: at most 3x ceil(N / 100) listing pages plus 60 probes;
    // reading scored skills once and only the unscored rest keeps it near 1x.
    let floor = 20_000u64.div_ceil(100);
    let requests = search_requests(&env);
    assert!(
        requests <= 3 * floor + 60,
        "{requests} search requests, floor {floor}"
    );
    assert!(
        requests <= floor * 6 / 5 + 60,
        "{requests} search requests, floor {floor}"
    );

    // The history row, `sync status` and `sync history` say it too.
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    assert_eq!(history[0]["skills_unreachable"], unreachable);
    assert_eq!(history[0]["registry_total"], 20_000);
    assert_eq!(
        history[0]["unfilterable_tiers"],
        serde_json::json!(["experimental"])
    );
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["last_run"]["skills_unreachable"], unreachable);
    let text = env.run(&["sync", "status"]).ok().stdout;
    assert!(
        text.contains(&format!("{unreachable} cannot be reached")) && text.contains("experimental"),
        "{text}"
    );
    let text = env.run(&["sync"]).ok().stdout;
    assert!(
        text.contains(&format!("{unreachable} cannot be reached")),
        "{text}"
    );
}

#[test]
fn updates_and_deletions_propagate_and_only_proven_deletions_remove() {
    let env = Env::mixed(3_000, MIX);
    env.sync(&[]);
    let catalogue = env.registry.catalogue();
    // Delete a reachable skill of each kind: filterable tier, experimental
    // and scored, experimental and unscored with a category.
    let pick = |f: &dyn Fn(&Skill) -> bool| {
        catalogue
            .skills()
            .iter()
            .find(|s| f(s))
            .map(|s| s.id.clone())
            .expect("the mix has such a skill")
    };
    let gone = [
        pick(&|s| s.trust_tier.is_filterable()),
        pick(&|s| !s.trust_tier.is_filterable() && s.quality_score.is_some()),
        pick(&|s| {
            !s.trust_tier.is_filterable() && s.quality_score.is_none() && !s.categories.is_empty()
        }),
    ];
    env.registry.delete_ids(&gone);
    let updated = env.registry.update(25);
    let inserted = env.registry.insert(40);
    let report = env.sync(&[]);
    assert_eq!(report["removed"], 3, "{report}");
    let local = local_ids(&env);
    assert!(gone.iter().all(|id| !local.contains(id)));
    let now = env.registry.catalogue();
    assert_eq!(local, reachable_ids(&now));
    let reachable_inserted = inserted
        .iter()
        .filter(|id| now.get(id).is_some_and(reachable))
        .count();
    assert_eq!(report["added"], reachable_inserted);
    let reachable_updated = updated
        .iter()
        .filter(|id| now.get(id).is_some_and(reachable))
        .count();
    assert_eq!(report["updated"], reachable_updated);
    // Stored copies equal the registry's.
    let remote: BTreeSet<(String, String)> = env.registry.snapshot().into_iter().collect();
    for row in env.local_registry_rows() {
        assert!(
            remote.contains(&row),
            "{row:?} is not the registry's version"
        );
    }
}

#[test]
fn a_feed_filled_catalogue_keeps_every_live_skill_through_a_forced_search_resync() {
    let env = Env::with(ServerConfig {
        tier_mix: TierMix::parse(MIX).unwrap(),
        ..ServerConfig::new(20_000, 7)
    });
    let report = env.sync(&[]);
    assert_eq!(report["mode"], "changes-feed");
    assert_eq!(report["added"], 20_000);
    // The registry drops the feed; the user forces a resync.
    env.registry.set_feed_enabled(false);
    let report = env.sync(&["--force"]);
    assert_eq!(report["mode"], "search", "{report}");
    assert_eq!(report["removed"], 0, "{report}");
    assert_eq!(local_ids(&env).len(), 20_000, "no live skill was removed");
    let unreachable = 20_000 - reachable_ids(&env.registry.catalogue()).len();
    assert_eq!(report["coverage"]["unreachable"], unreachable);
    // What the listings can prove gone still goes, and only that.
    let victim = env
        .registry
        .catalogue()
        .skills()
        .iter()
        .find(|s| s.trust_tier.is_filterable())
        .unwrap()
        .id
        .clone();
    env.registry.delete_ids(&[&victim]);
    let report = env.sync(&[]);
    assert_eq!(report["removed"], 1, "{report}");
    assert_eq!(local_ids(&env).len(), 19_999);
}

#[test]
fn a_duplicate_id_converges_to_its_newest_copy() {
    let env = Env::with(ServerConfig {
        feed_enabled: false,
        stale_copy_every: 97,
        ..ServerConfig::new(3_000, 7)
    });
    let report = env.sync(&[]);
    assert_eq!(report["added"], 3_000, "{report}");
    // Every stored copy is the registry's current one, not its stale twin.
    assert_eq!(env.local_registry_rows(), env.registry.snapshot());
    assert_eq!(
        env.scalar::<i64>(
            "SELECT count(*) FROM skills WHERE description = 'A stale copy of this skill.'"
        ),
        0
    );
    let report = env.sync(&[]);
    assert_eq!(
        (report["added"].clone(), report["updated"].clone()),
        (0.into(), 0.into()),
        "{report}"
    );
    assert_eq!(report["removed"], 0);
}

#[test]
fn a_registry_that_ignores_offset_stops_the_run_quickly_with_a_clear_error() {
    let env = Env::mixed(5_000, MIX);
    env.registry.set_ignore_offset(true);
    let run = env.run(&["sync", "--json"]);
    assert_eq!(
        run.code, 5,
        "exit code 5: invalid data from the registry\n{}",
        run.stderr
    );
    assert!(run.stderr.contains("ignore `offset`"), "{}", run.stderr);
    let requests = search_requests(&env);
    assert!(requests <= 40, "{requests} requests before stopping");
    // What was written is whole pages of real skills, and history says so.
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    let status = history[0]["status"].as_str().unwrap();
    assert!(status == "failed" || status == "partial", "{}", history[0]);
    assert!(
        history[0]["error_message"]
            .as_str()
            .unwrap()
            .contains("ignore `offset`"),
        "{}",
        history[0]
    );
}

#[test]
fn without_stats_the_run_says_completeness_was_not_checked() {
    let env = Env::with(ServerConfig {
        feed_enabled: false,
        stats_enabled: false,
        tier_mix: TierMix::parse(MIX).unwrap(),
        ..ServerConfig::new(2_000, 7)
    });
    let report = env.sync(&[]);
    assert_eq!(local_ids(&env), reachable_ids(&env.registry.catalogue()));
    assert_eq!(report["coverage"]["registry_total"], Value::Null);
    assert_eq!(report["coverage"]["unreachable"], Value::Null);
    assert!(
        report["warnings"]
            .to_string()
            .contains("could not be checked"),
        "{report}"
    );
    let text = env.run(&["sync", "history"]).ok().stdout;
    assert!(text.contains("completeness was not checked"), "{text}");
}
