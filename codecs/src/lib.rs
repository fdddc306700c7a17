//! Pixel encoders for rdpserve: pure functions from pixels to the bytes a
//! codec puts on the wire, writing into buffers the caller owns.
#![forbid(unsafe_code)]

pub mod damage;
mod interleaved;
mod planar;
mod uncompressed;

pub use interleaved::{ColorDepth, decode_interleaved, encode_interleaved, padded_width};
pub use planar::{decode_planar, encode_planar};
pub use uncompressed::encode_uncompressed_32;

/// A view of 32-bit pixels in memory order B, G, R, X, rows top to bottom.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    pub data: &'a [u8],
}

impl Image<'_> {
    /// Checks that the rectangle lies within the image and its data.
    pub fn check_rect(
        &self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<(), EncodeError> {
        let fits = x
            .checked_add(width)
            .is_some_and(|right| right <= self.width)
            && y.checked_add(height)
                .is_some_and(|bottom| bottom <= self.height)
            && self.stride >= self.width * 4
            && (self.height == 0
                || self.data.len() >= self.stride * (self.height - 1) + self.width * 4);
        if fits {
            Ok(())
        } else {
            Err(EncodeError::OutOfBounds)
        }
    }
}

/// A request the encoder cannot honour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The rectangle does not lie within the image, or the image's data is
    /// shorter than its size says.
    OutOfBounds,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfBounds => f.write_str("rectangle outside the image data"),
        }
    }
}

impl std::error::Error for EncodeError {}
