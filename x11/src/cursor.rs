//! XFixes cursor images as the straight RGBA an RDP pointer update takes.

use std::sync::Arc;

/// The largest pointer a large-pointer client takes (MS-RDPBCGR 2.2.9.1.1.4.5:
/// 384 x 384); bigger X cursors are cut to it.
const MAX_SIDE: u16 = 384;

/// One cursor shape, identified by the serial XFixes gives it.
#[derive(Debug)]
pub(crate) struct CursorImage {
    pub serial: u32,
    pub width: u16,
    pub height: u16,
    pub hotspot_x: u16,
    pub hotspot_y: u16,
    /// R, G, B, A bytes, rows top to bottom, alpha not premultiplied.
    pub rgba: Arc<[u8]>,
}

impl CursorImage {
    /// Converts XFixes' image: one 32-bit word a pixel, A, R, G, B from the
    /// top bits, colour premultiplied by alpha (as the Render extension
    /// keeps cursors).
    pub(crate) fn from_xfixes(
        serial: u32,
        (width, height): (u16, u16),
        (hotspot_x, hotspot_y): (u16, u16),
        argb: &[u32],
    ) -> Self {
        let (out_width, out_height) = (width.min(MAX_SIDE), height.min(MAX_SIDE));
        let mut rgba = Vec::with_capacity(usize::from(out_width) * usize::from(out_height) * 4);
        for y in 0..usize::from(out_height) {
            for x in 0..usize::from(out_width) {
                let pixel = argb.get(y * usize::from(width) + x).copied().unwrap_or(0);
                rgba.extend_from_slice(&unpremultiply(pixel));
            }
        }
        Self {
            serial,
            width: out_width,
            height: out_height,
            hotspot_x: hotspot_x.min(out_width.saturating_sub(1)),
            hotspot_y: hotspot_y.min(out_height.saturating_sub(1)),
            rgba: Arc::from(rgba),
        }
    }

    #[cfg(test)]
    pub(crate) fn test(serial: u32, width: u16, height: u16) -> Self {
        let argb = vec![0xff00_00ff; usize::from(width) * usize::from(height)];
        Self::from_xfixes(serial, (width, height), (0, 0), &argb)
    }
}

/// Premultiplied A, R, G, B in a word to straight R, G, B, A bytes.
fn unpremultiply(pixel: u32) -> [u8; 4] {
    let [alpha, red, green, blue] = pixel.to_be_bytes();
    if alpha == 0 {
        return [0, 0, 0, 0];
    }
    let straight = |channel: u8| {
        ((u32::from(channel) * 255 + u32::from(alpha) / 2) / u32::from(alpha)).min(255) as u8
    };
    [straight(red), straight(green), straight(blue), alpha]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_colour_is_straightened() {
        assert_eq!(unpremultiply(0xff_10_20_30), [0x10, 0x20, 0x30, 0xff]);
        assert_eq!(unpremultiply(0x80_40_00_80), [0x80, 0, 0xff, 0x80]);
        assert_eq!(unpremultiply(0x00_12_34_56), [0, 0, 0, 0]);
    }

    #[test]
    fn large_cursors_are_cut_and_short_images_padded() {
        let cursor = CursorImage::from_xfixes(7, (400, 2), (399, 1), &[0xffff_ffff; 10]);
        assert_eq!((cursor.width, cursor.height), (384, 2));
        assert_eq!(cursor.hotspot_x, 383);
        assert_eq!(cursor.rgba.len(), 384 * 2 * 4);
        assert_eq!(&cursor.rgba[..4], &[0xff; 4]);
        assert_eq!(&cursor.rgba[40..44], &[0; 4], "past the image: transparent");
    }
}
