//! The application's side: input and display handler traits.

use std::future::Future;
use std::io;

pub use rdpserve_core::DesktopSize;
pub use rdpserve_core::MonitorLayout;
pub use rdpserve_core::input::{KeyboardEvent, MouseEvent, SynchronizeFlags};
pub use rdpserve_core::{Graphics, PixelFormat, Rectangle};

use crate::echo::{ConnectionId, EchoMeasurement};

/// Receives the input of every connected client.
///
/// The server shares one handler between connections and calls it briefly
/// under a lock, so a method must not block.
pub trait RdpServerInputHandler: Send + 'static {
    fn keyboard(&mut self, event: KeyboardEvent);
    fn mouse(&mut self, event: MouseEvent);
}

/// The source of pixels. One display serves every connection: each new
/// connection calls [`updates`](Self::updates) for a stream of its own.
pub trait RdpServerDisplay: Send + Sync + 'static {
    type Updates: RdpServerDisplayUpdates;

    /// The size of the desktop announced to new connections.
    fn size(&self) -> impl Future<Output = DesktopSize> + Send;

    /// A new stream of updates for one connection. Its first update should
    /// cover the whole screen: the client starts from nothing.
    fn updates(&self) -> impl Future<Output = io::Result<Self::Updates>> + Send;
}

/// One connection's stream of display updates.
pub trait RdpServerDisplayUpdates: Send + 'static {
    /// The next update; `None` ends the session.
    fn next_update(&mut self) -> impl Future<Output = Option<DisplayUpdate>> + Send;

    /// The client stopped (`false`) or resumed (`true`) showing the desktop,
    /// for example when minimised. While stopped the server pulls no updates;
    /// when it resumes, the application should resend what changed meanwhile.
    fn suppress_output(&mut self, allow_display_updates: bool) {
        let _ = allow_display_updates;
    }

    /// The client lost these areas (exclusive bounds) and asks for them again.
    fn refresh(&mut self, areas: &[Rectangle]) {
        let _ = areas;
    }

    /// The client asks for a monitor layout (Display Control), e.g. after
    /// its window was resized. Answer with `DisplayUpdate::Resize` to follow
    /// it; ignoring it keeps the current size.
    fn request_layout(&mut self, monitors: &[MonitorLayout]) {
        let _ = monitors;
    }
}

/// A change of the picture.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DisplayUpdate {
    Bitmap(BitmapUpdate),
    /// A bitmap whose changed areas the application knows (desktop
    /// coordinates, exclusive bounds): the server skips its own pixel
    /// comparison and sends exactly the tiles these areas touch.
    DamagedBitmap {
        bitmap: BitmapUpdate,
        damage: Vec<Rectangle>,
    },
    /// A new pointer shape, shown from now on.
    RgbaPointer(RgbaPointer),
    /// A legacy colour pointer (24-bit XOR and 1-bit AND masks, at most
    /// 96x96), shown from now on; it can invert the screen under it.
    ColorPointer(ColorPointerShape),
    /// Show again the pointer sent earlier into this slot of the client's
    /// pointer cache (the `cache_index` of an `RgbaPointer` or
    /// `ColorPointerShape`), without sending its image again. A slot beyond
    /// the client's cache is refused (`CommandError::PointerCacheIndex`,
    /// logged).
    CachedPointer(u16),
    /// Move the pointer (desktop coordinates).
    PointerPosition {
        x: u16,
        y: u16,
    },
    HidePointer,
    DefaultPointer,
    /// Change the desktop size. The client is reactivated at the new size;
    /// the next updates should repaint the whole (new) screen.
    Resize(DesktopSize),
    /// Switch this session's codec (bitmaps, or one of
    /// `SessionInfo::surface_codecs`); the server repaints the whole screen
    /// in it from its copy.
    Graphics(Graphics),
}

/// A colour pointer's masks, rows top to bottom: `xor_bgr` holds B, G, R
/// (`width * 3` bytes a row), `and_mask` one bit a pixel (`ceil(width / 8)`
/// bytes a row, most significant bit first; 1 lets the screen show through).
/// `cache_index` chooses its slot in the client's pointer cache, as for
/// [`RgbaPointer`].
#[derive(Debug, Clone)]
pub struct ColorPointerShape {
    pub width: u16,
    pub height: u16,
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    pub cache_index: Option<u16>,
    pub xor_bgr: std::sync::Arc<[u8]>,
    pub and_mask: std::sync::Arc<[u8]>,
}

/// A pointer image: straight R, G, B, A bytes, rows top to bottom.
///
/// `cache_index` is the slot of the client's pointer cache to keep it in,
/// so that `DisplayUpdate::CachedPointer(slot)` shows it again later; it
/// must be below the cache size the client announced (FreeRDP and Windows
/// clients have 20 to 25 slots). With `None` the server takes the slots in
/// turn; an application that recalls pointers should choose every slot
/// itself.
#[derive(Debug, Clone)]
pub struct RgbaPointer {
    pub width: u16,
    pub height: u16,
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    pub cache_index: Option<u16>,
    pub data: std::sync::Arc<[u8]>,
}

/// A rectangle of pixels, rows top to bottom, `stride` bytes apart, each
/// pixel laid out as `format` says (`PixelFormat::BgrX32`, memory order B,
/// G, R, X, needs no conversion). Other formats are converted while the
/// server copies the pixels into its copy of the screen; a stride or data
/// too short for the format is refused (`CommandError::StrideTooShort`,
/// `BitmapDataTooShort`) and logged.
#[derive(Debug, Clone)]
pub struct BitmapUpdate {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub format: PixelFormat,
    pub data: std::sync::Arc<[u8]>,
}

impl BitmapUpdate {
    pub(crate) fn as_core(&self) -> rdpserve_core::BitmapUpdate<'_> {
        rdpserve_core::BitmapUpdate {
            x: self.x,
            y: self.y,
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            data: &self.data,
        }
    }
}

/// What the server reports about a connection's life, to an observer set
/// with `with_session_observer`. Every event names its connection
/// ([`connection`](Self::connection)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A client connected and its handshake begins: echo requests for it
    /// (`EchoHandle::send_request`) can be made from now on.
    Connected {
        connection: ConnectionId,
        peer: std::net::SocketAddr,
    },
    /// The client logged on and the session is active.
    Activated {
        connection: ConnectionId,
        info: rdpserve_core::SessionInfo,
    },
    /// A resize requested with `DisplayUpdate::Resize` completed.
    Resized {
        connection: ConnectionId,
        size: DesktopSize,
    },
    /// A round trip measured over the ECHO channel (see `EchoHandle`).
    EchoRoundTrip(EchoMeasurement),
    /// The connection ended; `reason` tells whether it was an error, a
    /// failed logon (`Error::AuthenticationFailed`), the client or the server.
    Closed {
        connection: ConnectionId,
        reason: rdpserve_core::CloseReason,
    },
}

impl SessionEvent {
    /// The connection the event is about.
    pub fn connection(&self) -> ConnectionId {
        match self {
            Self::Connected { connection, .. }
            | Self::Activated { connection, .. }
            | Self::Resized { connection, .. }
            | Self::Closed { connection, .. } => *connection,
            Self::EchoRoundTrip(measurement) => measurement.connection,
        }
    }
}

/// Receives [`SessionEvent`]s; called from connection tasks, so it must be quick.
pub type SessionObserver = std::sync::Arc<dyn Fn(&SessionEvent) + Send + Sync>;
