//! QOI, "The Quite OK Image Format"
//! ([specification 1.0](https://qoiformat.org/qoi-specification.pdf)): the
//! payload of IronRDP's QOI codec, one standard 3-channel image per
//! rectangle (DESIGN.md, Graphics).
//!
//! The encoder reads B, G, R, X rows directly and writes the op stream in
//! one pass. The fourth byte is dropped: alpha is 255 throughout, the value
//! the spec starts the previous pixel with, so QOI_OP_RGBA is never needed.

use crate::{EncodeError, Image};

/// The codecGUID of IronRDP's QOI codec, {4dae9af8-b399-4df6-b43a-662fd9c0f5d6}
/// (DESIGN.md), in the order TS_BITMAPCODEC carries it: Data1, Data2 and
/// Data3 little-endian, then Data4's eight bytes as written. Its codec
/// properties are empty.
pub const QOI_CODEC_GUID: [u8; 16] = [
    0xf8, 0x9a, 0xae, 0x4d, 0x99, 0xb3, 0xf6, 0x4d, 0xb4, 0x3a, 0x66, 0x2f, 0xd9, 0xc0, 0xf5, 0xd6,
];

/// qoi_header: magic, width, height (both big-endian), channels, colorspace.
const HEADER_LEN: usize = 14;
const MAGIC: &[u8; 4] = b"qoif";
/// RGB: the source's fourth byte is not sent.
const CHANNELS: u8 = 3;
/// sRGB with linear alpha; informative only.
const COLORSPACE: u8 = 0;
/// Seven 0x00 bytes and a 0x01 close the stream.
const END_MARKER: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 1];

/// Op tags (two-bit tags in the top bits, eight-bit tags whole).
const OP_DIFF: u8 = 0x40;
const OP_LUMA: u8 = 0x80;
const OP_RUN: u8 = 0xC0;
const OP_RGB: u8 = 0xFE;
/// The longest run one QOI_OP_RUN holds: lengths 63 and 64 would collide
/// with the QOI_OP_RGB and QOI_OP_RGBA tags.
const MAX_RUN: u8 = 62;

/// The reference decoder refuses images of more pixels than this
/// (QOI_PIXELS_MAX), so no client should be sent one.
const MAX_PIXELS: usize = 400_000_000;

/// An index slot no pixel matches: pixels are held as 0x00RRGGBB, and the
/// decoder's empty slots (all zero, alpha included) match no pixel of ours
/// either, since ours all have alpha 255.
const EMPTY_SLOT: u32 = u32::MAX;

/// Appends the QOI image of the rectangle (`x`, `y`, `width`, `height`) of
/// `image` to `out`: header, ops, end marker.
///
/// An empty rectangle is [`EncodeError::Unsupported`]: the reference
/// encoder refuses zero sizes, and so may a client's decoder.
pub fn encode_qoi(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    image.check_rect(x, y, width, height)?;
    let (Ok(wire_width), Ok(wire_height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(EncodeError::Unsupported);
    };
    if width == 0 || height == 0 || width.saturating_mul(height) > MAX_PIXELS {
        return Err(EncodeError::Unsupported);
    }
    out.reserve(HEADER_LEN + GROW_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&wire_width.to_be_bytes());
    out.extend_from_slice(&wire_height.to_be_bytes());
    out.extend_from_slice(&[CHANNELS, COLORSPACE]);

    let mut ops = Ops {
        index: [EMPTY_SLOT; 64],
        // The spec's starting pixel: r = g = b = 0, a = 255.
        previous: 0,
        run: 0,
    };
    let row_len = width * 4;
    // Ops are written through a slice with a cursor (kept in a register,
    // unlike `push`'s length). A row takes at most 4 bytes a pixel (a run
    // op is charged to the run's first pixel, which wrote nothing) plus one
    // for a run carried into it; `out` is grown ahead only when less than
    // that is left, so the zero fill stays close to what is written.
    let mut written = out.len();
    for row in y..y + height {
        if out.len() - written < row_len + 1 {
            out.resize(written + (row_len + 1).max(GROW_BYTES), 0);
        }
        // INVARIANT: check_rect keeps every row of the rectangle in the data.
        let first = row * image.stride + x * 4;
        written = ops.encode_row(&image.data[first..first + row_len], out, written);
    }
    out.truncate(written);
    if ops.run > 0 {
        out.push(OP_RUN | (ops.run - 1));
    }
    out.extend_from_slice(&END_MARKER);
    Ok(())
}

/// The least `out` is grown by when a row might not fit.
const GROW_BYTES: usize = 4096;

/// The encoder's state, carried from row to row: the stream does not know
/// about rows.
struct Ops {
    /// The spec's array of previously seen pixels, by hash position. It may
    /// lack pixels the decoder's holds (the decoder also files the starting
    /// pixel after a leading run) but never disagrees on a slot it fills.
    index: [u32; 64],
    /// The previous pixel as 0x00RRGGBB.
    previous: u32,
    /// Pixels equal to `previous` not yet written, below MAX_RUN.
    run: u8,
}

/// Pixel `at` of a row of B, G, R, X as 0x00RRGGBB.
fn pixel(row: &[u8], at: usize) -> u32 {
    let bytes = &row[at * 4..at * 4 + 4];
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x00FF_FFFF
}

impl Ops {
    /// Writes the ops for one row of B, G, R, X pixels into `buffer` from
    /// `at` on, and returns where they end.
    fn encode_row(&mut self, row: &[u8], buffer: &mut [u8], mut at: usize) -> usize {
        // Locals, so they stay in registers; the index is memory anyway.
        let (mut previous, mut run) = (self.previous, self.run);
        let index = &mut self.index;
        let pixels = row.len() / 4;
        let mut column = 0;
        while column < pixels {
            let value = pixel(row, column);
            // Desktop content is mostly runs: test them first, and take
            // all of one in a tight loop.
            if value == previous {
                let mut end = column + 1;
                while end < pixels && pixel(row, end) == previous {
                    end += 1;
                }
                let mut length = usize::from(run) + (end - column);
                while length >= usize::from(MAX_RUN) {
                    buffer[at] = OP_RUN | (MAX_RUN - 1);
                    at += 1;
                    length -= usize::from(MAX_RUN);
                }
                // INVARIANT: below MAX_RUN after the loop.
                run = length as u8;
                column = end;
                continue;
            }
            column += 1;
            if run > 0 {
                buffer[at] = OP_RUN | (run - 1);
                at += 1;
                run = 0;
            }
            let [b, g, r, _] = value.to_le_bytes();
            // index_position = (r * 3 + g * 5 + b * 7 + a * 11) % 64, with
            // a = 255; wrapping byte arithmetic keeps the low six bits.
            let hash = r
                .wrapping_mul(3)
                .wrapping_add(g.wrapping_mul(5))
                .wrapping_add(b.wrapping_mul(7))
                .wrapping_add(255u8.wrapping_mul(11))
                & 63;
            let slot = &mut index[usize::from(hash)];
            if *slot == value {
                // QOI_OP_INDEX: tag 0b00, the position.
                buffer[at] = hash;
                at += 1;
                previous = value;
                continue;
            }
            *slot = value;
            let [previous_b, previous_g, previous_r, _] = previous.to_le_bytes();
            previous = value;
            // Differences wrap around, as the spec says ("1 - 2" is 255).
            let dr = r.wrapping_sub(previous_r);
            let dg = g.wrapping_sub(previous_g);
            let db = b.wrapping_sub(previous_b);
            // QOI_OP_DIFF: each difference in -2..=1, biased by 2.
            let (diff_r, diff_g, diff_b) =
                (dr.wrapping_add(2), dg.wrapping_add(2), db.wrapping_add(2));
            if diff_r | diff_g | diff_b < 4 {
                buffer[at] = OP_DIFF | diff_r << 4 | diff_g << 2 | diff_b;
                at += 1;
                continue;
            }
            // QOI_OP_LUMA: green in -32..=31 biased by 32, red and blue
            // relative to green in -8..=7 biased by 8.
            let luma_g = dg.wrapping_add(32);
            let luma_r = dr.wrapping_sub(dg).wrapping_add(8);
            let luma_b = db.wrapping_sub(dg).wrapping_add(8);
            if luma_g < 64 && luma_r | luma_b < 16 {
                buffer[at..at + 2].copy_from_slice(&[OP_LUMA | luma_g, luma_r << 4 | luma_b]);
                at += 2;
            } else {
                buffer[at..at + 4].copy_from_slice(&[OP_RGB, r, g, b]);
                at += 4;
            }
        }
        (self.previous, self.run) = (previous, run);
        at
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes with the `qoi` crate and checks the pixels are the source's
    /// R, G, B.
    pub(crate) fn assert_decodes_to(
        encoded: &[u8],
        image: &Image<'_>,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) {
        let (header, pixels) = qoi::decode_to_vec(encoded).expect("decodes");
        assert_eq!((header.width, header.height), (width as u32, height as u32));
        assert_eq!(header.channels, qoi::Channels::Rgb);
        let mut expected = Vec::with_capacity(width * height * 3);
        for row in y..y + height {
            let start = row * image.stride + x * 4;
            for pixel in image.data[start..start + width * 4].chunks_exact(4) {
                expected.extend_from_slice(&[pixel[2], pixel[1], pixel[0]]);
            }
        }
        assert!(pixels == expected, "pixels differ");
    }

    /// A small deterministic generator (xorshift), so failures replay.
    pub(crate) struct Random(u64);

    impl Random {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(crate) fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    /// Pixels of one of several kinds, so every op is exercised: noise,
    /// flat areas with long runs, small and medium steps, a small palette
    /// (index hits), gradients.
    pub(crate) fn content(random: &mut Random, kind: usize, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        let mut colour = [0u8; 4];
        let palette: Vec<[u8; 4]> = (0..5)
            .map(|_| {
                random.next().to_le_bytes()[..4]
                    .try_into()
                    .expect("four bytes")
            })
            .collect();
        for (at, pixel) in data.chunks_exact_mut(4).enumerate() {
            let roll = random.next();
            match kind {
                0 => colour = roll.to_le_bytes()[..4].try_into().expect("four bytes"),
                1 => {
                    if roll % 97 == 0 {
                        colour = palette[(roll >> 8) as usize % palette.len()];
                    }
                }
                2 => {
                    for (channel, shift) in colour.iter_mut().zip([8, 16, 24, 32]) {
                        let step = ((roll >> shift) % 5) as u8;
                        *channel = channel.wrapping_add(step).wrapping_sub(2);
                    }
                }
                3 => {
                    let green = ((roll >> 8) % 64) as u8;
                    let red = ((roll >> 16) % 16) as u8;
                    let blue = ((roll >> 24) % 16) as u8;
                    colour[1] = colour[1].wrapping_add(green).wrapping_sub(32);
                    colour[2] = colour[2]
                        .wrapping_add(green)
                        .wrapping_sub(32)
                        .wrapping_add(red)
                        .wrapping_sub(8);
                    colour[0] = colour[0]
                        .wrapping_add(green)
                        .wrapping_sub(32)
                        .wrapping_add(blue)
                        .wrapping_sub(8);
                }
                4 => colour = palette[roll as usize % palette.len()],
                5 => colour = [(at % 256) as u8, (at / 7 % 256) as u8, 0, roll as u8],
                _ => colour = [0, 0, 0, roll as u8],
            }
            pixel.copy_from_slice(&colour);
        }
        data
    }

    #[test]
    fn guid_bytes_are_in_wire_order() {
        // {4dae9af8-b399-4df6-b43a-662fd9c0f5d6}
        assert_eq!(
            QOI_CODEC_GUID,
            [
                0xF8, 0x9A, 0xAE, 0x4D, // Data1 0x4dae9af8, little-endian
                0x99, 0xB3, // Data2 0xb399
                0xF6, 0x4D, // Data3 0x4df6
                0xB4, 0x3A, 0x66, 0x2F, 0xD9, 0xC0, 0xF5, 0xD6, // Data4
            ]
        );
    }

    #[test]
    fn header_and_end_marker() {
        let data = [10, 100, 200, 0, 50, 20, 90, 0];
        let image = Image {
            width: 2,
            height: 1,
            stride: 8,
            data: &data,
        };
        let mut out = vec![0xAA];
        encode_qoi(&image, 0, 0, 2, 1, &mut out).expect("in bounds");
        assert_eq!(out[0], 0xAA, "appends");
        assert_eq!(
            &out[1..15],
            &[b'q', b'o', b'i', b'f', 0, 0, 0, 2, 0, 0, 0, 1, 3, 0]
        );
        // Two pixels far from black and from each other: QOI_OP_RGB twice.
        assert_eq!(&out[15..23], &[0xFE, 200, 100, 10, 0xFE, 90, 20, 50]);
        assert_eq!(&out[23..], &END_MARKER);
    }

    #[test]
    fn each_op_as_the_spec_writes_it() {
        // B, G, R, X: black (a run from the starting pixel), a small step
        // (diff), a medium one (luma), a big one (rgb), black again (index
        // miss: the leading run filed nothing), the step again (index hit),
        // and 70 equal pixels (a full run and a short one).
        let mut pixels = vec![
            [0, 0, 0, 9],
            [1, 0, 255, 9],  // r -1, g 0, b +1
            [11, 20, 30, 9], // r-g +11: rgb
            [13, 30, 31, 9], // g +10, r-g -9: rgb
            [14, 31, 32, 9], // diff +1 +1 +1
            [20, 40, 35, 9], // g +9, r-g -6, b-g -3: luma
            [0, 0, 0, 9],    // rgb (black never filed)
            [1, 0, 255, 9],  // index hit
        ];
        pixels.extend(std::iter::repeat_n([1, 0, 255, 0], 70));
        let data: Vec<u8> = pixels.concat();
        let image = Image {
            width: pixels.len(),
            height: 1,
            stride: data.len(),
            data: &data,
        };
        let mut out = Vec::new();
        encode_qoi(&image, 0, 0, pixels.len(), 1, &mut out).expect("in bounds");
        let hash = |[b, g, r]: [u32; 3]| ((r * 3 + g * 5 + b * 7 + 255 * 11) % 64) as u8;
        let expected: Vec<u8> = [
            &[0xC0][..],                                   // run of 1
            &[0x40 | 1 << 4 | 2 << 2 | 3],                 // diff
            &[0xFE, 30, 20, 11],                           // rgb
            &[0xFE, 31, 30, 13],                           // rgb
            &[0x40 | 3 << 4 | 3 << 2 | 3],                 // diff
            &[0x80 | (9 + 32), (-6i8 + 8) as u8 * 16 + 5], // luma
            &[0xFE, 0, 0, 0],                              // rgb
            &[hash([1, 0, 255])],                          // index
            &[0xC0 | 61, 0xC0 | 7],                        // runs 62, 8
        ]
        .concat();
        assert_eq!(&out[14..out.len() - 8], &expected[..]);
        assert_decodes_to(&out, &image, 0, 0, pixels.len(), 1);
    }

    #[test]
    fn runs_continue_across_rows_and_rects_use_the_stride() {
        let (width, height, stride) = (9, 7, 9 * 4 + 12);
        let mut data = vec![0x55u8; stride * height];
        for (at, byte) in data.iter_mut().enumerate() {
            if at % 37 == 0 {
                *byte = at as u8;
            }
        }
        let image = Image {
            width,
            height,
            stride,
            data: &data,
        };
        for (x, y, w, h) in [(0, 0, 9, 7), (2, 1, 5, 4), (8, 6, 1, 1), (0, 3, 9, 1)] {
            let mut out = Vec::new();
            encode_qoi(&image, x, y, w, h, &mut out).expect("in bounds");
            assert_decodes_to(&out, &image, x, y, w, h);
        }
    }

    #[test]
    fn rejects_rects_outside_and_empty_ones() {
        let data = vec![0u8; 4 * 4 * 4];
        let image = Image {
            width: 4,
            height: 4,
            stride: 16,
            data: &data,
        };
        let mut out = Vec::new();
        for (x, y, w, h) in [
            (0, 0, 5, 1),
            (1, 0, 4, 1),
            (0, 4, 1, 1),
            (0, 1, 1, 4),
            (usize::MAX, 0, 2, 1),
            (0, usize::MAX, 1, 2),
        ] {
            assert_eq!(
                encode_qoi(&image, x, y, w, h, &mut out),
                Err(EncodeError::OutOfBounds)
            );
        }
        for (w, h) in [(0, 1), (1, 0), (0, 0)] {
            assert_eq!(
                encode_qoi(&image, 0, 0, w, h, &mut out),
                Err(EncodeError::Unsupported)
            );
        }
        let short = Image {
            data: &data[..data.len() - 1],
            ..image
        };
        assert_eq!(
            encode_qoi(&short, 0, 0, 1, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn random_sizes_strides_and_content_decode_exactly() {
        let mut random = Random::new(0x510f_2024);
        let mut out = Vec::new();
        for case in 0..300 {
            let width = match case % 4 {
                0 => 1 + random.below(8),
                1 => 1 + 2 * random.below(300),
                2 => 1 + random.below(4096),
                _ => 4096 - random.below(3),
            };
            let height = 1 + random.below(if width > 512 { 4 } else { 40 });
            let stride = width * 4 + random.below(3) * 4 + random.below(4);
            let len = stride * (height - 1) + width * 4;
            let kind = random.below(7);
            let data = content(&mut random, kind, len.div_ceil(4) * 4);
            let image = Image {
                width,
                height,
                stride,
                data: &data[..len],
            };
            let (x, y) = (random.below(width), random.below(height));
            let (w, h) = (1 + random.below(width - x), 1 + random.below(height - y));
            for (x, y, w, h) in [(0, 0, width, height), (x, y, w, h)] {
                out.clear();
                encode_qoi(&image, x, y, w, h, &mut out).expect("in bounds");
                assert_decodes_to(&out, &image, x, y, w, h);
            }
        }
    }
}
