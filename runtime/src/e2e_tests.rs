//! End-to-end tests of the runtime: the embedded component (loading,
//! caching, instantiation) and whole syncs through both backends against the
//! test registry (search API only) and real SQLite files.

use std::time::{Duration, Instant};

use skillsmith_catalogue::db::Database;
use skillsmith_testkit::{Fault, FaultKind, RegistryHandle, RegistryServer, ServerConfig};

use crate::component::{ComponentError, ComponentLimits, ComponentRuntime, LoadSource, TrapKind};
use crate::sync::{Backend, SyncFailure, SyncRunner};
use crate::{FailureKind, ScheduleConfig, SyncMode};

/// The test registry with `n` skills and the search API only, as the live
/// registry is today.
fn search_registry(n: usize) -> RegistryHandle {
    RegistryServer::start(ServerConfig {
        feed_enabled: false,
        ..ServerConfig::new(n, 7)
    })
    .unwrap()
}

fn embedded_or_skip() -> Option<&'static [u8]> {
    let wasm = ComponentRuntime::embedded_wasm();
    if wasm.is_empty() {
        eprintln!("skipped: this build has no embedded component");
        None
    } else {
        Some(wasm)
    }
}

#[test]
fn component_loads_from_cache_and_instantiates() {
    let Some(wasm) = embedded_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let first = ComponentRuntime::load_cached(wasm, dir.path()).unwrap();
    let cold = t.elapsed();
    assert_eq!(first.timings().source, LoadSource::CompiledAndCached);
    let file = first.timings().cache_file.clone().unwrap();
    assert!(file.is_file());
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("skillsmith-sync-")
    );

    let t = Instant::now();
    let second = ComponentRuntime::load_cached(wasm, dir.path()).unwrap();
    let warm = t.elapsed();
    assert_eq!(second.timings().source, LoadSource::CacheHit);
    let inst = second.instantiate().unwrap();
    eprintln!(
        "component {} bytes: cold load {cold:?} (compile {:?}), cached load {warm:?} \
         (deserialize {:?}, link {:?}), instantiate {inst:?}",
        wasm.len(),
        first.timings().load,
        second.timings().load,
        second.timings().link
    );

    // Entries idle for long are pruned when a new one is written.
    let old = dir.path().join("skillsmith-sync-0000.cwasm");
    std::fs::write(&old, b"old").unwrap();
    std::fs::File::options()
        .append(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(60 * 24 * 3600))
        .unwrap();

    // A damaged cache entry is ignored and replaced. (Replaced by rename,
    // as the cache itself does: truncating a file that a loaded component
    // has mapped would pull the code from under it.)
    drop((first, second));
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"not a compiled component").unwrap();
    std::fs::rename(&garbage, &file).unwrap();
    let third = ComponentRuntime::load_cached(wasm, dir.path()).unwrap();
    assert_eq!(third.timings().source, LoadSource::CompiledAndCached);
    assert!(!old.exists(), "an idle entry is pruned");
    assert_eq!(
        ComponentRuntime::load_cached(wasm, dir.path())
            .unwrap()
            .timings()
            .source,
        LoadSource::CacheHit
    );
}

#[test]
fn garbage_is_not_a_component() {
    assert!(matches!(
        ComponentRuntime::load_cold(b"\0asm garbage"),
        Err(ComponentError::Compile(_))
    ));
    assert!(matches!(
        ComponentRuntime::load_cold(b""),
        Err(ComponentError::NotEmbedded { .. })
    ));
}

#[test]
fn component_schedule_matches_native() {
    if embedded_or_skip().is_none() {
        return;
    }
    let rt = crate::component::embedded().unwrap();
    let now = 1_795_000_000_000;
    for config in [
        ScheduleConfig {
            enabled: true,
            interval_ms: 86_400_000,
            last_attempt_ms: None,
            last_success_ms: None,
            consecutive_failures: 0,
        },
        ScheduleConfig {
            enabled: true,
            interval_ms: 86_400_000,
            last_attempt_ms: Some(now - 1_000),
            last_success_ms: Some(now - 90_000_000),
            consecutive_failures: 3,
        },
        ScheduleConfig {
            enabled: false,
            interval_ms: 604_800_000,
            last_attempt_ms: Some(now),
            last_success_ms: Some(now),
            consecutive_failures: 0,
        },
    ] {
        for seed in [0, 1, u64::MAX] {
            assert_eq!(
                rt.decide(config, now, seed).unwrap(),
                skillsmith_guest::schedule::decide(config, now, seed)
            );
        }
    }
    crate::sync::decide_schedule(
        ScheduleConfig {
            enabled: true,
            interval_ms: 86_400_000,
            last_attempt_ms: None,
            last_success_ms: None,
            consecutive_failures: 0,
        },
        now,
        7,
    )
    .unwrap();
}

#[test]
fn syncs_through_both_backends() {
    let registry = search_registry(12);
    let backends: &[Backend] = if embedded_or_skip().is_some() {
        &[Backend::Component, Backend::Native]
    } else {
        &[Backend::Native]
    };
    for &backend in backends {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("skills.db");
        let run = || {
            SyncRunner::new(&path, format!("{}/", registry.base_url()))
                .backend(backend)
                .retry_budget(Duration::from_secs(2))
                .run()
        };
        let first = run().unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(first.mode, SyncMode::Search, "{backend:?}");
        assert_eq!(first.added, 12, "{backend:?}: {:?}", first.report);
        assert!(!first.cancelled);
        assert_eq!(first.backend, backend);
        if backend == Backend::Component {
            let g = first.guest.unwrap();
            assert!(g.imports > 0 && g.instantiate > Duration::ZERO);
        }
        let second = run().unwrap();
        assert_eq!(second.added + second.updated, 0, "{:?}", second.report);
        assert_eq!(second.unchanged, 12);

        let db = Database::open(&path).unwrap();
        let status = db.status().unwrap();
        assert_eq!(status.registry_skills, 12);
        assert_eq!(status.running_pid, None, "the lease is released");
        assert_eq!(status.mode.map(|m| m.as_str()), Some("search"));
        let history = db.history(10).unwrap();
        assert_eq!(history.len(), 2);
        assert!(
            history.iter().all(|h| h.status.as_str() == "success"),
            "{history:?}"
        );
        let config = db.config().unwrap();
        assert!(config.last_sync_at.is_some() && config.next_sync_at.is_some());
        let best = db.search("", &Default::default()).unwrap();
        assert_eq!(best.len(), 12, "an empty query lists the stored skills");
        serde_json::to_string(&second).unwrap();
    }
}

#[test]
fn dry_runs_write_nothing() {
    let registry = search_registry(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skills.db");
    let dry = || {
        SyncRunner::new(&path, registry.base_url())
            .backend(Backend::Native)
            .dry_run(true)
            .run()
            .unwrap()
    };
    let r = dry();
    assert_eq!(r.added, 5);
    assert!(r.dry_run);
    assert!(!path.exists(), "a dry run must not create the catalogue");

    SyncRunner::new(&path, registry.base_url())
        .backend(Backend::Native)
        .run()
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let r = dry();
    assert_eq!(r.unchanged, 5);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(Database::open(&path).unwrap().history(10).unwrap().len(), 1);
}

#[test]
fn a_scheduled_sync_stands_down_when_another_synced_after_the_decision() {
    let registry = search_registry(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skills.db");
    let runner = || SyncRunner::new(&path, registry.base_url()).backend(Backend::Native);
    // Decided on a fresh catalogue (no attempt yet), but another process
    // synced before the lease was taken.
    runner().run().unwrap();
    let e = runner().scheduled_after(None).run().unwrap_err();
    assert!(matches!(e, SyncFailure::Superseded { .. }), "{e}");
    assert_eq!(e.kind(), FailureKind::Superseded);
    let db = Database::open(&path).unwrap();
    assert_eq!(db.history(10).unwrap().len(), 1, "nothing ran");
    // Decided on what the catalogue still says: it runs.
    let last = db.config().unwrap().last_attempt_at;
    assert!(last.is_some());
    runner().scheduled_after(last).run().unwrap();
    assert_eq!(db.history(10).unwrap().len(), 2);
}

#[test]
fn failures_have_kinds_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skills.db");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = SyncRunner::new(&path, format!("http://127.0.0.1:{port}/functions/v1"))
        .backend(Backend::Native)
        .retry_budget(Duration::from_millis(300))
        .run()
        .unwrap_err();
    assert_eq!(e.kind(), FailureKind::Unreachable, "{e}");
    let db = Database::open(&path).unwrap();
    assert!(db.status().unwrap().running_pid.is_none());

    let e = SyncRunner::new(&path, "ftp://example.com/")
        .run()
        .unwrap_err();
    assert_eq!(e.kind(), FailureKind::Usage, "{e}");

    let registry = search_registry(1);
    let _held = db.lease().unwrap();
    let e = SyncRunner::new(&path, registry.base_url())
        .backend(Backend::Native)
        .run()
        .unwrap_err();
    assert!(matches!(e, SyncFailure::Busy { .. }), "{e}");
    assert_eq!(e.kind(), FailureKind::Busy);
}

#[test]
fn a_guest_over_its_limits_is_stopped_and_the_run_closed() {
    if embedded_or_skip().is_none() {
        return;
    }
    let registry = search_registry(3);
    // Each response takes longer than a deadline check period, so the guest
    // resumes after the deadline has passed; with no run time allowed at
    // all, the first check after an import stops it.
    registry.set_fault(Fault {
        path: None,
        after: 0,
        times: 0,
        kind: FaultKind::Delay { ms: 150 },
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skills.db");
    let e = SyncRunner::new(&path, registry.base_url())
        .component_limits(ComponentLimits {
            max_guest_run: Duration::ZERO,
            ..ComponentLimits::default()
        })
        .run()
        .unwrap_err();
    match &e {
        SyncFailure::Component(ComponentError::Trap { kind, .. }) => {
            assert_eq!(*kind, TrapKind::Deadline, "{e}")
        }
        other => panic!("expected a deadline trap, got {other}"),
    }
    assert_eq!(e.kind(), FailureKind::Component);
    eprintln!("deadline: {e}");
    let db = Database::open(&path).unwrap();
    assert_eq!(db.status().unwrap().running_pid, None);
    for h in db.history(10).unwrap() {
        assert_ne!(h.status.as_str(), "running", "{h:?}");
    }

    // Too little memory to even start.
    let e = SyncRunner::new(&path, registry.base_url())
        .component_limits(ComponentLimits {
            memory_bytes: 64 * 1024,
            ..ComponentLimits::default()
        })
        .run()
        .unwrap_err();
    assert_eq!(e.kind(), FailureKind::Component, "{e}");
    eprintln!("memory: {e}");
}
