//! What the engine tells the application.

use std::net::SocketAddrV4;

use crate::api::config::{DesktopSize, PipelineCodec, SurfaceCodec};
use crate::api::error::Error;
use crate::api::input::InputEvent;
use crate::security::password::Password;
use crate::wire::routing_token;

/// An output of [`Engine::poll_event`](crate::Engine::poll_event).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The connection sequence finished: graphics may be sent from now on.
    /// The application should send the whole screen first.
    Activated(SessionInfo),
    /// The client asks for this monitor layout (Display Control), e.g. after
    /// its window was resized. The application may answer with
    /// `Engine::resize`.
    MonitorLayout(Vec<crate::api::display::MonitorLayout>),
    /// A resize (`Engine::resize`) finished: the client shows a desktop of
    /// this size and graphics may be sent again; the whole screen first.
    Resized(DesktopSize),
    /// The session's graphics path changed without the application asking:
    /// the client confirmed the Graphics Pipeline's capabilities (from now
    /// on everything goes through it), or its channel went away (back to
    /// the path before). `Engine::session_info` says the same.
    GraphicsChanged(Graphics),
    /// Keyboard or mouse input from the client.
    Input(InputEvent),
    /// The client asks the server to stop (`false`) or resume (`true`) sending
    /// graphics, for example when its window is minimised.
    SuppressOutput { allow_display_updates: bool },
    /// The client asks for these areas to be sent again.
    RefreshRect(Vec<Rectangle>),
    /// The client answered echo request `id` (from `Engine::request_echo`)
    /// after `round_trip`, measured on the engine's clock, with the payload
    /// the request carried.
    EchoRoundTrip {
        id: u32,
        round_trip: std::time::Duration,
        payload: Vec<u8>,
    },
    /// Clipboard traffic (with `Config::clipboard`).
    Clipboard(crate::api::clipboard::ClipboardEvent),
    /// Audio output traffic (with `Config::sound`): the client is ready to
    /// play, or confirmed a wave.
    Sound(crate::api::sound::SoundEvent),
    /// A whole message on one of the application's static channels
    /// (`Config::static_channels`).
    ChannelData { channel: String, data: Vec<u8> },
    /// A dynamic channel from `Engine::open_dynamic_channel` is open.
    DynamicChannelOpened { id: u32, name: String },
    /// A whole message on an application dynamic channel.
    DynamicChannelData { id: u32, data: Vec<u8> },
    /// An application dynamic channel closed: the client refused to open
    /// it or closed it (`error` is `None`), or the client sent a malformed
    /// message on it and the server closed it (`error` says what was wrong;
    /// the session goes on).
    DynamicChannelClosed { id: u32, error: Option<Error> },
    /// The client sent a static channel (clipboard, audio, an application
    /// channel, the dynamic channel host) something malformed or out of
    /// order: the server stopped serving that channel, and the session goes
    /// on without it.
    ChannelClosed { channel: String, error: Error },
    /// The user logged on and the connection waits for the application to
    /// decide where it goes (with `Config::route_after_logon`):
    /// `Engine::accept_connection` or `Engine::redirect`.
    Routing(ConnectionRouting),
    /// The connection is over; nothing more will be transmitted after the
    /// bytes already queued.
    Closed { reason: CloseReason },
}

/// Who the client is and what it agreed to, known once the session is active.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    pub user_name: String,
    pub domain: String,
    pub client_name: String,
    /// The size the client asked for in its core data (clamped to the spec's range).
    pub requested_size: DesktopSize,
    /// The size the session runs at (the server's).
    pub desktop_size: DesktopSize,
    /// Bits per pixel of the graphics updates.
    pub color_depth: u16,
    /// The security protocol selected during negotiation.
    pub security: SelectedSecurity,
    /// The password the client delegated through NLA (CredSSP
    /// TSCredentials), for applications that log the user on elsewhere.
    pub delegated_password: Option<Password>,
    /// What the session's graphics updates are made of.
    pub graphics: Graphics,
    /// The offered surface codecs this client takes, in the server's order
    /// of preference: the choices `Engine::set_graphics` accepts besides
    /// bitmaps.
    pub surface_codecs: Vec<SurfaceCodec>,
}

/// What a session's graphics updates are made of: picked per session from
/// `Config::bitmap_codecs` and what the client takes, and changed by
/// `Engine::set_graphics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphics {
    /// Surface bits in this codec.
    Surface(SurfaceCodec),
    /// Bitmap updates: `Config::bitmap_compression` at 32 bpp, interleaved
    /// RLE below.
    Bitmaps,
    /// The Graphics Pipeline (MS-RDPEGFX) with this codec, for clients that
    /// open it (`Config::graphics_pipeline`).
    Pipeline(PipelineCodec),
}

/// What the Graphics Pipeline sent in a session so far
/// (`Engine::pipeline_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    pub frames: u64,
    /// Tiles sent encoded (WireToSurface1).
    pub wire_to_surface: u64,
    /// Tiles of one colour, sent as a SolidFill rectangle.
    pub solid_fills: u64,
    /// Tiles drawn from the client's bitmap cache (CacheToSurface).
    pub cache_hits: u64,
    /// Scrolls sent as one copy of the client's surface (SurfaceToSurface).
    pub surface_to_surface: u64,
    /// Changed tiles those copies drew whole, so they were not encoded.
    pub tiles_copied: u64,
    /// Content-adaptive encoding: tiles sent lossy (as regions of an AVC420
    /// frame), and tiles re-sent losslessly once they stopped changing.
    pub tiles_lossy: u64,
    pub tiles_refreshed: u64,
    /// Bytes of PDUs before ZGFX, and after.
    pub uncompressed_bytes: u64,
    pub compressed_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectedSecurity {
    /// PROTOCOL_RDP without encryption.
    PlainRdp,
    /// PROTOCOL_SSL.
    Tls,
    /// PROTOCOL_HYBRID: TLS plus CredSSP (NLA).
    Hybrid,
    /// PROTOCOL_HYBRID_EX: NLA with the Early User Authorization Result.
    HybridEx,
}

/// A rectangle in desktop coordinates, exclusive of `right` and `bottom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rectangle {
    pub left: u16,
    pub top: u16,
    pub right: u16,
    pub bottom: u16,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client asked to end the session (Shutdown Request or MCS disconnect).
    ClientRequested,
    /// The transport closed under us.
    TransportClosed,
    /// The application called [`Engine::close`](crate::Engine::close).
    ServerRequested,
    /// The client was sent a Server Redirection (`Engine::redirect`) and
    /// reconnects elsewhere.
    Redirected,
    /// A protocol, security or timeout error.
    Error(Error),
}

/// REDIRECTION_SUPPORTED in TS_UD_CS_CLUSTER.Flags (MS-RDPBCGR 2.2.1.3.5).
const REDIRECTION_SUPPORTED: u32 = 0x0000_0001;
/// REDIRECTED_SESSIONID_FIELD_VALID.
const REDIRECTED_SESSIONID_FIELD_VALID: u32 = 0x0000_0002;
/// ServerSessionRedirectionVersionMask.
const REDIRECTION_VERSION_MASK: u32 = 0x0000_003C;
/// REDIRECTED_SMARTCARD.
const REDIRECTED_SMARTCARD: u32 = 0x0000_0040;

/// What the client's TS_UD_CS_CLUSTER block ([MS-RDPBCGR 2.2.1.3.5](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/e7d2f8dc-1b5e-4e1c-b1d1-6f0e8fe2bec5)) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterInfo {
    /// REDIRECTION_SUPPORTED: the client follows a Server Redirection PDU.
    pub redirection_supported: bool,
    /// The redirection version the client speaks (REDIRECTION_VERSION1 is 1).
    pub redirection_version: u8,
    /// The session id of the Server Redirection PDU that sent the client
    /// here (REDIRECTED_SESSIONID_FIELD_VALID), or `None`.
    pub redirected_session_id: Option<u32>,
    /// REDIRECTED_SMARTCARD: the client logged on with a smart card.
    pub smartcard: bool,
}

impl ClusterInfo {
    /// Reads the block's two fields.
    pub fn from_wire(flags: u32, redirected_session_id: u32) -> Self {
        Self {
            redirection_supported: flags & REDIRECTION_SUPPORTED != 0,
            redirection_version: ((flags & REDIRECTION_VERSION_MASK) >> 2) as u8 + 1,
            redirected_session_id: (flags & REDIRECTED_SESSIONID_FIELD_VALID != 0)
                .then_some(redirected_session_id),
            smartcard: flags & REDIRECTED_SMARTCARD != 0,
        }
    }
}

/// Where a connection is going and who it is, as the application sees it
/// when it decides to accept or redirect (`Event::Routing`,
/// `Engine::routing`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionRouting {
    /// The user name of the X.224 `Cookie: mstshash=` line (what a
    /// balancer's `rdp-cookie` hashes), or `None`.
    pub cookie: Option<String>,
    /// The X.224 routing token, verbatim without its CR LF, or `None`.
    pub routing_token: Option<Vec<u8>>,
    /// The address an `msts=` routing token names, when it is one.
    pub routing_target: Option<SocketAddrV4>,
    /// The client's cluster block; `None` when it sent none (it cannot be
    /// redirected).
    pub cluster: Option<ClusterInfo>,
    /// The security protocol in use.
    pub security: SelectedSecurity,
    /// The user who logged on (NLA or Client Info), empty before logon.
    pub user_name: String,
    pub domain: String,
    /// Whether the client logged on with a one-time redirection cookie
    /// (checked by the [`RedirectionCookieValidator`]) instead of a
    /// password.
    pub logged_on_with_cookie: bool,
}

impl ConnectionRouting {
    pub(crate) fn new(cookie: Option<String>, routing_token: Option<Vec<u8>>) -> Self {
        let routing_target = routing_token
            .as_deref()
            .and_then(|token| routing_token::decode(token).ok());
        Self {
            cookie,
            routing_token,
            routing_target,
            cluster: None,
            security: SelectedSecurity::PlainRdp,
            user_name: String::new(),
            domain: String::new(),
            logged_on_with_cookie: false,
        }
    }

    /// Whether a Server Redirection may be sent: the client said it follows
    /// one.
    pub fn redirection_supported(&self) -> bool {
        self.cluster
            .is_some_and(|cluster| cluster.redirection_supported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_flags_as_freerdp_sends_them() {
        // REDIRECTION_SUPPORTED | REDIRECTION_VERSION4 << 2.
        let first = ClusterInfo::from_wire(0x0D, 0);
        assert!(first.redirection_supported);
        assert_eq!(first.redirection_version, 4);
        assert_eq!(first.redirected_session_id, None);
        let redirected = ClusterInfo::from_wire(0x0F, 77);
        assert_eq!(redirected.redirected_session_id, Some(77));
        assert!(!ClusterInfo::from_wire(0, 5).redirection_supported);
    }
}
