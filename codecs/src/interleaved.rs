//! Interleaved RLE for 15, 16 and 24 bpp clients:
//! [MS-RDPBCGR 2.2.9.1.1.3.1.2.4](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/b3b60873-16a8-4cbc-8aaa-5f0a93083280).
//!
//! The encoder converts B, G, R, X pixels to the client's depth and writes
//! runs of identical pixels as colour runs and everything else as colour
//! images. It uses none of the background/foreground orders, whose meaning
//! depends on the previous scanline: the stream stays simple and lossless
//! at the target depth. Scanlines go bottom-up and are padded to a multiple
//! of four pixels (repeating the last pixel), as bitmap updates expect.

use crate::{EncodeError, Image};

/// Colour depths the encoder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// RGB 5-5-5.
    Bpp15,
    /// RGB 5-6-5.
    Bpp16,
    /// B, G, R bytes.
    Bpp24,
}

impl ColorDepth {
    pub fn bits(self) -> u16 {
        match self {
            Self::Bpp15 => 15,
            Self::Bpp16 => 16,
            Self::Bpp24 => 24,
        }
    }

    pub fn bytes_per_pixel(self) -> usize {
        match self {
            Self::Bpp15 | Self::Bpp16 => 2,
            Self::Bpp24 => 3,
        }
    }

    /// The pixel B, G, R at this depth, little-endian in the low bytes.
    pub fn convert(self, b: u8, g: u8, r: u8) -> u32 {
        let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
        match self {
            Self::Bpp15 => ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3),
            Self::Bpp16 => ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3),
            Self::Bpp24 => (r << 16) | (g << 8) | b,
        }
    }
}

const REGULAR_COLOR_RUN: u8 = 0x3;
const REGULAR_COLOR_IMAGE: u8 = 0x4;
const MEGA_MEGA_COLOR_RUN: u8 = 0xF3;
const MEGA_MEGA_COLOR_IMAGE: u8 = 0xF4;
/// Runs shorter than this are cheaper inside a colour image.
const MIN_RUN: usize = 3;

/// The width a tile is encoded at: padded to a multiple of four pixels.
pub fn padded_width(width: usize) -> usize {
    width.div_ceil(4) * 4
}

/// Appends the interleaved RLE encoding of the rectangle of `image` at
/// `depth` to `out`. The encoded bitmap is `padded_width(width)` wide.
#[allow(clippy::too_many_arguments)]
pub fn encode_interleaved(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    depth: ColorDepth,
    scratch: &mut Vec<u32>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    image.check_rect(x, y, width, height)?;
    let padded = padded_width(width);
    // Converted pixels, bottom-up, each row padded with its last pixel.
    scratch.clear();
    for row in (y..y + height).rev() {
        let start = row * image.stride + x * 4;
        let line = &image.data[start..start + width * 4];
        scratch.extend(
            line.chunks_exact(4)
                .map(|p| depth.convert(p[0], p[1], p[2])),
        );
        let last = *scratch.last().unwrap_or(&0);
        scratch.extend(std::iter::repeat_n(last, padded - width));
    }
    let pixels = &scratch[..];
    let mut image_start = 0;
    let mut index = 0;
    while index < pixels.len() {
        let value = pixels[index];
        let run = pixels[index..].iter().take_while(|&&p| p == value).count();
        if run >= MIN_RUN {
            write_image(&pixels[image_start..index], depth, out);
            write_order(REGULAR_COLOR_RUN, MEGA_MEGA_COLOR_RUN, run, out);
            write_pixel(value, depth, out);
            index += run;
            image_start = index;
        } else {
            index += run;
        }
    }
    write_image(&pixels[image_start..], depth, out);
    Ok(())
}

fn write_image(pixels: &[u32], depth: ColorDepth, out: &mut Vec<u8>) {
    // Each order carries at most 65535 pixels.
    for chunk in pixels.chunks(0xFFFF) {
        write_order(REGULAR_COLOR_IMAGE, MEGA_MEGA_COLOR_IMAGE, chunk.len(), out);
        for &pixel in chunk {
            write_pixel(pixel, depth, out);
        }
    }
}

/// A regular order header (run length in 5 bits, or an extra byte for
/// 32..287), or the mega-mega form with a 16-bit length.
fn write_order(regular: u8, mega: u8, length: usize, out: &mut Vec<u8>) {
    debug_assert!(length <= 0xFFFF);
    if length == 0 {
        return;
    }
    if length < 32 {
        out.push((regular << 5) | length as u8);
    } else if length < 32 + 256 {
        out.push(regular << 5);
        out.push((length - 32) as u8);
    } else {
        out.push(mega);
        out.extend_from_slice(&(length as u16).to_le_bytes());
    }
}

fn write_pixel(pixel: u32, depth: ColorDepth, out: &mut Vec<u8>) {
    out.extend_from_slice(&pixel.to_le_bytes()[..depth.bytes_per_pixel()]);
}

/// Decodes what `encode_interleaved` writes (colour runs and images only),
/// returning pixels at `depth`, top-down (a test decoder).
pub fn decode_interleaved(
    data: &[u8],
    width: usize,
    height: usize,
    depth: ColorDepth,
) -> Result<Vec<u32>, DecodeError> {
    let total = width.checked_mul(height).ok_or(DecodeError)?;
    let size = depth.bytes_per_pixel();
    let mut pixels = Vec::with_capacity(total);
    let mut rest = data;
    let read_pixel = |rest: &mut &[u8]| -> Result<u32, DecodeError> {
        let (bytes, tail) = rest.split_at_checked(size).ok_or(DecodeError)?;
        *rest = tail;
        let mut value = [0u8; 4];
        value[..size].copy_from_slice(bytes);
        Ok(u32::from_le_bytes(value))
    };
    while !rest.is_empty() {
        let header = rest[0];
        rest = &rest[1..];
        let (code, length) = if header >= 0xF0 {
            let (bytes, tail) = rest.split_at_checked(2).ok_or(DecodeError)?;
            rest = tail;
            (
                header,
                usize::from(u16::from_le_bytes([bytes[0], bytes[1]])),
            )
        } else {
            let mut length = usize::from(header & 0x1F);
            if length == 0 {
                let (&extra, tail) = rest.split_first().ok_or(DecodeError)?;
                rest = tail;
                length = usize::from(extra) + 32;
            }
            (header >> 5, length)
        };
        if pixels.len() + length > total {
            return Err(DecodeError);
        }
        match code {
            REGULAR_COLOR_RUN | MEGA_MEGA_COLOR_RUN => {
                let value = read_pixel(&mut rest)?;
                pixels.extend(std::iter::repeat_n(value, length));
            }
            REGULAR_COLOR_IMAGE | MEGA_MEGA_COLOR_IMAGE => {
                for _ in 0..length {
                    pixels.push(read_pixel(&mut rest)?);
                }
            }
            _ => return Err(DecodeError),
        }
    }
    if pixels.len() != total {
        return Err(DecodeError);
    }
    // Bottom-up on the wire.
    Ok(pixels.chunks(width).rev().flatten().copied().collect())
}

/// Interleaved data that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(
        width: usize,
        height: usize,
        depth: ColorDepth,
        pixel: impl Fn(usize, usize) -> [u8; 3],
    ) {
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let [r, g, b] = pixel(x, y);
                data.extend_from_slice(&[b, g, r, 0]);
            }
        }
        let image = Image {
            width,
            height,
            stride: width * 4,
            data: &data,
        };
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        encode_interleaved(&image, 0, 0, width, height, depth, &mut scratch, &mut out).unwrap();
        let padded = padded_width(width);
        let decoded = decode_interleaved(&out, padded, height, depth).unwrap();
        for y in 0..height {
            for x in 0..width {
                let [r, g, b] = pixel(x, y);
                assert_eq!(
                    decoded[y * padded + x],
                    depth.convert(b, g, r),
                    "({x}, {y}) at {depth:?}"
                );
            }
        }
    }

    #[test]
    fn round_trips_at_every_depth() {
        for depth in [ColorDepth::Bpp15, ColorDepth::Bpp16, ColorDepth::Bpp24] {
            round_trip(64, 64, depth, |x, y| [(x * 4) as u8, (y * 4) as u8, 99]);
            round_trip(
                5,
                3,
                depth,
                |x, _| if x < 3 { [1, 2, 3] } else { [200, 100, 50] },
            );
            round_trip(300, 2, depth, |_, _| [7, 7, 7]);
            round_trip(1, 1, depth, |_, _| [255, 0, 255]);
        }
    }

    #[test]
    fn decoder_rejects_garbage() {
        assert!(decode_interleaved(&[0x65], 4, 1, ColorDepth::Bpp16).is_err());
        assert!(decode_interleaved(&[0x7F, 0, 0], 4, 1, ColorDepth::Bpp16).is_err());
        assert!(decode_interleaved(&[0x00], 4, 1, ColorDepth::Bpp16).is_err());
        for seed in 0..100u32 {
            let garbage: Vec<u8> = (0..(seed % 40)).map(|i| (i * seed + 3) as u8).collect();
            let _ = decode_interleaved(&garbage, 4, 2, ColorDepth::Bpp24);
        }
    }
}
