//! Time budgets of one component run: what stops a guest that will not stop
//! by itself, whether it spins in its own code, loops through cheap imports,
//! or ignores the host asking it to stop.
//!
//! The run alternates between guest stretches and imports. Four limits:
//! - one guest stretch (between two imports) may last `max_guest_run`;
//! - all guest stretches together may last `max_guest_total` (a guest that
//!   loops through imports has short stretches, but they add up);
//! - the whole run, imports included, may last `max_run`;
//! - once an import has seen the host ask for a stop, the guest has
//!   [`STOP_GRACE`] to return (it may still close its history run).
//!
//! Checked at every import boundary and, while the guest runs, by the epoch
//! callback. Pure: every method takes `now`, so the rules are unit-tested.

use std::time::{Duration, Instant};

/// How long a guest may keep running after the host asked it to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The time limits of one run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Longest guest stretch between two imports.
    pub max_guest_run: Duration,
    /// Longest total guest time over the run, imports excluded.
    pub max_guest_total: Duration,
    /// Longest run, imports included.
    pub max_run: Duration,
}

/// Which budget a guest exceeded; the trap's root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    /// One stretch without an import was too long.
    #[error("the guest ran for over {0:?} without calling the host")]
    Stretch(Duration),
    /// The guest's own time over the run was too long.
    #[error("the guest computed for over {0:?} in total (imports excluded)")]
    GuestTotal(Duration),
    /// The run as a whole was too long.
    #[error("the run took over {0:?}")]
    Run(Duration),
    /// The guest kept going after the host asked it to stop.
    #[error("the guest kept running {0:?} after the host asked it to stop")]
    IgnoredStop(Duration),
}

/// The clock of one run.
#[derive(Debug, Clone)]
pub struct RunBudget {
    budgets: Budgets,
    started: Instant,
    /// Start of the current guest stretch; `None` while in an import.
    guest_since: Option<Instant>,
    /// Guest time of the finished stretches.
    guest_total: Duration,
    /// When an import first saw a stop request.
    stop_seen: Option<Instant>,
}

impl RunBudget {
    /// A run whose guest starts running at `now`.
    pub fn new(budgets: Budgets, now: Instant) -> RunBudget {
        RunBudget {
            budgets,
            started: now,
            guest_since: Some(now),
            guest_total: Duration::ZERO,
            stop_seen: None,
        }
    }

    /// The guest calls an import at `now`.
    pub fn enter_host(&mut self, now: Instant) -> Result<(), Exceeded> {
        self.check(now)?;
        if let Some(since) = self.guest_since.take() {
            self.guest_total += now.saturating_duration_since(since);
        }
        Ok(())
    }

    /// An import returns to the guest at `now`; `stop_requested` is whether
    /// the host wants the run to end. An error makes the import trap.
    pub fn leave_host(&mut self, now: Instant, stop_requested: bool) -> Result<(), Exceeded> {
        if stop_requested && self.stop_seen.is_none() {
            self.stop_seen = Some(now);
        }
        self.guest_since = Some(now);
        self.check(now)
    }

    /// Whether the run is still within its budgets at `now`.
    pub fn check(&self, now: Instant) -> Result<(), Exceeded> {
        let b = &self.budgets;
        let stretch = self
            .guest_since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        if stretch > b.max_guest_run {
            return Err(Exceeded::Stretch(b.max_guest_run));
        }
        if self.guest_total + stretch > b.max_guest_total {
            return Err(Exceeded::GuestTotal(b.max_guest_total));
        }
        if now.saturating_duration_since(self.started) > b.max_run {
            return Err(Exceeded::Run(b.max_run));
        }
        if let Some(seen) = self.stop_seen
            && now.saturating_duration_since(seen) > STOP_GRACE
        {
            return Err(Exceeded::IgnoredStop(STOP_GRACE));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budgets = Budgets {
        max_guest_run: Duration::from_secs(1),
        max_guest_total: Duration::from_secs(3),
        max_run: Duration::from_secs(100),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_long_stretch_is_stopped_but_time_in_imports_is_free() {
        let t0 = Instant::now();
        let mut b = RunBudget::new(B, t0);
        assert_eq!(b.check(t0 + ms(900)), Ok(()));
        b.enter_host(t0 + ms(900)).unwrap();
        // 50 s in an import (a paced HTTP request) costs no guest time.
        assert_eq!(b.check(t0 + ms(50_900)), Ok(()));
        b.leave_host(t0 + ms(50_900), false).unwrap();
        assert_eq!(
            b.check(t0 + ms(52_000)),
            Err(Exceeded::Stretch(B.max_guest_run))
        );
    }

    #[test]
    fn short_stretches_add_up() {
        let t0 = Instant::now();
        let mut b = RunBudget::new(B, t0);
        let mut now = t0;
        let mut outcome = Ok(());
        // A guest looping through a cheap import: 10 ms in the guest, 1 ms
        // in the host, for ever.
        for _ in 0..1_000 {
            now += ms(10);
            outcome = b.enter_host(now);
            if outcome.is_err() {
                break;
            }
            now += ms(1);
            b.leave_host(now, false).unwrap();
        }
        assert_eq!(outcome, Err(Exceeded::GuestTotal(B.max_guest_total)));
        assert!(
            now < t0 + ms(3_400),
            "stopped after about 3 s: {:?}",
            now - t0
        );
    }

    #[test]
    fn the_whole_run_is_capped_even_when_the_guest_waits_in_imports() {
        let t0 = Instant::now();
        let mut b = RunBudget::new(B, t0);
        b.enter_host(t0).unwrap();
        assert_eq!(
            b.leave_host(t0 + ms(100_001), false),
            Err(Exceeded::Run(B.max_run))
        );
    }

    #[test]
    fn a_stop_request_leaves_a_grace_period() {
        let t0 = Instant::now();
        let mut b = RunBudget::new(B, t0);
        b.enter_host(t0).unwrap();
        b.leave_host(t0 + ms(10), true).unwrap();
        // Later imports (closing the history run) within the grace are fine,
        // and a later stop flag does not restart the grace.
        b.enter_host(t0 + ms(20)).unwrap();
        b.leave_host(t0 + ms(4_000), true).unwrap();
        b.enter_host(t0 + ms(4_100)).unwrap();
        assert_eq!(
            b.leave_host(t0 + ms(5_011), true),
            Err(Exceeded::IgnoredStop(STOP_GRACE))
        );
    }
}
