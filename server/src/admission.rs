//! Who may hold a connection: separate caps for connections still in their
//! handshake (before logon) and for active sessions, a cap per source
//! address on handshakes, and a throttle on addresses that keep failing to
//! log on. A connection over a cap is closed at once, never left waiting in
//! the listen backlog, and logged (at most once a second).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

/// The limits a server keeps on its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections in their handshake (not logged on yet) at once. Default
    /// 32. They never take an active session's place.
    pub max_handshakes: usize,
    /// Handshakes in progress from one source address. Default 4: a real
    /// client opens one or two; more from one address is a flood.
    pub max_handshakes_per_address: usize,
    /// Active (logged-on) sessions at once. Default 64.
    pub max_sessions: usize,
    /// A socket write that cannot finish within this closes the connection
    /// (a client that stopped reading). Before logon the handshake deadline
    /// bounds it too. Default 30 s.
    pub write_timeout: Duration,
    /// Failed logons from one address within `failure_window` after which
    /// its new connections are refused until the window has passed.
    /// Default 5 in 60 s.
    pub max_failed_logons: usize,
    pub failure_window: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_handshakes: 32,
            max_handshakes_per_address: 4,
            max_sessions: 64,
            write_timeout: Duration::from_secs(30),
            max_failed_logons: 5,
            failure_window: Duration::from_secs(60),
        }
    }
}

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("too many connections in their handshake")]
    Handshakes,
    #[error("too many handshakes from this address")]
    Address,
    #[error("too many failed logons from this address")]
    Throttled,
    #[error("too many active sessions")]
    Sessions,
}

#[derive(Debug, Default)]
struct State {
    handshakes: usize,
    per_address: HashMap<IpAddr, usize>,
    sessions: usize,
    /// Recent failed logons per address, oldest first.
    failures: HashMap<IpAddr, Vec<Instant>>,
    /// When a refusal was last logged, and how many were not since.
    last_logged: Option<Instant>,
    unlogged: usize,
}

/// The shared bookkeeping of a server's connections.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    limits: ConnectionLimits,
    state: Arc<Mutex<State>>,
}

/// A connection's place: a handshake slot until `promote`, then a session
/// slot; given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Admission,
    address: IpAddr,
    session: bool,
}

impl Admission {
    pub fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            state: Arc::default(),
        }
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the counters half-updated: every
        // change below is a single step.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A handshake slot for a client from `address`, or why not.
    pub fn admit(&self, address: IpAddr, now: Instant) -> Result<Ticket, Refusal> {
        let mut state = self.state();
        if let Some(failures) = state.failures.get_mut(&address) {
            failures.retain(|at| now.duration_since(*at) < self.limits.failure_window);
            if failures.len() >= self.limits.max_failed_logons {
                return Err(Refusal::Throttled);
            }
        }
        if state.handshakes >= self.limits.max_handshakes {
            return Err(Refusal::Handshakes);
        }
        let from_address = state.per_address.entry(address).or_default();
        if *from_address >= self.limits.max_handshakes_per_address {
            return Err(Refusal::Address);
        }
        *from_address += 1;
        state.handshakes += 1;
        Ok(Ticket {
            admission: self.clone(),
            address,
            session: false,
        })
    }

    /// Logs a refusal at WARN, at most once a second (with how many were
    /// left unlogged since), so a flood cannot flood the log.
    pub fn log_refusal(&self, peer: std::net::SocketAddr, refusal: Refusal, now: Instant) {
        let mut state = self.state();
        let due = state
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1));
        if due {
            let suppressed = std::mem::take(&mut state.unlogged);
            state.last_logged = Some(now);
            drop(state);
            warn!(%peer, reason = %refusal, suppressed, "Connection refused");
        } else {
            state.unlogged += 1;
        }
    }

    /// A failed logon from `address`: counts towards the throttle.
    pub fn record_failure(&self, address: IpAddr, now: Instant) {
        let window = self.limits.failure_window;
        let mut state = self.state();
        let failures = state.failures.entry(address).or_default();
        failures.retain(|at| now.duration_since(*at) < window);
        failures.push(now);
        // Addresses whose failures all aged out are forgotten.
        state.failures.retain(|_, failures| {
            failures
                .last()
                .is_some_and(|at| now.duration_since(*at) < window)
        });
    }
}

impl Ticket {
    /// A failed logon from this connection's address.
    pub fn record_failure(&self, address: IpAddr) {
        self.admission.record_failure(address, Instant::now());
    }

    /// The connection logged on: it leaves the handshake caps for a session
    /// slot, or is refused when every session slot is taken.
    pub fn promote(&mut self) -> Result<(), Refusal> {
        if self.session {
            return Ok(());
        }
        let mut state = self.admission.state();
        if state.sessions >= self.admission.limits.max_sessions {
            return Err(Refusal::Sessions);
        }
        state.sessions += 1;
        release_handshake(&mut state, self.address);
        self.session = true;
        Ok(())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.state();
        if self.session {
            state.sessions -= 1;
        } else {
            release_handshake(&mut state, self.address);
        }
    }
}

fn release_handshake(state: &mut State, address: IpAddr) {
    state.handshakes -= 1;
    if let Some(count) = state.per_address.get_mut(&address) {
        *count -= 1;
        if *count == 0 {
            state.per_address.remove(&address);
        }
    }
}

/// TCP keepalive for accepted sockets: a peer that vanished without a FIN
/// is noticed within about two minutes instead of holding its slot.
pub fn tcp_keepalive() -> socket2::TcpKeepalive {
    socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn handshakes_and_sessions_have_separate_caps() {
        let limits = ConnectionLimits {
            max_handshakes: 2,
            max_handshakes_per_address: 2,
            max_sessions: 1,
            ..ConnectionLimits::default()
        };
        let admission = Admission::new(limits);
        let now = Instant::now();
        let mut first = admission.admit(addr(1), now).unwrap();
        let second = admission.admit(addr(2), now).unwrap();
        assert_eq!(
            admission.admit(addr(3), now).unwrap_err(),
            Refusal::Handshakes
        );
        // A logon frees its handshake slot for the next client...
        first.promote().unwrap();
        let mut third = admission.admit(addr(3), now).unwrap();
        // ...and sessions are capped on their own.
        assert_eq!(third.promote().unwrap_err(), Refusal::Sessions);
        drop(first);
        third.promote().unwrap();
        drop((second, third));
        let state = admission.state();
        assert_eq!((state.handshakes, state.sessions), (0, 0));
        assert!(state.per_address.is_empty());
    }

    #[test]
    fn one_address_cannot_take_every_handshake_slot() {
        let admission = Admission::new(ConnectionLimits::default());
        let now = Instant::now();
        let held: Vec<Ticket> = (0..4)
            .map(|_| admission.admit(addr(2), now).unwrap())
            .collect();
        assert_eq!(admission.admit(addr(2), now).unwrap_err(), Refusal::Address);
        assert!(admission.admit(addr(1), now).is_ok());
        drop(held);
        assert!(admission.admit(addr(2), now).is_ok());
    }

    #[test]
    fn repeated_failures_throttle_an_address_for_the_window() {
        let admission = Admission::new(ConnectionLimits::default());
        let now = Instant::now();
        for _ in 0..5 {
            admission.record_failure(addr(5), now);
        }
        assert_eq!(
            admission.admit(addr(5), now).unwrap_err(),
            Refusal::Throttled
        );
        assert!(
            admission.admit(addr(6), now).is_ok(),
            "other addresses unaffected"
        );
        let later = now + Duration::from_secs(61);
        assert!(admission.admit(addr(5), later).is_ok());
    }
}
