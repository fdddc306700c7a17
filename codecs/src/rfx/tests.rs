//! Whole-frame tests: encode, decode with the test decoder, compare.

use super::*;

/// 256x192: a flat background, a horizontal and a vertical gradient, and
/// dark "text" strokes with grey anti-aliasing on white.
fn synthetic_image(width: usize, height: usize) -> Vec<u8> {
    let mut pixels = vec![0u8; width * height * 4];
    for y in 0..height {
        for x in 0..width {
            let rgb = if y < height / 3 {
                [40, 90, 160]
            } else if x < width / 2 {
                let level = (x * 255 / (width / 2)) as u8;
                [level, 255 - level / 2, 128]
            } else if y < 2 * height / 3 {
                let level = ((y - height / 3) * 255 / (height / 3)) as u8;
                [level / 2, level, 200 - level / 4]
            } else {
                // White with strokes: a glyph-like pattern every 8 pixels.
                let (gx, gy) = (x % 8, y % 12);
                if gy < 9 && (gx == 1 || gy == 4 || (gx + gy) % 7 == 0) {
                    [20, 20, 20]
                } else if gy < 9 && gx == 2 {
                    [150, 150, 150]
                } else {
                    [250, 250, 250]
                }
            };
            let at = (y * width + x) * 4;
            pixels[at..at + 4].copy_from_slice(&[rgb[2], rgb[1], rgb[0], 0xFF]);
        }
    }
    pixels
}

fn whole(width: usize, height: usize) -> RfxRect {
    RfxRect {
        x: 0,
        y: 0,
        width: width as u16,
        height: height as u16,
    }
}

fn encode(mode: RlgrMode, image: &Image<'_>, rects: &[RfxRect], include_headers: bool) -> Vec<u8> {
    let mut encoder = RfxEncoder::new(RfxQuant::default(), mode).expect("valid quant");
    let mut out = Vec::new();
    encoder
        .encode_frame(image, rects, include_headers, &mut out)
        .expect("encodes");
    out
}

#[test]
fn synthetic_image_reaches_40_db() {
    let (width, height) = (256, 192);
    let pixels = synthetic_image(width, height);
    let image = Image {
        width,
        height,
        stride: width * 4,
        data: &pixels,
    };
    for mode in [RlgrMode::Rlgr1, RlgrMode::Rlgr3] {
        let encoded = encode(mode, &image, &[whole(width, height)], true);
        let decoded = decode_rfx_message(&encoded).expect("decodes");
        assert_eq!((decoded.width, decoded.height), (width, height));
        let quality = psnr(&pixels, &decoded.pixels).expect("same size");
        println!("{mode:?}: {quality:.2} dB, {} bytes", encoded.len());
        assert!(quality >= 40.0, "{mode:?}: {quality:.2} dB");
        // Far smaller than the raw 196,608 bytes.
        assert!(encoded.len() < 40_000, "{} bytes", encoded.len());
    }
}

/// The size of the frame that carries a 64x64 tile of one colour, and the
/// colour it decodes to.
fn flat_tile_round_trip(rgb: [u8; 3]) -> (usize, [u8; 3]) {
    let pixels: Vec<u8> = [rgb[2], rgb[1], rgb[0], 0xFF].repeat(64 * 64);
    let image = Image {
        width: 64,
        height: 64,
        stride: 256,
        data: &pixels,
    };
    let encoded = encode(RlgrMode::Rlgr1, &image, &[whole(64, 64)], false);
    let decoded =
        decode_rfx_message(&[header_bytes(64, 64, RlgrMode::Rlgr1), encoded.clone()].concat())
            .expect("decodes");
    let first = [decoded.pixels[2], decoded.pixels[1], decoded.pixels[0]];
    assert!(
        decoded
            .pixels
            .chunks_exact(4)
            .all(|pixel| pixel[..3] == decoded.pixels[..3]),
        "{rgb:?}: a flat tile decodes flat"
    );
    (encoded.len(), first)
}

#[test]
fn flat_greys_are_exact_and_colours_within_one_level() {
    // Text, window backgrounds and shadows are mostly greys.
    for level in 0..=255u8 {
        assert_eq!(flat_tile_round_trip([level; 3]).1, [level; 3]);
    }
    // Chroma is quantized to whole levels too, so other colours may be
    // one level off, never more.
    let mut seed = 99u32;
    for _ in 0..500 {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let rgb = [(seed >> 8) as u8, (seed >> 16) as u8, (seed >> 24) as u8];
        let (_, got) = flat_tile_round_trip(rgb);
        for (got, want) in got.into_iter().zip(rgb) {
            assert!(got.abs_diff(want) <= 1, "{rgb:?} came back as {got}");
        }
    }
}

#[test]
fn flat_tiles_cost_a_few_bytes() {
    let (size, _) = flat_tile_round_trip([50, 100, 200]);
    // Frame begin, region, tileset and frame end around one small tile.
    assert!(size < 120, "{size} bytes");
}

fn header_bytes(width: u16, height: u16, mode: RlgrMode) -> Vec<u8> {
    let mut out = Vec::new();
    message::write_headers(&mut out, width, height, mode);
    out
}

/// The header messages, byte for byte from the field definitions of
/// 2.2.2.2.1-2.2.2.2.4.
#[test]
fn header_messages_bytes() {
    let expected: Vec<u8> = [
        // TS_RFX_SYNC: WBT_SYNC, 12 bytes, WF_MAGIC, WF_VERSION_1_0.
        &[
            0xC0, 0xCC, 0x0C, 0, 0, 0, 0xCA, 0xAC, 0xCC, 0xCA, 0x00, 0x01,
        ][..],
        // TS_RFX_CODEC_VERSIONS: one codec, id 1, version 1.0.
        &[0xC1, 0xCC, 0x0A, 0, 0, 0, 0x01, 0x01, 0x00, 0x01],
        // TS_RFX_CHANNELS: one channel, id 0, 1920x1080.
        &[
            0xC2, 0xCC, 0x0C, 0, 0, 0, 0x01, 0x00, 0x80, 0x07, 0x38, 0x04,
        ],
        // TS_RFX_CONTEXT: codec 1, channel 0xFF, ctxId 0, tile size 64,
        // properties: ICT (bit 3), DWT 5/3 (bit 5), RLGR3 (4 << 9), scalar
        // quantization (bit 13).
        &[
            0xC3, 0xCC, 0x0D, 0, 0, 0, 0x01, 0xFF, 0x00, 0x40, 0x00, 0x28, 0x28,
        ],
    ]
    .concat();
    assert_eq!(header_bytes(1920, 1080, RlgrMode::Rlgr3), expected);
    assert_eq!(message::context_properties(RlgrMode::Rlgr1), 0x2228);
}

/// The framing of the spec's annotated data messages (4.2.3): one 64x64
/// tile at (0, 0), RLGR3, quant 66 66 77 88 98, frame 0. The tile data
/// depends on the picture, so only the fields around it are compared.
#[test]
fn data_messages_match_spec_example() {
    let pixels = synthetic_image(64, 64);
    let image = Image {
        width: 64,
        height: 64,
        stride: 256,
        data: &pixels,
    };
    let out = encode(RlgrMode::Rlgr3, &image, &[whole(64, 64)], false);
    // TS_RFX_FRAME_BEGIN.
    let frame_begin = [
        0xC4, 0xCC, 0x0E, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0, 0x01, 0x00,
    ];
    assert_eq!(out[..14], frame_begin);
    // TS_RFX_REGION; the example's regionFlags byte is 0xCD, of which only
    // lrf (bit 0) is defined: this encoder sends just that bit.
    let region = [
        0xC6, 0xCC, 0x17, 0, 0, 0, 0x01, 0x00, 0x01, 0x01, 0x00, 0, 0, 0, 0, 0x40, 0x00, 0x40,
        0x00, 0xC1, 0xCA, 0x01, 0x00,
    ];
    assert_eq!(out[14..37], region);
    // TS_RFX_TILESET up to tilesDataSize, then the quant table.
    let tileset = &out[37..];
    assert_eq!(tileset[..2], [0xC7, 0xCC]);
    assert_eq!(
        tileset[6..18],
        [
            0x01, 0x00, 0xC2, 0xCA, 0x00, 0x00, 0x51, 0x50, 0x01, 0x40, 0x01, 0x00
        ]
    );
    assert_eq!(tileset[22..27], [0x66, 0x66, 0x77, 0x88, 0x98]);
    let tileset_length = u32::from_le_bytes(tileset[2..6].try_into().expect("4 bytes")) as usize;
    let tiles_size = u32::from_le_bytes(tileset[18..22].try_into().expect("4 bytes")) as usize;
    assert_eq!(tileset_length, 27 + tiles_size);
    // TS_RFX_TILE: block type, length = tiles size, quant indices 0, (0, 0).
    let tile = &tileset[27..27 + tiles_size];
    assert_eq!(tile[..2], [0xC3, 0xCA]);
    assert_eq!(
        u32::from_le_bytes(tile[2..6].try_into().expect("4 bytes")) as usize,
        tiles_size
    );
    assert_eq!(tile[6..13], [0; 7]);
    let lengths: usize = (0..3)
        .map(|index| {
            usize::from(u16::from_le_bytes([
                tile[13 + 2 * index],
                tile[14 + 2 * index],
            ]))
        })
        .sum();
    assert_eq!(19 + lengths, tiles_size);
    // TS_RFX_FRAME_END.
    assert_eq!(
        tileset[tileset_length..],
        [0xC5, 0xCC, 0x08, 0, 0, 0, 0x01, 0x00]
    );
    assert_eq!(
        RfxQuant::from_bytes([0x66, 0x66, 0x77, 0x88, 0x98]),
        RfxQuant::default()
    );
}

#[test]
fn headers_are_a_prefix_and_frames_count() {
    let pixels = synthetic_image(100, 70);
    let image = Image {
        width: 100,
        height: 70,
        stride: 400,
        data: &pixels,
    };
    let rects = [whole(100, 70)];
    let with = encode(RlgrMode::Rlgr1, &image, &rects, true);
    let without = encode(RlgrMode::Rlgr1, &image, &rects, false);
    assert_eq!(
        with,
        [header_bytes(100, 70, RlgrMode::Rlgr1), without].concat()
    );

    let mut encoder = RfxEncoder::new(RfxQuant::default(), RlgrMode::Rlgr1).expect("valid");
    let mut out = Vec::new();
    for index in 0..3 {
        out.clear();
        encoder
            .encode_frame(&image, &rects, true, &mut out)
            .expect("encodes");
        assert_eq!(
            decode_rfx_message(&out).expect("decodes").frame_index,
            index
        );
    }
    assert_eq!(encoder.frame_index(), 3);
}

#[test]
fn only_touched_tiles_are_sent() {
    let (width, height) = (300, 200);
    let pixels = synthetic_image(width, height);
    let image = Image {
        width,
        height,
        stride: width * 4,
        data: &pixels,
    };
    // Touches tiles (1, 0), (1, 1), (2, 0), (2, 1) and (4, 3).
    let rects = [
        RfxRect {
            x: 70,
            y: 60,
            width: 60,
            height: 10,
        },
        RfxRect {
            x: 290,
            y: 199,
            width: 10,
            height: 1,
        },
        RfxRect {
            x: 10,
            y: 10,
            width: 0,
            height: 0,
        },
    ];
    let out = encode(RlgrMode::Rlgr3, &image, &rects, true);
    let decoded = decode_rfx_message(&out).expect("decodes");
    let tileset_start = header_bytes(1, 1, RlgrMode::Rlgr3).len() + 14 + 8 + 7 + rects.len() * 8;
    let tile_count = u16::from_le_bytes([out[tileset_start + 16], out[tileset_start + 17]]);
    assert_eq!(tile_count, 5);
    for y in 0..height {
        for x in 0..width {
            let inside = rects.iter().any(|rect| {
                (usize::from(rect.x)..usize::from(rect.x + rect.width)).contains(&x)
                    && (usize::from(rect.y)..usize::from(rect.y + rect.height)).contains(&y)
            });
            let pixel = &decoded.pixels[(y * width + x) * 4..][..4];
            assert_eq!(pixel[3] == 0xFF, inside, "({x}, {y})");
        }
    }
}

#[test]
fn rejects_what_the_codec_cannot_carry() {
    let pixels = vec![0u8; 4097 * 4];
    let mut encoder = RfxEncoder::new(RfxQuant::default(), RlgrMode::Rlgr1).expect("valid");
    let mut out = Vec::new();
    let image = |width, height| Image {
        width,
        height,
        stride: width * 4,
        data: &pixels,
    };
    assert_eq!(
        encoder.encode_frame(&image(4097, 1), &[], false, &mut out),
        Err(EncodeError::Unsupported)
    );
    assert_eq!(
        encoder.encode_frame(&image(0, 1), &[], false, &mut out),
        Err(EncodeError::Unsupported)
    );
    let short = Image {
        width: 10,
        height: 2,
        stride: 40,
        data: &pixels[..79],
    };
    assert_eq!(
        encoder.encode_frame(&short, &[], false, &mut out),
        Err(EncodeError::OutOfBounds)
    );
    let outside = RfxRect {
        x: 5,
        y: 0,
        width: 6,
        height: 1,
    };
    assert_eq!(
        encoder.encode_frame(&image(10, 1), &[outside], false, &mut out),
        Err(EncodeError::OutOfBounds)
    );
    assert!(out.is_empty());
    let coarse = RfxQuant {
        hh1: 16,
        ..RfxQuant::default()
    };
    assert!(RfxEncoder::new(coarse, RlgrMode::Rlgr1).is_err());
    let fine = RfxQuant {
        ll3: 5,
        ..RfxQuant::default()
    };
    assert!(RfxEncoder::new(fine, RlgrMode::Rlgr1).is_err());
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

/// Random sizes (1x1, odd widths, up to 4096 wide), strides, rects and
/// content: the encoder never fails or panics on valid input, and the
/// decoder accepts every frame.
#[test]
fn random_frames_always_decode() {
    let mut random = Lcg(2024);
    let mut encoder = RfxEncoder::new(RfxQuant::default(), RlgrMode::Rlgr3).expect("valid");
    let mut out = Vec::new();
    let sizes = [
        (1, 1),
        (4096, 3),
        (4096, 1),
        (65, 1),
        (1, 65),
        (63, 129),
        (127, 64),
    ];
    for round in 0..40 {
        let (width, height) = sizes
            .get(round)
            .copied()
            .unwrap_or_else(|| (1 + random.next() % 700, 1 + random.next() % 150));
        let stride = width * 4 + random.next() % 9;
        let kind = random.next() % 3;
        let data: Vec<u8> = (0..stride * height)
            .map(|index| match kind {
                0 => random.next() as u8,
                1 => (index / 4 % 256) as u8,
                _ => {
                    if index % 97 < 40 {
                        255
                    } else {
                        0
                    }
                }
            })
            .collect();
        let image = Image {
            width,
            height,
            stride,
            data: &data,
        };
        let mut rects = Vec::new();
        for _ in 0..random.next() % 4 {
            let x = random.next() % width;
            let y = random.next() % height;
            rects.push(RfxRect {
                x: x as u16,
                y: y as u16,
                width: (1 + random.next() % (width - x)) as u16,
                height: (1 + random.next() % (height - y)) as u16,
            });
        }
        if round % 2 == 0 {
            rects.push(whole(width, height));
        }
        for mode in [RlgrMode::Rlgr1, RlgrMode::Rlgr3] {
            out.clear();
            let mut encoder_for_mode = RfxEncoder::new(RfxQuant::default(), mode).expect("valid");
            let encoder = if mode == RlgrMode::Rlgr3 {
                &mut encoder
            } else {
                &mut encoder_for_mode
            };
            encoder
                .encode_frame(&image, &rects, true, &mut out)
                .expect("encodes");
            let decoded = decode_rfx_message(&out).expect("decodes");
            assert_eq!((decoded.width, decoded.height), (width, height));
            assert_eq!(decoded.rects, rects);
        }
    }
}

#[test]
fn decoder_rejects_damaged_streams() {
    let pixels = synthetic_image(80, 70);
    let image = Image {
        width: 80,
        height: 70,
        stride: 320,
        data: &pixels,
    };
    let good = encode(RlgrMode::Rlgr1, &image, &[whole(80, 70)], true);
    assert!(decode_rfx_message(&good).is_ok());
    for length in 0..good.len() {
        assert!(
            decode_rfx_message(&good[..length]).is_err(),
            "truncated to {length}"
        );
    }
    let mut random = Lcg(1);
    for _ in 0..300 {
        let mut damaged = good.clone();
        let at = random.next() % damaged.len();
        damaged[at] ^= 1 << (random.next() % 8);
        // Must return, never panic; a flipped data bit may still decode.
        let _ = decode_rfx_message(&damaged);
    }
}

#[cfg(feature = "rayon")]
#[test]
fn parallel_output_equals_one_thread() {
    let (width, height) = (700, 300);
    let pixels = synthetic_image(width, height);
    let image = Image {
        width,
        height,
        stride: width * 4,
        data: &pixels,
    };
    let rects = [whole(width, height)];
    let parallel = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("pool")
        .install(|| encode(RlgrMode::Rlgr3, &image, &rects, true));
    let serial = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool")
        .install(|| encode(RlgrMode::Rlgr3, &image, &rects, true));
    assert_eq!(parallel, serial);
}
