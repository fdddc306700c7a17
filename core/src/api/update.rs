//! Graphics the application hands to the engine.

pub use rdpserve_codecs::PixelFormat;

use std::borrow::Cow;

use crate::api::error::CommandError;

/// One region of an [`Avc420Frame`]: a rectangle of the desktop
/// (exclusive right and bottom) the client copies out of the decoded
/// picture, with the quantizer it was encoded at and a quality level
/// (RDPGFX_AVC420_QUANT_QUALITY, MS-RDPEGFX 2.2.4.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvcRegion {
    pub left: u16,
    pub top: u16,
    pub right: u16,
    pub bottom: u16,
    /// 0 to 51.
    pub qp: u8,
    /// 0 (lowest) to 100 (highest).
    pub quality: u8,
}

/// An H.264 picture the application encoded itself (in hardware, say),
/// sent through the Graphics Pipeline as AVC420 (`Engine::send_avc420`):
/// the engine wraps it in StartFrame, WireToSurface1 and EndFrame and
/// paces it by the client's acknowledgements.
///
/// `stream` is one access unit, Annex B byte stream, YUV420p (BT.709 full
/// range is what clients convert with), of a picture covering the whole
/// desktop from (0, 0) with its sides rounded up to 16; only `regions`
/// are shown. The first frame on a surface (after the pipeline starts, a
/// resize, or frames the server encoded itself) must hold an IDR picture
/// with its SPS and PPS: the client's decoder starts over there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avc420Frame<'a> {
    pub stream: Cow<'a, [u8]>,
    pub regions: Cow<'a, [AvcRegion]>,
}

impl Avc420Frame<'_> {
    /// The most regions a frame may name.
    pub const MAX_REGIONS: usize = 4096;

    /// Checks what does not depend on the session: a stream, 1 to
    /// `MAX_REGIONS` regions, each non-empty with its quantizer and
    /// quality in range.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.stream.is_empty()
            || self.regions.is_empty()
            || self.regions.len() > Self::MAX_REGIONS
        {
            return Err(CommandError::EmptyAvc420Frame);
        }
        for (index, region) in self.regions.iter().enumerate() {
            if region.left >= region.right
                || region.top >= region.bottom
                || region.qp > 51
                || region.quality > 100
            {
                return Err(CommandError::InvalidAvcRegion { index });
            }
        }
        Ok(())
    }

    /// Whether the stream holds an IDR picture (a NAL unit of type 5).
    pub(crate) fn has_idr(&self) -> bool {
        self.stream
            .windows(4)
            .any(|window| window[..3] == [0, 0, 1] && window[3] & 0x1F == 5)
    }
}

/// A rectangle of pixels to show on the client's desktop, rows top to
/// bottom, `stride` bytes apart, each pixel laid out as `format` says
/// (B, G, R, X by default: what Windows calls 32-bpp RGB, and what the
/// encoders read without conversion). Other formats are converted while
/// the pixels are copied into the server's copy of the screen; alpha and
/// padding bytes are ignored.
#[derive(Debug, Clone, Copy)]
pub struct BitmapUpdate<'a> {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}

impl BitmapUpdate<'_> {
    /// Bytes of one row of the rectangle, without padding.
    pub fn row_bytes(&self) -> usize {
        // INVARIANT: at most 65535 pixels of at most 4 bytes: no overflow.
        usize::from(self.width) * self.format.bytes_per_pixel()
    }

    /// Checks that the stride holds a row of the format and `data` every
    /// row the rectangle names (the last row need not be padded).
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.width == 0 || self.height == 0 {
            return Err(CommandError::EmptyBitmap);
        }
        let row_bytes = self.row_bytes();
        if self.stride < row_bytes {
            return Err(CommandError::StrideTooShort {
                stride: self.stride,
                row_bytes,
                format: self.format,
            });
        }
        // A stride too large to multiply needs more data than any slice holds.
        let needed = self
            .stride
            .saturating_mul(usize::from(self.height) - 1)
            .saturating_add(row_bytes);
        if self.data.len() < needed {
            return Err(CommandError::BitmapDataTooShort {
                len: self.data.len(),
                needed,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(
        width: u16,
        height: u16,
        stride: usize,
        format: PixelFormat,
        data: &[u8],
    ) -> BitmapUpdate<'_> {
        BitmapUpdate {
            x: 0,
            y: 0,
            width,
            height,
            stride,
            format,
            data,
        }
    }

    #[test]
    fn misuse_is_refused_with_the_numbers_that_are_wrong() {
        let data = [0u8; 100];
        // Three 24-bit pixels need 9 bytes a row.
        assert_eq!(
            update(3, 2, 8, PixelFormat::Rgb24, &data).validate(),
            Err(CommandError::StrideTooShort {
                stride: 8,
                row_bytes: 9,
                format: PixelFormat::Rgb24
            })
        );
        // Padded rows, the last one unpadded: 12 + 9 bytes.
        assert_eq!(
            update(3, 2, 12, PixelFormat::Rgb24, &data[..21]).validate(),
            Ok(())
        );
        assert_eq!(
            update(3, 2, 12, PixelFormat::Rgb24, &data[..20]).validate(),
            Err(CommandError::BitmapDataTooShort {
                len: 20,
                needed: 21
            })
        );
        // The same stride is too short for 32-bit pixels, enough for 16-bit.
        assert!(matches!(
            update(3, 2, 8, PixelFormat::ARgb32, &data).validate(),
            Err(CommandError::StrideTooShort { row_bytes: 12, .. })
        ));
        assert_eq!(
            update(3, 2, 6, PixelFormat::Bgr16, &data[..12]).validate(),
            Ok(())
        );
        assert_eq!(
            update(0, 2, 8, PixelFormat::BgrX32, &data).validate(),
            Err(CommandError::EmptyBitmap)
        );
        // A stride no slice can hold rows of.
        assert_eq!(
            update(1, 3, usize::MAX, PixelFormat::BgrX32, &data).validate(),
            Err(CommandError::BitmapDataTooShort {
                len: 100,
                needed: usize::MAX
            })
        );
    }
}
