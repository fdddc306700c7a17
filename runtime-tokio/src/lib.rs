//! rdpserve-tokio: serve RDP clients over tokio sockets.
//!
//! The API is `rdpserve-server`'s, bound to tokio:
//!
//! ```no_run
//! use rdpserve_tokio::{RdpServer, TlsIdentity};
//! # use rdpserve_tokio::*;
//! # struct Input; impl RdpServerInputHandler for Input { fn keyboard(&mut self, _: KeyboardEvent) {} fn mouse(&mut self, _: MouseEvent) {} }
//! # struct Display; struct Updates;
//! # impl RdpServerDisplay for Display { type Updates = Updates;
//! #   async fn size(&self) -> DesktopSize { DesktopSize { width: 1024, height: 768 } }
//! #   async fn updates(&self) -> std::io::Result<Updates> { Ok(Updates) } }
//! # impl RdpServerDisplayUpdates for Updates { async fn next_update(&mut self) -> Option<DisplayUpdate> { None } }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = RdpServer::builder()
//!     .with_addr(([127, 0, 0, 1], 3389))
//!     .with_tls(TlsIdentity::from_pem_files("cert.pem", "key.pem")?)
//!     .with_input_handler(Input)
//!     .with_display_handler(Display)
//!     .build()?;
//! let stop = server.stop_handle();
//! server.run().await?;
//! # drop(stop); Ok(()) }
//! ```
//!
//! Cargo features, all on by default as in `ironrdp-server`: `rayon`
//! (RemoteFX tiles encoded in parallel), `qoi` and `qoiz` (IronRDP's QOI and
//! QOIZ surface codecs; `qoiz` builds the zstd C library; a codec not built
//! is never offered to clients), `self-signed` (`TlsIdentity::self_signed`
//! and the builder's `with_self_signed_tls`/`with_self_signed_hybrid`, with
//! rcgen and rsa).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

pub use rdpserve_server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The tokio runtime, for [`rdpserve_server::RdpServer`].
pub struct Tokio;

/// An RDP server on tokio.
pub type RdpServer<I = (), D = ()> = rdpserve_server::RdpServer<Tokio, I, D>;

impl Runtime for Tokio {
    type Listener = TcpListener;
    type Stream = TcpStream;

    fn bind(addr: SocketAddr) -> impl Future<Output = io::Result<TcpListener>> + Send {
        TcpListener::bind(addr)
    }

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = listener.accept().await?;
        stream.set_nodelay(true)?;
        // A peer that vanishes without a FIN is found and its slot freed.
        socket2::SockRef::from(&stream).set_tcp_keepalive(&rdpserve_server::tcp_keepalive())?;
        Ok((stream, peer))
    }

    fn read<'a>(
        stream: &'a mut TcpStream,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        stream.read(buf)
    }

    fn write_all<'a>(
        stream: &'a mut TcpStream,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + Send + 'a {
        stream.write_all(buf)
    }

    async fn shutdown(stream: &mut TcpStream) {
        let _ = stream.shutdown().await;
    }

    fn sleep_until(deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
    }

    fn spawn(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    fn spawn_blocking<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> + Send {
        // Started now, not when first polled.
        let handle = tokio::task::spawn_blocking(work);
        async move {
            match handle.await {
                Ok(value) => value,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // Cancelled only when the runtime shuts down, which ends
                // the task waiting here too.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
