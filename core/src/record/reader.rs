//! Reads a recording's entries back, in order.

use std::borrow::Cow;
use std::time::Duration;

use crate::api::command::Command;
use crate::api::config::DesktopSize;
use crate::api::config::PipelineCodec;
use crate::api::event::{Graphics, Rectangle};
use crate::api::pointer::{ColorPointer, PointerCommand, PointerImage};
use crate::api::update::{BitmapUpdate, PixelFormat};
use crate::record::channel_command::decode_channel_command;
use crate::record::format::*;
use crate::wire::cursor::ReadCursor;
use crate::wire::error::DecodeError;

/// One recorded entry. Times count from the engine's construction.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    /// A frame of plaintext the engine processed, with the verdict of its
    /// password check when it had one.
    Frame {
        at: Duration,
        frame: &'a [u8],
        verdict: Option<bool>,
    },
    Eof(Duration),
    Timeout(Duration),
    /// An application command other than an echo request.
    Command(Command<'a>),
    /// An echo request, given `at` after the engine was built.
    Echo {
        at: Duration,
        payload: &'a [u8],
    },
    Output(&'a [u8]),
    Event(&'a str),
}

/// The entries after a recording's header.
pub(crate) struct Reader<'a> {
    cursor: ReadCursor<'a>,
}

impl<'a> Reader<'a> {
    /// `cursor` stands at the first entry (after `format::decode_header`).
    pub fn new(cursor: ReadCursor<'a>) -> Self {
        Self { cursor }
    }

    /// The next entry, `None` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>, DecodeError> {
        if self.cursor.is_empty() {
            return Ok(None);
        }
        let cursor = &mut self.cursor;
        let entry = match cursor.read_u8()? {
            TAG_FRAME => {
                let at = read_at(cursor)?;
                let len = cursor.read_u32_le()? as usize;
                let frame = cursor.read_slice(len)?;
                // A verdict recorded for this frame decides its password check.
                let verdict = if cursor.rest().first() == Some(&TAG_VERDICT) {
                    cursor.read_u8()?;
                    Some(cursor.read_u8()? != 0)
                } else {
                    None
                };
                Entry::Frame { at, frame, verdict }
            }
            TAG_EOF => Entry::Eof(read_at(cursor)?),
            TAG_TIMEOUT => Entry::Timeout(read_at(cursor)?),
            TAG_CLOSE => {
                read_at(cursor)?;
                Entry::Command(Command::Close)
            }
            TAG_DAMAGE => {
                let count = cursor.read_u32_le()? as usize;
                let mut areas = Vec::new();
                for _ in 0..count {
                    areas.push(Rectangle {
                        left: cursor.read_u16_le()?,
                        top: cursor.read_u16_le()?,
                        right: cursor.read_u16_le()?,
                        bottom: cursor.read_u16_le()?,
                    });
                }
                let formatted = match cursor.read_u8()? {
                    TAG_BITMAP => false,
                    TAG_BITMAP_FORMATTED => true,
                    _ => return Err(cursor.invalid("damage", "not followed by a bitmap")),
                };
                bitmap(cursor, formatted, Some(Cow::Owned(areas)))?
            }
            TAG_BITMAP => bitmap(cursor, false, None)?,
            TAG_BITMAP_FORMATTED => bitmap(cursor, true, None)?,
            TAG_POINTER => pointer(cursor, None)?,
            TAG_POINTER_SLOT => {
                let slot = Some(cursor.read_u16_le()?);
                match cursor.read_u8()? {
                    TAG_POINTER => pointer(cursor, slot)?,
                    TAG_COLOR_POINTER => color_pointer(cursor, slot)?,
                    _ => return Err(cursor.invalid("pointer slot", "not followed by a pointer")),
                }
            }
            TAG_POINTER_COMMAND => {
                let kind = cursor.read_u8()?;
                let a = cursor.read_u16_le()?;
                let b = cursor.read_u16_le()?;
                command(Command::PointerCommand(match kind {
                    0 => PointerCommand::Position { x: a, y: b },
                    1 => PointerCommand::Hidden,
                    2 => PointerCommand::Default,
                    3 => PointerCommand::Cached(a),
                    _ => return Err(cursor.invalid("pointer command", "unknown kind")),
                }))
            }
            TAG_ECHO => Entry::Echo {
                at: read_at(cursor)?,
                payload: &[],
            },
            TAG_ECHO_PAYLOAD => {
                let at = read_at(cursor)?;
                let len = cursor.read_u32_le()? as usize;
                Entry::Echo {
                    at,
                    payload: cursor.read_slice(len)?,
                }
            }
            TAG_GRAPHICS => command(Command::SetGraphics(match cursor.read_u8()? {
                0 => Graphics::Bitmaps,
                1 => Graphics::Surface(read_codec(cursor)?),
                2 => Graphics::Pipeline(
                    PipelineCodec::from_byte(cursor.read_u8()?)
                        .ok_or_else(|| cursor.invalid("pipeline codec", "unknown codec"))?,
                ),
                _ => return Err(cursor.invalid("graphics", "unknown kind")),
            })),
            TAG_RESIZE => {
                let width = cursor.read_u16_le()?;
                let height = cursor.read_u16_le()?;
                command(Command::Resize(DesktopSize { width, height }))
            }
            TAG_COLOR_POINTER => color_pointer(cursor, None)?,
            TAG_CHANNEL_COMMAND => {
                let len = cursor.read_u32_le()? as usize;
                let mut inner = ReadCursor::new(cursor.read_slice(len)?, "recorded command");
                command(Command::Channel(decode_channel_command(&mut inner)?))
            }
            TAG_ACCEPT_CONNECTION => command(Command::AcceptConnection),
            TAG_AVC420 => {
                let count = cursor.read_u32_le()? as usize;
                if count > crate::api::update::Avc420Frame::MAX_REGIONS {
                    return Err(cursor.invalid("avc420 regions", "more than a frame may name"));
                }
                // Ten bytes a region: a count the entry cannot hold is
                // refused before anything is allocated.
                cursor.ensure(count * 10)?;
                let regions = (0..count)
                    .map(|_| {
                        Ok(crate::api::update::AvcRegion {
                            left: cursor.read_u16_le()?,
                            top: cursor.read_u16_le()?,
                            right: cursor.read_u16_le()?,
                            bottom: cursor.read_u16_le()?,
                            qp: cursor.read_u8()?,
                            quality: cursor.read_u8()?,
                        })
                    })
                    .collect::<Result<Vec<_>, DecodeError>>()?;
                let len = cursor.read_u32_le()? as usize;
                command(Command::Avc420(crate::api::update::Avc420Frame {
                    stream: Cow::Borrowed(cursor.read_slice(len)?),
                    regions: Cow::Owned(regions),
                }))
            }
            TAG_REDIRECT => {
                let len = cursor.read_u32_le()? as usize;
                let packet = cursor.read_slice(len)?;
                command(Command::Redirect(std::borrow::Cow::Owned(
                    crate::connection::redirection::decode_packet(packet)?,
                )))
            }
            TAG_OUTPUT => {
                let len = cursor.read_u32_le()? as usize;
                Entry::Output(cursor.read_slice(len)?)
            }
            TAG_EVENT => {
                let len = cursor.read_u32_le()? as usize;
                let bytes = cursor.read_slice(len)?;
                Entry::Event(
                    std::str::from_utf8(bytes).map_err(|_| cursor.invalid("event", "not utf-8"))?,
                )
            }
            TAG_VERDICT => {
                // Only meaningful right after its frame, where it was read.
                cursor.read_u8()?;
                return self.next_entry();
            }
            other => {
                return Err(DecodeError::Unexpected {
                    context: "recording",
                    what: "entry tag",
                    value: u32::from(other),
                });
            }
        };
        Ok(Some(entry))
    }
}

fn command(command: Command<'_>) -> Entry<'_> {
    Entry::Command(command)
}

fn read_at(cursor: &mut ReadCursor<'_>) -> Result<Duration, DecodeError> {
    Ok(Duration::from_nanos(cursor.read_u64_le()?))
}

/// A TAG_POINTER entry's fields (the tag already read).
fn pointer<'a>(
    cursor: &mut ReadCursor<'a>,
    cache_index: Option<u16>,
) -> Result<Entry<'a>, DecodeError> {
    let width = cursor.read_u16_le()?;
    let height = cursor.read_u16_le()?;
    let hotspot_x = cursor.read_u16_le()?;
    let hotspot_y = cursor.read_u16_le()?;
    let rgba = cursor.read_slice(usize::from(width) * usize::from(height) * 4)?;
    Ok(command(Command::Pointer(PointerImage {
        width,
        height,
        hotspot_x,
        hotspot_y,
        cache_index,
        rgba,
    })))
}

/// A TAG_COLOR_POINTER entry's fields (the tag already read).
fn color_pointer<'a>(
    cursor: &mut ReadCursor<'a>,
    cache_index: Option<u16>,
) -> Result<Entry<'a>, DecodeError> {
    let width = cursor.read_u16_le()?;
    let height = cursor.read_u16_le()?;
    let hotspot_x = cursor.read_u16_le()?;
    let hotspot_y = cursor.read_u16_le()?;
    let (w, h) = (usize::from(width), usize::from(height));
    let xor_bgr = cursor.read_slice(w * 3 * h)?;
    let and_mask = cursor.read_slice(w.div_ceil(8) * h)?;
    Ok(command(Command::ColorPointer(ColorPointer {
        width,
        height,
        hotspot_x,
        hotspot_y,
        cache_index,
        xor_bgr,
        and_mask,
    })))
}

/// A TAG_BITMAP or, when `formatted`, TAG_BITMAP_FORMATTED entry's
/// fields (the tag already read).
fn bitmap<'a>(
    cursor: &mut ReadCursor<'a>,
    formatted: bool,
    damage: Option<Cow<'a, [Rectangle]>>,
) -> Result<Entry<'a>, DecodeError> {
    read_at(cursor)?;
    let format = if formatted {
        PixelFormat::from_byte(cursor.read_u8()?)
            .ok_or_else(|| cursor.invalid("bitmap", "unknown pixel format"))?
    } else {
        PixelFormat::BgrX32
    };
    let x = cursor.read_u16_le()?;
    let y = cursor.read_u16_le()?;
    let width = cursor.read_u16_le()?;
    let height = cursor.read_u16_le()?;
    let len = cursor.read_u32_le()? as usize;
    let data = cursor.read_slice(len)?;
    Ok(command(Command::Bitmap {
        update: BitmapUpdate {
            x,
            y,
            width,
            height,
            stride: usize::from(width) * format.bytes_per_pixel(),
            format,
            data,
        },
        damage,
    }))
}
