//! Application virtual channels: a server with a static channel "CHAT" and
//! a dynamic channel "rdpserve::Chat". Each connection's handler logs the
//! text the client sends and answers it in capitals; a thread per channel
//! sends a tick every two seconds through the channel's handle until the
//! channel or the connection closes, when the handle says so.
//!
//! ```text
//! cargo run --release -p rdpserve-examples --bin channels -- [--addr IP:PORT]
//! ```
//!
//! A client needs a plugin for the channels: with IronRDP's client crates,
//! an `ironrdp-svc` processor named "CHAT" (`ClientConnector::
//! attach_dynamic_static_channel`) and an `ironrdp-dvc` processor named
//! "rdpserve::Chat" (`DrdynvcClient::with_dynamic_channel`), as the tests
//! in `tests/ironrdp.rs` do. Any other client still gets the desktop; its
//! log line says which channels it lacks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdpserve_examples::canvas::Canvas;
use rdpserve_tokio::{
    BitmapUpdate, ChannelCloseReason, ChannelFactory, ChannelHandle, ChannelHandler,
    ChannelOptions, ConnectionId, DesktopSize, DisplayUpdate, KeyboardEvent, MouseEvent, RdpServer,
    RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler,
};
use tracing::info;

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};

/// One connection's side of a chat channel.
struct Chat {
    connection: ConnectionId,
}

impl ChannelHandler for Chat {
    fn on_open(&mut self, channel: &ChannelHandle) {
        info!(connection = %self.connection, channel = channel.name(), "Chat open");
        // The handle is cloneable and works from any thread: this one
        // ticks until the channel is gone, which `send` reports.
        let ticker = channel.clone();
        std::thread::spawn(move || {
            for tick in 1u64.. {
                std::thread::sleep(Duration::from_secs(2));
                if let Err(error) = ticker.send(format!("tick {tick}").into_bytes()) {
                    info!(channel = ticker.name(), %error, "Ticker stops");
                    return;
                }
            }
        });
    }

    fn on_message(&mut self, message: Vec<u8>, channel: &ChannelHandle) {
        let text = String::from_utf8_lossy(&message);
        info!(connection = %self.connection, channel = channel.name(), %text, "Chat message");
        // Sending from the callback never waits.
        if let Err(error) = channel.send(text.to_uppercase().into_bytes()) {
            info!(%error, "Answer not sent");
        }
    }

    fn on_close(&mut self, reason: ChannelCloseReason) {
        info!(connection = %self.connection, ?reason, "Chat closed");
    }
}

/// Builds a [`Chat`] per connection, and says which clients lack it.
struct ChatFactory(&'static str);

impl ChannelFactory for ChatFactory {
    fn build(&self, connection: ConnectionId) -> Box<dyn ChannelHandler> {
        Box::new(Chat { connection })
    }

    fn unavailable(&self, connection: ConnectionId) {
        info!(%connection, channel = self.0, "Client has no such channel");
    }
}

struct LogInput;

impl RdpServerInputHandler for LogInput {
    fn keyboard(&mut self, event: KeyboardEvent) {
        tracing::debug!(?event, "Keyboard");
    }

    fn mouse(&mut self, event: MouseEvent) {
        tracing::debug!(?event, "Mouse");
    }
}

/// One still picture: a gradient.
struct Still;

struct StillUpdates {
    frame: Option<DisplayUpdate>,
}

impl RdpServerDisplay for Still {
    type Updates = StillUpdates;

    async fn size(&self) -> DesktopSize {
        SIZE
    }

    async fn updates(&self) -> std::io::Result<StillUpdates> {
        let mut canvas = Canvas::new(SIZE.width, SIZE.height);
        canvas.fill_gradient();
        Ok(StillUpdates {
            frame: Some(DisplayUpdate::Bitmap(BitmapUpdate {
                x: 0,
                y: 0,
                width: SIZE.width,
                height: SIZE.height,
                stride: canvas.stride(),
                data: Arc::from(canvas.pixels()),
                format: Default::default(),
            })),
        })
    }
}

impl RdpServerDisplayUpdates for StillUpdates {
    async fn next_update(&mut self) -> Option<DisplayUpdate> {
        match self.frame.take() {
            Some(frame) => Some(frame),
            // Nothing ever changes; the connection stays open.
            None => std::future::pending().await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = ([127, 0, 0, 1], 3389).into();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value.parse()?,
            _ => return Err("usage: channels [--addr IP:PORT]".into()),
        }
    }
    let server = RdpServer::builder()
        .with_addr(addr)
        .with_self_signed_tls()
        .with_input_handler(LogInput)
        .with_display_handler(Still)
        .with_static_channel("CHAT", ChannelOptions::default(), ChatFactory("CHAT"))
        .with_dynamic_channel(
            "rdpserve::Chat",
            ChannelOptions::default(),
            ChatFactory("rdpserve::Chat"),
        )
        .build()?;
    info!(%addr, "Serving CHAT and rdpserve::Chat over TLS (any user name and password)");
    server.run().await?;
    Ok(())
}
