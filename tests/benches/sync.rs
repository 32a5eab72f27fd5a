//! The sync benchmark: real `skillsmith` release binaries against the test
//! registry on loopback, timed and measured (wall time, peak RSS, requests),
//! beside the physical bound (the same rows inserted straight into the same
//! schema with rusqlite) and the component's load and instantiate costs.
//!
//! Run with `scripts/bench.sh` (it builds the release binaries first).
//! `BENCH_SIZES=20000,100000` picks the catalogue sizes; `BENCH_REPEAT=3` the
//! repetitions per row (the median is reported); `BENCH_PARTS=sync,raw,component`
//! (and `wire`, bytes on the wire beside bytes decoded; `wan`, syncs over
//! added latency and under rate limits)
//! picks the tables. Results go to stdout as a
//! Markdown table, for `docs/PERFORMANCE.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rusqlite::params;
use serde_json::Value;
use skillsmith_runtime::component::ComponentRuntime;
use skillsmith_runtime::db::Database;
use skillsmith_testkit::server::RateWindows;
use skillsmith_testkit::{RegistryHandle, RegistryServer, ServerConfig, TierMix};

/// One measured command.
struct Sample {
    wall: Duration,
    rss_kib: u64,
    report: Value,
}

fn release_dir() -> PathBuf {
    // target/release/deps/sync-<hash> -> target/release
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// `--rss-of CMD ARGS...`: this binary re-executes itself as a wrapper so that
/// `RUSAGE_CHILDREN` covers exactly one child, the measured one.
fn rss_wrapper(args: &[String]) -> ! {
    let status = Command::new(&args[0])
        .args(&args[1..])
        .status()
        .expect("spawn measured command");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    eprintln!("BENCH_MAX_RSS_KIB={}", usage.max_rss());
    std::process::exit(status.code().unwrap_or(1));
}

fn skillsmith(db: &Path, registry: &RegistryHandle, args: &[&str]) -> Sample {
    let me = std::env::current_exe().unwrap();
    let started = Instant::now();
    let out = Command::new(me)
        .arg("--rss-of")
        .arg(release_dir().join("skillsmith"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "--registry",
            &registry.base_url(),
            "sync",
            "--json",
        ])
        .args(args)
        .env(
            "SKILLSMITH_CACHE_DIR",
            release_dir().join("bench-component-cache"),
        )
        .output()
        .expect("run skillsmith");
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "skillsmith {args:?} failed:\n{stderr}"
    );
    let rss_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_MAX_RSS_KIB="))
        .and_then(|v| v.trim().parse().ok())
        .expect("rss line");
    let report = serde_json::from_slice(&out.stdout).expect("json report");
    Sample {
        wall,
        rss_kib,
        report,
    }
}

/// One untimed sync, so that the binary's compiled-component cache holds
/// the current component: otherwise the first timed component run pays a
/// Cranelift compile (about 0.3 s and 30 MB) that users pay once per install.
fn warm_component_cache() {
    let registry = RegistryServer::start(ServerConfig::new(10, 7)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    skillsmith(&dir.path().join("warm.db"), &registry, &[]);
}

/// The middle sample (of an even count, the slower of the middle two).
fn median(mut xs: Vec<Sample>) -> Sample {
    xs.sort_by_key(|s| s.wall);
    let mid = xs.len() / 2;
    xs.swap_remove(mid)
}

fn row(label: &str, n: usize, s: &Sample) {
    println!(
        "| {label} | {n} | {:.3} | {:.1} | {} | {} | {} | {} |",
        s.wall.as_secs_f64(),
        s.rss_kib as f64 / 1024.0,
        s.report["requests"],
        s.report["added"],
        s.report["updated"],
        s.report["removed"],
    );
}

/// Full, no-op and 1%-changed syncs for one protocol, with both backends,
/// each run on a fresh registry and catalogue so repetitions see the same
/// work. The backends alternate within each repetition, so that drift in
/// the machine's speed (large here) falls on both alike and their
/// difference is the component's cost, not the order of the runs.
fn sync_rows(n: usize, feed: bool, repeat: usize) {
    let mode = if feed { "feed" } else { "search" };
    let backends = [
        ("component", vec!["--mode", mode]),
        ("native", vec!["--mode", mode, "--native"]),
    ];
    // [backend][full, no-op, 1%] -> samples
    let mut samples: Vec<[Vec<Sample>; 3]> = backends.iter().map(|_| Default::default()).collect();
    for _ in 0..repeat {
        for (runs, (_, extra)) in samples.iter_mut().zip(&backends) {
            let registry = RegistryServer::start(ServerConfig {
                feed_enabled: feed,
                compression: compression(),
                ..ServerConfig::new(n, 7)
            })
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("skills.db");
            runs[0].push(skillsmith(&db, &registry, extra));
            runs[1].push(skillsmith(&db, &registry, extra));
            registry.update(n / 100);
            runs[2].push(skillsmith(&db, &registry, extra));
        }
    }
    for (runs, (backend, _)) in samples.into_iter().zip(&backends) {
        for (run, what) in runs
            .into_iter()
            .zip(["full sync", "no-op sync", "1% changed"])
        {
            row(&format!("{mode} / {backend}: {what}"), n, &median(run));
        }
    }
}

/// Bytes on the wire beside bytes decoded, for a full sync in each protocol
/// (component backend): what compression saves on a real network.
/// `BENCH_LINK` names the link the rows ran over (`scripts/bench-bandwidth.sh`
/// runs them in a network namespace whose loopback is rate-capped).
fn wire_rows(n: usize) {
    let link = std::env::var("BENCH_LINK").unwrap_or_else(|_| "loopback".into());
    let compressed = if compression() {
        "compressed"
    } else {
        "uncompressed"
    };
    for feed in [true, false] {
        let registry = RegistryServer::start(ServerConfig {
            feed_enabled: feed,
            compression: compression(),
            ..ServerConfig::new(n, 7)
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        registry.reset_stats();
        let s = skillsmith(&dir.path().join("skills.db"), &registry, &[]);
        let stats = registry.stats();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        println!(
            "| {} full sync, {link}, {compressed} | {n} | {} | {:.2} | {:.2} | {:.1}% | {:.3} |",
            if feed { "feed" } else { "search" },
            s.report["requests"],
            mib(stats.wire_bytes),
            mib(stats.body_bytes),
            100.0 * stats.wire_bytes as f64 / stats.body_bytes.max(1) as f64,
            s.wall.as_secs_f64(),
        );
    }
}

/// Syncs over a slow network (added latency per response) and under a rate
/// limit, against what the latency or the limit alone would allow.
fn wan_rows(n: usize) {
    println!(
        "| run | skills | latency ms | requests | wall s | requests x latency s | wall / (requests x latency) | on the wire MiB | decoded MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (feed, latency) in [
        (true, 10),
        (true, 50),
        (false, 10),
        (false, 30),
        (false, 50),
    ] {
        let registry = RegistryServer::start(ServerConfig {
            feed_enabled: feed,
            latency_ms: latency,
            ..ServerConfig::new(n, 7)
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        registry.reset_stats();
        let mode = if feed { "feed" } else { "search" };
        let s = skillsmith(&dir.path().join("skills.db"), &registry, &["--mode", mode]);
        let stats = registry.stats();
        let requests = s.report["requests"].as_u64().unwrap_or(0);
        let serial = requests as f64 * latency as f64 / 1000.0;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        println!(
            "| {} full sync | {n} | {latency} | {requests} | {:.2} | {serial:.2} | {:.2} | {:.2} | {:.2} |",
            if feed { "feed" } else { "search" },
            s.wall.as_secs_f64(),
            s.wall.as_secs_f64() / serial,
            mib(stats.wire_bytes),
            mib(stats.body_bytes),
        );
    }
    println!();
    println!(
        "| rate-limited search sync | windows lie | reset in | skills | requests | windows | minimum s | wall s | wall / minimum | 429s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // Small catalogues, so that a minute-long window still takes minutes,
    // not an hour: the rows measure how close to the limit's minimum the
    // pacing gets, which the catalogue's size does not change.
    for (window_ms, windows, millis, size) in [
        (3_000u64, RateWindows::Aligned, false, 5_000),
        (3_000, RateWindows::FirstRequest, false, 5_000),
        (3_000, RateWindows::FirstRequest, true, 5_000),
        (60_000, RateWindows::Aligned, false, 2_000),
    ] {
        let n = n.min(size);
        let limit = 10u32;
        let registry = RegistryServer::start(ServerConfig {
            feed_enabled: false,
            rate_limit_per_minute: limit,
            rate_window_ms: window_ms,
            rate_windows: windows,
            rate_reset_millis: millis,
            ..ServerConfig::new(n, 7)
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        registry.reset_stats();
        let s = skillsmith(
            &dir.path().join("skills.db"),
            &registry,
            &["--mode", "search", "--retry-budget", "600"],
        );
        let stats = registry.stats();
        let requests = stats.total;
        let needed = requests.div_ceil(u64::from(limit));
        let window = window_ms as i64;
        let first = stats.recent.first().map_or(0, |r| r.at_ms);
        // The last window a client needs opens, at the earliest, `needed - 1`
        // windows after the first: where that is depends on how the windows
        // lie, and for aligned ones on when in its window the first request
        // came.
        let last_opens = match windows {
            RateWindows::Aligned => (first.div_euclid(window) + needed as i64 - 1) * window - first,
            _ => (needed as i64 - 1) * window,
        };
        let minimum = last_opens.max(0) as f64 / 1000.0;
        let refused = stats.recent.iter().filter(|r| r.status == 429).count();
        println!(
            "| {limit} per {} s | {} | {} | {n} | {requests} | {needed} | {minimum:.2} | {:.2} | {:.3} | {refused} |",
            window_ms / 1000,
            match windows {
                RateWindows::Aligned => "from the epoch",
                RateWindows::FirstRequest => "from a request",
                RateWindows::FirstRequestRoundedDown => "from a request, rounded down",
            },
            if millis { "ms" } else { "s" },
            s.wall.as_secs_f64(),
            s.wall.as_secs_f64() / minimum.max(f64::EPSILON),
        );
    }
    println!();
}

/// Whether the registry of the loopback rows compresses (as a hosted API
/// does); `BENCH_COMPRESSION=0` turns it off, to tell its cost apart.
fn compression() -> bool {
    std::env::var("BENCH_COMPRESSION").map_or(true, |v| v != "0")
}

/// The tier mix of issue 11: verified 1 : community 6 : experimental 3, so
/// that 30% of the catalogue sits in a tier the search API cannot filter on.
const MIXED_TIERS: &str = "verified=1,community=6,experimental=3";

/// Search-mode syncs of the mixed catalogue (component backend): requests
/// beside the floor of one request per 100 skills, and what the cover
/// reached.
fn mixed_rows(n: usize, repeat: usize) {
    let mut samples: [Vec<Sample>; 3] = Default::default();
    for _ in 0..repeat {
        let registry = RegistryServer::start(ServerConfig {
            feed_enabled: false,
            tier_mix: TierMix::parse(MIXED_TIERS).unwrap(),
            compression: compression(),
            ..ServerConfig::new(n, 7)
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("skills.db");
        samples[0].push(skillsmith(&db, &registry, &[]));
        samples[1].push(skillsmith(&db, &registry, &[]));
        registry.update(n / 100);
        samples[2].push(skillsmith(&db, &registry, &[]));
    }
    let floor = n.div_ceil(100);
    for (runs, what) in samples
        .into_iter()
        .zip(["full sync", "no-op sync", "1% changed"])
    {
        let s = median(runs);
        let requests = s.report["requests"].as_u64().unwrap_or(0);
        println!(
            "| search, mixed tiers: {what} | {n} | {:.3} | {:.1} | {requests} | {floor} | {:.2} | {} | {} | {} |",
            s.wall.as_secs_f64(),
            s.rss_kib as f64 / 1024.0,
            requests as f64 / floor as f64,
            s.report["coverage"]["reached"],
            s.report["coverage"]["unreachable"],
            s.report["added"],
        );
    }
}

/// Peak disk use of a full sync (database, WAL and shared-memory file,
/// sampled every 2 ms while it runs) against the database's final size.
fn disk_rows(n: usize) {
    let registry = RegistryServer::start(ServerConfig::new(n, 7)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("skills.db");
    let files = ["skills.db", "skills.db-wal", "skills.db-shm"].map(|f| dir.path().join(f));
    let used = || -> u64 {
        files
            .iter()
            .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum()
    };
    let mut child = Command::new(release_dir().join("skillsmith"))
        .args([
            "--db",
            db.to_str().unwrap(),
            "--registry",
            &registry.base_url(),
            "sync",
        ])
        .env(
            "SKILLSMITH_CACHE_DIR",
            release_dir().join("bench-component-cache"),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(used());
        std::thread::sleep(Duration::from_millis(2));
    }
    peak = peak.max(used());
    let final_db = std::fs::metadata(&db).map_or(0, |m| m.len());
    let left = used() - final_db;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| full sync | {n} | {:.1} | {:.1} | {:.2} | {:.1} |",
        mib(final_db),
        mib(peak),
        peak as f64 / final_db as f64,
        mib(left),
    );
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

/// The physical bound: the registry's rows inserted into the same schema
/// with plain rusqlite, in transactions of `batch`: indexed for search row by
/// row by the FTS5 triggers and the indexes, or (`deferred`) with the
/// triggers off and the indexes dropped, then built at the end (timed too),
/// as a first sync does.
fn raw_insert(n: usize, batch: usize, deferred: bool) -> Duration {
    let catalogue = skillsmith_testkit::Catalogue::generate(n, 7);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("raw.db")).unwrap();
    drop(db);
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.pragma_update(None, "journal_mode", "wal").unwrap();
    conn.pragma_update(None, "synchronous", "normal").unwrap();
    let skills = catalogue.skills();
    let started = Instant::now();
    // Deferred: what a first sync does (migrations 005 and 006), written
    // out here with no code shared with the store it bounds.
    let indexes: Vec<(String, String)> = if deferred {
        conn.execute("UPDATE sync_state SET fts_deferred = 1", [])
            .unwrap();
        let saved: Vec<(String, String)> = conn
            .prepare(
                "SELECT name, sql FROM sqlite_schema \
                 WHERE type = 'index' AND tbl_name = 'skills' AND sql IS NOT NULL",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for (name, _) in &saved {
            conn.execute_batch(&format!("DROP INDEX {name}")).unwrap();
        }
        saved
    } else {
        Vec::new()
    };
    for chunk in skills.chunks(batch) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO skills (id, name, description, author, repo_url, quality_score, trust_tier, \
                     tags, categories, stars, license, created_at, updated_at, registry_tier, sync_origin) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'registry')",
                )
                .unwrap();
            for s in chunk {
                // The tiers the catalogue's CHECK (upstream 0.4.3's) allows
                // are stored as they are, the others as `unknown` with the
                // real one beside it, as the store does.
                let tier = json(&s.trust_tier);
                let tier = tier.trim_matches('"');
                let allowed = ["verified", "community", "experimental", "unknown"].contains(&tier);
                stmt.execute(params![
                    s.id,
                    s.name,
                    s.description,
                    s.author,
                    s.repo_url,
                    s.quality_score,
                    if allowed { tier } else { "unknown" },
                    json(&s.tags),
                    json(&s.categories),
                    s.stars,
                    s.license,
                    s.created_at(),
                    s.updated_at(),
                    (!allowed).then_some(tier),
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    if deferred {
        let tx = conn.transaction().unwrap();
        for (_, sql) in &indexes {
            tx.execute_batch(sql).unwrap();
        }
        tx.execute_batch(
            "INSERT INTO skills_fts(skills_fts) VALUES ('rebuild');
             UPDATE sync_state SET fts_deferred = 0;",
        )
        .unwrap();
        tx.commit().unwrap();
    }
    started.elapsed()
}

fn component_rows() {
    let wasm = ComponentRuntime::embedded_wasm();
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cold = ComponentRuntime::load_cold(wasm).unwrap();
    let cold_t = started.elapsed();
    // Fill the cache, then time a load from it.
    ComponentRuntime::load_cached(wasm, cache.path()).unwrap();
    let started = Instant::now();
    let _cached = ComponentRuntime::load_cached(wasm, cache.path()).unwrap();
    let cached_t = started.elapsed();
    let inst = (0..20).map(|_| cold.instantiate().unwrap()).min().unwrap();
    println!("\n| component | time |\n|---|---|");
    println!("| size | {} KiB |", wasm.len() / 1024);
    println!(
        "| load, cold (Cranelift compile) | {:.1} ms |",
        cold_t.as_secs_f64() * 1e3
    );
    println!(
        "| load, from the compiled cache | {:.2} ms |",
        cached_t.as_secs_f64() * 1e3
    );
    println!(
        "| instantiate (best of 20) | {:.1} us |",
        inst.as_secs_f64() * 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--rss-of") {
        rss_wrapper(&args[1..]);
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a listing; nothing to list.
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "20000,100000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("BENCH_SIZES: comma-separated numbers")
        })
        .collect();
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    assert!(
        release_dir().join("skillsmith").exists(),
        "build the release binaries first: scripts/bench.sh"
    );

    let parts =
        std::env::var("BENCH_PARTS").unwrap_or_else(|_| "sync,mixed,disk,raw,component".into());
    if parts.contains("sync") || parts.contains("mixed") || parts.contains("disk") {
        warm_component_cache();
    }
    if parts.contains("disk") {
        println!(
            "| run | skills | final database MiB | peak on disk MiB | peak / final | left beside it MiB |"
        );
        println!("|---|---|---|---|---|---|");
        for &n in &sizes {
            disk_rows(n);
        }
        println!();
    }
    if parts.contains("mixed") {
        println!(
            "| run | skills | wall s | peak RSS MiB | requests | floor ceil(N/100) | requests / floor | reached | unreachable | added |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        for &n in &sizes {
            mixed_rows(n, repeat);
        }
        println!();
    }
    if parts.contains("wan") {
        for &n in &sizes {
            wan_rows(n);
        }
    }
    if parts.contains("wire") {
        println!(
            "| run | skills | requests | on the wire MiB | decoded MiB | wire / decoded | wall s |"
        );
        println!("|---|---|---|---|---|---|---|");
        for &n in &sizes {
            wire_rows(n);
        }
        println!();
    }
    if parts.contains("sync") {
        println!("| run | skills | wall s | peak RSS MiB | requests | added | updated | removed |");
        println!("|---|---|---|---|---|---|---|---|");
        for &n in &sizes {
            for feed in [false, true] {
                sync_rows(n, feed, repeat);
            }
        }
    }
    if !parts.contains("raw") {
        if parts.contains("component") {
            component_rows();
        }
        return;
    }
    // The median, like the sync rows it bounds, so that a ratio compares
    // like with like; the best run beside it.
    println!(
        "\n| raw bound: rusqlite inserts, same schema incl. FTS5 | skills | wall s (median) | wall s (best) |\n|---|---|---|---|"
    );
    for &n in &sizes {
        for deferred in [false, true] {
            for batch in [100, 1000, 5000, n] {
                let mut runs: Vec<Duration> = (0..repeat)
                    .map(|_| raw_insert(n, batch, deferred))
                    .collect();
                runs.sort();
                let (t, best) = (runs[runs.len() / 2], runs[0]);
                let how = if deferred {
                    "indexes built at the end"
                } else {
                    "indexed row by row"
                };
                println!(
                    "| transactions of {batch} rows, {how} | {n} | {:.3} | {:.3} |",
                    t.as_secs_f64(),
                    best.as_secs_f64()
                );
            }
        }
    }
    if parts.contains("component") {
        component_rows();
    }
}
