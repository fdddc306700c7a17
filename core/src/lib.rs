//! rdpserve-core: the sans-IO RDP server engine.
//!
//! [`Engine`] is one connection's state machine: feed it socket bytes with
//! `handle_input`, take the bytes to send from `poll_transmit` and the
//! application events from `poll_event`, arm a timer for `poll_timeout`. It
//! reads no clock, opens no socket and draws no OS randomness; the TLS layer
//! (rustls) runs inside it on in-memory buffers. See [`Engine`] for a run loop.
#![forbid(unsafe_code)]

pub mod config;
pub mod cursor;
pub mod error;
pub mod event;
pub mod update;

// Wire layers, outermost first.
pub mod ber;
pub mod gcc;
pub mod mcs;
pub mod per;
pub mod tpkt;
pub mod x224;

// Network Level Authentication.
pub mod credssp;
pub mod ntlm;

// RDP PDUs carried over MCS.
pub mod capabilities;
pub mod client_info;
pub mod data_pdus;
pub mod licensing;
pub mod share;

// Input and output paths of the active session.
pub mod bitmap;
pub mod cliprdr;
pub mod display_control;
pub mod dvc;
pub mod fastpath;
pub mod input;
pub mod pointer;
pub mod rdpsnd;
pub mod surface;
pub mod svc;

pub mod record;

mod channels;
mod command;
mod engine;
mod finalization;
mod handshake;
mod io_channel;
mod session;
mod surface_output;
pub mod tls;
mod transport;
mod utf16;

pub use config::{
    Config, CredentialValidator, Credentials, DesktopSize, SecurityConfig, SoundConfig, Validator,
};
pub use engine::Engine;
pub use error::{DecodeError, Error, Unsupported};
pub use event::{CloseReason, Event, Graphics, SessionInfo};
pub use pointer::{ColorPointer, PointerCommand, PointerImage};
pub use tls::{TlsIdentity, TlsIdentityError};
pub use update::BitmapUpdate;
