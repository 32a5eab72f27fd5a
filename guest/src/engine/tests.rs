//! Engine tests against the fake host of [`crate::fake`].

use super::*;
use crate::domain::{LocalVersion, RegistryRow, Skill, Source, TrustTier};
use crate::fake::*;
use std::collections::BTreeMap;

fn opts() -> SyncOptions {
    options()
}

fn last_outcome(f: &Fake) -> &RunOutcome {
    f.store
        .runs
        .last()
        .unwrap()
        .1
        .as_ref()
        .expect("run not finished")
}

/// Pages per tier for `n` skills spread evenly, at 100 per page (an empty
/// tier still takes one request).
fn search_pages(n: usize) -> u32 {
    (0..5)
        .map(|t| {
            let in_tier = (n + 4 - t) / 5;
            in_tier.div_ceil(100).max(1) as u32
        })
        .sum()
}

#[test]
fn full_search_sync() {
    let mut f = Fake::new(FakeRegistry::with(12345, false));
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.mode, SyncMode::Search);
    assert_eq!(
        (
            report.added,
            report.updated,
            report.unchanged,
            report.removed,
            report.skipped
        ),
        (12345, 0, 0, 0, 0)
    );
    assert_eq!(report.pages, search_pages(12345));
    assert_eq!(
        report.requests,
        2 + search_pages(12345),
        "health, stats and one per page"
    );
    assert_eq!(
        report.coverage,
        Some(Coverage {
            registry_total: Some(12345),
            reached: 12345,
            unfilterable_tiers: Vec::new()
        })
    );
    assert_eq!(report.last_sync_at.as_deref(), Some(NOW));
    assert!(!report.cancelled);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(f.in_sync());
    // Store pages of at most STORE_PAGE_ROWS rows, spanning HTTP pages.
    let sizes: Vec<usize> = f.store.pages.iter().map(|p| p.0).collect();
    assert_eq!(
        sizes,
        [
            STORE_PAGE_ROWS,
            STORE_PAGE_ROWS,
            12345 - 2 * STORE_PAGE_ROWS
        ]
    );
    assert!(
        f.store
            .pages
            .iter()
            .all(|p| p.2.mode == SyncMode::Search && p.2.cursor.is_none())
    );
    assert_eq!(f.store.mode, Some(SyncMode::Search));
    assert_eq!(f.store.last_sync_at.as_deref(), Some(NOW));
    let outcome = last_outcome(&f);
    assert_eq!(outcome.status, RunStatus::Success);
    assert_eq!(outcome.counts.added, 12345);
    // Overlap: once the first page says how long the listing is (and is
    // written), the next pages are in flight before the second is diffed.
    let second_diff = f
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| *e == "local_versions")
        .nth(1)
        .unwrap()
        .0;
    let sends_before = f.events[..second_diff]
        .iter()
        .filter(|e| e.contains("/skills-search"))
        .count();
    assert_eq!(sends_before, 1 + crate::retry::MAX_IN_FLIGHT);
    // Every stored skill is complete.
    let row = &f.store.rows["s00007"];
    let skill = row.skill.as_ref().unwrap();
    assert_eq!(skill.trust_tier, TrustTier::Curated);
    assert_eq!(skill.tags, ["t"]);
    assert_eq!(skill.stars, Some(3));
}

#[test]
fn differential_noop_updates_and_prune() {
    let mut f = Fake::new(FakeRegistry::with(300, false));
    run(&mut f, opts()).unwrap();
    let pages_before = f.store.pages.len();

    // Nothing changed: nothing written, all unchanged, mode no longer rediscovered.
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.unchanged,
            report.removed
        ),
        (0, 0, 300, 0)
    );
    assert_eq!(f.store.pages.len(), pages_before);
    assert!(
        !f.requests
            .iter()
            .skip(1 + search_pages(300) as usize)
            .any(|r| r.url.ends_with("/health"))
    );
    assert_eq!(last_outcome(&f).status, RunStatus::Success);

    // Three updated, two deleted, one added.
    for id in ["s00001", "s00002", "s00100"] {
        f.reg.touch(id);
    }
    f.reg.delete("s00010");
    f.reg.delete("s00299");
    f.reg.put("new", "official", None);
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.unchanged,
            report.removed
        ),
        (1, 3, 295, 2)
    );
    assert!(f.in_sync());
    assert!(!f.store.rows.contains_key("s00010"));
}

#[test]
fn force_rewrites_everything() {
    let mut f = Fake::new(FakeRegistry::with(120, false));
    run(&mut f, opts()).unwrap();
    let report = run(
        &mut f,
        SyncOptions {
            force: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(
        (report.added, report.updated, report.unchanged),
        (0, 120, 0)
    );
}

#[test]
fn local_rows_untouched() {
    let mut f = Fake::new(FakeRegistry::with(50, false));
    f.local("s00003", "2020-01-01T00:00:00Z");
    f.local("only-local", "2020-01-01T00:00:00Z");
    let report = run(&mut f, opts()).unwrap();
    assert_eq!((report.added, report.skipped, report.removed), (49, 1, 0));
    for id in ["s00003", "only-local"] {
        let row = &f.store.rows[id];
        assert_eq!(row.source, Source::Local);
        assert_eq!(row.updated_at, "2020-01-01T00:00:00Z");
    }
    // Still there after a forced run with a prune.
    let report = run(
        &mut f,
        SyncOptions {
            force: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!((report.updated, report.skipped, report.removed), (49, 1, 0));
    assert_eq!(f.store.rows["only-local"].source, Source::Local);
}

#[test]
fn malformed_records_skipped_not_pruned() {
    let mut f = Fake::new(FakeRegistry::with(30, false));
    run(&mut f, opts()).unwrap();
    // Now two records go bad: one with a usable id (stored already), one without.
    f.reg.skills.get_mut("s00004").unwrap().raw = Some(
        r#"{"id":"s00004","name":"x","trust_tier":"unverified","updated_at":"not a time"}"#.into(),
    );
    f.reg.skills.get_mut("s00009").unwrap().raw =
        Some(r#"{"name":"no id","quality_score":7}"#.into());
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.skipped, 2);
    assert_eq!(report.unchanged, 28);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("malformed") && w.contains("s00004")),
        "{:?}",
        report.warnings
    );
    // The bad record with an id is still in the registry: not pruned. The
    // one without an id leaves its listing unproven, so nothing it should
    // list is removed either.
    assert!(f.store.rows.contains_key("s00004"));
    assert!(f.store.rows.contains_key("s00009"));
    assert_eq!(report.removed, 0);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("trust_tier=unverified was not read completely")),
        "{:?}",
        report.warnings
    );
    assert_eq!(last_outcome(&f).status, RunStatus::Success);
}

#[test]
fn unknown_tier_warned_once() {
    let mut f = Fake::new(FakeRegistry::with(10, false));
    for id in ["s00001", "s00002"] {
        f.reg.skills.get_mut(id).unwrap().raw = Some(format!(
            r#"{{"id":"{id}","name":"n","trust_tier":"platinum","updated_at":"2026-01-01T00:00:00Z","future_field":[1]}}"#
        ));
    }
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.added, 10);
    assert_eq!(
        report
            .warnings
            .iter()
            .filter(|w| w.contains("platinum"))
            .count(),
        1
    );
    assert_eq!(
        f.store.rows["s00001"].skill.as_ref().unwrap().trust_tier,
        TrustTier::Unknown
    );
}

#[test]
fn feed_first_sync_resume_and_304() {
    let mut f = Fake::new(FakeRegistry::with(250, true));
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.mode, SyncMode::ChangesFeed);
    assert_eq!((report.added, report.pages, report.requests), (250, 3, 4));
    assert_eq!(report.last_sync_at.as_deref(), Some(NOW));
    assert!(f.in_sync());
    // Whole feed pages share a store page, with the last one's cursor.
    assert_eq!(f.store.pages.len(), 1, "{:?}", f.store.pages);
    assert_eq!(f.store.pages[0].0, 250);
    assert!(!f.store.pages[0].2.resync_pending);
    assert!(f.store.pages[0].2.etag.is_some());
    let cursor = f.store.cursor.clone().unwrap();
    assert!(f.store.etag.is_some());

    // Resume: only what changed since the cursor.
    f.reg.touch("s00001");
    f.reg.touch("s00002");
    f.reg.delete("s00003");
    f.reg.put("brand-new", "community", Some(0.9));
    f.requests.clear();
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (1, 2, 1, 0)
    );
    assert_eq!(report.requests, 1);
    assert!(
        f.requests[0]
            .url
            .contains(&format!("since={}", encode(&cursor))),
        "{}",
        f.requests[0].url
    );
    assert!(f.in_sync());

    // Caught up: one request answered 304, nothing written.
    let pages = f.store.pages.len();
    f.requests.clear();
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(
        (report.requests, report.pages, report.added, report.updated),
        (1, 0, 0, 0)
    );
    assert_eq!(f.requests.len(), 1);
    assert!(
        f.requests[0]
            .headers
            .iter()
            .any(|(k, _)| k == "if-none-match")
    );
    assert_eq!(f.store.pages.len(), pages);
    assert_eq!(report.last_sync_at.as_deref(), Some(NOW));
    assert_eq!(last_outcome(&f).status, RunStatus::Success);
}

/// A feed where `a` is listed on the first page and again on the second,
/// deleted or updated (it changed while the sync paged).
fn feed_with_repeat(second: &str) -> Fake {
    let mut f = Fake::new(FakeRegistry::with(0, true));
    let record = |id: &str, t: u64| {
        format!(
            r#"{{"id":"{id}","name":"n","trust_tier":"community","created_at":"{c}","updated_at":"{u}"}}"#,
            c = ts(0),
            u = ts(t)
        )
    };
    let first = format!(
        r#"{{"data":[{},{}],"meta":{{"next_cursor":"c1","has_more":true}}}}"#,
        record("a", 1),
        record("b", 1)
    );
    let second = format!(
        r#"{{"data":[{second}],"meta":{{"next_cursor":"c2","has_more":false,"server_time":"{NOW}"}}}}"#
    );
    f.hook = Some(Box::new(move |_, r| {
        if !r.url.contains("/skills-changes") {
            None
        } else if r.url.contains("since=c1") {
            Some(Ok(ok(&second)))
        } else {
            Some(Ok(ok(&first)))
        }
    }));
    f
}

#[test]
fn a_skill_on_two_batched_feed_pages_ends_in_its_last_state() {
    let deleted = format!(r#"{{"id":"a","updated_at":"{}","deleted":true}}"#, ts(2));
    let mut f = feed_with_repeat(&deleted);
    let report = run(&mut f, opts()).unwrap();
    assert_eq!((report.added, report.removed), (2, 1), "{report:?}");
    assert!(
        !f.store.rows.contains_key("a"),
        "deleted after it was added"
    );
    assert!(f.store.rows.contains_key("b"));
    // The batch was written before the page that touches `a` again, so one
    // transaction never both removes and re-adds it.
    let pages: Vec<(usize, usize)> = f.store.pages.iter().map(|p| (p.0, p.1)).collect();
    assert_eq!(pages, [(2, 0), (0, 1)]);
    assert_eq!(f.store.cursor.as_deref(), Some("c2"));

    let updated = format!(
        r#"{{"id":"a","name":"n2","trust_tier":"community","created_at":"{}","updated_at":"{}"}}"#,
        ts(0),
        ts(3)
    );
    let mut f = feed_with_repeat(&updated);
    let report = run(&mut f, opts()).unwrap();
    assert_eq!((report.added, report.updated), (2, 1), "{report:?}");
    assert_eq!(f.store.rows["a"].updated_at, ts(3));
    assert_eq!(f.store.pages.len(), 2);
}

#[test]
fn a_page_that_fails_behind_is_taken_back_from_the_counts() {
    // 12,000 skills in store pages of 5,000, 5,000 and 2,000.
    let opts = || SyncOptions {
        page_size: 1000,
        ..opts()
    };
    // The second page fails; the next local-versions call says so.
    let mut f = Fake::new(FakeRegistry::with(12_000, true));
    f.fail_page_behind = Some(2);
    assert_eq!(
        run(&mut f, opts()),
        Err(SyncError::Store(StoreError::NoSpace))
    );
    let outcome = last_outcome(&f);
    assert_eq!(outcome.status, RunStatus::Partial);
    assert_eq!(outcome.counts.added, 5000, "only the written page counts");
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("the 1 store pages"),
        "{:?}",
        outcome.error
    );
    assert_eq!(f.store.rows.len(), 5000);

    // The last page fails; finishing the run says so, and the run closes
    // as the failure it is.
    let mut f = Fake::new(FakeRegistry::with(12_000, true));
    f.fail_page_behind = Some(3);
    assert_eq!(
        run(&mut f, opts()),
        Err(SyncError::Store(StoreError::NoSpace))
    );
    let outcome = last_outcome(&f);
    assert_eq!(outcome.status, RunStatus::Partial);
    assert_eq!(outcome.counts.added, 10_000);
    assert_eq!(f.store.rows.len(), 10_000);
    assert_eq!(f.store.last_sync_at, None);
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    crate::url::encode_component(s, &mut out);
    out
}

#[test]
fn expired_cursor_runs_full_resync_with_prune() {
    let mut f = Fake::new(FakeRegistry::with(120, true));
    run(&mut f, opts()).unwrap();
    // A deletion whose tombstone the registry has since discarded.
    f.reg.delete("s00050");
    f.reg.discard_tombstones();
    f.reg.touch("s00051");
    let pages = f.store.pages.len();
    let report = run(&mut f, opts()).unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("cursor_expired")),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        (report.removed, report.updated, report.unchanged),
        (1, 1, 118)
    );
    assert!(f.in_sync());
    assert!(!f.store.resync_pending);
    let resync = &f.store.pages[pages..];
    assert!(
        resync[..resync.len() - 1]
            .iter()
            .all(|p| p.2.resync_pending)
    );
    assert!(!resync.last().unwrap().2.resync_pending);
    assert!(f.store.etag.is_some());
    // And the next run is an ordinary 304.
    f.requests.clear();
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.requests, 1);
}

#[test]
fn feed_that_rejects_resync_cursors_falls_back_to_search() {
    let mut f = Fake::new(FakeRegistry::with(250, true));
    run(&mut f, opts()).unwrap();
    f.reg.delete("s00050");
    f.reg.discard_tombstones();
    f.reg.by_position = Some(ts(f.reg.clock + 1));
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.mode, SyncMode::Search);
    assert_eq!(report.removed, 1);
    assert!(f.in_sync());
    assert_eq!(f.store.mode, Some(SyncMode::Search));
    assert!(!f.store.resync_pending);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("/skills-search instead")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn interrupted_resync_restarts_from_the_beginning() {
    let mut f = Fake::new(FakeRegistry::with(120, true));
    run(&mut f, opts()).unwrap();
    f.stop_after_pages = Some(1);
    let report = run(
        &mut f,
        SyncOptions {
            force: true,
            ..opts()
        },
    )
    .unwrap();
    assert!(report.cancelled);
    assert!(
        f.store.resync_pending,
        "an interrupted resync stays pending"
    );
    assert_eq!(last_outcome(&f).status, RunStatus::Partial);
    assert!(
        last_outcome(&f)
            .error
            .as_deref()
            .unwrap()
            .starts_with("cancelled")
    );
    f.stop_after_pages = None;
    f.reg.delete("s00001");
    f.reg.tombstones.clear();
    f.requests.clear();
    let report = run(&mut f, opts()).unwrap();
    assert!(!f.requests[0].url.contains("since="));
    assert_eq!(report.removed, 1);
    assert!(!f.store.resync_pending);
    assert!(f.in_sync());
}

#[test]
fn feed_404_falls_back_to_search() {
    let mut f = Fake::new(FakeRegistry::with(40, true));
    f.hook = Some(Box::new(|_, r| {
        r.url
            .contains("/skills-changes")
            .then(|| Ok(status(404, r#"{"error":"not found"}"#)))
    }));
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.mode, SyncMode::Search);
    assert_eq!(report.added, 40);
    assert_eq!(f.store.mode, Some(SyncMode::Search));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("no changes feed"))
    );
}

#[test]
fn switching_to_feed_with_search_rows_resyncs() {
    let mut f = Fake::new(FakeRegistry::with(60, false));
    run(&mut f, opts()).unwrap();
    f.reg.feed = true;
    f.reg.delete("s00005");
    f.reg.tombstones.clear();
    let report = run(
        &mut f,
        SyncOptions {
            mode: Some(SyncMode::ChangesFeed),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!((report.removed, report.unchanged), (1, 59));
    assert_eq!(f.store.mode, Some(SyncMode::ChangesFeed));
    assert!(!f.store.resync_pending);
}

#[test]
fn cancellation_mid_run_is_partial() {
    let mut f = Fake::new(FakeRegistry::with(1234, false));
    f.stop_after_pages = Some(7);
    let report = run(&mut f, opts()).unwrap();
    assert!(report.cancelled);
    assert_eq!(report.pages, 7);
    assert_eq!(report.last_sync_at, None);
    // Seven pages: two tiers of 247 and one page of the third. The buffered
    // rows were kept, in one store page.
    assert_eq!(f.store.rows.len(), 594);
    assert_eq!(report.added, 594);
    let sizes: Vec<usize> = f.store.pages.iter().map(|p| p.0).collect();
    assert_eq!(sizes, [594]);
    let outcome = last_outcome(&f);
    assert_eq!(outcome.status, RunStatus::Partial);
    assert!(outcome.error.as_deref().unwrap().starts_with("cancelled"));
    assert_eq!(f.store.last_sync_at, None);
    // No prune after an incomplete enumeration, and the rest arrives next time.
    f.stop_after_pages = None;
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(
        (report.added, report.unchanged, report.removed),
        (640, 594, 0)
    );
    assert!(f.in_sync());
}

#[test]
fn cancellation_before_any_page_is_partial_and_says_so() {
    let mut f = Fake::new(FakeRegistry::with(10, false));
    f.stop_after_pages = Some(1);
    f.store.rows.clear();
    let mut reg = FakeRegistry::with(0, false);
    std::mem::swap(&mut f.reg, &mut reg);
    let report = run(&mut f, opts()).unwrap();
    assert!(report.cancelled);
    assert_eq!(last_outcome(&f).status, RunStatus::Partial);
    assert_eq!(last_outcome(&f).failure, Some(FailureKind::Cancelled));
}

#[test]
fn error_after_pages_is_partial_without_last_sync_at() {
    let mut f = Fake::new(FakeRegistry::with(1234, false));
    f.hook = Some(Box::new(|n, _| {
        (n >= 9).then(|| Ok(status(500, r#"{"error":"boom"}"#)))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(
        matches!(err, SyncError::Registry(ref m) if m.contains("500")),
        "{err:?}"
    );
    assert!(!f.slept.is_empty(), "5xx is retried");
    assert!(
        f.slept.iter().sum::<u64>() <= 10_000,
        "within the retry budget"
    );
    let outcome = last_outcome(&f);
    assert_eq!(outcome.status, RunStatus::Partial);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("try again later")
    );
    assert!(
        f.store.rows.len() >= 500,
        "the pages before the error are kept: {} {:?}",
        f.store.rows.len(),
        f.requests
            .iter()
            .map(|r| r.url.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(f.store.last_sync_at, None);
}

#[test]
fn dry_run_writes_nothing() {
    let mut f = Fake::new(FakeRegistry::with(300, false));
    let report = run(
        &mut f,
        SyncOptions {
            dry_run: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(report.added, 300);
    assert!(f.store.rows.is_empty() && f.store.runs.is_empty() && f.store.pages.is_empty());

    run(&mut f, opts()).unwrap();
    let runs = f.store.runs.len();
    let pages = f.store.pages.len();
    f.reg.delete("s00001");
    f.reg.touch("s00002");
    let report = run(
        &mut f,
        SyncOptions {
            dry_run: true,
            force: false,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!((report.updated, report.removed), (1, 1));
    assert_eq!((f.store.runs.len(), f.store.pages.len()), (runs, pages));
    assert!(f.store.rows.contains_key("s00001"));
}

#[test]
fn busy_store() {
    let mut f = Fake::new(FakeRegistry::with(5, false));
    f.store.open_run = Some(99);
    f.store.mode = Some(SyncMode::Search);
    assert_eq!(run(&mut f, opts()), Err(SyncError::Busy));
}

#[test]
fn unauthorized_is_not_retried_and_is_recorded() {
    let mut f = Fake::new(FakeRegistry::with(5, false));
    f.hook = Some(Box::new(|_, _| {
        Some(Ok(status(401, r#"{"error":"invalid api key"}"#)))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(
        matches!(err, SyncError::Unauthorized(ref m) if m.contains("10 requests")),
        "{err:?}"
    );
    assert_eq!(f.requests.len(), 1);
    assert_eq!(last_outcome(&f).status, RunStatus::Failed);
}

#[test]
fn unhealthy_registry() {
    let mut f = Fake::new(FakeRegistry::with(5, false));
    f.hook = Some(Box::new(|_, r| {
        r.url
            .ends_with("/health")
            .then(|| Ok(status(503, r#"{"status":"unhealthy"}"#)))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert_eq!(
        err,
        SyncError::Registry("the registry reports itself unhealthy".into())
    );
    assert_eq!(
        f.requests.len(),
        1,
        "a health 503 is an answer, not retried"
    );
}

#[test]
fn bad_base_url_is_denied() {
    let mut f = Fake::default();
    let err = run(
        &mut f,
        SyncOptions {
            registry: "file:///etc".into(),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(matches!(err, SyncError::Unreachable(HttpError::Denied(_))));
    assert!(f.requests.is_empty());
}

#[test]
fn catalogue_changing_during_listing_skips_prune() {
    let mut f = Fake::new(FakeRegistry::with(400, false));
    run(&mut f, opts()).unwrap();
    f.reg.delete("s00000");
    f.reg.tombstones.clear();
    // The official listing grows by one between its first and second page.
    let skills = f.reg.skills.clone();
    f.hook = Some(Box::new(move |_, r| {
        if r.url.contains("trust_tier=official") && !r.url.contains("offset=0") {
            let mut reg = FakeRegistry {
                skills: skills.clone(),
                ..FakeRegistry::default()
            };
            reg.skills.insert(
                "late".into(),
                RSkill {
                    tier: "official",
                    quality: Some(0.0),
                    categories: Vec::new(),
                    updated_at: ts(1),
                    raw: None,
                },
            );
            return Some(Ok(reg.respond(r)));
        }
        None
    }));
    let report = run(
        &mut f,
        SyncOptions {
            page_size: 20,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(report.removed, 0);
    assert!(f.store.rows.contains_key("s00000"));
    assert!(
        report.warnings.iter().any(|w| w.contains("changed")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn empty_listing_never_prunes_a_full_store() {
    let mut f = Fake::new(FakeRegistry::with(30, false));
    run(&mut f, opts()).unwrap();
    f.reg.skills.clear();
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.removed, 0);
    assert_eq!(f.store.rows.len(), 30);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("listed no skills"))
    );
}

#[test]
fn progress_is_reported_per_page() {
    let mut f = Fake::new(FakeRegistry::with(250, false));
    run(&mut f, opts()).unwrap();
    let fetch: Vec<_> = f
        .progress
        .iter()
        .filter(|p| p.phase == Phase::Fetch)
        .collect();
    assert_eq!(fetch.len() as u32, search_pages(250));
    assert_eq!(fetch.last().unwrap().done, 250);
    assert_eq!(fetch.last().unwrap().total, Some(250));
    assert!(fetch.windows(2).all(|w| w[0].pages < w[1].pages));
}

fn remaining_zero(mut resp: HttpResponse) -> HttpResponse {
    resp.headers.retain(|(k, _)| k != "x-ratelimit-remaining");
    resp.headers
        .push(("x-ratelimit-remaining".into(), "0".into()));
    resp
}

#[test]
fn rate_limit_pacing_and_429() {
    let mut f = Fake::new(FakeRegistry::with(150, false));
    f.hook = Some(Box::new(|n, r| match n {
        // The health check used up the window, which resets 60 s after its Date.
        0 => Some(Ok(remaining_zero(FakeRegistry::default().respond(r)))),
        2 => {
            let mut resp = status(429, r#"{"error":"rate_limited"}"#);
            resp.headers.push(("retry-after".into(), "2".into()));
            Some(Ok(resp))
        }
        _ => None,
    }));
    let report = run(
        &mut f,
        SyncOptions {
            retry_budget_ms: 120_000,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(report.added, 150);
    assert_eq!(f.slept, [60_000 + 5, 2_000]);
    assert_eq!(report.requests, 2 + search_pages(150) + 1);
    let waits: Vec<u64> = f
        .progress
        .iter()
        .map(|p| p.waiting_ms)
        .filter(|w| *w > 0)
        .collect();
    assert_eq!(waits, [60_000 + 5, 2_000]);

    // A window that resets later than the budget allows fails fast.
    let mut f = Fake::new(FakeRegistry::with(150, false));
    f.hook = Some(Box::new(|n, r| {
        (n == 0).then(|| Ok(remaining_zero(FakeRegistry::default().respond(r))))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(matches!(err, SyncError::RateLimited(_)), "{err:?}");
    assert!(f.slept.is_empty());
}

#[test]
fn quota_exceeded_is_final() {
    let mut f = Fake::new(FakeRegistry::with(5, false));
    f.store.mode = Some(SyncMode::Search);
    f.hook = Some(Box::new(|_, _| {
        Some(Ok(status(429, r#"{"error":"monthly_quota_exceeded"}"#)))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(matches!(err, SyncError::QuotaExceeded(ref m) if m.contains("quota")));
    assert_eq!(f.requests.len(), 1);
}

/// CPU time of this thread, immune to other processes loading the machine.
struct Cpu(u64);

impl Cpu {
    fn now() -> Cpu {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        Cpu(stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }
    fn elapsed(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(Cpu::now().0 - self.0)
    }
}

/// The guest's own share of a 100k-skill sync: decoding, diffing and page
/// assembly against a host that answers instantly from pre-rendered bodies.
/// Run with `cargo test --release -p skillsmith-guest perf_100k -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand in release"]
fn perf_100k() {
    struct Canned {
        bodies: std::collections::HashMap<String, Vec<u8>>,
        stored: std::collections::HashMap<String, String>,
        rows: usize,
    }
    impl Host for Canned {
        type Pending = HttpResponse;
        fn http_send(&mut self, r: HttpRequest) -> HttpResponse {
            let path = r.url.strip_prefix(BASE).unwrap();
            let mut resp = ok("");
            resp.body = self
                .bodies
                .get(path)
                .cloned()
                .unwrap_or_else(|| panic!("{path}"));
            resp
        }
        fn http_wait(&mut self, p: HttpResponse) -> Result<HttpResponse, HttpError> {
            Ok(p)
        }
        fn read_state(&mut self) -> Result<SyncState, StoreError> {
            Ok(SyncState::default())
        }
        fn local_versions(
            &mut self,
            ids: &[String],
        ) -> Result<Vec<Option<LocalVersion>>, StoreError> {
            Ok(ids
                .iter()
                .map(|id| {
                    self.stored.get(id).map(|u| LocalVersion {
                        updated_at: u.clone(),
                        source: Source::Registry,
                    })
                })
                .collect())
        }
        fn registry_ids(&mut self, _: Option<&str>, _: u32) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        fn registry_rows(&mut self, _: &[String]) -> Result<Vec<Option<RegistryRow>>, StoreError> {
            Ok(vec![])
        }
        fn begin_run(&mut self, _: SyncMode) -> Result<u64, StoreError> {
            Ok(1)
        }
        fn apply_page(&mut self, _: u64, page: Page) -> Result<(), StoreError> {
            self.rows += page.upserts.len();
            Ok(())
        }
        fn finish_run(&mut self, _: u64, _: RunOutcome) -> Result<(), StoreError> {
            Ok(())
        }
        fn log(&mut self, _: Level, _: &str) {}
        fn progress(&mut self, _: Progress) -> Directive {
            Directive::Proceed
        }
        fn sleep(&mut self, _: u64) -> Directive {
            Directive::Proceed
        }
        fn random(&mut self) -> u64 {
            0
        }
    }
    const N: usize = 100_000;
    let skill = |i: usize| {
        let t = ts(i as u64);
        format!(
            r#"{{"id":"{:08x}-0000-4000-8000-{:012x}","name":"skill-{i}","description":"A helpful skill that does thing number {i} for developers","author":"author{}","repo_url":"https://github.com/a/skill-{i}","quality_score":0.{},"trust_tier":"{}","tags":["testing","jest","javascript"],"categories":["Testing"],"stars":{i},"created_at":"{t}","updated_at":"{t}","rank":0.5}}"#,
            i,
            i,
            i % 97,
            i % 10,
            TIERS[i % 5]
        )
    };
    // Feed: 100 pages of 1000.
    let mut bodies = std::collections::HashMap::new();
    for p in 0..N / 1000 {
        let data: Vec<String> = (p * 1000..(p + 1) * 1000).map(skill).collect();
        let since = if p == 0 {
            String::new()
        } else {
            format!("since=c{p}&")
        };
        bodies.insert(
            format!("/skills-changes?{since}limit=1000"),
            format!(
                r#"{{"data":[{}],"meta":{{"next_cursor":"c{}","has_more":{},"server_time":"2026-11-25T02:00:00Z"}}}}"#,
                data.join(","),
                p + 1,
                p + 1 < N / 1000
            )
            .into_bytes(),
        );
    }
    let bytes: usize = bodies.values().map(Vec::len).sum();
    let mut w = Warnings::new();
    let start = Cpu::now();
    for b in bodies.values() {
        protocol::decode_feed_page(b, &mut w).unwrap();
    }
    let decoding = start.elapsed();
    let mut host = Canned {
        bodies,
        stored: Default::default(),
        rows: 0,
    };
    let o = SyncOptions {
        mode: Some(SyncMode::ChangesFeed),
        page_size: 1000,
        ..opts()
    };
    let start = Cpu::now();
    let report = run(&mut host, o.clone()).unwrap();
    let feed = start.elapsed();
    assert_eq!((report.added, host.rows), (N as u64, N));
    // Search: 1000 pages of 100, over the five tiers.
    let mut bodies = std::collections::HashMap::new();
    for (t, tier) in TIERS.iter().enumerate() {
        let ids: Vec<usize> = (0..N).filter(|i| i % 5 == t).collect();
        for (p, chunk) in ids.chunks(100).enumerate() {
            let data: Vec<String> = chunk.iter().map(|&i| skill(i)).collect();
            bodies.insert(
                format!(
                    "/skills-search?trust_tier={tier}&limit=100&offset={}",
                    p * 100
                ),
                format!(
                    r#"{{"data":[{}],"meta":{{"total":{}}}}}"#,
                    data.join(","),
                    ids.len()
                )
                .into_bytes(),
            );
        }
    }
    host.bodies = bodies;
    host.rows = 0;
    let o = SyncOptions {
        mode: Some(SyncMode::Search),
        page_size: 100,
        ..opts()
    };
    let start = Cpu::now();
    let report = run(&mut host, o.clone()).unwrap();
    let search = start.elapsed();
    assert_eq!((report.added, host.rows), (N as u64, N));
    // Differential no-op in search mode: everything stored already.
    host.stored = (0..N)
        .map(|i| {
            let s = skill(i);
            let id = s[7..43].to_string();
            (id, ts(i as u64))
        })
        .collect();
    host.rows = 0;
    let start = Cpu::now();
    let report = run(&mut host, o).unwrap();
    let noop = start.elapsed();
    assert_eq!((report.unchanged, host.rows), (N as u64, 0));
    println!(
        "100k skills ({} MB of JSON), CPU time: feed decoding alone {decoding:?}, feed sync \
         {feed:?}, search sync {search:?}, search no-op {noop:?}",
        bytes / 1_000_000
    );
}

// --- search completeness (issue 11) ---------------------------------------

const CATS: [&str; 6] = crate::cover::CATEGORIES;

/// `n` skills in the tier mix verified 1 : community 6 : experimental 3,
/// one in 20 unscored, a third in no category, some in two.
fn mixed(n: usize) -> FakeRegistry {
    let mut r = FakeRegistry {
        stats: true,
        ..FakeRegistry::default()
    };
    for i in 0..n {
        let tier = match i % 10 {
            0 => "verified",
            1..=6 => "community",
            _ => "experimental",
        };
        let quality = ((i / 10) % 20 != 3).then(|| (i % 97) as f64 / 100.0);
        let id = format!("s{i:05}");
        r.put(&id, tier, quality);
        let categories = match i % 3 {
            0 => vec![],
            1 => vec![CATS[i % 6]],
            _ => vec![CATS[i % 6], CATS[(i + 1) % 6]],
        };
        r.skills.get_mut(&id).unwrap().categories = categories;
    }
    r
}

/// Ids of skills no filter reaches: outside the OpenAPI tiers, with
/// neither score nor category.
fn unreachable_ids(r: &FakeRegistry) -> Vec<String> {
    r.skills
        .iter()
        .filter(|(_, s)| !TIERS.contains(&s.tier) && s.quality.is_none() && s.categories.is_empty())
        .map(|(id, _)| id.clone())
        .collect()
}

fn search_requests(f: &Fake) -> usize {
    f.requests
        .iter()
        .filter(|r| r.url.contains("/skills-search"))
        .count()
}

#[test]
fn every_skill_any_filter_reaches_arrives_and_the_rest_are_counted() {
    let reg = mixed(3000);
    let unreachable = unreachable_ids(&reg);
    assert!(!unreachable.is_empty());
    let mut f = Fake::new(reg);
    let report = run(&mut f, opts()).unwrap();
    for (id, _) in f.reg.skills.iter() {
        assert_eq!(
            f.store.rows.contains_key(id),
            !unreachable.contains(id),
            "{id}"
        );
    }
    let coverage = report.coverage.clone().unwrap();
    assert_eq!(coverage.registry_total, Some(3000));
    assert_eq!(coverage.unreachable(), Some(unreachable.len() as u64));
    assert_eq!(coverage.unfilterable_tiers, ["experimental"]);
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("could not be reached"))
        .expect("a coverage warning");
    assert!(
        warning.starts_with(&format!(
            "{} of the registry's 3000 skills",
            unreachable.len()
        )),
        "{warning}"
    );
    assert!(warning.contains("experimental"), "{warning}");
    // The cover reads about each skill once: far below 3x the pages.
    let floor = 3000usize.div_ceil(100);
    assert!(
        search_requests(&f) <= floor * 3 / 2 + 30,
        "{} requests for a floor of {floor}",
        search_requests(&f)
    );
    assert_eq!(last_outcome(&f).coverage, report.coverage);
}

#[test]
fn a_second_sync_is_quiet_and_deletions_propagate_but_only_proven_ones() {
    let mut f = Fake::new(mixed(2000));
    run(&mut f, opts()).unwrap();
    let report = run(&mut f, opts()).unwrap();
    assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));
    // Delete a scored skill of each kind, update two; and a stored
    // experimental skill becomes unreachable (no score, no category): it is
    // still in the registry, so it must stay.
    for id in ["s00001", "s00007", "s00010"] {
        f.reg.delete(id);
    }
    f.reg.touch("s00002");
    f.reg.touch("s00008");
    let hidden = "s00017";
    assert_eq!(f.reg.skills[hidden].tier, "experimental");
    f.reg.skills.get_mut(hidden).unwrap().quality = None;
    f.reg.skills.get_mut(hidden).unwrap().categories.clear();
    f.reg.touch(hidden);
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.removed, 3, "three deleted: {:?}", report.warnings);
    assert_eq!(report.updated, 2);
    // Stored as scored, the hidden skill looked deleted to the scored
    // listing, but /skills-get still finds it: it stays. So does a live
    // skill whose stored copy matches no complete listing.
    assert!(f.store.rows.contains_key(hidden));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("1 stored skills are in no listing")),
        "{:?}",
        report.warnings
    );
    let stored_unreachable = "s00063";
    f.store.rows.insert(
        stored_unreachable.into(),
        Row {
            updated_at: ts(1),
            source: Source::Registry,
            skill: Some(Skill {
                quality_score: None,
                categories: Vec::new(),
                trust_tier: TrustTier::Experimental,
                ..f.store.rows["s00002"].skill.clone().unwrap()
            }),
        },
    );
    let report = run(&mut f, opts()).unwrap();
    assert!(f.store.rows.contains_key(stored_unreachable));
    assert_eq!(report.removed, 0);
}

#[test]
fn a_feed_filled_catalogue_keeps_every_live_skill_through_a_forced_search_resync() {
    let mut reg = mixed(2000);
    reg.feed = true;
    let mut f = Fake::new(reg);
    run(&mut f, opts()).unwrap();
    assert_eq!(f.store.rows.len(), 2000, "the feed lists everything");
    // The registry drops the feed; the user forces a resync.
    f.reg.feed = false;
    let report = run(
        &mut f,
        SyncOptions {
            force: true,
            mode: Some(SyncMode::Search),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(report.mode, SyncMode::Search);
    assert_eq!(report.removed, 0, "{:?}", report.warnings);
    assert_eq!(f.store.rows.len(), 2000);
    // A deletion the listings can prove still goes.
    f.reg.delete("s00004");
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.removed, 1);
    assert!(!f.store.rows.contains_key("s00004"));
}

#[test]
fn a_duplicate_id_converges_to_its_newest_copy() {
    let mut reg = FakeRegistry::with(500, false);
    // The stale copies sort first (quality 0.99): the old "first wins" kept them.
    reg.stale_copies = vec!["s00003".into(), "s00250".into()];
    let mut f = Fake::new(reg);
    run(&mut f, opts()).unwrap();
    for id in ["s00003", "s00250"] {
        assert_eq!(
            f.store.rows[id].updated_at, f.reg.skills[id].updated_at,
            "{id}"
        );
    }
    let report = run(&mut f, opts()).unwrap();
    assert_eq!((report.added, report.updated), (0, 0), "converged");
}

#[test]
fn a_registry_that_ignores_offset_stops_at_its_second_page() {
    let mut f = Fake::new(FakeRegistry::with(5000, false));
    f.hook = Some(Box::new(|_, r| {
        if r.url.contains("/skills-search") && !r.url.contains("offset=0") {
            let url = r
                .url
                .replace(&r.url[r.url.find("offset=").unwrap()..], "offset=0");
            let mut fake = FakeRegistry::with(5000, false);
            fake.clock = 0;
            return Some(Ok(fake.respond(&HttpRequest { url, ..r.clone() })));
        }
        None
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(
        matches!(err, SyncError::Protocol(ref m) if m.contains("ignore `offset`")),
        "{err}"
    );
    // The pages sent ahead of the second are abandoned with it.
    assert!(
        search_requests(&f) <= 2 + crate::retry::MAX_IN_FLIGHT,
        "{} requests",
        search_requests(&f)
    );
}

#[test]
fn unscored_blocks_at_the_start_of_listings_are_found() {
    // A registry that sorts nulls first (SQL's default for DESC).
    let reg = mixed(1500);
    let mut f = Fake::new(reg);
    f.hook = Some(Box::new(|_, r| {
        if !r.url.contains("/skills-search") {
            return None;
        }
        let q: BTreeMap<String, String> = r
            .url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), decode(v))
            })
            .collect();
        let reg = mixed(1500);
        let offset: usize = q["offset"].parse().unwrap();
        let limit: usize = q["limit"].parse().unwrap();
        // Everything, then reorder: nulls first, then by quality.
        let mut all = q.clone();
        all.insert("offset".into(), "0".into());
        all.insert("limit".into(), "100".into());
        let mut rows: Vec<serde_json::Value> = Vec::new();
        let mut total;
        loop {
            let query: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let url = format!("{BASE}/skills-search?{}", query.join("&"));
            let resp = reg.respond(&HttpRequest { url, ..r.clone() });
            if resp.status != 200 {
                return Some(Ok(resp));
            }
            let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            total = v["meta"]["total"].as_u64().unwrap() as usize;
            rows.extend(v["data"].as_array().unwrap().iter().cloned());
            if rows.len() >= total {
                break;
            }
            all.insert("offset".into(), rows.len().to_string());
        }
        rows.sort_by_key(|row| row["quality_score"].is_number());
        let page: Vec<String> = rows
            .iter()
            .skip(offset)
            .take(limit)
            .map(|v| v.to_string())
            .collect();
        Some(Ok(ok(&format!(
            r#"{{"data":[{}],"meta":{{"total":{total}}}}}"#,
            page.join(",")
        ))))
    }));
    let report = run(&mut f, opts()).unwrap();
    let unreachable = unreachable_ids(&f.reg);
    assert_eq!(
        f.store.rows.len(),
        1500 - unreachable.len(),
        "{:?}",
        report.warnings
    );
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.contains("not read completely")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn without_stats_completeness_is_said_to_be_unchecked() {
    let mut reg = FakeRegistry::with(300, false);
    reg.stats = false;
    let mut f = Fake::new(reg);
    let report = run(&mut f, opts()).unwrap();
    assert_eq!(report.added, 300);
    assert_eq!(report.coverage.as_ref().unwrap().registry_total, None);
    assert_eq!(report.coverage.as_ref().unwrap().unreachable(), None);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("could not be checked") && w.contains("404")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn listings_far_larger_than_the_registry_says_are_stopped() {
    // /stats says 300 skills; the listings claim a million, one record a page.
    let mut f = Fake::new(FakeRegistry::with(300, false));
    f.hook = Some(Box::new(|_, r| {
        if !r.url.contains("/skills-search") {
            return None;
        }
        let offset: u64 = r.url.split("offset=").nth(1)?.parse().ok()?;
        Some(Ok(ok(&format!(
            r#"{{"data":[{{"id":"x{offset}","name":"n","trust_tier":"official","updated_at":"2026-01-01T00:00:00Z","quality_score":0.5}}],"meta":{{"total":1000000}}}}"#
        ))))
    }));
    let err = run(&mut f, opts()).unwrap_err();
    assert!(
        matches!(err, SyncError::Protocol(ref m) if m.contains("300 skills")),
        "{err}"
    );
    assert!(
        search_requests(&f) <= 8 * 3 + 200 + 2,
        "{}",
        search_requests(&f)
    );
}
