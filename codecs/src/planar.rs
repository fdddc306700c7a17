//! RDP 6.0 planar bitmap compression, lossless:
//! [MS-RDPEGDI 2.2.2.5.1](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpegdi/3afbea5f-bbd0-46b6-8fdd-d5e6a1c8a0c6).
//!
//! The picture is split into red, green and blue planes, and for clients
//! that need one an opaque alpha plane before them (the source's fourth
//! byte is ignored either way). With RLE, each plane's first
//! scanline is kept as is and later scanlines as deltas to the one before,
//! mapped to sign-magnitude bytes; every scanline is then cut into segments
//! of raw bytes followed by a run of the last value. Without alpha, when
//! RLE would not be smaller, the planes are sent raw. Scanlines go
//! bottom-up, as bitmap updates require.

use std::ops::Range;

use crate::{EncodeError, Image};

/// FormatHeader bits.
const RLE: u8 = 0x10;
const NO_ALPHA: u8 = 0x20;

/// Appends the planar encoding of the rectangle (`x`, `y`, `width`,
/// `height`) of `image` to `out`, without an alpha plane (for clients that
/// set DRAW_ALLOW_SKIP_ALPHA). `scratch` is reused between calls.
pub fn encode_planar(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(image, (x, y, width, height), false, false, scratch, out)
}

/// Like [`encode_planar`] with scanlines top-down, as the Graphics
/// Pipeline's planar codec (MS-RDPEGFX 2.2.4.3) carries them.
pub fn encode_planar_top_down(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(image, (x, y, width, height), false, true, scratch, out)
}

/// Like [`encode_planar`], with an opaque alpha plane (every value 0xFF)
/// before the colour planes, for clients that did not set
/// DRAW_ALLOW_SKIP_ALPHA in their Bitmap Capability Set (MS-RDPBCGR
/// 2.2.7.1.2). Always RLE: raw planes would be valid too, but rdesktop 1.9
/// decodes nothing else (its FormatHeader must be exactly 0x10), and RLE
/// costs at most one control byte per 15 values more than raw, while the
/// alpha plane shrinks to two bytes or so per scanline.
pub fn encode_planar_with_alpha(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    encode(image, (x, y, width, height), true, false, scratch, out)
}

fn encode(
    image: &Image<'_>,
    (x, y, width, height): (usize, usize, usize, usize),
    alpha: bool,
    top_down: bool,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    image.check_rect(x, y, width, height)?;
    // Planes in wire order (alpha, red, green, blue), scanlines bottom-up
    // (or top-down for the Graphics Pipeline).
    let plane_len = width * height;
    let plane_count = if alpha { 4 } else { 3 };
    // RLE is kept only while its planes (after the header byte) stay
    // shorter than this; raw planes plus header and pad byte are as long.
    // With alpha it must not stop: every control byte stands for at least
    // one value, so RLE planes never reach twice the raw length.
    let limit = if alpha {
        plane_len * plane_count * 2 + 1
    } else {
        plane_len * 3 + 1
    };
    // The three planes, one padded scanline, then room for RLE planes up
    // to the limit plus one more scanline's worst case (every value raw,
    // a control byte per three values) and the overreach of a raw copy.
    // Every byte that counts is written before it is read (what wide reads
    // see past a scanline is masked off), so the buffer only grows and is
    // not cleared.
    let encoded_len = limit + 2 * width + 32;
    let needed = plane_len * plane_count + width + PAD + encoded_len;
    if scratch.len() < needed {
        scratch.resize(needed, 0);
    }
    let (planes, rest) = scratch.split_at_mut(plane_len * plane_count);
    let (line, encoded) = rest.split_at_mut(width + PAD);
    let (alpha_plane, planes) = planes.split_at_mut(plane_len * (plane_count - 3));
    alpha_plane.fill(0xFF);
    let (red, rest) = planes.split_at_mut(plane_len);
    let (green, blue) = rest.split_at_mut(plane_len);
    let flat = flat_colour(image, x, y, width, height);
    if let Some([blue_value, green_value, red_value]) = flat {
        red.fill(red_value);
        green.fill(green_value);
        blue.fill(blue_value);
    } else {
        let rows = red
            .chunks_exact_mut(width.max(1))
            .zip(green.chunks_exact_mut(width.max(1)))
            .zip(blue.chunks_exact_mut(width.max(1)));
        for (row, ((red, green), blue)) in rows.enumerate() {
            let source_row = if top_down {
                y + row
            } else {
                y + height - 1 - row
            };
            let start = source_row * image.stride + x * 4;
            // INVARIANT: check_rect proved the rectangle's rows lie in the data.
            split_row(&image.data[start..start + width * 4], red, green, blue);
        }
    }
    let mut segments = Segments {
        bytes: encoded,
        len: 0,
    };
    // Stops at the first plane that reaches the limit: RLE can only grow.
    let alpha_rle = alpha_plane.is_empty()
        || encode_plane_rle(alpha_plane, width, height, true, line, limit, &mut segments);
    let smaller = alpha_rle
        && [&*red, &*green, &*blue].into_iter().all(|plane| {
            let flat = flat.is_some();
            encode_plane_rle(plane, width, height, flat, line, limit, &mut segments)
        });
    // INVARIANT: with alpha the limit is out of reach, so RLE always holds.
    if smaller {
        out.push(if alpha { RLE } else { RLE | NO_ALPHA });
        out.extend_from_slice(&segments.bytes[..segments.len]);
    } else {
        // Raw planes plus the pad byte the format requires after them.
        out.push(NO_ALPHA);
        out.extend_from_slice(&scratch[..plane_len * 3]);
        out.push(0);
    }
    Ok(())
}

/// The B, G, R colour of a non-empty rectangle of pixels that are all that
/// colour (the fourth byte aside): a flat tile, common on desktops.
fn flat_colour(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
) -> Option<[u8; 3]> {
    if width == 0 || height == 0 {
        return None;
    }
    let row = |row: usize| {
        let start = row * image.stride + x * 4;
        // INVARIANT: check_rect proved the rectangle's rows lie in the data.
        &image.data[start..start + width * 4]
    };
    let colour = u32::from_le_bytes(row(y)[..4].try_into().expect("4 bytes")) & 0xFF_FFFF;
    for row in (y..y + height).map(row) {
        // Whole rows without an early exit, so the loop vectorises; most
        // tiles that are not flat differ in their first row.
        let differs = row.chunks_exact(4).fold(0, |differs, pixel| {
            differs | (u32::from_le_bytes(pixel.try_into().expect("4 bytes")) ^ colour)
        });
        if differs & 0xFF_FFFF != 0 {
            return None;
        }
    }
    let [blue, green, red, _] = colour.to_le_bytes();
    Some([blue, green, red])
}

/// Splits one row of B, G, R, X pixels into its red, green and blue values.
fn split_row(source: &[u8], red: &mut [u8], green: &mut [u8], blue: &mut [u8]) {
    // Blocks of 16 pixels with fixed-size arrays: the compiler turns each
    // into a few vector shifts and packs instead of 48 byte moves.
    let mut pixels = source.chunks_exact(64);
    let mut reds = red.chunks_exact_mut(16);
    let mut greens = green.chunks_exact_mut(16);
    let mut blues = blue.chunks_exact_mut(16);
    let blocks = (&mut pixels)
        .zip(&mut reds)
        .zip(&mut greens)
        .zip(&mut blues);
    for (((pixels, red), green), blue) in blocks {
        let pixels: &[u8; 64] = pixels.try_into().expect("16 pixels");
        let red: &mut [u8; 16] = red.try_into().expect("16 values");
        let green: &mut [u8; 16] = green.try_into().expect("16 values");
        let blue: &mut [u8; 16] = blue.try_into().expect("16 values");
        for index in 0..16 {
            let pixel = u32::from_le_bytes(
                pixels[index * 4..index * 4 + 4]
                    .try_into()
                    .expect("4 bytes"),
            );
            blue[index] = pixel as u8;
            green[index] = (pixel >> 8) as u8;
            red[index] = (pixel >> 16) as u8;
        }
    }
    let rest = pixels
        .remainder()
        .chunks_exact(4)
        .zip(reds.into_remainder())
        .zip(greens.into_remainder())
        .zip(blues.into_remainder());
    for (((pixel, red), green), blue) in rest {
        *blue = pixel[0];
        *green = pixel[1];
        *red = pixel[2];
    }
}

/// Bytes after a scanline that wide reads may touch: the scan reads eight
/// bytes from up to three past a candidate position, and a run is measured
/// and a raw chunk copied 16 bytes at a time from a position inside the
/// scanline.
const PAD: usize = 16;

/// RLE planes being written into a buffer with room for the worst case.
struct Segments<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl Segments<'_> {
    /// A control byte for `count` (at most 15) raw values from `line[at..]`
    /// and an inline run of `run` (0 or 3 to 15), then the values.
    fn raw_chunk(&mut self, line: &[u8], at: usize, count: usize, run: usize) {
        self.bytes[self.len] = ((count << 4) | run) as u8;
        // One fixed 16-byte copy instead of a call for a short one; the
        // bytes past `count` are overwritten next or never kept.
        self.bytes[self.len + 1..self.len + 17].copy_from_slice(&line[at..at + 16]);
        self.len += 1 + count;
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }
}

/// RLE-encodes one plane (RDP6_RLE_PLANE).
/// `line` (one scanline plus [`PAD`] bytes) holds each scanline in turn:
/// the first as is, later ones as deltas. `flat` says every scanline is the
/// same as the one before. Returns false, leaving the plane unfinished, once
/// `out` reaches `limit` bytes.
fn encode_plane_rle(
    plane: &[u8],
    width: usize,
    height: usize,
    flat: bool,
    line: &mut [u8],
    limit: usize,
    out: &mut Segments<'_>,
) -> bool {
    if height == 0 {
        return true;
    }
    line[..width].copy_from_slice(&plane[..width]);
    encode_scanline(line, width, out);
    // INVARIANT: checking after every scanline keeps `out` within one
    // scanline's worst case of the limit, which its buffer has room for.
    if out.len >= limit {
        return false;
    }
    for row in 1..height {
        if flat && width >= 3 {
            // All deltas are 0: the scanline is one run of the implicit 0,
            // which is what encode_scanline would find, without the scan.
            write_segments(line, 0..0, width, out);
        } else {
            let current = &plane[row * width..(row + 1) * width];
            let previous = &plane[(row - 1) * width..row * width];
            for ((value, &now), &before) in line.iter_mut().zip(current).zip(previous) {
                let delta = now.wrapping_sub(before) as i8;
                // Sign-magnitude: 2d for d >= 0, -2d - 1 for d < 0, written
                // without a branch so the loop vectorises.
                *value = ((delta << 1) ^ (delta >> 7)) as u8;
            }
            encode_scanline(line, width, out);
        }
        if out.len >= limit {
            return false;
        }
    }
    true
}

/// Cuts the first `len` values of `line` into segments: up to 15 raw
/// bytes, then a run that repeats the last value written (0 at the start
/// of a scanline). The bytes after `len` are read but never matter.
///
/// A run costs one value written raw to introduce it, so only runs of four
/// or more pay, with one exception: a scanline that starts with zeros
/// repeats the implicit 0 without introducing it, so three pay there.
fn encode_scanline(line: &[u8], len: usize, out: &mut Segments<'_>) {
    // The first value not written yet.
    let mut raw_start = 0;
    if len >= 3 && line[..3] == [0, 0, 0] {
        raw_start = run_length(line, len, 0);
        write_segments(line, 0..0, raw_start, out);
    }
    // INVARIANT: `raw_start` is 0 or follows a run, so it starts a maximal
    // run of equal values, and so does the first run of four found from it.
    while let Some(start) = find_run_of_four(line, len, raw_start) {
        let run = run_length(line, len, start);
        write_segments(line, raw_start..start + 1, run - 1, out);
        raw_start = start + run;
    }
    if raw_start < len {
        write_segments(line, raw_start..len, 0, out);
    }
}

/// Eight bytes of `line` from `at`, the first in the low byte.
fn word(line: &[u8], at: usize) -> u64 {
    // INVARIANT: callers stay below `len + PAD - 8`, inside `line`.
    u64::from_le_bytes(line[at..at + 8].try_into().expect("eight bytes"))
}

/// The high bit of each byte of `bytes` that is zero, and nothing else.
fn zero_bytes(bytes: u64) -> u64 {
    const LOW_SEVEN: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    // Adding 0x7F to the low seven bits carries into the high bit exactly
    // when one of them is set, and never into the next byte.
    !(((bytes & LOW_SEVEN) + LOW_SEVEN) | bytes | LOW_SEVEN)
}

/// The first position from `from` where four equal values start, eight
/// positions per step.
fn find_run_of_four(line: &[u8], len: usize, from: usize) -> Option<usize> {
    let mut at = from;
    while at + 3 < len {
        let first = word(line, at);
        let differs = (first ^ word(line, at + 1))
            | (first ^ word(line, at + 2))
            | (first ^ word(line, at + 3));
        let equal = zero_bytes(differs);
        if equal != 0 {
            let start = at + equal.trailing_zeros() as usize / 8;
            // A match that reaches past `len` saw padding; any later one would too.
            return (start + 3 < len).then_some(start);
        }
        at += 8;
    }
    None
}

/// How many values from `start` equal the one at `start`, up to `len`.
fn run_length(line: &[u8], len: usize, start: usize) -> usize {
    let repeated = u64::from(line[start]) * 0x0101_0101_0101_0101;
    let mut end = start + 1;
    // Sixteen values per step: runs are often a whole scanline long.
    while end < len {
        let (low, high) = (word(line, end) ^ repeated, word(line, end + 8) ^ repeated);
        if low | high != 0 {
            end += if low != 0 {
                low.trailing_zeros() as usize / 8
            } else {
                8 + high.trailing_zeros() as usize / 8
            };
            return end.min(len) - start;
        }
        end += 16;
    }
    len - start
}

/// Writes the values `line[raw]` followed by a run of `run` repetitions
/// of the last one.
fn write_segments(line: &[u8], raw: Range<usize>, mut run: usize, out: &mut Segments<'_>) {
    let mut at = raw.start;
    while raw.end - at > 15 {
        out.raw_chunk(line, at, 15, 0);
        at += 15;
    }
    if at < raw.end {
        // The final raw chunk can carry a short run in the same control byte.
        let inline = if (3..=15).contains(&run) { run } else { 0 };
        out.raw_chunk(line, at, raw.end - at, inline);
        run -= inline;
    }
    while run > 0 {
        let mut take = run.min(47);
        // Never leave a remainder of 1 or 2: those lengths have no encoding.
        if matches!(run - take, 1 | 2) {
            take -= 3;
        }
        let control = match take {
            32..=47 => (((take - 32) as u8) << 4) | 2,
            16..=31 => (((take - 16) as u8) << 4) | 1,
            _ => take as u8,
        };
        out.push(control);
        run -= take;
    }
}

/// Decodes planar data into B, G, R, A pixels, top-down, A being 0xFF
/// without an alpha plane (a test decoder: it checks every length and
/// never panics on bad input).
pub fn decode_planar(data: &[u8], width: usize, height: usize) -> Result<Vec<u8>, DecodeError> {
    let (&header, mut rest) = data.split_first().ok_or(DecodeError)?;
    if header & 0x07 != 0 || header & 0x08 != 0 {
        // Colour loss and chroma subsampling are never produced by this encoder.
        return Err(DecodeError);
    }
    let plane_len = width.checked_mul(height).ok_or(DecodeError)?;
    let plane_count = if header & NO_ALPHA != 0 { 3 } else { 4 };
    let mut planes = vec![vec![0u8; plane_len]; plane_count];
    for plane in &mut planes {
        if header & RLE != 0 {
            rest = decode_plane_rle(rest, plane, width, height)?;
        } else {
            let (raw, tail) = rest.split_at_checked(plane_len).ok_or(DecodeError)?;
            plane.copy_from_slice(raw);
            rest = tail;
        }
    }
    if header & RLE == 0 && rest.len() != 1 {
        return Err(DecodeError);
    }
    if header & RLE != 0 && !rest.is_empty() {
        return Err(DecodeError);
    }
    let colour = &planes[plane_count - 3..];
    let mut pixels = vec![0u8; plane_len * 4];
    for row in 0..height {
        // Bottom-up on the wire.
        let source = (height - 1 - row) * width;
        for column in 0..width {
            let at = (row * width + column) * 4;
            pixels[at] = colour[2][source + column];
            pixels[at + 1] = colour[1][source + column];
            pixels[at + 2] = colour[0][source + column];
            pixels[at + 3] = match plane_count {
                4 => planes[0][source + column],
                _ => 0xFF,
            };
        }
    }
    Ok(pixels)
}

fn decode_plane_rle<'a>(
    mut data: &'a [u8],
    plane: &mut [u8],
    width: usize,
    height: usize,
) -> Result<&'a [u8], DecodeError> {
    for row in 0..height {
        let mut column = 0;
        let mut last = 0u8;
        while column < width {
            let (&control, tail) = data.split_first().ok_or(DecodeError)?;
            data = tail;
            let mut run = usize::from(control & 0x0F);
            let mut raw = usize::from(control >> 4);
            match run {
                1 => (run, raw) = (16 + raw, 0),
                2 => (run, raw) = (32 + raw, 0),
                _ => {}
            }
            if column + raw + run > width {
                return Err(DecodeError);
            }
            let (bytes, tail) = data.split_at_checked(raw).ok_or(DecodeError)?;
            data = tail;
            for &value in bytes {
                last = value;
                put(plane, row, column, width, value);
                column += 1;
            }
            for _ in 0..run {
                put(plane, row, column, width, last);
                column += 1;
            }
        }
    }
    Ok(data)
}

/// Stores one decoded value: raw on the first scanline, else a
/// sign-magnitude delta to the scanline above.
fn put(plane: &mut [u8], row: usize, column: usize, width: usize, value: u8) {
    let at = row * width + column;
    plane[at] = if row == 0 {
        value
    } else {
        let delta = if value & 1 == 0 {
            (value >> 1) as i16
        } else {
            -((value >> 1) as i16) - 1
        };
        (i16::from(plane[at - width]) + delta) as u8
    };
}

/// Planar data that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(
        width: usize,
        height: usize,
        mut pixel: impl FnMut(usize, usize) -> [u8; 3],
    ) -> usize {
        let mut data = Vec::with_capacity(width * height * 4 + 8);
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
        encode_planar(&image, 0, 0, width, height, &mut scratch, &mut out).unwrap();
        assert!(out.len() <= width * height * 3 + 2, "never larger than raw");
        let decoded = decode_planar(&out, width, height).unwrap();
        for (index, (got, want)) in decoded.chunks(4).zip(data.chunks(4)).enumerate() {
            assert_eq!(&got[..3], &want[..3], "pixel {index} of {width}x{height}");
        }
        out.len()
    }

    #[test]
    fn flat_areas_compress_well() {
        let size = round_trip(64, 64, |_, _| [10, 200, 30]);
        // Two control bytes per scanline and plane (a 47 run and a 17 run).
        assert!(size < 64 * 3 * 3, "{size} bytes for a flat tile");
    }

    #[test]
    fn gradients_and_noise_round_trip() {
        round_trip(64, 64, |x, y| {
            [(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8]
        });
        let mut state = 7u32;
        round_trip(37, 13, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let bytes = state.to_le_bytes();
            [bytes[1], bytes[2], bytes[3]]
        });
        // Runs of every length, including the special 16-47 and > 47 forms.
        for run in [1usize, 2, 3, 15, 16, 17, 31, 32, 33, 47, 48, 49, 50, 100] {
            round_trip(run + 3, 2, |x, y| {
                if x > 1 && x <= run + 1 {
                    [5, 5, 5]
                } else {
                    [x as u8, y as u8, 9]
                }
            });
        }
    }

    #[test]
    fn odd_sizes_and_sub_rectangles() {
        for (width, height) in [(1, 1), (1, 7), (7, 1), (3, 3), (65, 2)] {
            round_trip(width, height, |x, y| {
                [(x * 31) as u8, (y * 17) as u8, (x ^ y) as u8]
            });
        }
        let data: Vec<u8> = (0..10 * 10 * 4).map(|i| (i % 251) as u8).collect();
        let image = Image {
            width: 10,
            height: 10,
            stride: 40,
            data: &data,
        };
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        encode_planar(&image, 3, 4, 5, 6, &mut scratch, &mut out).unwrap();
        let decoded = decode_planar(&out, 5, 6).unwrap();
        assert_eq!(&decoded[..3], &data[(4 * 10 + 3) * 4..(4 * 10 + 3) * 4 + 3]);
        assert!(encode_planar(&image, 8, 0, 5, 1, &mut scratch, &mut out).is_err());
    }

    /// With an alpha plane: always RLE (FormatHeader 0x10, what rdesktop
    /// decodes), opaque, and the colour planes exactly as without alpha
    /// whenever that chose RLE too.
    #[test]
    fn alpha_plane_is_opaque_and_always_rle() {
        let mut state = 11u32;
        let mut noise = move || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 8) as u8
        };
        let cases: Vec<(usize, usize, Vec<u8>)> = [(64, 64), (1, 1), (2, 5), (65, 2), (37, 13)]
            .into_iter()
            .flat_map(|(width, height)| {
                let flat: Vec<u8> = [40, 50, 60, 0].repeat(width * height);
                let gradient: Vec<u8> = (0..width * height)
                    .flat_map(|i| [(i % width * 3) as u8, (i / width * 5) as u8, 7, 0])
                    .collect();
                let noisy: Vec<u8> = (0..width * height * 4).map(|_| noise()).collect();
                [flat, gradient, noisy].map(|data| (width, height, data))
            })
            .collect();
        let (mut scratch, mut with_alpha, mut without) = (Vec::new(), Vec::new(), Vec::new());
        for (width, height, data) in &cases {
            let (width, height) = (*width, *height);
            let image = Image {
                width,
                height,
                stride: width * 4,
                data,
            };
            with_alpha.clear();
            encode_planar_with_alpha(&image, 0, 0, width, height, &mut scratch, &mut with_alpha)
                .unwrap();
            assert_eq!(with_alpha[0], RLE, "{width}x{height}");
            let decoded = decode_planar(&with_alpha, width, height).unwrap();
            for (got, want) in decoded.chunks(4).zip(data.chunks(4)) {
                assert_eq!(got, [want[0], want[1], want[2], 0xFF], "{width}x{height}");
            }
            // Every control byte stands for at least one value.
            assert!(with_alpha.len() <= width * height * 8 + 1);
            without.clear();
            encode_planar(&image, 0, 0, width, height, &mut scratch, &mut without).unwrap();
            if without[0] == RLE | NO_ALPHA {
                assert!(with_alpha.ends_with(&without[1..]), "{width}x{height}");
            }
        }
        // A 64x64 opaque plane: a raw 0xFF and runs on the first scanline,
        // one run of zero deltas per later scanline.
        let flat = &cases[0].2;
        let image = Image {
            width: 64,
            height: 64,
            stride: 256,
            data: flat,
        };
        with_alpha.clear();
        encode_planar_with_alpha(&image, 0, 0, 64, 64, &mut scratch, &mut with_alpha).unwrap();
        without.clear();
        encode_planar(&image, 0, 0, 64, 64, &mut scratch, &mut without).unwrap();
        assert!(
            with_alpha.len() - without.len() < 64 * 3,
            "{}",
            with_alpha.len()
        );
    }

    /// The encoder as first written, one value at a time and RLE in full
    /// before choosing raw: the fast paths must give exactly its bytes.
    fn plain_encode(data: &[u8], width: usize, height: usize) -> Vec<u8> {
        let plane_len = width * height;
        let mut planes = vec![0u8; plane_len * 3];
        for row in 0..height {
            for column in 0..width {
                let at = ((height - 1 - row) * width + column) * 4;
                for plane in 0..3 {
                    planes[plane * plane_len + row * width + column] = data[at + 2 - plane];
                }
            }
        }
        let mut out = vec![RLE | NO_ALPHA];
        for plane in planes.chunks_exact(plane_len.max(1)).take(3) {
            for row in 0..height {
                let values: Vec<u8> = (0..width)
                    .map(|column| {
                        let now = plane[row * width + column];
                        if row == 0 {
                            return now;
                        }
                        let delta = now.wrapping_sub(plane[(row - 1) * width + column]) as i8;
                        if delta >= 0 {
                            delta as u8 * 2
                        } else {
                            (-(i16::from(delta)) * 2 - 1) as u8
                        }
                    })
                    .collect();
                plain_scanline(&values, &mut out);
            }
        }
        // Raw is the header, the planes and a pad byte.
        let raw_len = 1 + plane_len * 3 + 1;
        if out.len() >= raw_len {
            out = vec![NO_ALPHA];
            out.extend_from_slice(&planes);
            out.push(0);
        }
        out
    }

    fn plain_scanline(values: &[u8], out: &mut Vec<u8>) {
        let (mut last, mut raw_start, mut index) = (0u8, 0, 0);
        while index < values.len() {
            let value = values[index];
            let run = values[index..].iter().take_while(|&&v| v == value).count();
            let introduce = usize::from(index > raw_start || value != last);
            if run >= 3 + introduce {
                plain_segments(&values[raw_start..index + introduce], run - introduce, out);
                last = value;
                raw_start = index + run;
            }
            index += run;
        }
        plain_segments(&values[raw_start..], 0, out);
    }

    fn plain_segments(raw: &[u8], mut run: usize, out: &mut Vec<u8>) {
        let chunks: Vec<&[u8]> = raw.chunks(15).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let inline = if index + 1 == chunks.len() && (3..=15).contains(&run) {
                std::mem::take(&mut run)
            } else {
                0
            };
            out.push(((chunk.len() as u8) << 4) | inline as u8);
            out.extend_from_slice(chunk);
        }
        while run > 0 {
            let mut take = run.min(47);
            if matches!(run - take, 1 | 2) {
                take -= 3;
            }
            out.push(match take {
                32..=47 => (((take - 32) as u8) << 4) | 2,
                16..=31 => (((take - 16) as u8) << 4) | 1,
                _ => take as u8,
            });
            run -= take;
        }
    }

    #[test]
    fn same_bytes_as_the_plain_encoder() {
        let mut state = 0x9E37_79B9u32;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        let (mut raw, mut rle, mut flat_raw) = (0, 0, 0);
        for round in 0..3000 {
            let width = 1 + next() as usize % 80;
            let height = 1 + next() as usize % 24;
            // From flat to noise: how often a pixel takes a new value, so
            // some tiles land just either side of the raw size.
            let change = next() % 9;
            let palette = next().to_le_bytes();
            // Every fourth tile is one colour, with the ignored fourth byte
            // still varying: the flat path.
            let flat = round % 4 == 0;
            let mut data = Vec::with_capacity(width * height * 4);
            let mut pixel = [0u8; 4];
            for _ in 0..width * height {
                let random = next();
                if random % 8 < change {
                    pixel = match random >> 29 {
                        0..=3 => (random >> 3).to_le_bytes(),
                        4 => [palette[0], palette[1], palette[2], 0],
                        _ => [pixel[0] ^ 1, pixel[1], pixel[2].wrapping_add(2), 0],
                    };
                }
                if flat {
                    pixel = [palette[0], palette[1], palette[2], random as u8];
                }
                data.extend_from_slice(&pixel);
            }
            let image = Image {
                width,
                height,
                stride: width * 4,
                data: &data,
            };
            out.clear();
            encode_planar(&image, 0, 0, width, height, &mut scratch, &mut out).unwrap();
            let want = plain_encode(&data, width, height);
            assert_eq!(out, want, "round {round}: {width}x{height}");
            if want[0] & RLE == 0 {
                raw += 1;
                flat_raw += usize::from(flat);
            } else {
                rle += 1;
            }
        }
        // Both the early raw fallback and RLE were exercised.
        assert!(raw > 300 && rle > 300, "{raw} raw, {rle} RLE");
        // Flat tiles too small for RLE to pay went raw.
        assert!(flat_raw > 10, "{flat_raw} flat tiles raw");
    }

    #[test]
    fn decoder_rejects_garbage() {
        assert!(decode_planar(&[], 1, 1).is_err());
        assert!(decode_planar(&[RLE | NO_ALPHA, 0xF0], 4, 1).is_err());
        assert!(decode_planar(&[NO_ALPHA, 1, 2], 1, 1).is_err());
        for seed in 0..200u32 {
            let garbage: Vec<u8> = (0..(seed % 50)).map(|i| (i * seed) as u8).collect();
            let _ = decode_planar(&garbage, 4, 3);
        }
    }
}
