//! A queue of commands from application threads to one connection task,
//! with a wakeup the task can await.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use event_listener::Event;

pub(crate) struct Mailbox<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    queue: Mutex<VecDeque<T>>,
    event: Event,
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailbox(..)")
    }
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                event: Event::new(),
            }),
        }
    }
}

impl<T> Mailbox<T> {
    pub fn push(&self, item: T) {
        if let Ok(mut queue) = self.inner.queue.lock() {
            queue.push_back(item);
        }
        self.inner.event.notify(usize::MAX);
    }

    /// Everything queued so far, oldest first.
    pub fn take_all(&self) -> Vec<T> {
        self.inner
            .queue
            .lock()
            .map(|mut queue| queue.drain(..).collect())
            .unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.inner
            .queue
            .lock()
            .map(|queue| queue.is_empty())
            .unwrap_or(true)
    }

    /// Completes once something is queued.
    pub async fn wait(&self) {
        loop {
            if !self.is_empty() {
                return;
            }
            let listener = self.inner.event.listen();
            // Checked again after registering, so a push in between is not missed.
            if !self.is_empty() {
                return;
            }
            listener.await;
        }
    }
}
