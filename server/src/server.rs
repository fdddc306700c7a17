//! The listener: accepts clients and runs one task per connection.

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::FutureExt;
use rdpserve_core::{Config, SecurityConfig, SoundConfig};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admission::{Admission, ConnectionLimits};
use crate::app_channels::ChannelSpec;
use crate::builder::{RdpServerBuilder, WantsAddr};
use crate::clipboard::CliprdrServerFactory;
use crate::connection::{self, ChannelBackends, ConnectionSetup};
use crate::credentials::CredentialsHandle;
use crate::echo::{ConnectionId, EchoHandle};
use crate::handlers::{InputHandlerFactory, RdpServerDisplay, SessionObserver};
use crate::runtime::Runtime;
use crate::sound::SoundServerFactory;
use crate::stop::StopHandle;

#[derive(Clone)]
pub(crate) struct ServerOptions {
    pub observer: Option<SessionObserver>,
    pub credentials: CredentialsHandle,
    pub allow_tls_without_nla: bool,
    pub max_request_size: u32,
    pub handshake_timeout: Duration,
    pub first_bytes_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub limits: ConnectionLimits,
    pub record_dir: Option<std::path::PathBuf>,
    pub bitmap_compression: rdpserve_core::BitmapCompression,
    pub bitmap_codecs: rdpserve_core::BitmapCodecs,
    pub graphics_pipeline: Option<rdpserve_core::PipelineCodec>,
    pub scroll_detection: bool,
    pub cliprdr: Option<Arc<dyn CliprdrServerFactory>>,
    pub sound: Option<Arc<dyn SoundServerFactory>>,
    /// The application's own channels, in the order registered.
    pub app_channels: Vec<Arc<ChannelSpec>>,
    pub max_channel_message: usize,
    pub router: Option<Arc<dyn crate::routing::ConnectionRouter>>,
    pub redirection_cookies: Option<rdpserve_core::CookieValidator>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            observer: None,
            credentials: CredentialsHandle::default(),
            allow_tls_without_nla: false,
            max_request_size: Config::DEFAULT_MAX_REQUEST_SIZE,
            handshake_timeout: Config::DEFAULT_HANDSHAKE_TIMEOUT,
            first_bytes_timeout: Config::DEFAULT_FIRST_BYTES_TIMEOUT,
            idle_timeout: None,
            limits: ConnectionLimits::default(),
            record_dir: None,
            bitmap_compression: Default::default(),
            bitmap_codecs: Default::default(),
            graphics_pipeline: Config::default_graphics_pipeline(),
            scroll_detection: true,
            cliprdr: None,
            sound: None,
            app_channels: Vec::new(),
            max_channel_message: Config::DEFAULT_MAX_CHANNEL_MESSAGE,
            router: None,
            redirection_cookies: None,
        }
    }
}

/// An RDP server serving many clients at once on runtime `R`, with input
/// handlers from `I` (a [`SharedInputHandler`](crate::SharedInputHandler)
/// after `with_input_handler`) and pixels from `D`.
pub struct RdpServer<R, I, D> {
    addr: SocketAddr,
    security: SecurityConfig,
    shared: Arc<Shared<I, D>>,
    options: ServerOptions,
    stop: StopHandle,
    echo: EchoHandle,
    runtime: PhantomData<R>,
}

pub(crate) struct Shared<I, D> {
    /// Makes each connection's input handler.
    pub input: I,
    pub display: D,
    pub router: Option<Arc<dyn crate::routing::ConnectionRouter>>,
}

impl<R: Runtime> RdpServer<R, (), ()> {
    pub fn builder() -> RdpServerBuilder<R, WantsAddr> {
        RdpServerBuilder::new()
    }
}

impl<R: Runtime, I: InputHandlerFactory, D: RdpServerDisplay> RdpServer<R, I, D> {
    pub(crate) fn new(
        addr: SocketAddr,
        security: SecurityConfig,
        input: I,
        display: D,
        options: ServerOptions,
    ) -> Self {
        Self {
            addr,
            security,
            shared: Arc::new(Shared {
                input,
                display,
                router: options.router.clone(),
            }),
            options,
            stop: StopHandle::default(),
            echo: EchoHandle::default(),
            runtime: PhantomData,
        }
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Measures round-trip times to the connected clients.
    pub fn echo_handle(&self) -> EchoHandle {
        self.echo.clone()
    }

    /// Sends live connections elsewhere (Server Redirection).
    pub fn redirect_handle(&self) -> crate::routing::RedirectHandle {
        crate::routing::RedirectHandle::new(self.echo.clone())
    }

    /// Changes who may log on while the server runs.
    pub fn credentials_handle(&self) -> CredentialsHandle {
        self.options.credentials.clone()
    }

    /// Binds the configured address; the result reports the port actually
    /// bound (useful with port 0).
    pub async fn bind(self) -> io::Result<BoundServer<R, I, D>> {
        let listener = R::bind(self.addr).await?;
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
pub struct BoundServer<R: Runtime, I, D> {
    server: RdpServer<R, I, D>,
    listener: R::Listener,
}

enum Accepted<S> {
    Client(io::Result<(S, SocketAddr)>),
    Stopped,
}

impl<R: Runtime, I: InputHandlerFactory, D: RdpServerDisplay> BoundServer<R, I, D> {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        R::local_addr(&self.listener)
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.server.stop_handle()
    }

    pub fn echo_handle(&self) -> EchoHandle {
        self.server.echo_handle()
    }

    pub fn redirect_handle(&self) -> crate::routing::RedirectHandle {
        self.server.redirect_handle()
    }

    pub fn credentials_handle(&self) -> CredentialsHandle {
        self.server.credentials_handle()
    }

    /// Accepts clients until the stop handle fires.
    pub async fn run(self) -> io::Result<()> {
        let Self { server, listener } = self;
        let admission = Admission::new(server.options.limits.clone());
        let mut next_id: u64 = 1;
        info!(addr = %R::local_addr(&listener)?, "RDP server listening");
        loop {
            let stop = server.stop.clone();
            let accepted = async { Accepted::Client(R::accept(&listener).await) }
                .or(async move {
                    stop.stopped().await;
                    Accepted::Stopped
                })
                .await;
            let (stream, peer) = match accepted {
                Accepted::Stopped => break,
                Accepted::Client(Ok(accepted)) => accepted,
                // A client that reset before accept must not end the server.
                Accepted::Client(Err(error)) => {
                    warn!(%error, "Accept failed");
                    continue;
                }
            };
            // Admission after accept: a connection over a cap is closed at
            // once instead of waiting unseen in the listen backlog.
            let ticket = match admission.admit(peer.ip(), std::time::Instant::now()) {
                Ok(ticket) => ticket,
                Err(refusal) => {
                    admission.log_refusal(peer, refusal, std::time::Instant::now());
                    drop(stream);
                    continue;
                }
            };
            let id = next_id;
            next_id += 1;
            debug!(%peer, id, "Client connected");
            let mut config =
                Config::new(server.security.clone(), server.shared.display.size().await);
            config.credentials = server.options.credentials.for_connection();
            config.max_request_size = server.options.max_request_size;
            config.handshake_timeout = server.options.handshake_timeout;
            config.first_bytes_timeout = server.options.first_bytes_timeout;
            config.idle_timeout = server.options.idle_timeout;
            config.wall_clock = std::time::SystemTime::now();
            config.record = server.options.record_dir.is_some();
            config.route_after_logon = server.options.router.is_some();
            config.redirection_cookies = server.options.redirection_cookies.clone();
            config.bitmap_compression = server.options.bitmap_compression;
            config.bitmap_codecs = server.options.bitmap_codecs.clone();
            config.graphics_pipeline = server.options.graphics_pipeline;
            config.scroll_detection = server.options.scroll_detection;
            config.clipboard = server.options.cliprdr.is_some();
            config.sound = server
                .options
                .sound
                .as_ref()
                .map(|factory| SoundConfig::new(factory.formats()));
            config.static_channels = server
                .options
                .app_channels
                .iter()
                .filter(|spec| !spec.dynamic)
                .map(|spec| spec.name.clone())
                .collect();
            config.max_channel_message = server.options.max_channel_message;
            config.channel_memory_budget = config
                .channel_memory_budget
                .max(server.options.max_channel_message.saturating_mul(2));
            let backends = ChannelBackends {
                clipboard: server
                    .options
                    .cliprdr
                    .as_ref()
                    .map(|factory| factory.build_cliprdr_backend()),
                sound: server
                    .options
                    .sound
                    .as_ref()
                    .map(|factory| factory.build_backend()),
                application: server.options.app_channels.clone(),
            };
            let recording = server.options.record_dir.as_ref().map(|dir| {
                dir.join(format!(
                    "session-{}-{}.rdprec",
                    config
                        .wall_clock
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_nanos(),
                    peer.port()
                ))
            });
            let shared = server.shared.clone();
            let stop = server.stop.clone();
            let echo = server.echo.clone();
            let observer = server.options.observer.clone();
            let write_timeout = admission.limits().write_timeout;
            // Every line this connection logs carries its id and address.
            let span = info_span!("connection", id, %peer);
            R::spawn(
                async move {
                    let setup = ConnectionSetup {
                        id: ConnectionId::from(id),
                        config,
                        stop,
                        echo,
                        observer,
                        recording,
                        backends,
                        ticket,
                        peer,
                        write_timeout,
                    };
                    if let Err(error) = connection::serve::<R, I, D>(stream, shared, setup).await {
                        debug!(%error, "Connection ended with an i/o error");
                    }
                }
                .instrument(span),
            );
        }
        info!("RDP server stopped");
        Ok(())
    }
}
