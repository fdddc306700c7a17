//! H.264 (AVC420) on fixed synthetic 1920x1080 frames, one thread:
//! `cargo bench -p rdpserve-codecs --features h264 --bench h264`.
//!
//! For each scene (a desktop whose text changes, a photo panning, a
//! video-like region moving over a desktop) and each openh264 mode
//! (screen content, camera), a run of predicted frames with the whole
//! frame damaged, as the Graphics Pipeline sends a full-screen change:
//! B, G, R, X to I420, openh264's encode, and the packaging into an
//! RFX_AVC420_BITMAP_STREAM (one region a row of 64x64 tiles, as the
//! engine merges them). Prints medians of the runs: ms for each step, our
//! overhead (conversion plus packaging) as a share of openh264's own
//! encode, bytes/frame and the PSNR of the decoded picture against the
//! I420 input; then the key frame of each scene.

use std::time::Instant;

mod scenes;
use scenes::{HEIGHT, WIDTH, desktop, median, openh264_build, photo};

use rdpserve_codecs::{Avc444Version, Avc444Views};
use rdpserve_codecs::{
    H264Content, H264Decoder, H264Encoder, H264Settings, I420, Image, i420_psnr,
};

const TILE: usize = 64;
const FRAMES: usize = 9;

/// A 640x360 video-like region (a moving photo) crossing the still
/// desktop.
fn video(frame: usize) -> Vec<u8> {
    let mut pixels = desktop(0);
    let picture = photo(frame * 3);
    let (left, top) = (300 + frame * 24, 200 + frame * 8);
    for y in 0..360 {
        for x in 0..640 {
            let from = (y * WIDTH + x) * 4;
            let to = ((top + y) * WIDTH + left + x) * 4;
            pixels[to..to + 4].copy_from_slice(&picture[from..from + 4]);
        }
    }
    pixels
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// The RFX_AVC420_METABLOCK of one region a tile row, then the stream, as
/// the engine writes it (core/src/graphics/egfx/avc.rs).
fn package(stream: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let rows = HEIGHT.div_ceil(TILE);
    out.extend_from_slice(&(rows as u32).to_le_bytes());
    for row in 0..rows {
        let (top, bottom) = (row * TILE, ((row + 1) * TILE).min(HEIGHT));
        for side in [0, top, WIDTH, bottom] {
            out.extend_from_slice(&(side as u16).to_le_bytes());
        }
    }
    for _ in 0..rows {
        out.extend_from_slice(&[22, 57]);
    }
    out.extend_from_slice(stream);
}

fn bench_scene(name: &str, frames: &[Vec<u8>], content: H264Content) {
    let settings = H264Settings {
        content,
        ..H264Settings::default()
    };
    let mut encoder = H264Encoder::new(settings).expect("encoder");
    let mut decoder = H264Decoder::new().expect("decoder");
    let mut picture = I420::default();
    let mut decoded = I420::default();
    let (mut stream, mut bitmap) = (Vec::new(), Vec::new());
    let (mut convert, mut encode, mut packaging, mut bytes, mut quality) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut key = (0.0, 0usize, 0.0);
    for (index, frame) in frames.iter().enumerate() {
        let image = Image {
            width: WIDTH,
            height: HEIGHT,
            stride: WIDTH * 4,
            data: frame,
        };
        let start = Instant::now();
        picture
            .convert_from(&image, 0, 0, WIDTH, HEIGHT)
            .expect("in bounds");
        let converted = ms(start);
        stream.clear();
        let start = Instant::now();
        encoder.encode(&picture, &mut stream).expect("encodes");
        let encoded = ms(start);
        let start = Instant::now();
        package(&stream, &mut bitmap);
        let packaged = ms(start);
        assert!(decoder.decode(&stream, &mut decoded).expect("decodes"));
        let psnr = i420_psnr(&picture, &decoded);
        if index == 0 {
            key = (encoded, bitmap.len(), psnr);
            continue;
        }
        convert.push(converted);
        encode.push(encoded);
        packaging.push(packaged);
        bytes.push(bitmap.len() as f64);
        quality.push(psnr);
    }
    let (convert, encode, packaging) = (median(convert), median(encode), median(packaging));
    println!(
        "{:<24} {:>8.2} {:>8.2} {:>8.3} {:>8.1}% {:>10.0} {:>7.1}   key: {:>7.2} ms {:>8} B {:>5.1} dB",
        name,
        convert,
        encode,
        packaging,
        (convert + packaging) / encode * 100.0,
        median(bytes),
        median(quality),
        key.0,
        key.1,
        key.2,
    );
}

/// AVC444 (v2 layout) in screen mode: both views converted from the
/// whole frame, each encoded by the one encoder (long-term references on,
/// as the server runs it); bytes are both streams.
fn bench_avc444(name: &str, frames: &[Vec<u8>]) {
    let mut encoder = H264Encoder::for_two_views(H264Settings::default()).expect("encoder");
    let mut views = Avc444Views::default();
    let mut stream = Vec::new();
    let (mut convert, mut encode, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
    for (index, frame) in frames.iter().enumerate() {
        let image = Image {
            width: WIDTH,
            height: HEIGHT,
            stride: WIDTH * 4,
            data: frame,
        };
        let start = Instant::now();
        views
            .convert_from(&image, 0, 0, WIDTH, HEIGHT, Avc444Version::V2)
            .expect("in bounds");
        let converted = ms(start);
        stream.clear();
        let start = Instant::now();
        encoder.encode(&views.main, &mut stream).expect("encodes");
        encoder
            .encode(&views.auxiliary, &mut stream)
            .expect("encodes");
        let encoded = ms(start);
        if index == 0 {
            continue;
        }
        convert.push(converted);
        encode.push(encoded);
        bytes.push(stream.len() as f64);
    }
    let (convert, encode) = (median(convert), median(encode));
    println!(
        "{:<24} {:>8.2} {:>8.2} {:>8} {:>8.1}% {:>10.0}",
        name,
        convert,
        encode,
        "",
        convert / encode * 100.0,
        median(bytes),
    );
}

/// A scene's name and its frame for a frame number.
type Scene = (&'static str, fn(usize) -> Vec<u8>);

fn main() {
    println!(
        "AVC420 1920x1080, whole frame damaged, QP {} fixed, one thread; openh264 build: {}",
        H264Settings::DEFAULT_QP,
        openh264_build()
    );
    println!(
        "medians of {} predicted frames per scene (the first, a key frame, apart)",
        FRAMES - 1
    );
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>9} {:>10} {:>7}",
        "scene/mode", "conv ms", "enc ms", "pack ms", "overhead", "bytes", "PSNR dB"
    );
    let scenes: [Scene; 3] = [("desktop", desktop), ("photo", photo), ("video", video)];
    for (scene, make) in scenes {
        let frames: Vec<Vec<u8>> = (0..FRAMES).map(make).collect();
        for (mode, content) in [
            ("screen", H264Content::Screen),
            ("camera", H264Content::Camera),
        ] {
            bench_scene(&format!("{scene}/{mode}"), &frames, content);
        }
        bench_avc444(&format!("{scene}/avc444 screen"), &frames);
    }
}
