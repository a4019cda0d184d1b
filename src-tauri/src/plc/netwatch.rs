//! The operating system's network-change signal, so a PLC that is not connected is retried the
//! moment the network comes back instead of at its next retry or port probe.
//!
//! [`NetSignal`] is a generation counter every PLC task watches; anything may bump it (tests
//! inject changes through [`NetSignal::notify`]). [`NetSignal::watch_os`] feeds it from the OS:
//! on Linux a `NETLINK_ROUTE` socket subscribed to link and IPv4/IPv6 address changes, read on
//! one blocking thread (no privileges needed to listen); elsewhere nothing (the retry timer and
//! the port probe of [`crate::plc::retry`] still bring the PLC back).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// After a change, further messages within this time are one change (a link coming up brings
/// a burst: link, then addresses); a burst still yields a second signal at its end, when
/// DHCP/SLAAC addresses have usually arrived.
pub const SETTLE: Duration = Duration::from_millis(200);

/// A network-change signal: a counter bumped on every change.
#[derive(Clone)]
pub struct NetSignal(Arc<watch::Sender<u64>>);

impl Default for NetSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl NetSignal {
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    /// Reports a network change to every watcher.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver whose `changed()` completes on the next change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    /// Starts feeding this signal from the OS (Linux: netlink); returns whether a watcher runs.
    /// The watcher thread ends within a second once every clone of the signal is gone.
    pub fn watch_os(&self) -> bool {
        os::start(Arc::downgrade(&self.0))
    }
}

#[cfg(target_os = "linux")]
mod os {
    use std::sync::Weak;
    use std::time::{Duration, Instant};

    use tokio::sync::watch;

    /// Opens the netlink socket here (so failure is reported at once) and reads it on a thread.
    pub(super) fn start(signal: Weak<watch::Sender<u64>>) -> bool {
        let Some(fd) = open() else {
            tracing::debug!("no netlink socket: network changes are not watched");
            return false;
        };
        let spawned = std::thread::Builder::new()
            .name("stator-netwatch".into())
            .spawn(move || run(fd, signal));
        if spawned.is_err() {
            // SAFETY: `fd` is our open socket, closed once.
            unsafe { libc::close(fd) };
            return false;
        }
        true
    }

    /// A `NETLINK_ROUTE` socket in the link and address multicast groups, with a 1 s receive
    /// timeout (so the thread notices when nobody listens any more).
    fn open() -> Option<libc::c_int> {
        // SAFETY: plain socket calls on a descriptor we own; the structs are zero-initialised
        // C structs of the sizes passed.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return None;
            }
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            addr.nl_groups =
                (libc::RTMGRP_LINK | libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
            let tv = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            let ok = libc::bind(
                fd,
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) == 0
                && libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    &tv as *const libc::timeval as *const libc::c_void,
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                ) == 0;
            if !ok {
                libc::close(fd);
                return None;
            }
            Some(fd)
        }
    }

    /// Whether a message arrived (`false`: timeout or interrupted). Any message of the
    /// subscribed groups is a change; the content is not needed. Overflow (`ENOBUFS`: changes
    /// were dropped) is a change too.
    fn receive(fd: libc::c_int, buf: &mut [u8]) -> Result<bool, ()> {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n > 0 {
            return Ok(true);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOBUFS) => Ok(true),
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(false),
            _ if n == 0 => Ok(false),
            _ => Err(()),
        }
    }

    fn run(fd: libc::c_int, signal: Weak<watch::Sender<u64>>) {
        let mut buf = vec![0u8; 16 * 1024];
        let notify = || match signal.upgrade() {
            Some(s) => {
                s.send_modify(|n| *n = n.wrapping_add(1));
                true
            }
            None => false,
        };
        loop {
            match receive(fd, &mut buf) {
                Err(()) => break,
                Ok(false) => {
                    if signal.strong_count() == 0 {
                        break;
                    }
                    continue;
                }
                Ok(true) => {}
            }
            tracing::debug!("network changed: retrying PLCs that are not connected");
            if !notify() {
                break;
            }
            // Settle the burst, then signal once more if it went on.
            let until = Instant::now() + super::SETTLE;
            let mut more = false;
            while Instant::now() < until {
                match receive(fd, &mut buf) {
                    Ok(true) => more = true,
                    Ok(false) => std::thread::sleep(Duration::from_millis(10)),
                    Err(()) => break,
                }
            }
            if more && !notify() {
                break;
            }
        }
        // SAFETY: `fd` is our open socket, closed once.
        unsafe { libc::close(fd) };
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    /// No watcher on this OS: the retry timer and the port probe still apply.
    pub(super) fn start(_signal: std::sync::Weak<tokio::sync::watch::Sender<u64>>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_reaches_every_watcher_and_is_remembered_until_seen() {
        let s = NetSignal::new();
        let (mut a, mut b) = (s.subscribe(), s.subscribe());
        s.notify();
        // Remembered: a watcher that was busy when it came still sees it.
        tokio::time::timeout(Duration::from_secs(1), a.changed())
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), b.changed())
            .await
            .unwrap()
            .unwrap();
        // Seen once: no second wake-up without a new change.
        assert!(tokio::time::timeout(Duration::from_millis(50), a.changed())
            .await
            .is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_os_watcher_starts_without_privileges_and_ends_with_its_signal() {
        let s = NetSignal::new();
        assert!(s.watch_os(), "netlink route groups need no privileges");
        drop(s);
    }
}
