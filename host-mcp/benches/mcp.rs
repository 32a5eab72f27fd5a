//! The MCP server benchmark: the real `skillsmith-mcp` release binary over
//! its stdio, against a catalogue of 100,000 skills synced from the test
//! registry on loopback.
//!
//! - spawn to initialized: from spawning the process to having the
//!   `initialize` result (when a client sends `notifications/initialized`);
//! - `search` tool latency: one `tools/call` round trip, client to client,
//!   over a set of one- and two-word queries, beside the same queries through
//!   `Database::search` in process (the part that is SQLite's FTS5).
//!
//! Run with `cargo bench -p skillsmith-mcp --bench mcp` (release build).
//! `BENCH_SKILLS` sets the catalogue size (default 100000), `BENCH_SPAWNS`
//! the spawns (default 30), `BENCH_SEARCHES` the searches (default 2000).
//! Prints Markdown rows for `docs/PERFORMANCE.md`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skillsmith_runtime::SyncRunner;
use skillsmith_runtime::db::{Database, SearchFilter};
use skillsmith_testkit::{RegistryServer, ServerConfig};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running server and line-oriented pipes to it.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Session {
    fn spawn(db: &Path, cache: &Path) -> Session {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skillsmith-mcp"))
            .env("SKILLSMITH_DB", db)
            .env("SKILLSMITH_API_URL", "http://127.0.0.1:9/functions/v1")
            .env("SKILLSMITH_CACHE_DIR", cache)
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn skillsmith-mcp");
        Session {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            next_id: 1,
        }
    }

    fn send(&mut self, v: &Value) {
        writeln!(self.stdin, "{v}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and reads until its response.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "server closed stdout"
            );
            let v: Value = serde_json::from_str(&line).expect("JSON-RPC on stdout");
            if v.get("method").is_none() && v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn initialize(&mut self) {
        let r = self.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "0"}}),
        );
        assert!(r.get("result").is_some(), "{r}");
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    }

    fn close(mut self) -> Duration {
        drop(self.stdin);
        let started = Instant::now();
        self.child.wait().unwrap();
        started.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes `--bench`; no other arguments are taken.
    let skills = env_usize("BENCH_SKILLS", 100_000);
    let spawns = env_usize("BENCH_SPAWNS", 30);
    let searches = env_usize("BENCH_SEARCHES", 2000);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("skills.db");
    let cache = dir.path().join("component-cache");

    // The catalogue: a real sync from the test registry.
    let registry = RegistryServer::start(ServerConfig::new(skills, 7)).unwrap();
    let started = Instant::now();
    let outcome = SyncRunner::new(&db, registry.base_url())
        .run()
        .expect("initial sync");
    eprintln!("synced {} skills in {:?}", outcome.added, started.elapsed());
    // Background sync off: the benchmark measures the server, not a sync.
    Database::open(&db).unwrap().set_enabled(false).unwrap();
    let catalogue = registry.catalogue();
    let words: Vec<String> = catalogue
        .skills()
        .iter()
        .step_by((skills / 200).max(1))
        .flat_map(|s| {
            let mut parts = s.name.split('-');
            let adjective = parts.next().unwrap_or("git").to_owned();
            let noun = parts.next().unwrap_or("code").to_owned();
            [
                adjective.clone(),
                noun.clone(),
                format!("{adjective} {noun}"),
            ]
        })
        .collect();

    // Warm the component cache and the page cache once.
    Session::spawn(&db, &cache).close();

    // Spawn to initialized.
    let mut init = Vec::with_capacity(spawns);
    let mut exits = Vec::with_capacity(spawns);
    for _ in 0..spawns {
        let t = Instant::now();
        let mut s = Session::spawn(&db, &cache);
        s.initialize();
        init.push(t.elapsed());
        exits.push(s.close());
    }
    init.sort();
    exits.sort();

    // search through MCP: one round trip per call, by kind of query.
    let one: Vec<&String> = words.iter().filter(|w| !w.contains(' ')).collect();
    let two: Vec<&String> = words.iter().filter(|w| w.contains(' ')).collect();
    let mut s = Session::spawn(&db, &cache);
    s.initialize();
    let call = |s: &mut Session, q: &str| {
        let r = s.request(
            "tools/call",
            json!({"name": "search", "arguments": {"query": q, "limit": 10}}),
        );
        assert_eq!(r["result"]["isError"], false, "{r}");
        r["result"]["structuredContent"]["count"].as_u64().unwrap()
    };
    for q in words.iter().take(100) {
        call(&mut s, q);
    }
    let mut timed = |queries: &[&String]| {
        let mut lat = Vec::with_capacity(searches);
        for i in 0..searches {
            let t = Instant::now();
            call(&mut s, queries[i % queries.len()]);
            lat.push(t.elapsed());
        }
        lat.sort();
        lat
    };
    let lat_one = timed(&one);
    let lat_two = timed(&two);
    s.close();
    let mut lat: Vec<Duration> = lat_one.iter().chain(&lat_two).copied().collect();
    lat.sort();

    // The same queries in process: what `Database::search` (FTS5) costs.
    let dbh = Database::open(&db).unwrap();
    let filter = SearchFilter {
        limit: 10,
        ..SearchFilter::default()
    };
    let direct = |queries: &[&String]| {
        let mut lat = Vec::with_capacity(searches);
        for i in 0..searches {
            let t = Instant::now();
            let _ = dbh.search(queries[i % queries.len()], &filter).unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        lat
    };
    let direct_one = direct(&one);
    let direct_two = direct(&two);
    let matches = |q: &str| {
        dbh.search(
            q,
            &SearchFilter {
                limit: 1000,
                ..SearchFilter::default()
            },
        )
        .unwrap()
        .len()
    };
    let avg =
        |qs: &[&String]| qs.iter().map(|q| matches(q)).sum::<usize>() as f64 / qs.len() as f64;
    let (avg_one, avg_two) = (avg(&one), avg(&two));

    let row = |what: String, d: &[Duration]| {
        println!(
            "| {what} | {} | {} | {} | {} |",
            ms(percentile(d, 0.5)),
            ms(percentile(d, 0.9)),
            ms(percentile(d, 0.99)),
            ms(d[0])
        );
    };
    println!("| MCP server, {skills} skills | median | p90 | p99 | min |\n|---|---|---|---|---|");
    row(format!("spawn to initialized ({spawns} spawns)"), &init);
    row(
        format!("exit after stdin closes, idle ({spawns} spawns)"),
        &exits,
    );
    row(
        format!(
            "`search` tool round trip, limit 10, all queries ({} calls)",
            2 * searches
        ),
        &lat,
    );
    row(
        format!("`search` tool round trip, one word (~{avg_one:.0} matches, capped at 1000)"),
        &lat_one,
    );
    row(
        format!("`search` tool round trip, two words (~{avg_two:.0} matches)"),
        &lat_two,
    );
    row(
        "`Database::search` in process, one word".to_owned(),
        &direct_one,
    );
    row(
        "`Database::search` in process, two words".to_owned(),
        &direct_two,
    );
    // A measurement, not a gate: say so, but let the other rows stand.
    let median = percentile(&lat, 0.5);
    if median > Duration::from_millis(5) {
        eprintln!("note: search median {median:?} is over the 5 ms target");
    }
}
