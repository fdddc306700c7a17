//! Uncompressed 32-bpp bitmap data as TS_BITMAP_DATA carries it
//! ([MS-RDPBCGR 2.2.9.1.1.3.1.2.2](https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/84a3d4d2-5523-4e49-9a48-33952c559485)):
//! rows bottom-up, each pixel B, G, R, X (XRGB little-endian). A 32-bpp row
//! is always a multiple of 4 bytes, so no row padding is needed.

use crate::{EncodeError, Image};

/// Appends the rectangle (`x`, `y`, `width`, `height`) of `image` to `out`,
/// bottom row first. The fourth byte of each pixel is copied as it is:
/// clients ignore it in 32-bpp bitmap updates. Nothing is written when the
/// rectangle is not inside the image.
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
    fn hand_computed_two_by_two() {
        // Top row: blue, green. Bottom row: red, white (B, G, R, X bytes).
        let data = [
            0xFF, 0, 0, 0, 0, 0xFF, 0, 0, //
            0, 0, 0xFF, 0, 0xFF, 0xFF, 0xFF, 0,
        ];
        let image = Image {
            width: 2,
            height: 2,
            stride: 8,
            data: &data,
        };
        let mut out = vec![0xAA]; // appended, not overwritten
        encode_uncompressed_32(&image, 0, 0, 2, 2, &mut out).unwrap();
        assert_eq!(
            out,
            [
                0xAA, //
                0, 0, 0xFF, 0, 0xFF, 0xFF, 0xFF, 0, // bottom row first
                0xFF, 0, 0, 0, 0, 0xFF, 0, 0,
            ]
        );
    }

    #[test]
    fn odd_sizes_and_unpadded_last_row() {
        // 5x3 image whose data ends right after the last pixel (no stride
        // padding on the last row); pixel bytes = its index.
        let stride = 5 * 4 + 3;
        let mut data = vec![0u8; stride * 2 + 5 * 4];
        for row in 0..3 {
            for column in 0..5 {
                let start = row * stride + column * 4;
                data[start..start + 4].fill((row * 5 + column) as u8);
            }
        }
        let image = Image {
            width: 5,
            height: 3,
            stride,
            data: &data,
        };
        let mut out = Vec::new();
        encode_uncompressed_32(&image, 2, 1, 3, 2, &mut out).unwrap();
        let expected: Vec<u8> = [12u8, 13, 14, 7, 8, 9]
            .iter()
            .flat_map(|&pixel| [pixel; 4])
            .collect();
        assert_eq!(out, expected);
        // A 1x1 corner and an empty rectangle.
        out.clear();
        encode_uncompressed_32(&image, 4, 2, 1, 1, &mut out).unwrap();
        assert_eq!(out, [14; 4]);
        out.clear();
        encode_uncompressed_32(&image, 5, 3, 0, 0, &mut out).unwrap();
        assert!(out.is_empty());
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
        // Sizes whose byte counts overflow are errors, not panics.
        let huge = Image {
            width: usize::MAX / 2,
            height: 3,
            stride: usize::MAX,
            data: &data,
        };
        assert_eq!(
            encode_uncompressed_32(&huge, 0, 0, 1, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        let narrow_stride = Image { stride: 4, ..image };
        assert_eq!(
            encode_uncompressed_32(&narrow_stride, 0, 0, 1, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        assert_eq!(
            encode_uncompressed_32(&image, usize::MAX, 0, 1, 1, &mut out),
            Err(EncodeError::OutOfBounds)
        );
        assert!(out.is_empty());
    }
}
