//! rdpserve-core: the sans-IO RDP server engine.
//!
//! [`Engine`] is one connection's state machine: feed it socket bytes with
//! `handle_input`, take the bytes to send from `poll_transmit` and the
//! application events from `poll_event`, arm a timer for `poll_timeout`. It
//! reads no clock, opens no socket and draws no OS randomness; the TLS layer
//! (rustls) runs inside it on in-memory buffers. See [`Engine`] for a run loop.
#![forbid(unsafe_code)]

// Layers, bottom to top; each imports only the ones above it in this list.
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

#[cfg(test)]
mod tests;
pub use api::command::{Applied, ChannelCommand, Command};
pub use api::config::{
    BitmapCodecs, BitmapCompression, Config, CredentialValidator, Credentials, DesktopSize,
    SecurityConfig, SoundConfig, SurfaceCodec, Validator,
};
pub use api::display::MonitorLayout;
pub use api::error::{
    ChannelKind, CommandError, ConfigurationError, EncodeError, Error, Unsupported,
};
pub use api::event::{CloseReason, Event, Graphics, Rectangle, SelectedSecurity, SessionInfo};
pub use api::pointer::{ColorPointer, PointerCommand, PointerImage};
pub use api::update::BitmapUpdate;
pub use api::{clipboard, input, sound};
pub use engine::Engine;
pub use engine::replay::{ReplayError, ReplayReport, replay};
pub use security::ntlm::nt_hash;
pub use security::password::Password;
pub use security::tls::{TlsError, TlsIdentity, TlsIdentityError};
pub use wire::error::DecodeError;
