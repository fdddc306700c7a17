//! Pointer updates over fast-path: position, hidden, system default, a
//! legacy colour pointer (24-bit XOR and 1-bit AND masks), a new
//! 32-bit RGBA pointer (TS_FP_POINTERATTRIBUTE, or TS_FP_LARGEPOINTERATTRIBUTE
//! beyond 96x96) and cached pointers. MS-RDPBCGR 2.2.9.1.2.1.5 to 2.2.9.1.2.1.11.

use bytes::BufMut;

use crate::api::pointer::{ColorPointer, MAX_REGULAR_SIDE, PointerImage};

/// TS_FP_COLORPOINTERATTRIBUTE (MS-RDPBCGR 2.2.9.1.2.1.7): the masks turned
/// bottom-up with rows padded to two bytes.
/// INVARIANT: `pointer` was validated.
pub(crate) fn encode_color_pointer(
    out: &mut Vec<u8>,
    cache_index: u16,
    pointer: &ColorPointer<'_>,
) {
    let (width, height) = (usize::from(pointer.width), usize::from(pointer.height));
    let (xor_row, and_row) = (width * 3, width.div_ceil(8));
    let (xor_padded, and_padded) = (xor_row.div_ceil(2) * 2, and_row.div_ceil(2) * 2);
    let hotspot_x = pointer.hotspot_x.min(pointer.width - 1);
    let hotspot_y = pointer.hotspot_y.min(pointer.height - 1);
    for value in [
        cache_index,
        hotspot_x,
        hotspot_y,
        pointer.width,
        pointer.height,
    ] {
        out.put_u16_le(value);
    }
    // INVARIANT: at most 96x96, so the mask lengths fit 16 bits.
    out.put_u16_le((and_padded * height) as u16);
    out.put_u16_le((xor_padded * height) as u16);
    for row in (0..height).rev() {
        out.put_slice(&pointer.xor_bgr[row * xor_row..(row + 1) * xor_row]);
        out.put_bytes(0, xor_padded - xor_row);
    }
    for row in (0..height).rev() {
        out.put_slice(&pointer.and_mask[row * and_row..(row + 1) * and_row]);
        out.put_bytes(0, and_padded - and_row);
    }
}

/// TS_FP_POINTERPOSATTRIBUTE.
pub(crate) fn encode_position(out: &mut Vec<u8>, x: u16, y: u16) {
    out.put_u16_le(x);
    out.put_u16_le(y);
}

/// TS_FP_CACHEDPOINTERATTRIBUTE.
pub(crate) fn encode_cached(out: &mut Vec<u8>, cache_index: u16) {
    out.put_u16_le(cache_index);
}

/// Masks of a pointer shown at `width` x `height` (clipped from the image
/// if it is larger): the 32-bpp XOR mask and the 1-bpp AND mask, both
/// bottom-up with rows padded to two bytes. Fully transparent pixels set
/// their AND bit, so clients without alpha blending still see the shape.
fn masks(image: &PointerImage<'_>, width: u16, height: u16) -> (Vec<u8>, Vec<u8>) {
    let (width, height) = (usize::from(width), usize::from(height));
    let source_row = usize::from(image.width) * 4;
    let and_row = width.div_ceil(8).div_ceil(2) * 2;
    let mut xor = Vec::with_capacity(width * height * 4);
    let mut and = vec![0u8; and_row * height];
    for (out_row, row) in (0..height).rev().enumerate() {
        let line = &image.rgba[row * source_row..row * source_row + width * 4];
        for (column, pixel) in line.chunks_exact(4).enumerate() {
            let [r, g, b, a] = [pixel[0], pixel[1], pixel[2], pixel[3]];
            xor.extend_from_slice(&[b, g, r, a]);
            if a == 0 {
                and[out_row * and_row + column / 8] |= 0x80 >> (column % 8);
            }
        }
    }
    (xor, and)
}

/// A new pointer at cache slot `cache_index`, clipped to `max_side`. Returns
/// the update code to send it with.
pub(crate) fn encode_new_pointer(
    out: &mut Vec<u8>,
    cache_index: u16,
    image: &PointerImage<'_>,
    max_side: u16,
) -> crate::graphics::fastpath::UpdateCode {
    let width = image.width.min(max_side);
    let height = image.height.min(max_side);
    let hotspot_x = image.hotspot_x.min(width - 1);
    let hotspot_y = image.hotspot_y.min(height - 1);
    let (xor, and) = masks(image, width, height);
    // The large form differs only in its 32-bit mask lengths.
    let large = width > MAX_REGULAR_SIDE || height > MAX_REGULAR_SIDE;
    out.put_u16_le(32); // xorBpp
    for value in [cache_index, hotspot_x, hotspot_y, width, height] {
        out.put_u16_le(value);
    }
    if large {
        out.put_u32_le(and.len() as u32);
        out.put_u32_le(xor.len() as u32);
    } else {
        out.put_u16_le(and.len() as u16);
        out.put_u16_le(xor.len() as u16);
    }
    out.put_slice(&xor);
    out.put_slice(&and);
    if large {
        crate::graphics::fastpath::UpdateCode::LargePointer
    } else {
        crate::graphics::fastpath::UpdateCode::NewPointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pointer::MAX_LARGE_SIDE;
    use crate::graphics::fastpath::UpdateCode;

    #[test]
    fn new_pointer_layout() {
        // 2x2: opaque red, transparent, opaque green, opaque blue.
        let rgba = [255, 0, 0, 255, 0, 0, 0, 0, 0, 255, 0, 255, 0, 0, 255, 255];
        let image = PointerImage {
            width: 2,
            height: 2,
            hotspot_x: 1,
            hotspot_y: 1,
            cache_index: None,
            rgba: &rgba,
        };
        let mut out = Vec::new();
        assert_eq!(
            encode_new_pointer(&mut out, 3, &image, 96),
            UpdateCode::NewPointer
        );
        assert_eq!(&out[..2], &[32, 0]);
        assert_eq!(&out[2..4], &[3, 0]);
        assert_eq!(&out[12..14], &[4, 0], "and mask: 2 rows of 2 bytes");
        assert_eq!(&out[14..16], &[16, 0], "xor mask: 2 rows of 8 bytes");
        // XOR mask bottom row first: green (B,G,R,A = 0,255,0,255), blue.
        assert_eq!(&out[16..24], &[0, 255, 0, 255, 255, 0, 0, 255]);
        // Then the top row: red, transparent.
        assert_eq!(&out[24..32], &[0, 0, 255, 255, 0, 0, 0, 0]);
        // AND mask: bottom row opaque, top row's second pixel transparent.
        assert_eq!(&out[32..36], &[0, 0, 0x40, 0]);
        assert_eq!(out.len(), 36);
    }

    #[test]
    fn color_pointer_layout() {
        // 3x2: row 0 white, black, red; row 1 inverting (AND 1, XOR white).
        let xor = [
            255, 255, 255, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ];
        let and = [0b0000_0000, 0b1110_0000];
        let pointer = ColorPointer {
            width: 3,
            height: 2,
            hotspot_x: 9,
            hotspot_y: 1,
            cache_index: None,
            xor_bgr: &xor,
            and_mask: &and,
        };
        pointer.validate().unwrap();
        let mut out = Vec::new();
        encode_color_pointer(&mut out, 2, &pointer);
        assert_eq!(
            &out[..10],
            &[2, 0, 2, 0, 1, 0, 3, 0, 2, 0],
            "hotspot clamped"
        );
        assert_eq!(
            &out[10..14],
            &[4, 0, 20, 0],
            "and 2x2 bytes, xor 2x10 bytes"
        );
        // XOR bottom-up: row 1 first, each 9 bytes padded to 10.
        assert_eq!(
            &out[14..24],
            &[255, 255, 255, 255, 255, 255, 255, 255, 255, 0]
        );
        assert_eq!(&out[24..34], &[255, 255, 255, 0, 0, 0, 0, 0, 255, 0]);
        // AND bottom-up, each 1 byte padded to 2.
        assert_eq!(&out[34..], &[0b1110_0000, 0, 0, 0]);
        assert!(
            ColorPointer {
                width: 97,
                ..pointer
            }
            .validate()
            .is_err()
        );
        assert!(
            ColorPointer {
                and_mask: &and[..1],
                ..pointer
            }
            .validate()
            .is_err()
        );
        assert!(
            ColorPointer {
                cache_index: None,
                xor_bgr: &xor[..17],
                ..pointer
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn large_pointers_are_clipped_or_sent_large() {
        let rgba = vec![255u8; 200 * 150 * 4];
        let image = PointerImage {
            width: 200,
            height: 150,
            hotspot_x: 150,
            hotspot_y: 10,
            cache_index: None,
            rgba: &rgba,
        };
        let mut out = Vec::new();
        assert_eq!(
            encode_new_pointer(&mut out, 0, &image, MAX_REGULAR_SIDE),
            UpdateCode::NewPointer
        );
        assert_eq!(
            &out[4..6],
            &95u16.to_le_bytes(),
            "hotspot clamped into the clipped image"
        );
        assert_eq!(&out[8..10], &96u16.to_le_bytes());
        assert_eq!(&out[10..12], &96u16.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(
            encode_new_pointer(&mut out, 0, &image, MAX_LARGE_SIDE),
            UpdateCode::LargePointer
        );
        assert_eq!(&out[8..10], &200u16.to_le_bytes());
        assert_eq!(&out[10..12], &150u16.to_le_bytes());
        assert!(PointerImage { width: 0, ..image }.validate().is_err());
        assert!(
            PointerImage {
                cache_index: None,
                rgba: &rgba[..10],
                ..image
            }
            .validate()
            .is_err()
        );
    }
}
