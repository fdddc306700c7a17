//! The pixel layouts an application may hand over, and their conversion
//! to the B, G, R, X layout every encoder reads.
//!
//! Conversion happens row by row while pixels are copied into the damage
//! tracker's shadow (`damage::Framebuffer`), so a foreign layout costs no
//! pass of its own. The 32-bit layouts are byte shuffles done on whole
//! little-endian words, a loop the compiler vectorises.

use std::fmt;

use crate::EncodeError;

/// How the bytes of one pixel are laid out in memory. Names list the
/// channels in memory order: `BgrA32` is the bytes B, G, R, A. The alpha
/// (`A`) or padding (`X`) byte is ignored: a desktop is opaque. 16-bit
/// layouts are one little-endian `u16` per pixel, 5-6-5 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PixelFormat {
    /// B, G, R, X: what RDP and the shadow use, copied as it is.
    #[default]
    BgrX32,
    /// B, G, R, A: the same bytes as `BgrX32`.
    BgrA32,
    /// X, B, G, R.
    XBgr32,
    /// A, B, G, R.
    ABgr32,
    /// R, G, B, X.
    RgbX32,
    /// R, G, B, A.
    RgbA32,
    /// X, R, G, B.
    XRgb32,
    /// A, R, G, B.
    ARgb32,
    /// B, G, R, three bytes a pixel.
    Bgr24,
    /// R, G, B, three bytes a pixel.
    Rgb24,
    /// RGB 5-6-5 in BGR order: blue in the top five bits of the
    /// little-endian word, red in the bottom five.
    Bgr16,
    /// RGB 5-6-5: red in the top five bits of the little-endian word,
    /// blue in the bottom five (Windows' 16-bit layout).
    Rgb16,
}

impl PixelFormat {
    /// Every format, in declaration order.
    pub const ALL: [PixelFormat; 12] = [
        Self::BgrX32,
        Self::BgrA32,
        Self::XBgr32,
        Self::ABgr32,
        Self::RgbX32,
        Self::RgbA32,
        Self::XRgb32,
        Self::ARgb32,
        Self::Bgr24,
        Self::Rgb24,
        Self::Bgr16,
        Self::Rgb16,
    ];

    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Bgr24 | Self::Rgb24 => 3,
            Self::Bgr16 | Self::Rgb16 => 2,
            _ => 4,
        }
    }

    /// Whether rows in this format are already the B, G, R, X the encoders
    /// read, so copying them is all the conversion there is.
    pub fn is_native(self) -> bool {
        matches!(self, Self::BgrX32 | Self::BgrA32)
    }

    /// The bytes `width` pixels take, `None` on overflow.
    pub fn row_bytes(self, width: usize) -> Option<usize> {
        width.checked_mul(self.bytes_per_pixel())
    }

    /// Whether the format loses colour: its channels have fewer than 8 bits.
    pub fn is_lossy(self) -> bool {
        matches!(self, Self::Bgr16 | Self::Rgb16)
    }

    /// The format's byte in recordings and other persistent forms.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::BgrX32 => 0,
            Self::BgrA32 => 1,
            Self::XBgr32 => 2,
            Self::ABgr32 => 3,
            Self::RgbX32 => 4,
            Self::RgbA32 => 5,
            Self::XRgb32 => 6,
            Self::ARgb32 => 7,
            Self::Bgr24 => 8,
            Self::Rgb24 => 9,
            Self::Bgr16 => 10,
            Self::Rgb16 => 11,
        }
    }

    /// The format whose [`to_byte`](Self::to_byte) is `byte`.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|format| format.to_byte() == byte)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A view of pixels in any [`PixelFormat`], rows top to bottom, `stride`
/// bytes apart: what the damage tracker copies from.
#[derive(Debug, Clone, Copy)]
pub struct SourceImage<'a> {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next.
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}

impl<'a> From<crate::Image<'a>> for SourceImage<'a> {
    /// The encoders' own B, G, R, X image.
    fn from(image: crate::Image<'a>) -> Self {
        Self {
            width: image.width,
            height: image.height,
            stride: image.stride,
            format: PixelFormat::BgrX32,
            data: image.data,
        }
    }
}

impl SourceImage<'_> {
    /// Checks that every row of the image lies within its data (the last
    /// row need not be padded to the stride). All arithmetic is checked.
    pub fn check(&self) -> Result<(), EncodeError> {
        let row = self.format.row_bytes(self.width);
        let stride_holds_a_row = row.is_some_and(|row| self.stride >= row);
        let data_holds_the_image = self.height == 0
            || self
                .stride
                .checked_mul(self.height - 1)
                .zip(row)
                .and_then(|(rows, last)| rows.checked_add(last))
                .is_some_and(|needed| self.data.len() >= needed);
        if stride_holds_a_row && data_holds_the_image {
            Ok(())
        } else {
            Err(EncodeError::OutOfBounds)
        }
    }

    /// The `width` pixels of row `y` from column `x`, in the source format.
    /// INVARIANT: the caller checked the image and the rectangle.
    pub(crate) fn row(&self, x: usize, y: usize, width: usize) -> &[u8] {
        let bytes = self.format.bytes_per_pixel();
        let start = y * self.stride + x * bytes;
        &self.data[start..start + width * bytes]
    }
}

/// Converts one row of `format` pixels into B, G, R, X: `target` is
/// filled, four bytes a pixel, from the first `target.len() / 4` pixels of
/// `source`. Swizzled 32-bit layouts keep their fourth byte in the fourth
/// place; 24- and 16-bit ones get 0xFF there. 5- and 6-bit channels widen
/// by repeating their top bits (31 becomes 255, 0 stays 0).
///
/// # Panics
/// When `source` holds fewer pixels than `target` (a bug in the caller).
pub fn convert_row(format: PixelFormat, source: &[u8], target: &mut [u8]) {
    let pixels = target.len() / 4;
    let source = &source[..pixels * format.bytes_per_pixel()];
    // One loop per format, each a plain loop of shifts and masks on whole
    // words with no format test inside.
    match format {
        PixelFormat::BgrX32 | PixelFormat::BgrA32 => target.copy_from_slice(source),
        // [X, B, G, R] as a little-endian word, rotated down one byte.
        PixelFormat::XBgr32 | PixelFormat::ABgr32 => swizzle(source, target, |p| p.rotate_right(8)),
        // R and B trade places.
        PixelFormat::RgbX32 | PixelFormat::RgbA32 => swizzle(source, target, |p| {
            (p & 0xFF00_FF00) | ((p >> 16) & 0xFF) | ((p & 0xFF) << 16)
        }),
        // [X, R, G, B] is B, G, R, X backwards.
        PixelFormat::XRgb32 | PixelFormat::ARgb32 => swizzle(source, target, u32::swap_bytes),
        PixelFormat::Bgr24 => widen_24(source, target, |[b, g, r]| [b, g, r, 0xFF]),
        PixelFormat::Rgb24 => widen_24(source, target, |[r, g, b]| [b, g, r, 0xFF]),
        PixelFormat::Bgr16 => widen_16(source, target, |top, green, bottom| {
            [top, green, bottom, 0xFF]
        }),
        PixelFormat::Rgb16 => widen_16(source, target, |top, green, bottom| {
            [bottom, green, top, 0xFF]
        }),
    }
}

/// Applies `shuffle` to each pixel as a little-endian word; eight pixels
/// a step, so the loop body is fixed-size and vectorises.
#[inline(always)]
fn swizzle(source: &[u8], target: &mut [u8], shuffle: impl Fn(u32) -> u32) {
    const STEP: usize = 32;
    let mut sources = source.chunks_exact(STEP);
    let mut targets = target.chunks_exact_mut(STEP);
    for (from, to) in (&mut sources).zip(&mut targets) {
        let from: &[u8; STEP] = from.try_into().expect("a whole step");
        let to: &mut [u8; STEP] = to.try_into().expect("a whole step");
        for (from, to) in from.chunks_exact(4).zip(to.chunks_exact_mut(4)) {
            let pixel = u32::from_le_bytes(from.try_into().expect("4 bytes"));
            to.copy_from_slice(&shuffle(pixel).to_le_bytes());
        }
    }
    let (from, to) = (sources.remainder(), targets.into_remainder());
    for (from, to) in from.chunks_exact(4).zip(to.chunks_exact_mut(4)) {
        let pixel = u32::from_le_bytes(from.try_into().expect("4 bytes"));
        to.copy_from_slice(&shuffle(pixel).to_le_bytes());
    }
}

#[inline(always)]
fn widen_24(source: &[u8], target: &mut [u8], order: impl Fn([u8; 3]) -> [u8; 4]) {
    for (from, to) in source.chunks_exact(3).zip(target.chunks_exact_mut(4)) {
        to.copy_from_slice(&order(from.try_into().expect("3 bytes")));
    }
}

/// `order` gets the channel in the top five bits, green and the channel in
/// the bottom five bits, each widened to 8 bits.
#[inline(always)]
fn widen_16(source: &[u8], target: &mut [u8], order: impl Fn(u8, u8, u8) -> [u8; 4]) {
    for (from, to) in source.chunks_exact(2).zip(target.chunks_exact_mut(4)) {
        let pixel = u16::from_le_bytes(from.try_into().expect("2 bytes"));
        let (top, green, bottom) = (pixel >> 11, (pixel >> 5) & 0x3F, pixel & 0x1F);
        to.copy_from_slice(&order(
            widen_5(top),
            ((green << 2) | (green >> 4)) as u8,
            widen_5(bottom),
        ));
    }
}

fn widen_5(value: u16) -> u8 {
    ((value << 3) | (value >> 2)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One pixel of colour (r, g, b) and fourth byte `a` in `format`,
    /// written channel by channel from the format's description.
    fn encode_pixel(format: PixelFormat, [r, g, b, a]: [u8; 4]) -> Vec<u8> {
        let rgb565 = |top: u8, bottom: u8| {
            let word = ((u16::from(top) >> 3) << 11)
                | ((u16::from(g) >> 2) << 5)
                | (u16::from(bottom) >> 3);
            word.to_le_bytes().to_vec()
        };
        match format {
            PixelFormat::BgrX32 | PixelFormat::BgrA32 => vec![b, g, r, a],
            PixelFormat::XBgr32 | PixelFormat::ABgr32 => vec![a, b, g, r],
            PixelFormat::RgbX32 | PixelFormat::RgbA32 => vec![r, g, b, a],
            PixelFormat::XRgb32 | PixelFormat::ARgb32 => vec![a, r, g, b],
            PixelFormat::Bgr24 => vec![b, g, r],
            PixelFormat::Rgb24 => vec![r, g, b],
            PixelFormat::Bgr16 => rgb565(b, r),
            PixelFormat::Rgb16 => rgb565(r, b),
        }
    }

    /// What the pixel becomes in B, G, R, X, computed the slow way.
    fn expected_pixel(format: PixelFormat, [r, g, b, a]: [u8; 4]) -> [u8; 4] {
        let widen = |value: u8, bits: u32| {
            let top = u32::from(value) >> (8 - bits);
            // Repeat the bits until 8 are filled.
            ((top << (8 - bits)) | (top >> (2 * bits - 8))) as u8
        };
        match format.bytes_per_pixel() {
            4 => [b, g, r, a],
            3 => [b, g, r, 0xFF],
            _ => [widen(b, 5), widen(g, 6), widen(r, 5), 0xFF],
        }
    }

    fn colour(seed: &mut u32) -> [u8; 4] {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        seed.to_le_bytes()
    }

    #[test]
    fn every_format_converts_every_width_pixel_for_pixel() {
        let mut seed = 0x9E37_79B9;
        for format in PixelFormat::ALL {
            // Odd widths, and widths around the eight-pixel step.
            for width in [1, 2, 3, 7, 8, 9, 15, 16, 17, 33, 100] {
                let colours: Vec<[u8; 4]> = (0..width).map(|_| colour(&mut seed)).collect();
                let source: Vec<u8> = colours
                    .iter()
                    .flat_map(|&colour| encode_pixel(format, colour))
                    .collect();
                let mut target = vec![0u8; width * 4];
                convert_row(format, &source, &mut target);
                for (index, &colour) in colours.iter().enumerate() {
                    assert_eq!(
                        target[index * 4..index * 4 + 4],
                        expected_pixel(format, colour),
                        "{format} width {width} pixel {index}"
                    );
                }
            }
        }
    }

    #[test]
    fn sixteen_bit_extremes_widen_to_full_range() {
        for format in [PixelFormat::Bgr16, PixelFormat::Rgb16] {
            let mut target = [0u8; 8];
            convert_row(format, &[0xFF, 0xFF, 0, 0], &mut target);
            assert_eq!(target, [255, 255, 255, 255, 0, 0, 0, 255], "{format}");
        }
        // Red alone: the top five bits of Rgb16, the bottom five of Bgr16.
        let mut target = [0u8; 4];
        convert_row(PixelFormat::Rgb16, &0xF800u16.to_le_bytes(), &mut target);
        assert_eq!(target, [0, 0, 255, 255]);
        convert_row(PixelFormat::Bgr16, &0x001Fu16.to_le_bytes(), &mut target);
        assert_eq!(target, [0, 0, 255, 255]);
    }

    #[test]
    fn bytes_round_trip_and_row_sizes() {
        for format in PixelFormat::ALL {
            assert_eq!(PixelFormat::from_byte(format.to_byte()), Some(format));
            assert_eq!(format.row_bytes(5), Some(5 * format.bytes_per_pixel()));
        }
        assert_eq!(PixelFormat::from_byte(12), None);
        assert_eq!(PixelFormat::default(), PixelFormat::BgrX32);
        assert_eq!(PixelFormat::Rgb24.row_bytes(usize::MAX), None);
    }

    #[test]
    fn a_source_image_checks_rows_in_its_format() {
        let data = [0u8; 64];
        let image = |width, stride, format, len| SourceImage {
            width,
            height: 3,
            stride,
            format,
            data: &data[..len],
        };
        // 5 pixels of 24 bits in a stride of 16 (padded rows), the last
        // row unpadded: 2 * 16 + 15 bytes.
        assert!(image(5, 16, PixelFormat::Rgb24, 47).check().is_ok());
        assert!(image(5, 16, PixelFormat::Rgb24, 46).check().is_err());
        assert!(image(5, 14, PixelFormat::Rgb24, 64).check().is_err());
        // The same stride is too short for 5 pixels of 32 bits.
        assert!(image(5, 16, PixelFormat::RgbA32, 64).check().is_err());
        assert!(image(4, 8, PixelFormat::Bgr16, 24).check().is_ok());
    }
}
