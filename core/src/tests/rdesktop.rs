//! What rdesktop 1.9 needs from a session, against the in-memory client:
//! 32-bpp planar bitmaps with an alpha plane, because its Bitmap
//! Capability Set leaves DRAW_ALLOW_SKIP_ALPHA clear.

use super::common::{Harness, PASSWORD, connect_with, plain_config};
use crate::graphics::bitmap::decode_bitmap_update;
use crate::graphics::fastpath;
use crate::{BitmapUpdate, PixelFormat};

/// rdesktop's Bitmap Capability Set, as captured at 32 bpp with
/// `-g 320x200`: drawingFlags (the byte before multipleRectangleSupport) 0.
const RDESKTOP_BITMAP_SET: [u8; 28] = [
    0x02, 0x00, 0x1c, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x40, 0x01, 0xc8, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
];

/// The FormatHeader of every planar bitmap the server sends for a noisy
/// and a flat area, after connecting with `bitmap_set`.
fn planar_headers(bitmap_set: &[u8]) -> Vec<u8> {
    let mut harness = Harness::new(plain_config(), [5; 32]);
    connect_with(&mut harness, PASSWORD, &[bitmap_set.to_vec()]).expect("connected");
    let (width, height) = (320u16, 200u16);
    let data: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .flat_map(|i| {
            // A xorshift of the index: no pattern RLE could use.
            let mut noise = i as u32 + 1;
            for _ in 0..3 {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
            }
            let noisy = noise.to_le_bytes();
            if i % 320 < 160 {
                [noisy[1], noisy[2], noisy[3], 0]
            } else {
                [40, 50, 60, 0]
            }
        })
        .collect();
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            x: 0,
            y: 0,
            width,
            height,
            stride: usize::from(width) * 4,
            format: PixelFormat::BgrX32,
            data: &data,
        })
        .unwrap();
    harness.drain();
    let mut headers = Vec::new();
    for (_, payload) in fastpath::decode_output(&harness.received).unwrap() {
        for rect in decode_bitmap_update(&payload).unwrap() {
            let (w, h) = (usize::from(rect.width), usize::from(rect.height));
            let pixels = rdpserve_codecs::decode_planar(rect.data, w, h).expect("valid planar");
            assert!(pixels.chunks(4).all(|pixel| pixel[3] == 0xFF), "opaque");
            headers.push(rect.data[0]);
        }
    }
    headers
}

#[test]
fn rdesktop_gets_planar_bitmaps_with_alpha_in_rle() {
    let headers = planar_headers(&RDESKTOP_BITMAP_SET);
    assert!(!headers.is_empty());
    // RLE with an alpha plane, the only planar form rdesktop decodes.
    assert!(headers.iter().all(|&header| header == 0x10), "{headers:x?}");
}

#[test]
fn clients_that_allow_skipping_alpha_get_three_planes() {
    let mut set = RDESKTOP_BITMAP_SET;
    set[23] = 0x08; // DRAW_ALLOW_SKIP_ALPHA
    let headers = planar_headers(&set);
    // No alpha plane; RLE for flat tiles, raw for the noise.
    assert!(headers.contains(&0x30), "{headers:x?}");
    assert!(headers.contains(&0x20), "{headers:x?}");
    assert!(headers.iter().all(|&header| header & 0x20 != 0));
}
