//! What an adapter provides: sockets, timers, task spawning and blocking
//! threads of one async runtime. Everything else (builder, listener loop,
//! connection driver) lives once in this crate.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// One async runtime's primitives, as static functions.
pub trait Runtime: Send + Sync + 'static {
    type Listener: Send + Sync + 'static;
    type Stream: Send + 'static;

    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// Reads some bytes; must be cancel-safe (no data lost if dropped).
    fn read<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
    fn write_all<'a>(
        stream: &'a mut Self::Stream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a;
    fn shutdown(stream: &mut Self::Stream) -> impl Future<Output = ()> + Send + '_;
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send;
    fn spawn(task: impl Future<Output = ()> + Send + 'static);
    /// Runs `work` on a thread where blocking is allowed (tokio's blocking
    /// pool, smol's `unblock`) and completes with its result. The work
    /// starts whether or not the future is polled. The server runs frame
    /// encoding and the application's handlers there, so that the
    /// executor's threads stay free for every other connection. `work`
    /// never panics: the server catches panics before handing it over.
    fn spawn_blocking<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send;
}
