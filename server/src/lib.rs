//! rdpserve-server: the high-level RDP server API, independent of any async
//! runtime. The adapters `rdpserve-tokio` and `rdpserve-smol` implement
//! [`Runtime`] for their runtime and re-export this API; applications use
//! one of them rather than this crate directly.
//!
//! Cargo features, all on by default: `rayon` (RemoteFX tiles encoded in
//! parallel), `qoi` and `qoiz` (IronRDP's QOI and QOIZ surface codecs, never
//! offered when not built; `qoiz` builds the zstd C library) and
//! `self-signed` ([`TlsIdentity::self_signed`] and the builder's
//! self-signed security choices, with rcgen and rsa). The adapters forward
//! them.

mod admission;
mod app_channels;
mod blocking;
mod builder;
mod clipboard;
mod connection;
mod credentials;
mod echo;
mod handlers;
mod identity;
mod mailbox;
mod routing;
mod runtime;
mod server;
mod sound;
mod stop;

pub use admission::{ConnectionLimits, tcp_keepalive};
pub use app_channels::{
    ChannelCloseReason, ChannelError, ChannelFactory, ChannelHandle, ChannelHandler, ChannelOptions,
};
pub use builder::RdpServerBuilder;
pub use clipboard::{
    ClipboardFormat, ClipboardHandle, CliprdrBackend, CliprdrServerFactory, FileContentsRequest,
    dib, format as clipboard_format, html, html_fragment, pixels_from_dib, text_from_unicode,
    unicode_text,
};
pub use credentials::CredentialsHandle;
pub use echo::{ConnectionId, EchoError, EchoHandle, EchoMeasurement};
pub use handlers::{
    Avc420Update, BitmapUpdate, ColorPointerShape, DesktopSize, DisplayUpdate, Graphics,
    InputHandlerFactory, KeyboardEvent, MonitorLayout, MouseEvent, PixelFormat, RdpServerDisplay,
    RdpServerDisplayUpdates, RdpServerInputHandler, Rectangle, RgbaPointer, SessionEvent,
    SessionObserver, SharedInputHandler, SynchronizeFlags,
};
#[cfg(feature = "self-signed")]
pub use identity::KeyAlgorithm;
pub use identity::{IdentityError, TlsIdentity};
pub use rdpserve_core::nt_hash;
pub use rdpserve_core::{AvcRegion, CloseReason, CommandError, Error, SessionInfo};
pub use rdpserve_core::{
    BitmapCodecs, BitmapCompression, CredentialValidator, Credentials, Password, PipelineCodec,
    PipelineStats, Secret, SurfaceCodec,
};
pub use rdpserve_core::{
    ClusterInfo, ConnectionRouting, Redirection, RedirectionCookieValidator, RedirectionFlags,
    routing_token,
};
pub use routing::{ConnectionRouter, RedirectHandle, Route};
pub use runtime::Runtime;
/// The rustls this crate is built with, for
/// [`with_tls_config`](RdpServerBuilder::with_tls_config) and
/// [`with_hybrid_config`](RdpServerBuilder::with_hybrid_config).
pub use rustls;
pub use server::{BoundServer, RdpServer};
pub use sound::{
    AudioFormat, RdpsndServerHandler, SoundHandle, SoundQueueFull, SoundServerFactory,
};
pub use stop::StopHandle;
