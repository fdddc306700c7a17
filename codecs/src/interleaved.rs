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
        self.convert_word(u32::from_le_bytes([b, g, r, 0]))
    }

    /// The pixel read as a little-endian B, G, R, X word at this depth:
    /// each channel's top bits shifted into place in one step.
    fn convert_word(self, pixel: u32) -> u32 {
        match self {
            Self::Bpp15 => {
                ((pixel >> 9) & 0x7C00) | ((pixel >> 6) & 0x03E0) | ((pixel >> 3) & 0x1F)
            }
            Self::Bpp16 => {
                ((pixel >> 8) & 0xF800) | ((pixel >> 5) & 0x07E0) | ((pixel >> 3) & 0x1F)
            }
            Self::Bpp24 => pixel & 0xFF_FFFF,
        }
    }
}

const REGULAR_COLOR_RUN: u8 = 0x3;
const REGULAR_COLOR_IMAGE: u8 = 0x4;
const MEGA_MEGA_COLOR_RUN: u8 = 0xF3;
const MEGA_MEGA_COLOR_IMAGE: u8 = 0xF4;

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
    // Every value is written before it is read, so the buffer only grows
    // and is not cleared.
    let len = padded * height;
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    let pixels = &mut scratch[..len];
    let rows = pixels.chunks_exact_mut(padded.max(1));
    for (converted, row) in rows.zip((y..y + height).rev()) {
        let start = row * image.stride + x * 4;
        // INVARIANT: check_rect proved the rectangle's rows lie in the data.
        let line = &image.data[start..start + width * 4];
        let (converted, pad) = converted.split_at_mut(width);
        convert_row(line, depth, converted);
        // A row is padded with its last pixel (an empty row has no pad).
        let last = converted.last().copied().unwrap_or(0);
        pad.fill(last);
    }
    let pixels = &scratch[..len];
    let mut image_start = 0;
    // INVARIANT: `image_start` is 0 or follows a run, so it starts a
    // maximal run of equal pixels, and so does the first run of three
    // found from it.
    while let Some(start) = find_run_of_three(pixels, image_start) {
        let value = pixels[start];
        let run = run_length(pixels, start);
        write_image(&pixels[image_start..start], depth, out);
        write_order(REGULAR_COLOR_RUN, MEGA_MEGA_COLOR_RUN, run, out);
        write_pixel(value, depth, out);
        image_start = start + run;
    }
    write_image(&pixels[image_start..], depth, out);
    Ok(())
}

/// Converts one row of B, G, R, X pixels to `depth`.
fn convert_row(line: &[u8], depth: ColorDepth, converted: &mut [u32]) {
    // One loop per depth, so each is a plain loop of shifts and masks the
    // compiler vectorises, with no depth test per pixel.
    fn convert_with(line: &[u8], converted: &mut [u32], depth: ColorDepth) {
        for (value, pixel) in converted.iter_mut().zip(line.chunks_exact(4)) {
            let pixel = u32::from_le_bytes(pixel.try_into().expect("4 bytes"));
            *value = depth.convert_word(pixel);
        }
    }
    match depth {
        ColorDepth::Bpp15 => convert_with(line, converted, ColorDepth::Bpp15),
        ColorDepth::Bpp16 => convert_with(line, converted, ColorDepth::Bpp16),
        ColorDepth::Bpp24 => convert_with(line, converted, ColorDepth::Bpp24),
    }
}

/// The first position from `from` where three equal pixels start: shorter
/// runs are cheaper inside a colour image.
fn find_run_of_three(pixels: &[u32], from: usize) -> Option<usize> {
    let mut at = from;
    // Eight candidates per step, compared without branches so the step
    // vectorises; the last few one by one.
    while at + 10 <= pixels.len() {
        let window: &[u32; 10] = pixels[at..at + 10].try_into().expect("ten pixels");
        let mut found = 0u32;
        for index in 0..8 {
            let three = (window[index] == window[index + 1]) & (window[index] == window[index + 2]);
            found |= u32::from(three) << index;
        }
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 8;
    }
    pixels[at..]
        .windows(3)
        .position(|three| three[0] == three[1] && three[1] == three[2])
        .map(|offset| at + offset)
}

/// How many pixels from `start` equal the one at `start`.
fn run_length(pixels: &[u32], start: usize) -> usize {
    let value = pixels[start];
    let mut end = start + 1;
    // Eight pixels per step while all of them match, tested without a
    // branch per pixel; then one by one up to the first that differs.
    while let Some(block) = pixels.get(end..end + 8) {
        if block
            .iter()
            .fold(0, |differs, &pixel| differs | (pixel ^ value))
            != 0
        {
            break;
        }
        end += 8;
    }
    end + pixels[end..]
        .iter()
        .take_while(|&&pixel| pixel == value)
        .count()
        - start
}

fn write_image(pixels: &[u32], depth: ColorDepth, out: &mut Vec<u8>) {
    // Each order carries at most 65535 pixels.
    let size = depth.bytes_per_pixel();
    for chunk in pixels.chunks(0xFFFF) {
        write_order(REGULAR_COLOR_IMAGE, MEGA_MEGA_COLOR_IMAGE, chunk.len(), out);
        // Sized once, then filled with fixed-size copies: no length check
        // and no copy call per pixel.
        let start = out.len();
        out.resize(start + chunk.len() * size, 0);
        let bytes = &mut out[start..];
        if size == 2 {
            for (bytes, &pixel) in bytes.chunks_exact_mut(2).zip(chunk) {
                bytes.copy_from_slice(&(pixel as u16).to_le_bytes());
            }
        } else {
            for (bytes, &pixel) in bytes.chunks_exact_mut(3).zip(chunk) {
                bytes.copy_from_slice(&pixel.to_le_bytes()[..3]);
            }
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
    fn conversion_keeps_each_channels_top_bits() {
        for pixel in 0..1u32 << 24 {
            let [b, g, r, _] = pixel.to_le_bytes();
            let (r, g, b) = (u32::from(r), u32::from(g), u32::from(b));
            let want = [
                ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3),
                ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3),
                (r << 16) | (g << 8) | b,
            ];
            for (depth, want) in [ColorDepth::Bpp15, ColorDepth::Bpp16, ColorDepth::Bpp24]
                .into_iter()
                .zip(want)
            {
                // The fourth byte is ignored.
                assert_eq!(depth.convert_word(pixel | 0xAB00_0000), want, "{pixel:06x}");
            }
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
