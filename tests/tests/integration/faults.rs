//! Syncs that go wrong: each fault gives a clear message and a documented
//! exit code, keeps every earlier row, and is recorded in history.

use skillsmith_testkit::{Fault, FaultKind, RegistryServer, ServerConfig};

use crate::harness::{Env, Run, assert_same_catalogue};

/// A synced catalogue of 1,000 skills whose registry then changed 100 of them.
fn synced_then_changed() -> (Env, Vec<(String, String)>) {
    let env = Env::search_only(1_000);
    env.sync(&[]);
    let before = env.local_registry_rows();
    env.registry.update(100);
    (env, before)
}

/// What every failed run must leave behind: a sound file, no row lost, each
/// row either as before or as the registry has it now, the failure recorded.
#[track_caller]
fn assert_failed_cleanly(
    env: &Env,
    before: &[(String, String)],
    run: &Run,
    code: i32,
    needle: &str,
) {
    assert_eq!(
        run.code, code,
        "exit code\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks {needle:?}:\n{}",
        run.stderr
    );
    assert_eq!(env.scalar::<String>("PRAGMA integrity_check"), "ok");
    let now = env.registry.snapshot();
    let after = env.local_registry_rows();
    assert_eq!(after.len(), before.len(), "no row may be lost");
    for (row, old) in after.iter().zip(before) {
        assert!(
            row == old || now.contains(row),
            "row {row:?} is neither the old version nor the registry's"
        );
    }
    let status: String = env.scalar("SELECT status FROM sync_history ORDER BY rowid DESC LIMIT 1");
    assert!(
        status == "failed" || status == "partial",
        "history says {status}"
    );
    let error: String =
        env.scalar("SELECT error_message FROM sync_history ORDER BY rowid DESC LIMIT 1");
    assert!(!error.is_empty());
    let last_error: String = env.scalar("SELECT last_sync_error FROM sync_config");
    assert!(!last_error.is_empty());
    // last_sync_at still names the earlier success.
    let history = env.run(&["sync", "history", "--json"]).ok().json();
    assert_eq!(history[1]["status"], "success");
}

#[test]
fn server_errors_are_retried_then_fail_without_losing_data() {
    let (env, before) = synced_then_changed();
    let last_sync_at: String = env.scalar("SELECT last_sync_at FROM sync_config");
    env.registry.set_fault(
        Fault::new(FaultKind::Status {
            code: 500,
            body: None,
        })
        .on("/skills-search")
        .after(3),
    );
    let run = env.run(&["sync", "--retry-budget", "1"]);
    assert_failed_cleanly(&env, &before, &run, 3, "500");
    assert_eq!(
        env.scalar::<String>("SELECT last_sync_at FROM sync_config"),
        last_sync_at
    );
    assert!(
        env.registry.stats().count("/skills-search") > 4,
        "a 500 is retried"
    );
    // Once the registry recovers, the next sync completes the catalogue.
    env.registry.clear_faults();
    env.sync(&[]);
    assert_same_catalogue(&env);
}

#[test]
fn a_truncated_body_fails_the_run_without_writing_that_page() {
    let (env, before) = synced_then_changed();
    env.registry.set_fault(
        Fault::new(FaultKind::Truncate)
            .on("/skills-search")
            .after(2),
    );
    let run = env.run(&["sync", "--retry-budget", "1"]);
    assert_failed_cleanly(&env, &before, &run, 3, "registry");
}

#[test]
fn malformed_json_is_a_protocol_error() {
    let (env, before) = synced_then_changed();
    env.registry.set_fault(
        Fault::new(FaultKind::Malformed)
            .on("/skills-search")
            .after(4),
    );
    let run = env.run(&["sync"]);
    assert_failed_cleanly(&env, &before, &run, 5, "broke the protocol");
}

#[test]
fn rate_limits_are_met_by_pacing_not_failing() {
    let (env, _) = synced_then_changed();
    env.registry.set_fault(
        Fault::new(FaultKind::RateLimit {
            retry_after_secs: 1,
        })
        .on("/skills-search")
        .after(2)
        .times(2),
    );
    let run = env.run(&["sync"]).ok();
    assert!(
        run.stderr.contains("rate limit used up: waiting"),
        "progress shows the wait and its reason:\n{}",
        run.stderr
    );
    assert_same_catalogue(&env);
}

#[test]
fn an_exhausted_monthly_quota_stops_at_once() {
    let (env, before) = synced_then_changed();
    env.registry
        .set_fault(Fault::new(FaultKind::Quota).on("/skills-search").after(1));
    env.registry.reset_stats();
    let run = env.run(&["sync"]);
    assert_failed_cleanly(&env, &before, &run, 4, "quota");
    assert_eq!(
        env.registry.stats().count("/skills-search"),
        2,
        "quota is not retried"
    );
}

#[test]
fn one_malformed_record_is_skipped_and_reported() {
    let env = Env::search_only(600);
    env.registry.set_fault(
        Fault::new(FaultKind::BadRecord)
            .on("/skills-search")
            .after(1)
            .times(1),
    );
    let report = env.sync(&[]);
    assert_eq!(report["skipped"], 1, "{report}");
    assert_eq!(report["added"], 599);
    assert!(!report["warnings"].as_array().unwrap().is_empty());
    // The next run picks the skipped skill up.
    let again = env.sync(&[]);
    assert_eq!(again["added"], 1, "{again}");
    assert_same_catalogue(&env);
}

#[test]
fn the_api_key_is_required_sent_and_never_leaves_the_registry_origin() {
    let env = Env::with(ServerConfig {
        api_key: Some("sk_live_test".into()),
        ..ServerConfig::new(300, 7)
    });
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("SKILLSMITH_API_KEY"), "{}", run.stderr);
    assert_eq!(
        env.scalar::<String>("SELECT status FROM sync_history"),
        "failed"
    );

    let ok = env
        .cmd()
        .env("SKILLSMITH_API_KEY", "sk_live_test")
        .args(["sync", "--json"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        env.registry
            .stats()
            .recent
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.has_api_key())
    );

    // A redirect to another origin is not followed: the other server sees nothing.
    let other = RegistryServer::start(ServerConfig::new(10, 1)).unwrap();
    env.registry.set_fault(Fault::new(FaultKind::Redirect {
        location: format!("{}/skills-changes", other.base_url()),
    }));
    let redirected = env
        .cmd()
        .env("SKILLSMITH_API_KEY", "sk_live_test")
        .args(["sync", "--force", "--retry-budget", "1"])
        .output()
        .unwrap();
    assert!(!redirected.status.success());
    assert_eq!(other.stats().total, 0, "nothing may reach another origin");
}

#[test]
fn timeouts_are_retried_and_a_dead_registry_fails_clearly() {
    let (env, before) = synced_then_changed();
    env.registry.set_fault(
        Fault::new(FaultKind::Delay { ms: 2_500 })
            .on("/skills-search")
            .after(1)
            .times(1),
    );
    env.run(&["sync", "--timeout", "1"]).ok();
    assert_same_catalogue(&env);

    env.registry.update(10);
    let before = {
        let _ = before;
        env.local_registry_rows()
    };
    env.registry
        .set_fault(Fault::new(FaultKind::Hang).on("/skills-search").after(1));
    let run = env.run(&["sync", "--timeout", "1", "--retry-budget", "2"]);
    assert_failed_cleanly(&env, &before, &run, 3, "timed out");
}

#[test]
fn an_unhealthy_registry_is_reported() {
    let env = Env::with(ServerConfig {
        health: skillsmith_testkit::HealthStatus::Unhealthy,
        ..ServerConfig::new(10, 7)
    });
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("unhealthy"), "{}", run.stderr);
}
