//! Content-adaptive encoding against all-H.264 and all-planar on a mixed
//! 1920x1080 sequence, one thread:
//! `cargo bench -p rdpserve-codecs --features h264 --bench adaptive`.
//!
//! A still text desktop (windows of one-pixel "text" on flat colour)
//! under a 640x360 video-like region (a grained photo panning) that
//! changes every frame. Frame 0 is the whole screen; the frames after it
//! change only the video's 64x64 tiles, as the damage tracker reports
//! them. Each mode encodes as the Graphics Pipeline does:
//!
//! - all-planar: every changed tile planar;
//! - all-H.264: one AVC420 picture of the surface, only the changed tiles
//!   converted, the tiles as regions (the `Avc420` codec);
//! - adaptive: the classifier (classify.rs) picks per tile; lossless tiles
//!   planar, lossy ones one AVC420 picture whose regions are exactly them
//!   (the `Adaptive` codec).
//!
//! Each frame's payloads then go through ZGFX, as on the channel (PDU
//! headers, some 20 to 30 bytes a tile, are left out; SolidFill and the
//! cache are left out too: the steady frames change only video tiles).
//! A client model decodes every frame (not timed) and gives the PSNR of
//! the text area (everything outside the 640x360 region; also outside the
//! video's tiles, as the region does not end on the tile grid and the
//! text under its lower edge shares tiles with it) and of the video area. Prints medians of the runs' ms/frame over the steady frames,
//! bytes/frame, PSNR; for adaptive also the lossless refresh after the
//! motion stops.

use std::time::Instant;

mod scenes;
use scenes::{HEIGHT, WIDTH, desktop, median, openh264_build, photo_pixel, put};

use rdpserve_codecs::classify::{ContentClassifier, Decisions};
use rdpserve_codecs::damage::TileRect;
use rdpserve_codecs::zgfx::ZgfxCompressor;
use rdpserve_codecs::{
    H264Decoder, H264Encoder, H264Settings, I420, Image, decode_planar, encode_planar_top_down,
};

const TILE: usize = 64;
/// The video region: left, top, width, height.
const VIDEO: (usize, usize, usize, usize) = (640, 384, 640, 360);
const STEADY_FRAMES: usize = 30;
const RUNS: usize = 5;

/// The desktop with the video region showing frame `frame`: a photo with
/// grain, panned.
fn mixed(desktop: &[u8], frame: usize) -> Vec<u8> {
    let mut pixels = desktop.to_vec();
    let (left, top, width, height) = VIDEO;
    for y in 0..height {
        for x in 0..width {
            let colour = photo_pixel(x + frame * 6, y + frame * 3);
            put(&mut pixels, left + x, top + y, colour);
        }
    }
    pixels
}

fn image(pixels: &[u8]) -> Image<'_> {
    Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: pixels,
    }
}

fn tile_rect(column: usize, row: usize) -> TileRect {
    let (x, y) = (column * TILE, row * TILE);
    TileRect {
        x,
        y,
        width: TILE.min(WIDTH - x),
        height: TILE.min(HEIGHT - y),
    }
}

fn all_tiles() -> Vec<TileRect> {
    (0..HEIGHT.div_ceil(TILE))
        .flat_map(|row| (0..WIDTH.div_ceil(TILE)).map(move |column| tile_rect(column, row)))
        .collect()
}

fn video_tiles() -> Vec<TileRect> {
    let (left, top, width, height) = VIDEO;
    (top / TILE..(top + height).div_ceil(TILE))
        .flat_map(|row| {
            (left / TILE..(left + width).div_ceil(TILE)).map(move |column| tile_rect(column, row))
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Adaptive,
    AllH264,
    AllPlanar,
}

/// The server side of one mode: its encoder state and scratch.
struct Server {
    mode: Mode,
    classifier: ContentClassifier,
    decisions: Decisions,
    encoder: H264Encoder,
    picture: I420,
    tile: I420,
    zgfx: ZgfxCompressor,
    scratch: Vec<u8>,
}

/// What one frame sends: planar tiles and at most one AVC420 picture with
/// its regions, and the bytes after ZGFX.
#[derive(Default)]
struct Frame {
    planar: Vec<(TileRect, Vec<u8>)>,
    avc: Option<(Vec<TileRect>, Vec<u8>)>,
    bytes: usize,
}

impl Server {
    fn new(mode: Mode) -> Self {
        let (padded_width, padded_height) =
            (WIDTH.next_multiple_of(16), HEIGHT.next_multiple_of(16));
        let chroma = padded_width / 2 * (padded_height / 2);
        Self {
            mode,
            classifier: ContentClassifier::new(WIDTH, HEIGHT, TILE, Default::default()),
            decisions: Decisions::default(),
            encoder: H264Encoder::new(H264Settings::default()).expect("openh264"),
            picture: I420 {
                width: padded_width,
                height: padded_height,
                y: vec![0; padded_width * padded_height],
                u: vec![128; chroma],
                v: vec![128; chroma],
            },
            tile: I420::default(),
            zgfx: ZgfxCompressor::new(),
            scratch: Vec::new(),
        }
    }

    fn planar(&mut self, image: &Image<'_>, rect: TileRect, frame: &mut Frame) {
        let mut out = Vec::new();
        encode_planar_top_down(
            image,
            rect.x,
            rect.y,
            rect.width,
            rect.height,
            &mut self.scratch,
            &mut out,
        )
        .expect("planar");
        frame.planar.push((rect, out));
    }

    fn avc(&mut self, image: &Image<'_>, tiles: &[TileRect], frame: &mut Frame) {
        if tiles.is_empty() {
            return;
        }
        for rect in tiles {
            self.tile
                .convert_from(image, rect.x, rect.y, rect.width, rect.height)
                .expect("converts");
            self.tile.copy_into(&mut self.picture, rect.x, rect.y);
        }
        let mut stream = Vec::new();
        self.encoder
            .encode(&self.picture, &mut stream)
            .expect("encodes");
        frame.avc = Some((tiles.to_vec(), stream));
    }

    fn encode(&mut self, pixels: &[u8], changed: &[TileRect]) -> Frame {
        let image = image(pixels);
        let mut frame = Frame::default();
        match self.mode {
            Mode::AllPlanar => {
                for &rect in changed {
                    self.planar(&image, rect, &mut frame);
                }
            }
            Mode::AllH264 => self.avc(&image, changed, &mut frame),
            Mode::Adaptive => {
                let mut decisions = std::mem::take(&mut self.decisions);
                self.classifier
                    .classify(&image, changed, &mut decisions)
                    .expect("classifies");
                for &rect in decisions.lossless.iter().chain(&decisions.refresh) {
                    self.planar(&image, rect, &mut frame);
                }
                self.avc(&image, &decisions.lossy, &mut frame);
                self.decisions = decisions;
            }
        }
        // The payloads through ZGFX, as one message (the metablock's 10
        // bytes a region with the stream).
        let mut message = Vec::new();
        for (_, data) in &frame.planar {
            message.extend_from_slice(data);
        }
        if let Some((regions, stream)) = &frame.avc {
            message.extend_from_slice(&[0; 4]);
            message.resize(message.len() + regions.len() * 10, 0);
            message.extend_from_slice(stream);
        }
        let mut compressed = Vec::new();
        for chunk in message.chunks(1 << 20) {
            self.zgfx.compress(chunk, &mut compressed).expect("zgfx");
        }
        frame.bytes = compressed.len();
        frame
    }
}

/// The client: its screen, drawn from planar tiles and AVC420 regions
/// (BT.709 full range, MS-RDPEGFX 3.3.8.3.1).
struct Client {
    screen: Vec<u8>,
    decoder: H264Decoder,
    picture: I420,
}

impl Client {
    fn new() -> Self {
        Self {
            screen: vec![0; WIDTH * HEIGHT * 4],
            decoder: H264Decoder::new().expect("decoder"),
            picture: I420::default(),
        }
    }

    fn draw(&mut self, frame: &Frame) {
        for (rect, data) in &frame.planar {
            let flipped = decode_planar(data, rect.width, rect.height).expect("planar decodes");
            for (row, line) in flipped.chunks_exact(rect.width * 4).rev().enumerate() {
                let at = ((rect.y + row) * WIDTH + rect.x) * 4;
                self.screen[at..at + line.len()].copy_from_slice(line);
            }
        }
        if let Some((regions, stream)) = &frame.avc {
            self.decoder
                .decode(stream, &mut self.picture)
                .expect("decodes");
            let picture = &self.picture;
            for rect in regions {
                for y in rect.y..rect.y + rect.height {
                    for x in rect.x..rect.x + rect.width {
                        let luma = f64::from(picture.y[y * picture.width + x]);
                        let chroma = (y / 2) * (picture.width / 2) + x / 2;
                        let u = f64::from(picture.u[chroma]) - 128.0;
                        let v = f64::from(picture.v[chroma]) - 128.0;
                        let level = |value: f64| value.round().clamp(0.0, 255.0) as u8;
                        let at = (y * WIDTH + x) * 4;
                        self.screen[at..at + 4].copy_from_slice(&[
                            level(luma + 1.8556 * u),
                            level(luma - 0.1873 * u - 0.4681 * v),
                            level(luma + 1.5748 * v),
                            0xFF,
                        ]);
                    }
                }
            }
        }
    }
}

/// PSNR of the B, G, R of the pixels inside (`inside`) or outside the
/// video region; infinite when equal.
fn psnr(expected: &[u8], got: &[u8], inside: bool) -> f64 {
    psnr_of(expected, got, inside, VIDEO)
}

/// The video's tiles as a rectangle: the text under their edges goes
/// with the video.
fn video_tiles_area() -> (usize, usize, usize, usize) {
    let (left, top, width, height) = VIDEO;
    let (x, y) = (left / TILE * TILE, top / TILE * TILE);
    let (right, bottom) = (
        ((left + width).div_ceil(TILE) * TILE).min(WIDTH),
        ((top + height).div_ceil(TILE) * TILE).min(HEIGHT),
    );
    (x, y, right - x, bottom - y)
}

fn psnr_of(
    expected: &[u8],
    got: &[u8],
    inside: bool,
    (left, top, width, height): (usize, usize, usize, usize),
) -> f64 {
    let (mut squared, mut count) = (0f64, 0f64);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let in_video = (left..left + width).contains(&x) && (top..top + height).contains(&y);
            if in_video != inside {
                continue;
            }
            let at = (y * WIDTH + x) * 4;
            for channel in 0..3 {
                let delta = f64::from(expected[at + channel]) - f64::from(got[at + channel]);
                squared += delta * delta;
                count += 1.0;
            }
        }
    }
    if squared == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / (squared / count)).log10()
}

fn db(value: f64) -> String {
    if value.is_infinite() {
        "exact".into()
    } else {
        format!("{value:.1} dB")
    }
}

fn main() {
    let desktop = desktop(0);
    let frames: Vec<Vec<u8>> = (0..=STEADY_FRAMES)
        .map(|frame| mixed(&desktop, frame))
        .collect();
    let (all, video) = (all_tiles(), video_tiles());
    println!(
        "mixed {WIDTH}x{HEIGHT}: static text desktop, a {}x{} video region changing every frame ({} tiles a frame); {STEADY_FRAMES} steady frames after the first, median of {RUNS} runs, one thread; openh264 build: {}",
        VIDEO.2,
        VIDEO.3,
        video.len(),
        openh264_build()
    );
    for mode in [Mode::Adaptive, Mode::AllH264, Mode::AllPlanar] {
        let (mut run_ms, mut first_ms) = (Vec::new(), Vec::new());
        let (mut first_bytes, mut steady_bytes) = (0, 0);
        let (mut text_psnr, mut video_psnr) = (0.0, Vec::new());
        let mut text_outside_tiles = 0.0;
        let mut refresh = None;
        for run in 0..RUNS {
            let mut server = Server::new(mode);
            let mut client = Client::new();
            let start = Instant::now();
            let first = server.encode(&frames[0], &all);
            first_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            client.draw(&first);
            first_bytes = first.bytes;
            let (mut elapsed, mut bytes) = (0.0, 0);
            for pixels in &frames[1..] {
                let start = Instant::now();
                let frame = server.encode(pixels, &video);
                elapsed += start.elapsed().as_secs_f64() * 1000.0;
                bytes += frame.bytes;
                if run == 0 {
                    client.draw(&frame);
                    video_psnr.push(psnr(pixels, &client.screen, true));
                }
            }
            run_ms.push(elapsed / STEADY_FRAMES as f64);
            steady_bytes = bytes / STEADY_FRAMES;
            if run == 0 {
                let last = frames.last().expect("frames");
                text_psnr = psnr(last, &client.screen, false);
                text_outside_tiles = psnr_of(last, &client.screen, false, video_tiles_area());
                if mode == Mode::Adaptive {
                    // Motion stops: quiet frames until the refresh went.
                    let (mut tiles, mut bytes, mut quiet) = (0, 0, 0);
                    while quiet < 4 {
                        let frame = server.encode(last, &[]);
                        tiles += frame.planar.len();
                        bytes += frame.bytes;
                        client.draw(&frame);
                        quiet += 1;
                    }
                    let exact = client.screen == *last;
                    refresh = Some((tiles, bytes, exact));
                }
            }
        }
        println!(
            "{:<10} first frame {:>6.1} ms {:>7} B | steady: {:>8.2} ms/frame {:>8} B/frame | text {:>8} ({:>8} outside the video's tiles) | video {:>8} (median)",
            format!("{mode:?}"),
            median(first_ms),
            first_bytes,
            median(run_ms),
            steady_bytes,
            db(text_psnr),
            db(text_outside_tiles),
            db(median(video_psnr)),
        );
        if let Some((tiles, bytes, exact)) = refresh {
            println!(
                "{:<10} after the motion: {tiles} tiles refreshed losslessly, {bytes} B; screen pixel-exact: {exact}",
                ""
            );
        }
    }
}
