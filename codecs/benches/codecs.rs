//! Encoder benchmark on fixed synthetic 1920x1080 frames:
//! `cargo bench -p rdpserve-codecs`. Prints the median ms/frame of 21 runs
//! and the bytes/frame of each codec, single-threaded, encoding the frame as
//! the engine does (64x64 tiles).

use std::time::Instant;

use rdpserve_codecs::classify::{ClassifierSettings, ContentClassifier, Decisions};
use rdpserve_codecs::damage::{Framebuffer, TileRect};
use rdpserve_codecs::zgfx::{ZgfxCompressor, ZgfxDecompressor};
use rdpserve_codecs::{Avc444Version, Avc444Views, I420};
use rdpserve_codecs::{
    ColorDepth, Image, PixelFormat, QoizEncoder, RfxEncoder, RfxQuant, RfxRect, RlgrMode,
    SourceImage, convert_row, encode_interleaved, encode_planar, encode_qoi,
    encode_uncompressed_32,
};

const WIDTH: usize = 1920;
const HEIGHT: usize = 1080;
const TILE: usize = 64;
const RUNS: usize = 21;

/// A "desktop": flat background, windows with title-bar gradients, and
/// anti-aliased text-like strokes.
fn desktop_frame() -> Vec<u8> {
    let mut pixels = vec![0u8; WIDTH * HEIGHT * 4];
    let mut set = |x: usize, y: usize, [r, g, b]: [u8; 3]| {
        let at = (y * WIDTH + x) * 4;
        pixels[at..at + 4].copy_from_slice(&[b, g, r, 0xFF]);
    };
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            set(x, y, [32, 72, 120]);
        }
    }
    for (left, top, width, height) in [
        (100, 80, 900, 600),
        (700, 300, 1000, 650),
        (40, 700, 500, 300),
    ] {
        for y in top..top + height {
            for x in left..left + width {
                let colour = if y < top + 28 {
                    let level = (x - left) * 200 / width;
                    [40 + level as u8 / 4, 90 + level as u8 / 3, 200]
                } else {
                    [245, 245, 245]
                };
                set(x, y, colour);
            }
        }
        // Lines of "text": short strokes with grey edge pixels.
        for line in 0..(height - 40) / 18 {
            let y = top + 40 + line * 18;
            let mut x = left + 12;
            let mut seed = (line * 7919 + left) as u32;
            while x + 10 < left + width - 12 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let glyph = 4 + (seed >> 16) as usize % 6;
                for dx in 0..glyph {
                    for dy in 0..10 {
                        if (dx + dy + (seed as usize >> 8)) % 3 == 0 {
                            set(x + dx, y + dy, [20, 20, 20]);
                        } else if (dx * dy) % 5 == 1 {
                            set(x + dx, y + dy, [140, 140, 140]);
                        }
                    }
                }
                x += glyph + 2 + (seed >> 24) as usize % 4;
            }
        }
    }
    pixels
}

/// A "photo": smooth colour fields with fine noise.
fn photo_frame() -> Vec<u8> {
    let mut pixels = Vec::with_capacity(WIDTH * HEIGHT * 4);
    let mut seed = 12_345u32;
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (seed >> 28) as f32 - 8.0;
            let (fx, fy) = (x as f32 / 97.0, y as f32 / 61.0);
            let r = 128.0 + 90.0 * (fx.sin() * fy.cos()) + noise;
            let g = 128.0 + 80.0 * ((fx * 0.7 + fy).sin()) + noise;
            let b = 128.0 + 70.0 * ((fy * 1.3 - fx * 0.4).cos()) + noise;
            pixels.extend_from_slice(&[b as u8, g as u8, r as u8, 0xFF]);
        }
    }
    pixels
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn bench(
    name: &str,
    frame: &[u8],
    encode_tile: impl FnMut(&Image<'_>, usize, usize, usize, usize, &mut Vec<u8>),
) {
    bench_tiles(name, frame, TILE, encode_tile);
}

/// Like [`bench`], with tiles of `tile` pixels square (the whole frame as
/// one rect when `tile` is at least the frame's width and height).
fn bench_tiles(
    name: &str,
    frame: &[u8],
    tile: usize,
    mut encode_tile: impl FnMut(&Image<'_>, usize, usize, usize, usize, &mut Vec<u8>),
) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    let mut out = Vec::with_capacity(WIDTH * HEIGHT * 4);
    let mut samples = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..RUNS {
        out.clear();
        let start = Instant::now();
        for y in (0..HEIGHT).step_by(tile) {
            for x in (0..WIDTH).step_by(tile) {
                encode_tile(
                    &image,
                    x,
                    y,
                    tile.min(WIDTH - x),
                    tile.min(HEIGHT - y),
                    &mut out,
                );
            }
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        bytes = out.len();
    }
    println!(
        "{name:<28} {:>8.2} ms/frame {:>10} bytes/frame",
        median_ms(samples),
        bytes
    );
}

/// Damage detection: an unchanged frame, and a frame with 15 changed 64x64
/// tiles (detection plus planar encoding of those tiles).
fn bench_damage(frame: &[u8]) {
    let image = |data| Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data,
    };
    let source = |data| SourceImage::from(image(data));
    let mut shadow = Framebuffer::new(WIDTH, HEIGHT);
    let mut changed = Vec::new();
    shadow
        .update(&source(frame), (0, 0), TILE, &mut changed)
        .expect("fits");
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        changed.clear();
        let start = Instant::now();
        shadow
            .update(&source(frame), (0, 0), TILE, &mut changed)
            .expect("fits");
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(changed.is_empty());
    }
    println!(
        "{:<28} {:>8.3} ms/frame {:>10} bytes/frame",
        "damage/unchanged",
        median_ms(samples),
        0
    );

    // Two frames that differ in 15 tiles spread over the screen.
    let mut other = frame.to_vec();
    for index in 0..15 {
        let (tx, ty) = ((index * 7) % 30, (index * 5) % 16);
        let at = ((ty * TILE + 10) * WIDTH + tx * TILE + 10) * 4;
        other[at] ^= 0xFF;
    }
    let frames = [frame, &other[..]];
    let (mut scratch, mut out) = (Vec::new(), Vec::new());
    let mut samples = Vec::new();
    for run in 0..RUNS {
        changed.clear();
        out.clear();
        let current = image(frames[(run + 1) % 2]);
        let start = Instant::now();
        shadow
            .update(&current.into(), (0, 0), TILE, &mut changed)
            .expect("fits");
        for tile in &changed {
            encode_planar(
                &current,
                tile.x,
                tile.y,
                tile.width,
                tile.height,
                &mut scratch,
                &mut out,
            )
            .expect("fits");
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(changed.len(), 15);
    }
    println!(
        "{:<28} {:>8.3} ms/frame {:>10} bytes/frame",
        "damage+planar/15 tiles",
        median_ms(samples),
        out.len()
    );

    // The application supplies the damage: an unchanged frame costs nothing.
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        changed.clear();
        let start = Instant::now();
        shadow
            .update_damaged(&source(frame), (0, 0), TILE, &[], &mut changed)
            .expect("fits");
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(changed.is_empty());
    }
    println!(
        "{:<28} {:>8.4} ms/frame {:>10} bytes/frame",
        "damage supplied/unchanged",
        median_ms(samples),
        0
    );

    // 15 changed tiles end to end as the engine does it for RemoteFX:
    // detection into the shadow, then RemoteFX of those tiles from the
    // shadow; once found by comparison, once from supplied damage.
    let damage: Vec<TileRect> = (0..15)
        .map(|index| {
            let (tx, ty) = ((index * 7) % 30, (index * 5) % 16);
            TileRect {
                x: tx * TILE + 10,
                y: ty * TILE + 10,
                width: 1,
                height: 1,
            }
        })
        .collect();
    for supplied in [false, true] {
        let mut encoder = RfxEncoder::new(RfxQuant::default(), RlgrMode::Rlgr3).expect("encoder");
        let mut samples = Vec::new();
        let mut rects = Vec::new();
        for run in 0..RUNS {
            changed.clear();
            out.clear();
            // The shadow holds `other` here: start from `frame`.
            let current = image(frames[run % 2]);
            let start = Instant::now();
            if supplied {
                shadow
                    .update_damaged(&current.into(), (0, 0), TILE, &damage, &mut changed)
                    .expect("fits");
            } else {
                shadow
                    .update(&current.into(), (0, 0), TILE, &mut changed)
                    .expect("fits");
            }
            rects.clear();
            rects.extend(changed.iter().map(|tile| RfxRect {
                x: tile.x as u16,
                y: tile.y as u16,
                width: tile.width as u16,
                height: tile.height as u16,
            }));
            encoder
                .encode_frame(&shadow.image(), &rects, false, &mut out)
                .expect("fits");
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(changed.len(), 15);
        }
        let name = if supplied {
            "damage supplied+rfx/15 tiles"
        } else {
            "damage+rfx/15 tiles"
        };
        println!(
            "{:<28} {:>8.3} ms/frame {:>10} bytes/frame",
            name,
            median_ms(samples),
            out.len()
        );
    }
}

/// RemoteFX: the whole frame as one rect, every tile, no headers.
fn bench_rfx(name: &str, frame: &[u8], mode: RlgrMode) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    let rects = [RfxRect {
        x: 0,
        y: 0,
        width: WIDTH as u16,
        height: HEIGHT as u16,
    }];
    let mut encoder = RfxEncoder::new(RfxQuant::default(), mode).expect("valid quant");
    let mut out = Vec::with_capacity(WIDTH * HEIGHT * 4);
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        out.clear();
        let start = Instant::now();
        encoder
            .encode_frame(&image, &rects, false, &mut out)
            .expect("encodes");
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "{name:<28} {:>8.2} ms/frame {:>10} bytes/frame",
        median_ms(samples),
        out.len()
    );
}

/// RemoteFX on one thread, and with the `rayon` feature also on all.
fn bench_rfx_all(frame_name: &str, frame: &[u8]) {
    for (mode, mode_name) in [(RlgrMode::Rlgr1, "rlgr1"), (RlgrMode::Rlgr3, "rlgr3")] {
        let name = format!("remotefx-{mode_name}/{frame_name}");
        #[cfg(not(feature = "rayon"))]
        bench_rfx(&name, frame, mode);
        #[cfg(feature = "rayon")]
        {
            let pool = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool")
            };
            pool(1).install(|| bench_rfx(&name, frame, mode));
            let threads = rayon::current_num_threads();
            pool(threads).install(|| bench_rfx(&format!("{name} x{threads}"), frame, mode));
        }
    }
}

/// QOI and QOIZ, as 64x64 tiles and as the whole frame in one rect. QOIZ
/// is warm: its stream has taken the same frame once before timing starts
/// (and each run then follows one of the same frame, so this is its best
/// case for unchanged content).
fn bench_qoi(frame_name: &str, frame: &[u8]) {
    for (tile, tiling) in [(TILE, "tiles"), (WIDTH.max(HEIGHT), "frame")] {
        bench_tiles(
            &format!("qoi-{tiling}/{frame_name}"),
            frame,
            tile,
            |image, x, y, w, h, out| {
                encode_qoi(image, x, y, w, h, out).expect("in bounds");
            },
        );
        let mut encoder = QoizEncoder::new().expect("compressor");
        let image = Image {
            width: WIDTH,
            height: HEIGHT,
            stride: WIDTH * 4,
            data: frame,
        };
        encoder
            .encode(&image, 0, 0, WIDTH, HEIGHT, &mut Vec::new())
            .expect("in bounds");
        bench_tiles(
            &format!("qoiz-{tiling}/{frame_name}"),
            frame,
            tile,
            |image, x, y, w, h, out| {
                encoder.encode(image, x, y, w, h, out).expect("in bounds");
            },
        );
    }
}

/// QOIZ on a new stream each run: content the stream has no history of
/// (creating the encoder is not timed).
fn bench_qoiz_cold(frame_name: &str, frame: &[u8]) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    for (tile, tiling) in [(TILE, "tiles"), (WIDTH.max(HEIGHT), "frame")] {
        let mut out = Vec::with_capacity(WIDTH * HEIGHT * 4);
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            out.clear();
            let mut encoder = QoizEncoder::new().expect("compressor");
            let start = Instant::now();
            for y in (0..HEIGHT).step_by(tile) {
                for x in (0..WIDTH).step_by(tile) {
                    let (w, h) = (tile.min(WIDTH - x), tile.min(HEIGHT - y));
                    encoder
                        .encode(&image, x, y, w, h, &mut out)
                        .expect("in bounds");
                }
            }
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "{:<28} {:>8.2} ms/frame {:>10} bytes/frame",
            format!("qoiz-{tiling}-cold/{frame_name}"),
            median_ms(samples),
            out.len()
        );
    }
}

/// `frame` (B, G, R, X) written in `format`, rows packed.
fn in_format(frame: &[u8], format: PixelFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(WIDTH * HEIGHT * format.bytes_per_pixel());
    for pixel in frame.chunks_exact(4) {
        let [b, g, r, x] = [pixel[0], pixel[1], pixel[2], pixel[3]];
        let rgb565 = |top: u8, bottom: u8| {
            (((u16::from(top) >> 3) << 11) | ((u16::from(g) >> 2) << 5) | (u16::from(bottom) >> 3))
                .to_le_bytes()
        };
        match format {
            PixelFormat::BgrX32 | PixelFormat::BgrA32 => out.extend_from_slice(&[b, g, r, x]),
            PixelFormat::XBgr32 | PixelFormat::ABgr32 => out.extend_from_slice(&[x, b, g, r]),
            PixelFormat::RgbX32 | PixelFormat::RgbA32 => out.extend_from_slice(&[r, g, b, x]),
            PixelFormat::XRgb32 | PixelFormat::ARgb32 => out.extend_from_slice(&[x, r, g, b]),
            PixelFormat::Bgr24 => out.extend_from_slice(&[b, g, r]),
            PixelFormat::Rgb24 => out.extend_from_slice(&[r, g, b]),
            PixelFormat::Bgr16 => out.extend_from_slice(&rgb565(b, r)),
            PixelFormat::Rgb16 => out.extend_from_slice(&rgb565(r, b)),
            _ => unreachable!("every format is listed"),
        }
    }
    out
}

/// Pixel formats: a whole 1080p frame in each format copied into a shadow
/// that must take every tile (a first frame, a refresh), which is where
/// the conversion happens, and the bare conversion of the frame's rows
/// into a buffer; then the same frame again, unchanged (the comparison,
/// converting as it reads). `BgrX32` is the plain copy the others are
/// measured against.
fn bench_formats(frame: &[u8]) {
    let mut shadow = Framebuffer::new(WIDTH, HEIGHT);
    let mut target = vec![0u8; WIDTH * HEIGHT * 4];
    let mut changed = Vec::new();
    let mut copy = [0.0; 3];
    for format in [
        PixelFormat::BgrX32,
        PixelFormat::BgrA32,
        PixelFormat::XBgr32,
        PixelFormat::ABgr32,
        PixelFormat::RgbX32,
        PixelFormat::RgbA32,
        PixelFormat::XRgb32,
        PixelFormat::ARgb32,
        PixelFormat::Bgr24,
        PixelFormat::Rgb24,
        PixelFormat::Bgr16,
        PixelFormat::Rgb16,
    ] {
        let pixels = in_format(frame, format);
        let stride = WIDTH * format.bytes_per_pixel();
        let source = SourceImage {
            width: WIDTH,
            height: HEIGHT,
            stride,
            format,
            data: &pixels,
        };
        let mut shadow_samples = Vec::with_capacity(RUNS);
        let mut row_samples = Vec::with_capacity(RUNS);
        // One run untimed: pages touched, caches as in the steady state.
        for run in 0..=RUNS {
            changed.clear();
            shadow.invalidate();
            let start = Instant::now();
            shadow
                .update(&source, (0, 0), TILE, &mut changed)
                .expect("fits");
            shadow_samples.push(start.elapsed().as_secs_f64() * 1000.0);
            let start = Instant::now();
            for (row, out) in pixels
                .chunks_exact(stride)
                .zip(target.chunks_exact_mut(WIDTH * 4))
            {
                convert_row(format, row, out);
            }
            row_samples.push(start.elapsed().as_secs_f64() * 1000.0);
            if run == 0 {
                shadow_samples.clear();
                row_samples.clear();
            }
        }
        assert_eq!(&shadow.image().data[..12], &target[..12]);
        let mut unchanged_samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            changed.clear();
            let start = Instant::now();
            shadow
                .update(&source, (0, 0), TILE, &mut changed)
                .expect("fits");
            unchanged_samples.push(start.elapsed().as_secs_f64() * 1000.0);
            assert!(changed.is_empty());
        }
        let medians = [
            median_ms(shadow_samples),
            median_ms(row_samples),
            median_ms(unchanged_samples),
        ];
        if format == PixelFormat::BgrX32 {
            copy = medians;
        }
        println!(
            "{:<16} into shadow {:>6.3} ms ({:.2}x)  rows {:>6.3} ms ({:.2}x)  unchanged {:>6.3} ms ({:.2}x)",
            format!("formats/{format}"),
            medians[0],
            medians[0] / copy[0],
            medians[1],
            medians[1] / copy[1],
            medians[2],
            medians[2] / copy[2],
        );
    }
}

/// ZGFX (RDP 8.0 bulk compression) on what the Graphics Pipeline sends:
/// each 64x64 tile's planar or uncompressed (top-down rows) payload as one
/// PDU, through one compressor that starts the frame with an empty
/// history (a frame's first showing; a repeat would cost almost nothing).
fn bench_zgfx(frame_name: &str, frame: &[u8]) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    let mut scratch = Vec::new();
    for payload in ["planar", "uncompressed"] {
        let mut tiles = Vec::new();
        for y in (0..HEIGHT).step_by(TILE) {
            for x in (0..WIDTH).step_by(TILE) {
                let (w, h) = (TILE.min(WIDTH - x), TILE.min(HEIGHT - y));
                let mut tile = Vec::new();
                if payload == "planar" {
                    encode_planar(&image, x, y, w, h, &mut scratch, &mut tile).expect("in bounds");
                } else {
                    for row in y..y + h {
                        let at = row * WIDTH * 4 + x * 4;
                        tile.extend_from_slice(&frame[at..at + w * 4]);
                    }
                }
                tiles.push(tile);
            }
        }
        let raw: usize = tiles.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(raw + raw / 8);
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            out.clear();
            let mut compressor = ZgfxCompressor::new();
            let start = Instant::now();
            for tile in &tiles {
                compressor.compress(tile, &mut out).expect("compress");
            }
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let mut check = Vec::with_capacity(raw);
        let mut decoder = ZgfxDecompressor::new();
        let mut at = 0;
        let mut replay = ZgfxCompressor::new();
        for tile in &tiles {
            let mut one = Vec::new();
            replay.compress(tile, &mut one).expect("compress");
            decoder
                .decompress(&one, usize::MAX, &mut check)
                .expect("round trip");
            at += one.len();
        }
        assert_eq!(at, out.len());
        assert_eq!(check.len(), raw);
        println!(
            "{:<28} {:>8.2} ms/frame {:>10} -> {:>9} bytes/frame ({:.1}% saved)",
            format!("zgfx/{payload}/{frame_name}"),
            median_ms(samples),
            raw,
            out.len(),
            100.0 - 100.0 * out.len() as f64 / raw as f64
        );
    }
}

/// Median and fastest ms of `RUNS` runs of `run`. With more runnable
/// threads than cores, a run longer than a scheduler slice is often
/// preempted and the median doubles or triples; the fastest run is the
/// cost without preemption.
fn time_ms(mut run: impl FnMut()) -> (f64, f64) {
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        run();
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let fastest = samples.iter().copied().fold(f64::INFINITY, f64::min);
    (median_ms(samples), fastest)
}

/// Prints a `time_ms` result.
fn print_timed(name: &str, (median, fastest): (f64, f64)) {
    println!("{name:<28} {median:>8.2} ms/frame (fastest {fastest:.2})");
}

/// B, G, R, X to I420 (BT.709, full range) for H.264, and to AVC444's two
/// views, on the whole frame; beside a copy of the frame, the floor.
fn bench_yuv(frame_name: &str, frame: &[u8]) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    let mut copy = vec![0u8; frame.len()];
    print_timed(
        &format!("memcpy/{frame_name}"),
        time_ms(|| copy.copy_from_slice(std::hint::black_box(frame))),
    );
    let mut planes = I420::default();
    print_timed(
        &format!("bgrx-to-i420/{frame_name}"),
        time_ms(|| {
            planes
                .convert_from(std::hint::black_box(&image), 0, 0, WIDTH, HEIGHT)
                .expect("in bounds");
        }),
    );
    let mut views = Avc444Views::default();
    for (version, name) in [(Avc444Version::V1, "v1"), (Avc444Version::V2, "v2")] {
        print_timed(
            &format!("bgrx-to-avc444{name}/{frame_name}"),
            time_ms(|| {
                views
                    .convert_from(std::hint::black_box(&image), 0, 0, WIDTH, HEIGHT, version)
                    .expect("in bounds");
            }),
        );
    }
}

/// The content classifier on every tile of a frame (its worst case: a
/// full-screen change), and on a 640x360 video's tiles over the desktop.
fn bench_classify(frame_name: &str, frame: &[u8]) {
    let image = Image {
        width: WIDTH,
        height: HEIGHT,
        stride: WIDTH * 4,
        data: frame,
    };
    let tiles: Vec<TileRect> = (0..HEIGHT.div_ceil(TILE))
        .flat_map(|row| {
            (0..WIDTH.div_ceil(TILE)).map(move |column| TileRect {
                x: column * TILE,
                y: row * TILE,
                width: TILE.min(WIDTH - column * TILE),
                height: TILE.min(HEIGHT - row * TILE),
            })
        })
        .collect();
    let video: Vec<TileRect> = tiles
        .iter()
        .copied()
        .filter(|tile| (640..1280).contains(&tile.x) && (320..704).contains(&tile.y))
        .collect();
    let mut decisions = Decisions::default();
    for (name, changed) in [("all-tiles", &tiles), ("video-tiles", &video)] {
        let mut classifier =
            ContentClassifier::new(WIDTH, HEIGHT, TILE, ClassifierSettings::default());
        let timed = time_ms(|| {
            classifier
                .classify(std::hint::black_box(&image), changed, &mut decisions)
                .expect("on the grid");
        });
        print_timed(&format!("classify-{name}/{frame_name}"), timed);
        println!(
            "{:<28} {} lossless, {} lossy",
            "",
            decisions.lossless.len(),
            decisions.lossy.len()
        );
    }
}

fn main() {
    // `cargo bench -p rdpserve-codecs -- remotefx` runs only RemoteFX,
    // `-- qoi` only QOI and QOIZ, `-- planar` only planar, `-- damage`
    // only damage detection, `-- formats` only pixel format conversion,
    // `-- zgfx` only ZGFX on planar and uncompressed payloads, `-- yuv`
    // only B, G, R, X to I420 and to AVC444's views (beside a memcpy),
    // `-- classify` only the content classifier.
    let only_damage = std::env::args().any(|argument| argument == "damage");
    let only_remotefx = std::env::args().any(|argument| argument == "remotefx");
    let only_planar = std::env::args().any(|argument| argument == "planar");
    let only_qoi = std::env::args().any(|argument| argument == "qoi");
    let only_formats = std::env::args().any(|argument| argument == "formats");
    let only_zgfx = std::env::args().any(|argument| argument == "zgfx");
    let only_yuv = std::env::args().any(|argument| argument == "yuv");
    let only_classify = std::env::args().any(|argument| argument == "classify");
    let frames = [("desktop", desktop_frame()), ("photo", photo_frame())];
    println!("1920x1080, 64x64 tiles, median of {RUNS} runs, one thread");
    if only_damage {
        bench_damage(&frames[0].1);
        return;
    }
    if only_formats {
        bench_formats(&frames[1].1);
        return;
    }
    if only_yuv {
        for (frame_name, frame) in &frames {
            bench_yuv(frame_name, frame);
        }
        return;
    }
    if only_classify {
        for (frame_name, frame) in &frames {
            bench_classify(frame_name, frame);
        }
        return;
    }
    if only_zgfx {
        for (frame_name, frame) in &frames {
            bench_zgfx(frame_name, frame);
        }
        return;
    }
    if only_remotefx {
        for (frame_name, frame) in &frames {
            bench_rfx_all(frame_name, frame);
        }
        return;
    }
    if only_planar {
        let mut scratch = Vec::new();
        for (frame_name, frame) in &frames {
            bench(
                &format!("planar/{frame_name}"),
                frame,
                |image, x, y, w, h, out| {
                    encode_planar(image, x, y, w, h, &mut scratch, out).expect("in bounds");
                },
            );
        }
        return;
    }
    if only_qoi {
        for (frame_name, frame) in &frames {
            bench_qoi(frame_name, frame);
            bench_qoiz_cold(frame_name, frame);
        }
        return;
    }
    bench_damage(&frames[0].1);
    bench_formats(&frames[1].1);
    for (frame_name, frame) in &frames {
        bench_rfx_all(frame_name, frame);
        bench(
            &format!("uncompressed/{frame_name}"),
            frame,
            |image, x, y, w, h, out| {
                encode_uncompressed_32(image, x, y, w, h, out).expect("in bounds");
            },
        );
        let mut scratch = Vec::new();
        bench(
            &format!("planar/{frame_name}"),
            frame,
            |image, x, y, w, h, out| {
                encode_planar(image, x, y, w, h, &mut scratch, out).expect("in bounds");
            },
        );
        bench_qoi(frame_name, frame);
        bench_qoiz_cold(frame_name, frame);
        bench_zgfx(frame_name, frame);
        bench_yuv(frame_name, frame);
        bench_classify(frame_name, frame);
        let mut converted = Vec::new();
        for depth in [ColorDepth::Bpp16, ColorDepth::Bpp24] {
            let name = format!("interleaved{}/{frame_name}", depth.bits());
            bench(&name, frame, |image, x, y, w, h, out| {
                encode_interleaved(image, x, y, w, h, depth, &mut converted, out)
                    .expect("in bounds");
            });
        }
    }
}
