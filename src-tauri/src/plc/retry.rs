//! When to try a lost PLC again.
//!
//! Plants reboot PLCs and switch networks, and operators expect values back at once. So an
//! outage is retried every [`FAST_RETRY`] for its first [`FAST_PHASE`]; only then does the delay
//! double up to the configured cap (`plc_reconnect_delay_minutes`), to spare a PLC that is gone
//! for good. While waiting, a cheap TCP probe of the PLC's port is the network-level signal: when
//! a port that refused (or did not answer) starts accepting, the wait ends at once, so recovery
//! does not depend on where in the retry period the PLC came back. The operating system's
//! network-change signal ([`crate::plc::netwatch`]) ends the wait at once as well.

use std::time::Duration;

use tokio::time::Instant;

/// The retry delay during the first [`FAST_PHASE`] of an outage (and the first retry).
pub const FAST_RETRY: Duration = Duration::from_secs(1);
/// How long an outage is retried every [`FAST_RETRY`] before backing off.
pub const FAST_PHASE: Duration = Duration::from_secs(180);
/// How often the PLC's port is probed while waiting (fast phase).
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How often the port is probed while waiting after the fast phase.
pub const SLOW_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Reconnect delays of one outage: [`FAST_RETRY`] for [`FAST_PHASE`], then doubling to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    cap: Duration,
    /// When the current outage began (first failure since the last success).
    since: Option<Instant>,
    /// The next delay once the fast phase is over.
    next: Duration,
}

impl Backoff {
    pub fn new(cap: Duration) -> Self {
        Self {
            cap,
            since: None,
            next: (FAST_RETRY * 2).min(cap),
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_at(Instant::now())
    }

    /// [`Backoff::next_delay`] at a given time (for tests).
    pub fn next_delay_at(&mut self, now: Instant) -> Duration {
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < FAST_PHASE {
            return FAST_RETRY.min(self.cap);
        }
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        d
    }

    /// Whether the outage is still in its fast phase (probing more often).
    pub fn fast(&self, now: Instant) -> bool {
        self.since
            .is_none_or(|s| now.duration_since(s) < FAST_PHASE)
    }

    /// After a successful connection the next outage starts fast again.
    pub fn reset(&mut self) {
        *self = Self::new(self.cap);
    }
}

/// `host:port` of an `opc.tcp://host[:port][/path]` URL (port 4840 when absent).
pub fn socket_address(url: &str) -> Option<String> {
    let rest = url.strip_prefix("opc.tcp://")?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    Some(if has_port {
        authority.to_string()
    } else {
        format!("{authority}:4840")
    })
}

/// Whether a TCP connection to `addr` opens within `limit` (closed again at once).
pub async fn port_open(addr: &str, limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Why a reconnect wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The delay passed.
    Timer,
    /// The PLC's port started accepting connections.
    Port,
    /// The OS reported a network change (link or address).
    Network,
}

/// Waits `delay`, or less: returns early when `url`'s port, closed or silent at the start of
/// the wait, starts accepting connections (the PLC or the network is back), or when `net`
/// reports a network change that this receiver has not seen yet.
pub async fn wait(
    url: &str,
    delay: Duration,
    probe_every: Duration,
    net: &mut tokio::sync::watch::Receiver<u64>,
) -> Woke {
    let deadline = Instant::now() + delay;
    let probe = async {
        let Some(addr) = socket_address(url) else {
            return std::future::pending::<()>().await;
        };
        // Edge-triggered: a port that is open now (the PLC answers TCP but OPC UA failed) is
        // no signal, so a PLC refusing the session is never hammered.
        if port_open(&addr, probe_every).await {
            return std::future::pending::<()>().await;
        }
        until_open(&addr, probe_every).await
    };
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => Woke::Timer,
        _ = probe => Woke::Port,
        // A closed channel (no watcher) is no signal.
        Ok(()) = net.changed() => Woke::Network,
    }
}

/// Returns once `addr` accepts a TCP connection, probing every `probe_every`.
async fn until_open(addr: &str, probe_every: Duration) {
    loop {
        let next = Instant::now() + probe_every;
        if port_open(addr, probe_every).await {
            return;
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_for_the_first_minutes_then_doubling_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Backoff::new(Duration::from_secs(600));
        for s in [0, 1, 60, 179] {
            assert_eq!(b.next_delay_at(t0 + Duration::from_secs(s)), FAST_RETRY);
        }
        assert!(FAST_RETRY <= Duration::from_secs(2));
        let later: Vec<u64> = (0..10)
            .map(|_| b.next_delay_at(t0 + FAST_PHASE).as_secs())
            .collect();
        assert_eq!(later, vec![2, 4, 8, 16, 32, 64, 128, 256, 512, 600]);
        assert!(!b.fast(t0 + FAST_PHASE));
        b.reset();
        let t1 = t0 + Duration::from_secs(3600);
        assert!(b.fast(t1));
        assert_eq!(b.next_delay_at(t1), FAST_RETRY);
        let mut tiny = Backoff::new(Duration::from_millis(300));
        assert_eq!(tiny.next_delay_at(t0), Duration::from_millis(300));
    }

    #[test]
    fn socket_addresses_of_opc_urls() {
        assert_eq!(
            socket_address("opc.tcp://10.0.0.5:4841/x").as_deref(),
            Some("10.0.0.5:4841")
        );
        assert_eq!(
            socket_address("opc.tcp://plc.local").as_deref(),
            Some("plc.local:4840")
        );
        assert_eq!(
            socket_address("opc.tcp://[::1]/").as_deref(),
            Some("[::1]:4840")
        );
        assert_eq!(
            socket_address("opc.tcp://[::1]:48/").as_deref(),
            Some("[::1]:48")
        );
        assert_eq!(socket_address("http://x"), None);
    }

    #[tokio::test]
    async fn a_port_that_opens_is_seen_and_an_open_port_is_no_signal() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let a = addr.to_string();
        let waiter = tokio::spawn(async move { until_open(&a, Duration::from_millis(20)).await });
        assert!(!port_open(&addr.to_string(), Duration::from_millis(200)).await);
        let _l = tokio::net::TcpListener::bind(addr).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the probe saw the port open")
            .unwrap();
        // Open from the start: the wait lasts its full delay.
        let t = std::time::Instant::now();
        let delay = Duration::from_millis(300);
        let net = crate::plc::netwatch::NetSignal::new();
        let woke = wait(
            &format!("opc.tcp://{addr}"),
            delay,
            Duration::from_millis(20),
            &mut net.subscribe(),
        )
        .await;
        assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
        assert_eq!(woke, Woke::Timer);
    }

    #[tokio::test]
    async fn a_network_change_ends_the_wait_at_once() {
        // The PLC's port stays open (no port signal) and the delay is long: only the network
        // change can end the wait early. Injected through the channel the OS watcher feeds.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("opc.tcp://{}", l.local_addr().unwrap());
        let net = crate::plc::netwatch::NetSignal::new();
        let mut rx = net.subscribe();
        let t = std::time::Instant::now();
        let waiter = tokio::spawn(async move {
            wait(
                &url,
                Duration::from_secs(30),
                Duration::from_millis(20),
                &mut rx,
            )
            .await
        });
        net.notify();
        let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the network change")
            .unwrap();
        assert_eq!(woke, Woke::Network);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        // A change seen before the wait began is not seen again (the engine marks changes
        // seen when an attempt starts): the wait runs to its delay.
        let mut rx = net.subscribe();
        net.notify();
        rx.borrow_and_update();
        let woke = wait(
            &format!("opc.tcp://{}", l.local_addr().unwrap()),
            Duration::from_millis(100),
            Duration::from_millis(20),
            &mut rx,
        )
        .await;
        assert_eq!(woke, Woke::Timer);
    }
}
