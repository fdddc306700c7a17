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

/// XWDFileHeader (X11 `XWDFile.h`, file version 7): 25 big-endian u32
/// fields, then the NUL-terminated window name up to `header_size`, then
/// `ncolors` 12-byte XWDColor entries, then the pixels.
const XWD_HEADER_FIELDS: usize = 25;
const XWD_HEADER_SIZE: usize = XWD_HEADER_FIELDS * 4;
const XWD_COLOR_SIZE: usize = 12;
const XWD_FILE_VERSION: u32 = 7;
/// The header field indices this parser reads.
const HEADER_SIZE: usize = 0;
const FILE_VERSION: usize = 1;
const PIXMAP_FORMAT: usize = 2;
const PIXMAP_WIDTH: usize = 4;
const PIXMAP_HEIGHT: usize = 5;
const BYTE_ORDER: usize = 7;
const BITS_PER_PIXEL: usize = 11;
const BYTES_PER_LINE: usize = 12;
const VISUAL_CLASS: usize = 13;
const RED_MASK: usize = 14;
const GREEN_MASK: usize = 15;
const BLUE_MASK: usize = 16;
const NCOLORS: usize = 19;
/// `pixmap_format` ZPixmap: whole pixels, one after the other.
const ZPIXMAP: u32 = 2;
/// `byte_order` LSBFirst.
const LSB_FIRST: u32 = 0;
/// Visual classes whose pixels are masks of red, green and blue.
const TRUE_COLOR: u32 = 4;
const DIRECT_COLOR: u32 = 5;
/// Larger than any screen a test makes; bounds the allocation a corrupt
/// header can ask for.
const MAX_DIMENSION: u32 = 16384;

impl RgbImage {
    /// A black image.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            pixels: vec![[0; 3]; width as usize * height as usize],
        }
    }

    /// The pixel at (x, y); panics outside the image, like slice indexing.
    pub fn get(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "({x}, {y}) outside the image"
        );
        self.pixels[y as usize * self.width as usize + x as usize]
    }

    /// Parses an `xwd` dump: 16-, 24- or 32-bit ZPixmap (channels narrower
    /// than 8 bits widened by repeating their high bits, as rdpserve's
    /// 5-6-5 conversion does), TrueColor or DirectColor,
    /// either byte order. Corrupt input is an `InvalidData` error.
    pub fn from_xwd(data: &[u8]) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("xwd: {what}"));
        let header = data
            .get(..XWD_HEADER_SIZE)
            .ok_or_else(|| bad("short header"))?;
        let field = |index: usize| {
            let bytes = &header[index * 4..index * 4 + 4];
            u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        };
        if field(FILE_VERSION) != XWD_FILE_VERSION {
            return Err(bad("not a version 7 xwd file"));
        }
        let header_size = field(HEADER_SIZE) as usize;
        if header_size < XWD_HEADER_SIZE {
            return Err(bad("header size smaller than the header"));
        }
        let (width, height) = (field(PIXMAP_WIDTH), field(PIXMAP_HEIGHT));
        if width > MAX_DIMENSION || height > MAX_DIMENSION {
            return Err(bad("image too large"));
        }
        if field(PIXMAP_FORMAT) != ZPIXMAP {
            return Err(bad("only ZPixmap is supported"));
        }
        if !matches!(field(VISUAL_CLASS), TRUE_COLOR | DIRECT_COLOR) {
            return Err(bad("only TrueColor and DirectColor visuals are supported"));
        }
        let bytes_per_pixel = match field(BITS_PER_PIXEL) {
            16 => 2,
            24 => 3,
            32 => 4,
            _ => return Err(bad("only 16, 24 and 32 bits per pixel are supported")),
        };
        let bytes_per_line = field(BYTES_PER_LINE) as usize;
        if bytes_per_line < width as usize * bytes_per_pixel {
            return Err(bad("lines shorter than their pixels"));
        }
        let masks = [field(RED_MASK), field(GREEN_MASK), field(BLUE_MASK)];
        if masks.contains(&0) {
            return Err(bad("empty colour mask"));
        }
        let colors = field(NCOLORS) as usize;
        let start = colors
            .checked_mul(XWD_COLOR_SIZE)
            .and_then(|size| size.checked_add(header_size))
            .ok_or_else(|| bad("colour map too large"))?;
        let pixels = data
            .get(start..)
            .ok_or_else(|| bad("truncated colour map"))?;
        // The last line need not carry its padding.
        let needed = match height {
            0 => Some(0),
            _ => bytes_per_line
                .checked_mul(height as usize - 1)
                .and_then(|lines| lines.checked_add(width as usize * bytes_per_pixel)),
        };
        if needed.is_none_or(|needed| pixels.len() < needed) {
            return Err(bad("truncated pixel data"));
        }
        let little_endian = field(BYTE_ORDER) == LSB_FIRST;
        let mut image = Self::new(width, height);
        if width == 0 {
            return Ok(image);
        }
        let rows = pixels.chunks(bytes_per_line).take(height as usize);
        for (row, out) in rows.zip(image.pixels.chunks_exact_mut(width as usize)) {
            for (bytes, out) in row.chunks_exact(bytes_per_pixel).zip(out) {
                let value = bytes
                    .iter()
                    .enumerate()
                    .fold(0u32, |value, (index, &byte)| {
                        let shift = if little_endian {
                            8 * index
                        } else {
                            8 * (bytes_per_pixel - 1 - index)
                        };
                        value | u32::from(byte) << shift
                    });
                *out = masks.map(|mask| channel(value, mask));
            }
        }
        Ok(image)
    }

    /// The `width` x `height` region at (`left`, `top`); parts outside this
    /// image come out black.
    pub fn crop(&self, left: u32, top: u32, width: u32, height: u32) -> RgbImage {
        let mut region = RgbImage::new(width, height);
        for y in 0..height {
            for x in 0..width {
                if let (Some(source_x), Some(source_y)) = (left.checked_add(x), top.checked_add(y))
                    && source_x < self.width
                    && source_y < self.height
                {
                    region.pixels[y as usize * width as usize + x as usize] =
                        self.get(source_x, source_y);
                }
            }
        }
        region
    }

    /// How many pixels satisfy `predicate`.
    pub fn count(&self, predicate: impl Fn([u8; 3]) -> bool) -> usize {
        self.pixels
            .iter()
            .filter(|&&pixel| predicate(pixel))
            .count()
    }

    /// Compares the region at (`left`, `top`) of this capture with `expected`.
    /// Pixels of `expected` that fall outside this capture count as black.
    pub fn compare_region(&self, left: u32, top: u32, expected: &RgbImage) -> Comparison {
        let got = self.crop(left, top, expected.width, expected.height);
        let mut comparison = Comparison::default();
        let mut squared_error = 0f64;
        for (index, (&want, &got)) in expected.pixels.iter().zip(&got.pixels).enumerate() {
            for channel in 0..3 {
                let delta = f64::from(want[channel]) - f64::from(got[channel]);
                squared_error += delta * delta;
            }
            if want != got {
                comparison.mismatches += 1;
                if comparison.first_mismatches.len() < Comparison::MISMATCHES_KEPT {
                    let x = (index % expected.width as usize) as u32;
                    let y = (index / expected.width as usize) as u32;
                    comparison.first_mismatches.push((x, y, want, got));
                }
            }
        }
        let samples = expected.pixels.len() as f64 * 3.0;
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

/// The bits of `value` under `mask`, scaled to 8 bits (masks of X visuals
/// are contiguous; 8 bits each at depth 24).
fn channel(value: u32, mask: u32) -> u8 {
    let bits = mask.count_ones();
    let level = (value & mask) >> mask.trailing_zeros();
    if bits >= 8 {
        (level >> (bits - 8)) as u8
    } else {
        // Widen by repeating the high bits, so full scale stays 255.
        let mut widened = 0u32;
        let mut filled = 0;
        while filled < 8 {
            widened = (widened << bits) | level;
            filled += bits;
        }
        (widened >> (filled - 8)) as u8
    }
}

/// The result of comparing a capture with the expected picture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub mismatches: usize,
    /// (x, y, expected, got) of the first few differing pixels, relative to
    /// the compared region.
    pub first_mismatches: Vec<(u32, u32, [u8; 3], [u8; 3])>,
    /// Peak signal-to-noise ratio in dB; infinite when the images are equal.
    pub psnr: f64,
}

impl Comparison {
    const MISMATCHES_KEPT: usize = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2x2 XWD image built field by field from the XWDFile.h layout:
    /// red, green / blue, white, with one byte of line padding and one
    /// colour map entry to skip.
    fn xwd(bits_per_pixel: u32, byte_order: u32) -> Vec<u8> {
        let bytes_per_pixel = bits_per_pixel as usize / 8;
        let bytes_per_line = 2 * bytes_per_pixel + 1;
        let mut fields = [0u32; XWD_HEADER_FIELDS];
        fields[HEADER_SIZE] = 100 + 4; // the fields plus a 4-byte window name
        fields[FILE_VERSION] = XWD_FILE_VERSION;
        fields[PIXMAP_FORMAT] = ZPIXMAP;
        fields[3] = 24; // pixmap_depth
        fields[PIXMAP_WIDTH] = 2;
        fields[PIXMAP_HEIGHT] = 2;
        fields[BYTE_ORDER] = byte_order;
        fields[BITS_PER_PIXEL] = bits_per_pixel;
        fields[BYTES_PER_LINE] = bytes_per_line as u32;
        fields[VISUAL_CLASS] = TRUE_COLOR;
        fields[RED_MASK] = 0xFF0000;
        fields[GREEN_MASK] = 0x00FF00;
        fields[BLUE_MASK] = 0x0000FF;
        fields[NCOLORS] = 1;
        let mut data: Vec<u8> = fields.iter().flat_map(|f| f.to_be_bytes()).collect();
        data.extend_from_slice(b"win\0");
        data.extend_from_slice(&[0; XWD_COLOR_SIZE]);
        for row in [[0xFF0000u32, 0x00FF00], [0x0000FF, 0xFFFFFF]] {
            for value in row {
                if byte_order == LSB_FIRST {
                    data.extend_from_slice(&value.to_le_bytes()[..bytes_per_pixel]);
                } else {
                    data.extend_from_slice(&value.to_be_bytes()[4 - bytes_per_pixel..]);
                }
            }
            data.push(0xEE); // padding, not a pixel
        }
        data
    }

    const PIXELS: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]];

    fn set_field(data: &mut [u8], index: usize, value: u32) {
        data[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
    }

    #[test]
    fn parses_32_and_24_bit_in_both_byte_orders() {
        for bits in [32, 24] {
            for order in [LSB_FIRST, 1] {
                let image = RgbImage::from_xwd(&xwd(bits, order)).unwrap();
                assert_eq!((image.width, image.height), (2, 2));
                assert_eq!(image.pixels, PIXELS, "{bits} bpp, byte order {order}");
            }
        }
    }

    #[test]
    fn parses_16_bit_565_widening_like_the_server() {
        let mut data = xwd(16, LSB_FIRST);
        set_field(&mut data, RED_MASK, 0xF800);
        set_field(&mut data, GREEN_MASK, 0x07E0);
        set_field(&mut data, BLUE_MASK, 0x001F);
        // The pixels: red, green / blue, and a 5-6-5 grey of 0x10, 0x20, 0x10.
        let start = 104 + XWD_COLOR_SIZE;
        for (index, word) in [0xF800u16, 0x07E0, 0x001F, 0x8410].into_iter().enumerate() {
            let at = start + (index / 2) * 5 + (index % 2) * 2;
            data[at..at + 2].copy_from_slice(&word.to_le_bytes());
        }
        let image = RgbImage::from_xwd(&data).unwrap();
        let widened = [0x84, 0x82, 0x84];
        assert_eq!(
            image.pixels,
            [[255, 0, 0], [0, 255, 0], [0, 0, 255], widened]
        );
    }

    #[test]
    fn last_line_padding_may_be_missing() {
        let mut data = xwd(32, LSB_FIRST);
        data.pop();
        assert_eq!(RgbImage::from_xwd(&data).unwrap().pixels, PIXELS);
    }

    #[test]
    fn narrow_masks_widen_to_full_scale() {
        // A 5-6-5 layout in a 32-bit pixel.
        assert_eq!(channel(0xF800, 0xF800), 255);
        assert_eq!(channel(0x07E0, 0x07E0), 255);
        assert_eq!(channel(0x0010, 0x001F), 0x84);
        assert_eq!(channel(0, 0x001F), 0);
        // A 10-bit channel keeps its high 8 bits.
        assert_eq!(channel(0x3FF, 0x3FF), 255);
    }

    #[test]
    fn rejects_truncated_input() {
        let data = xwd(32, LSB_FIRST);
        for length in [0, 99, 100, 104, 115, data.len() - 2] {
            assert!(
                RgbImage::from_xwd(&data[..length]).is_err(),
                "{length} bytes"
            );
        }
    }

    #[test]
    fn rejects_bad_header_fields() {
        let cases = [
            (FILE_VERSION, 6),
            (HEADER_SIZE, 99),
            (HEADER_SIZE, u32::MAX),
            (PIXMAP_FORMAT, 1),
            (VISUAL_CLASS, 3),
            (BITS_PER_PIXEL, 8),
            (BITS_PER_PIXEL, 0),
            (BYTES_PER_LINE, 7),
            (RED_MASK, 0),
            (NCOLORS, u32::MAX),
            (PIXMAP_WIDTH, MAX_DIMENSION + 1),
            (PIXMAP_HEIGHT, u32::MAX),
            (PIXMAP_HEIGHT, 3),
        ];
        for (index, value) in cases {
            let mut data = xwd(32, LSB_FIRST);
            set_field(&mut data, index, value);
            let error = RgbImage::from_xwd(&data).expect_err("bad field");
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidData,
                "field {index} = {value}"
            );
        }
    }

    #[test]
    fn zero_sized_images_parse() {
        let mut data = xwd(32, LSB_FIRST);
        set_field(&mut data, PIXMAP_WIDTH, 0);
        assert!(RgbImage::from_xwd(&data).unwrap().pixels.is_empty());
        set_field(&mut data, PIXMAP_HEIGHT, 0);
        assert!(RgbImage::from_xwd(&data).unwrap().pixels.is_empty());
    }

    #[test]
    fn compares_regions_and_reports_mismatches() {
        let image = RgbImage::from_xwd(&xwd(32, LSB_FIRST)).unwrap();
        let same = image.compare_region(0, 0, &image);
        assert_eq!(same.mismatches, 0);
        assert!(same.first_mismatches.is_empty());
        assert!(same.psnr.is_infinite());

        let mut expected = image.clone();
        expected.pixels[3] = [255, 255, 254];
        let close = image.compare_region(0, 0, &expected);
        assert_eq!(close.mismatches, 1);
        assert_eq!(
            close.first_mismatches,
            [(1, 1, [255, 255, 254], [255, 255, 255])]
        );
        assert!(close.psnr > 40.0);

        // A region reaching past the capture compares against black.
        assert_eq!(image.crop(1, 1, 1, 1).pixels, [[255, 255, 255]]);
        let shifted = image.compare_region(1, 1, &image);
        assert_eq!(shifted.mismatches, 4);
        assert_eq!(
            shifted.first_mismatches[0],
            (0, 0, [255, 0, 0], [255, 255, 255])
        );
        assert_eq!(shifted.first_mismatches[1], (1, 0, [0, 255, 0], [0, 0, 0]));
        assert_eq!(image.crop(u32::MAX, u32::MAX, 2, 1).pixels, [[0; 3]; 2]);
        assert_eq!(image.count(|pixel| pixel == [0, 0, 255]), 1);
    }

    #[test]
    fn saves_a_binary_ppm() {
        let image = RgbImage::from_xwd(&xwd(24, 1)).unwrap();
        let path = crate::artifacts_dir("selftest").join("tiny.ppm");
        image.save_ppm(&path).unwrap();
        let mut expected = b"P6\n2 2\n255\n".to_vec();
        expected.extend(PIXELS.iter().flatten());
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
}
