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
