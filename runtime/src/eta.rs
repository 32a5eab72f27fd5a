//! The time a sync has left, for progress displays (the CLI's bar and lines,
//! the MCP server's progress notifications).

use std::time::{Duration, Instant};

use crate::{Phase, Progress};

/// Estimates a sync's time left from its average pace since its first
/// fetched page. The average over the whole fetch, not a recent rate: a
/// rate-limited sync alternates bursts with waits of up to a minute, and
/// only the long average includes the waits to come.
#[derive(Debug, Default)]
pub struct Eta {
    /// When the first fetched page was reported, and the count then.
    start: Option<(Instant, u64)>,
}

impl Eta {
    /// Time left after report `p` at `now`: only while fetching, with a
    /// total, once a second page has moved `done` forward. A wait is
    /// reported before it starts, so the pace is taken as of its end.
    pub fn left(&mut self, now: Instant, p: &Progress) -> Option<Duration> {
        if p.phase != Phase::Fetch {
            return None;
        }
        let total = p.total?;
        let &mut (t0, d0) = self.start.get_or_insert((now, p.done));
        let moved = p.done.checked_sub(d0).filter(|&m| m > 0)?;
        let rest = total.saturating_sub(p.done);
        let wait = Duration::from_millis(p.waiting_ms);
        let spent = now.duration_since(t0) + wait;
        Some(wait + spent.mul_f64(rest as f64 / moved as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WaitReason;

    fn at(phase: Phase, done: u64, total: Option<u64>, waiting_ms: u64) -> Progress {
        Progress {
            phase,
            done,
            total,
            pages: 0,
            waiting_ms,
            waiting_for: if waiting_ms > 0 {
                WaitReason::RateLimit
            } else {
                WaitReason::None
            },
        }
    }

    #[test]
    fn time_left_is_the_average_pace_since_the_first_page() {
        let fetch = |done, total, wait| at(Phase::Fetch, done, total, wait);
        let secs = Duration::from_secs;
        let mut eta = Eta::default();
        let t0 = Instant::now();
        assert_eq!(
            eta.left(t0, &fetch(1_000, None, 0)),
            None,
            "no total, no estimate"
        );
        assert_eq!(
            eta.left(t0, &fetch(1_000, Some(10_000), 0)),
            None,
            "one page is no pace"
        );
        // 1,000 more in 2 s (a burst and a wait alike): 8,000 left take 16 s.
        assert_eq!(
            eta.left(t0 + secs(2), &fetch(2_000, Some(10_000), 0)),
            Some(secs(16))
        );
        // About to wait 2 s: the pace is 1,000 in 4 s, and the wait comes
        // first: 2 s + 8,000 at that pace.
        assert_eq!(
            eta.left(t0 + secs(2), &fetch(2_000, Some(10_000), 2_000)),
            Some(secs(34))
        );
        // Done past the total (the registry grew): nothing left, not negative.
        assert_eq!(
            eta.left(t0 + secs(4), &fetch(11_000, Some(10_000), 0)),
            Some(Duration::ZERO)
        );
        // Other phases have no estimate.
        assert_eq!(
            eta.left(t0 + secs(5), &at(Phase::Prune, 11_000, Some(10_000), 0)),
            None
        );
        // A page that moved nothing since the start gives no estimate.
        let mut stalled = Eta::default();
        stalled.left(t0, &fetch(500, Some(600), 0));
        assert_eq!(stalled.left(t0 + secs(5), &fetch(500, Some(600), 0)), None);
    }
}
