//! Errors, split by who is at fault.

use std::fmt;

use rdpserve_codecs::PixelFormat;

use crate::api::clipboard::ClipboardError;
use crate::api::sound::SoundError;
use crate::security::tls::TlsError;
use crate::wire::error::DecodeError;

/// Why a connection ended, as reported in `Event::Closed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client sent something malformed or out of order.
    #[error("peer misbehaved: {0}")]
    Protocol(#[from] DecodeError),
    /// The client sent a PDU that is well-formed but not valid in this state.
    #[error("peer misbehaved: {0}")]
    UnexpectedPdu(&'static str),
    /// The client asks for something this server does not support.
    #[error("unsupported by peer: {0}")]
    Unsupported(Unsupported),
    /// NLA (CredSSP) failed for a reason other than wrong credentials.
    #[error("nla: {0}")]
    Nla(crate::security::credssp::CredSspError),
    /// The client's credentials were rejected.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A handshake or idle deadline passed.
    #[error("timed out: {0}")]
    TimedOut(&'static str),
    /// TLS failed (bad record, handshake failure, ...).
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// An encoder failed on pixels the engine had accepted.
    #[error("{0}")]
    Encode(EncodeError),
    /// A configuration the handshake cannot run with.
    #[error("configuration: {0}")]
    Configuration(ConfigurationError),
}

/// An encoder failed; the client's picture can no longer be trusted, so the
/// connection ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} encoder failed: {reason}")]
pub struct EncodeError {
    pub codec: &'static str,
    pub reason: &'static str,
}

/// A configuration the handshake found it cannot serve with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigurationError {
    #[error("tls selected without a tls identity")]
    NoTlsIdentity,
    #[error("nla selected without a credential validator")]
    NoCredentialValidator,
}

/// Why the engine refused an application command.
///
/// Every variant but [`Connection`](Self::Connection) leaves the connection
/// as it was: the command was not carried out. `Connection` means carrying
/// it out failed the connection, which is now closed (`Event::Closed`
/// follows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    #[error("the session is not active")]
    NotActive,
    #[error("the connection is closed")]
    Closed,
    #[error("a resize is under way")]
    Reactivating,
    #[error("bitmap update with an empty rectangle")]
    EmptyBitmap,
    #[error(
        "bitmap stride of {stride} bytes shorter than a row of {format} pixels ({row_bytes} bytes)"
    )]
    StrideTooShort {
        stride: usize,
        row_bytes: usize,
        format: PixelFormat,
    },
    #[error("bitmap data of {len} bytes shorter than the {needed} its rectangle needs")]
    BitmapDataTooShort { len: usize, needed: usize },
    #[error("pointer with an empty image")]
    EmptyPointer,
    #[error("pointer data shorter than its size")]
    PointerDataTooShort,
    #[error("colour pointers are at most 96x96")]
    ColorPointerTooLarge,
    #[error("pointer cache index {index} beyond the client's {cache_size} slots")]
    PointerCacheIndex { index: u16, cache_size: u16 },
    #[error("the client does not take this surface codec")]
    CodecNotTaken,
    #[error("avc420 frame without a stream or regions, or with over 4096 regions")]
    EmptyAvc420Frame,
    #[error(
        "avc420 region {index} empty, outside the desktop, or its quantizer or quality out of range"
    )]
    InvalidAvcRegion { index: usize },
    #[error("the client's h264 decoder starts over: the frame must hold an idr picture")]
    KeyFrameNeeded,
    #[error("the client has not acknowledged the frames in flight")]
    FramesInFlight,
    #[error("the desktop is too large for surface codecs")]
    DesktopTooLargeForSurfaces,
    #[error("echo payload of {len} bytes over the {max} a channel message may carry")]
    EchoPayloadTooLarge { len: usize, max: usize },
    #[error("the client has no {0} channel")]
    NoChannel(ChannelKind),
    #[error("not an application channel the client joined")]
    UnknownStaticChannel,
    #[error("dynamic channel name must be non-empty without nul")]
    InvalidChannelName,
    #[error("no dynamic channel with id {0}")]
    UnknownDynamicChannel(u32),
    #[error("dynamic channel {0} is not open")]
    DynamicChannelNotOpen(u32),
    #[error("clipboard: {0}")]
    Clipboard(#[from] ClipboardError),
    #[error("sound: {0}")]
    Sound(#[from] SoundError),
    #[error("the client did not say it can be redirected")]
    RedirectionNotSupported,
    #[error("server redirection needs tls or nla, not standard rdp security")]
    RedirectionNeedsEnhancedSecurity,
    #[error("server redirection packet longer than 65535 bytes")]
    RedirectionTooLong,
    #[error("the connection is not waiting for a routing decision")]
    NotAwaitingRoute,
    #[error("the connection failed: {0}")]
    Connection(#[from] Error),
}

/// A channel a command needs and the client may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelKind {
    Clipboard,
    Sound,
    Dynamic,
    Echo,
    /// The Graphics Pipeline's dynamic channel.
    Graphics,
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Clipboard => "clipboard",
            Self::Sound => "audio output",
            Self::Dynamic => "dynamic",
            Self::Echo => "echo",
            Self::Graphics => "graphics pipeline",
        })
    }
}

/// What the peer wanted that we do not offer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// No security protocol in common; carries what the client requested.
    SecurityProtocol {
        requested: u32,
    },
    /// The client's core data names a different protocol than the one selected.
    DowngradeDetected {
        selected: u32,
        reported: u32,
    },
    /// Standard RDP security with encryption (we only speak it without).
    RdpEncryption,
    /// The client offers no colour depth we can draw at.
    ColorDepth,
    Other(&'static str),
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecurityProtocol { requested } => {
                write!(
                    f,
                    "no common security protocol (client requested {requested:#x})"
                )
            }
            Self::DowngradeDetected { selected, reported } => write!(
                f,
                "downgrade detected: selected protocol {selected:#x}, client reported {reported:#x}"
            ),
            Self::RdpEncryption => f.write_str("standard rdp security with encryption"),
            Self::ColorDepth => f.write_str("no supported colour depth"),
            Self::Other(what) => f.write_str(what),
        }
    }
}
