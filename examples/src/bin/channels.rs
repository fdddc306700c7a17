//! Application virtual channels: a server with a static channel "CHAT" and
//! a dynamic channel "rdpserve::Chat", both served by the chat handler of
//! `src/chat.rs`: it logs the text the client sends and answers it in
//! capitals, and a thread per channel sends a tick every two seconds
//! through the channel's handle until the channel or the connection
//! closes, when the handle says so.
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
use rdpserve_examples::chat::ChatFactory;
use rdpserve_tokio::{
    BitmapUpdate, ChannelOptions, DesktopSize, DisplayUpdate, KeyboardEvent, MouseEvent, RdpServer,
    RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler,
};
use tracing::info;

/// How often each chat channel ticks.
const TICK: Duration = Duration::from_secs(2);

const SIZE: DesktopSize = DesktopSize {
    width: 800,
    height: 600,
};

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
        .with_static_channel(
            "CHAT",
            ChannelOptions::default(),
            ChatFactory::new("CHAT", TICK),
        )
        .with_dynamic_channel(
            "rdpserve::Chat",
            ChannelOptions::default(),
            ChatFactory::new("rdpserve::Chat", TICK),
        )
        .build()?;
    info!(%addr, "Serving CHAT and rdpserve::Chat over TLS (any user name and password)");
    server.run().await?;
    Ok(())
}
