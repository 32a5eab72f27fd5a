//! Every fault a user meets gets a fast, honest answer with its documented
//! exit code, and registry text never reaches the terminal as control
//! sequences. Real binaries, real signals, real file systems.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use skillsmith_testkit::{Catalogue, Fault, FaultKind, RegistryServer, ServerConfig};

use crate::harness::{Env, Run};

/// A skill name that clears the screen and retitles the window when printed
/// raw, and a description that forges an output line.
const HOSTILE_NAME: &str = "x\u{1b}[2J\u{1b}]0;pwned\u{7}";
const HOSTILE_DESCRIPTION: &str = "fine\r\u{1b}[Kforged line\u{9b}31m";

/// Whether `s` holds a control character other than line feed and tab.
fn has_controls(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// A registry whose first skill carries the hostile texts.
fn hostile_env() -> (Env, String) {
    let mut skills = Catalogue::generate(50, 3).into_skills();
    skills[0].name = HOSTILE_NAME.into();
    skills[0].description = Some(format!("{HOSTILE_DESCRIPTION} {}", "long ".repeat(2000)));
    let id = skills[0].id.clone();
    let env = Env::with(ServerConfig {
        catalogue: Some(Catalogue::from_skills(3, skills)),
        ..ServerConfig::new(0, 3)
    });
    (env, id)
}

#[test]
fn registry_text_reaches_the_terminal_as_printable_text_only() {
    let (env, id) = hostile_env();
    let report = env.run(&["sync"]).ok();
    assert!(!has_controls(&report.stdout), "{:?}", report.stdout);
    for args in [
        vec!["search", "pwned"],
        vec!["search", "forged"],
        vec!["get", id.as_str()],
        vec!["sync", "status"],
        vec!["sync", "history"],
    ] {
        let run = env.run(&args).ok();
        assert!(!has_controls(&run.stdout), "{args:?}: {:?}", run.stdout);
        assert!(!has_controls(&run.stderr), "{args:?}: {:?}", run.stderr);
    }
    let listed = env.run(&["search", "pwned"]).ok().stdout;
    assert!(listed.contains("x\\e[2J\\e]0;pwned\\a"), "{listed}");
    // A list shows the start of a long description; `get` shows all of it.
    assert!(listed.len() < 1_000, "{} bytes listed", listed.len());
    let shown = env.run(&["get", id.as_str()]).ok().stdout;
    assert!(shown.len() > 10_000, "{} bytes shown", shown.len());
    // JSON keeps the exact values.
    let json = env.run(&["get", id.as_str(), "--json"]).ok().json();
    assert_eq!(json["name"], HOSTILE_NAME);
    assert!(
        json["description"]
            .as_str()
            .unwrap()
            .starts_with(HOSTILE_DESCRIPTION)
    );
}

#[test]
fn a_query_with_no_searchable_words_is_refused_not_answered_with_everything() {
    let env = Env::new(200);
    env.sync(&[]);
    for query in ["!!! ???", "🦀🦀", "-:*\""] {
        let run = env.run(&["search", "--", query]);
        assert_eq!(run.code, 2, "{query}: {}", run.stderr);
        assert!(run.stderr.contains("no searchable words"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let env = Env::new(300);
    env.sync(&[]);
    for _ in 0..3 {
        let mut child = env
            .cmd()
            .args(["search", "a", "--limit", "300"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is gone (as `head -1` is after one line).
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(!first.is_empty());
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

/// `skillsmith sync 2>&1 | head -1`: the warnings of a listing that serves a
/// skill twice are logged after the reader of stderr has gone. The sync
/// still completes and exits 0 (it panicked with 101 here before).
#[test]
fn a_closed_stderr_does_not_stop_a_sync_that_warns() {
    let env = Env::with(ServerConfig {
        feed_enabled: false,
        stale_copy_every: 97,
        ..ServerConfig::new(3_000, 7)
    });
    let mut child = env
        .cmd()
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the first line.
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(env.local_registry_rows(), env.registry.snapshot());
}

#[test]
fn json_failures_are_one_json_document_on_stdout() {
    let env = Env::new(10);
    let run = env.run(&[
        "--registry",
        "http://127.0.0.1:1/functions/v1",
        "sync",
        "--json",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "unreachable");
    assert_eq!(doc["error"]["exit_code"], 3);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no connection could be made")
    );
    assert!(doc["error"]["action"].as_str().unwrap().contains("network"));
    let run = env.run(&["get", "nothing-like-it", "--json"]);
    assert_ne!(run.code, 0);
    assert!(run.json()["error"]["message"].is_string());
    // A command line clap refuses is a JSON document too, and exit 2.
    let run = env.run(&["sync", "--json", "--no-such-flag"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.json()["error"]["kind"], "usage");
    // Help is not an error.
    assert_eq!(env.run(&["sync", "--help"]).code, 0);
}

/// Runs `skillsmith --registry URL sync` and checks its exit code and that
/// its message says `needle` (once) and not `absent`.
#[track_caller]
fn fails_with(env: &Env, url: &str, code: i32, needle: &str, absent: &[&str]) -> Run {
    let run = env.run(&["--registry", url, "sync"]);
    assert_eq!(run.code, code, "{url}\n{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{url}: wants {needle:?}\n{}",
        run.stderr
    );
    for a in absent {
        assert!(!run.stderr.contains(a), "{url}: says {a:?}\n{}", run.stderr);
    }
    run
}

#[test]
fn a_refused_port_fails_fast_and_says_so() {
    let env = Env::new(10);
    let started = Instant::now();
    fails_with(
        &env,
        "http://127.0.0.1:1/functions/v1",
        3,
        "no connection could be made",
        &["rate limited"],
    );
    // Two quick retries, not a minute of backoff (it took 76 s before).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn https_to_a_plain_http_server_says_to_use_http() {
    let env = Env::new(10);
    let url = env.registry.base_url().replace("http://", "https://");
    let started = Instant::now();
    fails_with(&env, &url, 3, "plain HTTP", &["rate limited"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_web_page_a_redirect_a_wrong_path_and_a_huge_body_each_say_what_they_are() {
    let env = Env::new(10);
    let base = env.registry.base_url();
    env.registry
        .set_fault(Fault::new(FaultKind::Html { code: 200 }));
    fails_with(
        &env,
        &base,
        3,
        "a web page, not the registry API",
        &["not JSON"],
    );
    env.registry.clear_faults();

    env.registry.set_fault(Fault::new(FaultKind::Redirect {
        location: "http://portal.example/login".into(),
    }));
    let run = fails_with(
        &env,
        &base,
        3,
        "redirect to http://portal.example/login, and redirects are not followed",
        &["may be down", "kept answering"],
    );
    assert!(
        !run.stderr.contains("set the registry URL to"),
        "{}",
        run.stderr
    );
    env.registry.clear_faults();

    let wrong = base.replace("/functions/v1", "/v2/api");
    fails_with(
        &env,
        &wrong,
        3,
        "no Skillsmith registry API at this URL",
        &["may be down", "try again later"],
    );

    env.registry
        .set_fault(Fault::new(FaultKind::Huge { bytes: 17 << 20 }).on("/health"));
    fails_with(&env, &base, 5, "larger than 16 MiB", &["check the network"]);
}

#[test]
fn unauthorised_and_quota_messages_say_it_once_with_what_to_do() {
    let env = Env::new(10);
    env.registry.set_api_key(Some("secret"));
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("10 requests"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("SKILLSMITH_API_KEY").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("(the registry refused"),
        "{}",
        run.stderr
    );
    env.registry.set_api_key(None);
    env.registry.set_fault(Fault::new(FaultKind::Quota));
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("resets at"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("used up").count(), 1, "{}", run.stderr);
}

#[test]
fn a_directory_as_the_catalogue_is_named_as_such() {
    let env = Env::new(10);
    let dir = env.dir.path().join("a-folder");
    std::fs::create_dir(&dir).unwrap();
    for args in [vec!["sync"], vec!["search", "x"]] {
        let run = env
            .cmd()
            .env("SKILLSMITH_DB", &dir)
            .args(&args)
            .output()
            .unwrap();
        let run = Run::from(run);
        assert_eq!(run.code, 6, "{args:?} {}", run.stderr);
        assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
        assert!(!run.stderr.contains("Error code"), "{}", run.stderr);
    }
}

#[test]
fn sigterm_stops_a_sync_at_a_page_boundary_and_leaves_nothing_running() {
    let env = Env::search_only(3_000);
    // Slow pages, so that the signal lands mid-sync.
    env.registry.set_fault(
        Fault::new(FaultKind::Delay { ms: 150 })
            .on("/skills-search")
            .after(2),
    );
    let mut child = env
        .cmd()
        .args(["sync", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the registry to have served a few pages.
    let waited = Instant::now();
    while env.registry.stats().count("/skills-search") < 6 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the sync never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(9), "cancelled, as documented");
    let report: Value = serde_json::from_str(&stdout).expect("the report, on stdout");
    assert_eq!(report["cancelled"], true);
    // Whole pages, kept; the run recorded as cancelled; no lease left.
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    assert_eq!(history[0]["failure_kind"], "cancelled", "{}", history[0]);
    assert_ne!(history[0]["status"], "running");
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM sync_lease"), 0);
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["running_pid"], Value::Null);
    assert_eq!(
        status["config"]["consecutive_failures"], 0,
        "a stop is no failure"
    );
    // Well inside the bound a supervisor waits (the target, 2 s, is measured
    // in docs/PERFORMANCE.md; this bounds a hang).
    assert!(took < Duration::from_secs(10), "{took:?}");
    env.registry.clear_faults();
    env.sync(&[]);
    crate::harness::assert_same_catalogue(&env);
}

#[test]
fn status_never_reports_a_killed_sync_as_running() {
    let env = Env::search_only(3_000);
    env.registry.set_fault(
        Fault::new(FaultKind::Delay { ms: 200 })
            .on("/skills-search")
            .after(2),
    );
    let mut child = env
        .cmd()
        .args(["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waited = Instant::now();
    while env.registry.stats().count("/skills-search") < 4 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the sync never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert_eq!(
        env.scalar::<i64>("SELECT count(*) FROM sync_lease"),
        1,
        "the lease stayed"
    );
    let status = env.run(&["sync", "status", "--json"]).ok().json();
    assert_eq!(status["running_pid"], Value::Null, "{status}");
    let text = env.run(&["sync", "status"]).ok().stdout;
    assert!(!text.contains("sync running"), "{text}");
}

/// A small tmpfs of our own, mounted for one test; `None` (with the reason
/// printed) where this machine does not allow it.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e})");
                None
            }
        }
    }

    fn remount_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_read_only_folder_refuses_a_sync_and_still_reads() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let registry = RegistryServer::start(ServerConfig::new(500, 5)).unwrap();
    let db = fs.dir.path().join("skills.db");
    let env = Env::with_db(registry, db.clone());
    env.sync(&[]);
    fs.remount_read_only();
    let search = env.run(&["search", "a", "--limit", "3"]);
    assert_eq!(search.code, 0, "reads still work\n{}", search.stderr);
    assert!(!search.stdout.is_empty());
    env.run(&["sync", "status"]).ok();
    // A dry run writes nothing, so it works as a search does.
    let dry = env.run(&["sync", "--dry-run"]);
    assert_eq!(
        dry.code, 0,
        "a dry run of a read-only catalogue\n{}",
        dry.stderr
    );
    assert!(dry.stdout.contains("would be"), "{}", dry.stdout);
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("read-only"), "{}", run.stderr);
    assert!(!run.stderr.contains("Error code"), "{}", run.stderr);
}

#[test]
fn a_full_disk_fails_the_sync_clearly_keeps_whole_pages_and_still_reads() {
    let Some(fs) = Tmpfs::mount("6m") else { return };
    let registry = RegistryServer::start(ServerConfig::new(20_000, 5)).unwrap();
    let db = fs.dir.path().join("skills.db");
    let env = Env::with_db(registry, db.clone());
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("disk"), "{}", run.stderr);
    assert!(!run.stderr.contains("Error code"), "{}", run.stderr);
    let search = env.run(&["search", "a", "--limit", "3"]);
    assert_eq!(
        search.code, 0,
        "reads work on a full disk\n{}",
        search.stderr
    );
    // Nothing half-written: the file is sound.
    let check: String = env.scalar("PRAGMA integrity_check");
    assert_eq!(check, "ok");
}
