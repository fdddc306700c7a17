//! The engine's bitmap-update path on fixed synthetic 1920x1080 frames: the
//! damage comparison into the shadow, planar encoding (with the alpha plane
//! FreeRDP 2 and rdesktop require), grouping into updates within the
//! client's 1 MiB multifragment limit, and fast-path framing, in memory
//! with the core's test client (plain RDP, so no TLS cost). Two frames that
//! differ in every tile alternate, so every frame is whole. Prints ms/frame
//! (median of the frames) and bytes/frame for a desktop-like frame and a
//! photo-like one.

use std::time::Instant;

use rdpserve_core::test_client::{self as client, Harness};
use rdpserve_core::{BitmapUpdate, DesktopSize, PixelFormat};

const WIDTH: u16 = 1920;
const HEIGHT: u16 = 1080;
const FRAMES: usize = 20;

fn frame(seed: u32, photo: bool) -> Vec<u8> {
    let (w, h) = (usize::from(WIDTH), usize::from(HEIGHT));
    let mut state = seed | 1;
    let mut pixels = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let [b, g, r] = if photo {
                // Smooth gradients with noise, as a photograph.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let noise = (state & 7) as usize;
                [
                    ((x + noise + seed as usize) / 8) as u8,
                    ((y + noise) / 5) as u8,
                    ((x + y) / 12 + noise) as u8,
                ]
            } else {
                // Flat panels with text-like strokes, as a desktop.
                let ink = (x / 6 + y / 12 + seed as usize) % 7 == 0 && y % 12 < 9;
                if ink {
                    [20, 20, 25]
                } else if y < 40 {
                    [120, 60, seed as u8]
                } else {
                    [240, 240, 235]
                }
            };
            pixels.extend_from_slice(&[b, g, r, 0xFF]);
        }
    }
    pixels
}

fn main() {
    for (name, photo) in [("desktop", false), ("photo", true)] {
        let mut config = client::plain_config();
        config.desktop_size = DesktopSize {
            width: WIDTH,
            height: HEIGHT,
        };
        let mut harness = Harness::new(config, [1; 32]);
        client::connect(&mut harness, client::PASSWORD).expect("the test client logs on");
        let frames = [frame(1, photo), frame(2, photo)];
        let mut times = Vec::new();
        let mut bytes = 0usize;
        let mut wire = Vec::new();
        for index in 0..FRAMES {
            let data = &frames[index % 2];
            let started = Instant::now();
            harness
                .engine
                .send_bitmap(&BitmapUpdate {
                    x: 0,
                    y: 0,
                    width: WIDTH,
                    height: HEIGHT,
                    stride: usize::from(WIDTH) * 4,
                    format: PixelFormat::BgrX32,
                    data,
                })
                .expect("the frame is taken");
            while harness.engine.poll_transmit(&mut wire).is_some() {
                bytes += wire.len();
                wire.clear();
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "bitmap path, planar, 1920x1080 {name}: {:.1} ms/frame (median of {FRAMES}), {} bytes/frame",
            times[FRAMES / 2],
            bytes / FRAMES
        );
    }
}
