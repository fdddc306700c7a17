//! Pointer shapes and commands the application sends.

use crate::api::error::CommandError;

/// The largest pointer every client takes (TS_COLORPOINTERATTRIBUTE limits).
pub const MAX_REGULAR_SIDE: u16 = 96;
/// The largest pointer clients with LARGE_POINTER_FLAG_384x384 take.
pub const MAX_LARGE_SIDE: u16 = 384;

/// Pointer commands that carry no image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerCommand {
    /// Move the pointer to (x, y) of the desktop.
    Position {
        x: u16,
        y: u16,
    },
    Hidden,
    /// The client's default (system) pointer.
    Default,
    /// A pointer sent earlier, by the slot `send_pointer` returned or the
    /// application chose (`cache_index`).
    Cached(u16),
}

/// A pointer image: straight (not premultiplied) R, G, B, A bytes, rows top
/// to bottom, `width * 4` bytes each.
///
/// `cache_index` is the client's pointer cache slot to keep it in, for a
/// later `PointerCommand::Cached`; it must be below the cache size the
/// client announced (`CommandError::PointerCacheIndex` otherwise). With
/// `None` the engine takes the slots in turn, the oldest first; an
/// application that recalls pointers should choose every slot itself, so
/// the engine's turn never overwrites one it means to recall.
#[derive(Debug, Clone, Copy)]
pub struct PointerImage<'a> {
    pub width: u16,
    pub height: u16,
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    pub cache_index: Option<u16>,
    pub rgba: &'a [u8],
}

impl PointerImage<'_> {
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.width == 0 || self.height == 0 {
            return Err(CommandError::EmptyPointer);
        }
        if self.rgba.len() < usize::from(self.width) * usize::from(self.height) * 4 {
            return Err(CommandError::PointerDataTooShort);
        }
        Ok(())
    }
}

/// A legacy colour pointer as Windows defines its masks: a 24-bit XOR mask
/// (B, G, R, rows top to bottom, `width * 3` bytes each) and a 1-bit AND
/// mask (rows top to bottom, `ceil(width / 8)` bytes each, most significant
/// bit first). Where the AND bit is 1 the screen shows through, XORed with
/// the colour: a black XOR pixel leaves it, a white one inverts it, which
/// RGBA pointers cannot express (the text I-beam). `cache_index` chooses
/// its cache slot, as for [`PointerImage`].
#[derive(Debug, Clone, Copy)]
pub struct ColorPointer<'a> {
    pub width: u16,
    pub height: u16,
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    pub cache_index: Option<u16>,
    pub xor_bgr: &'a [u8],
    pub and_mask: &'a [u8],
}

impl ColorPointer<'_> {
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.width == 0 || self.height == 0 {
            return Err(CommandError::EmptyPointer);
        }
        if self.width > MAX_REGULAR_SIDE || self.height > MAX_REGULAR_SIDE {
            return Err(CommandError::ColorPointerTooLarge);
        }
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        if self.xor_bgr.len() < width * 3 * height
            || self.and_mask.len() < width.div_ceil(8) * height
        {
            return Err(CommandError::PointerDataTooShort);
        }
        Ok(())
    }
}
