//! Pixel encoders for rdpserve: pure functions from pixels to the bytes a
//! codec puts on the wire, writing into buffers the caller owns.
#![forbid(unsafe_code)]

mod uncompressed;

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
