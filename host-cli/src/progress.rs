//! Shows a sync's progress: a bar on a terminal, plain lines when piped, and
//! nothing on stdout (which `--json` keeps for the report).

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skillsmith_runtime::sync::SyncObserver;
use skillsmith_runtime::text::printable;
use skillsmith_runtime::{Level, Phase, Progress, WaitReason};

/// Plain progress lines are written at most this often, so a piped log of a
/// 100,000-skill sync stays readable.
const LINE_INTERVAL: Duration = Duration::from_secs(2);

/// The CLI's [`SyncObserver`].
pub struct Observer {
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Option<Instant>,
    stop: Arc<AtomicBool>,
    eta: Eta,
}

/// The time a sync has left, from its average pace since its first fetched
/// page. The average over the whole fetch, not a recent rate (indicatif's
/// `{eta}`): a rate-limited sync alternates bursts with waits of up to a
/// minute, and only the long average includes the waits to come.
#[derive(Debug, Default)]
struct Eta {
    /// When the first fetched page was reported, and the count then.
    start: Option<(Instant, u64)>,
}

impl Eta {
    /// Time left at `now`, once a second page has moved `done` forward,
    /// when the sync is about to wait for `wait`: the pace is taken as of
    /// the wait's end, since a wait is reported before it starts.
    fn left(
        &mut self,
        now: Instant,
        done: u64,
        total: Option<u64>,
        wait: Duration,
    ) -> Option<Duration> {
        let total = total?;
        let &mut (t0, d0) = self.start.get_or_insert((now, done));
        let moved = done.checked_sub(d0).filter(|&m| m > 0)?;
        let rest = total.saturating_sub(done);
        let spent = now.duration_since(t0) + wait;
        Some(wait + spent.mul_f64(rest as f64 / moved as f64))
    }
}

impl Observer {
    /// `json`: the report goes to stdout as JSON, so stderr gets no bar
    /// either (it is usually captured by a program).
    pub fn new(json: bool, stop: Arc<AtomicBool>) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let template = if crate::render::color_enabled() {
                "{spinner:.green} {msg} [{bar:30.cyan/blue}] {pos}/{len} skills ({per_sec})"
            } else {
                "{spinner} {msg} [{bar:30}] {pos}/{len} skills ({per_sec})"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Observer {
            bar,
            quiet: json,
            last_line: None,
            stop,
            eta: Eta::default(),
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Discover => "contacting registry",
        Phase::Fetch => "syncing",
        Phase::Prune => "removing deleted skills",
    }
}

impl SyncObserver for Observer {
    fn progress(&mut self, p: &Progress) {
        let waiting = (p.waiting_ms > 0).then(|| {
            let why = match p.waiting_for {
                WaitReason::RateLimit => "rate limit used up",
                WaitReason::Retry | WaitReason::None => "request failed, retrying",
            };
            format!("{why}: waiting {:.1} s", p.waiting_ms as f64 / 1000.0)
        });
        let left = match p.phase {
            Phase::Fetch => self.eta.left(
                Instant::now(),
                p.done,
                p.total,
                Duration::from_millis(p.waiting_ms),
            ),
            Phase::Discover | Phase::Prune => None,
        }
        .map(|d| format!(", about {} left", indicatif::HumanDuration(d)))
        .unwrap_or_default();
        if let Some(bar) = &self.bar {
            if let Some(total) = p.total {
                bar.set_length(total);
            }
            bar.set_position(p.done);
            let what = waiting.unwrap_or_else(|| phase_name(p.phase).to_owned());
            bar.set_message(format!("{what}{left}"));
            return;
        }
        if self.quiet {
            return;
        }
        let due = self.last_line.is_none_or(|t| t.elapsed() >= LINE_INTERVAL);
        if due || waiting.is_some() {
            self.last_line = Some(Instant::now());
            let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
            // stderr may be closed: progress is not worth a panic.
            let mut err = std::io::stderr().lock();
            let _ = match waiting {
                Some(w) => writeln!(err, "{w}{left}"),
                None => writeln!(
                    err,
                    "{}: {}{} skills, {} pages{left}",
                    phase_name(p.phase),
                    p.done,
                    total,
                    p.pages
                ),
            };
        }
    }

    fn log(&mut self, level: Level, message: &str) {
        // Log lines quote registry text (ids, tier names, error bodies).
        let message = &*printable(message);
        let print = |m: &str| match level {
            Level::Error => tracing::error!("{m}"),
            Level::Warn => tracing::warn!("{m}"),
            Level::Info => tracing::info!("{m}"),
            Level::Debug => tracing::debug!("{m}"),
            Level::Trace => tracing::trace!("{m}"),
        };
        match &self.bar {
            Some(bar) => bar.suspend(|| print(message)),
            None => print(message),
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_is_the_average_pace_since_the_first_page() {
        let mut eta = Eta::default();
        let t0 = Instant::now();
        let none = Duration::ZERO;
        let secs = Duration::from_secs;
        assert_eq!(eta.left(t0, 1_000, None, none), None, "no total, no estimate");
        assert_eq!(eta.left(t0, 1_000, Some(10_000), none), None, "one page is no pace");
        // 1,000 more in 2 s (a burst and a wait alike): 8,000 left take 16 s.
        let left = eta.left(t0 + secs(2), 2_000, Some(10_000), none);
        assert_eq!(left, Some(secs(16)));
        // About to wait 2 s: the pace is 1,000 in 4 s, and the wait comes
        // first: 2 s + 8,000 at that pace.
        let left = eta.left(t0 + secs(2), 2_000, Some(10_000), secs(2));
        assert_eq!(left, Some(secs(34)));
        // A page that moved nothing since the start gives no estimate.
        let mut stalled = Eta::default();
        stalled.left(t0, 500, Some(600), none);
        assert_eq!(stalled.left(t0 + secs(5), 500, Some(600), none), None);
        // Done past the total (the registry grew): nothing left, not negative.
        assert_eq!(eta.left(t0 + secs(4), 11_000, Some(10_000), none), Some(none));
    }
}
