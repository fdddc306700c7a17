//! Uncompressed 32-bpp bitmap data as TS_BITMAP_DATA carries it: rows
//! bottom-up, each pixel B, G, R, X.

use crate::{EncodeError, Image};

/// Appends the rectangle (`x`, `y`, `width`, `height`) of `image` to `out`.
pub fn encode_uncompressed_32(
    image: &Image<'_>,
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    image.check_rect(x, y, width, height)?;
    let row_bytes = width * 4;
    out.reserve(row_bytes * height);
    for row in (y..y + height).rev() {
        let start = row * image.stride + x * 4;
        out.extend_from_slice(&image.data[start..start + row_bytes]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_flipped_and_cropped() {
        // 3x2 image, stride with 4 bytes of padding; pixel value = index.
        let mut data = Vec::new();
        for row in 0..2u8 {
            for column in 0..3u8 {
                data.extend_from_slice(&[row * 3 + column; 4]);
            }
            data.extend_from_slice(&[0xEE; 4]);
        }
        let image = Image {
            width: 3,
            height: 2,
            stride: 16,
            data: &data,
        };
        let mut out = Vec::new();
        encode_uncompressed_32(&image, 1, 0, 2, 2, &mut out).unwrap();
        assert_eq!(out, [[4u8; 4], [5; 4], [1; 4], [2; 4]].concat());
    }

    #[test]
    fn out_of_bounds_is_an_error() {
        let data = [0u8; 16];
        let image = Image {
            width: 2,
            height: 2,
            stride: 8,
            data: &data,
        };
        let mut out = Vec::new();
        assert_eq!(
            encode_uncompressed_32(&image, 1, 0, 2, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        assert_eq!(
            encode_uncompressed_32(&image, 0, 0, 1, usize::MAX, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        let short = Image {
            width: 2,
            height: 3,
            stride: 8,
            data: &data,
        };
        assert_eq!(
            encode_uncompressed_32(&short, 0, 0, 1, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
    }
}
