//! A runtime-agnostic stop signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use event_listener::Event;

/// Stops a running server: the listener closes and every connection is told
/// goodbye (Set Error Info, disconnect).
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    event: Event,
}

impl StopHandle {
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    /// Completes once `stop` has been called.
    pub async fn stopped(&self) {
        loop {
            if self.is_stopped() {
                return;
            }
            let listener = self.inner.event.listen();
            // Checked again after registering, so a stop in between is not missed.
            if self.is_stopped() {
                return;
            }
            listener.await;
        }
    }
}

/// Asks every connected client for an echo (round-trip time measurement over
/// the ECHO dynamic channel). Clone it freely; requests made before a
/// client's channel opens are sent when it does. Results arrive as
/// `SessionEvent::EchoRoundTrip` at the session observer.
#[derive(Debug, Clone, Default)]
pub struct EchoHandle {
    inner: Arc<EchoInner>,
}

#[derive(Debug, Default)]
struct EchoInner {
    requests: std::sync::atomic::AtomicU64,
    event: Event,
}

impl EchoHandle {
    /// Requests one round trip from every connected client.
    pub fn request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        self.inner.event.notify(usize::MAX);
    }

    /// How many requests were made so far.
    pub(crate) fn count(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Completes once more than `seen` requests were made.
    pub(crate) async fn requested_beyond(&self, seen: u64) {
        loop {
            if self.count() > seen {
                return;
            }
            let listener = self.inner.event.listen();
            if self.count() > seen {
                return;
            }
            listener.await;
        }
    }
}
