//! The X server's pixel layout, named as an rdpserve `PixelFormat`, so the
//! server converts while copying into its shadow and this crate never does.

use rdpserve_tokio::PixelFormat;
use x11rb::protocol::xproto::{ImageOrder, Screen, Setup};

use crate::X11Error;

/// How the root window's pixels are laid out in a Z-pixmap image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScreenFormat {
    pub format: PixelFormat,
    pub bits_per_pixel: u8,
    /// Rows are padded to a multiple of this many bits.
    pub scanline_pad: u8,
}

impl ScreenFormat {
    /// The format of `screen`'s root visual.
    pub(crate) fn of(setup: &Setup, screen: &Screen) -> Result<Self, X11Error> {
        let depth = screen.root_depth;
        let pixmap = setup
            .pixmap_formats
            .iter()
            .find(|format| format.depth == depth)
            .ok_or(X11Error::UnsupportedFormat {
                depth,
                bits_per_pixel: 0,
            })?;
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|allowed| &allowed.visuals)
            .find(|visual| visual.visual_id == screen.root_visual);
        let masks = visual.map(|visual| (visual.red_mask, visual.green_mask, visual.blue_mask));
        let format = pixel_format(
            pixmap.bits_per_pixel,
            masks,
            setup.image_byte_order == ImageOrder::MSB_FIRST,
        )
        .ok_or(X11Error::UnsupportedFormat {
            depth,
            bits_per_pixel: pixmap.bits_per_pixel,
        })?;
        Ok(Self {
            format,
            bits_per_pixel: pixmap.bits_per_pixel,
            scanline_pad: pixmap.scanline_pad,
        })
    }

    /// Bytes in one row of a `width`-pixel image.
    pub(crate) fn stride(&self, width: u16) -> usize {
        let pad = usize::from(self.scanline_pad.max(8));
        let bits = usize::from(width) * usize::from(self.bits_per_pixel);
        bits.div_ceil(pad) * pad / 8
    }

    pub(crate) fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel) / 8
    }
}

/// The `PixelFormat` of a true-colour visual with these channel masks, at
/// this many bits a pixel, in this byte order; `None` for layouts rdpserve
/// has no format for (8-bit pseudo-colour, 30-bit colour, ...).
fn pixel_format(
    bits_per_pixel: u8,
    masks: Option<(u32, u32, u32)>,
    msb_first: bool,
) -> Option<PixelFormat> {
    let (red, green, blue) = masks?;
    Some(match (bits_per_pixel, red, green, blue, msb_first) {
        // The usual 24-bit colour in 32-bit words: little-endian memory
        // holds B, G, R, X; big-endian X, R, G, B.
        (32, 0xff0000, 0xff00, 0xff, false) => PixelFormat::BgrX32,
        (32, 0xff0000, 0xff00, 0xff, true) => PixelFormat::XRgb32,
        (32, 0xff, 0xff00, 0xff0000, false) => PixelFormat::RgbX32,
        (32, 0xff, 0xff00, 0xff0000, true) => PixelFormat::XBgr32,
        (24, 0xff0000, 0xff00, 0xff, false) => PixelFormat::Bgr24,
        (24, 0xff0000, 0xff00, 0xff, true) => PixelFormat::Rgb24,
        (24, 0xff, 0xff00, 0xff0000, false) => PixelFormat::Rgb24,
        (24, 0xff, 0xff00, 0xff0000, true) => PixelFormat::Bgr24,
        // 5-6-5 in little-endian words: red high is Windows' layout.
        (16, 0xf800, 0x07e0, 0x001f, false) => PixelFormat::Rgb16,
        (16, 0x001f, 0x07e0, 0xf800, false) => PixelFormat::Bgr16,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_layouts_have_formats() {
        let rgb = Some((0xff0000, 0xff00, 0xff));
        assert_eq!(pixel_format(32, rgb, false), Some(PixelFormat::BgrX32));
        assert_eq!(pixel_format(32, rgb, true), Some(PixelFormat::XRgb32));
        assert_eq!(
            pixel_format(32, Some((0xff, 0xff00, 0xff0000)), false),
            Some(PixelFormat::RgbX32)
        );
        assert_eq!(
            pixel_format(16, Some((0xf800, 0x7e0, 0x1f)), false),
            Some(PixelFormat::Rgb16)
        );
        assert_eq!(pixel_format(24, rgb, false), Some(PixelFormat::Bgr24));
    }

    #[test]
    fn unknown_layouts_are_refused() {
        assert_eq!(pixel_format(8, Some((0, 0, 0)), false), None);
        assert_eq!(pixel_format(32, None, false), None);
        assert_eq!(
            pixel_format(32, Some((0x3ff00000, 0xffc00, 0x3ff)), false),
            None
        );
        assert_eq!(pixel_format(16, Some((0xf800, 0x7e0, 0x1f)), true), None);
    }

    #[test]
    fn rows_are_padded() {
        let format = ScreenFormat {
            format: PixelFormat::Rgb16,
            bits_per_pixel: 16,
            scanline_pad: 32,
        };
        assert_eq!(format.stride(3), 8);
        assert_eq!(format.stride(4), 8);
        let format = ScreenFormat {
            format: PixelFormat::BgrX32,
            bits_per_pixel: 32,
            scanline_pad: 32,
        };
        assert_eq!(format.stride(5), 20);
    }
}
