//! Bitmaps in every pixel format: the client gets exactly what the same
//! picture in B, G, R, X gives, and the format is recorded and replayed.

use super::common::{Harness, PASSWORD, connect, plain_config};

use crate::api::event::Rectangle;
use crate::{BitmapUpdate, PixelFormat, replay};

const ALL: [PixelFormat; 12] = rdpserve_codecs::PixelFormat::ALL;

/// A `width` x `height` picture in `format`, rows `stride` bytes apart
/// (padding filled with a byte the conversion must never read).
fn picture(format: PixelFormat, width: usize, height: usize, stride: usize, seed: u32) -> Vec<u8> {
    let mut state = seed | 1;
    let mut data = vec![0xEE; stride * (height - 1) + width * format.bytes_per_pixel()];
    for row in 0..height {
        for byte in &mut data[row * stride..row * stride + width * format.bytes_per_pixel()] {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Runs of equal bytes, so the planar encoder has something to find.
            *byte = (state % 4) as u8 * 60;
        }
    }
    data
}

/// The same picture as B, G, R, X, rows packed.
fn converted(
    format: PixelFormat,
    width: usize,
    height: usize,
    stride: usize,
    data: &[u8],
) -> Vec<u8> {
    let mut pixels = vec![0; width * height * 4];
    for (row, target) in pixels.chunks_exact_mut(width * 4).enumerate() {
        rdpserve_codecs::convert_row(format, &data[row * stride..], target);
    }
    pixels
}

fn connected(seed: u8, record: bool) -> Harness {
    let mut config = plain_config();
    config.record = record;
    let mut harness = Harness::new(config, [seed; 32]);
    connect(&mut harness, PASSWORD).expect("connects");
    harness.received.clear();
    harness
}

#[test]
fn every_format_sends_what_its_conversion_sends_and_replays() {
    // An odd width at an odd place, over several tiles.
    let (x, y, width, height) = (13u16, 7u16, 131usize, 70usize);
    for format in ALL {
        let bytes = format.bytes_per_pixel();
        // Rows padded by three bytes: a stride no pixel size divides.
        let stride = width * bytes + 3;
        let mut frame = picture(format, width, height, stride, 0x5EED);
        let mut native = connected(4, false);
        let mut foreign = connected(4, true);
        let send =
            |harness: &mut Harness, format, stride, data: &[u8], damage: Option<&[Rectangle]>| {
                let update = BitmapUpdate {
                    x,
                    y,
                    width: width as u16,
                    height: height as u16,
                    stride,
                    format,
                    data,
                };
                match damage {
                    Some(damage) => harness.engine.send_bitmap_damaged(&update, damage),
                    None => harness.engine.send_bitmap(&update),
                }
                .unwrap();
                harness.drain();
                std::mem::take(&mut harness.received)
            };
        for round in 0..3 {
            // The first round sends everything, the second the tiles a
            // few changed bytes touch, the third what the damage says.
            if round > 0 {
                for at in [5 * stride + 3, 66 * stride + width * bytes - 1] {
                    frame[at] ^= 0x55;
                }
            }
            let damage = [Rectangle {
                left: 100,
                top: 50,
                right: 101,
                bottom: 51,
            }];
            let damage = (round == 2).then_some(&damage[..]);
            let expected = send(
                &mut native,
                PixelFormat::BgrX32,
                width * 4,
                &converted(format, width, height, stride, &frame),
                damage,
            );
            let got = send(&mut foreign, format, stride, &frame, damage);
            assert!(!expected.is_empty() || round == 1, "{format} round {round}");
            assert!(expected == got, "{format} round {round}: output differs");
        }
        let mut recording = Vec::new();
        while foreign.engine.poll_recording(&mut recording).is_some() {}
        replay(&recording, None).unwrap_or_else(|error| panic!("{format}: {error}"));
    }
}

#[test]
fn a_short_stride_or_data_is_refused_before_the_recording() {
    let mut harness = connected(5, true);
    let mut before = Vec::new();
    while harness.engine.poll_recording(&mut before).is_some() {}
    let data = vec![0u8; 64];
    let update = |stride, format, data| BitmapUpdate {
        x: 0,
        y: 0,
        width: 5,
        height: 3,
        stride,
        format,
        data,
    };
    assert_eq!(
        harness
            .engine
            .send_bitmap(&update(16, PixelFormat::RgbA32, &data)),
        Err(crate::CommandError::StrideTooShort {
            stride: 16,
            row_bytes: 20,
            format: PixelFormat::RgbA32
        })
    );
    assert_eq!(
        harness
            .engine
            .send_bitmap(&update(16, PixelFormat::Rgb24, &data[..40])),
        Err(crate::CommandError::BitmapDataTooShort {
            len: 40,
            needed: 47
        })
    );
    // Refused commands leave no trace in the recording.
    let mut after = Vec::new();
    assert_eq!(harness.engine.poll_recording(&mut after), None);
    assert!(harness.received.is_empty());
}
