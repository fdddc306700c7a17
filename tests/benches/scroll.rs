//! Scroll detection on the Graphics Pipeline, on a fixed synthetic
//! 1920x1080 desktop: a title bar over a document that scrolls by 40 rows
//! a frame (about three lines of text a wheel step), each frame sent whole
//! as the application would. The engine runs in memory with the core's
//! test client (plain RDP, so no TLS cost) on the pipeline's planar codec,
//! with acknowledgements suspended so no frame waits. Prints ms/frame
//! (median of the frames of each run, then the median of the runs) and
//! bytes/frame on the wire, with scroll detection and with every changed
//! tile re-encoded instead; then the same for frames where nothing
//! scrolls (every pixel changes), which is what detection costs when it
//! finds nothing.

use std::time::Instant;

use rdpserve_core::test_client::{self as client, Harness, Tweaks};
use rdpserve_core::{BitmapUpdate, DesktopSize, PixelFormat};

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
/// Rows of the title bar, which does not scroll.
const TITLE: usize = 40;
/// Rows the document moves each frame.
const STEP: usize = 40;
const FRAMES: usize = 24;
const RUNS: usize = 5;

/// The desktop with the document scrolled down by `first_row` rows: lines
/// of text-like dark runs on white, 16 rows apart, no two lines alike.
fn desktop(first_row: usize) -> Vec<u8> {
    let mut pixels = Vec::with_capacity(WIDTH * HEIGHT * 4);
    for row in 0..HEIGHT {
        let page_row = row.saturating_sub(TITLE) + first_row;
        let line = page_row / 16;
        for column in 0..WIDTH {
            let [b, g, r] = if row < TITLE {
                [120, 60, 30]
            } else if page_row % 16 < 11
                && (48..WIDTH - 48).contains(&column)
                && (column / 3 + line * 7 + (line * line) % 23) % 9 < 5
            {
                [20 + (line % 7) as u8, 20, 25 + (page_row % 16) as u8]
            } else {
                [250, 250, 245]
            };
            pixels.extend_from_slice(&[b, g, r, 0xFF]);
        }
    }
    pixels
}

/// One Graphics Pipeline PDU from the client: RDPGFX_HEADER and body.
fn gfx_pdu(command: u16, body: &[u8]) -> Vec<u8> {
    let mut pdu = Vec::with_capacity(8 + body.len());
    pdu.extend_from_slice(&command.to_le_bytes());
    pdu.extend_from_slice(&0u16.to_le_bytes());
    pdu.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
    pdu.extend_from_slice(body);
    pdu
}

/// A session on the pipeline (8.0 capabilities: planar), every frame sent
/// without waiting for acknowledgements.
fn session(scroll_detection: bool) -> Harness {
    let mut config = client::plain_config();
    config.desktop_size = DesktopSize {
        width: WIDTH as u16,
        height: HEIGHT as u16,
    };
    config.scroll_detection = scroll_detection;
    let mut harness = Harness::new(config, [1; 32]);
    let tweaks = Tweaks {
        // SUPPORT_ERRINFO_PDU | WANT_32BPP_SESSION | SUPPORT_DYN_VC_GFX_PROTOCOL.
        early_capability_flags: Some(0x0103),
        ..Tweaks::default()
    };
    let connected =
        client::start(&mut harness, client::PASSWORD, &tweaks).expect("the test client logs on");
    client::send_confirm_active(&mut harness, &connected, &[]);
    client::send_finalization(&mut harness, &connected);
    harness.received.clear();
    // DVC capabilities, version 3; then find the graphics channel's Create.
    client::send_dvc(&mut harness, &connected, &[0x50, 0x00, 0x03, 0x00]);
    let mut graphics = None;
    while !harness.received.is_empty() {
        let (_, data) = harness.next_channel_data();
        let dvc = &data[8..];
        if dvc[0] >> 4 == 1 && dvc[2..].starts_with(b"Microsoft::Windows::RDS::Graphics") {
            graphics = Some(dvc[1]);
        }
    }
    let id = graphics.expect("the graphics channel is created");
    client::send_dvc(&mut harness, &connected, &[0x10, id, 0, 0, 0, 0]);
    let send = |harness: &mut Harness, pdu: Vec<u8>| {
        let mut message = vec![0x30, id];
        message.extend_from_slice(&pdu);
        client::send_dvc(harness, &connected, &message);
    };
    // CapsAdvertise: one set, version 8.0, no flags.
    let mut caps = vec![1, 0];
    caps.extend_from_slice(&0x0008_0004u32.to_le_bytes());
    caps.extend_from_slice(&4u32.to_le_bytes());
    caps.extend_from_slice(&[0; 4]);
    send(&mut harness, gfx_pdu(0x0012, &caps));
    // FrameAcknowledge with SUSPEND_FRAME_ACKNOWLEDGEMENT.
    let mut ack = Vec::new();
    ack.extend_from_slice(&u32::MAX.to_le_bytes());
    ack.extend_from_slice(&[0; 8]);
    send(&mut harness, gfx_pdu(0x000D, &ack));
    harness.received.clear();
    harness
}

fn send(harness: &mut Harness, pixels: &[u8], wire: &mut Vec<u8>) -> usize {
    harness
        .engine
        .send_bitmap(&BitmapUpdate {
            x: 0,
            y: 0,
            width: WIDTH as u16,
            height: HEIGHT as u16,
            stride: WIDTH * 4,
            format: PixelFormat::BgrX32,
            data: pixels,
        })
        .expect("the frame is taken");
    let mut bytes = 0;
    while harness.engine.poll_transmit(wire).is_some() {
        bytes += wire.len();
        wire.clear();
    }
    bytes
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A frame where nothing scrolls: noise-like content that differs from
/// the previous frame everywhere, as video would; detection must give up
/// at the cost of hashing the rows.
fn changing(seed: usize) -> Vec<u8> {
    (0..WIDTH * HEIGHT)
        .flat_map(|i| {
            // Independent of the other frames, so ZGFX finds nothing in
            // its history either.
            let value =
                ((i as u64) ^ (seed as u64) << 32).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            [value as u8, (value >> 8) as u8, (value >> 16) as u8, 0xFF]
        })
        .collect()
}

fn main() {
    let scrolling: Vec<Vec<u8>> = (0..=FRAMES).map(|frame| desktop(frame * STEP)).collect();
    let video: Vec<Vec<u8>> = (0..=FRAMES).map(changing).collect();
    let cases = [
        ("document by 40 rows, detection", &scrolling, true),
        ("document by 40 rows, re-encoding", &scrolling, false),
        ("no scroll, every pixel changes, detection", &video, true),
        ("no scroll, every pixel changes, re-encoding", &video, false),
    ];
    for (name, frames, detect) in cases {
        let mut run_medians = Vec::new();
        let mut bytes_per_frame = 0;
        let mut stats = None;
        for _ in 0..RUNS {
            let mut harness = session(detect);
            let mut wire = Vec::new();
            // The first picture, whole.
            send(&mut harness, &frames[0], &mut wire);
            let mut times = Vec::new();
            let mut bytes = 0;
            for pixels in &frames[1..] {
                let started = Instant::now();
                bytes += send(&mut harness, pixels, &mut wire);
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            run_medians.push(median(&mut times));
            bytes_per_frame = bytes / FRAMES;
            stats = harness.engine.pipeline_stats();
        }
        let stats = stats.expect("the session ran the pipeline");
        println!(
            "scroll bench, planar, 1920x1080 {name}: {:.2} ms/frame \
             (median of {RUNS} runs of {FRAMES} frames; runs {:.2?}), {bytes_per_frame} \
             bytes/frame; {} SurfaceToSurface, {} tiles copied, {} encoded, {} cache hits, \
             {} fills",
            median(&mut run_medians.clone()),
            run_medians,
            stats.surface_to_surface,
            stats.tiles_copied,
            stats.wire_to_surface,
            stats.cache_hits,
            stats.solid_fills,
        );
    }
}
