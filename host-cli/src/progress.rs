//! Shows a sync's progress: a bar on a terminal, plain lines when piped, and
//! nothing on stdout (which `--json` keeps for the report).

use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use skillsmith_runtime::eta::Eta;
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
        let left = self
            .eta
            .left(Instant::now(), p)
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
