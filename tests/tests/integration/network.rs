//! What crosses the network (issue 15): responses compressed as the client
//! asks, the size cap counted on decoded bytes so that a small compressed
//! bomb cannot exhaust memory, and rate limits waited out however the
//! registry lays its windows and tells their reset.

use skillsmith_testkit::server::RateWindows;
use skillsmith_testkit::{Fault, FaultKind, ServerConfig};

use crate::harness::{Env, assert_same_catalogue};

#[test]
fn responses_cross_the_network_compressed_and_arrive_whole() {
    let env = Env::new(2_000);
    env.registry.reset_stats();
    let report = env.sync(&[]);
    assert_eq!(report["added"], 2_000, "{report}");
    assert_same_catalogue(&env);
    let stats = env.registry.stats();
    let asked = stats
        .recent
        .iter()
        .filter_map(|r| r.accept_encoding.as_deref())
        .collect::<Vec<_>>();
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|a| a.contains("gzip") && a.contains("zstd")),
        "every request asks for compressed bodies: {asked:?}"
    );
    // Skill JSON compresses several times over; half is a loose bound.
    assert!(
        stats.wire_bytes * 2 < stats.body_bytes,
        "{} bytes on the wire for {} bytes of bodies",
        stats.wire_bytes,
        stats.body_bytes
    );
}

#[test]
fn a_decompression_bomb_stops_at_the_size_cap_and_writes_nothing() {
    let env = Env::new(300);
    // 64 MiB of spaces, about 64 KiB compressed: under the 16 MiB cap on
    // the wire, four times over it decoded.
    env.registry.set_fault(
        Fault::new(FaultKind::GzipBomb {
            decoded_bytes: 64 << 20,
        })
        .on("/skills-changes"),
    );
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("larger than 16 MiB"), "{}", run.stderr);
    assert_eq!(env.scalar::<i64>("SELECT count(*) FROM skills"), 0);
    env.registry.clear_faults();
    env.sync(&[]);
    assert_same_catalogue(&env);
}

#[test]
fn rate_limit_windows_are_waited_out_however_the_registry_tells_their_reset() {
    const LIMIT: u32 = 4;
    for (windows, millis, honest) in [
        // Exact whole seconds, as Upstash lays windows.
        (RateWindows::Aligned, false, true),
        // Milliseconds, as Upstash reports them and upstream passed on.
        (RateWindows::FirstRequest, true, true),
        // Rounded down: the reset comes before the window ends, and the 429
        // after it says `Retry-After: 0`.
        (RateWindows::FirstRequestRoundedDown, false, false),
    ] {
        let env = Env::with(ServerConfig {
            feed_enabled: false,
            rate_limit_per_minute: LIMIT,
            rate_window_ms: 1_000,
            rate_windows: windows,
            rate_reset_millis: millis,
            ..ServerConfig::new(1_500, 7)
        });
        env.registry.reset_stats();
        env.sync(&[]);
        assert_same_catalogue(&env);
        let stats = env.registry.stats();
        assert!(
            stats.total > 3 * u64::from(LIMIT),
            "{windows:?}: the sync needed several windows ({} requests)",
            stats.total
        );
        let refused = stats.recent.iter().filter(|r| r.status == 429).count();
        if honest {
            assert_eq!(
                refused, 0,
                "{windows:?}, ms {millis}: no 429 when the reset is honest"
            );
        }
    }
}
