//! Application commands: everything the application asks of a connection.
//!
//! Every command enters the engine through one function,
//! [`Engine::apply`](crate::Engine::apply), which records it when recording
//! is on, so a new command cannot forget to be recorded or replayed. The
//! engine's named methods (`send_bitmap`, `clipboard_offer`, ...) are thin
//! wrappers that build one of these. Commands borrow the caller's data:
//! nothing is copied unless a recording is taken.

use std::borrow::Cow;
use std::time::Instant;

use crate::api::clipboard::{ClipboardFormat, FileContentsRequest};
use crate::api::config::DesktopSize;
use crate::api::event::{Graphics, Rectangle};
use crate::api::pointer::{ColorPointer, PointerCommand, PointerImage};
use crate::api::update::BitmapUpdate;

/// One application command. See the engine method of the same purpose for
/// what each does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Command<'a> {
    /// Desktop pixels. With `damage` (desktop coordinates, exclusive
    /// bounds) no pixels are compared: exactly the tiles the rectangles
    /// touch are sent.
    Bitmap {
        update: BitmapUpdate<'a>,
        damage: Option<Cow<'a, [Rectangle]>>,
    },
    /// A 32-bit RGBA pointer shape, shown at once.
    Pointer(PointerImage<'a>),
    /// A colour pointer with AND/XOR masks, shown at once.
    ColorPointer(ColorPointer<'a>),
    /// Move, hide, reset or recall the pointer.
    PointerCommand(PointerCommand),
    /// A new desktop size, by deactivation-reactivation.
    Resize(DesktopSize),
    /// Switch the session's graphics path.
    SetGraphics(Graphics),
    /// An H.264 picture the application encoded, through the Graphics
    /// Pipeline as AVC420.
    Avc420(crate::api::update::Avc420Frame<'a>),
    /// Measure the round-trip time over the ECHO channel; `now` is when the
    /// request leaves, `payload` comes back with the answer.
    RequestEcho { now: Instant, payload: &'a [u8] },
    /// A command for one of the session's channels.
    Channel(ChannelCommand<'a>),
    /// After `Event::Routing`: go on with the connection here.
    AcceptConnection,
    /// Send the client a Server Redirection and disconnect it.
    Redirect(Cow<'a, crate::api::routing::Redirection>),
    /// End the session: tell the client why and disconnect.
    Close,
}

/// What a command gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    Done,
    /// The cache slot a new pointer was stored in.
    PointerSlot(u16),
    /// The id of a dynamic channel being opened.
    DynamicChannel(u32),
    /// The id of an echo request.
    Echo(u32),
}

/// A command for the session's channels.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelCommand<'a> {
    ClipboardOffer(Cow<'a, [ClipboardFormat]>),
    ClipboardRequest(u32),
    ClipboardRespond(Option<&'a [u8]>),
    ClipboardRequestFileContents(FileContentsRequest),
    ClipboardRespondFileContents {
        stream_id: u32,
        data: Option<&'a [u8]>,
    },
    SendChannelData {
        channel: &'a str,
        data: &'a [u8],
    },
    OpenDynamic {
        name: &'a str,
        priority: u8,
    },
    SendDynamic {
        id: u32,
        data: &'a [u8],
    },
    CloseDynamic(u32),
    SoundSamples {
        timestamp: u32,
        data: &'a [u8],
    },
    SoundVolume {
        left: u16,
        right: u16,
    },
    SoundSelectFormat(u32),
}
