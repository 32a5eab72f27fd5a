//! The sandbox, tested: small hostile components (`tests/hostile/`) run by
//! the real runtime, in this process, against a real catalogue and the test
//! registry. Each must be stopped or refused with a clear error, leave the
//! catalogue as it was, and leave the host able to run a normal sync.
//!
//! The hostile crate is built here, on first use, with the same cargo that
//! built this test (its own workspace and target directory, so the nested
//! build neither waits for nor disturbs the outer one).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use skillsmith_guest::domain::SyncOptions;
use skillsmith_runtime::component::{ComponentError, ComponentLimits, ComponentRuntime, TrapKind};
use skillsmith_runtime::db::Database;
use skillsmith_runtime::host::{SyncHost, SyncObserver, TracingObserver};
use skillsmith_runtime::http::HttpBackend;
use skillsmith_runtime::policy::Policy;
use skillsmith_runtime::store::Store;
use skillsmith_runtime::{HttpError, SyncError, SyncReport, SyncRunner};
use skillsmith_testkit::{Fault, FaultKind};

use crate::harness::{Env, assert_same_catalogue};

include!("../../../sandbox/guest_build_env.rs");

/// The API key the host holds; the guest must never see or choose it.
const API_KEY: &str = "host-only-key";

/// Tight limits, so that the hostile runs end quickly.
const LIMITS: ComponentLimits = ComponentLimits {
    memory_bytes: 64 * 1024 * 1024,
    max_guest_run: Duration::from_millis(500),
    max_guest_total: Duration::from_secs(2),
    max_run: Duration::from_secs(60),
    stderr_tail_bytes: 4096,
};

/// Paths of the builds of `tests/hostile`.
struct HostileBuilds {
    /// `skillsmith:sync@0.2.0`, misbehaving on request; imports the same
    /// WASI interfaces as the real guest and no others.
    hostile: PathBuf,
    /// The same with the `ambient` probes, which import wasi:clocks,
    /// wasi:filesystem and wasi:sockets.
    ambient: PathBuf,
    /// `skillsmith:sync@0.3.0` (feature `future-wit`).
    future: PathBuf,
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
}

/// Builds every flavour once per process. One lock for all: they share a
/// target directory and the same output file name.
fn builds() -> &'static HostileBuilds {
    static BUILDS: OnceLock<HostileBuilds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let target = workspace().join("target").join("hostile-wasm");
        HostileBuilds {
            hostile: build_hostile(&target, None, "skillsmith-hostile.wasm"),
            ambient: build_hostile(&target, Some("ambient"), "skillsmith-hostile-ambient.wasm"),
            future: build_hostile(
                &target,
                Some("future-wit"),
                "skillsmith-hostile-future.wasm",
            ),
        }
    })
}

fn build_hostile(target: &Path, feature: Option<&str>, name: &str) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(workspace().join("tests").join("hostile"))
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target);
    if let Some(f) = feature {
        cmd.args(["--features", f]);
    }
    for var in HOST_BUILD_ENV {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run cargo to build tests/hostile");
    assert!(
        out.status.success(),
        "building tests/hostile for wasm32-wasip2 failed (is the target installed? \
         `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = target
        .join("wasm32-wasip2")
        .join("release")
        .join("skillsmith_hostile.wasm");
    let copy = target.join(name);
    std::fs::copy(&built, &copy).expect("copy the hostile component");
    copy
}

/// The hostile component, compiled once per process and shared, as the
/// CLI and the MCP server share theirs.
fn hostile() -> &'static ComponentRuntime {
    static RUNTIME: OnceLock<ComponentRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        ComponentRuntime::from_file(&builds().hostile, None)
            .unwrap_or_else(|e| panic!("the hostile component must load: {e}"))
            .with_limits(LIMITS)
    })
}

/// The `ambient` flavour, or why the runtime refuses it (a runtime that
/// links only the WASI the real guest needs refuses it at load time, which
/// is as good a way to grant nothing as linking interfaces that deny).
fn ambient() -> Result<&'static ComponentRuntime, ComponentError> {
    static RUNTIME: OnceLock<Result<ComponentRuntime, ComponentError>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            ComponentRuntime::from_file(&builds().ambient, None).map(|r| r.with_limits(LIMITS))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The host side of one hostile run: HTTP restricted to the registry's
/// origin (with a key the guest never sees), the catalogue, no lease.
fn host(env: &Env, max_body_bytes: Option<u64>) -> SyncHost {
    host_observed(env, max_body_bytes, Box::new(TracingObserver))
}

/// [`host`] with another observer.
fn host_observed(
    env: &Env,
    max_body_bytes: Option<u64>,
    observer: Box<dyn SyncObserver>,
) -> SyncHost {
    let mut policy = Policy::for_registry(&env.registry.base_url()).expect("registry URL");
    if let Some(cap) = max_body_bytes {
        policy = policy.with_max_body_bytes(cap);
    }
    let http = HttpBackend::new(policy, Some(API_KEY.into())).expect("HTTP backend");
    let store = Store::new(Database::open(&env.db).expect("open catalogue"), None);
    SyncHost::new(http, store, observer)
}

fn options(behaviour: &str) -> SyncOptions {
    SyncOptions {
        registry: behaviour.to_owned(),
        force: false,
        dry_run: false,
        page_size: 100,
        mode: None,
        now_ms: 0,
        retry_budget_ms: 0,
    }
}

type GuestResult = Result<Result<SyncReport, SyncError>, ComponentError>;

/// Runs `behaviour` of the hostile component in a fresh instance.
fn run_hostile(env: &Env, behaviour: &str, max_body_bytes: Option<u64>) -> (GuestResult, Duration) {
    run_in(hostile(), env, behaviour, max_body_bytes)
}

/// Runs `behaviour` of `component` in a fresh instance, then closes any
/// history run the guest left open, as `SyncRunner` does after a trap.
fn run_in(
    component: &ComponentRuntime,
    env: &Env,
    behaviour: &str,
    max_body_bytes: Option<u64>,
) -> (GuestResult, Duration) {
    let started = Instant::now();
    let run = component.run(host(env, max_body_bytes), options(behaviour));
    let elapsed = started.elapsed();
    let mut host = run.host;
    if host.open_run().is_some() {
        host.abandon_open_run(
            "the hostile guest left its run open",
            skillsmith_runtime::FailureKind::Component,
        )
        .expect("close the open run");
    }
    (run.result, elapsed)
}

/// A registry of `skills` and a catalogue synced from it by the real
/// runtime (the embedded component, in this process).
fn synced_env(skills: usize) -> Env {
    let env = Env::new(skills);
    normal_sync(&env);
    env
}

#[track_caller]
fn normal_sync(env: &Env) -> SyncReport {
    let outcome = SyncRunner::new(&env.db, env.registry.base_url())
        .run()
        .unwrap_or_else(|e| panic!("a normal sync must work: {e}"));
    assert_same_catalogue(env);
    outcome.report
}

/// The catalogue and checkpoint only: history and scheduling facts change
/// legitimately when a guest opens and closes a run.
fn catalogue_dump(env: &Env) -> String {
    let keep: String = env
        .dump()
        .lines()
        .filter(|l| l.starts_with("skills:") || l.starts_with("sync_state:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let last_sync_at: Option<String> =
        env.scalar("SELECT last_sync_at FROM sync_config WHERE id = 'default'");
    format!("{keep}last_sync_at: {last_sync_at:?}\n")
}

/// The full-text index agrees with its content table, so a rolled-back
/// page left no index entries behind.
#[track_caller]
fn assert_fts_intact(env: &Env) {
    env.conn_rw()
        .execute(
            "INSERT INTO skills_fts(skills_fts) VALUES ('integrity-check')",
            [],
        )
        .expect("FTS index matches the skills table");
}

#[track_caller]
fn expect_trap(result: GuestResult, kind: TrapKind) -> String {
    match result {
        Err(e @ ComponentError::Trap { kind: k, .. }) if k == kind => e.to_string(),
        other => panic!("expected a {kind:?} trap, got {other:?}"),
    }
}

#[track_caller]
fn expect_report(result: GuestResult) -> SyncReport {
    match result {
        Ok(Ok(report)) => report,
        other => panic!("expected the guest to return a report, got {other:?}"),
    }
}

/// The guest's `name => result` observation lines, as a lookup.
#[track_caller]
fn observed<'r>(report: &'r SyncReport, name: &str) -> &'r str {
    report
        .warnings
        .iter()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(" => ")))
        .unwrap_or_else(|| panic!("no {name:?} line in {:#?}", report.warnings))
}

/// A loopback port that must never see a connection.
fn silent_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("address").to_string();
    (listener, addr)
}

#[track_caller]
fn assert_never_contacted(listener: &TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the other origin was contacted: {other:?}"),
    }
}

#[test]
fn spinning_guest_is_stopped_by_the_deadline() {
    let env = synced_env(200);
    let before = env.dump();
    let (result, elapsed) = run_hostile(&env, "spin", None);
    let text = expect_trap(result, TrapKind::Deadline);
    assert!(text.contains("without calling the host"), "{text}");
    // 500 ms allowance, checked every 100 ms: generous margin for a busy CI.
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped only after {elapsed:?}"
    );
    assert_eq!(
        env.dump(),
        before,
        "a stopped guest must leave the catalogue as it was"
    );
}

#[test]
fn growing_guest_is_stopped_at_the_memory_limit() {
    let env = synced_env(200);
    let before = env.dump();
    let (result, _) = run_hostile(&env, "grow", None);
    let text = expect_trap(result, TrapKind::MemoryLimit);
    assert!(text.contains("exceeded its memory limit"), "{text}");
    assert_eq!(env.dump(), before);
}

#[test]
fn panicking_guest_is_stopped_with_its_message() {
    let env = synced_env(50);
    let before = env.dump();
    let (result, _) = run_hostile(&env, "panic", None);
    let text = expect_trap(result, TrapKind::Panic);
    assert!(
        text.contains("hostile guest: deliberate panic"),
        "the guest's stderr is shown: {text}"
    );
    assert_eq!(env.dump(), before);
}

#[test]
fn guest_stderr_flood_is_bounded() {
    let env = synced_env(50);
    // 4 MiB through WASI stderr, then a panic. WASI calls are guest time, so
    // the allowance is raised: this is about memory, not the deadline.
    let limits = ComponentLimits {
        max_guest_run: Duration::from_secs(30),
        max_guest_total: Duration::from_secs(30),
        ..LIMITS
    };
    let run = hostile().run_limited(host(&env, None), options("stderr-flood 4"), limits);
    match run.result {
        Err(ComponentError::Trap {
            kind: TrapKind::Panic,
            stderr,
            ..
        }) => {
            // Only the tail is kept, and it ends with the panic message.
            assert!(
                stderr.len() <= LIMITS.stderr_tail_bytes,
                "kept {} bytes",
                stderr.len()
            );
            assert!(stderr.contains("hostile guest: end of flood"), "{stderr}");
        }
        other => panic!("expected a panic trap, got {other:?}"),
    }
}

#[test]
fn guest_is_denied_other_origins_credentials_and_oversized_bodies() {
    let env = synced_env(200);
    let before = env.dump();
    let (other, other_addr) = silent_listener();
    let base = env.registry.base_url();
    env.registry.reset_stats();

    let denied = |behaviour: &str, max_body: Option<u64>| -> String {
        match run_hostile(&env, behaviour, max_body).0 {
            Ok(Err(SyncError::Unreachable(HttpError::Denied(text)))) => text,
            other => {
                panic!("{behaviour}: expected `denied` through the error variant, got {other:?}")
            }
        }
    };
    // Another origin: another port on the same host is another origin.
    let text = denied(
        &format!("fetch http://{other_addr}/functions/v1/health"),
        None,
    );
    assert!(text.contains("not allowed"), "{text}");
    // Not http(s), credentials in the URL, a malformed URL.
    denied("fetch file:///etc/passwd", None);
    denied(
        &format!("fetch {}", base.replacen("http://", "http://user:pw@", 1)),
        None,
    );
    denied("fetch not-a-url", None);
    // Headers that would steal or override the host's credentials or route.
    for header in [
        "x-api-key=stolen",
        "Authorization=Bearer-x",
        "host=evil.example",
        "cookie=a",
    ] {
        let text = denied(&format!("fetch {base}/health {header}"), None);
        assert!(text.contains("may not be set"), "{header}: {text}");
    }
    assert_eq!(
        env.registry.stats().total,
        0,
        "no denied request may reach the registry"
    );
    assert_never_contacted(&other);

    // The registry's own origin works, and carries the host's key, which
    // the guest never saw.
    let report = expect_report(run_hostile(&env, &format!("fetch {base}/health"), None).0);
    assert!(
        observed(&report, "fetch").starts_with("status 200"),
        "{:?}",
        report.warnings
    );
    let seen = env.registry.stats();
    assert_eq!(seen.total, 1);
    assert_eq!(seen.recent[0].api_key.as_deref(), Some(API_KEY));

    // A body over the host's cap is `too-large`, not a response.
    let search = format!("fetch {base}/skills-search?trust_tier=community&limit=100");
    match run_hostile(&env, &search, Some(1024)).0 {
        Ok(Err(SyncError::Unreachable(HttpError::TooLarge(1024)))) => {}
        other => panic!("expected too-large(1024), got {other:?}"),
    }

    // A redirect to another origin is handed to the guest, not followed.
    env.registry.set_fault(Fault::new(FaultKind::Redirect {
        location: format!("http://{other_addr}/stolen"),
    }));
    let report = expect_report(run_hostile(&env, &format!("fetch {base}/health"), None).0);
    assert!(
        observed(&report, "fetch").starts_with("status 302"),
        "{:?}",
        report.warnings
    );
    env.registry.clear_faults();
    assert_never_contacted(&other);

    assert_eq!(env.dump(), before);
}

#[test]
fn store_garbage_is_refused_and_changes_nothing() {
    let env = synced_env(300);
    let before = catalogue_dump(&env);
    let report = expect_report(run_hostile(&env, "garbage", None).0);
    for step in [
        "apply-page before begin-run",
        "finish-run before begin-run",
        "apply-page to another run",
        "apply-page with an empty id",
        "apply-page huge with a bad last row",
        "finish-run of another run",
        "apply-page after finish-run",
        "second finish-run",
    ] {
        let result = observed(&report, step);
        assert!(
            result.starts_with("err StoreError::Invalid("),
            "{step}: {result}"
        );
    }
    // A second open run has its own case, which the guest reports as busy.
    let result = observed(&report, "second begin-run");
    assert!(result.starts_with("err StoreError::RunOpen("), "{result}");
    // Reads of nonsense are answered, not trapped.
    assert_eq!(
        observed(&report, "local-versions of garbage ids"),
        "ok [None, None, None]"
    );
    assert_eq!(observed(&report, "registry-ids past the last id"), "ok 0");
    assert_eq!(observed(&report, "registry-ids limit 0"), "ok 0");
    // Its one legitimate run was opened and closed as failed.
    assert!(
        observed(&report, "begin-run").starts_with("ok "),
        "{:?}",
        report.warnings
    );
    assert_eq!(observed(&report, "finish-run"), "ok ()");

    assert_eq!(
        catalogue_dump(&env),
        before,
        "no garbage may reach the catalogue"
    );
    assert_fts_intact(&env);
    let open: i64 = env.scalar("SELECT count(*) FROM sync_history WHERE status = 'running'");
    assert_eq!(open, 0);
    let last: String =
        env.scalar("SELECT error_message FROM sync_history ORDER BY rowid DESC LIMIT 1");
    assert!(last.contains("hostile guest: garbage calls"), "{last}");
}

#[test]
fn rewound_checkpoint_costs_only_a_resync() {
    let env = synced_env(300);
    let rows = env.local_registry_rows();
    // Cursors are opaque to the host, so it cannot know that the second
    // checkpoint is older than the first; both are written.
    let report = expect_report(run_hostile(&env, "rewind", None).0);
    assert_eq!(observed(&report, "apply-page hostile-cursor-2"), "ok ()");
    assert_eq!(observed(&report, "apply-page hostile-cursor-1"), "ok ()");
    assert_eq!(env.local_registry_rows(), rows, "no skill was touched");
    let cursor: Option<String> = env.scalar("SELECT cursor FROM sync_state");
    assert_eq!(cursor.as_deref(), Some("hostile-cursor-1"));
    // The registry refuses the bogus cursor; the real engine falls back to a
    // full resync and the catalogue converges again.
    env.registry.update(10);
    env.registry.delete(3);
    let report = normal_sync(&env);
    assert_eq!(report.updated, 10, "{report:?}");
    assert_eq!(report.removed, 3, "{report:?}");
}

#[test]
fn guest_sees_no_environment_or_arguments() {
    // wasi:cli/environment is linked (the standard library reads it at
    // start-up) but empty; files, sockets and clocks are not linked at all
    // (components_asking_for_clocks_files_or_sockets_are_refused_at_load).
    let env = synced_env(20);
    let before = env.dump();
    let report = expect_report(run_hostile(&env, "environment", None).0);
    eprintln!(
        "what the hostile guest saw:\n{}",
        report.warnings.join("\n")
    );
    assert_eq!(observed(&report, "env"), "[]", "no environment variables");
    assert_eq!(observed(&report, "args"), "[]", "no arguments");
    assert_eq!(env.dump(), before);
}

/// `wasm` with every `skillsmith:sync` name moved from `@0.2.0` to
/// `@0.2.<patch>` or `@<minor>.0`: the real guest as if built for another
/// version. Same-length rewrites keep the binary well-formed.
fn with_wit_version(wasm: &[u8], version: &str) -> Vec<u8> {
    assert_eq!(version.len(), "0.2.0".len());
    let mut out = wasm.to_vec();
    let needle = b"skillsmith:sync";
    let mut i = 0;
    while let Some(at) = out[i..].windows(needle.len()).position(|w| w == needle) {
        let mut j = i + at + needle.len();
        while out
            .get(j)
            .is_some_and(|&b| b == b'/' || b == b'-' || b.is_ascii_lowercase())
        {
            j += 1;
        }
        if out[j..].starts_with(b"@0.2.0") {
            out[j + 1..j + 6].copy_from_slice(version.as_bytes());
        }
        i = j;
    }
    out
}

#[test]
fn component_for_another_wit_version_is_refused() {
    let started = Instant::now();
    let err = ComponentRuntime::from_file(&builds().future, None)
        .expect_err("a skillsmith:sync@0.3.0 component must be refused");
    assert!(
        matches!(err, ComponentError::Incompatible { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    for needle in [
        "skillsmith:sync@0.2.0",
        "skillsmith:sync/engine@0.3.0",
        "skillsmith:sync/host@0.3.0",
    ] {
        assert!(text.contains(needle), "the message names {needle}: {text}");
    }
    eprintln!("refused in {:?}: {text}", started.elapsed());
    // The real guest, renamed to 0.3.0: refused the same way.
    let moved = with_wit_version(ComponentRuntime::embedded_wasm(), "0.3.0");
    let err =
        ComponentRuntime::from_bytes(&moved, None).expect_err("the guest at 0.3.0 must be refused");
    assert!(
        matches!(err, ComponentError::Incompatible { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("skillsmith:sync/engine@0.3.0"),
        "{err}"
    );
    // Bytes that are no component at all are a compile error, not a crash.
    let err = ComponentRuntime::from_bytes(b"\0asm not really", None).expect_err("garbage bytes");
    assert!(matches!(err, ComponentError::Compile(_)), "{err:?}");
}

#[test]
fn semver_compatible_patch_version_is_accepted() {
    // Wasmtime links by semver: for 0.x, same minor is compatible, so the
    // guest built for 0.2.1 loads in this 0.2.0 host (and would fail type
    // checking, with a clear error, if 0.2.1 had changed a signature).
    let patched = with_wit_version(ComponentRuntime::embedded_wasm(), "0.2.1");
    let runtime = ComponentRuntime::from_bytes(&patched, None)
        .unwrap_or_else(|e| panic!("a 0.2.1 component should load in a 0.2.0 host: {e}"));
    runtime.instantiate().expect("and instantiate");
}

#[test]
fn host_survives_hostile_guests_then_syncs_normally() {
    let env = synced_env(1_000);
    let before = env.dump();
    let (other, other_addr) = silent_listener();
    // One after another in this process, on the same shared component, as
    // an MCP server would run them.
    expect_trap(run_hostile(&env, "spin", None).0, TrapKind::Deadline);
    expect_trap(run_hostile(&env, "grow", None).0, TrapKind::MemoryLimit);
    expect_trap(run_hostile(&env, "panic", None).0, TrapKind::Panic);
    let stolen = run_hostile(&env, &format!("fetch http://{other_addr}/"), None).0;
    assert!(
        matches!(
            stolen,
            Ok(Err(SyncError::Unreachable(HttpError::Denied(_))))
        ),
        "{stolen:?}"
    );
    expect_trap(run_hostile(&env, "grow", None).0, TrapKind::MemoryLimit);
    expect_trap(run_hostile(&env, "spin", None).0, TrapKind::Deadline);
    assert_eq!(env.dump(), before);
    assert_never_contacted(&other);

    // The same process then runs a real differential sync.
    env.registry.update(25);
    env.registry.delete(5);
    env.registry.insert(7);
    let report = normal_sync(&env);
    assert_eq!(
        (report.added, report.updated, report.removed),
        (7, 25, 5),
        "{report:?}"
    );
}

#[test]
fn guest_looping_through_host_calls_is_stopped() {
    // Each stretch of guest code is short, so only the total guest time
    // budget (2 s here) stops it.
    let env = synced_env(20);
    let before = env.dump();
    let (tx, rx) = std::sync::mpsc::channel();
    let host = host(&env, None);
    let started = Instant::now();
    std::thread::spawn(move || {
        let run = hostile().run(host, options("spin-calling-host"));
        let _ = tx.send(run.result);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(result) => {
            let message = expect_trap(result, TrapKind::Deadline);
            assert!(message.contains("in total"), "{message}");
        }
        Err(_) => panic!("still running after 30 s: no total guest-time budget"),
    };
    eprintln!("stopped after {:?}", started.elapsed());
    assert_eq!(env.dump(), before);
}

#[test]
fn guest_ignoring_a_stop_request_is_stopped() {
    // The host asks for a stop at once; the guest keeps calling imports.
    let env = synced_env(20);
    let (tx, rx) = std::sync::mpsc::channel();
    let host = host_observed(&env, None, Box::new(StopAtOnce));
    std::thread::spawn(move || {
        let run = hostile().run_limited(
            host,
            options("spin-calling-host"),
            ComponentLimits {
                max_guest_total: Duration::from_secs(600),
                ..LIMITS
            },
        );
        let _ = tx.send(run.result);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(result) => {
            let message = expect_trap(result, TrapKind::Deadline);
            assert!(message.contains("asked it to stop"), "{message}");
        }
        Err(_) => panic!("still running 30 s after a stop request"),
    };
}

/// An observer that asks the guest to stop from the first import on.
struct StopAtOnce;

impl SyncObserver for StopAtOnce {
    fn progress(&mut self, _: &skillsmith_runtime::Progress) {}
    fn log(&mut self, _: skillsmith_runtime::Level, _: &str) {}
    fn should_stop(&self) -> bool {
        true
    }
}

#[test]
fn components_asking_for_clocks_files_or_sockets_are_refused_at_load() {
    // The `ambient` build can read the wall clock, sleep on the monotonic
    // clock and open files and sockets through the standard library. None of
    // that is linked, so it never runs: it cannot read the time, block the
    // host in a WASI poll, or touch the machine.
    let started = Instant::now();
    let err = match ambient() {
        Ok(_) => panic!("a component importing wasi:clocks and wasi:sockets was loaded"),
        Err(e) => e,
    };
    let ComponentError::Ungranted { imports } = &err else {
        panic!("expected a refusal of ungranted imports, got {err:?}");
    };
    for needle in [
        "wasi:clocks/wall-clock",
        "wasi:clocks/monotonic-clock",
        "wasi:filesystem/preopens",
        "wasi:sockets/tcp",
    ] {
        assert!(
            imports.iter().any(|i| i.starts_with(needle)),
            "{needle} is named: {imports:?}"
        );
    }
    assert!(
        !imports
            .iter()
            .any(|i| i.starts_with("wasi:io/") || i.starts_with("wasi:cli/")),
        "what the real guest needs is granted: {imports:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("does not grant") && text.contains("docs/embedding.md"),
        "{text}"
    );
    eprintln!("refused in {:?}: {text}", started.elapsed());
}
