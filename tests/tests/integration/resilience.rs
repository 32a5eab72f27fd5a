//! What must survive: processes killed at random instants, several writers
//! on one catalogue, client clocks hours wrong, and feed cursors the registry
//! no longer honours. Real `skillsmith` processes, real SIGKILLs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use skillsmith_testkit::feed::decode_cursor;
use skillsmith_testkit::{Fault, FaultKind, ServerConfig};

use crate::harness::{Env, Run, assert_same_catalogue};

/// Feed page size of the crash tests: small pages, many commits to land in.
const PAGE: usize = 250;

/// A small deterministic generator, seeded from `SKILLSMITH_CRASH_SEED` or
/// the clock; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("SKILLSMITH_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("SKILLSMITH_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// `(updated_at ms, id)`: the feed's order, in which its cursor points.
fn feed_key(id: &str, updated_at: &str) -> (i64, String) {
    let ms = chrono::DateTime::parse_from_rfc3339(updated_at)
        .unwrap_or_else(|e| panic!("registry updated_at {updated_at:?}: {e}"))
        .timestamp_millis();
    (ms, id.to_owned())
}

/// Opens the catalogue the way the next process would (recovering the WAL)
/// and checks it: `PRAGMA integrity_check` passes, no schema half-applied,
/// and, for the feed, the registry rows are exactly the skills up to the
/// stored cursor, so only whole pages were committed, each with its cursor.
/// Returns the number of registry rows, or `None` before the schema exists.
fn check_after_kill(env: &Env, registry: &[(String, String)]) -> Option<usize> {
    if !Path::new(&env.db).exists() {
        return None;
    }
    let conn = env.conn_rw();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    if version == 0 {
        // Killed before the migrations committed: nothing half-applied.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "a schema without a version");
        return None;
    }
    let local: BTreeSet<String> = ids(
        &conn,
        "SELECT id FROM skills WHERE sync_origin = 'registry'",
    );
    let cursor: Option<String> = conn
        .query_row("SELECT cursor FROM sync_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap()
        .flatten();
    let expected: BTreeSet<String> = match cursor.as_deref() {
        None => BTreeSet::new(),
        Some(c) => {
            let (_, upto) = decode_cursor(c).unwrap_or_else(|| panic!("stored cursor {c:?}"));
            registry
                .iter()
                .filter(|(id, at)| feed_key(id, at) <= upto)
                .map(|(id, _)| id.clone())
                .collect()
        }
    };
    assert_eq!(
        local.len(),
        expected.len(),
        "the rows are not the skills up to the stored cursor {cursor:?}"
    );
    assert!(local == expected, "rows and cursor disagree");
    assert!(
        local.len().is_multiple_of(PAGE) || local.len() == registry.len(),
        "{} rows is not a whole number of {PAGE}-skill pages",
        local.len()
    );
    Some(local.len())
}

fn ids(conn: &Connection, sql: &str) -> BTreeSet<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Starts `skillsmith sync --json ARGS`; `capture` keeps its output.
fn spawn_sync(env: &Env, args: &[&str], capture: bool) -> Child {
    let out = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    env.cmd()
        .args(["sync", "--json"])
        .args(args)
        .stdout(out())
        .stderr(out())
        .spawn()
        .expect("spawn skillsmith")
}

/// History statuses, oldest first; no run may be left `running`.
fn statuses(env: &Env) -> Vec<(String, Option<String>)> {
    let conn = env.conn();
    let mut stmt = conn
        .prepare("SELECT status, error_message FROM sync_history ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn killed_at_random_moments_the_feed_sync_keeps_whole_pages_and_resumes() {
    let env = Env::new(60_000);
    let registry = env.registry.snapshot();
    let total = registry.len();
    let mut rng = Rng::from_env();
    let page = PAGE.to_string();
    let mut rows = 0;
    let mut kills = 0;
    // Kill points spread over start-up (opening, migrating, taking the
    // lease), the first pages and the middle of the run; every run resumes
    // where the last one stopped, so the sync keeps moving.
    // Killing stops at 70%, so the last run also shows the resume.
    while kills < 30 && rows < total * 7 / 10 {
        let mut child = spawn_sync(&env, &["--page-size", &page], false);
        std::thread::sleep(Duration::from_millis(5 + rng.below(400)));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += u32::from(!finished);
        let now = check_after_kill(&env, &registry).unwrap_or(0);
        assert!(now >= rows, "a kill lost committed rows: {rows} -> {now}");
        rows = now;
    }
    eprintln!("{kills} kills; {rows} of {total} skills committed before the last run");
    assert!(kills >= 5, "too few kills landed to test anything");

    // The next sync resumes from the stored cursor: it fetches only what is
    // left, and ends equal to the registry.
    let report = env.sync(&["--page-size", &page]);
    assert_eq!(report["added"], (total - rows) as u64, "{report}");
    assert_eq!(report["unchanged"], 0, "nothing is fetched twice: {report}");
    assert_same_catalogue(&env);
    let history = statuses(&env);
    assert_eq!(history.last().unwrap().0, "success");
    for (status, error) in &history[..history.len() - 1] {
        assert!(
            status == "success"
                || (status == "failed" && error.as_deref().unwrap_or("").contains("interrupted")),
            "{status} {error:?}"
        );
    }
    let integrity: String = env.scalar("PRAGMA integrity_check");
    assert_eq!(integrity, "ok");
    assert_search_index_complete(&env);
}

/// The full-text index agrees with the catalogue and the other indexes are
/// back (a first sync builds them at its end, also after being killed), and
/// search finds a skill from the last page.
fn assert_search_index_complete(env: &Env) {
    env.conn_rw()
        .execute(
            "INSERT INTO skills_fts(skills_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the search index matches the catalogue");
    let pending: bool = env.scalar("SELECT fts_deferred = 1 FROM sync_state");
    assert!(!pending, "the index deferral ended");
    let saved: i64 = env.scalar("SELECT count(*) FROM deferred_index");
    let indexes: i64 = env.scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'skills' AND sql IS NOT NULL",
    );
    // trust tier, origin, author and name, the unique repository and the
    // repositories waiting (`catalogue/src/schema.rs`).
    assert_eq!((saved, indexes), (0, 5), "the deferred indexes are back");
    let (id, name): (String, String) = env
        .conn()
        .query_row(
            "SELECT id, name FROM skills ORDER BY rowid DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let hits = env.run(&["search", &name, "--json", "--limit", "50"]).ok();
    assert!(hits.stdout.contains(&id), "searching {name:?} finds {id}");
}

#[test]
fn killed_search_api_syncs_leave_an_intact_catalogue_that_converges() {
    let env = Env::search_only(8_000);
    let mut rng = Rng::from_env();
    let mut before = 0i64;
    for _ in 0..8 {
        let mut child = spawn_sync(&env, &[], false);
        std::thread::sleep(Duration::from_millis(5 + rng.below(500)));
        child.kill().unwrap();
        child.wait().unwrap();
        if Path::new(&env.db).exists() {
            let conn = env.conn_rw();
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'skills'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            if n == 1 {
                let rows: i64 = conn
                    .query_row("SELECT count(*) FROM skills", [], |r| r.get(0))
                    .unwrap();
                assert!(rows >= before, "a kill lost committed rows");
                before = rows;
            }
        }
    }
    env.sync(&[]);
    assert_same_catalogue(&env);
    assert!(statuses(&env).iter().all(|(s, _)| s != "running"));
    assert_search_index_complete(&env);
}

/// Starts `n` `skillsmith sync` processes at once.
fn racing_syncs(env: &Env, n: usize, args: &[&str]) -> Vec<Run> {
    let children: Vec<Child> = (0..n).map(|_| spawn_sync(env, args, true)).collect();
    children
        .into_iter()
        .map(|c| Run::from(c.wait_with_output().unwrap()))
        .collect()
}

/// `(started_at, completed_at)` of every run, which must not overlap.
fn assert_runs_never_overlap(env: &Env) {
    let conn = env.conn();
    let mut stmt = conn
        .prepare("SELECT started_at, completed_at FROM sync_history ORDER BY started_at")
        .unwrap();
    let runs: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for pair in runs.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two syncs overlapped: {:?} and {:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn concurrent_writers_take_turns_and_readers_are_never_blocked() {
    let env = Env::new(20_000);
    // Slow enough that the racers really overlap.
    env.registry
        .set_fault(Fault::new(FaultKind::Delay { ms: 40 }).on("/skills-changes"));

    // Readers in a loop while the writers race.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let cmd = |args: &[&str]| {
            let mut c = env.cmd();
            c.args(args);
            c
        };
        let mut commands: Vec<Command> = vec![
            cmd(&["search", "code", "--json"]),
            cmd(&["sync", "status", "--json"]),
            cmd(&["sync", "history", "--json"]),
        ];
        std::thread::spawn(move || {
            let mut runs = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for c in &mut commands {
                    let started = Instant::now();
                    let out = c.output().unwrap();
                    runs.push((Run::from(out), started.elapsed()));
                }
            }
            runs
        })
    };

    // Four at once, without --wait: one syncs, the others say so.
    let runs = racing_syncs(&env, 4, &[]);
    let ok = runs.iter().filter(|r| r.code == 0).count();
    assert!(ok >= 1, "someone must sync");
    for r in &runs {
        assert!(
            !r.stderr.contains("locked") && !r.stderr.contains("SQLITE_BUSY"),
            "{}",
            r.stderr
        );
        if r.code != 0 {
            assert_eq!(r.code, 7, "{}", r.stderr);
            assert!(
                r.stderr
                    .contains("another sync of this catalogue is in progress")
                    && r.stderr.contains("--wait"),
                "{}",
                r.stderr
            );
        }
    }
    assert_same_catalogue(&env);

    // Four at once with --wait: each runs in turn.
    // Deleting first keeps the updated skills distinct from the deleted.
    env.registry.delete(20);
    env.registry.update(300);
    let runs = racing_syncs(&env, 4, &["--wait", "120"]);
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let updated: u64 = runs
        .iter()
        .map(|r| r.json()["updated"].as_u64().unwrap())
        .sum();
    let removed: u64 = runs
        .iter()
        .map(|r| r.json()["removed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        (updated, removed),
        (300, 20),
        "the changes arrive exactly once"
    );
    assert_same_catalogue(&env);
    assert_runs_never_overlap(&env);

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(!reads.is_empty());
    for (r, took) in &reads {
        assert_eq!(r.code, 0, "a reader failed during a sync:\n{}", r.stderr);
        assert!(!r.stderr.contains("locked"), "{}", r.stderr);
        // Not a timing target: a reader stuck behind a sync would wait for
        // its whole duration (seconds); a busy CI machine adds far less.
        assert!(*took < Duration::from_secs(5), "a reader waited {took:?}");
    }
    eprintln!("{} reads during the syncs, all answered", reads.len());
}

/// Runs a full sync, changes the registry, and syncs again, all with the
/// client's clock shifted by `client_ms` and the registry's by `registry_ms`.
fn skewed(mode_feed: bool, client_ms: &[i64], registry_ms: i64) {
    let env = Env::with(ServerConfig {
        feed_enabled: mode_feed,
        clock_offset_ms: registry_ms,
        ..ServerConfig::new(6_000, 11)
    });
    let sync = |offset: i64| {
        let mut cmd = env.cmd();
        cmd.env("SKILLSMITH_CLOCK_OFFSET_MS", offset.to_string())
            .args(["sync", "--json", "--page-size", "100"]);
        let run = Run::from(cmd.output().unwrap()).ok();
        run.json()
    };
    let first = sync(client_ms[0]);
    assert_eq!(first["added"], 6_000, "{first}");
    for (round, &offset) in client_ms.iter().enumerate().skip(1) {
        let total_before = env.registry.snapshot().len() as u64;
        // Deleting first keeps the updated skills distinct from the deleted.
        env.registry.delete(25);
        env.registry.update(150);
        env.registry.insert(40);
        env.registry.reset_stats();
        let r = sync(offset);
        let what = format!("client {offset:+} ms, registry {registry_ms:+} ms, round {round}: {r}");
        assert_eq!(
            (
                r["added"].as_u64(),
                r["updated"].as_u64(),
                r["removed"].as_u64()
            ),
            (Some(40), Some(150), Some(25)),
            "{what}"
        );
        assert_same_catalogue(&env);
        if mode_feed {
            // 215 changes in pages of 100, and the caught-up answer: nothing
            // refetched, nothing skipped.
            assert_eq!(r["unchanged"], 0, "{what}");
            assert!(r["requests"].as_u64().unwrap() <= 4, "{what}");
        } else {
            assert_eq!(r["unchanged"], total_before - 25 - 150, "{what}");
        }
        let noop = sync(offset);
        assert_eq!(
            noop["added"].as_u64().unwrap() + noop["updated"].as_u64().unwrap(),
            0,
            "{noop}"
        );
        if mode_feed {
            assert_eq!(noop["requests"], 1, "{noop}");
        }
    }
}

const HOUR: i64 = 3_600_000;

#[test]
fn client_clocks_hours_wrong_change_nothing_in_the_feed() {
    // Behind, ahead, and jumping between runs; the registry's own clock is
    // also off, which is the only clock the sync may trust.
    skewed(true, &[-5 * HOUR, -5 * HOUR, 7 * HOUR, -9 * HOUR], 0);
    skewed(true, &[3 * HOUR, -2 * HOUR], -4 * HOUR);
}

#[test]
fn client_clocks_hours_wrong_change_nothing_in_the_search_api() {
    skewed(false, &[6 * HOUR, -6 * HOUR, 0], 2 * HOUR);
}

#[test]
fn an_expired_or_invalid_feed_cursor_leads_to_a_full_resync() {
    let env = Env::new(5_000);
    env.sync(&[]);
    // Deletions whose tombstones the registry then discards: the stored
    // cursor is older than the discard, so the feed answers 410.
    let gone = env.registry.delete(30);
    env.registry.update(10);
    env.registry.expire_tombstones();
    env.registry.reset_stats();
    let r = env.sync(&[]);
    assert_eq!(
        r["removed"], 30,
        "a resync removes what it did not see: {r}"
    );
    assert_eq!(r["updated"], 10, "{r}");
    assert!(
        r["warnings"].to_string().contains("expired")
            || r["warnings"].to_string().contains("resync"),
        "the report says why it resynced: {r}"
    );
    assert!(env.registry.stats().count("/skills-changes") > 1);
    assert_same_catalogue(&env);
    for id in &gone {
        let n: i64 = env.scalar(&format!("SELECT count(*) FROM skills WHERE id = '{id}'"));
        assert_eq!(n, 0, "{id} was removed");
    }

    // A cursor the registry never issued: 400 invalid_cursor, then the same.
    env.conn_rw()
        .execute(
            "UPDATE sync_state SET cursor = 'not-a-cursor', etag = NULL",
            [],
        )
        .unwrap();
    env.registry.delete(5);
    let r = env.sync(&[]);
    assert_eq!(r["removed"], 5, "{r}");
    assert_same_catalogue(&env);
    // And the sync after it is a one-request no-op again.
    let r = env.sync(&[]);
    assert_eq!(r["requests"], 1, "{r}");
}
