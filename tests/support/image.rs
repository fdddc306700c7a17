//! RGB screen captures: reading `xwd` output, comparing with what the
//! server drew, saving failures for a person to look at.

use std::io;
use std::path::Path;

/// Pixels as `[r, g, b]`, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<[u8; 3]>,
}

/// The XWDFileHeader fields we need (X11 XWDFile.h: 25 big-endian u32s).
const XWD_HEADER_FIELDS: usize = 25;
const ZPIXMAP: u32 = 2;
const LSB_FIRST: u32 = 0;

impl RgbImage {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            pixels: vec![[0; 3]; (width * height) as usize],
        }
    }

    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        self.pixels[(y * self.width + x) as usize]
    }

    /// Parses a 24- or 32-bit ZPixmap XWD dump.
    pub fn from_xwd(data: &[u8]) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("xwd: {what}"));
        if data.len() < XWD_HEADER_FIELDS * 4 {
            return Err(bad("short header"));
        }
        let field = |index: usize| {
            u32::from_be_bytes(data[index * 4..index * 4 + 4].try_into().expect("4 bytes"))
        };
        let header_size = field(0) as usize;
        let format = field(2);
        let (width, height) = (field(4), field(5));
        let byte_order = field(7);
        let bits_per_pixel = field(11);
        let bytes_per_line = field(12) as usize;
        let masks = [field(14), field(15), field(16)];
        let colors = field(19) as usize;
        if format != ZPIXMAP || !(bits_per_pixel == 32 || bits_per_pixel == 24) {
            return Err(bad("only 24/32-bit ZPixmap is supported"));
        }
        let start = header_size + colors * 12;
        let bytes_per_pixel = (bits_per_pixel / 8) as usize;
        if data.len() < start + bytes_per_line * height as usize {
            return Err(bad("truncated pixel data"));
        }
        let mut image = Self::new(width, height);
        for y in 0..height as usize {
            let row = &data[start + y * bytes_per_line..];
            for x in 0..width as usize {
                let bytes = &row[x * bytes_per_pixel..(x + 1) * bytes_per_pixel];
                let mut value = 0u32;
                for (index, &byte) in bytes.iter().enumerate() {
                    value |= if byte_order == LSB_FIRST {
                        u32::from(byte) << (8 * index)
                    } else {
                        u32::from(byte) << (8 * (bytes_per_pixel - 1 - index))
                    };
                }
                let channel = |mask: u32| ((value & mask) >> mask.trailing_zeros()) as u8;
                image.pixels[y * width as usize + x] =
                    [channel(masks[0]), channel(masks[1]), channel(masks[2])];
            }
        }
        Ok(image)
    }

    /// Compares the region at (`left`, `top`) of this capture with `expected`.
    pub fn compare_region(&self, left: u32, top: u32, expected: &RgbImage) -> Comparison {
        let mut comparison = Comparison::default();
        let mut squared_error = 0f64;
        for y in 0..expected.height {
            for x in 0..expected.width {
                let want = expected.get(x, y);
                let got = if left + x < self.width && top + y < self.height {
                    self.get(left + x, top + y)
                } else {
                    [0; 3]
                };
                for channel in 0..3 {
                    let delta = f64::from(want[channel]) - f64::from(got[channel]);
                    squared_error += delta * delta;
                }
                if want != got {
                    comparison.mismatches += 1;
                    if comparison.first_mismatches.len() < 5 {
                        comparison.first_mismatches.push((x, y, want, got));
                    }
                }
            }
        }
        let samples = f64::from(expected.width * expected.height * 3);
        let mse = squared_error / samples.max(1.0);
        comparison.psnr = if mse == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (255.0 * 255.0 / mse).log10()
        };
        comparison
    }

    /// Writes a binary PPM (viewable with most image tools).
    pub fn save_ppm(&self, path: &Path) -> io::Result<()> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        for pixel in &self.pixels {
            out.extend_from_slice(pixel);
        }
        std::fs::write(path, out)
    }
}

/// The result of comparing a capture with the expected picture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub mismatches: usize,
    /// (x, y, expected, got) of the first few differing pixels.
    pub first_mismatches: Vec<(u32, u32, [u8; 3], [u8; 3])>,
    pub psnr: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x1 32-bit LSB-first XWD image built from the header layout.
    fn tiny_xwd() -> Vec<u8> {
        let mut fields = [0u32; XWD_HEADER_FIELDS];
        fields[0] = 100 + 4; // header size: fields plus a 4-byte window name
        fields[1] = 7;
        fields[2] = ZPIXMAP;
        fields[3] = 24;
        fields[4] = 2;
        fields[5] = 1;
        fields[7] = LSB_FIRST;
        fields[11] = 32;
        fields[12] = 8;
        fields[14] = 0xFF0000;
        fields[15] = 0x00FF00;
        fields[16] = 0x0000FF;
        let mut data: Vec<u8> = fields.iter().flat_map(|f| f.to_be_bytes()).collect();
        data.extend_from_slice(b"win\0");
        data.extend_from_slice(&[0x30, 0x20, 0x10, 0x00, 0xFF, 0x00, 0x00, 0x00]);
        data
    }

    #[test]
    fn parses_xwd_and_compares() {
        let image = RgbImage::from_xwd(&tiny_xwd()).unwrap();
        assert_eq!(image.pixels, [[0x10, 0x20, 0x30], [0, 0, 0xFF]]);
        let mut expected = image.clone();
        assert_eq!(image.compare_region(0, 0, &expected).mismatches, 0);
        expected.pixels[1] = [0, 0, 0xFE];
        let comparison = image.compare_region(0, 0, &expected);
        assert_eq!(comparison.mismatches, 1);
        assert!(comparison.psnr > 40.0);
        assert!(RgbImage::from_xwd(&tiny_xwd()[..100]).is_err());
    }
}
