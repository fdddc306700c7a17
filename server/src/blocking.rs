//! Work that must not hold an executor thread: frame encoding and the
//! application's handlers run on the runtime's blocking threads
//! ([`Runtime::spawn_blocking`]).
//!
//! Why: one executor thread serves many connections (smol's global
//! executor has one by default). A full 1920x1080 RemoteFX frame takes
//! milliseconds to encode and an application's handler may wait on a lock
//! or a device; run inline, either would stall every other client's input
//! and output for that long.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex};

use rdpserve_core::Engine;
use tracing::{Span, error};

use crate::runtime::Runtime;

/// Runs `work` on a blocking thread and returns its result. A panic in
/// `work` resumes in the caller, as if it had run inline.
pub(crate) async fn run<R: Runtime, T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let span = Span::current();
    let outcome = R::spawn_blocking(move || {
        let _entered = span.enter();
        catch_unwind(AssertUnwindSafe(work))
    })
    .await;
    outcome.unwrap_or_else(|panic| resume_unwind(panic))
}

/// Lends `owned` to `work` on a blocking thread and hands it back with the
/// result: the connection waits, no other connection does.
pub(crate) async fn lend<R: Runtime, S: Send + 'static, T: Send + 'static>(
    mut owned: S,
    work: impl FnOnce(&mut S) -> T + Send + 'static,
) -> (S, T) {
    run::<R, _>(move || {
        let result = work(&mut owned);
        (owned, result)
    })
    .await
}

/// Lends the connection's engine to `work` on a blocking thread (for
/// commands that encode pixels, and input that may release a paced frame).
pub(crate) async fn with_engine<R: Runtime, T: Send + 'static>(
    engine: Box<Engine>,
    work: impl FnOnce(&mut Engine) -> T + Send + 'static,
) -> (Box<Engine>, T) {
    lend::<R, _, _>(engine, |engine| work(engine)).await
}

type Job<B> = Box<dyn FnOnce(&mut B) + Send>;

/// One connection's application handler (`B`: its input handler, ...),
/// called in order on blocking threads without the connection task waiting
/// for it. Calls queue while one runs; a handler that blocks delays only
/// its own later calls.
pub(crate) struct Callbacks<B> {
    state: Arc<Mutex<CallbackState<B>>>,
}

struct CallbackState<B> {
    queue: VecDeque<Job<B>>,
    /// The handler, when no blocking thread holds it.
    idle: Option<B>,
    /// A call panicked: the handler is gone and later calls are dropped.
    broken: bool,
}

impl<B: Send + 'static> Callbacks<B> {
    pub fn new(handler: B) -> Self {
        Self {
            state: Arc::new(Mutex::new(CallbackState {
                queue: VecDeque::new(),
                idle: Some(handler),
                broken: false,
            })),
        }
    }

    /// Queues a call of the handler; starts a blocking thread on the queue
    /// unless one is at work on it already.
    pub fn call<R: Runtime>(&self, job: impl FnOnce(&mut B) + Send + 'static) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.broken {
            return;
        }
        state.queue.push_back(Box::new(job));
        let Some(handler) = state.idle.take() else {
            return;
        };
        drop(state);
        let state = self.state.clone();
        let span = Span::current();
        // The task only keeps the blocking work alive (smol cancels an
        // unblock whose task is dropped); nothing waits for it.
        R::spawn(R::spawn_blocking(move || {
            let _entered = span.enter();
            drain(&state, handler);
        }));
    }
}

/// Calls `handler` with every queued job until the queue is empty, then
/// puts it back for the next `call`.
fn drain<B>(state: &Mutex<CallbackState<B>>, mut handler: B) {
    loop {
        let jobs = {
            let Ok(mut state) = state.lock() else {
                return;
            };
            if state.queue.is_empty() {
                state.idle = Some(handler);
                return;
            }
            std::mem::take(&mut state.queue)
        };
        for job in jobs {
            if catch_unwind(AssertUnwindSafe(|| job(&mut handler))).is_err() {
                // A handler that panicked may hold broken state: it is not
                // called again. The connection itself goes on.
                error!(
                    "An application handler panicked; this connection's later calls are dropped"
                );
                if let Ok(mut state) = state.lock() {
                    state.broken = true;
                    state.queue.clear();
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::mpsc;

    /// A runtime whose blocking threads are plain threads and whose tasks
    /// are run to completion on a thread of their own.
    struct Threads;

    impl Runtime for Threads {
        type Listener = ();
        type Stream = ();

        async fn bind(_: std::net::SocketAddr) -> std::io::Result<()> {
            Ok(())
        }
        fn local_addr(_: &()) -> std::io::Result<std::net::SocketAddr> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        async fn accept(_: &()) -> std::io::Result<((), std::net::SocketAddr)> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
        async fn read(_: &mut (), _: &mut [u8]) -> std::io::Result<usize> {
            Ok(0)
        }
        async fn write_all(_: &mut (), _: &[u8]) -> std::io::Result<()> {
            Ok(())
        }
        async fn shutdown(_: &mut ()) {}
        async fn sleep_until(_: std::time::Instant) {}
        fn spawn(task: impl Future<Output = ()> + Send + 'static) {
            std::thread::spawn(move || futures_lite::future::block_on(task));
        }
        async fn spawn_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
            let (sender, receiver) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = sender.send(work());
            });
            receiver.recv().expect("the work finishes")
        }
    }

    #[test]
    fn calls_run_in_order_and_a_blocked_handler_holds_only_its_own_queue() {
        let (seen, calls) = mpsc::channel::<u32>();
        let (release, gate) = mpsc::channel::<()>();
        let blocked = Callbacks::new(gate);
        let free = Callbacks::new(seen.clone());
        // The first call waits for the gate, the second queues behind it.
        blocked.call::<Threads>(|gate| gate.recv().expect("released"));
        let seen_later = seen.clone();
        blocked.call::<Threads>(move |_| seen_later.send(2).expect("seen"));
        // Meanwhile another handler's calls go through, in order.
        free.call::<Threads>(|seen| seen.send(0).expect("seen"));
        free.call::<Threads>(|seen| seen.send(1).expect("seen"));
        let timeout = std::time::Duration::from_secs(30);
        assert_eq!(calls.recv_timeout(timeout), Ok(0));
        assert_eq!(calls.recv_timeout(timeout), Ok(1));
        release.send(()).expect("the gate listens");
        assert_eq!(calls.recv_timeout(timeout), Ok(2));
    }

    #[test]
    fn a_panicking_handler_is_not_called_again() {
        let (seen, calls) = mpsc::channel::<u32>();
        let callbacks = Callbacks::new(seen);
        callbacks.call::<Threads>(|_| panic!("the application's bug"));
        let timeout = std::time::Duration::from_secs(30);
        // Wait until the panic was handled: the handler is gone.
        let deadline = std::time::Instant::now() + timeout;
        while !callbacks.state.lock().expect("not poisoned").broken {
            assert!(std::time::Instant::now() < deadline, "the panic is handled");
            std::thread::yield_now();
        }
        callbacks.call::<Threads>(|seen| seen.send(1).expect("seen"));
        assert!(
            calls
                .recv_timeout(std::time::Duration::from_millis(0))
                .is_err()
        );
        assert!(
            callbacks
                .state
                .lock()
                .expect("not poisoned")
                .queue
                .is_empty()
        );
    }
}
