//! The application's side: input and display handler traits.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

pub use rdpserve_core::DesktopSize;
pub use rdpserve_core::MonitorLayout;
pub use rdpserve_core::input::{KeyboardEvent, MouseEvent, SynchronizeFlags};
pub use rdpserve_core::{Graphics, PixelFormat, Rectangle};

use crate::echo::{ConnectionId, EchoMeasurement};

/// Receives a client's keyboard and mouse input.
///
/// # Threads
///
/// The server never calls a handler on the async executor: calls run on
/// the runtime's blocking threads (`Runtime::spawn_blocking`), one at a
/// time per handler and in the order the client sent the events. A method
/// may therefore block (on a lock, a device, a channel) without delaying
/// any other connection, nor this connection's display updates; events
/// that arrive meanwhile queue for it.
///
/// With [`with_input_handler_factory`](crate::RdpServerBuilder::with_input_handler_factory)
/// each connection gets a handler of its own. With
/// [`with_input_handler`](crate::RdpServerBuilder::with_input_handler) one
/// handler serves every connection behind a mutex
/// ([`SharedInputHandler`]): then a method that blocks holds the input of
/// every other connection too (their output goes on).
pub trait RdpServerInputHandler: Send + 'static {
    fn keyboard(&mut self, event: KeyboardEvent);
    fn mouse(&mut self, event: MouseEvent);
}

/// Makes one input handler per connection, as the clipboard and sound
/// factories make their backends; see `with_input_handler_factory`.
pub trait InputHandlerFactory: Send + Sync + 'static {
    /// The handler of the new connection `connection` (the id its
    /// `SessionEvent`s and log lines carry). Called on the connection's
    /// task when the client connects, before its handshake: it must be
    /// quick.
    fn build_input_handler(&self, connection: ConnectionId) -> Box<dyn RdpServerInputHandler>;
}

/// One input handler shared by every connection, behind a mutex: what
/// [`with_input_handler`](crate::RdpServerBuilder::with_input_handler)
/// builds, as `ironrdp-server` shares its handler.
///
/// Calls from different connections take turns on the lock (each on a
/// blocking thread, never on the executor), so while one call blocks, the
/// input of every other connection waits for it. A handler that may block,
/// or that keeps state per client, belongs in an [`InputHandlerFactory`].
pub struct SharedInputHandler<H> {
    handler: Arc<Mutex<H>>,
}

impl<H> SharedInputHandler<H> {
    pub fn new(handler: H) -> Self {
        Self {
            handler: Arc::new(Mutex::new(handler)),
        }
    }
}

impl<H: RdpServerInputHandler> InputHandlerFactory for SharedInputHandler<H> {
    fn build_input_handler(&self, _connection: ConnectionId) -> Box<dyn RdpServerInputHandler> {
        Box::new(LockedInput(self.handler.clone()))
    }
}

/// A connection's turn at the shared handler.
struct LockedInput<H>(Arc<Mutex<H>>);

impl<H: RdpServerInputHandler> LockedInput<H> {
    fn with(&self, call: impl FnOnce(&mut H)) {
        match self.0.lock() {
            Ok(mut handler) => call(&mut handler),
            // The panic was reported where it happened; a handler left
            // half-updated is not called again.
            Err(_) => tracing::warn!("Input handler poisoned by an earlier panic; dropping input"),
        }
    }
}

impl<H: RdpServerInputHandler> RdpServerInputHandler for LockedInput<H> {
    fn keyboard(&mut self, event: KeyboardEvent) {
        self.with(|handler| handler.keyboard(event));
    }

    fn mouse(&mut self, event: MouseEvent) {
        self.with(|handler| handler.mouse(event));
    }
}

/// The source of pixels. One display serves every connection: each new
/// connection calls [`updates`](Self::updates) for a stream of its own.
///
/// # Threads
///
/// Its futures run on the async executor, on the task of the connection
/// (or, for `size`, of the listener) that awaits them: they must wait
/// asynchronously, never block the thread. Producing pixels that takes
/// long (a capture, a render) belongs on a thread of the application's,
/// handing frames over through a channel. Encoding the updates is the
/// server's work and runs on blocking threads.
pub trait RdpServerDisplay: Send + Sync + 'static {
    type Updates: RdpServerDisplayUpdates;

    /// The size of the desktop announced to new connections.
    fn size(&self) -> impl Future<Output = DesktopSize> + Send;

    /// A new stream of updates for one connection. Its first update should
    /// cover the whole screen: the client starts from nothing.
    fn updates(&self) -> impl Future<Output = io::Result<Self::Updates>> + Send;
}

/// One connection's stream of display updates.
///
/// The connection's task awaits [`next_update`](Self::next_update) and
/// calls the other methods on the async executor, so none may block (see
/// [`RdpServerDisplay`]); the other methods should only note what they are
/// told and wake `next_update`.
pub trait RdpServerDisplayUpdates: Send + 'static {
    /// The next update; `None` ends the session.
    ///
    /// # Cancel safety
    ///
    /// This future **must be cancel-safe**, as in `ironrdp-server`: the
    /// server races it against the socket, timers and the handles'
    /// commands and drops it, unfinished, whenever one of those comes
    /// first (and when the session ends). An update must be taken out of
    /// its queue only in the poll that returns it, as `recv` of tokio's,
    /// async-channel's or flume's channels does; a future that had already
    /// taken an update when dropped loses it. The server pulls the next
    /// update only once the previous one is encoded and written to the
    /// socket.
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
    /// An H.264 picture the application encoded itself (in hardware, say),
    /// sent through the Graphics Pipeline as AVC420 for clients that take
    /// it (`rdpserve_core::Avc420Frame` says what the stream must hold).
    /// While the client has too many frames unacknowledged the server
    /// holds the picture and pulls no further update until it went: a
    /// predicted picture cannot be dropped. A refused one is logged.
    Avc420(Avc420Update),
}

/// The pieces of [`DisplayUpdate::Avc420`]: one access unit (Annex B) of a
/// picture covering the desktop from (0, 0), sides rounded up to 16, and
/// the regions of it the client shows.
#[derive(Debug, Clone)]
pub struct Avc420Update {
    pub stream: Vec<u8>,
    pub regions: Vec<rdpserve_core::AvcRegion>,
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
    /// The session's graphics path changed on the client's side: it
    /// started the Graphics Pipeline, or its channel went away.
    GraphicsChanged {
        connection: ConnectionId,
        graphics: rdpserve_core::Graphics,
    },
    /// A round trip measured over the ECHO channel (see `EchoHandle`).
    EchoRoundTrip(EchoMeasurement),
    /// What the Graphics Pipeline sent over the session (frames, encoded
    /// tiles, fills, cache hits, scroll copies, bytes), reported once just
    /// before `Closed` by a session that used the pipeline.
    PipelineStats {
        connection: ConnectionId,
        stats: rdpserve_core::PipelineStats,
    },
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
            | Self::GraphicsChanged { connection, .. }
            | Self::PipelineStats { connection, .. }
            | Self::Closed { connection, .. } => *connection,
            Self::EchoRoundTrip(measurement) => measurement.connection,
        }
    }
}

/// Receives [`SessionEvent`]s; called from connection tasks, so it must be quick.
pub type SessionObserver = std::sync::Arc<dyn Fn(&SessionEvent) + Send + Sync>;
