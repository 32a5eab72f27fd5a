//! Bytes on the wire: a listener whose connections count what they send, so
//! that a test or benchmark can set the bytes that crossed the network
//! (compressed, headers included) beside the bytes of the bodies it served.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// What the registry has sent since it started or its stats were reset.
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// Bytes written to client sockets: status lines, headers and bodies as
    /// encoded on the wire.
    pub(crate) sent: AtomicU64,
    /// Bytes of the API response bodies before any content encoding.
    pub(crate) bodies: AtomicU64,
}

impl WireCounters {
    pub(crate) fn reset(&self) {
        self.sent.store(0, Ordering::Relaxed);
        self.bodies.store(0, Ordering::Relaxed);
    }
}

/// A TCP listener whose connections add what they write to [`WireCounters`].
pub(crate) struct CountingListener {
    inner: TcpListener,
    counters: Arc<WireCounters>,
}

impl CountingListener {
    pub(crate) fn new(inner: TcpListener, counters: Arc<WireCounters>) -> CountingListener {
        CountingListener { inner, counters }
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountingStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Small request/response exchanges: Nagle would add latency.
                    let _ = stream.set_nodelay(true);
                    let io = CountingStream {
                        inner: stream,
                        counters: self.counters.clone(),
                    };
                    return (io, addr);
                }
                // As axum's own listener does: a failed accept (too many open
                // files, a reset before accept) is not the server's end.
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that counts the bytes written to it.
pub(crate) struct CountingStream {
    inner: TcpStream,
    counters: Arc<WireCounters>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &polled {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
