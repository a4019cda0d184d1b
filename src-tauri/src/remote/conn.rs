//! Connection-level protection of the listener: a cap on open connections kept below the
//! descriptor limit, and an idle timeout on every connection's bytes.
//!
//! Why: every TCP connection costs a file descriptor, and the PLC sessions, the database and the
//! log need descriptors too. A client that opens connections and then sends nothing (or half a
//! request) must not be able to take them all. hyper's header-read timeout and axum-server's
//! first-request timeout bound a half-sent request; this module bounds how many connections exist
//! at once ([`Capped`]: beyond the cap a new connection is closed at once, counted and logged) and
//! how long one may sit without a byte in either direction ([`Guarded`]: keep-alive idle, idle
//! HTTP/2 connections, silent upgraded sockets).

use std::future::{ready, Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;

/// Descriptors kept free for the PLC sessions, the database, log files and certificates: the
/// connection cap never goes above `descriptor limit − FD_RESERVE`.
pub const FD_RESERVE: u64 = 128;

/// The smallest cap ever used, even under a tiny descriptor limit.
const MIN_CAP: usize = 16;

/// At most one "shedding" warning per this period (the metric counts every one).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the default soft limit of 1,024 is what a
/// burst of idle connections exhausted) and returns the soft limit now in force.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every unix
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    // Linux refuses "infinity" for RLIMIT_NOFILE (fs.nr_open bounds it); ask for a sane maximum.
    let target = lim.rlim_max.min(1 << 20);
    if lim.rlim_cur < target {
        let want = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return Some(target as u64);
        }
    }
    Some(lim.rlim_cur as u64)
}

/// Without `getrlimit` the configured cap is used as is.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

/// The connection cap in force: the configured one, but never closer than [`FD_RESERVE`] to the
/// descriptor limit, so that the PLC connections never starve.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(l) => {
            let room = usize::try_from(l.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            configured.min(room.max(MIN_CAP))
        }
        None => configured,
    }
}

/// Counts and logs connections closed because the cap was reached.
struct Shedding {
    metrics: Metrics,
    cap: usize,
    total: AtomicU64,
    /// Milliseconds since `epoch` of the last warning (0: none yet).
    last_warn_ms: AtomicU64,
    epoch: std::time::Instant,
}

impl Shedding {
    fn record(&self) {
        let n = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.connection_shed();
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                cap = self.cap,
                shed_total = n,
                "connection cap reached: closing new connections at once \
                 (see stator_remote_connections_shed)"
            );
        }
    }
}

/// The innermost acceptor (below TLS): takes one of `cap` slots or closes the connection at once.
#[derive(Clone)]
pub(super) struct Capped {
    slots: Arc<Semaphore>,
    idle: Duration,
    shedding: Arc<Shedding>,
}

impl Capped {
    pub(super) fn new(cap: usize, idle: Duration, metrics: Metrics) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(cap)),
            idle,
            shedding: Arc::new(Shedding {
                metrics,
                cap,
                total: AtomicU64::new(0),
                last_warn_ms: AtomicU64::new(0),
                epoch: std::time::Instant::now(),
            }),
        }
    }
}

impl<S> Accept<TcpStream, S> for Capped {
    type Stream = Guarded<TcpStream>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => ready(Ok((Guarded::new(stream, slot, self.idle), service))),
            Err(_) => {
                drop(stream);
                self.shedding.record();
                ready(Err(io::Error::other("connection cap reached")))
            }
        }
    }
}

/// A connection holding its slot (released on drop) that fails with `TimedOut` once no byte has
/// moved in either direction for the idle period.
pub(super) struct Guarded<T> {
    inner: T,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    last: Instant,
    /// Wakes the task at `last + idle`; re-armed lazily when traffic moved `last` on.
    timer: Pin<Box<Sleep>>,
}

impl<T> Guarded<T> {
    fn new(inner: T, slot: OwnedSemaphorePermit, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            _slot: slot,
            idle,
            last: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Whether the idle period has passed; otherwise the timer is armed to wake this task.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last + self.idle;
            if due <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
    }
}

impl<T: AsyncWrite + Unpin> Guarded<T> {
    /// After a write: bytes out count as activity; a write stuck past the idle period fails.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(Self::timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.idle_expired(cx) => Poll::Ready(Err(Self::timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        this.wrote(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_keeps_a_reserve_below_the_descriptor_limit() {
        assert_eq!(connection_cap(4096, Some(1024)), 1024 - FD_RESERVE as usize);
        assert_eq!(connection_cap(500, Some(1024)), 500);
        assert_eq!(connection_cap(4096, Some(100)), MIN_CAP);
        assert_eq!(connection_cap(4096, None), 4096);
    }

    #[cfg(unix)]
    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn raises_the_soft_limit_to_the_hard_one() {
        let got = raise_fd_limit().expect("getrlimit");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: see raise_fd_limit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(lim.rlim_cur as u64, got);
        assert_eq!(lim.rlim_cur, lim.rlim_max.min(1 << 20));
    }
}
