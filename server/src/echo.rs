//! Round-trip measurements over the ECHO dynamic channel (MS-RDPEECO), and
//! the ids that tell connections apart.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mailbox::Mailbox;

/// One connection, for the life of the server: numbered from 1 in the
/// order the listener accepted them, and never reused. Every
/// [`SessionEvent`](crate::SessionEvent) says which connection it is about,
/// and the server's log lines carry the same number (`id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(u64);

impl ConnectionId {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// For drivers of their own (an embedded loop) that number connections
/// the same way.
impl From<u64> for ConnectionId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One answered echo request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoMeasurement {
    pub connection: ConnectionId,
    /// What the request carried, as the client sent it back.
    pub payload: Vec<u8>,
    /// From the request leaving the server to the answer arriving, on the
    /// server's clock (including the time the request waited for the
    /// client's ECHO channel to open).
    pub round_trip: Duration,
}

/// Why an echo request was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EchoError {
    /// The connection ended (or never was): there is no one to ask.
    #[error("no connection {0}")]
    NoConnection(ConnectionId),
}

/// Measures round-trip times to connected clients over the ECHO dynamic
/// channel (clients that open it: `xfreerdp /echo`). Clone it freely and
/// use it from any thread.
///
/// A request for a connection still in its handshake waits for the
/// session to become active, then for the client's ECHO channel to open.
/// Answers are reported to the session observer
/// (`SessionEvent::EchoRoundTrip`) and kept for
/// [`take_measurements`](Self::take_measurements), at most
/// [`MAX_KEPT_MEASUREMENTS`](Self::MAX_KEPT_MEASUREMENTS) of them (the
/// oldest are dropped first). A client without the ECHO channel never
/// answers; the request is dropped and logged (DEBUG).
#[derive(Debug, Clone, Default)]
pub struct EchoHandle {
    inner: Arc<EchoInner>,
}

/// What application threads ask of one connection through its inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// An echo request with this payload.
    Echo(Vec<u8>),
    /// A Server Redirection (`RedirectHandle`).
    Redirect(Box<rdpserve_core::Redirection>),
}

#[derive(Debug, Default)]
struct EchoInner {
    /// The request queue of every connection alive.
    connections: Mutex<HashMap<ConnectionId, Mailbox<Request>>>,
    measurements: Mutex<VecDeque<EchoMeasurement>>,
}

impl EchoHandle {
    /// Measurements kept for `take_measurements` when nobody takes them.
    pub const MAX_KEPT_MEASUREMENTS: usize = 1024;

    /// Requests one round trip, with an empty payload, from every client
    /// connected now.
    pub fn request(&self) {
        if let Ok(connections) = self.inner.connections.lock() {
            for mailbox in connections.values() {
                mailbox.push(Request::Echo(Vec::new()));
            }
        }
    }

    /// Requests one round trip from `connection`, carrying `payload` (any
    /// bytes, up to `Config::max_channel_message` less 4; a larger one is
    /// refused by the connection and logged), which the measurement
    /// returns.
    pub fn send_request(
        &self,
        connection: ConnectionId,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), EchoError> {
        let connections = self
            .inner
            .connections
            .lock()
            .map_err(|_| EchoError::NoConnection(connection))?;
        let mailbox = connections
            .get(&connection)
            .ok_or(EchoError::NoConnection(connection))?;
        mailbox.push(Request::Echo(payload.into()));
        Ok(())
    }

    /// Queues `request` for `connection`, if it is alive.
    pub(crate) fn send(&self, connection: ConnectionId, request: Request) -> bool {
        let Ok(connections) = self.inner.connections.lock() else {
            return false;
        };
        connections
            .get(&connection)
            .map(|mailbox| mailbox.push(request))
            .is_some()
    }

    /// The measurements made since the last call, oldest first.
    pub fn take_measurements(&self) -> Vec<EchoMeasurement> {
        self.inner
            .measurements
            .lock()
            .map(|mut kept| kept.drain(..).collect())
            .unwrap_or_default()
    }

    /// Keeps a measurement for `take_measurements`.
    pub(crate) fn keep(&self, measurement: EchoMeasurement) {
        if let Ok(mut kept) = self.inner.measurements.lock() {
            if kept.len() == Self::MAX_KEPT_MEASUREMENTS {
                kept.pop_front();
            }
            kept.push_back(measurement);
        }
    }

    /// The request queue of a new connection, until the returned inbox is
    /// dropped.
    pub(crate) fn register(&self, connection: ConnectionId) -> EchoInbox {
        let mailbox = Mailbox::default();
        if let Ok(mut connections) = self.inner.connections.lock() {
            connections.insert(connection, mailbox.clone());
        }
        EchoInbox {
            connection,
            mailbox,
            handle: self.clone(),
        }
    }
}

/// One connection's echo requests; the connection leaves the handle's
/// registry when this is dropped.
pub(crate) struct EchoInbox {
    connection: ConnectionId,
    mailbox: Mailbox<Request>,
    handle: EchoHandle,
}

impl EchoInbox {
    pub fn mailbox(&self) -> &Mailbox<Request> {
        &self.mailbox
    }

    /// Takes the connection out of the registry: requests for it fail
    /// from now on. Called before the connection reports its end, so an
    /// application that saw `SessionEvent::Closed` cannot queue in vain.
    pub fn close(&self) {
        if let Ok(mut connections) = self.handle.inner.connections.lock() {
            connections.remove(&self.connection);
        }
    }
}

impl Drop for EchoInbox {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_registered_connections_only() {
        let echo = EchoHandle::default();
        let (one, two) = (ConnectionId(1), ConnectionId(2));
        assert_eq!(
            echo.send_request(one, b"x"),
            Err(EchoError::NoConnection(one))
        );
        let first = echo.register(one);
        let second = echo.register(two);
        echo.send_request(one, b"ping".to_vec()).unwrap();
        echo.request();
        assert_eq!(
            first.mailbox().take_all(),
            [Request::Echo(b"ping".to_vec()), Request::Echo(Vec::new())]
        );
        assert_eq!(second.mailbox().take_all(), [Request::Echo(Vec::new())]);
        drop(second);
        assert_eq!(
            echo.send_request(two, b"x"),
            Err(EchoError::NoConnection(two))
        );
    }

    #[test]
    fn measurements_are_kept_up_to_the_cap() {
        let echo = EchoHandle::default();
        for index in 0..EchoHandle::MAX_KEPT_MEASUREMENTS + 3 {
            echo.keep(EchoMeasurement {
                connection: ConnectionId(1),
                payload: (index as u32).to_le_bytes().to_vec(),
                round_trip: Duration::from_millis(1),
            });
        }
        let kept = echo.take_measurements();
        assert_eq!(kept.len(), EchoHandle::MAX_KEPT_MEASUREMENTS);
        assert_eq!(kept[0].payload, 3u32.to_le_bytes());
        assert!(echo.take_measurements().is_empty());
    }
}
