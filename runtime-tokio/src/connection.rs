//! One client: drives an [`Engine`] over a tokio TCP stream.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use rdpserve_core::input::InputEvent;
use rdpserve_core::{Config, Engine, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::handlers::{
    DisplayUpdate, RdpServerDisplay, RdpServerDisplayUpdates, RdpServerInputHandler, SessionEvent,
    SessionObserver,
};
use crate::server::Shared;

const READ_BUFFER: usize = 16 * 1024;

pub(crate) async fn serve<I: RdpServerInputHandler, D: RdpServerDisplay>(
    mut stream: TcpStream,
    config: Config,
    shared: Arc<Shared<I, D>>,
    mut stop: watch::Receiver<bool>,
    observer: Option<SessionObserver>,
) -> io::Result<()> {
    let notify = |event: SessionEvent| {
        if let Some(observer) = &observer {
            observer(&event);
        }
    };
    stream.set_nodelay(true)?;
    let connected_at = Instant::now();
    let mut engine = Engine::new(config, fresh_seed(), connected_at);
    let mut read_buffer = vec![0u8; READ_BUFFER];
    let mut transmit = Vec::new();
    let mut updates: Option<D::Updates> = None;
    let mut output_allowed = true;
    let mut first_frame_logged = false;
    loop {
        // Drain in the order the engine documents: bytes, then events.
        while engine.poll_transmit(&mut transmit).is_some() {
            stream.write_all(&transmit).await?;
            transmit.clear();
        }
        while let Some(event) = engine.poll_event() {
            match event {
                Event::Activated(info) => {
                    info!(user = %info.user_name, client = %info.client_name, elapsed_ms = connected_at.elapsed().as_millis(), "Session active");
                    notify(SessionEvent::Activated(info));
                    updates = Some(shared.display.updates().await?);
                }
                Event::Input(input) => dispatch_input(&shared, input),
                Event::SuppressOutput {
                    allow_display_updates,
                } => output_allowed = allow_display_updates,
                Event::RefreshRect(areas) => debug!(?areas, "Refresh requested"),
                Event::Closed { reason } => {
                    debug!(?reason, "Session closed");
                    notify(SessionEvent::Closed { reason });
                    while engine.poll_transmit(&mut transmit).is_some() {
                        stream.write_all(&transmit).await?;
                        transmit.clear();
                    }
                    let _ = stream.shutdown().await;
                    return Ok(());
                }
                other => debug!(event = ?other, "Unhandled event"),
            }
        }
        let deadline = engine
            .poll_timeout()
            .map(|(at, _)| tokio::time::Instant::from_std(at));
        tokio::select! {
            read = stream.read(&mut read_buffer) => match read? {
                0 => engine.handle_eof(Instant::now()),
                n => engine.handle_input(Instant::now(), &read_buffer[..n]),
            },
            _ = sleep_until(deadline) => engine.handle_timeout(Instant::now()),
            update = next_update(&mut updates), if updates.is_some() && output_allowed => match update {
                Some(DisplayUpdate::Bitmap(bitmap)) => {
                    if let Err(error) = engine.send_bitmap(&bitmap.as_core()) {
                        warn!(%error, "Display update rejected");
                    } else if !first_frame_logged {
                        first_frame_logged = true;
                        info!(elapsed_ms = connected_at.elapsed().as_millis(), "First frame sent");
                    }
                }
                None => engine.close(),
            },
            _ = stop.wait_for(|stopped| *stopped) => engine.close(),
        }
    }
}

async fn next_update<U: RdpServerDisplayUpdates>(updates: &mut Option<U>) -> Option<DisplayUpdate> {
    match updates {
        Some(updates) => updates.next_update().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn dispatch_input<I: RdpServerInputHandler, D>(shared: &Shared<I, D>, input: InputEvent) {
    let Ok(mut handler) = shared.input.lock() else {
        warn!("Input handler poisoned by an earlier panic; dropping input");
        return;
    };
    match input {
        InputEvent::Keyboard(event) => handler.keyboard(event),
        InputEvent::Mouse(event) => handler.mouse(event),
    }
}

/// The engine's seed: the adapter is where OS randomness may be read.
fn fresh_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let random = rustls::crypto::ring::default_provider().secure_random;
    if random.fill(&mut seed).is_err() {
        // The seed only feeds identifiers today; a time-based fallback keeps
        // the server up on a machine whose RNG failed.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    seed
}
