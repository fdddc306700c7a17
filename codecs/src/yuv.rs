//! B, G, R, X pixels to I420 (planar Y, then U and V at half resolution
//! each way), the input of an H.264 encoder for the Graphics Pipeline's
//! AVC420 codec. BT.709 coefficients at full range, as MS-RDPEGFX 3.3.8.3.1
//! converts colours and FreeRDP's decoder expects; fixed point with 16
//! fractional bits, chroma from the mean of each 2x2 block.
//!
//! The output covers `width` x `height` rounded up to even sizes (H.264's
//! 4:2:0 needs them), the last column and row repeated into the padding.

use crate::{EncodeError, Image};

/// Luma weights x 65536 (0.2126, 0.7152, 0.0722; they sum to 65536).
const Y_R: i32 = 13933;
const Y_G: i32 = 46871;
const Y_B: i32 = 4732;
/// Chroma weights x 65536: U = B - Y scaled to +-0.5, V = R - Y likewise.
const U_R: i32 = -7510;
const U_G: i32 = -25258;
const U_B: i32 = 32768;
const V_R: i32 = 32768;
const V_G: i32 = -29764;
const V_B: i32 = -3004;

/// I420 planes, each row packed (strides equal the plane widths).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct I420 {
    /// Even width and height of the luma plane.
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl I420 {
    /// Converts the rectangle (`x`, `y`, `width`, `height`) of `image`,
    /// reusing the planes' allocations.
    pub fn convert_from(
        &mut self,
        image: &Image<'_>,
        x: usize,
        y: usize,
        width: usize,
        height: usize,
    ) -> Result<(), EncodeError> {
        image.check_rect(x, y, width, height)?;
        if width == 0 || height == 0 {
            return Err(EncodeError::Unsupported);
        }
        let (even_width, even_height) = (width.next_multiple_of(2), height.next_multiple_of(2));
        self.width = even_width;
        self.height = even_height;
        self.y.resize(even_width * even_height, 0);
        self.u.resize(even_width / 2 * even_height / 2, 0);
        self.v.resize(even_width / 2 * even_height / 2, 0);
        let row = |index: usize| {
            // The padding row repeats the last one.
            let source_row = y + index.min(height - 1);
            let start = source_row * image.stride + x * 4;
            // INVARIANT: check_rect proved every row of the rectangle lies
            // in the data.
            &image.data[start..start + width * 4]
        };
        let half = even_width / 2;
        for pair in 0..even_height / 2 {
            let (top, bottom) = (row(2 * pair), row(2 * pair + 1));
            let (luma_top, luma_bottom) =
                self.y[2 * pair * even_width..(2 * pair + 2) * even_width].split_at_mut(even_width);
            let u_row = &mut self.u[pair * half..(pair + 1) * half];
            let v_row = &mut self.v[pair * half..(pair + 1) * half];
            convert_row_pair(top, bottom, width, luma_top, luma_bottom, u_row, v_row);
        }
        Ok(())
    }
}

/// One source row into a luma row: a loop over fixed-size pixels the
/// compiler vectorises.
#[inline(always)]
fn luma_row(row: &[u8], out: &mut [u8]) {
    for (pixel, luma) in row.chunks_exact(4).zip(out.iter_mut()) {
        let [b, g, r, _] = [pixel[0], pixel[1], pixel[2], pixel[3]];
        *luma = ((Y_R as u32 * u32::from(r)
            + Y_G as u32 * u32::from(g)
            + Y_B as u32 * u32::from(b)
            + 32768)
            >> 16) as u8;
    }
}

/// Two source rows (`width` pixels each) into two luma rows and one row of
/// each chroma plane.
fn convert_row_pair(
    top: &[u8],
    bottom: &[u8],
    width: usize,
    luma_top: &mut [u8],
    luma_bottom: &mut [u8],
    u_row: &mut [u8],
    v_row: &mut [u8],
) {
    luma_row(top, luma_top);
    luma_row(bottom, luma_bottom);
    let whole = width / 2;
    for (((top, bottom), u), v) in top
        .chunks_exact(8)
        .zip(bottom.chunks_exact(8))
        .zip(u_row.iter_mut())
        .zip(v_row.iter_mut())
        .take(whole)
    {
        let sum = |at: usize| {
            i32::from(top[at])
                + i32::from(top[at + 4])
                + i32::from(bottom[at])
                + i32::from(bottom[at + 4])
        };
        block_chroma(sum(0), sum(1), sum(2), u, v);
    }
    if width % 2 == 1 {
        // The last column, repeated into the padding column.
        let at = (width - 1) * 4;
        let last = width - 1;
        luma_top[last + 1] = luma_top[last];
        luma_bottom[last + 1] = luma_bottom[last];
        let sum =
            |channel: usize| 2 * (i32::from(top[at + channel]) + i32::from(bottom[at + channel]));
        block_chroma(sum(0), sum(1), sum(2), &mut u_row[whole], &mut v_row[whole]);
    }
}

/// U and V of a 2x2 block from the sums of its four pixels' channels.
#[inline(always)]
fn block_chroma(b: i32, g: i32, r: i32, u: &mut u8, v: &mut u8) {
    // Sums of four: divide by 4 x 65536, rounding; then centre at 128.
    let round = 1 << 17;
    *u = (128 + ((U_R * r + U_G * g + U_B * b + round) >> 18)).clamp(0, 255) as u8;
    *v = (128 + ((V_R * r + V_G * g + V_B * b + round) >> 18)).clamp(0, 255) as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The float BT.709 full-range conversion the fixed-point one follows.
    fn reference(b: f64, g: f64, r: f64) -> (f64, f64, f64) {
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let u = (b - y) / 1.8556 + 128.0;
        let v = (r - y) / 1.5748 + 128.0;
        (y, u, v)
    }

    fn image(width: usize, height: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        (0..width * height * 4)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect()
    }

    #[test]
    fn matches_the_float_reference_within_one() {
        let (width, height) = (37, 23);
        let data = image(width, height, 3);
        let picture = Image {
            width,
            height,
            stride: width * 4,
            data: &data,
        };
        let mut planes = I420::default();
        planes.convert_from(&picture, 0, 0, width, height).unwrap();
        assert_eq!((planes.width, planes.height), (38, 24));
        let pixel = |x: usize, y: usize| {
            let (x, y) = (x.min(width - 1), y.min(height - 1));
            let at = (y * width + x) * 4;
            (
                f64::from(data[at]),
                f64::from(data[at + 1]),
                f64::from(data[at + 2]),
            )
        };
        for y in 0..24 {
            for x in 0..38 {
                let (b, g, r) = pixel(x, y);
                let (luma, _, _) = reference(b, g, r);
                let got = f64::from(planes.y[y * 38 + x]);
                assert!(
                    (got - luma).abs() <= 1.0,
                    "luma at {x},{y}: {got} vs {luma}"
                );
            }
        }
        for y in 0..12 {
            for x in 0..19 {
                let mut sums = (0.0, 0.0, 0.0);
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (b, g, r) = pixel(2 * x + dx, 2 * y + dy);
                    sums = (sums.0 + b / 4.0, sums.1 + g / 4.0, sums.2 + r / 4.0);
                }
                let (_, u, v) = reference(sums.0, sums.1, sums.2);
                let (got_u, got_v) = (
                    f64::from(planes.u[y * 19 + x]),
                    f64::from(planes.v[y * 19 + x]),
                );
                assert!((got_u - u).abs() <= 1.0, "u at {x},{y}: {got_u} vs {u}");
                assert!((got_v - v).abs() <= 1.0, "v at {x},{y}: {got_v} vs {v}");
            }
        }
    }

    #[test]
    fn greys_have_neutral_chroma_and_white_is_255() {
        let data: Vec<u8> = [0u8, 128, 255]
            .iter()
            .flat_map(|&level| [level, level, level, 0xFF, level, level, level, 0xFF])
            .collect();
        let picture = Image {
            width: 2,
            height: 3,
            stride: 8,
            data: &data,
        };
        let mut planes = I420::default();
        planes.convert_from(&picture, 0, 0, 2, 3).unwrap();
        assert_eq!(planes.y, [0, 0, 128, 128, 255, 255, 255, 255]);
        assert_eq!(planes.u, [128, 128]);
        assert_eq!(planes.v, [128, 128]);
    }

    #[test]
    fn rectangles_outside_the_image_are_refused() {
        let data = vec![0u8; 16];
        let picture = Image {
            width: 2,
            height: 2,
            stride: 8,
            data: &data,
        };
        let mut planes = I420::default();
        assert_eq!(
            planes.convert_from(&picture, 1, 0, 2, 2),
            Err(EncodeError::OutOfBounds)
        );
        assert_eq!(
            planes.convert_from(&picture, 0, 0, 0, 2),
            Err(EncodeError::Unsupported)
        );
    }
}
