//! The engine in a hand-written blocking loop: no async runtime, only
//! `std::net`. Socket reads time out when the engine's next deadline is due,
//! which is all the "event loop" an RDP connection needs.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rdpserve_core::{BitmapUpdate, CloseReason, Config, Engine, Event, PixelFormat};

/// A picture to show: 32-bit B, G, R, X pixels, rows top to bottom.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: u16,
    pub height: u16,
    pub pixels: Vec<u8>,
}

impl Frame {
    fn as_update(&self) -> BitmapUpdate<'_> {
        BitmapUpdate {
            x: 0,
            y: 0,
            width: self.width,
            height: self.height,
            stride: usize::from(self.width) * 4,
            format: PixelFormat::BgrX32,
            data: &self.pixels,
        }
    }
}

/// The engine's seed, from the operating system (rustls' ring provider).
pub fn os_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut seed)
        .map_err(|_| io::Error::other("no os randomness"))?;
    Ok(seed)
}

/// Serves one client until it disconnects: sends `frame` when the session
/// becomes active (and again on Refresh Rect) and hands every event to
/// `on_event`. Returns why the session ended.
pub fn serve_connection(
    mut stream: TcpStream,
    config: Config,
    seed: [u8; 32],
    frame: &Frame,
    mut on_event: impl FnMut(&Event),
) -> io::Result<CloseReason> {
    stream.set_nodelay(true)?;
    let mut engine = Engine::new(config, seed, Instant::now());
    let mut input = vec![0u8; 16 * 1024];
    let mut output = Vec::new();
    let mut send_frame = false;
    loop {
        // The engine's drain order: bytes to the socket, then events.
        while engine.poll_transmit(&mut output).is_some() {
            stream.write_all(&output)?;
            output.clear();
        }
        while let Some(event) = engine.poll_event() {
            on_event(&event);
            match event {
                Event::Activated(_) | Event::RefreshRect(_) => send_frame = true,
                Event::Closed { reason } => {
                    while engine.poll_transmit(&mut output).is_some() {
                        stream.write_all(&output)?;
                        output.clear();
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Ok(reason);
                }
                _ => {}
            }
        }
        if send_frame {
            send_frame = false;
            engine
                .send_bitmap(&frame.as_update())
                .map_err(io::Error::other)?;
            continue;
        }
        // Block on the socket until data arrives or the next deadline.
        let timeout = engine.poll_timeout().map(|(at, _)| {
            at.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        stream.set_read_timeout(timeout)?;
        match stream.read(&mut input) {
            Ok(0) => engine.handle_eof(Instant::now()),
            Ok(n) => engine.handle_input(Instant::now(), &input[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                engine.handle_timeout(Instant::now())
            }
            Err(error) => return Err(error),
        }
    }
}
