use super::*;

const LIMIT: usize = 64 << 20;

fn round_trip(
    compressor: &mut ZgfxCompressor,
    decoder: &mut ZgfxDecompressor,
    data: &[u8],
) -> usize {
    let mut wire = Vec::new();
    compressor.compress(data, &mut wire).expect("compress");
    let mut back = Vec::new();
    decoder
        .decompress(&wire, LIMIT, &mut back)
        .expect("decompress");
    assert_eq!(back.len(), data.len());
    assert!(back == data, "round trip differs");
    wire.len()
}

/// Pseudo-random bytes (an LCG), fixed by `seed`.
fn noise(length: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) as u8
        })
        .collect()
}

/// Something like a desktop's pixels: flat runs, repeated rows, a few edges.
fn screen_like(width: usize, height: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            let pixel = if (x / 37 + y / 11) % 5 == 0 {
                [0x20, 0x40, (x % 256) as u8, 0xFF]
            } else if y % 18 < 2 {
                [0x10, 0x10, 0x10, 0xFF]
            } else {
                [0xF5, 0xF5, 0xF5, 0xFF]
            };
            pixels.extend_from_slice(&pixel);
        }
    }
    pixels
}

/// MS-RDPEDYC 4.3.3 annotates an RDP 8.0 bitstream (there inside a DVC
/// compressed PDU, type 6, "RDP 8.0 lite", whose bitstream is the same):
/// "q", then a match at distance 1 of 1594 bytes.
const SPEC_BITSTREAM: [u8; 6] = [0x38, 0xC4, 0x3F, 0xF4, 0x74, 0x01];

#[test]
fn the_spec_example_decodes() {
    let mut wire = vec![SEGMENTED_SINGLE, COMPRESSION_TYPE_RDP8 | PACKET_COMPRESSED];
    wire.extend_from_slice(&SPEC_BITSTREAM);
    let mut out = Vec::new();
    ZgfxDecompressor::new()
        .decompress(&wire, LIMIT, &mut out)
        .unwrap();
    assert_eq!(out, vec![b'q'; 1595]);
}

#[test]
fn the_compressor_writes_the_spec_example() {
    let mut wire = Vec::new();
    ZgfxCompressor::new()
        .compress(&[b'q'; 1595], &mut wire)
        .unwrap();
    let mut expected = vec![SEGMENTED_SINGLE, COMPRESSION_TYPE_RDP8 | PACKET_COMPRESSED];
    expected.extend_from_slice(&SPEC_BITSTREAM);
    assert_eq!(wire, expected);
}

#[test]
fn round_trips_of_every_kind_of_data() {
    let mut compressor = ZgfxCompressor::new();
    let mut decoder = ZgfxDecompressor::new();
    for data in [
        Vec::new(),
        vec![7],
        vec![1, 2, 3],
        vec![0; 4],
        b"abcabcabcabcabcabc".to_vec(),
        (0..=255u8).cycle().take(5000).collect(),
        noise(65_535, 1),
        noise(65_536, 2),
        vec![0xFF; 65_535],
        vec![0x66; 65_536 * 3 + 17],
        screen_like(300, 200),
        // Every special literal, each between two ordinary bytes.
        [
            0x00u8, 0x01, 0x02, 0x03, 0xFF, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x3A,
            0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x40, 0x80, 0x0C, 0x38, 0x39, 0x66,
        ]
        .iter()
        .flat_map(|&byte| [0x91, byte])
        .collect(),
    ] {
        round_trip(&mut compressor, &mut decoder, &data);
    }
}

#[test]
fn compressible_data_shrinks_and_noise_does_not_grow_much() {
    let mut compressor = ZgfxCompressor::new();
    let mut decoder = ZgfxDecompressor::new();
    let screen = screen_like(640, 100);
    let size = round_trip(&mut compressor, &mut decoder, &screen);
    assert!(size * 10 < screen.len(), "{size} of {}", screen.len());
    let random = noise(200_000, 9);
    let size = round_trip(&mut compressor, &mut decoder, &random);
    // Each segment is sent as it is: a header byte and a size.
    assert!(size <= random.len() + 7 + 4 * 4 + 4);
}

#[test]
fn unencoded_runs_carry_noise_between_compressible_parts() {
    let mut data = vec![0u8; 3000];
    data.extend(noise(3000, 5));
    data.extend(vec![0u8; 3000]);
    let mut compressor = ZgfxCompressor::new();
    let mut decoder = ZgfxDecompressor::new();
    let size = round_trip(&mut compressor, &mut decoder, &data);
    // The noise costs its own size plus a little, not 9 bits a byte.
    assert!(size < 3000 + 100, "{size}");
}

#[test]
fn later_data_refers_to_earlier_segments() {
    let mut compressor = ZgfxCompressor::new();
    let mut decoder = ZgfxDecompressor::new();
    let image = noise(100_000, 3);
    let first = round_trip(&mut compressor, &mut decoder, &image);
    let again = round_trip(&mut compressor, &mut decoder, &image);
    assert!(first > 100_000);
    assert!(again < 100, "a repeat costs {again} bytes");
}

#[test]
fn the_window_slides_past_the_history() {
    // Three times the history in 60 KiB pieces, each repeated once later:
    // matches must never reach further back than the client remembers.
    let mut compressor = ZgfxCompressor::new();
    let mut decoder = ZgfxDecompressor::new();
    let pieces: Vec<Vec<u8>> = (0..128).map(|seed| noise(60_000, seed)).collect();
    for round in 0..2 {
        for (index, piece) in pieces.iter().enumerate() {
            let size = round_trip(&mut compressor, &mut decoder, piece);
            if round == 1 && index == 0 {
                // 128 * 60,000 bytes ago: beyond the history, sent again.
                assert!(size > 60_000);
            }
        }
    }
    // The piece just sent is found again.
    let size = round_trip(&mut compressor, &mut decoder, &pieces[127]);
    assert!(size < 200, "{size}");
}

#[test]
fn a_shorter_reach_still_round_trips() {
    let mut compressor = ZgfxCompressor::with_max_distance(4096);
    let mut decoder = ZgfxDecompressor::new();
    let image = noise(10_000, 4);
    round_trip(&mut compressor, &mut decoder, &image);
    let size = round_trip(&mut compressor, &mut decoder, &image);
    assert!(size > 10_000);
}

#[test]
fn the_uncompressed_mode_is_framing_only() {
    let mut compressor = ZgfxCompressor::uncompressed();
    let mut decoder = ZgfxDecompressor::new();
    let data = vec![0u8; 70_000];
    let size = round_trip(&mut compressor, &mut decoder, &data);
    // Descriptor, count, total, then two sized segments with a header each.
    assert_eq!(size, 1 + 2 + 4 + 2 * (4 + 1) + 70_000);
    let mut wire = Vec::new();
    compressor.compress(b"hello", &mut wire).unwrap();
    assert_eq!(wire, [0xE0, 0x04, b'h', b'e', b'l', b'l', b'o']);
}

fn decode(wire: &[u8]) -> Result<Vec<u8>, ZgfxError> {
    let mut out = Vec::new();
    ZgfxDecompressor::new()
        .decompress(wire, LIMIT, &mut out)
        .map(|()| out)
}

#[test]
fn garbage_gets_a_typed_error() {
    assert_eq!(decode(&[]), Err(ZgfxError::Truncated));
    assert_eq!(decode(&[0xE2, 0x04]), Err(ZgfxError::Descriptor(0xE2)));
    assert_eq!(decode(&[0xE0]), Err(ZgfxError::Truncated));
    assert_eq!(decode(&[0xE0, 0x26, 0]), Err(ZgfxError::CompressionType(6)));
    // A compressed segment without its padding byte.
    assert_eq!(decode(&[0xE0, 0x24]), Err(ZgfxError::Truncated));
    assert_eq!(
        decode(&[0xE0, 0x24, 0x00, 0x08]),
        Err(ZgfxError::Padding(8))
    );
    // "10000" names no token.
    assert_eq!(
        decode(&[0xE0, 0x24, 0b1000_0000, 0, 0]),
        Err(ZgfxError::UnknownToken)
    );
    // "10111101" and 21 one bits: distance 4,511,391.
    assert_eq!(
        decode(&[0xE0, 0x24, 0b1011_1101, 0xFF, 0xFF, 0b1111_1000, 0]),
        Err(ZgfxError::Distance(2_414_240 + 0x1F_FFFF))
    );
    // A literal cut short: "0" and four of its eight bits.
    assert_eq!(
        decode(&[0xE0, 0x24, 0b0000_0000, 3]),
        Err(ZgfxError::Truncated)
    );
    // Unencoded bytes that are not there: count 5, none follow.
    assert_eq!(
        decode(&[0xE0, 0x24, 0b1000_1000, 0b0000_0000, 0b0000_1010, 0]),
        Err(ZgfxError::Truncated)
    );
    // A length prefix of fifteen ones: longer than any segment.
    assert_eq!(
        decode(&[0xE0, 0x24, 0b1000_1000, 0b0111_1111, 0xFF, 0xFF, 0]),
        Err(ZgfxError::SegmentTooLarge)
    );
    // Multipart: header cut, a segment size of 0 or past the end, totals
    // that do not add up, bytes after the last segment.
    assert_eq!(decode(&[0xE1, 1, 0, 5, 0]), Err(ZgfxError::Truncated));
    assert_eq!(
        decode(&[0xE1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0]),
        Err(ZgfxError::SegmentSize(0))
    );
    assert_eq!(
        decode(&[0xE1, 1, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0x04, 7]),
        Err(ZgfxError::SegmentSize(9))
    );
    assert_eq!(
        decode(&[0xE1, 1, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0x04, 7]),
        Err(ZgfxError::UncompressedSize {
            declared: 2,
            decoded: 1
        })
    );
    assert_eq!(
        decode(&[0xE1, 1, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0x04, 7, 0xAA]),
        Err(ZgfxError::TrailingBytes)
    );
    // A declared total over the caller's limit is refused before decoding.
    let mut out = Vec::new();
    assert_eq!(
        ZgfxDecompressor::new().decompress(&[0xE1, 1, 0, 0, 0, 1, 0], 1000, &mut out),
        Err(ZgfxError::UncompressedSize {
            declared: 65_536,
            decoded: 0
        })
    );
    // An uncompressed segment over 65,535 bytes.
    let mut big = vec![0xE0, 0x04];
    big.resize(2 + 65_536, 0);
    assert_eq!(decode(&big), Err(ZgfxError::SegmentTooLarge));
}

#[test]
fn random_bytes_never_panic_the_decoder() {
    let mut decoder = ZgfxDecompressor::new();
    for seed in 0..2000 {
        let mut input = noise(1 + seed as usize % 64, seed);
        input[0] = if seed % 2 == 0 { 0xE0 } else { 0xE1 };
        if input.len() > 1 && seed % 3 != 0 {
            input[1] = 0x24;
        }
        let mut out = Vec::new();
        let _ = decoder.decompress(&input, 1 << 20, &mut out);
    }
}
