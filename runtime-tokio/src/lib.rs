//! rdpserve-tokio: serve RDP clients over tokio sockets.
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
//!     .with_tls(TlsIdentity::self_signed(&["localhost"])?)
//!     .with_input_handler(Input)
//!     .with_display_handler(Display)
//!     .build()?;
//! let stop = server.stop_handle();
//! server.run().await?;
//! # drop(stop); Ok(()) }
//! ```

mod builder;
mod connection;
mod handlers;
mod identity;
mod server;

pub use builder::RdpServerBuilder;
pub use handlers::{
    BitmapUpdate, DesktopSize, DisplayUpdate, KeyboardEvent, MouseEvent, RdpServerDisplay,
    RdpServerDisplayUpdates, RdpServerInputHandler, Rectangle, SessionEvent, SessionObserver,
};
pub use identity::{IdentityError, TlsIdentity};
pub use rdpserve_core::config::{CredentialValidator, Credentials};
pub use rdpserve_core::ntlm::nt_hash;
pub use rdpserve_core::{CloseReason, Error, SessionInfo};
pub use server::{BoundServer, RdpServer, StopHandle};
