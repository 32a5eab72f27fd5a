//! The MCP server `skillsmith-mcp`, run as a real process and driven over its
//! stdio with newline-delimited JSON-RPC 2.0, the way Claude Code drives it:
//! the handshake, every tool, background sync (at start, re-reading the
//! settings at each check, `skillsmith sync config --disable` stopping it,
//! backoff after failures), at most one sync per catalogue, and prompt exit
//! when stdin closes or SIGTERM arrives in the middle of a sync. Every test
//! also checks that nothing but JSON-RPC ever appeared on stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use skillsmith_testkit::{Fault, FaultKind, ServerConfig};

use crate::harness::{Env, assert_same_catalogue};

/// How long one request may take before the test gives up (a 100k sync in a
/// debug build on a busy 2-core machine included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(240);

/// The six tools, sorted.
const TOOLS: [&str; 6] = [
    "get_skill",
    "search",
    "sync",
    "sync_config",
    "sync_history",
    "sync_status",
];

/// A running `skillsmith-mcp` and a JSON-RPC client on its pipes.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Parsed stdout messages, in order; disconnected at stdout's end.
    rx: Receiver<Value>,
    /// Every stdout line as written, for the JSON-RPC check.
    lines: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
    /// Messages received while waiting for something else.
    backlog: Vec<Value>,
    next_id: u64,
}

impl Server {
    /// Starts the server on `env`'s catalogue and registry, with the same
    /// environment as `Env::cmd` plus `vars`.
    fn spawn(env: &Env, vars: &[(&str, &str)]) -> Server {
        let mut cmd = env.command_for("skillsmith-mcp");
        cmd.env("RUST_LOG", "warn,skillsmith_mcp=debug");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn skillsmith-mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                seen.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Server {
            stdin: child.stdin.take(),
            child,
            rx,
            lines,
            stdout_reader: Some(stdout_reader),
            stderr,
            backlog: Vec::new(),
            next_id: 1,
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").expect("write to the server");
        stdin.flush().unwrap();
    }

    /// Sends a request; returns its id.
    fn start_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message, or `None` at stdout's end or after `timeout`.
    fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        match self.rx.recv_timeout(timeout) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Waits for the response to request `id`, keeping other messages in
    /// the backlog.
    fn response(&mut self, id: u64) -> Value {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        if let Some(i) = self.backlog.iter().position(|m| is_response_to(m, id)) {
            return self.backlog.remove(i);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_message(left) {
                Some(m) if is_response_to(&m, id) => return m,
                Some(m) => self.backlog.push(m),
                None => panic!("no response to request {id}\nstderr:\n{}", self.stderr()),
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.start_request(method, params);
        self.response(id)
    }

    /// The handshake: `initialize`, then `notifications/initialized`.
    fn initialize(&mut self) -> Value {
        let r = self.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "skillsmith-integration-tests", "version": "0"}
            }),
        );
        let result = r
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("initialize failed: {r}"));
        self.notify("notifications/initialized", json!({}));
        result
    }

    /// `tools/call`; returns the result (panics on a protocol error).
    fn call(&mut self, name: &str, arguments: Value) -> Value {
        let r = self.request("tools/call", json!({"name": name, "arguments": arguments}));
        r.get("result")
            .cloned()
            .unwrap_or_else(|| panic!("{name}: protocol error {r}"))
    }

    /// A tool call that must succeed; returns its structured content.
    #[track_caller]
    fn call_ok(&mut self, name: &str, arguments: Value) -> Value {
        let r = self.call(name, arguments.clone());
        assert_eq!(
            r["isError"],
            false,
            "{name} {arguments} failed: {}",
            text(&r)
        );
        assert!(!text(&r).is_empty(), "{name} has readable text");
        r["structuredContent"].clone()
    }

    /// A tool call that must fail as a tool error; returns its text.
    #[track_caller]
    fn call_err(&mut self, name: &str, arguments: Value) -> String {
        let r = self.call(name, arguments.clone());
        assert_eq!(r["isError"], true, "{name} {arguments} should fail: {r}");
        let t = text(&r);
        assert!(!t.is_empty(), "a tool error says what went wrong");
        t
    }

    fn status(&mut self) -> Value {
        self.call_ok("sync_status", json!({}))
    }

    /// Progress notifications for `token` received so far (from the backlog
    /// and whatever is waiting).
    fn progress_for(&mut self, token: &str) -> Vec<Value> {
        while let Ok(m) = self.rx.try_recv() {
            self.backlog.push(m);
        }
        self.backlog
            .iter()
            .filter(|m| {
                m["method"] == "notifications/progress" && m["params"]["progressToken"] == token
            })
            .cloned()
            .collect()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits up to `timeout` for the process to exit.
    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Every line written to stdout (after the process ended, all of them).
    fn stdout_lines(&mut self) -> Vec<String> {
        if self.child.try_wait().ok().flatten().is_some()
            && let Some(reader) = self.stdout_reader.take()
        {
            let _ = reader.join();
        }
        self.lines.lock().unwrap().clone()
    }

    /// Closes stdin, expects a clean exit within `limit`, and checks stdout.
    #[track_caller]
    fn finish(mut self, limit: Duration) {
        let started = Instant::now();
        self.close_stdin();
        let status = self.wait_exit(Duration::from_secs(10));
        let took = started.elapsed();
        let status = status.unwrap_or_else(|| {
            panic!(
                "still running 10 s after stdin closed\nstderr:\n{}",
                self.stderr()
            )
        });
        assert!(
            took < limit,
            "exit took {took:?} (limit {limit:?})\nstderr:\n{}",
            self.stderr()
        );
        assert!(
            status.success(),
            "exit status {status}\nstderr:\n{}",
            self.stderr()
        );
        assert_stdout_is_jsonrpc(&self.stdout_lines());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!("--- skillsmith-mcp stderr ---\n{}", self.stderr());
        }
    }
}

fn is_response_to(m: &Value, id: u64) -> bool {
    m.get("method").is_none() && m.get("id") == Some(&json!(id))
}

/// The text content of a tool result.
fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Every line is one JSON-RPC 2.0 message: a request, a notification, a
/// result or an error, with nothing else in it.
#[track_caller]
fn assert_stdout_is_jsonrpc(lines: &[String]) {
    assert!(!lines.is_empty(), "the server wrote nothing");
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line {i} is not JSON ({e}): {line:?}"));
        let o = v
            .as_object()
            .unwrap_or_else(|| panic!("stdout line {i} is not an object: {line}"));
        assert_eq!(o.get("jsonrpc"), Some(&json!("2.0")), "line {i}: {line}");
        for key in o.keys() {
            assert!(
                ["jsonrpc", "id", "method", "params", "result", "error"].contains(&key.as_str()),
                "line {i} has a stray member {key:?}: {line}"
            );
        }
        let id_ok = |id: &Value| id.is_string() || id.is_i64() || id.is_u64();
        if let Some(method) = o.get("method") {
            assert!(
                method.is_string(),
                "line {i}: method is not a string: {line}"
            );
            assert!(
                !o.contains_key("result") && !o.contains_key("error"),
                "line {i}: {line}"
            );
            if let Some(id) = o.get("id") {
                assert!(id_ok(id), "line {i}: bad id: {line}");
            }
            if let Some(p) = o.get("params") {
                assert!(
                    p.is_object() || p.is_array(),
                    "line {i}: bad params: {line}"
                );
            }
        } else {
            let id = o
                .get("id")
                .unwrap_or_else(|| panic!("line {i} is neither a request nor a response: {line}"));
            assert!(
                id_ok(id) || (id.is_null() && o.contains_key("error")),
                "line {i}: bad id: {line}"
            );
            match (o.get("result"), o.get("error")) {
                (Some(_), None) => {}
                (None, Some(e)) => {
                    assert!(
                        e["code"].is_i64(),
                        "line {i}: error without an integer code: {line}"
                    );
                    assert!(
                        e["message"].is_string(),
                        "line {i}: error without a message: {line}"
                    );
                }
                _ => panic!("line {i} has not exactly one of result and error: {line}"),
            }
        }
    }
}

/// Turns background sync off before the server starts, so that only the
/// test's own calls sync.
/// Every `format` in a schema that JSON Schema does not define (schemars
/// writes `uint64` and the like, which clients warn about).
fn non_standard_formats(schema: &Value) -> Vec<String> {
    const STANDARD: [&str; 8] = [
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "uri",
        "uuid",
        "regex",
    ];
    let mut found = Vec::new();
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(f)) = map.get("format")
                    && !STANDARD.contains(&f.as_str())
                {
                    found.push(f.clone());
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

fn disable_background(env: &Env) {
    skillsmith_runtime::db::Database::open(&env.db)
        .unwrap()
        .set_enabled(false)
        .unwrap();
}

/// Moves the last sync attempt two days back: a daily sync is due again.
fn backdate_last_attempt(env: &Env, failures: u32) {
    env.conn_rw()
        .execute(
            "UPDATE sync_schedule SET last_attempt_at = '2020-01-01T00:00:00.000Z',
                 last_success_at = '2020-01-01T00:00:00.000Z', consecutive_failures = ?1",
            [failures],
        )
        .unwrap();
}

/// A count from the catalogue; 0 while the server has not created it yet.
fn count(env: &Env, sql: &str) -> i64 {
    if !env.db.exists() {
        return 0;
    }
    let conn =
        rusqlite::Connection::open_with_flags(&env.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
    conn.and_then(|c| c.query_row(sql, [], |r| r.get(0)))
        .unwrap_or(0)
}

fn history_count(env: &Env, status: &str) -> i64 {
    count(
        env,
        &format!("SELECT COUNT(*) FROM sync_history WHERE status = '{status}'"),
    )
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
#[track_caller]
fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn ms(text: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(
        text.as_str()
            .unwrap_or_else(|| panic!("not a time: {text}")),
    )
    .unwrap()
    .timestamp_millis()
}

/// What an interrupted sync must leave: a sound file, no run left
/// `running`, the interrupted run recorded as cancelled, whole pages only.
#[track_caller]
fn assert_stopped_cleanly(env: &Env, total: usize) {
    assert_eq!(env.scalar::<String>("PRAGMA integrity_check"), "ok");
    assert_eq!(
        history_count(env, "running"),
        0,
        "no run may be left running"
    );
    let status: String = env.scalar("SELECT status FROM sync_history ORDER BY rowid DESC LIMIT 1");
    assert!(
        status == "partial" || status == "failed",
        "the stopped run says {status}"
    );
    let error: String =
        env.scalar("SELECT error_message FROM sync_history ORDER BY rowid DESC LIMIT 1");
    assert!(
        error.contains("cancelled"),
        "the stopped run says why: {error}"
    );
    assert!(
        !error.contains("could not reach"),
        "a stop is not a network failure: {error}"
    );
    let kind: String = env.scalar(
        "SELECT r.failure_kind FROM sync_history h JOIN sync_run r ON r.history_id = h.id
         ORDER BY h.rowid DESC LIMIT 1",
    );
    assert_eq!(kind, "cancelled");
    let failures: i64 = env.scalar("SELECT consecutive_failures FROM sync_schedule");
    assert_eq!(
        failures, 0,
        "a stopped run is not counted as a failure to back off from"
    );
    let rows: i64 = env.scalar("SELECT COUNT(*) FROM skills");
    assert!(
        rows > 0 && (rows as usize) < total,
        "{rows} of {total} skills: the sync was stopped midway"
    );
    // Each page is applied in one transaction; the skills the registry sent
    // first are exactly the ones stored (nothing half-written, no gaps).
    let fts: i64 = env.scalar("SELECT COUNT(*) FROM skills_fts");
    assert_eq!(fts, rows, "the search index matches the table");
}

#[test]
fn mcp_session_lists_and_runs_every_tool() {
    let env = Env::new(2_000);
    disable_background(&env);
    let mut s = Server::spawn(&env, &[]);

    let init = s.initialize();
    assert_eq!(init["serverInfo"]["name"], "skillsmith-mcp");
    assert_eq!(init["protocolVersion"], "2025-11-25");
    assert!(init["capabilities"]["tools"].is_object(), "{init}");
    assert!(init["instructions"].as_str().unwrap().contains("search"));

    let listed = s.request("tools/list", json!({}));
    let tools = listed["result"]["tools"].as_array().unwrap().clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, TOOLS);
    for t in &tools {
        // Standard JSON Schema only: no `format: uint64` and the like.
        for schema in [&t["inputSchema"], &t["outputSchema"]] {
            assert_eq!(
                non_standard_formats(schema),
                Vec::<String>::new(),
                "{}",
                t["name"]
            );
        }
        assert!(!t["description"].as_str().unwrap().is_empty(), "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert_eq!(t["outputSchema"]["type"], "object", "{t}");
        for (arg, schema) in t["inputSchema"]["properties"].as_object().unwrap() {
            assert!(
                schema["description"].as_str().is_some_and(|d| d.len() > 10),
                "{} argument {arg} is documented",
                t["name"]
            );
        }
    }

    // An empty catalogue: searching says how to fill it.
    let r = s.call("search", json!({"query": "git"}));
    assert_eq!(r["structuredContent"]["count"], 0);
    assert!(text(&r).contains("call the `sync` tool"), "{}", text(&r));

    // sync, with progress notifications before the response.
    let id = s.start_request(
        "tools/call",
        json!({"name": "sync", "arguments": {}, "_meta": {"progressToken": "first-sync"}}),
    );
    let r = s.response(id)["result"].clone();
    assert_eq!(r["isError"], false, "{}", text(&r));
    let report = &r["structuredContent"];
    assert_eq!(report["status"], "success");
    assert_eq!(report["added"], 2_000);
    assert_eq!(report["dry_run"], false);
    assert!(text(&r).starts_with("Sync complete"), "{}", text(&r));
    let progress = s.progress_for("first-sync");
    assert!(progress.len() >= 2, "progress notifications: {progress:?}");
    let values: Vec<f64> = progress
        .iter()
        .map(|p| p["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress increases: {values:?}"
    );
    assert!(progress.iter().all(|p| {
        p["params"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    }));
    assert_same_catalogue(&env);

    // search: ranked, filtered, bounded.
    let skill = env.registry.catalogue().skills()[17].clone();
    let hits = s.call_ok("search", json!({"query": skill.name, "limit": 10}));
    let found: Vec<&str> = hits["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert!(
        found.contains(&skill.id.as_str()),
        "{} not found by its name: {found:?}",
        skill.name
    );
    let ranks: Vec<f64> = hits["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["rank"].as_f64().unwrap())
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "best first: {ranks:?}"
    );
    let filtered = s.call_ok(
        "search",
        json!({"query": "", "trust_tier": "verified", "min_quality": 0.5, "limit": 100}),
    );
    assert!(filtered["count"].as_u64().unwrap() > 0);
    for h in filtered["skills"].as_array().unwrap() {
        assert_eq!(h["trust_tier"], "verified");
        assert!(h["quality_score"].as_f64().unwrap() >= 0.5, "{h}");
    }
    assert_eq!(
        s.call_ok("search", json!({"query": "", "limit": 3}))["count"],
        3
    );
    assert!(
        s.call_err("search", json!({"query": "x", "min_quality": 2}))
            .contains("between 0 and 1")
    );
    assert!(
        s.call_err("search", json!({"query": "x", "limit": 0}))
            .contains("limit")
    );
    s.call_err("search", json!({"query": "x", "limit": "ten"}));
    s.call_err("search", json!({}));

    // get_skill: by id, by author/name; a miss says what to do.
    let got = s.call_ok("get_skill", json!({"id": skill.id}));
    assert_eq!(got["skill"]["name"], skill.name);
    assert_eq!(got["skill"]["source"], "registry");
    if let Some(author) = &skill.author {
        let got = s.call_ok(
            "get_skill",
            json!({"id": format!("{author}/{}", skill.name)}),
        );
        assert_eq!(got["skill"]["id"], skill.id);
    }
    assert!(
        s.call_err("get_skill", json!({"id": "nobody/nothing"}))
            .contains("search")
    );

    // sync_status, sync_history.
    let status = s.status();
    assert_eq!(status["registry_skills"], 2_000);
    assert_eq!(status["last_run"]["status"], "success");
    assert_eq!(status["config"]["enabled"], false);
    assert_eq!(status["background"]["active"], true);
    assert_eq!(status["background"]["enabled"], false);
    let runs = s.call_ok("sync_history", json!({"limit": 5}))["runs"].clone();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["skills_added"], 2_000);
    s.call_err("sync_history", json!({"limit": 100_000}));

    // sync_config: show, change, refuse nonsense.
    let shown = s.call_ok("sync_config", json!({}));
    assert_eq!(shown["changed"], false);
    let weekly = s.call_ok("sync_config", json!({"frequency": "weekly"}));
    assert_eq!(weekly["changed"], true);
    assert_eq!(weekly["config"]["frequency"], "weekly");
    assert_eq!(weekly["config"]["interval_ms"], 604_800_000_i64);
    s.call_err("sync_config", json!({"frequency": "hourly"}));

    // A dry run writes nothing; a differential sync fetches what changed.
    env.registry.update(10);
    let dry = s.call_ok("sync", json!({"dry_run": true}));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["updated"], 10);
    assert_eq!(
        history_count(&env, "success"),
        1,
        "a dry run leaves no history"
    );
    let again = s.call_ok("sync", json!({}));
    assert_eq!(again["updated"], 10);
    assert_eq!(again["added"], 0);
    assert_same_catalogue(&env);

    // Protocol faults are JSON-RPC errors, not crashes.
    let unknown = s.request(
        "tools/call",
        json!({"name": "no_such_tool", "arguments": {}}),
    );
    assert!(unknown["error"]["code"].is_i64(), "{unknown}");
    let bad_method = s.request("skills/teleport", json!({}));
    assert_eq!(bad_method["error"]["code"], -32601, "{bad_method}");
    // The session still works afterwards.
    assert_eq!(s.status()["registry_skills"], 2_000);

    s.finish(Duration::from_secs(2));
}

#[test]
fn background_sync_runs_when_due_and_cli_disable_stops_it() {
    let env = Env::new(500);
    let mut s = Server::spawn(&env, &[("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200")]);
    s.initialize();

    // A fresh catalogue is due at once.
    wait_until(
        Duration::from_secs(60),
        "the background sync at start",
        || history_count(&env, "success") == 1,
    );
    assert_same_catalogue(&env);
    let status = s.status();
    assert_eq!(status["background"]["syncs_started"], 1);
    assert_eq!(status["background"]["enabled"], true);

    // Each check re-reads sync_config: once the last attempt is two days
    // old (daily), the next check syncs again.
    env.registry.update(5);
    backdate_last_attempt(&env, 0);
    wait_until(Duration::from_secs(30), "a second background sync", || {
        history_count(&env, "success") == 2
    });
    wait_until(
        Duration::from_secs(5),
        "the second sync to be reported",
        || s.status()["background"]["running"] == false,
    );
    assert_same_catalogue(&env);

    // `skillsmith sync config --disable` in a terminal stops it.
    let out = env
        .run(&["sync", "config", "--disable", "--json"])
        .ok()
        .json();
    assert_eq!(out["enabled"], false, "{out}");
    backdate_last_attempt(&env, 0);
    let requests = env.registry.stats().total;
    // Four more checks, each of which would have synced if it still did.
    let checks = s.status()["background"]["checks"].as_u64().unwrap();
    wait_until(Duration::from_secs(60), "four more checks", || {
        s.status()["background"]["checks"].as_u64().unwrap() >= checks + 4
    });
    let status = s.status();
    assert_eq!(status["background"]["enabled"], false);
    assert_eq!(
        status["background"]["syncs_started"], 2,
        "no sync after --disable"
    );
    assert_eq!(history_count(&env, "success"), 2);
    assert_eq!(
        env.registry.stats().total,
        requests,
        "no request reached the registry"
    );

    // And `--enable` brings it back in the same session.
    env.run(&["sync", "config", "--enable"]).ok();
    wait_until(Duration::from_secs(30), "a sync after --enable", || {
        history_count(&env, "success") == 3
    });

    s.finish(Duration::from_secs(2));
}

#[test]
fn skillsmith_background_sync_false_runs_no_scheduler_but_the_sync_tool_works() {
    let env = Env::new(300);
    // Checks every 200 ms would sync the fresh catalogue at once.
    let mut s = Server::spawn(
        &env,
        &[
            ("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200"),
            ("SKILLSMITH_BACKGROUND_SYNC", "false"),
        ],
    );
    s.initialize();
    let r = s.call("sync_status", json!({}));
    assert!(
        text(&r).contains("background sync is off"),
        "the status says so: {}",
        text(&r)
    );
    let status = &r["structuredContent"]["background"];
    assert_eq!(status["off_in_session"], true, "{status}");
    assert_eq!(status["active"], false, "{status}");

    // A search of the empty catalogue starts nothing either: it says how.
    let found = s.call("search", json!({"query": "git"}));
    assert!(
        text(&found).contains("call the `sync` tool"),
        "{}",
        text(&found)
    );

    let report = s.call_ok("sync", json!({}));
    assert_eq!(report["added"], 300, "{report}");
    let status = s.status();
    assert_eq!(status["background"]["checks"], 0, "{status}");
    assert_eq!(status["background"]["syncs_started"], 0, "{status}");
    assert_eq!(history_count(&env, "success"), 1, "only the tool's run");
    assert!(
        s.stderr()
            .contains("background sync is off in this session"),
        "{}",
        s.stderr()
    );
    s.finish(Duration::from_secs(2));
}

/// A session against a registry answering 503, once its first background
/// sync has failed and the scheduler has seen it (it then backs off a
/// minute). `vars` are the session's settings beside a 1 s retry budget.
fn session_after_a_failed_sync(env: &Env, vars: &[(&str, &str)]) -> Server {
    env.registry.set_fault(Fault::new(FaultKind::Status {
        code: 503,
        body: None,
    }));
    let mut all = vec![("SKILLSMITH_SYNC_RETRY_BUDGET_SECS", "1")];
    all.extend_from_slice(vars);
    let mut s = Server::spawn(env, &all);
    s.initialize();
    wait_until(Duration::from_secs(60), "the first failed sync", || {
        history_count(env, "failed") == 1
    });
    wait_until(
        Duration::from_secs(10),
        "the scheduler to see the failure",
        || s.status()["background"]["running"] == false,
    );
    s
}

#[test]
fn a_search_of_an_empty_catalogue_starts_a_sync_as_upstream_does() {
    let env = Env::new(200);
    let mut s = session_after_a_failed_sync(&env, &[("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200")]);
    env.registry.clear_faults();
    let found = s.call("search", json!({"query": "git"}));
    assert!(
        text(&found).contains("a sync with the registry has started"),
        "{}",
        text(&found)
    );
    wait_until(
        Duration::from_secs(60),
        "the sync the search started",
        || history_count(&env, "success") == 1,
    );
    assert_eq!(count(&env, "SELECT COUNT(*) FROM skills"), 200);
    let found = s.call("search", json!({"query": ""}));
    assert_eq!(found["structuredContent"]["count"], 10, "{found}");
    s.finish(Duration::from_secs(2));
}

#[test]
fn an_empty_search_starts_one_sync_per_session_and_then_says_why_it_stays_empty() {
    let env = Env::new(50);
    let mut s = session_after_a_failed_sync(&env, &[]);
    let first = s.call("search", json!({"query": "git"}));
    assert!(text(&first).contains("has started"), "{}", text(&first));
    wait_until(Duration::from_secs(60), "the search's failed sync", || {
        history_count(&env, "failed") == 2
    });
    wait_until(Duration::from_secs(10), "its end to be seen", || {
        s.status()["background"]["running"] == false
    });
    let again = s.call("search", json!({"query": "git"}));
    assert!(
        text(&again).contains("still empty") && text(&again).contains("failed"),
        "{}",
        text(&again)
    );
    assert_eq!(history_count(&env, "failed"), 2, "no third sync");
    s.finish(Duration::from_secs(2));
}

#[test]
fn a_failing_registry_backs_off_instead_of_syncing_at_every_check() {
    let env = Env::new(200);
    let mut s = session_after_a_failed_sync(&env, &[("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200")]);

    // Five more checks; upstream would sync at each. The backoff holds
    // every one of them back.
    let requests = env.registry.stats().total;
    let checks = s.status()["background"]["checks"].as_u64().unwrap();
    wait_until(Duration::from_secs(60), "five more checks", || {
        s.status()["background"]["checks"].as_u64().unwrap() >= checks + 5
    });
    let status = s.status();
    assert_eq!(history_count(&env, "failed"), 1, "no retry at every check");
    assert_eq!(
        env.registry.stats().total,
        requests,
        "no request during the backoff"
    );
    assert_eq!(status["background"]["syncs_started"], 1);
    assert_eq!(status["config"]["consecutive_failures"], 1);
    assert!(
        status["config"]["last_sync_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );
    assert!(
        status["background"]["last_result"]
            .as_str()
            .unwrap()
            .starts_with("failed"),
        "{status}"
    );
    // First backoff: one minute plus up to 20 % jitter after the attempt.
    let delay =
        ms(&status["background"]["next_sync_at"]) - ms(&status["config"]["last_attempt_at"]);
    assert!(
        (60_000..72_000).contains(&delay),
        "first backoff {delay} ms"
    );

    // The delay grows: after a second failure it is two minutes (+ jitter).
    env.conn_rw()
        .execute(
            "UPDATE sync_schedule SET last_attempt_at = '2020-01-01T00:00:00.000Z'",
            [],
        )
        .unwrap();
    wait_until(Duration::from_secs(30), "the second failed sync", || {
        history_count(&env, "failed") == 2
    });
    wait_until(
        Duration::from_secs(10),
        "the scheduler to see the second failure",
        || {
            let st = s.status();
            st["background"]["running"] == false && st["config"]["consecutive_failures"] == 2
        },
    );
    // The next check computes the next attempt from the new failure count.
    let checks = s.status()["background"]["checks"].as_u64().unwrap();
    wait_until(Duration::from_secs(30), "one more check", || {
        s.status()["background"]["checks"].as_u64().unwrap() > checks
    });
    let status = s.status();
    let delay =
        ms(&status["background"]["next_sync_at"]) - ms(&status["config"]["last_attempt_at"]);
    assert!(
        (120_000..144_000).contains(&delay),
        "second backoff {delay} ms"
    );
    assert_eq!(history_count(&env, "failed"), 2);

    // Once the registry recovers, the sync tool works at once.
    env.registry.clear_faults();
    let report = s.call_ok("sync", json!({}));
    assert_eq!(report["added"], 200);
    assert_eq!(s.status()["config"]["consecutive_failures"], 0);

    s.finish(Duration::from_secs(2));
}

#[test]
fn closing_stdin_mid_sync_exits_within_two_seconds_and_keeps_the_database_sound() {
    const TOTAL: usize = 100_000;
    let env = Env::new(TOTAL);
    disable_background(&env);
    let mut s = Server::spawn(&env, &[]);
    s.initialize();
    let id = s.start_request(
        "tools/call",
        json!({"name": "sync", "arguments": {}, "_meta": {"progressToken": "big"}}),
    );
    // Mid-sync: some pages applied, most still to come.
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while s.progress_for("big").len() < 5 {
        assert!(
            Instant::now() < deadline,
            "no progress\nstderr:\n{}",
            s.stderr()
        );
        if let Some(m) = s.next_message(Duration::from_millis(100)) {
            assert!(
                !is_response_to(&m, id),
                "the sync ended before the test could interrupt it: {m}"
            );
            s.backlog.push(m);
        }
    }
    let started = Instant::now();
    s.close_stdin();
    let exited = s.wait_exit(Duration::from_secs(10));
    let took = started.elapsed();
    let status = exited.unwrap_or_else(|| {
        panic!(
            "still running 10 s after stdin closed\nstderr:\n{}",
            s.stderr()
        )
    });
    eprintln!("exited {took:?} after stdin closed mid-sync");
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?}\nstderr:\n{}",
        s.stderr()
    );
    assert!(status.success(), "{status}\nstderr:\n{}", s.stderr());

    let lines = s.stdout_lines();
    assert_stdout_is_jsonrpc(&lines);
    // The sync's own answer, if it got out before the pipe closed, says so.
    for line in &lines {
        let m: Value = serde_json::from_str(line).unwrap();
        if is_response_to(&m, id) {
            assert_eq!(
                m["result"]["structuredContent"]["status"], "cancelled",
                "{m}"
            );
        }
    }
    assert_stopped_cleanly(&env, TOTAL);
    assert!(
        !s.stderr().contains("did not stop"),
        "the sync stopped by itself:\n{}",
        s.stderr()
    );
}

#[test]
fn sigterm_mid_background_sync_exits_promptly_and_keeps_the_database_sound() {
    // Twenty feed pages; the sync writes them in batches of 5,000 rows.
    const TOTAL: usize = 20_000;
    let env = Env::new(TOTAL);
    // Every page after the first few takes 200 ms: a long sync.
    env.registry.set_fault(
        Fault::new(FaultKind::Delay { ms: 200 })
            .on("/skills-changes")
            .after(3),
    );
    let mut s = Server::spawn(&env, &[("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200")]);
    s.initialize();
    wait_until(
        Duration::from_secs(60),
        "the background sync to apply some pages",
        || history_count(&env, "running") == 1 && count(&env, "SELECT COUNT(*) FROM skills") >= 300,
    );
    let started = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exited = s.wait_exit(Duration::from_secs(10));
    let took = started.elapsed();
    exited.unwrap_or_else(|| panic!("still running 10 s after SIGTERM\nstderr:\n{}", s.stderr()));
    eprintln!("exited {took:?} after SIGTERM mid-sync");
    assert!(
        took < Duration::from_secs(2),
        "exit took {took:?}\nstderr:\n{}",
        s.stderr()
    );
    assert_stdout_is_jsonrpc(&s.stdout_lines());
    assert_stopped_cleanly(&env, TOTAL);
    assert!(
        s.stderr().contains("SIGTERM"),
        "the log says why it stopped"
    );
    assert!(
        !s.stderr().contains("did not stop"),
        "the sync stopped by itself:\n{}",
        s.stderr()
    );
}

#[test]
fn two_sessions_on_one_catalogue_never_sync_at_once() {
    const TOTAL: usize = 3_000;
    let env = Env::with(ServerConfig::new(TOTAL, 7));
    env.registry
        .set_fault(Fault::new(FaultKind::Delay { ms: 20 }).on("/skills-changes"));
    let interval = [("SKILLSMITH_SYNC_CHECK_INTERVAL_MS", "200")];
    let mut a = Server::spawn(&env, &interval);
    let mut b = Server::spawn(&env, &interval);
    a.initialize();
    b.initialize();
    // Both find a sync due at start; one takes the lease, the other skips.
    wait_until(Duration::from_secs(90), "a sync to complete", || {
        history_count(&env, "success") > 0
    });
    // Both keep checking, three times more each; neither syncs again or fails.
    let checks = |s: &mut Server| s.status()["background"]["checks"].as_u64().unwrap();
    let (ca, cb) = (checks(&mut a), checks(&mut b));
    wait_until(
        Duration::from_secs(60),
        "three more checks in each session",
        || checks(&mut a) >= ca + 3 && checks(&mut b) >= cb + 3,
    );
    assert_eq!(history_count(&env, "success"), 1);
    // The store allows one open run at a time anyway; what matters is that
    // no two runs overlapped in time, across the two processes.
    let conn = env.conn();
    let mut stmt = conn
        .prepare("SELECT started_at, completed_at FROM sync_history ORDER BY started_at")
        .unwrap();
    let runs: Vec<(String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for w in runs.windows(2) {
        let ended = w[0].1.as_deref().expect("every run ended");
        assert!(ended <= w[1].0.as_str(), "runs overlap: {runs:?}");
    }
    assert_eq!(
        history_count(&env, "failed") + history_count(&env, "partial"),
        0
    );
    assert_same_catalogue(&env);
    let (sa, sb) = (a.status(), b.status());
    let started = sa["background"]["syncs_started"].as_u64().unwrap()
        + sb["background"]["syncs_started"].as_u64().unwrap();
    assert_eq!(
        started, 1,
        "one session synced, the other skipped:\n{sa}\n{sb}"
    );
    // The other found the lease taken (skipped quietly), or, if it checked
    // only after the sync, nothing due.
    let idle = if sa["background"]["syncs_started"] == 0 {
        &sa
    } else {
        &sb
    };
    let last = idle["background"]["last_result"].as_str();
    assert!(last.is_none_or(|l| l.starts_with("skipped")), "{idle}");
    assert_eq!(
        idle["background"]["skipped_busy"].as_u64().unwrap() > 0,
        last.is_some(),
        "{idle}"
    );
    for st in [&sa, &sb] {
        let last = st["background"]["last_result"].as_str().unwrap_or("");
        assert!(
            !last.starts_with("failed"),
            "a busy lease is not a failure: {last}"
        );
    }
    a.finish(Duration::from_secs(2));
    b.finish(Duration::from_secs(2));
}

#[test]
fn mcp_sync_and_sync_status_say_how_many_skills_the_search_api_cannot_reach() {
    let env = Env::mixed(3_000, "verified=1,community=6,experimental=3");
    disable_background(&env);
    let unreachable = env
        .registry
        .catalogue()
        .skills()
        .iter()
        .filter(|s| {
            !s.trust_tier.is_filterable() && s.quality_score.is_none() && s.categories.is_empty()
        })
        .count();
    assert!(unreachable > 0);
    let mut s = Server::spawn(&env, &[]);
    s.initialize();
    let r = s.call("sync", json!({}));
    assert_eq!(r["isError"], false, "{}", text(&r));
    let coverage = &r["structuredContent"]["coverage"];
    assert_eq!(coverage["unreachable"], unreachable, "{coverage}");
    assert_eq!(coverage["registry_total"], 3_000);
    let needle = format!("{unreachable} cannot be reached");
    assert!(text(&r).contains(&needle), "{}", text(&r));
    let r = s.call("sync_status", json!({}));
    assert_eq!(
        r["structuredContent"]["last_run"]["coverage"]["unreachable"],
        unreachable
    );
    assert!(text(&r).contains(&needle), "{}", text(&r));
    let r = s.call("sync_history", json!({}));
    assert!(text(&r).contains(&needle), "{}", text(&r));
}
