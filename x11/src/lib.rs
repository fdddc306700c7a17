//! rdpserve-x11: share an existing X11 display over RDP.
//!
//! Built on rdpserve's public API only (`rdpserve-tokio`) and on `x11rb`,
//! the X protocol in Rust: no Xlib, no libxcb. One [`X11Desktop`] opens the
//! display and starts one capture thread; every RDP connection gets its own
//! stream of updates ([`X11Display`]) fed from that one capture, so ten
//! viewers cost one capture per damage event, not ten.
//!
//! - Capture: MIT-SHM (`ShmGetImage` into a segment passed as a file
//!   descriptor) where the server offers it, `GetImage` otherwise, only of
//!   the areas XDamage reports: an idle desktop is never read.
//! - Input: XTEST. Scancodes become X keycodes through the key names of the
//!   server's XKB keymap; Unicode key events become keysyms on a spare
//!   keycode; buttons 1 to 3, back and forward, both wheels; lock keys
//!   follow the client's synchronize events.
//! - Cursor: XFixes cursor images as RGBA pointers, each shape cached in a
//!   slot of the client's pointer cache and recalled from there.
//! - Clipboard: CLIPBOARD (and PRIMARY as an option) both ways, text,
//!   HTML and images (CF_DIB as `image/bmp`), large data with INCR.
//! - Resize: a client's Display Control layout resizes the X screen through
//!   RandR 1.2 where the server allows it; every viewer follows the X
//!   screen's size, whoever changed it.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use rdpserve_tokio::RdpServer;
//! let desktop = rdpserve_x11::X11Desktop::open(&rdpserve_x11::X11Options::default())?;
//! let server = RdpServer::builder()
//!     .with_addr(([127, 0, 0, 1], 3389))
//!     .with_self_signed_hybrid()
//!     .with_input_handler(desktop.input()?)
//!     .with_display_handler(desktop.display())
//!     .build()?;
//! server.run().await?;
//! # Ok(()) }
//! ```

mod capture;
mod clipboard;
mod cursor;
mod format;
mod input;
mod keymap;
mod randr;
mod screen;
mod shm;

use std::sync::Arc;

use x11rb::errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError};

pub use clipboard::X11Clipboard;
pub use input::X11Input;
pub use screen::{X11Display, X11Updates};

/// The clipboard data a server for this crate should let through
/// (`RdpServerBuilder::with_max_channel_message`): the default 1 MiB of the
/// library is 500 000 characters of text, less than X applications copy.
pub const MAX_CLIPBOARD_BYTES: usize = 32 << 20;

/// What went wrong with the X display.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X11Error {
    #[error("no X display given and DISPLAY is not set")]
    NoDisplay,
    #[error("cannot open X display {display}: {source}")]
    Connect {
        display: String,
        source: ConnectError,
    },
    #[error("the X server has no {0} extension")]
    MissingExtension(&'static str),
    #[error("unsupported X pixel format: depth {depth}, {bits_per_pixel} bits a pixel")]
    UnsupportedFormat { depth: u8, bits_per_pixel: u8 },
    #[error("image of {size} bytes does not fit the shared segment of {capacity}")]
    ImageTooLarge { size: usize, capacity: usize },
    #[error("x connection failed: {0}")]
    Connection(#[from] ConnectionError),
    #[error("x request failed: {0}")]
    Reply(#[from] ReplyError),
    #[error("x request failed: {0}")]
    ReplyOrId(#[from] ReplyOrIdError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How to open the display.
#[derive(Debug, Clone, Default)]
pub struct X11Options {
    /// The display, e.g. `:1`; `None` takes `$DISPLAY`.
    pub display: Option<String>,
    /// Capture with `GetImage` even where MIT-SHM works (for comparison).
    pub no_shm: bool,
    /// Keep the X screen's size when clients ask for another (through
    /// Display Control); they still follow resizes made on the X side.
    pub no_resize: bool,
    /// Share the PRIMARY selection (text selected with the mouse) as well
    /// as CLIPBOARD: a client's copy fills both, and whichever an X
    /// application changed last is what clients paste.
    pub primary: bool,
}

impl X11Options {
    /// The display name these options name.
    pub fn display_name(&self) -> Result<String, X11Error> {
        match &self.display {
            Some(display) => Ok(display.clone()),
            None => std::env::var("DISPLAY")
                .ok()
                .filter(|display| !display.is_empty())
                .ok_or(X11Error::NoDisplay),
        }
    }
}

/// An open X display, captured by one thread for every viewer.
pub struct X11Desktop {
    display: String,
    shared: Arc<screen::Shared>,
    resizer: Option<randr::Resizer>,
    primary: bool,
}

impl X11Desktop {
    /// Connects to the display, checks its extensions (DAMAGE, XFIXES) and
    /// starts capturing.
    pub fn open(options: &X11Options) -> Result<Self, X11Error> {
        let display = options.display_name()?;
        let shared = capture::start(&display, options)?;
        let resizer = if options.no_resize {
            None
        } else {
            Some(randr::Resizer::start(&display)?)
        };
        Ok(Self {
            display,
            shared,
            resizer,
            primary: options.primary,
        })
    }

    /// The display server handler for `RdpServerBuilder::with_display_handler`.
    pub fn display(&self) -> X11Display {
        X11Display::new(self.shared.clone(), self.resizer.clone())
    }

    /// An input handler on a connection of its own (XTEST and XKB are
    /// checked here).
    pub fn input(&self) -> Result<X11Input, X11Error> {
        X11Input::open(&self.display)
    }

    /// The clipboard factory (CLIPBOARD, and PRIMARY when the options
    /// ask: text, HTML and images both ways), on a connection of its own.
    pub fn clipboard(&self) -> Result<X11Clipboard, X11Error> {
        X11Clipboard::start(&self.display, self.primary)
    }

    /// The size of the X screen now.
    pub fn size(&self) -> rdpserve_tokio::DesktopSize {
        self.shared.size()
    }

    /// How the capture reads the screen: `"MIT-SHM"` or `"GetImage"`.
    pub fn capture_method(&self) -> &'static str {
        self.shared.method()
    }
}

/// Opens `display` (a name such as `:1`).
pub(crate) fn connect(
    display: &str,
) -> Result<(x11rb::rust_connection::RustConnection, usize), X11Error> {
    x11rb::connect(Some(display)).map_err(|source| X11Error::Connect {
        display: display.into(),
        source,
    })
}

/// Checks that the server has extension `name` (as the X server spells it).
pub(crate) fn require_extension(
    connection: &impl x11rb::connection::RequestConnection,
    name: &'static str,
) -> Result<(), X11Error> {
    match connection.extension_information(name)? {
        Some(_) => Ok(()),
        None => Err(X11Error::MissingExtension(name)),
    }
}
