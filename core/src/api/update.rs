//! Graphics the application hands to the engine.

use crate::api::error::CommandError;

/// A rectangle of 32-bit pixels to show on the client's desktop.
///
/// Pixels are in memory order B, G, R, X (what Windows calls 32-bpp RGB; the
/// fourth byte is ignored), rows top to bottom, `stride` bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct BitmapUpdate<'a> {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub data: &'a [u8],
}

impl BitmapUpdate<'_> {
    pub const BYTES_PER_PIXEL: usize = 4;

    /// Checks that `data` holds every row the rectangle names.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.width == 0 || self.height == 0 {
            return Err(CommandError::EmptyBitmap);
        }
        let row = usize::from(self.width) * Self::BYTES_PER_PIXEL;
        if self.stride < row {
            return Err(CommandError::StrideTooShort);
        }
        let needed = self.stride * (usize::from(self.height) - 1) + row;
        if self.data.len() < needed {
            return Err(CommandError::BitmapDataTooShort);
        }
        Ok(())
    }
}
