//! The listener: accepts clients and runs one task per connection.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdpserve_core::config::{Config, SecurityConfig, Validator};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::builder::{RdpServerBuilder, WantsAddr};
use crate::connection;
use crate::handlers::{RdpServerDisplay, RdpServerInputHandler, SessionObserver};

#[derive(Clone)]
pub(crate) struct ServerOptions {
    pub observer: Option<SessionObserver>,
    pub credentials: Option<Validator>,
    pub allow_tls_without_nla: bool,
    pub max_request_size: u32,
    pub handshake_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            observer: None,
            credentials: None,
            allow_tls_without_nla: false,
            max_request_size: Config::DEFAULT_MAX_REQUEST_SIZE,
            handshake_timeout: Config::DEFAULT_HANDSHAKE_TIMEOUT,
            max_connections: 64,
        }
    }
}

/// Stops a running server: the listener closes and every connection is told
/// goodbye (Set Error Info, disconnect).
#[derive(Debug, Clone)]
pub struct StopHandle {
    sender: Arc<watch::Sender<bool>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.sender.send_replace(true);
    }
}

/// An RDP server serving many clients at once; see the crate docs.
pub struct RdpServer<I, D> {
    addr: SocketAddr,
    security: SecurityConfig,
    shared: Arc<Shared<I, D>>,
    options: ServerOptions,
    stop: Arc<watch::Sender<bool>>,
}

pub(crate) struct Shared<I, D> {
    pub input: Mutex<I>,
    pub display: D,
}

impl RdpServer<(), ()> {
    pub fn builder() -> RdpServerBuilder<WantsAddr> {
        RdpServerBuilder::new()
    }
}

impl<I: RdpServerInputHandler, D: RdpServerDisplay> RdpServer<I, D> {
    pub(crate) fn new(
        addr: SocketAddr,
        security: SecurityConfig,
        input: I,
        display: D,
        options: ServerOptions,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        Self {
            addr,
            security,
            shared: Arc::new(Shared {
                input: Mutex::new(input),
                display,
            }),
            options,
            stop: Arc::new(stop),
        }
    }

    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            sender: self.stop.clone(),
        }
    }

    /// Binds the configured address; the returned listener reports the port
    /// actually bound (useful with port 0).
    pub async fn bind(self) -> io::Result<BoundServer<I, D>> {
        let listener = TcpListener::bind(self.addr).await?;
        Ok(BoundServer {
            server: self,
            listener,
        })
    }

    /// Binds and serves until stopped.
    pub async fn run(self) -> io::Result<()> {
        self.bind().await?.run().await
    }
}

/// A server whose socket is bound; call [`run`](Self::run).
pub struct BoundServer<I, D> {
    server: RdpServer<I, D>,
    listener: TcpListener,
}

impl<I: RdpServerInputHandler, D: RdpServerDisplay> BoundServer<I, D> {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.server.stop_handle()
    }

    /// Accepts clients until the stop handle fires.
    pub async fn run(self) -> io::Result<()> {
        let Self { server, listener } = self;
        let mut stop = server.stop.subscribe();
        let slots = Arc::new(Semaphore::new(server.options.max_connections));
        info!(addr = %listener.local_addr()?, "RDP server listening");
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => permit.expect("semaphore never closed"),
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Per-connection failures (e.g. the client reset before
                        // accept) must not end the server.
                        warn!(%error, "Accept failed");
                        continue;
                    }
                },
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            debug!(%peer, "Client connected");
            let mut config =
                Config::new(server.security.clone(), server.shared.display.size().await);
            config.credentials = server.options.credentials.clone();
            config.max_request_size = server.options.max_request_size;
            config.handshake_timeout = server.options.handshake_timeout;
            config.wall_clock = std::time::SystemTime::now();
            let shared = server.shared.clone();
            let stop = server.stop.subscribe();
            let observer = server.options.observer.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(error) = connection::serve(stream, config, shared, stop, observer).await
                {
                    debug!(%peer, %error, "Connection ended with an i/o error");
                }
            });
        }
        info!("RDP server stopped");
        Ok(())
    }
}
