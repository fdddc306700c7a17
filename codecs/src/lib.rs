//! Pixel encoders for rdpserve: pure functions from pixels to the bytes a
//! codec puts on the wire, writing into buffers the caller owns.
//!
//! Features (all on by default): `rayon` encodes RemoteFX tiles in
//! parallel (the bytes are the same without it), `qoi` builds IronRDP's QOI
//! encoder, `qoiz` its QOIZ encoder (QOI through zstd; implies `qoi` and
//! builds the zstd C library). Off by default, `h264` builds an H.264
//! encoder on openh264 (`h264.rs`; from source: a C++ compiler, and `nasm`
//! for openh264's x86 assembly).
#![deny(unsafe_code)]

pub mod classify;
pub mod damage;
#[cfg(feature = "h264")]
mod h264;
mod interleaved;
mod pixel_format;
mod planar;
#[cfg(feature = "qoi")]
mod qoi;
#[cfg(feature = "qoiz")]
mod qoiz;
mod rfx;
pub mod scroll;
mod uncompressed;
mod yuv;
pub mod zgfx;

#[cfg(feature = "h264")]
pub use h264::{H264Content, H264Decoder, H264Encoder, H264Picture, H264Settings, i420_psnr};
pub use interleaved::{ColorDepth, decode_interleaved, encode_interleaved, padded_width};
pub use pixel_format::{PixelFormat, SourceImage, convert_row};
pub use planar::{decode_planar, encode_planar, encode_planar_top_down, encode_planar_with_alpha};
#[cfg(feature = "qoi")]
pub use qoi::{QOI_CODEC_GUID, encode_qoi};
#[cfg(feature = "qoiz")]
pub use qoiz::{QOIZ_CODEC_GUID, QoizEncoder};
pub use rfx::{
    DecodedRfx, RfxDecodeError, RfxEncoder, RfxQuant, RfxRect, RlgrMode, decode_rfx_message, psnr,
};
pub use uncompressed::encode_uncompressed_32;
pub use yuv::{Avc444Version, Avc444Views, I420};

/// A view of 32-bit pixels in memory order B, G, R, X (or A), rows top to
/// bottom: what RDP's 32-bpp formats and most framebuffers use, so the
/// uncompressed encoder copies rows as they are.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    pub data: &'a [u8],
}

impl Image<'_> {
    /// Checks that the rectangle lies within the image and its data. All
    /// arithmetic is checked, so absurd sizes are an error, never an overflow.
    pub fn check_rect(
        &self,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<(), EncodeError> {
        let rect_inside = x
            .checked_add(width)
            .is_some_and(|right| right <= self.width)
            && y.checked_add(height)
                .is_some_and(|bottom| bottom <= self.height);
        let row_bytes = self.width.checked_mul(4);
        let stride_holds_a_row = row_bytes.is_some_and(|row| self.stride >= row);
        // The last row need not be padded to the stride.
        let data_holds_the_image = self.height == 0
            || self
                .stride
                .checked_mul(self.height - 1)
                .zip(row_bytes)
                .and_then(|(rows, last)| rows.checked_add(last))
                .is_some_and(|needed| self.data.len() >= needed);
        if rect_inside && stride_holds_a_row && data_holds_the_image {
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
    /// A size, count or setting beyond what the codec's fields can carry.
    Unsupported,
    /// The compressor failed (out of memory); its stream is lost.
    Compression,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfBounds => f.write_str("rectangle outside the image data"),
            Self::Unsupported => f.write_str("size or setting the codec cannot carry"),
            Self::Compression => f.write_str("compressor failed"),
        }
    }
}

impl std::error::Error for EncodeError {}
