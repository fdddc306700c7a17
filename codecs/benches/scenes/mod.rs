//! The synthetic 1920x1080 scenes and helpers the H.264 benches share
//! (`h264.rs`, `adaptive.rs`); each uses a part of them.
#![allow(dead_code)]

pub const WIDTH: usize = 1920;
pub const HEIGHT: usize = 1080;

pub fn put(pixels: &mut [u8], x: usize, y: usize, [r, g, b]: [u8; 3]) {
    let at = (y * WIDTH + x) * 4;
    pixels[at..at + 4].copy_from_slice(&[b, g, r, 0xFF]);
}

/// A desktop: flat background, windows with title bars and lines of
/// one-pixel "text" whose glyphs change with `frame` (typing, scrolling).
pub fn desktop(frame: usize) -> Vec<u8> {
    let mut pixels = vec![0u8; WIDTH * HEIGHT * 4];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            put(&mut pixels, x, y, [32, 72, 120]);
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
                    let line = (y - top - 28 + frame * 3) / 16;
                    let in_glyph = (y - top - 28 + frame * 3) % 16 < 10;
                    let column = (x - left) / 7;
                    let stroke = (x - left) % 7 < 2 || (y % 5 == 0 && (x - left) % 7 < 5);
                    let letter = (line * 31 + column * 17) % 11 != 0 && column % 9 != 8;
                    if in_glyph && stroke && letter && x > left + 10 && x + 10 < left + width {
                        [20, 20, 20]
                    } else {
                        [245, 245, 245]
                    }
                };
                put(&mut pixels, x, y, colour);
            }
        }
    }
    pixels
}

/// One pixel (R, G, B) of a photo with grain at (`x`, `y`) of an
/// endless picture: smooth waves of colour plus noise.
pub fn photo_pixel(x: usize, y: usize) -> [u8; 3] {
    let grain = ((x * 7919 + y * 104_729) % 17) as f32 - 8.0;
    let (fx, fy) = (x as f32 / 97.0, y as f32 / 61.0);
    let r = 128.0 + 90.0 * (fx.sin() * fy.cos()) + grain;
    let g = 128.0 + 80.0 * ((fx * 0.7 + fy).sin()) + grain;
    let b = 128.0 + 70.0 * ((fy * 1.3 - fx * 0.4).cos()) + grain;
    [r as u8, g as u8, b as u8]
}

/// A photo with grain, panned by `frame` pixels.
pub fn photo(frame: usize) -> Vec<u8> {
    let mut pixels = vec![0u8; WIDTH * HEIGHT * 4];
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            put(&mut pixels, x, y, photo_pixel(x + frame * 4, y + frame * 2));
        }
    }
    pixels
}

pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

/// Which openh264 build the bench links: its build script's output says
/// whether the x86 assembly (nasm) went in.
pub fn openh264_build() -> String {
    let Some(profile_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    else {
        return "unknown".into();
    };
    let Ok(entries) = std::fs::read_dir(profile_dir.join("build")) else {
        return "unknown".into();
    };
    let newest = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("openh264-sys2-")
        })
        .filter_map(|entry| {
            let output = entry.path().join("output");
            let modified = std::fs::metadata(&output).ok()?.modified().ok()?;
            Some((modified, entry.path()))
        })
        .max();
    let Some((_, dir)) = newest else {
        return "unknown".into();
    };
    let Ok(text) = std::fs::read_to_string(dir.join("output")) else {
        return "unknown".into();
    };
    if text.contains("Failed to compile NASM")
        || text.contains("NASM compilation disabled")
        || text.contains("No NASM configuration")
    {
        return "C fallback (no nasm: about 3x slower)".into();
    }
    // cc names its objects with a 16-digit hash prefix; nasm's have none.
    let assembled = std::fs::read_dir(dir.join("out"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| {
                    name.ends_with(".o")
                        && name
                            .split_once('-')
                            .is_none_or(|(prefix, _)| prefix.len() != 16)
                })
                .count()
        })
        .unwrap_or(0);
    if assembled > 0 {
        format!("nasm ({assembled} assembly objects)")
    } else {
        "C fallback (no assembly objects)".into()
    }
}
