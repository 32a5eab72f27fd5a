//! Leaving promptly: the process-wide stop signal, what raises it (stdin
//! reaching end of file, SIGTERM, SIGINT, SIGHUP), and the bounded wait for
//! running syncs to stop at a page boundary.
//!
//! A sync polls [`Shutdown::is_stopping`] through its observer, so once the
//! signal is raised the engine stops at the next page boundary: the page in
//! flight is committed whole or not at all, and the history row ends as
//! `partial` or `failed` with the reason "cancelled". The process waits at
//! most [`GRACE`] for that, then exits regardless; SQLite's journal keeps the
//! file consistent even then.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest wait for running syncs after the stop signal.
pub const GRACE: Duration = Duration::from_millis(1500);

/// The stop signal and the count of syncs still running.
#[derive(Debug, Default)]
pub struct Shutdown {
    stop: CancellationToken,
    active: AtomicUsize,
    idle: Notify,
}

impl Shutdown {
    /// A fresh, unraised signal.
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// Raises the signal (idempotent). `why` is logged once.
    pub fn begin(&self, why: &str) {
        if !self.stop.is_cancelled() {
            tracing::info!("shutting down: {why}");
            self.stop.cancel();
        }
    }

    /// True once the signal is raised.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when the signal is raised.
    pub async fn stopping(&self) {
        self.stop.cancelled().await;
    }

    /// Registers a running sync until the guard is dropped. Drop the guard
    /// where the blocking work actually ends, not where an async caller
    /// stops waiting for it.
    pub fn track(self: &Arc<Shutdown>) -> ActiveSync {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveSync(self.clone())
    }

    /// Syncs still running.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Waits until no sync is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a guard dropped in between is seen.
            notified.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A running sync, counted by [`Shutdown`] until dropped.
#[derive(Debug)]
pub struct ActiveSync(Arc<Shutdown>);

impl Drop for ActiveSync {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Raises `shutdown` on SIGTERM, SIGINT or SIGHUP (Unix), or Ctrl-C elsewhere.
pub async fn on_signal(shutdown: Arc<Shutdown>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot install signal handlers; SIGTERM will end the process abruptly");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        };
        shutdown.begin(&format!("received {name}"));
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            shutdown.begin("received Ctrl-C");
        }
    }
}

/// Wraps the server's stdin and raises the stop signal the moment it reaches
/// end of file or fails: the client is gone. The MCP service notices too,
/// but only after draining in-flight requests (for up to 5 s), and a sync
/// in flight must hear of it at once to stop within the grace period.
#[derive(Debug)]
pub struct EofSignal<R> {
    inner: R,
    shutdown: Arc<Shutdown>,
}

impl<R> EofSignal<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, shutdown: Arc<Shutdown>) -> EofSignal<R> {
        EofSignal { inner, shutdown }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for EofSignal<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let wanted = buf.remaining() > 0;
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &poll {
            Poll::Ready(Ok(())) if wanted && buf.filled().len() == before => {
                self.shutdown.begin("stdin closed (the client went away)");
            }
            Poll::Ready(Err(e)) => {
                self.shutdown.begin(&format!("stdin failed: {e}"));
            }
            _ => {}
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn eof_raises_the_signal() {
        let shutdown = Shutdown::new();
        let mut r = EofSignal::new(&b"{}\n"[..], shutdown.clone());
        let mut buf = [0u8; 2];
        r.read_exact(&mut buf).await.unwrap();
        assert!(!shutdown.is_stopping(), "data is not end of file");
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).await.unwrap();
        assert!(shutdown.is_stopping());
    }

    #[tokio::test]
    async fn idle_waits_for_guards() {
        let shutdown = Shutdown::new();
        let guard = shutdown.track();
        let mut idle = Box::pin(shutdown.idle());
        // A zero timeout polls the future once: with a guard held it waits.
        assert!(
            tokio::time::timeout(Duration::ZERO, idle.as_mut())
                .await
                .is_err(),
            "idle while a guard is held"
        );
        std::thread::spawn(move || drop(guard)).join().unwrap();
        tokio::time::timeout(Duration::from_secs(1), idle)
            .await
            .expect("idle after the guard is dropped");
    }
}
