//! rdpserve-core: the sans-IO RDP server engine.
//!
//! [`Engine`] is one connection's state machine: feed it socket bytes with
//! `handle_input`, give it the application's commands (`apply`, or the
//! shorthands `send_bitmap`, `clipboard_offer`, ...), take the bytes to send
//! from `poll_transmit` and the application events from `poll_event`, and
//! arm a timer for `poll_timeout`. TLS (rustls), CredSSP and everything
//! above run inside it on in-memory buffers.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::time::Instant;
//! use rdpserve_core::{Config, DesktopSize, Engine, Event, SecurityConfig};
//!
//! fn serve(mut socket: std::net::TcpStream, seed: [u8; 32]) -> std::io::Result<()> {
//!     let size = DesktopSize { width: 1024, height: 768 };
//!     let mut engine = Engine::new(Config::new(SecurityConfig::plain_rdp(), size), seed, Instant::now());
//!     let (mut input, mut output) = (vec![0u8; 16 * 1024], Vec::new());
//!     loop {
//!         while engine.poll_transmit(&mut output).is_some() {
//!             socket.write_all(&output)?;
//!             output.clear();
//!         }
//!         while let Some(event) = engine.poll_event() {
//!             match event {
//!                 Event::Closed { .. } => return Ok(()),
//!                 Event::Activated(_) => { /* engine.send_bitmap(..) from here on */ }
//!                 other => println!("{other:?}"),
//!             }
//!         }
//!         // A real loop also sleeps until engine.poll_timeout() and wakes
//!         // for the application's updates; see examples/src/embedded.rs.
//!         match socket.read(&mut input)? {
//!             0 => engine.handle_eof(Instant::now()),
//!             n => engine.handle_input(Instant::now(), &input[..n]),
//!         }
//!     }
//! }
//! ```
//!
//! # What is pure
//!
//! The engine opens no socket, starts no thread and never reads a clock:
//! every call that needs the time takes `now`, and the wall-clock time
//! NTLM needs is `Config::wall_clock` advanced by those instants. The
//! 32-byte seed given to [`Engine::new`] is the only randomness of
//! everything above TLS (share ids, NTLM server challenges).
//!
//! Two things inside rustls stay outside the seed. The TLS key exchange,
//! nonces and signatures draw from the rustls `CryptoProvider` the
//! [`TlsIdentity`] was built with (the OS random generator with rustls'
//! default providers; a fully deterministic TLS layer needs a provider
//! whose key-exchange groups and signer take a seeded generator), and
//! rustls' default time provider reads the system clock (a server uses it
//! only for session-ticket lifetimes). That is why recordings are taken
//! above TLS: with the same seed, configuration and input frames, every
//! plaintext byte and event is the same, which [`replay`] checks; the one
//! clock reading of `replay` anchors the recorded offsets.
//!
//! # Layers
//!
//! Inside, the crate is layered, each layer a folder that imports only the
//! ones before it: `wire` (encodings), `security` (TLS, NTLM, CredSSP),
//! `api` (the types re-exported here), `transport` (bytes in and out,
//! framing onto MCS channels), `connection` (the connection sequence),
//! `graphics` and `channels` (the active session's output and channels),
//! `session` (the active phase), `record` (recordings) and `engine`. A test
//! (`src/tests/layers.rs`) holds the crate to it; ARCHITECTURE.md draws it.
#![forbid(unsafe_code)]

// Layers, bottom to top: wire, security, api, transport, connection,
// graphics, channels, session, record, engine.
mod api;
mod channels;
mod connection;
mod engine;
mod graphics;
mod record;
mod security;
mod session;
mod transport;
mod wire;

// Entry points for the fuzz targets in fuzz/; not an API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
// The tests' in-memory client, shared with the fuzz targets and (through
// a `Link` over a socket) with the server tests outside the crate.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod test_client;
#[cfg(test)]
mod tests;

pub use api::command::{Applied, ChannelCommand, Command};
pub use api::config::{
    BitmapCodecs, BitmapCompression, Config, CredentialValidator, Credentials, DesktopSize,
    PipelineCodec, Secret, SecurityConfig, SoundConfig, SurfaceCodec, Validator,
};
pub use api::display::MonitorLayout;
pub use api::error::{
    ChannelKind, CommandError, ConfigurationError, EncodeError, Error, Unsupported,
};
pub use api::event::{
    CloseReason, ClusterInfo, ConnectionRouting, Event, Graphics, PipelineStats, Rectangle,
    SelectedSecurity, SessionInfo,
};
pub use api::pointer::{ColorPointer, PointerCommand, PointerImage};
pub use api::routing::{
    CookieValidator, Redirection, RedirectionCookieValidator, RedirectionFlags,
};
pub use api::update::{Avc420Frame, AvcRegion, BitmapUpdate, PixelFormat};
pub use api::{clipboard, input, sound};
pub use engine::Engine;
pub use engine::replay::{ReplayError, ReplayReport, replay};
pub use security::ntlm::nt_hash;
pub use security::password::Password;
pub use security::tls::{TlsError, TlsIdentity, TlsIdentityError};
pub use wire::error::DecodeError;
pub use wire::routing_token;
