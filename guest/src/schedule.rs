//! Background-sync scheduling: whether a sync is due now and when the next
//! one is, with exponential backoff and deterministic jitter after failures.
//! Pure arithmetic on host-clock milliseconds.
//!
//! Rules (`decide`):
//! - Disabled: never due, no next time.
//! - Never attempted (no last attempt, nor a last success to stand in): due.
//! - Otherwise due once `now >= last_attempt + delay`, where `delay` is the
//!   interval after a success, and after `n` consecutive failures
//!   `min(1 min * 2^(n-1), interval)` plus up to 20% jitter from the seed.
//! - An interval below one minute (or not positive) is treated as one minute,
//!   so a broken setting cannot make every check a sync.
//! - A clock that moved backwards (`now < last_attempt`): the elapsed time is
//!   unknowable, so the failure backoff, measured on the old clock, is not
//!   trusted and the next sync is a full interval after the recorded attempt.
//!   If the recorded attempt lies more than a whole interval in the future,
//!   that record cannot belong to this clock at all (a clock reset to 1970
//!   would otherwise wait decades): the sync is due, and the attempt it
//!   records restarts the schedule on the new clock.
//! - When due, `next_ms` is `now`; otherwise it is the due time, later than
//!   `now`.

use crate::domain::{Decision, ScheduleConfig};

/// First retry delay after a failure.
pub const FIRST_BACKOFF_MS: i64 = 60_000;
/// Shortest interval honoured.
pub const MIN_INTERVAL_MS: i64 = 60_000;
/// Largest jitter, as a percentage of the backoff.
pub const JITTER_PERCENT: u64 = 20;

/// Whether a sync is due at `now_ms`, and when the next one is. See the
/// module documentation for the rules.
pub fn decide(config: ScheduleConfig, now_ms: i64, jitter_seed: u64) -> Decision {
    if !config.enabled {
        return Decision {
            due: false,
            next_ms: None,
        };
    }
    let interval = config.interval_ms.max(MIN_INTERVAL_MS);
    let Some(last) = config.last_attempt_ms.or(config.last_success_ms) else {
        return due_now(now_ms);
    };
    let due_at = if now_ms < last {
        if last - now_ms > interval {
            return due_now(now_ms);
        }
        last.saturating_add(interval)
    } else {
        last.saturating_add(delay_ms(config.consecutive_failures, interval, jitter_seed))
    };
    if now_ms >= due_at {
        due_now(now_ms)
    } else {
        Decision {
            due: false,
            next_ms: Some(due_at),
        }
    }
}

fn due_now(now_ms: i64) -> Decision {
    Decision {
        due: true,
        next_ms: Some(now_ms),
    }
}

/// Wait after the last attempt: the interval after a success; after
/// `failures` failures `min(1 min * 2^(failures-1), interval)` plus jitter
/// in `[0, 20%)` of that. Jitter depends on the seed only, so the delay never
/// shrinks as failures accumulate.
pub fn delay_ms(failures: u32, interval_ms: i64, jitter_seed: u64) -> i64 {
    let interval = interval_ms.max(MIN_INTERVAL_MS);
    if failures == 0 {
        return interval;
    }
    let doublings = failures - 1;
    // 60_000 << 40 is far beyond any interval and far from overflowing.
    let base = if doublings >= 40 {
        interval
    } else {
        (FIRST_BACKOFF_MS << doublings).min(interval)
    };
    let span = u128::from(base.unsigned_abs()) * u128::from(JITTER_PERCENT) / 100;
    let jitter = (span * u128::from(mix(jitter_seed))) >> 64;
    base.saturating_add(i64::try_from(jitter).unwrap_or(0))
}

/// SplitMix64's finaliser: spreads nearby seeds (0, 1, 2, ...) over the
/// whole range.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000;

    fn cfg(last: Option<i64>, failures: u32) -> ScheduleConfig {
        ScheduleConfig {
            enabled: true,
            interval_ms: DAY,
            last_attempt_ms: last,
            last_success_ms: last,
            consecutive_failures: failures,
        }
    }

    #[test]
    fn basics() {
        let off = ScheduleConfig {
            enabled: false,
            ..cfg(None, 0)
        };
        assert_eq!(
            decide(off, 5, 0),
            Decision {
                due: false,
                next_ms: None
            }
        );
        assert_eq!(
            decide(cfg(None, 0), 5, 0),
            Decision {
                due: true,
                next_ms: Some(5)
            }
        );
        assert_eq!(
            decide(cfg(Some(1000), 0), 1000 + DAY - 1, 0),
            Decision {
                due: false,
                next_ms: Some(1000 + DAY)
            }
        );
        assert!(decide(cfg(Some(1000), 0), 1000 + DAY, 0).due);
    }

    #[test]
    fn backoff_steps() {
        for (failures, base) in [
            (1, 60_000),
            (2, 120_000),
            (3, 240_000),
            (12, DAY),
            (u32::MAX, DAY),
        ] {
            let d = delay_ms(failures, DAY, 42);
            assert!(d >= base && d < base + base / 5 + 1, "{failures}: {d}");
        }
        // Different seeds spread.
        let spread: std::collections::HashSet<_> = (0..10).map(|s| delay_ms(1, DAY, s)).collect();
        assert!(spread.len() >= 8);
    }

    #[test]
    fn clock_backwards() {
        // A little back: wait a full interval after the recorded attempt.
        let d = decide(cfg(Some(10 * DAY), 3), 10 * DAY - 5_000, 7);
        assert_eq!(
            d,
            Decision {
                due: false,
                next_ms: Some(11 * DAY)
            }
        );
        // Absurdly far back: due, restarting the schedule.
        assert!(decide(cfg(Some(10 * DAY), 0), 0, 7).due);
    }

    proptest! {
        #[test]
        fn monotonic_and_capped(
            last in -1_000_000_000_000i64..1_000_000_000_000,
            interval in prop_oneof![Just(DAY), Just(7 * DAY), -10i64..10 * DAY],
            failures in 0u32..80,
            seed in any::<u64>(),
            a in 0i64..30 * DAY,
            b in 0i64..30 * DAY,
        ) {
            let c = ScheduleConfig { interval_ms: interval, ..cfg(Some(last), failures) };
            let eff = interval.max(MIN_INTERVAL_MS);
            let (early, late) = (last + a.min(b), last + a.max(b));
            let d1 = decide(c, early, seed);
            let d2 = decide(c, late, seed);
            // Once due, stays due as time goes on.
            prop_assert!(!d1.due || d2.due);
            // The due time does not depend on when we ask (forward clock).
            if !d1.due && !d2.due { prop_assert_eq!(d1.next_ms, d2.next_ms); }
            for (d, now) in [(d1, early), (d2, late)] {
                let next = d.next_ms.unwrap();
                prop_assert_eq!(d.due, next <= now);
                if d.due { prop_assert_eq!(next, now); }
                // Capped: never later than 120% of the interval after the attempt.
                if !d.due { prop_assert!(next <= last + eff + eff / 5); }
                // After a success, never sooner than the interval.
                if failures == 0 && !d.due { prop_assert_eq!(next, last + eff); }
            }
            // More failures never shorten the backoff.
            if failures > 0 {
                prop_assert!(delay_ms(failures, interval, seed) <= delay_ms(failures + 1, interval, seed));
            }
            prop_assert!(delay_ms(failures, interval, seed) <= eff + eff / 5);
        }

        #[test]
        fn backwards_clock_is_never_immediate_for_small_steps(
            last in 0i64..1_000_000_000_000,
            back in 1i64..DAY,
            failures in 0u32..10,
            seed in any::<u64>(),
        ) {
            let d = decide(cfg(Some(last), failures), last - back, seed);
            prop_assert!(!d.due);
            prop_assert_eq!(d.next_ms, Some(last + DAY));
        }
    }
}
